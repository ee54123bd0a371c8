//! proptest strategies for OTLP requests whose every record is representable
//! (ids of the right length, times up to `i64::MAX`), covering every field of
//! the opentelemetry-proto messages.
//!
//! Doubles include infinities, `-0.0`, subnormals and the canonical NaN (a
//! NaN's payload bits are not kept by attribute text or OTLP/JSON).

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, EntityRef, InstrumentationScope, KeyValue, KeyValueList, any_value,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    Exemplar, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram,
    HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary,
    SummaryDataPoint, exemplar, exponential_histogram_data_point::Buckets, metric,
    number_data_point, summary_data_point::ValueAtQuantile,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

/// Short strings, often empty, sometimes well-known keys, any Unicode.
pub fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => Just(String::new()),
        1 => Just("service.name".to_string()),
        1 => Just("http.route".to_string()),
        4 => "\\PC{0,12}",
        1 => "[\"\\\\{}\\[\\]:,\n\t\u{0}\u{1f}]{0,6}",
    ]
}

/// Doubles, including the awkward ones.
pub fn double() -> impl Strategy<Value = f64> {
    use proptest::num::f64 as f;
    prop_oneof![
        6 => f::NORMAL | f::SUBNORMAL | f::ZERO | f::NEGATIVE | f::POSITIVE,
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
        1 => Just(f64::NAN),
        1 => Just(-0.0),
        1 => Just(1e300),
    ]
}

fn small_u32() -> impl Strategy<Value = u32> {
    prop_oneof![3 => Just(0u32), 1 => any::<u32>()]
}

/// Times in nanoseconds: 0 (unknown) or up to `i64::MAX`.
pub fn time() -> impl Strategy<Value = u64> {
    prop_oneof![1 => Just(0u64), 4 => 1..=i64::MAX as u64]
}

/// An id of `width` bytes, or empty when `optional` (sometimes all zero).
pub fn id(width: usize, optional: bool) -> BoxedStrategy<Vec<u8>> {
    let present = vec(any::<u8>(), width);
    if optional {
        prop_oneof![1 => Just(Vec::new()), 3 => present].boxed()
    } else {
        // Required ids must not be all zero.
        present
            .prop_filter("all-zero ids are invalid", |id| id.iter().any(|b| *b != 0))
            .boxed()
    }
}

/// An `AnyValue` of any kind, nested up to three levels.
pub fn any_value() -> impl Strategy<Value = AnyValue> {
    use any_value::Value as V;
    let leaf = prop_oneof![
        3 => text().prop_map(|s| Some(V::StringValue(s))),
        1 => any::<bool>().prop_map(|b| Some(V::BoolValue(b))),
        1 => any::<i64>().prop_map(|i| Some(V::IntValue(i))),
        1 => double().prop_map(|d| Some(V::DoubleValue(d))),
        1 => vec(any::<u8>(), 0..6).prop_map(|b| Some(V::BytesValue(b))),
        1 => any::<i32>().prop_map(|i| Some(V::StringValueStrindex(i))),
        1 => Just(None),
    ]
    .prop_map(|value| AnyValue { value });
    leaf.prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..3).prop_map(|values| AnyValue {
                value: Some(V::ArrayValue(ArrayValue { values }))
            }),
            vec((text(), option::of(inner), key_strindex()), 0..3).prop_map(|kvs| AnyValue {
                value: Some(V::KvlistValue(KeyValueList {
                    values: kvs
                        .into_iter()
                        .map(|(key, value, key_strindex)| KeyValue {
                            key,
                            value,
                            key_strindex
                        })
                        .collect(),
                })),
            }),
        ]
    })
}

fn key_strindex() -> impl Strategy<Value = i32> {
    prop_oneof![6 => Just(0), 1 => any::<i32>()]
}

