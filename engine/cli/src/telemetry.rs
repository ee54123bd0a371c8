//! Weir's own logs and metrics.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process-wide Prometheus recorder, installed on first use; every
/// metric the engine records lands here and `/metrics` renders it, with the
/// help text of every metric set.
pub fn metrics_handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder is already installed, in which
            // case our handle stays empty; nothing else in Weir installs one.
            let _ = metrics::set_global_recorder(recorder);
            describe_metrics();
            crate::metrics::build_info().set(1.0);
            handle
        })
        .clone()
}

/// Gives the recorder the help text of every metric set in Weir (one
/// `describe` per set; a set's metrics appear in `/metrics` once recorded).
fn describe_metrics() {
    weir_core::metrics::component::describe();
    weir_core::memory::describe();
    weir_sources::otlp::metrics::describe();
    weir_sinks::alerts::metrics::describe();
    weir_kafka::metrics::describe();
    weir_export::metrics::describe();
    weir_store::obs::describe();
    weir_query::metrics::describe();
    weir_rules::metrics::describe();
    weir_wasm::metrics::describe();
    crate::metrics::describe();
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line (for log shippers).
    Json,
}

/// Installs the `tracing` subscriber: `RUST_LOG` if set, else `level`.
pub fn init_logs(format: LogFormat, level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

#[cfg(test)]
mod tests {
    use weir_core::metrics::component::ComponentMetrics;

    /// Guarantees: `/metrics` gives each metric the help text of its set
    /// (the binary's own and weir-core's component metrics here) and keeps
    /// the name and labels it is recorded with.
    #[test]
    fn metrics_carry_their_help_text() {
        let handle = super::metrics_handle();
        ComponentMetrics::new("out").errors("write").increment(1);
        let text = handle.render();
        for line in [
            "# HELP weir_build_info Always 1, labelled with the version of Weir that runs.",
            "# HELP weir_component_errors_total Errors of a component, by stage",
            "\nweir_component_errors_total{component=\"out\",stage=\"write\"} 1\n",
        ] {
            assert!(text.contains(line), "no {line:?} in:\n{text}");
        }
    }
}
