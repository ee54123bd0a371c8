//! Shared helpers of the store's integration tests: realistic OTLP data
//! made deterministic, a store configuration in a temporary directory, and
//! SQL shortcuts.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::Int64Type;
use datafusion::physical_plan::displayable;
use datafusion::prelude::SessionContext;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum, metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, status};
use weir_config::{RetentionConfig, StoreConfig};
use weir_core::Signal;

/// A retention that keeps the tests' data from 2024 (and drops 1970's).
pub const KEEP: Duration = Duration::from_secs(20 * 365 * 24 * 3600);
use weir_store::{Store, StoreError};

/// Nanoseconds in one hour.
pub const HOUR: i64 = 3_600_000_000_000;

/// A fixed instant in the past, at the start of an hour: 2024-03-01T10:00:00Z.
pub const BASE: i64 = 1_709_287_200_000_000_000;

/// A store configuration in `dir` with the default settings, except a long
/// flush interval so that tests decide when to flush.
pub fn config(dir: &Path) -> StoreConfig {
    StoreConfig {
        path: dir.to_path_buf(),
        flush_interval: Duration::from_secs(3600),
        compaction_interval: Duration::from_secs(3600),
        retention: RetentionConfig {
            logs: KEEP,
            spans: KEEP,
            metrics: KEEP,
            alerts: KEEP,
            ..RetentionConfig::default()
        },
        ..StoreConfig::default()
    }
}

/// Opens a store, waiting for a previous instance on the same directory to
/// let go of its WAL (its background tasks may still hold it for a moment
/// after it was dropped, as after a crash).
pub async fn open(config: &StoreConfig) -> Arc<Store> {
    let mut last = None;
    for _ in 0..100 {
        match Store::open(config).await {
            Ok(store) => return store,
            Err(e @ StoreError::Wal(_)) if e.to_string().contains("in use") => {
                last = Some(e);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("cannot open the store: {e}"),
        }
    }
    panic!("the WAL stayed locked: {last:?}");
}

/// A session with the store's tables registered.
pub fn session(store: &Store) -> SessionContext {
    let ctx = SessionContext::new();
    store.register(&ctx).expect("register");
    ctx
}

/// Runs `sql` and returns its batches.
pub async fn query(store: &Store, sql: &str) -> Vec<RecordBatch> {
    let ctx = session(store);
    ctx.sql(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .collect()
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Runs a `SELECT count(*) ...` and returns the count.
pub async fn count(store: &Store, sql: &str) -> i64 {
    let batches = query(store, sql).await;
    batches[0].column(0).as_primitive::<Int64Type>().value(0)
}

/// The physical plan of `sql`, as text.
pub async fn plan(store: &Store, sql: &str) -> String {
    let ctx = session(store);
    let df = ctx.sql(sql).await.expect("plan");
    let plan = df.create_physical_plan().await.expect("physical plan");
    displayable(plan.as_ref()).indent(true).to_string()
}

/// A timestamp literal for SQL.
pub fn ts(ns: i64) -> String {
    format!("arrow_cast({ns}, 'Timestamp(Nanosecond, Some(\"+00:00\"))')")
}

/// Every Parquet file under `dir`, recursively.
pub fn parquet_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(parquet_files(&path));
        } else if path.extension().is_some_and(|e| e == "parquet") {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// A small deterministic random generator (xorshift).
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }

    /// The next number.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// One of `items`.
    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }

    /// `len` random bytes, never all zero.
    pub fn id(&mut self, len: usize) -> Vec<u8> {
        let mut v: Vec<u8> = (0..len).map(|_| self.next() as u8).collect();
        v[0] |= 1;
        v
    }
}

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        key_strindex: 0,
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
    }
}

fn kv_int(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.into(),
        key_strindex: 0,
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(value)),
        }),
    }
}

/// The resource of service `i` of a typical Kubernetes deployment.
fn resource(i: usize) -> Resource {
    let services = [
        "checkout", "cart", "payment", "frontend", "shipping", "email",
    ];
    let name = services[i % services.len()];
    Resource {
        attributes: vec![
            kv("service.name", name),
            kv("service.version", "1.14.2"),
            kv("service.namespace", "shop"),
            kv("deployment.environment.name", "production"),
            kv("host.name", &format!("node-{}", i % 3)),
            kv("k8s.namespace.name", "shop"),
            kv("k8s.pod.name", &format!("{name}-7d9f8c6b5-x{i}q2z")),
            kv("k8s.node.name", &format!("node-{}", i % 3)),
            kv("cloud.region", "eu-west-1"),
            kv("telemetry.sdk.language", "go"),
            kv("telemetry.sdk.name", "opentelemetry"),
            kv("telemetry.sdk.version", "1.28.0"),
        ],
        ..Default::default()
    }
}

fn scope() -> InstrumentationScope {
    InstrumentationScope {
        name: "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp".into(),
        version: "0.53.0".into(),
        ..Default::default()
    }
}

