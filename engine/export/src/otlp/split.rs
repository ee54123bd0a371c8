//! Cutting an OTLP export request into requests of at most a given size,
//! keeping each record under its resource and scope. Records are spans,
//! log records or metrics (a metric's points are not cut apart).

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{Metric, ResourceMetrics, ScopeMetrics};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;

/// An OTLP export request: resources holding scopes holding records.
pub(crate) trait Request: Message + Default + Sized {
    /// `ResourceSpans`, `ResourceLogs` or `ResourceMetrics`.
    type Resource: Message + Default + Clone;
    /// `ScopeSpans`, `ScopeLogs` or `ScopeMetrics`.
    type Scope: Message + Default + Clone;
    /// `Span`, `LogRecord` or `Metric`.
    type Record: Message;
    /// The resources.
    fn resources(&mut self) -> &mut Vec<Self::Resource>;
    /// A resource's scopes.
    fn scopes(resource: &mut Self::Resource) -> &mut Vec<Self::Scope>;
    /// A scope's records.
    fn records(scope: &mut Self::Scope) -> &mut Vec<Self::Record>;
    /// The rows a record stands for: 1, or a metric's data points.
    fn rows(record: &Self::Record) -> u64;
}

/// The requests of a batch with their rows, and the rows of records too
/// large for any request.
#[derive(Debug)]
pub(crate) struct Split<R> {
    pub requests: Vec<(R, u64)>,
    pub too_large: u64,
}

/// The bytes of a field's tag and length before a message of `len`.
fn delimited(len: usize) -> usize {
    1 + prost::length_delimiter_len(len) + len
}

/// The most bytes a message of `len` may take as a field once records are
/// added to it (the length's varint grows up to 5 bytes).
fn open_delimited(len: usize) -> usize {
    1 + 5 + len
}

/// Cuts `request` into requests of at most `max_bytes` encoded bytes.
pub(crate) fn split<R: Request>(mut request: R, max_bytes: usize) -> Split<R> {
    if request.encoded_len() <= max_bytes {
        let rows = count_rows(&mut request);
        let requests = if rows > 0 {
            vec![(request, rows)]
        } else {
            Vec::new()
        };
        return Split {
            requests,
            too_large: 0,
        };
    }
    let mut requests = Vec::new();
    let mut too_large = 0;
    let mut current = R::default();
    let mut bytes = 0usize;
    let mut rows = 0u64;
    for mut resource in std::mem::take(request.resources()) {
        let scopes = std::mem::take(R::scopes(&mut resource));
        let resource_size = open_delimited(resource.encoded_len());
        let mut resource_open = false;
        for mut scope in scopes {
            let records = std::mem::take(R::records(&mut scope));
            let scope_size = open_delimited(scope.encoded_len());
            let mut scope_open = false;
            for record in records {
                let size = delimited(record.encoded_len());
                if resource_size + scope_size + size > max_bytes {
                    too_large += R::rows(&record);
                    continue;
                }
                let adds = size
                    + if scope_open { 0 } else { scope_size }
                    + if resource_open { 0 } else { resource_size };
                if rows > 0 && bytes + adds > max_bytes {
                    requests.push((std::mem::take(&mut current), std::mem::take(&mut rows)));
                    bytes = 0;
                    resource_open = false;
                    scope_open = false;
                }
                if !resource_open {
                    current.resources().push(resource.clone());
                    bytes += resource_size;
                    resource_open = true;
                }
                let Some(open_resource) = current.resources().last_mut() else {
                    continue;
                };
                if !scope_open {
                    R::scopes(open_resource).push(scope.clone());
                    bytes += scope_size;
                    scope_open = true;
                }
                if let Some(open_scope) = R::scopes(open_resource).last_mut() {
                    rows += R::rows(&record);
                    R::records(open_scope).push(record);
                    bytes += size;
                }
            }
        }
    }
    if rows > 0 {
        requests.push((current, rows));
    }
    Split {
        requests,
        too_large,
    }
}

/// The rows of a whole request.
fn count_rows<R: Request>(request: &mut R) -> u64 {
    let mut rows = 0;
    for resource in request.resources() {
        for scope in R::scopes(resource) {
            rows += R::records(scope).iter().map(R::rows).sum::<u64>();
        }
    }
    rows
}

