//! Synthetic OTLP data: spans, logs and metric data points of a chosen shape.
//!
//! A [`Generator`] turns a [`Shape`] (records per request, attributes per
//! record, value length, resource attributes, number of services) into OTLP
//! export requests. Records of one request are spread over `services`
//! resources, one `service.name` each, so a request looks like what an agent
//! forwarding several applications sends. Everything comes from one seeded
//! RNG: the same seed gives the same requests.
//!
//! Ids follow the OTLP rules: trace ids are 16 bytes and span ids 8 bytes,
//! never all zero, and distinct within a generator. Spans come in traces of
//! [`SPANS_PER_TRACE`]: the first span of a trace is its root and the others
//! are its children.

use std::collections::HashSet;
use std::time::{SystemTime, UNIX_EPOCH};

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
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use weir_testkit::kv;

/// Spans per generated trace: one root and `SPANS_PER_TRACE - 1` children.
pub const SPANS_PER_TRACE: usize = 8;

/// Data points per generated metric (the last metric of a request may hold fewer).
pub const POINTS_PER_METRIC: usize = 8;

/// Name of the instrumentation scope on every generated record.
pub const SCOPE_NAME: &str = "weir-loadgen";

/// Explicit bucket bounds of generated histograms (milliseconds).
const HISTOGRAM_BOUNDS: [f64; 10] = [
    5.0, 10.0, 25.0, 50.0, 75.0, 100.0, 250.0, 500.0, 1000.0, 2500.0,
];

/// Realistic attribute keys used first; further attributes are `attr.NN`.
const RECORD_KEYS: [&str; 8] = [
    "http.request.method",
    "http.route",
    "http.response.status_code",
    "url.path",
    "server.address",
    "user_agent.original",
    "net.peer.name",
    "enduser.id",
];

/// Realistic resource attribute keys after `service.name`; further ones are `resource.NN`.
const RESOURCE_KEYS: [&str; 7] = [
    "service.version",
    "service.instance.id",
    "host.name",
    "host.arch",
    "os.type",
    "deployment.environment.name",
    "cloud.region",
];

const SPAN_NAMES: [&str; 6] = [
    "GET /api/users/{id}",
    "POST /api/orders",
    "SELECT orders",
    "redis GET",
    "kafka publish",
    "render template",
];

const METRIC_NAMES: [&str; 6] = [
    "http.server.request.duration",
    "http.server.active_requests",
    "process.cpu.time",
    "db.client.connections.usage",
    "messaging.publish.messages",
    "system.memory.usage",
];

/// Upper bound on `--attributes` and `--resource-attributes`, to keep a typo from eating memory.
pub const MAX_ATTRIBUTES: usize = 1024;

/// How every generated request looks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    /// Records (spans, log records or metric data points) per request.
    pub batch_size: usize,
    /// Attributes on each record (span, log record, data point).
    pub attributes: usize,
    /// Length in bytes of each string attribute value.
    pub attribute_value_len: usize,
    /// Distinct values each record attribute key takes.
    pub attribute_cardinality: usize,
    /// Attributes on each resource, `service.name` included.
    pub resource_attributes: usize,
    /// Distinct `service.name` values; a request spreads its records over them.
    pub services: usize,
}

impl Default for Shape {
    fn default() -> Self {
        Self {
            batch_size: 512,
            attributes: 10,
            attribute_value_len: 16,
            attribute_cardinality: 64,
            resource_attributes: 8,
            services: 4,
        }
    }
}

/// Makes OTLP export requests of one [`Shape`] from a seeded RNG.
#[derive(Debug)]
pub struct Generator {
    shape: Shape,
    rng: SmallRng,
    /// Per record attribute key: its name and the values it draws from.
    record_attrs: Vec<(String, Vec<String>)>,
    /// Per service: its resource.
    resources: Vec<Resource>,
    scope: InstrumentationScope,
    /// Trace ids handed out so far, to keep them distinct.
    trace_ids: HashSet<[u8; 16]>,
    /// Span ids handed out so far, to keep them distinct.
    span_ids: HashSet<[u8; 8]>,
    /// Base timestamp (ns since the epoch) of generated records.
    base_time_ns: u64,
    /// Records generated so far; spaces timestamps out.
    sequence: u64,
}

