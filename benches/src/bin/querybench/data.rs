//! Synthetic log records shaped like a small microservice shop's: about
//! twenty services of uneven volume, three pods each, weighted severities,
//! three to six attributes of mixed types, bodies of 60 to 200 bytes made
//! from a dozen message templates, and trace context on most lines (a
//! trace id shared by a few consecutive lines of the same pod).
//!
//! A [`LogGenerator`] makes OTLP export requests of `batch` records whose
//! times are spread uniformly over `[start, end)` in order, the way a live
//! stream arrives; `weir_core::convert::logs_to_batch` turns each into the
//! rows the OTLP receiver would hand to the store. It also counts the rows
//! of each `(service, severity)` that fall in the query window, so the query
//! step can check its answer.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use weir_testkit::kv::kv;

/// The services and the language of their SDK.
const SERVICES: [(&str, &str); 20] = [
    ("frontend", "nodejs"),
    ("cart", "dotnet"),
    ("checkout", "go"),
    ("product-catalog", "go"),
    ("payment", "nodejs"),
    ("shipping", "rust"),
    ("currency", "cpp"),
    ("recommendation", "python"),
    ("ad", "java"),
    ("email", "ruby"),
    ("quote", "php"),
    ("accounting", "dotnet"),
    ("fraud-detection", "java"),
    ("inventory", "go"),
    ("auth", "java"),
    ("search", "rust"),
    ("user", "go"),
    ("notification", "python"),
    ("gateway", "go"),
    ("image-resizer", "python"),
];

/// Pods per service: one resource each.
const PODS: usize = 3;

/// Severity number, text and weight (per mille).
const SEVERITIES: [(i32, &str, u32); 5] = [
    (5, "DEBUG", 150),
    (9, "INFO", 700),
    (13, "WARN", 100),
    (17, "ERROR", 45),
    (21, "FATAL", 5),
];

/// Share of lines carrying a trace and span id.
const TRACED: f64 = 0.6;

/// Chance that a traced line continues the pod's current trace.
const SAME_TRACE: f64 = 0.7;

const ROUTES: [&str; 12] = [
    "/",
    "/api/cart",
    "/api/checkout",
    "/api/products",
    "/api/products/{id}",
    "/api/recommendations",
    "/api/currency/convert",
    "/api/shipping/quote",
    "/api/users/{id}",
    "/api/search",
    "/api/ads",
    "/healthz",
];
const METHODS: [&str; 4] = ["GET", "GET", "POST", "PUT"];
const FUNCTIONS: [&str; 8] = [
    "handle_request",
    "process_order",
    "charge_card",
    "load_products",
    "render_page",
    "refresh_cache",
    "send_email",
    "check_stock",
];
const WORDS: [&str; 16] = [
    "cache", "retry", "upstream", "timeout", "session", "order", "item", "user", "token", "queue",
    "batch", "region", "shard", "lease", "quota", "stream",
];

/// What one row of the query's answer is keyed by.
pub type Group = (String, String);

/// Makes the log requests of a fill.
pub struct LogGenerator {
    rng: SmallRng,
    /// Resources, `PODS` per service, in service order.
    resources: Vec<Resource>,
    scopes: Vec<InstrumentationScope>,
    /// Service index by a uniform draw in `0..1024`: a Zipf-like mix, the
    /// front end logging most.
    service_table: Vec<u8>,
    /// Severity index by a uniform draw in `0..1000`.
    severity_table: Vec<u8>,
    /// The current trace and span id of each pod.
    traces: Vec<([u8; 16], [u8; 8])>,
    start_ns: i64,
    span_ns: i64,
    rows: u64,
    next: u64,
    batch: usize,
    window: (i64, i64),
    in_window: BTreeMap<Group, u64>,
}

