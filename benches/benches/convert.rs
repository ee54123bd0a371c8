//! OTLP protobuf bytes -> Arrow record batch, per signal, on one core.
//!
//! Each iteration decodes a realistic export request with prost and converts
//! it with `weir_core::convert::*_to_batch`: the work a receiver does per
//! request. Two groups report the same work two ways: `otlp_to_arrow/records`
//! in records per second, `otlp_to_arrow/bytes` in protobuf bytes per
//! second. `prost_decode/records` is the decoding alone (the rest of
//! `otlp_to_arrow` is the conversion), `arrow_to_otlp/records` the way back
//! (batch -> request, what an OTLP exporter does).
//!
//! The requests: one resource with 8 attributes, one scope, 1000 records:
//! spans with 10 attributes (one in five with an event), log records with
//! a sentence for body and 8 attributes, metric points with 4 attributes
//! (100 metrics of 10 points; a quarter are histograms with 12 buckets).
//!
//! Run: `cargo bench -p weir-benches --bench convert -- --quick`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_main};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, InstrumentationScope, KeyValue, any_value::Value,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
    Sum, metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span};
use prost::Message;
use weir_core::convert;

/// Records per request.
const RECORDS: usize = 1000;

/// A small deterministic generator, so every run benches the same data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }

    fn id(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| (self.next() & 0xff) as u8 | 1).collect()
    }
}

fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(value) }),
        key_strindex: 0,
    }
}

fn s(v: &str) -> Value {
    Value::StringValue(v.to_string())
}

fn resource() -> Option<Resource> {
    Some(Resource {
        attributes: vec![
            kv("service.name", s("checkout")),
            kv("service.version", s("2.14.1")),
            kv(
                "service.instance.id",
                s("c0ffee00-1234-4321-9876-0123456789ab"),
            ),
            kv("host.name", s("ip-10-0-12-34.eu-west-1.compute.internal")),
            kv("k8s.pod.name", s("checkout-7d9f8b6c5d-x2x9q")),
            kv("k8s.namespace.name", s("shop")),
            kv("cloud.region", s("eu-west-1")),
            kv("telemetry.sdk.language", s("rust")),
        ],
        ..Default::default()
    })
}

fn scope() -> Option<InstrumentationScope> {
    Some(InstrumentationScope {
        name: "io.opentelemetry.http".into(),
        version: "0.33.0".into(),
        ..Default::default()
    })
}

const ROUTES: &[&str] = &[
    "/api/cart",
    "/api/checkout",
    "/api/items/{id}",
    "/health",
    "/api/user",
];
const METHODS: &[&str] = &["GET", "POST", "PUT", "DELETE"];

