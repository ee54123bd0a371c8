//! The OTLP/JSON examples of the OpenTelemetry specification
//! (`tests/data/otlp-json`) go through OTLP/JSON -> protobuf message ->
//! Arrow -> message and come back equal; and through our OTLP/JSON encoder
//! and decoder.

use crate::common::{assert_same, example};
use prost::Message;
use weir_core::convert::{self, json};

/// Guarantees: every example file is covered by a test below (a new
/// file cannot be skipped silently).
#[test]
fn every_example_file_is_tested() {
    let mut names: Vec<String> = std::fs::read_dir(crate::common::otlp_json_dir())
        .expect("readable directory")
        .map(|e| {
            e.expect("directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["events.json", "logs.json", "metrics.json", "trace.json"]
    );
}

/// Guarantees: `logs.json` survives JSON -> Arrow -> OTLP exactly, and keeps
/// every attribute type.
#[test]
fn logs_example_round_trips() {
    let req = json::decode_logs(&example("logs.json")).expect("valid OTLP/JSON");
    let record = &req.resource_logs[0].scope_logs[0].log_records[0];
    assert_eq!(record.attributes.len(), 6, "all six attributes decoded");
    assert_eq!(record.trace_id.len(), 16);
    let converted = convert::logs_to_batch(&req).expect("converts");
    assert_eq!(converted.rejected, 0);
    assert_eq!(converted.batch.num_rows(), 1);
    let back = convert::batch_to_logs(&converted.batch).expect("converts back");
    assert_same(&req, &back);
}

/// Guarantees: `events.json` (a log record carrying `event_name` and a
/// kvlist body) survives JSON -> Arrow -> OTLP exactly.
#[test]
fn events_example_round_trips() {
    let req = json::decode_logs(&example("events.json")).expect("valid OTLP/JSON");
    assert_eq!(
        req.resource_logs[0].scope_logs[0].log_records[0].event_name,
        "browser.page_view"
    );
    let converted = convert::logs_to_batch(&req).expect("converts");
    assert_eq!(converted.batch.num_rows(), 1);
    let back = convert::batch_to_logs(&converted.batch).expect("converts back");
    assert_same(&req, &back);
}

/// Guarantees: `trace.json` survives JSON -> Arrow -> OTLP exactly.
#[test]
fn trace_example_round_trips() {
    let req = json::decode_spans(&example("trace.json")).expect("valid OTLP/JSON");
    let converted = convert::spans_to_batch(&req).expect("converts");
    assert_eq!(converted.rejected, 0, "{:?}", converted.rejection);
    assert_eq!(converted.batch.num_rows(), 1);
    let back = convert::batch_to_spans(&converted.batch).expect("converts back");
    assert_same(&req, &back);
}

/// Guarantees: `metrics.json` (sum, gauge, histogram, exponential histogram)
/// survives JSON -> Arrow -> OTLP exactly, one row per data point.
#[test]
fn metrics_example_round_trips() {
    let req = json::decode_metrics(&example("metrics.json")).expect("valid OTLP/JSON");
    let converted = convert::metrics_to_batch(&req).expect("converts");
    assert_eq!(converted.rejected, 0);
    assert_eq!(converted.batch.num_rows(), 4);
    let back = convert::batch_to_metrics(&converted.batch).expect("converts back");
    assert_same(&req, &back);
}

/// Guarantees: our OTLP/JSON decoder reads the examples exactly as
/// opentelemetry-proto's serde derive does (on input both handle), and our
/// encoder's output decodes back to the same message.
#[test]
fn json_codec_agrees_with_reference_on_examples() {
    for name in ["logs.json", "events.json"] {
        let body = example(name);
        let ours = json::decode_logs(&body).expect("decodes");
        let reference: opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest =
            serde_json::from_slice(&body).expect("reference decodes");
        assert_same(&reference, &ours);
        let again =
            json::decode_logs(&json::encode_logs(&ours).expect("encodes")).expect("decodes");
        assert_same(&ours, &again);
    }
    let body = example("trace.json");
    let ours = json::decode_spans(&body).expect("decodes");
    let reference: opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest =
        serde_json::from_slice(&body).expect("reference decodes");
    assert_same(&reference, &ours);
    let again = json::decode_spans(&json::encode_spans(&ours).expect("encodes")).expect("decodes");
    assert_same(&ours, &again);

    let body = example("metrics.json");
    let ours = json::decode_metrics(&body).expect("decodes");
    let reference: opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest =
        serde_json::from_slice(&body).expect("reference decodes");
    assert_same(&reference, &ours);
    let again =
        json::decode_metrics(&json::encode_metrics(&ours).expect("encodes")).expect("decodes");
    assert_same(&ours, &again);
}

/// Guarantees: the examples also survive protobuf bytes -> message -> Arrow
/// -> message -> protobuf bytes with identical bytes (what the gRPC path
/// does).
#[test]
fn examples_round_trip_as_protobuf_bytes() {
    let req = json::decode_spans(&example("trace.json")).expect("decodes");
    let bytes = req.encode_to_vec();
    let decoded =
        opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest::decode(
            bytes.as_slice(),
        )
        .expect("decodes");
    let back = convert::batch_to_spans(&convert::spans_to_batch(&decoded).expect("converts").batch)
        .expect("converts back");
    assert_eq!(back.encode_to_vec(), bytes);
}