impl LogGenerator {
    /// `rows` records over `[start_ns, end_ns)`, `batch` per request; counts
    /// those in `window` (`[lo, hi)` in ns).
    pub fn new(
        rows: u64,
        start_ns: i64,
        end_ns: i64,
        batch: usize,
        window: (i64, i64),
        seed: u64,
    ) -> Self {
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut resources = Vec::with_capacity(SERVICES.len() * PODS);
        let mut scopes = Vec::with_capacity(SERVICES.len());
        for (i, (name, lang)) in SERVICES.iter().enumerate() {
            let version = format!("1.{}.{}", i % 7, (i * 3) % 11);
            for pod in 0..PODS {
                let pod_name = format!("{name}-7d9f8c{i:02}-{}", random_suffix(&mut rng));
                let node = format!("node-{}", (i * PODS + pod) % 7);
                resources.push(Resource {
                    attributes: vec![
                        kv("service.name", string(name)),
                        kv("service.namespace", string("shop")),
                        kv("service.version", string(&version)),
                        kv("deployment.environment.name", string("production")),
                        kv("k8s.namespace.name", string("shop")),
                        kv("k8s.pod.name", string(&pod_name)),
                        kv("k8s.node.name", string(&node)),
                        kv("host.name", string(&node)),
                        kv("telemetry.sdk.language", string(lang)),
                        kv("telemetry.sdk.name", string("opentelemetry")),
                    ],
                    ..Default::default()
                });
            }
            scopes.push(InstrumentationScope {
                name: format!("shop.{name}"),
                version: version.clone(),
                ..Default::default()
            });
        }
        let weights: Vec<f64> = (0..SERVICES.len())
            .map(|i| 1.0 / ((i + 1) as f64).powf(0.8))
            .collect();
        let total: f64 = weights.iter().sum();
        let mut service_table = Vec::with_capacity(1024);
        let mut acc = 0.0;
        for (i, w) in weights.iter().enumerate() {
            acc += w / total;
            while service_table.len() < ((acc * 1024.0).round() as usize).min(1024) {
                service_table.push(i as u8);
            }
        }
        while service_table.len() < 1024 {
            service_table.push((SERVICES.len() - 1) as u8);
        }
        let mut severity_table = Vec::with_capacity(1000);
        for (i, (_, _, w)) in SEVERITIES.iter().enumerate() {
            severity_table.extend(std::iter::repeat_n(i as u8, *w as usize));
        }
        let traces = (0..SERVICES.len() * PODS)
            .map(|_| (id16(&mut rng), id8(&mut rng)))
            .collect();
        LogGenerator {
            rng,
            resources,
            scopes,
            service_table,
            severity_table,
            traces,
            start_ns,
            span_ns: end_ns - start_ns,
            rows,
            next: 0,
            batch,
            window,
            in_window: BTreeMap::new(),
        }
    }

    /// Rows of each `(service, severity)` generated so far inside the window.
    pub fn in_window(&self) -> &BTreeMap<Group, u64> {
        &self.in_window
    }

