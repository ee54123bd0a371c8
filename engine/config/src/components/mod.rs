//! The built-in component types: one table per kind.
//!
//! Each kind (source, processor, sink) is a serde enum with one newtype
//! variant per `type`, in `snake_case`, wrapping that type's config struct.
//!
//! To add a type:
//! 1. write its config struct with `#[serde(deny_unknown_fields,
//!    rename_all = "snake_case")]`, a `///` doc on every field saying its
//!    unit and default, and a named default function per optional field
//!    (the helpers in `values` parse durations, sizes and addresses);
//! 2. add the variant to its kind's enum — the name in `snake_case` is the
//!    `type` users write, and the valid-type and valid-field lists in error
//!    messages follow from it;
//! 3. fill the match arms the compiler then asks for (`type_name`,
//!    `outputs` / `accepts`);
//! 4. add a fixture to `tests/pipelines/`.
//!
//! The enums are *externally* tagged for serde, not `#[serde(tag = "type")]`:
//! an internally tagged enum buffers the table before picking the variant,
//! which throws away the positions every error message needs. The decoder
//! reads `type` itself and feeds serde `{ <type> = <rest of the table> }`,
//! so the file format is the same and every value keeps its line.

mod processors;
mod sinks;
mod sources;

pub use processors::{OnError, ProcessorConfig, RuleSpec, RulesConfig, WasmConfig};
pub use sinks::{
    AlertmanagerSinkConfig, BlackholeSinkConfig, FileSinkConfig, RetryConfig, SinkConfig,
    StoreSinkConfig, WebhookSinkConfig,
};
pub use sources::{OtlpSourceConfig, SourceConfig};

/// The part a component plays in a pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ComponentKind {
    /// Brings data in from outside (`[sources.NAME]`).
    Source,
    /// Transforms data between its inputs and its readers
    /// (`[processors.NAME]`).
    Processor,
    /// Sends data out of the pipeline (`[sinks.NAME]`).
    Sink,
}

impl ComponentKind {
    /// The table the kind is declared in: `sources`, `processors`, `sinks`.
    pub fn section(self) -> &'static str {
        match self {
            ComponentKind::Source => "sources",
            ComponentKind::Processor => "processors",
            ComponentKind::Sink => "sinks",
        }
    }

    /// The kind as a noun in messages: `source`, `processor`, `sink`.
    pub fn noun(self) -> &'static str {
        match self {
            ComponentKind::Source => "source",
            ComponentKind::Processor => "processor",
            ComponentKind::Sink => "sink",
        }
    }
}

/// A component's typed configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ComponentConfig {
    /// A source (`[sources.NAME]`).
    Source(SourceConfig),
    /// A processor (`[processors.NAME]`).
    Processor(ProcessorConfig),
    /// A sink (`[sinks.NAME]`).
    Sink(SinkConfig),
}

impl ComponentConfig {
    /// Source, processor or sink.
    pub fn kind(&self) -> ComponentKind {
        match self {
            ComponentConfig::Source(_) => ComponentKind::Source,
            ComponentConfig::Processor(_) => ComponentKind::Processor,
            ComponentConfig::Sink(_) => ComponentKind::Sink,
        }
    }

    /// The component's `type` as written in the file, such as `otlp`.
    pub fn type_name(&self) -> &'static str {
        match self {
            ComponentConfig::Source(c) => c.type_name(),
            ComponentConfig::Processor(c) => c.type_name(),
            ComponentConfig::Sink(c) => c.type_name(),
        }
    }

    /// The signals the component can take in (none for a source).
    pub(crate) fn accepts(&self) -> weir_core::SignalSet {
        match self {
            ComponentConfig::Source(_) => weir_core::SignalSet::NONE,
            ComponentConfig::Processor(c) => c.accepts(),
            ComponentConfig::Sink(c) => c.accepts(),
        }
    }

    /// Problems that involve more than one key, found after decoding.
    pub(crate) fn problems(&self) -> Vec<Problem> {
        match self {
            ComponentConfig::Source(c) => c.problems(),
            ComponentConfig::Processor(c) => c.problems(),
            ComponentConfig::Sink(c) => c.problems(),
        }
    }
}

/// A problem with a decoded config that no single value shows, such as two
/// settings that contradict each other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    /// The key to point at, if it is in the file; else the table header.
    /// `rules[2]` is the third table of the array `rules`.
    pub key: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub help: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::introspect::{enum_variants, variant_fields};

    /// Guarantees: every built-in type's config is a plain struct whose
    /// fields can be listed, so unknown keys are caught and suggestions
    /// work for it (a `#[serde(flatten)]` struct would fail this).
    #[test]
    fn every_type_lists_its_fields() {
        for variant in enum_variants::<SourceConfig>() {
            assert!(
                variant_fields::<SourceConfig>(variant).is_some(),
                "{variant}"
            );
        }
        for variant in enum_variants::<ProcessorConfig>() {
            assert!(
                variant_fields::<ProcessorConfig>(variant).is_some(),
                "{variant}"
            );
        }
        for variant in enum_variants::<SinkConfig>() {
            assert!(variant_fields::<SinkConfig>(variant).is_some(), "{variant}");
        }
        assert_eq!(
            enum_variants::<SinkConfig>(),
            ["blackhole", "file", "store", "alertmanager", "webhook"]
        );
        assert_eq!(enum_variants::<ProcessorConfig>(), ["wasm", "rules"]);
    }
}
