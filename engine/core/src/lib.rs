//! Weir's data model and the contracts every other crate builds on.
//!
//! Telemetry enters Weir as OTLP and is held, from the moment it is decoded
//! until it leaves through a sink, as Apache Arrow record batches:
//!
//! ```text
//!  OTLP request ──convert::*_to_batch──▶ RecordBatch ──Batch::new──▶ Batch
//!       (one row per log record / span / metric data point, schema::*)
//!  Batch ──Source::run──▶ channels ──Processor::process──▶ ... ──Sink::run
//!       ack: every holder of a Batch gives a verdict, then the source is told
//! ```
//!
//! * [`signal`] names the kinds of telemetry (`logs`, `spans`, `metrics`).
//! * [`schema`] fixes the versioned Arrow schema of each signal's table.
//! * [`convert`] turns OTLP protobuf messages into record batches and back,
//!   without loss.
//! * [`batch`] is the unit that flows: a record batch, its signal, and an
//!   [`ack::Ack`] handle that reports back to the source once every sink is
//!   done with it.
//! * [`component`] holds the three traits the runtime drives: [`Source`],
//!   [`Processor`] and [`Sink`].
//! * [`shutdown`] is the signal that asks components to drain and stop.
//! * [`metrics`] declares Weir's own metrics: how every crate declares its
//!   set, and the standard metrics of every component.
//! * [`redact`] makes URLs and errors that may hold secrets fit for logs,
//!   errors and metric labels.

pub mod ack;
pub mod batch;
pub mod component;
pub mod convert;
pub mod error;
pub mod memory;
pub mod metrics;
pub mod redact;
pub mod schema;
pub mod shutdown;
pub mod signal;

pub use ack::{Ack, AckStatus, AckWaiter, Refused, Settled};
pub use batch::Batch;
pub use component::{
    Built, Edge, Input, Output, Processor, SendError, Sink, SinkContext, Source, SourceContext,
};
pub use error::{ComponentError, ConvertError};
pub use shutdown::Shutdown;
pub use signal::{Signal, SignalSet};
