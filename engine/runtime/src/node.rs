//! What the runtime is given for each component.

use weir_core::{Processor, SignalSet, Sink, Source};

/// A component ready to run.
pub enum Built {
    /// A source: brings data in.
    Source(Box<dyn Source>),
    /// A processor: transforms batches.
    Processor(Box<dyn Processor>),
    /// A sink: takes data out.
    Sink(Box<dyn Sink>),
}

impl Built {
    /// `source`, `processor` or `sink`.
    pub fn kind(&self) -> &'static str {
        match self {
            Built::Source(_) => "source",
            Built::Processor(_) => "processor",
            Built::Sink(_) => "sink",
        }
    }
}

/// A component and its place in the graph.
pub struct Node {
    /// The component's unique name.
    pub name: String,
    /// The component itself.
    pub built: Built,
    /// The nodes it reads from and which of their signals it takes.
    pub inputs: Vec<(String, SignalSet)>,
    /// Capacity of its input channel, in batches (processors and sinks).
    pub queue_capacity: usize,
}