impl Request for ExportTraceServiceRequest {
    type Resource = ResourceSpans;
    type Scope = ScopeSpans;
    type Record = Span;
    fn resources(&mut self) -> &mut Vec<ResourceSpans> {
        &mut self.resource_spans
    }
    fn scopes(resource: &mut ResourceSpans) -> &mut Vec<ScopeSpans> {
        &mut resource.scope_spans
    }
    fn records(scope: &mut ScopeSpans) -> &mut Vec<Span> {
        &mut scope.spans
    }
    fn rows(_: &Span) -> u64 {
        1
    }
}

impl Request for ExportLogsServiceRequest {
    type Resource = ResourceLogs;
    type Scope = ScopeLogs;
    type Record = LogRecord;
    fn resources(&mut self) -> &mut Vec<ResourceLogs> {
        &mut self.resource_logs
    }
    fn scopes(resource: &mut ResourceLogs) -> &mut Vec<ScopeLogs> {
        &mut resource.scope_logs
    }
    fn records(scope: &mut ScopeLogs) -> &mut Vec<LogRecord> {
        &mut scope.log_records
    }
    fn rows(_: &LogRecord) -> u64 {
        1
    }
}

impl Request for ExportMetricsServiceRequest {
    type Resource = ResourceMetrics;
    type Scope = ScopeMetrics;
    type Record = Metric;
    fn resources(&mut self) -> &mut Vec<ResourceMetrics> {
        &mut self.resource_metrics
    }
    fn scopes(resource: &mut ResourceMetrics) -> &mut Vec<ScopeMetrics> {
        &mut resource.scope_metrics
    }
    fn records(scope: &mut ScopeMetrics) -> &mut Vec<Metric> {
        &mut scope.metrics
    }
    fn rows(metric: &Metric) -> u64 {
        weir_core::convert::point_count(metric) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, any_value};
    use opentelemetry_proto::tonic::resource::v1::Resource;

    fn logs(resources: usize, records: usize) -> ExportLogsServiceRequest {
        let record = |i: usize| LogRecord {
            time_unix_nano: i as u64,
            body: Some(AnyValue {
                value: Some(any_value::Value::StringValue(format!("record {i:04}"))),
            }),
            ..Default::default()
        };
        ExportLogsServiceRequest {
            resource_logs: (0..resources)
                .map(|r| ResourceLogs {
                    resource: Some(Resource::default()),
                    scope_logs: vec![ScopeLogs {
                        scope: Some(InstrumentationScope {
                            name: format!("scope {r}"),
                            ..Default::default()
                        }),
                        log_records: (0..records).map(record).collect(),
                        ..Default::default()
                    }],
                    ..Default::default()
                })
                .collect(),
        }
    }

    /// Guarantees: requests stay within the limit and hold every record
    /// once, in order, under its own scope; a small request is left whole;
    /// a record too large alone is counted, not sent.
    #[test]
    fn requests_respect_the_limit() {
        let whole = split(logs(2, 3), usize::MAX);
        assert_eq!(whole.requests.len(), 1);
        assert_eq!(whole.requests[0].1, 6);
        assert_eq!(whole.requests[0].0, logs(2, 3));

        let all = logs(3, 50);
        let limit = all.encoded_len() / 6;
        let parts = split(all.clone(), limit);
        assert!(parts.requests.len() >= 6);
        assert_eq!(parts.too_large, 0);
        let mut seen = Vec::new();
        for (request, rows) in &parts.requests {
            assert!(request.encoded_len() <= limit);
            let mut n = 0;
            for r in &request.resource_logs {
                for s in &r.scope_logs {
                    let scope = s.scope.as_ref().map(|s| s.name.clone()).unwrap_or_default();
                    for l in &s.log_records {
                        seen.push((scope.clone(), l.time_unix_nano));
                        n += 1;
                    }
                }
            }
            assert_eq!(*rows, n);
        }
        let want: Vec<(String, u64)> = (0..3)
            .flat_map(|r| (0..50).map(move |i| (format!("scope {r}"), i)))
            .collect();
        assert_eq!(seen, want);

        let tiny = split(logs(1, 2), 20);
        assert_eq!(tiny.too_large, 2);
        assert!(tiny.requests.is_empty());
    }
}
