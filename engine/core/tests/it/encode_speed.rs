//! How fast the direct protobuf encoders are next to the request path
//! they replace, over batches like a service's (an ignored test: run it in
//! release mode).

use arrow::record_batch::RecordBatch;
use weir_core::convert;

use crate::encode::{Way, agree};

/// A request like a service's: `spans` spans under one resource of ten
/// attributes, each with eight attributes of the common types, a status,
/// and every fourth an event.
fn realistic_trace(
    seed: u64,
    spans: usize,
) -> opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{
        AnyValue, InstrumentationScope, KeyValue, any_value::Value,
    };
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span};
    let kv = |key: &str, value: Value| KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        key_strindex: 0,
    };
    let s = |v: &str| Value::StringValue(v.into());
    let resource = Resource {
        attributes: vec![
            kv("service.name", s(&format!("checkout-{}", seed % 4))),
            kv("service.version", s("1.4.2")),
            kv(
                "service.instance.id",
                s("0f8e5b8c-3c2a-4c59-9f5e-7c1f2f0a1d33"),
            ),
            kv("deployment.environment", s("production")),
            kv("host.name", s("ip-10-0-12-34.ec2.internal")),
            kv("host.arch", s("amd64")),
            kv("os.type", s("linux")),
            kv("process.pid", Value::IntValue(4242)),
            kv("telemetry.sdk.name", s("opentelemetry")),
            kv("telemetry.sdk.language", s("go")),
        ],
        ..Default::default()
    };
    let spans = (0..spans as u64)
        .map(|i| {
            let n = seed * 1_000_003 + i;
            let start = 1_700_000_000_000_000_000 + n * 1_000_000;
            Span {
                trace_id: (n / 8 + 1).to_be_bytes().repeat(2),
                span_id: (n + 1).to_le_bytes().to_vec(),
                parent_span_id: if i % 8 == 0 {
                    Vec::new()
                } else {
                    n.to_le_bytes().to_vec()
                },
                flags: 0x100,
                name: format!("GET /api/v1/items/{}", i % 16),
                kind: 2,
                start_time_unix_nano: start,
                end_time_unix_nano: start + 1_234_567 + i * 17,
                attributes: vec![
                    kv("http.request.method", s("GET")),
                    kv("http.route", s("/api/v1/items/{id}")),
                    kv("url.path", s(&format!("/api/v1/items/{n}"))),
                    kv(
                        "http.response.status_code",
                        Value::IntValue(200 + (i % 3) as i64),
                    ),
                    kv("server.address", s("items.internal")),
                    kv("server.port", Value::IntValue(8080)),
                    kv("network.protocol.version", s("1.1")),
                    kv("sampled.ratio", Value::DoubleValue(0.25)),
                ],
                events: if i % 4 == 0 {
                    vec![span::Event {
                        time_unix_nano: start + 1000,
                        name: "cache miss".into(),
                        attributes: vec![kv("cache.key", s(&format!("item:{n}")))],
                        dropped_attributes_count: 0,
                    }]
                } else {
                    Vec::new()
                },
                status: Some(Status {
                    message: String::new(),
                    code: if i % 50 == 0 { 2 } else { 1 },
                }),
                ..Default::default()
            }
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(resource),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "net/http".into(),
                    version: "0.52.0".into(),
                    ..Default::default()
                }),
                spans,
                schema_url: String::new(),
            }],
            schema_url: "https://opentelemetry.io/schemas/1.26.0".into(),
        }],
    }
}