/// One attribute; its value is sometimes absent.
pub fn key_value() -> impl Strategy<Value = KeyValue> {
    (
        text(),
        prop_oneof![6 => any_value().prop_map(Some), 1 => Just(None)],
        key_strindex(),
    )
        .prop_map(|(key, value, key_strindex)| KeyValue {
            key,
            value,
            key_strindex,
        })
}

pub fn attributes() -> impl Strategy<Value = Vec<KeyValue>> {
    vec(key_value(), 0..4)
}

fn entity_ref() -> impl Strategy<Value = EntityRef> {
    (text(), text(), vec(text(), 0..3), vec(text(), 0..3)).prop_map(
        |(schema_url, r#type, id_keys, description_keys)| EntityRef {
            schema_url,
            r#type,
            id_keys,
            description_keys,
        },
    )
}

pub fn resource() -> impl Strategy<Value = Option<Resource>> {
    option::weighted(
        0.8,
        (attributes(), small_u32(), vec(entity_ref(), 0..2)).prop_map(
            |(attributes, dropped_attributes_count, entity_refs)| Resource {
                attributes,
                dropped_attributes_count,
                entity_refs,
            },
        ),
    )
}

pub fn scope() -> impl Strategy<Value = Option<InstrumentationScope>> {
    option::weighted(
        0.8,
        (text(), text(), attributes(), small_u32()).prop_map(
            |(name, version, attributes, dropped_attributes_count)| InstrumentationScope {
                name,
                version,
                attributes,
                dropped_attributes_count,
            },
        ),
    )
}

pub fn log_record() -> impl Strategy<Value = LogRecord> {
    (
        (time(), time(), any::<i32>(), text()),
        (
            option::of(any_value()),
            attributes(),
            small_u32(),
            any::<u32>(),
        ),
        (id(16, true), id(8, true), text()),
    )
        .prop_map(
            |(
                (time_unix_nano, observed_time_unix_nano, severity_number, severity_text),
                (body, attributes, dropped_attributes_count, flags),
                (trace_id, span_id, event_name),
            )| LogRecord {
                time_unix_nano,
                observed_time_unix_nano,
                severity_number,
                severity_text,
                body,
                attributes,
                dropped_attributes_count,
                flags,
                trace_id,
                span_id,
                event_name,
            },
        )
}

pub fn logs_request() -> impl Strategy<Value = ExportLogsServiceRequest> {
    let scope_logs =
        (scope(), vec(log_record(), 0..4), text()).prop_map(|(scope, log_records, schema_url)| {
            ScopeLogs {
                scope,
                log_records,
                schema_url,
            }
        });
    let resource_logs = (resource(), vec(scope_logs, 0..3), text()).prop_map(
        |(resource, scope_logs, schema_url)| ResourceLogs {
            resource,
            scope_logs,
            schema_url,
        },
    );
    vec(resource_logs, 0..3).prop_map(|resource_logs| ExportLogsServiceRequest { resource_logs })
}

fn event() -> impl Strategy<Value = span::Event> {
    (time(), text(), attributes(), small_u32()).prop_map(
        |(time_unix_nano, name, attributes, dropped_attributes_count)| span::Event {
            time_unix_nano,
            name,
            attributes,
            dropped_attributes_count,
        },
    )
}

fn link() -> impl Strategy<Value = span::Link> {
    (
        id(16, true),
        id(8, true),
        text(),
        attributes(),
        small_u32(),
        any::<u32>(),
    )
        .prop_map(
            |(trace_id, span_id, trace_state, attributes, dropped_attributes_count, flags)| {
                span::Link {
                    trace_id,
                    span_id,
                    trace_state,
                    attributes,
                    dropped_attributes_count,
                    flags,
                }
            },
        )
}

