//! OTLP export requests for the three signals.
//!
//! Records are made with [`log`], [`span`] and [`gauge`] / [`sum`] /
//! [`histogram`] (fill other fields with struct update syntax), grouped
//! under one resource and scope by a [`Group`], and a group or several make
//! a request. [`logs_json`] and friends write a request as OTLP/JSON;
//! [`spans_of`] and friends walk requests back record by record, and
//! [`count_spans`] and friends count a request's records.
//!
//! ```
//! use weir_testkit::{kv, otlp};
//! use opentelemetry_proto::tonic::logs::v1::LogRecord;
//!
//! let request = otlp::Group::new([
//!     otlp::log(1_700_000_000_000_000_000, 9, "started"),
//!     LogRecord {
//!         attributes: vec![kv::int("attempt", 2)],
//!         ..otlp::log(1_700_000_000_000_000_001, 13, "retrying")
//!     },
//! ])
//! .service("checkout")
//! .logs();
//! assert_eq!(otlp::count_log_records(&request), 2);
//! assert!(otlp::logs_json(&request).contains(r#""stringValue":"checkout""#));
//! ```

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum, metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

use crate::kv;

/// The records of one resource and one instrumentation scope: one
/// `ResourceLogs` / `ResourceSpans` / `ResourceMetrics` of a request.
#[derive(Debug, Clone, PartialEq)]
pub struct Group<T> {
    /// The resource the records come from; `None` leaves it unset.
    pub resource: Option<Resource>,
    /// The instrumentation scope; `None` leaves it unset.
    pub scope: Option<InstrumentationScope>,
    /// The records: log records, spans or metrics.
    pub records: Vec<T>,
}

impl<T> Group<T> {
    /// `records` with neither resource nor scope.
    pub fn new(records: impl IntoIterator<Item = T>) -> Self {
        Group {
            resource: None,
            scope: None,
            records: records.into_iter().collect(),
        }
    }

    /// The records come from a resource with these attributes.
    pub fn resource(mut self, attributes: Vec<KeyValue>) -> Self {
        self.resource = Some(Resource {
            attributes,
            ..Default::default()
        });
        self
    }

    /// The records come from service `name` (a resource holding only
    /// `service.name`).
    pub fn service(self, name: &str) -> Self {
        self.resource(vec![kv::string("service.name", name)])
    }

    /// The records were made by instrumentation scope `name` `version`.
    pub fn scope(mut self, name: &str, version: &str) -> Self {
        self.scope = Some(InstrumentationScope {
            name: name.to_string(),
            version: version.to_string(),
            ..Default::default()
        });
        self
    }
}

impl Group<LogRecord> {
    /// A logs request of this group alone.
    pub fn logs(self) -> ExportLogsServiceRequest {
        logs_request([self])
    }
}

impl Group<Span> {
    /// A traces request of this group alone.
    pub fn spans(self) -> ExportTraceServiceRequest {
        spans_request([self])
    }
}

impl Group<Metric> {
    /// A metrics request of this group alone.
    pub fn metrics(self) -> ExportMetricsServiceRequest {
        metrics_request([self])
    }
}

