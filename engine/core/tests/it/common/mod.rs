//! Helpers shared by the integration tests of `weir-core`.

pub mod generate;

use std::fmt::Debug;
use std::path::PathBuf;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::{Metric, metric};
use prost::Message;

/// The directory of the OTLP/JSON examples (`tests/data/otlp-json` at the
/// repository's root); fails with a clear message when it is absent.
pub fn otlp_json_dir() -> PathBuf {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/data/otlp-json"
    ));
    assert!(
        dir.is_dir(),
        "the OTLP/JSON examples are missing: expected the directory {} \
         (tests/data/otlp-json in the repository)",
        dir.display()
    );
    dir
}

/// Reads one example file.
pub fn example(name: &str) -> Vec<u8> {
    let path = otlp_json_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Asserts two messages are equal, comparing their protobuf encodings so that
/// NaN doubles compare by their bits; on a difference, shows both.
pub fn assert_same<M: Message + PartialEq + Debug>(expected: &M, actual: &M) {
    if expected.encode_to_vec() != actual.encode_to_vec() {
        assert_eq!(expected, actual, "messages differ");
        panic!("messages differ only in NaN payloads:\n{expected:#?}\n{actual:#?}");
    }
}

/// Whether two optional messages are equal, by their protobuf encoding (so
/// that NaN doubles compare by their bits, as the conversion compares them).
fn same_opt<M: Message>(a: &Option<M>, b: &Option<M>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => a.encode_to_vec() == b.encode_to_vec(),
        _ => false,
    }
}

/// Whether two lists of messages are equal, by their protobuf encoding.
fn same_vec<M: Message>(a: &[M], b: &[M]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(a, b)| a.encode_to_vec() == b.encode_to_vec())
}

/// Merges `items` whose key equals the previous item's key, with `merge`.
fn merge_runs<T>(
    items: Vec<T>,
    same: impl Fn(&T, &T) -> bool,
    merge: impl Fn(&mut T, T),
) -> Vec<T> {
    let mut out: Vec<T> = Vec::with_capacity(items.len());
    for item in items {
        match out.last_mut() {
            Some(last) if same(last, &item) => merge(last, item),
            _ => out.push(item),
        }
    }
    out
}

/// The normalisation the conversion applies (see `weir_core::convert`):
/// containers without records dropped, consecutive equal containers merged.
pub fn normalise_logs(req: &ExportLogsServiceRequest) -> ExportLogsServiceRequest {
    let mut resources = req.resource_logs.clone();
    for r in &mut resources {
        r.scope_logs.retain(|s| !s.log_records.is_empty());
        r.scope_logs = merge_runs(
            std::mem::take(&mut r.scope_logs),
            |a, b| same_opt(&a.scope, &b.scope) && a.schema_url == b.schema_url,
            |a, b| a.log_records.extend(b.log_records),
        );
    }
    resources.retain(|r| !r.scope_logs.is_empty());
    let resource_logs = merge_runs(
        resources,
        |a, b| same_opt(&a.resource, &b.resource) && a.schema_url == b.schema_url,
        |a, b| {
            for s in b.scope_logs {
                match a.scope_logs.last_mut() {
                    Some(last)
                        if same_opt(&last.scope, &s.scope) && last.schema_url == s.schema_url =>
                    {
                        last.log_records.extend(s.log_records)
                    }
                    _ => a.scope_logs.push(s),
                }
            }
        },
    );
    ExportLogsServiceRequest { resource_logs }
}

/// See [`normalise_logs`].
pub fn normalise_spans(req: &ExportTraceServiceRequest) -> ExportTraceServiceRequest {
    let mut resources = req.resource_spans.clone();
    for r in &mut resources {
        r.scope_spans.retain(|s| !s.spans.is_empty());
        r.scope_spans = merge_runs(
            std::mem::take(&mut r.scope_spans),
            |a, b| same_opt(&a.scope, &b.scope) && a.schema_url == b.schema_url,
            |a, b| a.spans.extend(b.spans),
        );
    }
    resources.retain(|r| !r.scope_spans.is_empty());
    let resource_spans = merge_runs(
        resources,
        |a, b| same_opt(&a.resource, &b.resource) && a.schema_url == b.schema_url,
        |a, b| {
            for s in b.scope_spans {
                match a.scope_spans.last_mut() {
                    Some(last)
                        if same_opt(&last.scope, &s.scope) && last.schema_url == s.schema_url =>
                    {
                        last.spans.extend(s.spans)
                    }
                    _ => a.scope_spans.push(s),
                }
            }
        },
    );
    ExportTraceServiceRequest { resource_spans }
}