pub fn span() -> impl Strategy<Value = Span> {
    (
        (
            id(16, false),
            id(8, false),
            text(),
            id(8, true),
            any::<u32>(),
        ),
        (text(), any::<i32>(), time(), time()),
        (attributes(), small_u32(), vec(event(), 0..3), small_u32()),
        (
            vec(link(), 0..3),
            small_u32(),
            option::of((text(), any::<i32>()).prop_map(|(message, code)| Status { message, code })),
        ),
    )
        .prop_map(
            |(
                (trace_id, span_id, trace_state, parent_span_id, flags),
                (name, kind, start_time_unix_nano, end_time_unix_nano),
                (attributes, dropped_attributes_count, events, dropped_events_count),
                (links, dropped_links_count, status),
            )| Span {
                trace_id,
                span_id,
                trace_state,
                parent_span_id,
                flags,
                name,
                kind,
                start_time_unix_nano,
                end_time_unix_nano,
                attributes,
                dropped_attributes_count,
                events,
                dropped_events_count,
                links,
                dropped_links_count,
                status,
            },
        )
}

pub fn trace_request() -> impl Strategy<Value = ExportTraceServiceRequest> {
    let scope_spans =
        (scope(), vec(span(), 0..4), text()).prop_map(|(scope, spans, schema_url)| ScopeSpans {
            scope,
            spans,
            schema_url,
        });
    let resource_spans = (resource(), vec(scope_spans, 0..3), text()).prop_map(
        |(resource, scope_spans, schema_url)| ResourceSpans {
            resource,
            scope_spans,
            schema_url,
        },
    );
    vec(resource_spans, 0..3)
        .prop_map(|resource_spans| ExportTraceServiceRequest { resource_spans })
}

fn exemplar() -> impl Strategy<Value = Exemplar> {
    let value = prop_oneof![
        Just(None),
        double().prop_map(|d| Some(exemplar::Value::AsDouble(d))),
        any::<i64>().prop_map(|i| Some(exemplar::Value::AsInt(i))),
    ];
    (attributes(), time(), id(8, true), id(16, true), value).prop_map(
        |(filtered_attributes, time_unix_nano, span_id, trace_id, value)| Exemplar {
            filtered_attributes,
            time_unix_nano,
            span_id,
            trace_id,
            value,
        },
    )
}

fn exemplars() -> impl Strategy<Value = Vec<Exemplar>> {
    vec(exemplar(), 0..3)
}

fn number_point() -> impl Strategy<Value = NumberDataPoint> {
    let value = prop_oneof![
        1 => Just(None),
        3 => double().prop_map(|d| Some(number_data_point::Value::AsDouble(d))),
        3 => any::<i64>().prop_map(|i| Some(number_data_point::Value::AsInt(i))),
    ];
    (
        attributes(),
        time(),
        time(),
        exemplars(),
        small_u32(),
        value,
    )
        .prop_map(
            |(attributes, start_time_unix_nano, time_unix_nano, exemplars, flags, value)| {
                NumberDataPoint {
                    attributes,
                    start_time_unix_nano,
                    time_unix_nano,
                    exemplars,
                    flags,
                    value,
                }
            },
        )
}

fn histogram_point() -> impl Strategy<Value = HistogramDataPoint> {
    (
        (
            attributes(),
            time(),
            time(),
            any::<u64>(),
            option::of(double()),
        ),
        (
            vec(any::<u64>(), 0..5),
            vec(double(), 0..4),
            exemplars(),
            small_u32(),
        ),
        (option::of(double()), option::of(double())),
    )
        .prop_map(
            |(
                (attributes, start_time_unix_nano, time_unix_nano, count, sum),
                (bucket_counts, explicit_bounds, exemplars, flags),
                (min, max),
            )| HistogramDataPoint {
                attributes,
                start_time_unix_nano,
                time_unix_nano,
                count,
                sum,
                bucket_counts,
                explicit_bounds,
                exemplars,
                flags,
                min,
                max,
            },
        )
}

fn buckets() -> impl Strategy<Value = Option<Buckets>> {
    option::of(
        (any::<i32>(), vec(any::<u64>(), 0..5)).prop_map(|(offset, bucket_counts)| Buckets {
            offset,
            bucket_counts,
        }),
    )
}