    /// The next request, or `None` once `rows` were made.
    pub fn next_request(&mut self) -> Option<ExportLogsServiceRequest> {
        if self.next >= self.rows {
            return None;
        }
        let n = (self.rows - self.next).min(self.batch as u64);
        let mut by_pod: Vec<Vec<LogRecord>> = vec![Vec::new(); self.resources.len()];
        let per_row = self.span_ns as f64 / self.rows as f64;
        let mut body = String::with_capacity(256);
        for i in 0..n {
            let g = self.next + i;
            let offset = ((g as f64 + self.rng.random::<f64>()) * per_row) as i64;
            let time = self.start_ns + offset.min(self.span_ns - 1);
            let service = usize::from(self.service_table[self.rng.random_range(0..1024)]);
            let pod = service * PODS + self.rng.random_range(0..PODS);
            let severity = usize::from(self.severity_table[self.rng.random_range(0..1000)]);
            let (severity_number, severity_text, _) = SEVERITIES[severity];
            if time >= self.window.0 && time < self.window.1 {
                *self
                    .in_window
                    .entry((SERVICES[service].0.to_owned(), severity_text.to_owned()))
                    .or_insert(0) += 1;
            }
            let (trace_id, span_id) = if self.rng.random_bool(TRACED) {
                if !self.rng.random_bool(SAME_TRACE) {
                    self.traces[pod] = (id16(&mut self.rng), id8(&mut self.rng));
                }
                let (t, s) = self.traces[pod];
                (t.to_vec(), s.to_vec())
            } else {
                (Vec::new(), Vec::new())
            };
            let route = ROUTES[self.rng.random_range(0..ROUTES.len())];
            let status = match severity {
                0 | 1 => 200,
                2 => [404, 429, 409][self.rng.random_range(0..3)],
                _ => [500, 502, 503, 504][self.rng.random_range(0..4)],
            };
            let millis = self.rng.random_range(1..2_000u32);
            self.body(&mut body, severity, route, status, millis);
            let attributes = self.attributes(route, status, millis);
            by_pod[pod].push(LogRecord {
                time_unix_nano: time as u64,
                observed_time_unix_nano: (time + self.rng.random_range(100_000..50_000_000)) as u64,
                severity_number,
                severity_text: severity_text.to_owned(),
                body: Some(AnyValue {
                    value: Some(any_value::Value::StringValue(body.clone())),
                }),
                attributes,
                flags: u32::from(!trace_id.is_empty()),
                trace_id,
                span_id,
                ..Default::default()
            });
        }
        self.next += n;
        let resource_logs = by_pod
            .into_iter()
            .enumerate()
            .filter(|(_, records)| !records.is_empty())
            .map(|(pod, log_records)| ResourceLogs {
                resource: Some(self.resources[pod].clone()),
                scope_logs: vec![ScopeLogs {
                    scope: Some(self.scopes[pod / PODS].clone()),
                    log_records,
                    ..Default::default()
                }],
                schema_url: "https://opentelemetry.io/schemas/1.26.0".to_owned(),
            })
            .collect();
        Some(ExportLogsServiceRequest { resource_logs })
    }

    /// A message from a template, padded with `key=value` fields to a
    /// length drawn from 60..=200 bytes.
    fn body(&mut self, out: &mut String, severity: usize, route: &str, status: u32, millis: u32) {
        out.clear();
        let rng = &mut self.rng;
        let id = rng.random_range(0..1_000_000u32);
        let user = rng.random_range(0..50_000u32);
        let word = WORDS[rng.random_range(0..WORDS.len())];
        let _ = match (severity, rng.random_range(0..3u8)) {
            (0, 0) => write!(out, "cache lookup {word}:{id} hit={}", rng.random_bool(0.8)),
            (0, 1) => write!(out, "acquired connection from pool (idle={})", id % 32),
            (0, _) => write!(
                out,
                "parsed request headers for {route} in {}us",
                millis * 3
            ),
            (1, 0) => write!(out, "{route} completed status={status} in {millis}ms"),
            (1, 1) => write!(
                out,
                "order {id} placed by user u-{user} total={}.{:02}",
                id % 900,
                id % 100
            ),
            (1, _) => write!(
                out,
                "scheduled job {word}-sync finished, {} items processed",
                id % 5_000
            ),
            (2, 0) => write!(
                out,
                "slow request on {route}: {millis}ms exceeds budget of 500ms"
            ),
            (2, 1) => write!(
                out,
                "retrying call to {word} service (attempt {} of 3)",
                id % 3 + 1
            ),
            (2, _) => write!(
                out,
                "rate limit close for user u-{user}: {} of 1000 requests",
                900 + id % 100
            ),
            (_, 0) => write!(
                out,
                "request to {route} failed with status {status}: upstream {word} unavailable"
            ),
            (_, 1) => write!(
                out,
                "database query timed out after {millis}ms (table={word}s, id={id})"
            ),
            (_, _) => write!(
                out,
                "unhandled exception in {}: connection reset by peer",
                FUNCTIONS[id as usize % FUNCTIONS.len()]
            ),
        };
        let target = rng.random_range(60..=200usize);
        while out.len() < target {
            let key = WORDS[rng.random_range(0..WORDS.len())];
            let _ = write!(out, " {key}={:x}", rng.random::<u32>());
        }
        out.truncate(target);
    }