const ROUTES: [&str; 8] = [
    "/api/cart",
    "/api/cart/items",
    "/api/checkout",
    "/api/products/{id}",
    "/api/products",
    "/api/users/{id}",
    "/api/orders/{id}",
    "/healthz",
];
const METHODS: [&str; 4] = ["GET", "GET", "POST", "PUT"];

/// `n` spans spread over `services` resources, starting at `start` and
/// `step` nanoseconds apart, in traces of 8 spans.
pub fn spans(
    rng: &mut Rng,
    services: usize,
    n: usize,
    start: i64,
    step: i64,
) -> ExportTraceServiceRequest {
    let per = n.div_ceil(services);
    let mut t = start;
    let mut resource_spans = Vec::new();
    let mut left = n;
    for s in 0..services {
        let k = per.min(left);
        left -= k;
        let mut spans = Vec::with_capacity(k);
        let mut trace = rng.id(16);
        let mut root = rng.id(8);
        for i in 0..k {
            let id = rng.id(8);
            let parent = if i % 8 == 0 {
                trace = rng.id(16);
                root = id.clone();
                Vec::new()
            } else {
                root.clone()
            };
            let route = rng.pick(&ROUTES);
            let method = rng.pick(&METHODS);
            let code = if rng.below(50) == 0 { 500 } else { 200 };
            let dur = 200_000 + rng.below(40_000_000) as i64;
            spans.push(Span {
                trace_id: trace.clone(),
                span_id: id,
                parent_span_id: parent,
                name: format!("{method} {route}"),
                kind: if i % 8 == 0 { 2 } else { 3 },
                start_time_unix_nano: t as u64,
                end_time_unix_nano: (t + dur) as u64,
                attributes: vec![
                    kv("http.request.method", method),
                    kv("http.route", route),
                    kv_int("http.response.status_code", code),
                    kv("url.scheme", "https"),
                    kv("server.address", "shop.example.com"),
                    kv_int("server.port", 443),
                    kv("network.protocol.version", "1.1"),
                    kv(
                        "user_agent.original",
                        "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
                    ),
                ],
                status: Some(Status {
                    message: String::new(),
                    code: if code == 500 {
                        status::StatusCode::Error as i32
                    } else {
                        status::StatusCode::Unset as i32
                    },
                }),
                flags: 0x101,
                ..Default::default()
            });
            t += step;
        }
        resource_spans.push(ResourceSpans {
            resource: Some(resource(s)),
            scope_spans: vec![ScopeSpans {
                scope: Some(scope()),
                spans,
                ..Default::default()
            }],
            ..Default::default()
        });
    }
    ExportTraceServiceRequest { resource_spans }
}

/// How log records carry trace context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogTraces {
    /// As a service logs while serving requests: the lines of one request
    /// (1 to 6, 3.5 on average) share its trace and span id; one line in
    /// five is outside any request and has none.
    PerRequest,
    /// The worst case for size: every line has its own random trace and
    /// span id (24 incompressible bytes).
    Unique,
}

