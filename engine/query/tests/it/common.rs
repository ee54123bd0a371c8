//! Realistic telemetry for the query tests, built as OTLP requests with
//! the test kit and converted with weir-core's converters, so the tables
//! have the real schemas; and a server on 127.0.0.1:0.
//!
//! Three services of a shop (`frontend`, `checkout`, `cart`), each on its
//! own host and Kubernetes namespace. Recent data lies within the last 30
//! minutes; an older batch lies 3 hours back, so "last hour" filters are
//! visible in results. Everything is deterministic except the absolute
//! times, which no expected output shows.

use std::sync::Arc;
use std::time::Duration;

use arrow::record_batch::RecordBatch;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, HistogramDataPoint, Metric, NumberDataPoint,
};
use opentelemetry_proto::tonic::trace::v1::{Span, Status, span};
use weir_config::QueryConfig;
use weir_query::{Register, SqlService};
use weir_testkit::otlp::{self, Group};
use weir_testkit::time::{MILLI, SECOND};
use weir_testkit::{kv, rng};

/// A route: its template, base latency in milliseconds, and method.
pub type Route = (&'static str, u64, &'static str);

/// The services, their host, namespace and routes.
pub const SERVICES: [(&str, &str, &str, &[Route]); 3] = [
    (
        "frontend",
        "node-1",
        "web",
        &[("/", 20, "GET"), ("/product/{id}", 45, "GET")],
    ),
    (
        "checkout",
        "node-2",
        "shop",
        &[
            ("/api/checkout", 250, "POST"),
            ("/api/orders/{id}", 30, "GET"),
        ],
    ),
    ("cart", "node-3", "shop", &[("/api/cart", 12, "POST")]),
];

/// Server spans per route in the recent window.
pub const SPANS_PER_ROUTE: u64 = 20;

/// The histogram bounds of `http.server.request.duration` (seconds), as
/// OpenTelemetry's semantic conventions advise.
pub const BOUNDS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// Per route, how many requests of one minute fall in each bucket.
const PROFILES: [[u64; 15]; 5] = [
    [0, 2, 10, 20, 10, 5, 3, 0, 0, 0, 0, 0, 0, 0, 0],
    [0, 0, 2, 8, 15, 12, 8, 3, 1, 0, 0, 0, 0, 0, 0],
    [0, 0, 0, 1, 3, 6, 15, 20, 10, 5, 2, 1, 0, 0, 0],
    [0, 1, 5, 12, 8, 4, 2, 0, 0, 0, 0, 0, 0, 0, 0],
    [1, 5, 12, 8, 3, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0],
];

/// Now, in nanoseconds since the epoch, rounded down to the second.
pub fn now_ns() -> u64 {
    weir_testkit::time::now_ns() / SECOND * SECOND
}

/// The trace id of the `i`th span of `route` of `service` (indexes into
/// [`SERVICES`]): random-looking and fixed.
pub fn trace_id(service: usize, route: usize, i: u64) -> Vec<u8> {
    let seed = ((service as u64) << 40) | ((route as u64) << 20) | i;
    let mut id = rng::hash(seed).to_be_bytes().to_vec();
    id.extend_from_slice(&rng::hash(seed ^ 0xdead_beef).to_be_bytes());
    id
}

/// The span id of the same span.
pub fn span_id(service: usize, route: usize, i: u64) -> Vec<u8> {
    let seed = ((service as u64) << 40) | ((route as u64) << 20) | i;
    rng::hash(seed ^ 0x5151).to_be_bytes().to_vec()
}

/// Whether the `i`th recent span of a route is an error.
pub fn is_error(service: usize, route: usize, i: u64) -> bool {
    match (service, route) {
        (1, 0) => i.is_multiple_of(5),
        (1, 1) => i == 7,
        (2, 0) => i % 10 == 3,
        (0, 1) => i == 19,
        _ => false,
    }
}

/// The resource attributes of service `service` (an index into
/// [`SERVICES`]).
fn resource(service: usize) -> Vec<KeyValue> {
    let (name, host, namespace, _) = SERVICES[service];
    vec![
        kv::string("service.name", name),
        kv::string("host.name", host),
        kv::string("k8s.namespace.name", namespace),
        kv::string("deployment.environment.name", "prod"),
    ]
}

