//! Weir's dataflow: components run as tokio tasks joined by bounded channels.
//!
//! The caller (the CLI) builds each component from its configuration and
//! hands the runtime a list of [`Node`]s: a built [`Source`], [`Processor`] or
//! [`Sink`] plus the names of the nodes it reads from.
//!
//! ```text
//!  Topology::new(nodes)     one bounded mpsc channel per processor / sink,
//!                           one Output (fan-out edges) per source / processor
//!  Topology::start()        one task per component
//!  Running::shutdown()      sources stop taking data; each channel closes once
//!                           its upstreams are gone; processors and sinks drain
//!                           what they hold and stop, in dataflow order
//! ```
//!
//! Backpressure needs no extra machinery: a full channel makes
//! [`Output::send`](weir_core::Output::send) wait, which holds up the
//! upstream task, back to the source, which refuses new data while its
//! `send_within` deadline passes.

mod node;
mod topology;

pub use node::Node;
pub use topology::{ExitReport, Running, Topology, TopologyError};
pub use weir_core::Built;

pub use weir_core::{Processor, Sink, Source};