fn trace_request() -> ExportTraceServiceRequest {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let spans = (0..RECORDS)
        .map(|i| {
            let start = 1_700_000_000_000_000_000 + i as u64 * 1_000_000;
            let route = rng.pick(ROUTES);
            Span {
                trace_id: rng.id(16),
                span_id: rng.id(8),
                parent_span_id: if i % 4 == 0 { Vec::new() } else { rng.id(8) },
                name: format!("{} {route}", rng.pick(METHODS)),
                kind: 2,
                start_time_unix_nano: start,
                end_time_unix_nano: start + rng.next() % 50_000_000,
                attributes: vec![
                    kv("http.request.method", s(rng.pick(METHODS))),
                    kv("http.route", s(route)),
                    kv("url.path", s(&format!("{route}?page={}", i % 7))),
                    kv(
                        "http.response.status_code",
                        Value::IntValue(200 + (i as i64 % 3) * 100),
                    ),
                    kv("server.address", s("checkout.shop.svc.cluster.local")),
                    kv("server.port", Value::IntValue(8080)),
                    kv("network.protocol.version", s("1.1")),
                    kv("user_agent.original", s("Mozilla/5.0 (X11; Linux x86_64)")),
                    kv(
                        "http.response.body.size",
                        Value::IntValue((rng.next() % 100_000) as i64),
                    ),
                    kv("sampled", Value::BoolValue(true)),
                ],
                events: if i % 5 == 0 {
                    vec![span::Event {
                        time_unix_nano: start + 10,
                        name: "exception".into(),
                        attributes: vec![kv("exception.type", s("TimeoutError"))],
                        ..Default::default()
                    }]
                } else {
                    Vec::new()
                },
                status: Some(Status {
                    code: if i % 10 == 0 { 2 } else { 0 },
                    message: String::new(),
                }),
                ..Default::default()
            }
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource(),
            scope_spans: vec![ScopeSpans {
                scope: scope(),
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn logs_request() -> ExportLogsServiceRequest {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let log_records = (0..RECORDS)
        .map(|i| {
            let time = 1_700_000_000_000_000_000 + i as u64 * 1_000_000;
            LogRecord {
                time_unix_nano: time,
                observed_time_unix_nano: time + 1_000,
                severity_number: 9,
                severity_text: "INFO".into(),
                body: Some(AnyValue {
                    value: Some(s(&format!(
                        "request {i} served {} in {} ms for user {}",
                        rng.pick(ROUTES),
                        rng.next() % 500,
                        rng.next() % 10_000
                    ))),
                }),
                attributes: vec![
                    kv("code.function", s("handle_request")),
                    kv("code.filepath", s("src/http/handler.rs")),
                    kv("code.lineno", Value::IntValue(142)),
                    kv("http.route", s(rng.pick(ROUTES))),
                    kv("http.response.status_code", Value::IntValue(200)),
                    kv(
                        "duration_ms",
                        Value::DoubleValue((rng.next() % 5000) as f64 / 10.0),
                    ),
                    kv("user.id", s(&format!("u{}", rng.next() % 10_000))),
                    kv("retry", Value::BoolValue(false)),
                ],
                trace_id: rng.id(16),
                span_id: rng.id(8),
                flags: 1,
                ..Default::default()
            }
        })
        .collect();
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource(),
            scope_logs: vec![ScopeLogs {
                scope: scope(),
                log_records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn metrics_request() -> ExportMetricsServiceRequest {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let attributes = |rng: &mut Rng, i: usize| {
        vec![
            kv("http.route", s(rng.pick(ROUTES))),
            kv("http.request.method", s(rng.pick(METHODS))),
            kv(
                "http.response.status_code",
                Value::IntValue(200 + (i as i64 % 3) * 100),
            ),
            kv("server.port", Value::IntValue(8080)),
        ]
    };
    let metrics = (0..RECORDS / 10)
        .map(|m| {
            let time = 1_700_000_000_000_000_000 + m as u64;
            let name = format!("http.server.metric_{m}");
            let data = match m % 4 {
                0 => metric::Data::Histogram(Histogram {
                    aggregation_temporality: 2,
                    data_points: (0..10)
                        .map(|i| HistogramDataPoint {
                            attributes: attributes(&mut rng, i),
                            start_time_unix_nano: time - 60_000_000_000,
                            time_unix_nano: time,
                            count: 120,
                            sum: Some(3.5),
                            bucket_counts: (0..12).map(|_| rng.next() % 20).collect(),
                            explicit_bounds: vec![
                                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                            ],
                            min: Some(0.001),
                            max: Some(9.0),
                            ..Default::default()
                        })
                        .collect(),
                }),
                1 => metric::Data::Gauge(Gauge {
                    data_points: (0..10)
                        .map(|i| NumberDataPoint {
                            attributes: attributes(&mut rng, i),
                            time_unix_nano: time,
                            value: Some(number_data_point::Value::AsDouble(
                                (rng.next() % 1000) as f64 / 7.0,
                            )),
                            ..Default::default()
                        })
                        .collect(),
                }),
                _ => metric::Data::Sum(Sum {
                    aggregation_temporality: 2,
                    is_monotonic: true,
                    data_points: (0..10)
                        .map(|i| NumberDataPoint {
                            attributes: attributes(&mut rng, i),
                            start_time_unix_nano: time - 60_000_000_000,
                            time_unix_nano: time,
                            value: Some(number_data_point::Value::AsInt(
                                (rng.next() % 1_000_000) as i64,
                            )),
                            ..Default::default()
                        })
                        .collect(),
                }),
            };
            Metric {
                name,
                description: "a metric of the HTTP server".into(),
                unit: "s".into(),
                data: Some(data),
                ..Default::default()
            }
        })
        .collect();
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource(),
            scope_metrics: vec![ScopeMetrics {
                scope: scope(),
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// Decodes a request and converts it; returns the rows made.
type DecodeAndConvert = fn(&[u8]) -> usize;

/// The protobuf bytes of each signal's request.
struct Inputs {
    logs: Vec<u8>,
    spans: Vec<u8>,
    metrics: Vec<u8>,
}

fn inputs() -> Inputs {
    Inputs {
        logs: logs_request().encode_to_vec(),
        spans: trace_request().encode_to_vec(),
        metrics: metrics_request().encode_to_vec(),
    }
}

fn logs(bytes: &[u8]) -> usize {
    let req = ExportLogsServiceRequest::decode(bytes).expect("valid protobuf");
    convert::logs_to_batch(&req)
        .expect("converts")
        .batch
        .num_rows()
}

fn spans(bytes: &[u8]) -> usize {
    let req = ExportTraceServiceRequest::decode(bytes).expect("valid protobuf");
    convert::spans_to_batch(&req)
        .expect("converts")
        .batch
        .num_rows()
}

fn metrics(bytes: &[u8]) -> usize {
    let req = ExportMetricsServiceRequest::decode(bytes).expect("valid protobuf");
    convert::metrics_to_batch(&req)
        .expect("converts")
        .batch
        .num_rows()
}

fn otlp_to_arrow(c: &mut Criterion) {
    let inputs = inputs();
    let cases: [(&str, &[u8], DecodeAndConvert); 3] = [
        ("logs", &inputs.logs, logs),
        ("spans", &inputs.spans, spans),
        ("metrics", &inputs.metrics, metrics),
    ];
    for (_, bytes, convert) in cases {
        assert_eq!(convert(bytes), RECORDS, "every record becomes a row");
    }

    let mut group = c.benchmark_group("otlp_to_arrow/records");
    group.throughput(Throughput::Elements(RECORDS as u64));
    for (name, bytes, convert) in cases {
        group.bench_function(name, |b| b.iter(|| convert(black_box(bytes))));
    }
    group.finish();

    let mut group = c.benchmark_group("otlp_to_arrow/bytes");
    for (name, bytes, convert) in cases {
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function(name, |b| b.iter(|| convert(black_box(bytes))));
    }
    group.finish();
}

/// Prost decoding alone, to tell how much of `otlp_to_arrow` is ours.
fn prost_decode(c: &mut Criterion) {
    let inputs = inputs();
    let mut group = c.benchmark_group("prost_decode/records");
    group.throughput(Throughput::Elements(RECORDS as u64));
    group.bench_function("logs", |b| {
        b.iter(|| {
            ExportLogsServiceRequest::decode(black_box(inputs.logs.as_slice())).expect("valid")
        })
    });
    group.bench_function("spans", |b| {
        b.iter(|| {
            ExportTraceServiceRequest::decode(black_box(inputs.spans.as_slice())).expect("valid")
        })
    });
    group.bench_function("metrics", |b| {
        b.iter(|| {
            ExportMetricsServiceRequest::decode(black_box(inputs.metrics.as_slice()))
                .expect("valid")
        })
    });
    group.finish();
}

fn arrow_to_otlp(c: &mut Criterion) {
    let logs = convert::logs_to_batch(&logs_request())
        .expect("converts")
        .batch;
    let spans = convert::spans_to_batch(&trace_request())
        .expect("converts")
        .batch;
    let metrics = convert::metrics_to_batch(&metrics_request())
        .expect("converts")
        .batch;
    let mut group = c.benchmark_group("arrow_to_otlp/records");
    group.throughput(Throughput::Elements(RECORDS as u64));
    group.bench_function("logs", |b| {
        b.iter(|| convert::batch_to_logs(black_box(&logs)).expect("converts"))
    });
    group.bench_function("spans", |b| {
        b.iter(|| convert::batch_to_spans(black_box(&spans)).expect("converts"))
    });
    group.bench_function("metrics", |b| {
        b.iter(|| convert::batch_to_metrics(black_box(&metrics)).expect("converts"))
    });
    group.finish();
}

/// Runs every benchmark of this file (what `criterion_group!` would
/// generate, with a doc comment).
fn benches() {
    let mut c = Criterion::default().configure_from_args();
    otlp_to_arrow(&mut c);
    prost_decode(&mut c);
    arrow_to_otlp(&mut c);
}

criterion_main!(benches);
