//! The table of built-in component types: one line per type, in the order
//! `weir validate` lists them. Each type's config struct (what users
//! write, documented field by field) and its runtime live in its own
//! folder, named here.

use weir_config::Registry;

/// Every component type this Weir can run.
pub fn builtins() -> Registry {
    Registry::new()
        // Sources.
        .source::<weir_sources::OtlpSourceConfig>("otlp")
        .source::<weir_kafka::KafkaSourceConfig>("kafka")
        // Processors.
        .processor::<weir_wasm::WasmConfig>("wasm")
        .processor::<weir_rules::RulesConfig>("rules")
        // Sinks.
        .sink::<weir_sinks::BlackholeSinkConfig>("blackhole")
        .sink::<weir_sinks::FileSinkConfig>("file")
        .sink::<weir_store::StoreSinkConfig>("store")
        .sink::<weir_sinks::AlertmanagerSinkConfig>("alertmanager")
        .sink::<weir_sinks::WebhookSinkConfig>("webhook")
        .sink::<weir_kafka::KafkaSinkConfig>("kafka")
        .sink::<weir_export::OtlpConfig>("otlp")
        .sink::<weir_export::PrometheusRemoteWriteConfig>("prometheus_remote_write")
        .sink::<weir_export::LokiConfig>("loki")
}

/// Reads and checks the pipeline file at `path` with the built-in types.
pub fn load(path: &std::path::Path) -> Result<weir_config::Plan, weir_config::ConfigError> {
    weir_config::load(path, &builtins())
}

/// Checks a pipeline given as text with the built-in types; `file` names
/// it in messages.
pub fn parse_str(source: &str, file: &str) -> Result<weir_config::Plan, weir_config::ConfigError> {
    weir_config::parse_str(source, file, &builtins())
}

#[cfg(test)]
mod tests {
    use weir_config::ComponentKind;

    use super::*;

    /// Guarantees: every built-in type's config is a plain struct whose
    /// fields can be listed, so unknown keys are caught and suggestions
    /// work for it (a `#[serde(flatten)]` struct would fail this), and the
    /// types are the documented ones.
    #[test]
    fn every_type_lists_its_fields() {
        let registry = builtins();
        for t in registry.types() {
            assert!(t.fields().is_some(), "{} {}", t.kind().noun(), t.name());
        }
        let names = |kind| registry.names(kind).collect::<Vec<_>>();
        assert_eq!(names(ComponentKind::Source), ["otlp", "kafka"]);
        assert_eq!(names(ComponentKind::Processor), ["wasm", "rules"]);
        assert_eq!(
            names(ComponentKind::Sink),
            [
                "blackhole",
                "file",
                "store",
                "alertmanager",
                "webhook",
                "kafka",
                "otlp",
                "prometheus_remote_write",
                "loki"
            ]
        );
    }
}