/// Service `service`'s `records`, under its resource and the HTTP
/// instrumentation's scope.
fn group<T>(service: usize, records: Vec<T>) -> Group<T> {
    Group::new(records)
        .resource(resource(service))
        .scope("io.opentelemetry.http", "1.2.0")
}

/// The spans: per route, [`SPANS_PER_ROUTE`] server spans one minute apart
/// in the last 20 minutes, latency `base * (1 + i / 10)`; and per service
/// three failing spans 3 hours ago.
pub fn spans(now: u64) -> ExportTraceServiceRequest {
    let mut groups = Vec::new();
    for (s, (_, _, _, routes)) in SERVICES.iter().enumerate() {
        let mut spans = Vec::new();
        for (r, (route, base_ms, method)) in routes.iter().enumerate() {
            for i in 0..SPANS_PER_ROUTE {
                let start = now - (i * 60 + 30) * SECOND;
                let duration = base_ms * MILLI + i * base_ms * MILLI / 10;
                let error = is_error(s, r, i);
                spans.push(server_span(
                    (s, r, i),
                    route,
                    method,
                    start,
                    duration,
                    error,
                ));
            }
        }
        let (route, base_ms, method) = routes[0];
        for i in 0..3 {
            let start = now - 3 * 3600 * SECOND - i * SECOND;
            spans.push(server_span(
                (s, 9, i),
                route,
                method,
                start,
                base_ms * 100 * MILLI,
                true,
            ));
        }
        groups.push(group(s, spans));
    }
    otlp::spans_request(groups)
}

fn server_span(
    (s, r, i): (usize, usize, u64),
    route: &str,
    method: &str,
    start: u64,
    duration: u64,
    error: bool,
) -> Span {
    let status_code = if error { 500 } else { 200 };
    Span {
        kind: span::SpanKind::Server as i32,
        attributes: vec![
            kv::string("http.request.method", method),
            kv::string("http.route", route),
            kv::int("http.response.status_code", status_code),
        ],
        status: error.then(|| Status {
            code: 2,
            message: "Internal Server Error".to_string(),
        }),
        ..otlp::span(
            &trace_id(s, r, i),
            &span_id(s, r, i),
            &format!("{method} {route}"),
            start,
            start + duration,
        )
    }
}

/// A log record with its severity's text, observed a millisecond after
/// `time`.
fn log(time: u64, severity: i32, body: &str) -> LogRecord {
    let text = match severity {
        1..=8 => "DEBUG",
        9..=12 => "INFO",
        13..=16 => "WARN",
        _ => "ERROR",
    };
    LogRecord {
        observed_time_unix_nano: time + MILLI,
        severity_text: text.to_string(),
        ..otlp::log(time, severity, body)
    }
}

/// `record` with attribute `http.route`, in the trace and span `ids`.
fn in_request(
    mut record: LogRecord,
    route: &str,
    (trace_id, span_id): (Vec<u8>, Vec<u8>),
) -> LogRecord {
    record.attributes.push(kv::string("http.route", route));
    record.trace_id = trace_id;
    record.span_id = span_id;
    record
}