impl Generator {
    /// A generator for `shape`, seeded with `seed`.
    ///
    /// A shape with zero services or a zero cardinality is taken as one.
    pub fn new(shape: Shape, seed: u64) -> Self {
        let mut rng = SmallRng::seed_from_u64(seed);
        let services = shape.services.max(1);
        let cardinality = shape.attribute_cardinality.max(1);
        let value_len = shape.attribute_value_len;
        let record_attrs = (0..shape.attributes)
            .map(|i| {
                let key = RECORD_KEYS
                    .get(i)
                    .map_or_else(|| format!("attr.{i:02}"), |k| (*k).to_owned());
                let values = (0..cardinality)
                    .map(|_| random_text(&mut rng, value_len))
                    .collect();
                (key, values)
            })
            .collect();
        let resources = (0..services)
            .map(|s| {
                let mut attributes = Vec::with_capacity(shape.resource_attributes);
                if shape.resource_attributes > 0 {
                    attributes.push(kv::string("service.name", format!("loadgen-service-{s}")));
                }
                for i in 1..shape.resource_attributes {
                    let key = RESOURCE_KEYS
                        .get(i - 1)
                        .map_or_else(|| format!("resource.{i:02}"), |k| (*k).to_owned());
                    attributes.push(kv::string(&key, random_text(&mut rng, value_len)));
                }
                Resource {
                    attributes,
                    ..Default::default()
                }
            })
            .collect();
        let scope = InstrumentationScope {
            name: SCOPE_NAME.to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            ..Default::default()
        };
        let base_time_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        Self {
            shape: Shape {
                services,
                attribute_cardinality: cardinality,
                ..shape
            },
            rng,
            record_attrs,
            resources,
            scope,
            trace_ids: HashSet::new(),
            span_ids: HashSet::new(),
            base_time_ns,
            sequence: 0,
        }
    }

    /// The shape this generator follows.
    pub fn shape(&self) -> &Shape {
        &self.shape
    }

    /// How many of a request's `batch_size` records go to service `service`.
    fn records_for_service(&self, service: usize) -> usize {
        let services = self.shape.services;
        let base = self.shape.batch_size / services;
        base + usize::from(service < self.shape.batch_size % services)
    }

    /// The next timestamp: records are spaced one microsecond apart.
    fn next_time(&mut self) -> u64 {
        self.sequence += 1;
        self.base_time_ns.saturating_add(self.sequence * 1_000)
    }

    fn record_attributes(&mut self) -> Vec<KeyValue> {
        let rng = &mut self.rng;
        self.record_attrs
            .iter()
            .map(|(key, values)| {
                let value = &values[rng.random_range(0..values.len())];
                kv::string(key, value.clone())
            })
            .collect()
    }

    fn trace_id(&mut self) -> [u8; 16] {
        loop {
            let id: [u8; 16] = self.rng.random();
            if id != [0; 16] && self.trace_ids.insert(id) {
                return id;
            }
        }
    }

    fn span_id(&mut self) -> [u8; 8] {
        loop {
            let id: [u8; 8] = self.rng.random();
            if id != [0; 8] && self.span_ids.insert(id) {
                return id;
            }
        }
    }