fn exp_histogram_point() -> impl Strategy<Value = ExponentialHistogramDataPoint> {
    (
        (
            attributes(),
            time(),
            time(),
            any::<u64>(),
            option::of(double()),
        ),
        (
            any::<i32>(),
            any::<u64>(),
            buckets(),
            buckets(),
            small_u32(),
        ),
        (
            exemplars(),
            option::of(double()),
            option::of(double()),
            double(),
        ),
    )
        .prop_map(
            |(
                (attributes, start_time_unix_nano, time_unix_nano, count, sum),
                (scale, zero_count, positive, negative, flags),
                (exemplars, min, max, zero_threshold),
            )| ExponentialHistogramDataPoint {
                attributes,
                start_time_unix_nano,
                time_unix_nano,
                count,
                sum,
                scale,
                zero_count,
                positive,
                negative,
                flags,
                exemplars,
                min,
                max,
                zero_threshold,
            },
        )
}

fn summary_point() -> impl Strategy<Value = SummaryDataPoint> {
    let quantiles = vec(
        (double(), double()).prop_map(|(quantile, value)| ValueAtQuantile { quantile, value }),
        0..4,
    );
    (
        attributes(),
        time(),
        time(),
        any::<u64>(),
        double(),
        quantiles,
        small_u32(),
    )
        .prop_map(
            |(
                attributes,
                start_time_unix_nano,
                time_unix_nano,
                count,
                sum,
                quantile_values,
                flags,
            )| {
                SummaryDataPoint {
                    attributes,
                    start_time_unix_nano,
                    time_unix_nano,
                    count,
                    sum,
                    quantile_values,
                    flags,
                }
            },
        )
}

fn metric_data() -> impl Strategy<Value = Option<metric::Data>> {
    let points = 0..3;
    prop_oneof![
        1 => Just(None),
        2 => vec(number_point(), points.clone())
            .prop_map(|data_points| Some(metric::Data::Gauge(Gauge { data_points }))),
        2 => (vec(number_point(), points.clone()), any::<i32>(), any::<bool>()).prop_map(
            |(data_points, aggregation_temporality, is_monotonic)| {
                Some(metric::Data::Sum(Sum { data_points, aggregation_temporality, is_monotonic }))
            }
        ),
        2 => (vec(histogram_point(), points.clone()), any::<i32>()).prop_map(
            |(data_points, aggregation_temporality)| {
                Some(metric::Data::Histogram(Histogram { data_points, aggregation_temporality }))
            }
        ),
        2 => (vec(exp_histogram_point(), points.clone()), any::<i32>()).prop_map(
            |(data_points, aggregation_temporality)| {
                Some(metric::Data::ExponentialHistogram(ExponentialHistogram {
                    data_points,
                    aggregation_temporality,
                }))
            }
        ),
        2 => vec(summary_point(), points)
            .prop_map(|data_points| Some(metric::Data::Summary(Summary { data_points }))),
    ]
}

pub fn metric() -> impl Strategy<Value = Metric> {
    (
        text(),
        text(),
        text(),
        vec(key_value(), 0..2),
        metric_data(),
    )
        .prop_map(|(name, description, unit, metadata, data)| Metric {
            name,
            description,
            unit,
            metadata,
            data,
        })
}

pub fn metrics_request() -> impl Strategy<Value = ExportMetricsServiceRequest> {
    let scope_metrics =
        (scope(), vec(metric(), 0..4), text()).prop_map(|(scope, metrics, schema_url)| {
            ScopeMetrics {
                scope,
                metrics,
                schema_url,
            }
        });
    let resource_metrics = (resource(), vec(scope_metrics, 0..3), text()).prop_map(
        |(resource, scope_metrics, schema_url)| ResourceMetrics {
            resource,
            scope_metrics,
            schema_url,
        },
    );
    vec(resource_metrics, 0..3)
        .prop_map(|resource_metrics| ExportMetricsServiceRequest { resource_metrics })
}
