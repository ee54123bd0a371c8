//! How many bytes a request becomes once converted, estimated before
//! converting it: the decoded request held in memory plus the rows built
//! from it, where every row carries a copy of its resource and scope (and,
//! for metrics, its metric's metadata).
//!
//! A few hundred kilobytes of resource attributes over tens of thousands of
//! records become gigabytes of rows, and an empty record (two bytes on the
//! wire) becomes a row of fixed-width columns: the wire size alone says
//! little about the memory a request takes. The estimate counts lengths
//! only (containers, records, attribute lists), never converts a value, so
//! it costs a small fraction of the conversion it guards.

use std::mem::size_of;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::metrics::v1::{
    ExponentialHistogramDataPoint, HistogramDataPoint, Metric, NumberDataPoint, SummaryDataPoint,
    metric,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::{Event, Link};
use prost::Message as _;

/// The bytes of a row's fixed-width columns, offsets and dictionary
/// indexes, whatever its content (timestamps, ids, counts, one index or
/// offset per string, map and list column), with the headroom the column
/// builders reserve per row.
pub(super) const ROW_BYTES: usize = 512;

/// The bytes one attribute entry takes in a row besides its key and value
/// text: the key's offset, the value's offset or dictionary index, and its
/// type letter.
pub(super) const ENTRY_BYTES: usize = 9;

/// The bytes an attribute of a resource, scope or metric's metadata adds to
/// every row it is copied onto: its key (copied), the entry's offsets and
/// indexes (its value is stored once, in a dictionary), twice over because
/// a column's buffer grows by doubling.
fn repeated(attrs: &[KeyValue]) -> usize {
    attrs
        .iter()
        .map(|kv| kv.key.len().saturating_add(ENTRY_BYTES))
        .fold(0, usize::saturating_add)
        .saturating_mul(2)
}

/// The bytes a record's own attribute list adds besides the text of its
/// keys and values (counted in the request's encoded length): each entry's
/// decoded struct and its offsets in the row.
fn own(attrs: &[KeyValue]) -> usize {
    attrs
        .len()
        .saturating_mul(size_of::<KeyValue>() + ENTRY_BYTES)
}

pub(super) fn resource_bytes(resource: Option<&Resource>) -> usize {
    resource.map_or(0, |r| repeated(&r.attributes))
}

pub(super) fn scope_bytes(scope: Option<&InstrumentationScope>) -> usize {
    scope.map_or(0, |s| {
        repeated(&s.attributes)
            .saturating_add(s.name.len())
            .saturating_add(s.version.len())
    })
}

/// Adds up products without overflowing: a request near the limits would
/// otherwise wrap to a small number.
#[derive(Default)]
struct Total(usize);

impl Total {
    fn add(&mut self, n: usize) {
        self.0 = self.0.saturating_add(n);
    }

    /// `rows` rows, each carrying `per_row` bytes.
    fn rows(&mut self, rows: usize, per_row: usize) {
        self.add(rows.saturating_mul(per_row));
    }
}

/// The bytes a logs request takes once converted, with the request itself.
pub fn logs_expanded_size(req: &ExportLogsServiceRequest) -> usize {
    let mut total = Total(req.encoded_len());
    for rl in &req.resource_logs {
        let resource = resource_bytes(rl.resource.as_ref());
        for sl in &rl.scope_logs {
            let per_row = ROW_BYTES
                .saturating_add(size_of::<LogRecord>())
                .saturating_add(resource)
                .saturating_add(scope_bytes(sl.scope.as_ref()));
            total.rows(sl.log_records.len(), per_row);
            for record in &sl.log_records {
                total.add(own(&record.attributes));
            }
        }
    }
    total.0
}

/// The bytes a trace request takes once converted, with the request itself.
pub fn spans_expanded_size(req: &ExportTraceServiceRequest) -> usize {
    let mut total = Total(req.encoded_len());
    for rs in &req.resource_spans {
        let resource = resource_bytes(rs.resource.as_ref());
        for ss in &rs.scope_spans {
            let per_row = ROW_BYTES
                .saturating_add(size_of::<Span>())
                .saturating_add(resource)
                .saturating_add(scope_bytes(ss.scope.as_ref()));
            total.rows(ss.spans.len(), per_row);
            for span in &ss.spans {
                total.add(own(&span.attributes));
                for event in &span.events {
                    total.add(size_of::<Event>() + ENTRY_BYTES * 4);
                    total.add(own(&event.attributes));
                }
                for link in &span.links {
                    total.add(size_of::<Link>() + ENTRY_BYTES * 4);
                    total.add(own(&link.attributes));
                }
            }
        }
    }
    total.0
}

/// The bytes a metrics request takes once converted, with the request
/// itself: each data point is a row carrying its metric's name,
/// description, unit and metadata besides its resource and scope.
pub fn metrics_expanded_size(req: &ExportMetricsServiceRequest) -> usize {
    let mut total = Total(req.encoded_len());
    for rm in &req.resource_metrics {
        let resource = resource_bytes(rm.resource.as_ref());
        for sm in &rm.scope_metrics {
            let common = ROW_BYTES
                .saturating_add(resource)
                .saturating_add(scope_bytes(sm.scope.as_ref()));
            for m in &sm.metrics {
                add_metric(&mut total, m, common);
            }
        }
    }
    total.0
}

fn add_metric(total: &mut Total, m: &Metric, common: usize) {
    let per_row = common.saturating_add(repeated(&m.metadata));
    // A value list on the wire takes as little as one byte per value
    // (packed varints); decoded and in its column it takes sixteen.
    let values = |n: usize| n.saturating_mul(2 * size_of::<u64>());
    match &m.data {
        None => {}
        Some(metric::Data::Gauge(g)) => number_points(total, &g.data_points, per_row),
        Some(metric::Data::Sum(s)) => number_points(total, &s.data_points, per_row),
        Some(metric::Data::Histogram(h)) => {
            let per_row = per_row.saturating_add(size_of::<HistogramDataPoint>());
            total.rows(h.data_points.len(), per_row);
            for p in &h.data_points {
                total.add(own(&p.attributes));
                total.add(values(p.bucket_counts.len() + p.explicit_bounds.len()));
                total.add(p.exemplars.len().saturating_mul(ROW_BYTES / 4));
            }
        }
        Some(metric::Data::ExponentialHistogram(h)) => {
            let per_row = per_row.saturating_add(size_of::<ExponentialHistogramDataPoint>());
            total.rows(h.data_points.len(), per_row);
            for p in &h.data_points {
                total.add(own(&p.attributes));
                let buckets = p.positive.as_ref().map_or(0, |b| b.bucket_counts.len())
                    + p.negative.as_ref().map_or(0, |b| b.bucket_counts.len());
                total.add(values(buckets));
                total.add(p.exemplars.len().saturating_mul(ROW_BYTES / 4));
            }
        }
        Some(metric::Data::Summary(s)) => {
            let per_row = per_row.saturating_add(size_of::<SummaryDataPoint>());
            total.rows(s.data_points.len(), per_row);
            for p in &s.data_points {
                total.add(own(&p.attributes));
                total.add(values(2 * p.quantile_values.len()));
            }
        }
    }
}

fn number_points(total: &mut Total, points: &[NumberDataPoint], per_row: usize) {
    total.rows(
        points.len(),
        per_row.saturating_add(size_of::<NumberDataPoint>()),
    );
    for p in points {
        total.add(own(&p.attributes));
        total.add(p.exemplars.len().saturating_mul(ROW_BYTES / 4));
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value};
    use opentelemetry_proto::tonic::logs::v1::{ResourceLogs, ScopeLogs};
    use opentelemetry_proto::tonic::metrics::v1::{Gauge, ResourceMetrics, ScopeMetrics};
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};

    use super::*;
    use crate::convert::{logs_to_batch, metrics_to_batch, spans_to_batch};

    fn kv(key: &str, value: &str) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(value.into())),
            }),
            ..Default::default()
        }
    }

    fn attrs(n: usize, key: &str, value_len: usize) -> Vec<KeyValue> {
        (0..n)
            .map(|i| {
                kv(
                    &format!(
                        "{key}{}",
                        if key.is_empty() {
                            String::new()
                        } else {
                            i.to_string()
                        }
                    ),
                    &"v".repeat(value_len),
                )
            })
            .collect()
    }

    fn logs(resource: Vec<KeyValue>, records: Vec<LogRecord>) -> ExportLogsServiceRequest {
        ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(Resource {
                    attributes: resource,
                    ..Default::default()
                }),
                scope_logs: vec![ScopeLogs {
                    log_records: records,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    /// Checks the estimate against the memory the converted batch takes:
    /// never below it, and not so far above that ordinary requests hit
    /// the limits.
    fn within(what: &str, estimate: usize, batch: usize, wire: usize) {
        eprintln!("{what}: wire {wire}, estimate {estimate}, batch {batch}");
        assert!(
            estimate >= batch,
            "{what}: estimate {estimate} < batch {batch}"
        );
        assert!(
            estimate <= 4 * batch + 2 * wire,
            "{what}: estimate {estimate} far above batch {batch} (wire {wire})"
        );
    }

    fn check_logs(what: &str, req: &ExportLogsServiceRequest) {
        let batch = logs_to_batch(req).expect("converts").batch;
        within(
            what,
            logs_expanded_size(req),
            batch.get_array_memory_size(),
            req.encoded_len(),
        );
    }

    /// Guarantees: the estimate of a logs request covers the rows it
    /// becomes, whether resource attributes (keyed or empty-keyed) are
    /// copied onto many records, the records are empty, or ordinary.
    #[test]
    fn logs_estimate_covers_the_batch() {
        let empty = || vec![LogRecord::default(); 1000];
        check_logs(
            "many resource attributes",
            &logs(attrs(2000, "attr", 100), empty()),
        );
        check_logs(
            "empty-keyed resource attributes",
            &logs(attrs(2000, "", 0), empty()),
        );
        check_logs(
            "empty records",
            &logs(Vec::new(), vec![LogRecord::default(); 10_000]),
        );
        let ordinary = (0..1000)
            .map(|i| LogRecord {
                time_unix_nano: 1_700_000_000_000_000_000 + i,
                body: Some(AnyValue {
                    value: Some(any_value::Value::StringValue("x".repeat(200))),
                }),
                attributes: attrs(10, "key", 20),
                ..Default::default()
            })
            .collect();
        check_logs(
            "ordinary records",
            &logs(attrs(20, "service.", 20), ordinary),
        );
    }

    /// Guarantees: the estimate of trace and metrics requests covers the
    /// rows they become, metric metadata copied onto every point included.
    #[test]
    fn spans_and_metrics_estimates_cover_the_batch() {
        let spans = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: attrs(500, "attr", 50),
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans: (0..1000u64)
                        .map(|i| Span {
                            trace_id: vec![1; 16],
                            span_id: (i + 1).to_be_bytes().to_vec(),
                            name: "op".into(),
                            attributes: attrs(5, "k", 10),
                            events: vec![Event::default(); 2],
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let batch = spans_to_batch(&spans).expect("converts").batch;
        within(
            "spans",
            spans_expanded_size(&spans),
            batch.get_array_memory_size(),
            spans.encoded_len(),
        );

        let metrics = ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(Resource {
                    attributes: attrs(100, "attr", 50),
                    ..Default::default()
                }),
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![Metric {
                        name: "m".into(),
                        metadata: attrs(300, "meta", 10),
                        data: Some(metric::Data::Gauge(Gauge {
                            data_points: vec![NumberDataPoint::default(); 2000],
                        })),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let batch = metrics_to_batch(&metrics).expect("converts").batch;
        within(
            "metrics",
            metrics_expanded_size(&metrics),
            batch.get_array_memory_size(),
            metrics.encoded_len(),
        );
    }
}