/// Logs like a service's: `records` records under one resource of five
/// attributes, each with a string body, a severity, trace context and
/// five attributes.
fn realistic_logs(
    seed: u64,
    records: usize,
) -> opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest {
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{
        AnyValue, InstrumentationScope, KeyValue, any_value::Value,
    };
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    let kv = |key: &str, value: Value| KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        key_strindex: 0,
    };
    let s = |v: &str| Value::StringValue(v.into());
    let log_records = (0..records as u64)
        .map(|i| {
            let n = seed * 1_000_003 + i;
            LogRecord {
                time_unix_nano: 1_700_000_000_000_000_000 + n * 1_000_000,
                observed_time_unix_nano: 1_700_000_000_000_000_000 + n * 1_000_000 + 5_000,
                severity_number: 9,
                severity_text: "INFO".into(),
                body: Some(AnyValue {
                    value: Some(s(&format!(
                        "request {n} served in {} ms for user {}",
                        i % 97,
                        n % 1000
                    ))),
                }),
                attributes: vec![
                    kv("http.request.method", s("GET")),
                    kv("http.route", s("/api/v1/items/{id}")),
                    kv("http.response.status_code", Value::IntValue(200)),
                    kv("duration_ms", Value::DoubleValue((i % 97) as f64 + 0.5)),
                    kv("cache.hit", Value::BoolValue(i % 3 == 0)),
                ],
                trace_id: (n / 8 + 1).to_be_bytes().repeat(2),
                span_id: (n + 1).to_le_bytes().to_vec(),
                flags: 1,
                ..Default::default()
            }
        })
        .collect();
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", s(&format!("checkout-{}", seed % 4))),
                    kv("service.version", s("1.4.2")),
                    kv("host.name", s("ip-10-0-12-34.ec2.internal")),
                    kv("deployment.environment", s("production")),
                    kv("process.pid", Value::IntValue(4242)),
                ],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                scope: Some(InstrumentationScope {
                    name: "app".into(),
                    ..Default::default()
                }),
                log_records,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

/// The best of five rounds over `batches`, in nanoseconds per record: the
/// request path, the direct one; and the bytes per record.
fn measure(way: Way, batches: &[RecordBatch]) -> (f64, f64, usize) {
    use std::time::Instant;
    let records: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let mut bytes = 0;
    for batch in batches {
        assert!(agree(way, batch));
        bytes += way.direct(batch).expect("encodes").len();
    }
    let mut best = [f64::MAX; 2];
    for _ in 0..5 {
        let t = Instant::now();
        for batch in batches {
            std::hint::black_box(way.reference(batch).expect("encodes"));
        }
        best[0] = best[0].min(t.elapsed().as_nanos() as f64 / records as f64);
        let t = Instant::now();
        for batch in batches {
            std::hint::black_box(way.direct(batch).expect("encodes"));
        }
        best[1] = best[1].min(t.elapsed().as_nanos() as f64 / records as f64);
    }
    (best[0], best[1], bytes / records)
}

/// Scenario: 100 batches of 512 spans, and of 512 log records, as a
/// service sends them, encoded both ways (run with `cargo test --release
/// -p weir-core --test it -- --ignored encode_speed --nocapture`).
/// Guarantees: the same bytes; prints the nanoseconds per record of each
/// way.
#[test]
#[ignore = "a measurement; run in release mode"]
fn encode_speed() {
    let spans: Vec<RecordBatch> = (0..100)
        .map(|seed| {
            convert::spans_to_batch(&realistic_trace(seed, 512))
                .expect("converts")
                .batch
        })
        .collect();
    let logs: Vec<RecordBatch> = (0..100)
        .map(|seed| {
            convert::logs_to_batch(&realistic_logs(seed, 512))
                .expect("converts")
                .batch
        })
        .collect();
    for (way, batches, old, new) in [
        (
            Way::Spans,
            &spans,
            "batch_to_spans + encode_to_vec",
            "spans_to_proto",
        ),
        (
            Way::Logs,
            &logs,
            "batch_to_logs + encode_to_vec",
            "logs_to_proto",
        ),
    ] {
        let (before, after, bytes) = measure(way, batches);
        eprintln!(
            "{way:?}: 100 x 512 records of {bytes} bytes: {old} {before:.0} ns/record, \
             {new} {after:.0} ns/record ({:.1}x)",
            before / after
        );
    }
}