/// The logs: request logs per service, errors tied to the failing spans'
/// traces, and an old burst of `disk full` errors on `cart`.
pub fn logs(now: u64) -> ExportLogsServiceRequest {
    let mut per_service: Vec<Vec<LogRecord>> = vec![Vec::new(), Vec::new(), Vec::new()];
    for (s, (_, _, _, routes)) in SERVICES.iter().enumerate() {
        for (r, (route, _, _)) in routes.iter().enumerate() {
            for i in 0..SPANS_PER_ROUTE {
                let time = now - (i * 60 + 30) * SECOND + 5 * MILLI;
                let ids = (trace_id(s, r, i), span_id(s, r, i));
                let record = match (s, is_error(s, r, i)) {
                    (0, false) => log(time, 9, "rendered page"),
                    (0, true) => log(time, 17, "upstream checkout returned 500"),
                    (1, false) => log(time, 9, "order placed"),
                    (1, true) => log(
                        time,
                        17,
                        "payment service unavailable: connection timeout to payments-db",
                    ),
                    (_, false) => log(time, 9, "cart updated"),
                    (_, true) => log(time, 17, "redis timeout after 500ms"),
                };
                per_service[s].push(in_request(record, route, ids.clone()));
                if s == 1 && r == 0 && i.is_multiple_of(5) {
                    let retry = log(time - MILLI, 13, "payment declined, retrying (attempt 2)");
                    per_service[s].push(in_request(retry, route, ids));
                }
            }
        }
    }
    for i in 0..3 {
        per_service[0].push(log(
            now - (i * 120 + 40) * SECOND,
            13,
            "slow upstream: checkout took more than 1s",
        ));
    }
    for i in 0..5 {
        per_service[2].push(log(now - 3 * 3600 * SECOND - i * SECOND, 17, "disk full"));
    }
    otlp::logs_request(
        per_service
            .into_iter()
            .enumerate()
            .map(|(s, records)| group(s, records)),
    )
}

/// The metrics: `http.server.request.duration` (delta histograms, one point
/// per route per minute over the last 10 minutes, plus a slow point 3 hours
/// ago), `system.memory.usage` (a gauge per host) and `orders.placed` (a
/// cumulative counter of `checkout`).
pub fn metrics(now: u64) -> ExportMetricsServiceRequest {
    let mut groups = Vec::new();
    let mut profile = 0;
    for (s, (_, _, _, routes)) in SERVICES.iter().enumerate() {
        let mut histogram_points = Vec::new();
        for (route, _, method) in routes.iter() {
            for m in 0..10u64 {
                let time = now - (m * 60 + 15) * SECOND;
                let counts: Vec<u64> = PROFILES[profile].iter().map(|c| c * (1 + m % 2)).collect();
                histogram_points.push(histogram_point(route, method, time, counts));
            }
            profile += 1;
        }
        let (route, _, method) = routes[0];
        let mut slow = vec![0u64; 15];
        slow[14] = 50;
        histogram_points.push(histogram_point(
            route,
            method,
            now - 3 * 3600 * SECOND,
            slow,
        ));
        let mut metrics = vec![Metric {
            description: "Duration of HTTP server requests.".to_string(),
            unit: "s".to_string(),
            ..otlp::histogram(
                "http.server.request.duration",
                histogram_points,
                AggregationTemporality::Delta,
            )
        }];
        let memory = (0..5u64)
            .map(|m| {
                otlp::int_point(
                    now - (m * 60 + 10) * SECOND,
                    (s as i64 + 1) * 100_000_000 + (5 - m as i64) * 1_000_000,
                )
            })
            .collect();
        metrics.push(Metric {
            unit: "By".to_string(),
            ..otlp::gauge("system.memory.usage", memory)
        });
        if s == 1 {
            let orders = (0..10u64)
                .map(|m| NumberDataPoint {
                    start_time_unix_nano: now - 24 * 3600 * SECOND,
                    ..otlp::int_point(now - (m * 60 + 20) * SECOND, 1000 + 7 * (10 - m as i64))
                })
                .collect();
            metrics.push(Metric {
                unit: "{order}".to_string(),
                ..otlp::sum(
                    "orders.placed",
                    orders,
                    AggregationTemporality::Cumulative,
                    true,
                )
            });
        }
        groups.push(group(s, metrics));
    }
    otlp::metrics_request(groups)
}

fn histogram_point(route: &str, method: &str, time: u64, counts: Vec<u64>) -> HistogramDataPoint {
    let mids = BOUNDS
        .iter()
        .enumerate()
        .map(|(k, upper)| {
            if k == 0 {
                upper / 2.0
            } else {
                (BOUNDS[k - 1] + upper) / 2.0
            }
        })
        .chain(std::iter::once(20.0));
    let sum = counts
        .iter()
        .zip(mids)
        .map(|(c, mid)| *c as f64 * mid)
        .sum();
    HistogramDataPoint {
        attributes: vec![
            kv::string("http.route", route),
            kv::string("http.request.method", method),
        ],
        start_time_unix_nano: time - 60 * SECOND,
        time_unix_nano: time,
        count: counts.iter().sum(),
        sum: Some(sum),
        bucket_counts: counts,
        explicit_bounds: BOUNDS.to_vec(),
        ..Default::default()
    }
}