/// Whether `m` has data points.
fn has_points(m: &Metric) -> bool {
    match &m.data {
        None => false,
        Some(metric::Data::Gauge(g)) => !g.data_points.is_empty(),
        Some(metric::Data::Sum(s)) => !s.data_points.is_empty(),
        Some(metric::Data::Histogram(h)) => !h.data_points.is_empty(),
        Some(metric::Data::ExponentialHistogram(h)) => !h.data_points.is_empty(),
        Some(metric::Data::Summary(s)) => !s.data_points.is_empty(),
    }
}

/// Whether two metrics have the same identity (everything but their points).
fn same_metric(a: &Metric, b: &Metric) -> bool {
    let kind = |m: &Metric| match &m.data {
        None => (0, 0, false),
        Some(metric::Data::Gauge(_)) => (1, 0, false),
        Some(metric::Data::Sum(s)) => (2, s.aggregation_temporality, s.is_monotonic),
        Some(metric::Data::Histogram(h)) => (3, h.aggregation_temporality, false),
        Some(metric::Data::ExponentialHistogram(h)) => (4, h.aggregation_temporality, false),
        Some(metric::Data::Summary(_)) => (5, 0, false),
    };
    a.name == b.name
        && a.description == b.description
        && a.unit == b.unit
        && same_vec(&a.metadata, &b.metadata)
        && kind(a) == kind(b)
}

/// Appends the points of `b` to those of `a` (same identity).
fn merge_metric(a: &mut Metric, b: Metric) {
    match (&mut a.data, b.data) {
        (Some(metric::Data::Gauge(x)), Some(metric::Data::Gauge(y))) => {
            x.data_points.extend(y.data_points)
        }
        (Some(metric::Data::Sum(x)), Some(metric::Data::Sum(y))) => {
            x.data_points.extend(y.data_points)
        }
        (Some(metric::Data::Histogram(x)), Some(metric::Data::Histogram(y))) => {
            x.data_points.extend(y.data_points)
        }
        (
            Some(metric::Data::ExponentialHistogram(x)),
            Some(metric::Data::ExponentialHistogram(y)),
        ) => x.data_points.extend(y.data_points),
        (Some(metric::Data::Summary(x)), Some(metric::Data::Summary(y))) => {
            x.data_points.extend(y.data_points)
        }
        _ => unreachable!("merge_metric is called on metrics of the same identity"),
    }
}

/// See [`normalise_logs`]; also drops metrics without points and merges
/// consecutive metrics of the same identity.
pub fn normalise_metrics(req: &ExportMetricsServiceRequest) -> ExportMetricsServiceRequest {
    let merge_metrics = |metrics: Vec<Metric>| {
        merge_runs(
            metrics.into_iter().filter(has_points).collect(),
            same_metric,
            merge_metric,
        )
    };
    let mut resources = req.resource_metrics.clone();
    for r in &mut resources {
        for s in &mut r.scope_metrics {
            s.metrics = merge_metrics(std::mem::take(&mut s.metrics));
        }
        r.scope_metrics.retain(|s| !s.metrics.is_empty());
        r.scope_metrics = merge_runs(
            std::mem::take(&mut r.scope_metrics),
            |a, b| same_opt(&a.scope, &b.scope) && a.schema_url == b.schema_url,
            |a, b| {
                a.metrics.extend(b.metrics);
                a.metrics = merge_metrics(std::mem::take(&mut a.metrics));
            },
        );
    }
    resources.retain(|r| !r.scope_metrics.is_empty());
    let resource_metrics = merge_runs(
        resources,
        |a, b| same_opt(&a.resource, &b.resource) && a.schema_url == b.schema_url,
        |a, b| {
            for s in b.scope_metrics {
                match a.scope_metrics.last_mut() {
                    Some(last)
                        if same_opt(&last.scope, &s.scope) && last.schema_url == s.schema_url =>
                    {
                        last.metrics.extend(s.metrics);
                        last.metrics = merge_metrics(std::mem::take(&mut last.metrics));
                    }
                    _ => a.scope_metrics.push(s),
                }
            }
        },
    );
    ExportMetricsServiceRequest { resource_metrics }
}