/// A logs request, one `ResourceLogs` per group.
pub fn logs_request(
    groups: impl IntoIterator<Item = Group<LogRecord>>,
) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: groups
            .into_iter()
            .map(|g| ResourceLogs {
                resource: g.resource,
                scope_logs: vec![ScopeLogs {
                    scope: g.scope,
                    log_records: g.records,
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect(),
    }
}

/// A traces request, one `ResourceSpans` per group.
pub fn spans_request(groups: impl IntoIterator<Item = Group<Span>>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: groups
            .into_iter()
            .map(|g| ResourceSpans {
                resource: g.resource,
                scope_spans: vec![ScopeSpans {
                    scope: g.scope,
                    spans: g.records,
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect(),
    }
}

/// A metrics request, one `ResourceMetrics` per group.
pub fn metrics_request(
    groups: impl IntoIterator<Item = Group<Metric>>,
) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: groups
            .into_iter()
            .map(|g| ResourceMetrics {
                resource: g.resource,
                scope_metrics: vec![ScopeMetrics {
                    scope: g.scope,
                    metrics: g.records,
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect(),
    }
}

/// A log record at `time_unix_nano` with `severity_number` and a string
/// `body`; no severity text, attributes or ids.
pub fn log(time_unix_nano: u64, severity_number: i32, body: &str) -> LogRecord {
    LogRecord {
        time_unix_nano,
        severity_number,
        body: Some(kv::text(body)),
        ..Default::default()
    }
}

/// A span `name` of trace `trace_id` (16 bytes) with id `span_id` (8
/// bytes), from `start_unix_nano` to `end_unix_nano`; no parent, kind,
/// attributes or status.
pub fn span(
    trace_id: &[u8],
    span_id: &[u8],
    name: &str,
    start_unix_nano: u64,
    end_unix_nano: u64,
) -> Span {
    Span {
        trace_id: trace_id.to_vec(),
        span_id: span_id.to_vec(),
        name: name.to_string(),
        start_time_unix_nano: start_unix_nano,
        end_time_unix_nano: end_unix_nano,
        ..Default::default()
    }
}

/// A gauge `name` of `points`.
pub fn gauge(name: &str, points: Vec<NumberDataPoint>) -> Metric {
    Metric {
        name: name.to_string(),
        data: Some(metric::Data::Gauge(Gauge {
            data_points: points,
        })),
        ..Default::default()
    }
}

/// A sum `name` of `points`, with its temporality and monotonicity.
pub fn sum(
    name: &str,
    points: Vec<NumberDataPoint>,
    temporality: AggregationTemporality,
    monotonic: bool,
) -> Metric {
    Metric {
        name: name.to_string(),
        data: Some(metric::Data::Sum(Sum {
            data_points: points,
            aggregation_temporality: temporality as i32,
            is_monotonic: monotonic,
        })),
        ..Default::default()
    }
}

/// A histogram `name` of `points`, with its temporality.
pub fn histogram(
    name: &str,
    points: Vec<HistogramDataPoint>,
    temporality: AggregationTemporality,
) -> Metric {
    Metric {
        name: name.to_string(),
        data: Some(metric::Data::Histogram(Histogram {
            data_points: points,
            aggregation_temporality: temporality as i32,
        })),
        ..Default::default()
    }
}

/// An int data point at `time_unix_nano`.
pub fn int_point(time_unix_nano: u64, value: i64) -> NumberDataPoint {
    NumberDataPoint {
        time_unix_nano,
        value: Some(number_data_point::Value::AsInt(value)),
        ..Default::default()
    }
}

/// A double data point at `time_unix_nano`.
pub fn double_point(time_unix_nano: u64, value: f64) -> NumberDataPoint {
    NumberDataPoint {
        time_unix_nano,
        value: Some(number_data_point::Value::AsDouble(value)),
        ..Default::default()
    }
}

/// `request` as OTLP/JSON (ids in hex, 64-bit integers as strings).
pub fn logs_json(request: &ExportLogsServiceRequest) -> String {
    serde_json::to_string(request).expect("an OTLP request serialises")
}

/// `request` as OTLP/JSON (ids in hex, 64-bit integers as strings).
pub fn spans_json(request: &ExportTraceServiceRequest) -> String {
    serde_json::to_string(request).expect("an OTLP request serialises")
}

/// `request` as OTLP/JSON (ids in hex, 64-bit integers as strings).
pub fn metrics_json(request: &ExportMetricsServiceRequest) -> String {
    serde_json::to_string(request).expect("an OTLP request serialises")
}

/// Every span of `requests`, in order.
pub fn spans_of<'a>(
    requests: impl IntoIterator<Item = &'a ExportTraceServiceRequest>,
) -> impl Iterator<Item = &'a Span> {
    requests
        .into_iter()
        .flat_map(|r| &r.resource_spans)
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
}

/// Every log record of `requests`, in order.
pub fn log_records_of<'a>(
    requests: impl IntoIterator<Item = &'a ExportLogsServiceRequest>,
) -> impl Iterator<Item = &'a LogRecord> {
    requests
        .into_iter()
        .flat_map(|r| &r.resource_logs)
        .flat_map(|r| &r.scope_logs)
        .flat_map(|s| &s.log_records)
}

/// Every metric of `requests`, in order.
pub fn metrics_of<'a>(
    requests: impl IntoIterator<Item = &'a ExportMetricsServiceRequest>,
) -> impl Iterator<Item = &'a Metric> {
    requests
        .into_iter()
        .flat_map(|r| &r.resource_metrics)
        .flat_map(|r| &r.scope_metrics)
        .flat_map(|s| &s.metrics)
}

/// Every histogram data point of `metrics`, in order.
pub fn histogram_points_of<'a>(
    metrics: impl IntoIterator<Item = &'a Metric>,
) -> impl Iterator<Item = &'a HistogramDataPoint> {
    metrics
        .into_iter()
        .filter_map(|m| match &m.data {
            Some(metric::Data::Histogram(h)) => Some(&h.data_points),
            _ => None,
        })
        .flatten()
}

