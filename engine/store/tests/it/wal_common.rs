//! Batches and helpers shared by the WAL tests.
//!
//! `logs`, `spans` and `metrics` batches come from OTLP requests through
//! `weir_core::convert`, as the OTLP receiver makes them (dictionary
//! columns, attribute maps, nested lists); `alerts` batches are built with
//! the table's schema. `seed` varies values, so consecutive batches carry
//! different dictionaries.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    ArrayRef, Float64Array, MapBuilder, StringArray, StringBuilder, StringDictionaryBuilder,
    TimestampNanosecondArray,
};
use arrow::datatypes::Int32Type;
use arrow::record_batch::RecordBatch;
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
use weir_config::FsyncPolicy;
use weir_core::Signal;
use weir_core::convert;
use weir_store::wal::{ReplayReport, Wal, WalOptions, WalRecord};

const SERVICES: &[&str] = &["checkout", "cart", "payment", "frontend", "shipping"];
const ROUTES: &[&str] = &["/api/cart", "/api/checkout", "/api/items/{id}", "/health"];
const METHODS: &[&str] = &["GET", "POST", "PUT", "DELETE"];

/// A tiny deterministic generator.
pub struct Rng(u64);

impl Rng {
    /// A generator started from `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    /// The next number.
    pub fn next(&mut self) -> u64 {
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

fn resource(rng: &mut Rng) -> Option<Resource> {
    Some(Resource {
        attributes: vec![
            kv("service.name", s(rng.pick(SERVICES))),
            kv("service.version", s("2.14.1")),
            kv("host.name", s(&format!("ip-10-0-12-{}", rng.next() % 200))),
            kv("k8s.namespace.name", s("shop")),
            kv("cloud.region", s("eu-west-1")),
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

/// A trace export request of `n` spans in two resources.
pub fn spans_request(n: usize, seed: u64) -> ExportTraceServiceRequest {
    let mut rng = Rng::new(seed);
    let mut resource_spans = Vec::new();
    for part in [n / 2, n - n / 2] {
        let spans = (0..part)
            .map(|i| {
                let start = 1_700_000_000_000_000_000 + rng.next() % 1_000_000_000_000;
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
                    links: if i % 7 == 0 {
                        vec![span::Link {
                            trace_id: rng.id(16),
                            span_id: rng.id(8),
                            attributes: vec![kv("link.kind", s("follows"))],
                            ..Default::default()
                        }]
                    } else {
                        Vec::new()
                    },
                    status: Some(Status {
                        code: if i % 10 == 0 { 2 } else { 0 },
                        message: if i % 10 == 0 {
                            "timeout".into()
                        } else {
                            String::new()
                        },
                    }),
                    ..Default::default()
                }
            })
            .collect();
        resource_spans.push(ResourceSpans {
            resource: resource(&mut rng),
            scope_spans: vec![ScopeSpans {
                scope: scope(),
                spans,
                ..Default::default()
            }],
            ..Default::default()
        });
    }
    ExportTraceServiceRequest { resource_spans }
}

/// A logs export request of `n` records.
pub fn logs_request(n: usize, seed: u64) -> ExportLogsServiceRequest {
    let mut rng = Rng::new(seed);
    let log_records = (0..n)
        .map(|i| {
            let time = 1_700_000_000_000_000_000 + rng.next() % 1_000_000_000_000;
            LogRecord {
                time_unix_nano: time,
                observed_time_unix_nano: time + 1_000,
                severity_number: [9, 13, 17][i % 3],
                severity_text: ["INFO", "WARN", "ERROR"][i % 3].into(),
                body: Some(AnyValue {
                    value: Some(s(&format!(
                        "request {i} served {} in {} ms",
                        rng.pick(ROUTES),
                        rng.next() % 500
                    ))),
                }),
                attributes: vec![
                    kv("code.function", s("handle_request")),
                    kv("code.lineno", Value::IntValue(142)),
                    kv("http.route", s(rng.pick(ROUTES))),
                    kv(
                        "duration_ms",
                        Value::DoubleValue((rng.next() % 5000) as f64 / 10.0),
                    ),
                    kv("retry", Value::BoolValue(i % 2 == 0)),
                ],
                trace_id: if i % 2 == 0 { rng.id(16) } else { Vec::new() },
                span_id: if i % 2 == 0 { rng.id(8) } else { Vec::new() },
                ..Default::default()
            }
        })
        .collect();
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource(&mut rng),
            scope_logs: vec![ScopeLogs {
                scope: scope(),
                log_records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// A metrics export request of about `n` data points: gauges, sums and
/// histograms.
pub fn metrics_request(n: usize, seed: u64) -> ExportMetricsServiceRequest {
    let mut rng = Rng::new(seed);
    let mut metrics = Vec::new();
    let mut left = n;
    let mut m = 0;
    while left > 0 {
        let points = left.min(4);
        left -= points;
        let time = 1_700_000_000_000_000_000 + rng.next() % 1_000_000_000_000;
        let attrs = |rng: &mut Rng| vec![kv("http.route", s(rng.pick(ROUTES))), kv("host", s("a"))];
        let data = match m % 3 {
            0 => metric::Data::Gauge(Gauge {
                data_points: (0..points)
                    .map(|_| NumberDataPoint {
                        attributes: attrs(&mut rng),
                        time_unix_nano: time,
                        value: Some(number_data_point::Value::AsDouble(
                            (rng.next() % 1000) as f64 / 7.0,
                        )),
                        ..Default::default()
                    })
                    .collect(),
            }),
            1 => metric::Data::Sum(Sum {
                data_points: (0..points)
                    .map(|_| NumberDataPoint {
                        attributes: attrs(&mut rng),
                        start_time_unix_nano: time - 60_000_000_000,
                        time_unix_nano: time,
                        value: Some(number_data_point::Value::AsInt(
                            (rng.next() % 100_000) as i64,
                        )),
                        ..Default::default()
                    })
                    .collect(),
                aggregation_temporality: 2,
                is_monotonic: true,
            }),
            _ => metric::Data::Histogram(Histogram {
                data_points: (0..points)
                    .map(|_| HistogramDataPoint {
                        attributes: attrs(&mut rng),
                        start_time_unix_nano: time - 60_000_000_000,
                        time_unix_nano: time,
                        count: 12,
                        sum: Some(3.5),
                        bucket_counts: vec![1, 2, 3, 6],
                        explicit_bounds: vec![0.1, 1.0, 10.0],
                        min: Some(0.01),
                        max: Some(42.0),
                        ..Default::default()
                    })
                    .collect(),
                aggregation_temporality: 2,
            }),
        };
        metrics.push(Metric {
            name: format!("metric.{}", rng.next() % 50),
            description: "what it measures".into(),
            unit: "ms".into(),
            data: Some(data),
            ..Default::default()
        });
        m += 1;
    }
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource(&mut rng),
            scope_metrics: vec![ScopeMetrics {
                scope: scope(),
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// An `alerts` batch of `rows` rows.
pub fn alerts_batch(rows: usize, seed: u64) -> RecordBatch {
    let mut rng = Rng::new(seed);
    let mut rule = StringDictionaryBuilder::<Int32Type>::new();
    let mut state = StringDictionaryBuilder::<Int32Type>::new();
    let mut labels = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
    let mut annotations = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
    for _ in 0..rows {
        rule.append_value(format!("HighLatency{}", rng.next() % 3));
        state.append_value(["pending", "firing", "resolved"][(rng.next() % 3) as usize]);
        labels.keys().append_value("service");
        labels.values().append_value(rng.pick(SERVICES));
        labels.keys().append_value("severity");
        labels
            .values()
            .append_option(rng.next().is_multiple_of(2).then_some("page"));
        labels
            .append(true)
            .expect("keys and values appended together");
        if rng.next().is_multiple_of(2) {
            annotations.keys().append_value("summary");
            annotations.values().append_value("p99 above 500ms");
        }
        annotations
            .append(true)
            .expect("keys and values appended together");
    }
    let mut times = |base: i64| -> ArrayRef {
        Arc::new(
            TimestampNanosecondArray::from_iter_values(
                (0..rows).map(|_| base + (rng.next() % 1_000_000_000) as i64),
            )
            .with_timezone(weir_core::schema::TIME_ZONE),
        )
    };
    let time = times(1_700_000_000_000_000_000);
    let starts = times(1_690_000_000_000_000_000);
    let ends = times(1_710_000_000_000_000_000);
    let columns: Vec<ArrayRef> = vec![
        time,
        Arc::new(rule.finish()),
        Arc::new(state.finish()),
        Arc::new(
            (0..rows)
                .map(|i| ["transition", "notification"][i % 2])
                .collect::<arrow::array::DictionaryArray<Int32Type>>(),
        ),
        Arc::new(labels.finish()),
        Arc::new(annotations.finish()),
        Arc::new(Float64Array::from_iter(
            (0..rows).map(|i| (i % 3 != 0).then_some(i as f64 * 1.5)),
        )),
        starts,
        ends,
        Arc::new(StringArray::from_iter_values(
            (0..rows).map(|i| format!("{seed:08x}{i:04x}")),
        )),
        Arc::new(StringArray::from_iter(
            (0..rows).map(|i| (i % 2 == 0).then_some("http://weir:8080/rules")),
        )),
    ];
    RecordBatch::try_new(Signal::Alerts.schema(), columns).expect("columns of the alerts schema")
}

/// A batch of `table` with about `rows` rows, built as Weir builds them.
pub fn batch(table: Signal, rows: usize, seed: u64) -> RecordBatch {
    let converted = match table {
        Signal::Logs => convert::logs_to_batch(&logs_request(rows, seed)),
        Signal::Spans => convert::spans_to_batch(&spans_request(rows, seed)),
        Signal::Metrics => convert::metrics_to_batch(&metrics_request(rows, seed)),
        Signal::Alerts => return alerts_batch(rows, seed),
    };
    let converted = converted.expect("valid OTLP converts");
    assert_eq!(converted.rejected, 0, "{:?}", converted.rejection);
    converted.batch
}

/// Options for a log in `dir` rolling segments past `segment_size` bytes.
pub fn options(dir: &Path, segment_size: u64) -> WalOptions {
    WalOptions {
        dir: dir.to_path_buf(),
        fsync: FsyncPolicy::Always,
        segment_size,
    }
}

/// Opens the log in `dir`.
pub fn open(dir: &Path, segment_size: u64) -> (Wal, Vec<WalRecord>, ReplayReport) {
    Wal::open(options(dir, segment_size)).expect("open the WAL")
}

/// The segment files of `dir`, in order.
pub fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("list the WAL directory")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    paths.sort();
    paths
}

/// The name of the segment whose first LSN is `lsn`.
pub fn segment_name(lsn: u64) -> String {
    format!("{lsn:020}.wal")
}

/// Where each record of the intact segment `data` starts and ends, read
/// from the documented format: a 32-byte header, then per record a `u32`
/// length, a `u32` checksum, the payload, zero padding to 8 bytes.
pub fn record_spans(data: &[u8]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut at = 32;
    while at < data.len() {
        let len = u32::from_le_bytes(data[at..at + 4].try_into().expect("4 bytes")) as usize;
        let end = at + 8 + len;
        let end = end + (8 - end % 8) % 8;
        spans.push((at, end));
        at = end;
    }
    assert_eq!(at, data.len(), "the segment ends on a record boundary");
    spans
}
