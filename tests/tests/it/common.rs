//! Shared helpers for the end-to-end tests: start an in-process Weir whose
//! listeners are on 127.0.0.1 port 0, and read what its file sink wrote.

#![allow(dead_code, missing_docs)]

use std::path::{Path, PathBuf};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use weir_cli::{Engine, Started};
use weir_core::convert::json;

/// A running Weir writing everything it receives to `out`.
pub struct Weir {
    pub started: Started,
    pub out: PathBuf,
    _dir: tempfile::TempDir,
}

impl Weir {
    /// Starts `otlp -> file` with `extra` appended to the OTLP source table.
    pub async fn start(otlp_extra: &str) -> Weir {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = dir.path().join("out.jsonl");
        let toml = format!(
            r#"
[api]
address = "127.0.0.1:0"

[runtime]
shutdown_timeout = "10s"

[sources.otlp]
type = "otlp"
grpc_address = "127.0.0.1:0"
http_address = "127.0.0.1:0"
{otlp_extra}

[sinks.out]
type = "file"
inputs = ["otlp"]
path = "{}"
"#,
            out.display()
        );
        let plan = weir_config::parse_str(&toml, "test.toml").unwrap_or_else(|e| panic!("{e}"));
        let started = Engine::start(&plan).await.expect("weir starts");
        Weir {
            started,
            out,
            _dir: dir,
        }
    }

    pub fn grpc(&self) -> String {
        format!(
            "http://{}",
            self.started.listener("otlp/grpc").expect("grpc bound")
        )
    }

    pub fn http(&self) -> String {
        format!(
            "http://{}",
            self.started.listener("otlp/http").expect("http bound")
        )
    }

    pub fn api(&self) -> String {
        format!("http://{}", self.started.api_addr.expect("api bound"))
    }

    /// Stops Weir (draining) and returns what the file sink holds.
    pub async fn stop(self) -> Received {
        let report = self.started.stop().await;
        assert!(report.is_clean(), "weir stopped with errors: {report:?}");
        Received::read(&self.out)
    }
}

/// Everything a file sink wrote, decoded back from OTLP/JSON.
#[derive(Debug, Default)]
pub struct Received {
    pub traces: Vec<ExportTraceServiceRequest>,
    pub logs: Vec<ExportLogsServiceRequest>,
    pub metrics: Vec<ExportMetricsServiceRequest>,
}

impl Received {
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

    pub fn spans(&self) -> Vec<&opentelemetry_proto::tonic::trace::v1::Span> {
        self.traces
            .iter()
            .flat_map(|r| &r.resource_spans)
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| &s.spans)
            .collect()
    }

    pub fn log_records(&self) -> Vec<&opentelemetry_proto::tonic::logs::v1::LogRecord> {
        self.logs
            .iter()
            .flat_map(|r| &r.resource_logs)
            .flat_map(|r| &r.scope_logs)
            .flat_map(|s| &s.log_records)
            .collect()
    }

    /// Number of metric data points of every type.
    pub fn data_points(&self) -> usize {
        use opentelemetry_proto::tonic::metrics::v1::metric::Data;
        self.metrics
            .iter()
            .flat_map(|r| &r.resource_metrics)
            .flat_map(|r| &r.scope_metrics)
            .flat_map(|s| &s.metrics)
            .map(|m| match &m.data {
                Some(Data::Gauge(g)) => g.data_points.len(),
                Some(Data::Sum(s)) => s.data_points.len(),
                Some(Data::Histogram(h)) => h.data_points.len(),
                Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
                Some(Data::Summary(s)) => s.data_points.len(),
                None => 0,
            })
            .sum()
    }

    /// Names of the metrics received.
    pub fn metric_names(&self) -> Vec<String> {
        self.metrics
            .iter()
            .flat_map(|r| &r.resource_metrics)
            .flat_map(|r| &r.scope_metrics)
            .flat_map(|s| &s.metrics)
            .map(|m| m.name.clone())
            .collect()
    }
}

/// The shared OTLP/JSON example files of the OpenTelemetry specification.
pub fn shared_example(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/otlp-json")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "the shared sample data is missing at {}: {e}",
            path.display()
        )
    })
}