/// The data points of `metric`, of whatever type.
pub fn data_points(metric: &Metric) -> usize {
    match &metric.data {
        Some(metric::Data::Gauge(g)) => g.data_points.len(),
        Some(metric::Data::Sum(s)) => s.data_points.len(),
        Some(metric::Data::Histogram(h)) => h.data_points.len(),
        Some(metric::Data::ExponentialHistogram(h)) => h.data_points.len(),
        Some(metric::Data::Summary(s)) => s.data_points.len(),
        None => 0,
    }
}

/// Records in a traces request: its spans.
pub fn count_spans(request: &ExportTraceServiceRequest) -> usize {
    request
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .map(|s| s.spans.len())
        .sum()
}

/// Records in a logs request: its log records.
pub fn count_log_records(request: &ExportLogsServiceRequest) -> usize {
    request
        .resource_logs
        .iter()
        .flat_map(|r| &r.scope_logs)
        .map(|s| s.log_records.len())
        .sum()
}

/// Records in a metrics request: its data points, of every metric type.
pub fn count_data_points(request: &ExportMetricsServiceRequest) -> usize {
    metrics_of([request]).map(data_points).sum()
}

#[cfg(test)]
mod tests {
    use weir_core::convert::json;

    use super::*;

    /// Guarantees: what [`spans_json`], [`logs_json`] and [`metrics_json`]
    /// write, Weir's OTLP/JSON decoder reads back as the same request.
    #[test]
    fn json_reads_back_in_weir() {
        let spans = Group::new([Span {
            kind: 2,
            attributes: vec![kv::string("http.route", "/api"), kv::int("i", 3)],
            ..span(&[7; 16], &[1, 2, 3, 4, 5, 6, 7, 8], "op", 10, 20)
        }])
        .service("cart")
        .scope("io.test", "1.0")
        .spans();
        let read = json::decode_spans(spans_json(&spans).as_bytes()).expect("decodes");
        assert_eq!(read, spans);

        let logs = Group::new([LogRecord {
            attributes: vec![kv::double("x", 0.5), kv::boolean("ok", true)],
            ..log(5, 9, "hello")
        }])
        .logs();
        let read = json::decode_logs(logs_json(&logs).as_bytes()).expect("decodes");
        assert_eq!(read, logs);

        let metrics = Group::new([
            gauge("g", vec![double_point(5, 1.5)]),
            sum(
                "s",
                vec![int_point(5, 7)],
                AggregationTemporality::Cumulative,
                true,
            ),
            histogram(
                "h",
                vec![HistogramDataPoint {
                    time_unix_nano: 5,
                    count: 3,
                    sum: Some(1.0),
                    bucket_counts: vec![1, 2],
                    explicit_bounds: vec![0.5],
                    ..Default::default()
                }],
                AggregationTemporality::Delta,
            ),
        ])
        .service("cart")
        .metrics();
        let read = json::decode_metrics(metrics_json(&metrics).as_bytes()).expect("decodes");
        assert_eq!(read, metrics);
        assert_eq!(count_data_points(&metrics), 3);
        assert_eq!(histogram_points_of(metrics_of([&metrics])).count(), 1);
    }
}
