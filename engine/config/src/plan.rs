//! The validated result: what the runtime builds.

use std::sync::Arc;

use weir_core::SignalSet;

use crate::component::{ComponentConfig, ComponentKind};
use crate::rule_tests::PipelineTest;
use crate::settings::{ApiConfig, QueryConfig, RuntimeConfig, StoreConfig};

/// A pipeline file that passed every check, ready to run.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// `[api]`, or its defaults.
    pub api: ApiConfig,
    /// `[runtime]`, or its defaults.
    pub runtime: RuntimeConfig,
    /// `[store]`, or its defaults: the embedded store the `store` sink
    /// writes to and the SQL endpoints read.
    pub store: StoreConfig,
    /// `[query]`, or its defaults: limits of the SQL endpoints.
    pub query: QueryConfig,
    /// Every component, in topological order: each one comes after all of
    /// its inputs (ties keep file order). Sources come before what reads
    /// them, sinks after what feeds them.
    pub components: Vec<Component>,
    /// The `[[tests]]` of the file, for `weir test`; `weir run` ignores
    /// them.
    pub tests: Vec<PipelineTest>,
    /// Things that work but are probably not intended (such as a source
    /// nothing reads), rendered like errors with `warning:` in front.
    pub warnings: Vec<String>,
}

impl Plan {
    /// The component called `name`, if there is one.
    pub fn component(&self, name: &str) -> Option<&Component> {
        self.components.iter().find(|c| c.name == name)
    }

    /// The components that read from `name`, with the signals each takes
    /// from it, in plan order.
    pub fn readers<'a>(
        &'a self,
        name: &'a str,
    ) -> impl Iterator<Item = (&'a Component, SignalSet)> {
        self.components.iter().filter_map(move |c| {
            c.inputs
                .iter()
                .find(|i| i.from == name)
                .map(|i| (c, i.signals))
        })
    }
}

/// One source, processor or sink of a [`Plan`].
#[derive(Debug, Clone)]
pub struct Component {
    /// The name from its `[KIND.NAME]` header; unique across all kinds.
    pub name: String,
    /// Source, processor or sink.
    pub kind: ComponentKind,
    /// Its `type`, as registered (`otlp`, `store`).
    pub type_name: &'static str,
    /// Its typed configuration (downcast with
    /// `component.config.downcast_ref::<FooConfig>()`).
    pub config: Arc<dyn ComponentConfig>,
    /// What it reads, one entry per upstream component, in the order first
    /// written. Empty for sources.
    pub inputs: Vec<Input>,
    /// Capacity of its input channel, in batches (1 to 65536, default 32).
    /// Meaningful for processors and sinks; the default for sources.
    pub queue_capacity: usize,
}

impl Component {
    /// Source, processor or sink.
    pub fn kind(&self) -> ComponentKind {
        self.kind
    }

    /// Its config as type `T`, if it is of that type.
    pub fn config_as<T: std::any::Any>(&self) -> Option<&T> {
        self.config.downcast_ref::<T>()
    }
}

impl PartialEq for Component {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
            && self.kind == other.kind
            && self.type_name == other.type_name
            && self.config.dyn_eq(other.config.as_any())
            && self.inputs == other.inputs
            && self.queue_capacity == other.queue_capacity
    }
}

/// One edge of the pipeline graph: a component reading from `from`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    /// The upstream component's name.
    pub from: String,
    /// The signals that really flow on this edge: those requested
    /// (`name` = all, `name.logs` = one), that `from` emits and that the
    /// reader accepts. Never empty.
    pub signals: SignalSet,
}