/// The three tables as converted by weir-core.
pub struct Tables {
    /// The `logs` rows.
    pub logs: RecordBatch,
    /// The `spans` rows.
    pub spans: RecordBatch,
    /// The `metrics` rows.
    pub metrics: RecordBatch,
}

impl Tables {
    /// The fixtures as of `now`.
    pub fn at(now: u64) -> Tables {
        let convert =
            |c: Result<weir_core::convert::Converted, weir_core::convert::ConvertError>| {
                let converted = c.expect("fixtures convert");
                assert_eq!(converted.rejected, 0, "{:?}", converted.rejection);
                converted.batch
            };
        Tables {
            logs: convert(weir_core::convert::logs_to_batch(&logs(now))),
            spans: convert(weir_core::convert::spans_to_batch(&spans(now))),
            metrics: convert(weir_core::convert::metrics_to_batch(&metrics(now))),
        }
    }

    /// A [`Register`] that adds the three tables as in-memory tables.
    pub fn register(&self) -> Register {
        let tables = [
            ("logs", self.logs.clone()),
            ("spans", self.spans.clone()),
            ("metrics", self.metrics.clone()),
        ];
        Arc::new(move |ctx: &SessionContext| {
            for (name, batch) in &tables {
                let table = MemTable::try_new(batch.schema(), vec![vec![batch.clone()]])?;
                ctx.register_table(*name, Arc::new(table))?;
            }
            Ok(())
        })
    }
}

/// Limits for tests: generous unless a test is about them.
pub fn config(timeout: Duration, memory_limit: u64) -> QueryConfig {
    QueryConfig {
        timeout,
        memory_limit,
        ..QueryConfig::default()
    }
}

/// A service over the fixtures as of now, with default limits.
pub fn service() -> SqlService {
    SqlService::new(Tables::at(now_ns()).register(), &QueryConfig::default())
}

/// Serves `service` on 127.0.0.1:0; returns `http://127.0.0.1:PORT`.
pub async fn serve(service: SqlService) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let address = listener.local_addr().expect("bound address");
    let router = Arc::new(service).router(Arc::new(weir_query::Credentials::default()));
    tokio::spawn(async move {
        axum::serve(listener, router).await.expect("server runs");
    });
    format!("http://{address}")
}

/// The integer `sql` returns (one row, one column) over the fixtures as of
/// `now`, through the SQL service itself: what other endpoints are
/// compared with.
pub async fn count(sql: &str, now: u64) -> serde_json::Value {
    use futures::TryStreamExt;
    let service = SqlService::new(Tables::at(now).register(), &QueryConfig::default());
    let batches: Vec<RecordBatch> = service
        .execute(sql)
        .await
        .expect("plans")
        .try_collect()
        .await
        .expect("runs");
    let column = arrow::compute::cast(batches[0].column(0), &arrow::datatypes::DataType::Int64)
        .expect("an integer");
    let values = column
        .as_any()
        .downcast_ref::<arrow::array::Int64Array>()
        .expect("Int64");
    serde_json::json!(values.value(0))
}

/// Runs `tests/SCRIPT ARGS` with the suite's Python (`WEIR_TEST_PYTHON`,
/// which `scripts/test` sets up with the SQL clients) and returns the JSON
/// document it prints; a failed script fails the test with its stderr.
pub async fn python_json(script: &str, args: Vec<String>) -> serde_json::Value {
    let python = std::env::var("WEIR_TEST_PYTHON").unwrap_or_else(|_| {
        panic!(
            "WEIR_TEST_PYTHON is not set: run the suite with `scripts/test`, which installs \
             psycopg, pyarrow and the ADBC Flight SQL driver into a venv and sets it"
        )
    });
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(script);
    let mut command = std::process::Command::new(python);
    command.arg(&path).args(args);
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("joins")
        .expect("python runs");
    assert!(
        output.status.success(),
        "{script} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON")
}