    /// Three to six attributes: strings, an integer status code, a double
    /// duration.
    fn attributes(&mut self, route: &str, status: u32, millis: u32) -> Vec<KeyValue> {
        let n = self.rng.random_range(3..=6usize);
        let first = self.rng.random_range(0..8usize);
        let mut out = Vec::with_capacity(n);
        for k in 0..n {
            let attr = match (first + k) % 8 {
                0 => kv("http.route", string(route)),
                1 => kv(
                    "http.request.method",
                    string(METHODS[self.rng.random_range(0..METHODS.len())]),
                ),
                2 => kv(
                    "http.response.status_code",
                    any_value::Value::IntValue(i64::from(status)),
                ),
                3 => kv(
                    "user.id",
                    any_value::Value::StringValue(format!(
                        "u-{}",
                        self.rng.random_range(0..50_000u32)
                    )),
                ),
                4 => kv(
                    "code.function",
                    string(FUNCTIONS[self.rng.random_range(0..FUNCTIONS.len())]),
                ),
                5 => kv(
                    "thread.name",
                    any_value::Value::StringValue(format!(
                        "worker-{}",
                        self.rng.random_range(0..16u32)
                    )),
                ),
                6 => kv(
                    "duration_ms",
                    any_value::Value::DoubleValue(f64::from(millis) * 1.013),
                ),
                _ => kv(
                    "retry.count",
                    any_value::Value::IntValue(self.rng.random_range(0..3)),
                ),
            };
            out.push(attr);
        }
        out
    }
}

fn string(v: &str) -> any_value::Value {
    any_value::Value::StringValue(v.to_owned())
}

fn random_suffix(rng: &mut SmallRng) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..5)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

/// A random trace id, never all zero.
fn id16(rng: &mut SmallRng) -> [u8; 16] {
    let mut id: [u8; 16] = rng.random();
    id[0] |= 1;
    id
}

/// A random span id, never all zero.
fn id8(rng: &mut SmallRng) -> [u8; 8] {
    let mut id: [u8; 8] = rng.random();
    id[0] |= 1;
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The generator makes exactly the rows asked, in order over the span,
    /// with bodies of 60..=200 bytes, and counts the window's rows.
    #[test]
    fn rows_follow_the_shape() {
        let hour = 3_600_000_000_000i64;
        let mut g = LogGenerator::new(20_000, 0, 4 * hour, 4096, (hour, 2 * hour), 7);
        let mut rows = 0u64;
        let mut in_window = 0u64;
        let mut last = i64::MIN;
        while let Some(req) = g.next_request() {
            let mut times = Vec::new();
            for r in &req.resource_logs {
                for s in &r.scope_logs {
                    for l in &s.log_records {
                        rows += 1;
                        let t = l.time_unix_nano as i64;
                        assert!((0..4 * hour).contains(&t));
                        in_window += u64::from((hour..2 * hour).contains(&t));
                        let Some(any_value::Value::StringValue(body)) =
                            l.body.as_ref().and_then(|b| b.value.as_ref())
                        else {
                            panic!("string body");
                        };
                        assert!((60..=200).contains(&body.len()), "{}", body.len());
                        assert!((3..=6).contains(&l.attributes.len()));
                        times.push(t);
                    }
                }
            }
            let min = times.iter().copied().min().unwrap_or(last);
            assert!(min >= last, "batches follow each other in time");
            last = times.iter().copied().max().unwrap_or(last);
        }
        assert_eq!(rows, 20_000);
        assert_eq!(g.in_window().values().sum::<u64>(), in_window);
        assert!(in_window > 4_000 && in_window < 6_000, "{in_window}");
    }
}