    /// One export request of `batch_size` spans.
    pub fn spans(&mut self) -> ExportTraceServiceRequest {
        let mut resource_spans = Vec::with_capacity(self.shape.services);
        for service in 0..self.shape.services {
            let n = self.records_for_service(service);
            if n == 0 {
                continue;
            }
            let mut spans = Vec::with_capacity(n);
            let mut trace_id = [0u8; 16];
            let mut root_id = [0u8; 8];
            for i in 0..n {
                let span_id = self.span_id();
                let parent = if i % SPANS_PER_TRACE == 0 {
                    trace_id = self.trace_id();
                    root_id = span_id;
                    Vec::new()
                } else {
                    root_id.to_vec()
                };
                let start = self.next_time();
                let duration_ns = self.rng.random_range(50_000..50_000_000);
                let error = self.rng.random_ratio(1, 100);
                let name = SPAN_NAMES[self.rng.random_range(0..SPAN_NAMES.len())];
                spans.push(Span {
                    trace_id: trace_id.to_vec(),
                    span_id: span_id.to_vec(),
                    parent_span_id: parent,
                    flags: 1,
                    name: name.to_owned(),
                    kind: if i % SPANS_PER_TRACE == 0 { 2 } else { 3 },
                    start_time_unix_nano: start,
                    end_time_unix_nano: start + duration_ns,
                    attributes: self.record_attributes(),
                    status: Some(Status {
                        message: if error {
                            "boom".to_owned()
                        } else {
                            String::new()
                        },
                        code: if error {
                            status::StatusCode::Error as i32
                        } else {
                            status::StatusCode::Unset as i32
                        },
                    }),
                    ..Default::default()
                });
            }
            resource_spans.push(ResourceSpans {
                resource: Some(self.resources[service].clone()),
                scope_spans: vec![ScopeSpans {
                    scope: Some(self.scope.clone()),
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            });
        }
        ExportTraceServiceRequest { resource_spans }
    }

    /// One export request of `batch_size` log records.
    pub fn logs(&mut self) -> ExportLogsServiceRequest {
        const SEVERITIES: [(i32, &str); 4] =
            [(5, "DEBUG"), (9, "INFO"), (13, "WARN"), (17, "ERROR")];
        let mut resource_logs = Vec::with_capacity(self.shape.services);
        for service in 0..self.shape.services {
            let n = self.records_for_service(service);
            if n == 0 {
                continue;
            }
            let mut log_records = Vec::with_capacity(n);
            for _ in 0..n {
                let time = self.next_time();
                let (severity_number, severity_text) =
                    SEVERITIES[self.rng.random_range(0..SEVERITIES.len())];
                let correlated = self.rng.random_bool(0.5);
                let (trace_id, span_id) = if correlated {
                    (self.trace_id().to_vec(), self.span_id().to_vec())
                } else {
                    (Vec::new(), Vec::new())
                };
                let body = format!(
                    "request handled in {} ms user={} path=/api/v1/items/{}",
                    self.rng.random_range(1..2_000),
                    random_text(&mut self.rng, 8),
                    self.rng.random_range(0..100_000)
                );
                log_records.push(LogRecord {
                    time_unix_nano: time,
                    observed_time_unix_nano: time + 1_000,
                    severity_number,
                    severity_text: severity_text.to_owned(),
                    body: Some(AnyValue {
                        value: Some(any_value::Value::StringValue(body)),
                    }),
                    attributes: self.record_attributes(),
                    flags: u32::from(correlated),
                    trace_id,
                    span_id,
                    ..Default::default()
                });
            }
            resource_logs.push(ResourceLogs {
                resource: Some(self.resources[service].clone()),
                scope_logs: vec![ScopeLogs {
                    scope: Some(self.scope.clone()),
                    log_records,
                    ..Default::default()
                }],
                ..Default::default()
            });
        }
        ExportLogsServiceRequest { resource_logs }
    }

    /// One export request of `batch_size` metric data points, in gauges,
    /// monotonic sums and histograms of up to [`POINTS_PER_METRIC`] points each.
    pub fn metrics(&mut self) -> ExportMetricsServiceRequest {
        let mut resource_metrics = Vec::with_capacity(self.shape.services);
        for service in 0..self.shape.services {
            let mut left = self.records_for_service(service);
            if left == 0 {
                continue;
            }
            let mut metrics = Vec::new();
            let mut kind = 0usize;
            while left > 0 {
                let points = left.min(POINTS_PER_METRIC);
                left -= points;
                let name = METRIC_NAMES[kind % METRIC_NAMES.len()];
                let data = match kind % 3 {
                    0 => metric::Data::Sum(Sum {
                        data_points: (0..points).map(|_| self.number_point(true)).collect(),
                        aggregation_temporality: AggregationTemporality::Cumulative as i32,
                        is_monotonic: true,
                    }),
                    1 => metric::Data::Gauge(Gauge {
                        data_points: (0..points).map(|_| self.number_point(false)).collect(),
                    }),
                    _ => metric::Data::Histogram(Histogram {
                        data_points: (0..points).map(|_| self.histogram_point()).collect(),
                        aggregation_temporality: AggregationTemporality::Cumulative as i32,
                    }),
                };
                metrics.push(Metric {
                    name: name.to_owned(),
                    description: format!("{name} (synthetic)"),
                    unit: if kind % 3 == 2 { "ms" } else { "1" }.to_owned(),
                    data: Some(data),
                    ..Default::default()
                });
                kind += 1;
            }
            resource_metrics.push(ResourceMetrics {
                resource: Some(self.resources[service].clone()),
                scope_metrics: vec![ScopeMetrics {
                    scope: Some(self.scope.clone()),
                    metrics,
                    ..Default::default()
                }],
                ..Default::default()
            });
        }
        ExportMetricsServiceRequest { resource_metrics }
    }

    fn number_point(&mut self, int: bool) -> NumberDataPoint {
        let time = self.next_time();
        let value = if int {
            number_data_point::Value::AsInt(self.rng.random_range(0..1_000_000))
        } else {
            number_data_point::Value::AsDouble(self.rng.random_range(0.0..100.0))
        };
        NumberDataPoint {
            attributes: self.record_attributes(),
            start_time_unix_nano: self.base_time_ns,
            time_unix_nano: time,
            value: Some(value),
            ..Default::default()
        }
    }

    fn histogram_point(&mut self) -> HistogramDataPoint {
        let time = self.next_time();
        let bucket_counts: Vec<u64> = (0..=HISTOGRAM_BOUNDS.len())
            .map(|_| self.rng.random_range(0..100))
            .collect();
        let count = bucket_counts.iter().sum();
        HistogramDataPoint {
            attributes: self.record_attributes(),
            start_time_unix_nano: self.base_time_ns,
            time_unix_nano: time,
            count,
            // Roughly each bucket's midpoint times its count.
            sum: Some(count as f64 * 120.0),
            bucket_counts,
            explicit_bounds: HISTOGRAM_BOUNDS.to_vec(),
            min: Some(0.5),
            max: Some(3_000.0),
            ..Default::default()
        }
    }
}

/// `len` random ASCII letters and digits.
fn random_text(rng: &mut SmallRng, len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    (0..len)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

#[cfg(test)]
mod tests {
    use weir_testkit::otlp::{count_data_points, count_log_records as count_logs, count_spans};

    use super::*;

    fn string_value(kv: &KeyValue) -> &str {
        match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
            Some(any_value::Value::StringValue(s)) => s,
            other => panic!("attribute {} is not a string: {other:?}", kv.key),
        }
    }

    /// A spans request holds exactly `batch_size` spans, spread evenly over the services,
    /// each with the asked number of attributes of the asked length.
    #[test]
    fn spans_follow_the_shape() {
        let shape = Shape {
            batch_size: 103,
            attributes: 12,
            attribute_value_len: 5,
            resource_attributes: 9,
            services: 4,
            ..Shape::default()
        };
        let mut g = Generator::new(shape, 1);
        let req = g.spans();
        assert_eq!(count_spans(&req), 103);
        assert_eq!(req.resource_spans.len(), 4);
        let per_service: Vec<usize> = req
            .resource_spans
            .iter()
            .map(|r| r.scope_spans[0].spans.len())
            .collect();
        assert_eq!(per_service, vec![26, 26, 26, 25]);
        let services: HashSet<&str> = req
            .resource_spans
            .iter()
            .map(|r| {
                let attrs = &r.resource.as_ref().expect("resource is set").attributes;
                assert_eq!(attrs.len(), 9);
                assert_eq!(attrs[0].key, "service.name");
                string_value(&attrs[0])
            })
            .collect();
        assert_eq!(services.len(), 4);
        for span in req
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans[0].spans)
        {
            assert_eq!(span.attributes.len(), 12);
            assert!(span.attributes.iter().all(|kv| string_value(kv).len() == 5));
            assert!(span.end_time_unix_nano > span.start_time_unix_nano);
        }
    }

    /// Trace ids are 16 bytes, span ids 8, none all zero, all distinct across requests,
    /// and children point at their trace's root.
    #[test]
    fn span_ids_are_valid_and_distinct() {
        let mut g = Generator::new(Shape::default(), 7);
        let mut spans = Vec::new();
        for _ in 0..4 {
            let req = g.spans();
            spans.extend(
                req.resource_spans
                    .into_iter()
                    .flat_map(|r| r.scope_spans)
                    .flat_map(|s| s.spans),
            );
        }
        assert_eq!(spans.len(), 4 * 512);
        let mut span_ids = HashSet::new();
        let mut roots = std::collections::HashMap::new();
        for s in &spans {
            assert_eq!(s.trace_id.len(), 16);
            assert_eq!(s.span_id.len(), 8);
            assert!(s.trace_id.iter().any(|b| *b != 0));
            assert!(s.span_id.iter().any(|b| *b != 0));
            assert!(span_ids.insert(s.span_id.clone()), "duplicate span id");
            if s.parent_span_id.is_empty() {
                assert!(
                    roots
                        .insert(s.trace_id.clone(), s.span_id.clone())
                        .is_none(),
                    "two roots share a trace id"
                );
            }
        }
        for s in &spans {
            if !s.parent_span_id.is_empty() {
                assert_eq!(s.parent_span_id.len(), 8);
                assert_eq!(roots.get(&s.trace_id), Some(&s.parent_span_id));
            }
        }
        assert_eq!(roots.len(), 4 * 4 * (128 / SPANS_PER_TRACE));
    }

    /// Logs and metrics requests also hold exactly `batch_size` records with the asked attributes.
    #[test]
    fn logs_and_metrics_follow_the_shape() {
        let shape = Shape {
            batch_size: 50,
            attributes: 3,
            attribute_value_len: 20,
            services: 3,
            ..Shape::default()
        };
        let mut g = Generator::new(shape, 3);
        let logs = g.logs();
        assert_eq!(count_logs(&logs), 50);
        for r in logs
            .resource_logs
            .iter()
            .flat_map(|r| &r.scope_logs[0].log_records)
        {
            assert_eq!(r.attributes.len(), 3);
            assert!(r.attributes.iter().all(|kv| string_value(kv).len() == 20));
            assert!(r.trace_id.is_empty() || r.trace_id.len() == 16);
            assert!(r.span_id.is_empty() || r.span_id.len() == 8);
            assert!(r.body.is_some());
        }
        let metrics = g.metrics();
        assert_eq!(count_data_points(&metrics), 50);
        let kinds: HashSet<&str> = metrics
            .resource_metrics
            .iter()
            .flat_map(|r| &r.scope_metrics[0].metrics)
            .map(|m| match m.data {
                Some(metric::Data::Sum(_)) => "sum",
                Some(metric::Data::Gauge(_)) => "gauge",
                Some(metric::Data::Histogram(_)) => "histogram",
                _ => "other",
            })
            .collect();
        assert_eq!(kinds, HashSet::from(["sum", "gauge", "histogram"]));
    }

    /// Attribute values are drawn from `attribute_cardinality` values per key.
    #[test]
    fn attribute_cardinality_bounds_distinct_values() {
        let shape = Shape {
            attribute_cardinality: 3,
            ..Shape::default()
        };
        let mut g = Generator::new(shape, 11);
        let req = g.spans();
        let values: HashSet<&str> = req
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans[0].spans)
            .map(|s| string_value(&s.attributes[0]))
            .collect();
        assert_eq!(values.len(), 3);
    }

    /// The same seed makes the same data; another seed makes other data.
    #[test]
    fn generation_is_deterministic_per_seed() {
        let a = Generator::new(Shape::default(), 5).spans();
        let b = Generator::new(Shape::default(), 5).spans();
        let c = Generator::new(Shape::default(), 6).spans();
        let ids = |r: &ExportTraceServiceRequest| -> Vec<Vec<u8>> {
            r.resource_spans
                .iter()
                .flat_map(|r| &r.scope_spans[0].spans)
                .map(|s| s.span_id.clone())
                .collect()
        };
        assert_eq!(ids(&a), ids(&b));
        assert_ne!(ids(&a), ids(&c));
    }
}