/// `n` log records of an HTTP service (access and application lines),
/// spread over `services` resources like [`spans`].
pub fn logs(
    rng: &mut Rng,
    services: usize,
    n: usize,
    start: i64,
    step: i64,
    traces: LogTraces,
) -> ExportLogsServiceRequest {
    let per = n.div_ceil(services);
    let mut t = start;
    let mut resource_logs = Vec::new();
    let mut left = n;
    for s in 0..services {
        let k = per.min(left);
        left -= k;
        let mut records = Vec::with_capacity(k);
        let (mut trace, mut span, mut lines_left) = (Vec::new(), Vec::new(), 0u64);
        for _ in 0..k {
            let route = rng.pick(&ROUTES);
            let method = rng.pick(&METHODS);
            let (sev, text) = match rng.below(20) {
                0 => (17, "ERROR"),
                1 | 2 => (13, "WARN"),
                _ => (9, "INFO"),
            };
            let status = if sev == 17 { 500 } else { 200 };
            let ms = rng.below(900);
            let body = match rng.below(3) {
                0 => format!(
                    "10.42.{}.{} - - \"{method} {route} HTTP/1.1\" {status} {} \"-\" \"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\" {ms}ms",
                    rng.below(4),
                    rng.below(250),
                    200 + rng.below(20_000)
                ),
                1 => format!(
                    "handled {method} {route}: user {} cart {} items={} total={}.{:02} EUR",
                    rng.below(5000),
                    rng.below(100_000),
                    1 + rng.below(9),
                    rng.below(300),
                    rng.below(100)
                ),
                _ => format!(
                    "db query on table orders took {ms} ms (rows={}, pool=primary, attempt=1)",
                    rng.below(50)
                ),
            };
            let (trace_id, span_id) = match traces {
                LogTraces::Unique => (rng.id(16), rng.id(8)),
                LogTraces::PerRequest => {
                    if lines_left == 0 {
                        lines_left = 1 + rng.below(6);
                        if rng.below(5) == 0 {
                            (trace, span) = (Vec::new(), Vec::new());
                        } else {
                            (trace, span) = (rng.id(16), rng.id(8));
                        }
                    }
                    lines_left -= 1;
                    (trace.clone(), span.clone())
                }
            };
            records.push(LogRecord {
                time_unix_nano: t as u64,
                observed_time_unix_nano: (t + 1_500_000) as u64,
                severity_number: sev,
                severity_text: text.into(),
                body: Some(AnyValue {
                    value: Some(any_value::Value::StringValue(body)),
                }),
                attributes: vec![
                    kv("http.request.method", method),
                    kv("http.route", route),
                    kv_int("http.response.status_code", status),
                    kv("logger", "shop.http"),
                ],
                flags: u32::from(!trace_id.is_empty()),
                trace_id,
                span_id,
                ..Default::default()
            });
            t += step;
        }
        resource_logs.push(ResourceLogs {
            resource: Some(resource(s)),
            scope_logs: vec![ScopeLogs {
                scope: Some(scope()),
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        });
    }
    ExportLogsServiceRequest { resource_logs }
}

/// About `n` metric points: per service, request-duration histograms and
/// counters per route, and a few gauges, all at time `t`.
pub fn metrics(rng: &mut Rng, services: usize, n: usize, t: i64) -> ExportMetricsServiceRequest {
    let bounds = vec![
        5.0, 10.0, 25.0, 50.0, 75.0, 100.0, 250.0, 500.0, 750.0, 1000.0, 2500.0, 5000.0,
    ];
    let per = n.div_ceil(services);
    let mut resource_metrics = Vec::new();
    for s in 0..services {
        let mut hist = Vec::new();
        let mut sums = Vec::new();
        let mut gauges = Vec::new();
        let mut made = 0;
        let mut series = 0usize;
        while made < per {
            let route = ROUTES[series % ROUTES.len()];
            let method = METHODS[(series / ROUTES.len()) % METHODS.len()];
            let attrs = vec![
                kv("http.request.method", method),
                kv("http.route", route),
                kv_int("http.response.status_code", 200),
            ];
            let counts: Vec<u64> = (0..=bounds.len()).map(|_| rng.below(300)).collect();
            let count = counts.iter().sum();
            hist.push(HistogramDataPoint {
                attributes: attrs.clone(),
                start_time_unix_nano: (BASE - 24 * HOUR) as u64,
                time_unix_nano: t as u64,
                count,
                sum: Some(count as f64 * 87.5),
                bucket_counts: counts,
                explicit_bounds: bounds.clone(),
                min: Some(0.4),
                max: Some(4100.0),
                ..Default::default()
            });
            sums.push(NumberDataPoint {
                attributes: attrs.clone(),
                start_time_unix_nano: (BASE - 24 * HOUR) as u64,
                time_unix_nano: t as u64,
                value: Some(number_data_point::Value::AsInt(rng.below(10_000_000) as i64)),
                ..Default::default()
            });
            gauges.push(NumberDataPoint {
                attributes: attrs,
                time_unix_nano: t as u64,
                value: Some(number_data_point::Value::AsDouble(
                    rng.below(1000) as f64 / 10.0,
                )),
                ..Default::default()
            });
            made += 3;
            series += 1;
        }
        resource_metrics.push(ResourceMetrics {
            resource: Some(resource(s)),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(scope()),
                metrics: vec![
                    Metric {
                        name: "http.server.request.duration".into(),
                        description: "Duration of HTTP server requests.".into(),
                        unit: "ms".into(),
                        data: Some(metric::Data::Histogram(Histogram {
                            data_points: hist,
                            aggregation_temporality: AggregationTemporality::Cumulative as i32,
                        })),
                        ..Default::default()
                    },
                    Metric {
                        name: "http.server.requests".into(),
                        description: "Number of HTTP server requests.".into(),
                        unit: "{request}".into(),
                        data: Some(metric::Data::Sum(Sum {
                            data_points: sums,
                            aggregation_temporality: AggregationTemporality::Cumulative as i32,
                            is_monotonic: true,
                        })),
                        ..Default::default()
                    },
                    Metric {
                        name: "http.server.active_requests".into(),
                        description: "Number of active HTTP server requests.".into(),
                        unit: "{request}".into(),
                        data: Some(metric::Data::Gauge(Gauge {
                            data_points: gauges,
                        })),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }],
            ..Default::default()
        });
    }
    ExportMetricsServiceRequest { resource_metrics }
}

/// A `logs` batch of `n` records of service `service` at `start`,
/// `start + step`, ...
pub fn log_batch(n: usize, start: i64, step: i64, service: &str) -> RecordBatch {
    let records = (0..n)
        .map(|i| LogRecord {
            time_unix_nano: (start + i as i64 * step) as u64,
            severity_number: 9,
            body: Some(AnyValue {
                value: Some(any_value::Value::StringValue(format!("line {i}"))),
            }),
            ..Default::default()
        })
        .collect();
    let req = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![kv("service.name", service)],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    weir_core::convert::logs_to_batch(&req).expect("logs").batch
}

/// One entry for [`Store::append`].
pub fn logs_entry(batch: RecordBatch) -> Vec<(Signal, RecordBatch)> {
    vec![(Signal::Logs, batch)]
}
