//! What the runtime is given for each component.

use weir_core::{Built, SignalSet};

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
