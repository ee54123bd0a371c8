//! A whole Weir started in-process, the way `weir run` starts it, with
//! every listener on `127.0.0.1:0` (cargo feature `engine`).
//!
//! [`start`] runs any pipeline text; [`Weir`] runs the common one, OTLP in
//! and a file sink out, and on [`Weir::stop`] hands back what the sink
//! wrote, decoded ([`Received`]). [`metrics_text`] reads the process-wide
//! metrics recorder that every in-process Weir counts into.

use std::path::{Path, PathBuf};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::metrics::v1::Metric;
use opentelemetry_proto::tonic::trace::v1::Span;
use weir_cli::{Engine, Started};
use weir_core::convert::json;

use crate::otlp;

/// Starts Weir from pipeline text `toml` (named `test.toml` in messages);
/// panics with the diagnostics if the pipeline does not validate, or with
/// the error if it does not start.
pub async fn start(toml: &str) -> Started {
    let plan = weir_cli::parse_str(toml, "test.toml").unwrap_or_else(|e| panic!("{e}"));
    Engine::start(&plan).await.expect("weir starts")
}

/// What `/metrics` of any in-process Weir shows: the process-wide recorder
/// (installed by this call if no Weir has started yet). Every Weir of a
/// test binary counts into it, so a test reads the series of components
/// with names of its own.
pub fn metrics_text() -> String {
    weir_cli::telemetry::metrics_handle().render()
}

/// A running Weir: an OTLP source (gRPC and HTTP) and a file sink that
/// writes everything it receives to [`Weir::out`], with the API server.
pub struct Weir {
    /// The running engine.
    pub started: Started,
    /// The file the sink writes OTLP/JSON lines to.
    pub out: PathBuf,
    source: String,
    _dir: tempfile::TempDir,
}

impl Weir {
    /// Starts `otlp -> out` (file), with `otlp_extra` (TOML lines) added
    /// to the OTLP source's table.
    pub async fn start(otlp_extra: &str) -> Weir {
        Weir::start_named("otlp", "out", otlp_extra).await
    }

    /// [`Weir::start`] with the source named `source` and the sink `sink`:
    /// the names its self-metrics carry, so that a test can tell its own
    /// series from those of other Weirs in the same process.
    pub async fn start_named(source: &str, sink: &str, otlp_extra: &str) -> Weir {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = dir.path().join("out.jsonl");
        let toml = format!(
            r#"
[api]
address = "127.0.0.1:0"

[runtime]
shutdown_timeout = "10s"

[sources.{source}]
type = "otlp"
grpc_address = "127.0.0.1:0"
http_address = "127.0.0.1:0"
{otlp_extra}

[sinks.{sink}]
type = "file"
inputs = ["{source}"]
path = "{}"
"#,
            out.display()
        );
        Weir {
            started: start(&toml).await,
            out,
            source: source.to_string(),
            _dir: dir,
        }
    }

    /// The OTLP/gRPC endpoint, `http://127.0.0.1:PORT`.
    pub fn grpc(&self) -> String {
        self.listener("grpc")
    }

    /// The OTLP/HTTP base URL, `http://127.0.0.1:PORT` (the signals are at
    /// `/v1/traces`, `/v1/logs`, `/v1/metrics`).
    pub fn http(&self) -> String {
        self.listener("http")
    }

    /// The API server's base URL, `http://127.0.0.1:PORT`.
    pub fn api(&self) -> String {
        format!("http://{}", self.started.api_addr.expect("api bound"))
    }

    fn listener(&self, protocol: &str) -> String {
        let name = format!("{}/{protocol}", self.source);
        let addr = self
            .started
            .listener(&name)
            .unwrap_or_else(|| panic!("{name} is bound"));
        format!("http://{addr}")
    }

    /// Stops Weir (draining), checks it stopped cleanly and returns what
    /// the file sink holds.
    pub async fn stop(self) -> Received {
        let report = self.started.stop().await;
        assert!(report.is_clean(), "weir stopped with errors: {report:?}");
        Received::read(&self.out)
    }
}

/// Everything a file sink wrote, decoded back from OTLP/JSON, one request
/// per line.
#[derive(Debug, Default)]
pub struct Received {
    /// The traces requests.
    pub traces: Vec<ExportTraceServiceRequest>,
    /// The logs requests.
    pub logs: Vec<ExportLogsServiceRequest>,
    /// The metrics requests.
    pub metrics: Vec<ExportMetricsServiceRequest>,
}

impl Received {
    /// Reads the file sink's output at `path` (nothing if it is missing).
    pub fn read(path: &Path) -> Received {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let mut r = Received::default();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let v: serde_json::Value = serde_json::from_str(line).expect("each line is JSON");
            if v.get("resourceSpans").is_some() {
                r.traces
                    .push(json::decode_spans(line.as_bytes()).expect("valid OTLP/JSON traces"));
            } else if v.get("resourceLogs").is_some() {
                r.logs
                    .push(json::decode_logs(line.as_bytes()).expect("valid OTLP/JSON logs"));
            } else if v.get("resourceMetrics").is_some() {
                r.metrics
                    .push(json::decode_metrics(line.as_bytes()).expect("valid OTLP/JSON metrics"));
            } else {
                panic!("unexpected line: {line}");
            }
        }
        r
    }

    /// Every span received.
    pub fn spans(&self) -> Vec<&Span> {
        otlp::spans_of(&self.traces).collect()
    }

    /// Every log record received.
    pub fn log_records(&self) -> Vec<&LogRecord> {
        otlp::log_records_of(&self.logs).collect()
    }

    /// Every metric received.
    pub fn metrics(&self) -> Vec<&Metric> {
        otlp::metrics_of(&self.metrics).collect()
    }

    /// Number of metric data points of every type.
    pub fn data_points(&self) -> usize {
        otlp::metrics_of(&self.metrics).map(otlp::data_points).sum()
    }

    /// Names of the metrics received.
    pub fn metric_names(&self) -> Vec<String> {
        otlp::metrics_of(&self.metrics)
            .map(|m| m.name.clone())
            .collect()
    }
}
