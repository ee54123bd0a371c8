//! Records that cannot be represented are refused one by one, counted, and
//! explained; the rest of the request converts.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    Exemplar, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric,
};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, span};
use weir_core::Signal;
use weir_core::convert::{self, ConvertError};
use weir_core::schema::schema_for;

fn span(trace_id: Vec<u8>, span_id: Vec<u8>) -> Span {
    Span {
        trace_id,
        span_id,
        name: "op".into(),
        start_time_unix_nano: 1,
        end_time_unix_nano: 2,
        ..Default::default()
    }
}

fn trace(spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// Guarantees: spans with a short, all-zero or missing trace id, a wrong
/// span id, a time past i64::MAX or a malformed link id are each refused and
/// counted; the first reason names the span and the field; valid spans stay.
#[test]
fn invalid_spans_are_refused_individually() {
    let good = span(vec![1; 16], vec![2; 8]);
    let mut late = good.clone();
    late.end_time_unix_nano = u64::MAX;
    let mut bad_link = good.clone();
    bad_link.links.push(span::Link {
        trace_id: vec![1; 3],
        ..Default::default()
    });
    let mut bad_parent = good.clone();
    bad_parent.parent_span_id = vec![9; 4];
    let req = trace(vec![
        good.clone(),
        span(vec![1; 5], vec![2; 8]),
        span(vec![0; 16], vec![2; 8]),
        span(Vec::new(), vec![2; 8]),
        span(vec![1; 16], vec![0; 8]),
        span(vec![1; 16], vec![2; 7]),
        late,
        bad_link,
        bad_parent,
        good,
    ]);
    let converted = convert::spans_to_batch(&req).expect("the request converts");
    assert_eq!(converted.batch.num_rows(), 2);
    assert_eq!(converted.rejected, 8);
    let why = converted.rejection.expect("a reason");
    assert!(
        why.contains("resource_spans[0].scope_spans[0].spans[1]")
            && why.contains("trace_id has 5 bytes"),
        "{why}"
    );
}

/// Guarantees: for logs, empty and all-zero ids are kept (they are allowed),
/// wrong-length ids and times past i64::MAX are refused.
#[test]
fn invalid_log_records_are_refused_individually() {
    let record = |trace_id: Vec<u8>, span_id: Vec<u8>, time: u64| LogRecord {
        trace_id,
        span_id,
        time_unix_nano: time,
        ..Default::default()
    };
    let req = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![
                    record(Vec::new(), Vec::new(), 0),
                    record(vec![0; 16], vec![0; 8], 5),
                    record(vec![1; 15], Vec::new(), 5),
                    record(Vec::new(), vec![1; 9], 5),
                    record(Vec::new(), Vec::new(), i64::MAX as u64 + 1),
                    record(Vec::new(), Vec::new(), i64::MAX as u64),
                ],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let converted = convert::logs_to_batch(&req).expect("converts");
    assert_eq!(converted.batch.num_rows(), 3);
    assert_eq!(converted.rejected, 3);
    assert!(
        converted
            .rejection
            .as_deref()
            .is_some_and(|w| w.contains("log_records[2]") && w.contains("trace_id")),
        "{:?}",
        converted.rejection
    );
    let back = convert::batch_to_logs(&converted.batch).expect("converts back");
    let kept = &back.resource_logs[0].scope_logs[0].log_records;
    assert_eq!(
        kept[1].trace_id,
        vec![0; 16],
        "an all-zero log trace id is kept as is"
    );
    assert_eq!(kept[2].time_unix_nano, i64::MAX as u64);
}

/// Guarantees: a data point with a time past i64::MAX or an exemplar with a
/// malformed id is refused; the metric's other points convert.
#[test]
fn invalid_metric_points_are_refused_individually() {
    let point = |time: u64, exemplar_span: Vec<u8>| NumberDataPoint {
        time_unix_nano: time,
        exemplars: vec![Exemplar {
            span_id: exemplar_span,
            ..Default::default()
        }],
        ..Default::default()
    };
    let req = ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: "m".into(),
                    data: Some(metric::Data::Gauge(Gauge {
                        data_points: vec![
                            point(1, Vec::new()),
                            point(u64::MAX, Vec::new()),
                            point(2, vec![1; 3]),
                            point(3, vec![1; 8]),
                        ],
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let converted = convert::metrics_to_batch(&req).expect("converts");
    assert_eq!(converted.batch.num_rows(), 2);
    assert_eq!(converted.rejected, 2);
    let why = converted.rejection.expect("a reason");
    assert!(
        why.contains("`m`") && why.contains("data_points[1]"),
        "{why}"
    );
}

/// Guarantees: when every record is refused, or the request is empty, the
/// result is an empty batch that still has the table's schema.
#[test]
fn empty_results_keep_the_schema() {
    let converted =
        convert::spans_to_batch(&trace(vec![span(vec![1; 3], vec![2; 8])])).expect("converts");
    assert_eq!(converted.batch.num_rows(), 0);
    assert_eq!(converted.rejected, 1);
    assert_eq!(converted.batch.schema(), schema_for(Signal::Spans));
    let back = convert::batch_to_spans(&converted.batch).expect("converts back");
    assert!(back.resource_spans.is_empty());

    let converted = convert::logs_to_batch(&ExportLogsServiceRequest::default()).expect("converts");
    assert_eq!(converted.batch.num_rows(), 0);
    assert_eq!(converted.batch.schema(), schema_for(Signal::Logs));
    let converted =
        convert::metrics_to_batch(&ExportMetricsServiceRequest::default()).expect("converts");
    assert_eq!(converted.batch.schema(), schema_for(Signal::Metrics));
}

/// Guarantees: a batch missing a column, or with a column of the wrong
/// type, is refused with an error that names the column.
#[test]
fn malformed_batches_are_refused_with_the_column_named() {
    let converted =
        convert::spans_to_batch(&trace(vec![span(vec![1; 16], vec![2; 8])])).expect("converts");
    let batch = converted.batch;
    let without = batch
        .project(&(1..batch.num_columns()).collect::<Vec<_>>())
        .expect("projects");
    match convert::batch_to_spans(&without) {
        Err(ConvertError::InvalidBatch { table, message }) => {
            assert_eq!(table, "spans");
            assert!(message.contains("`start_time`"), "{message}");
        }
        other => panic!("expected InvalidBatch, got {other:?}"),
    }
    // A logs batch is not a spans batch.
    let logs = convert::logs_to_batch(&ExportLogsServiceRequest::default())
        .expect("converts")
        .batch;
    assert!(matches!(
        convert::batch_to_spans(&logs),
        Err(ConvertError::InvalidBatch { .. })
    ));
}
