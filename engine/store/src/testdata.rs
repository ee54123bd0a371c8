//! Rows for unit tests, made the way the engine makes them: OTLP requests
//! through `weir_core::convert`.

use arrow::record_batch::RecordBatch;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;

/// A `logs` batch with one record per entry: its time and observed time
/// (`None`: unknown) and its service (`""`: none).
pub(crate) fn logs_batch(
    times: &[Option<i64>],
    observed: &[Option<i64>],
    services: &[&str],
) -> RecordBatch {
    let resource_logs = times
        .iter()
        .zip(observed)
        .zip(services)
        .enumerate()
        .map(|(i, ((t, o), s))| ResourceLogs {
            resource: Some(Resource {
                attributes: if s.is_empty() {
                    vec![]
                } else {
                    vec![KeyValue {
                        key: "service.name".into(),
                        key_strindex: 0,
                        value: Some(AnyValue {
                            value: Some(any_value::Value::StringValue((*s).into())),
                        }),
                    }]
                },
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records: vec![LogRecord {
                    time_unix_nano: t.map_or(0, |t| t as u64),
                    observed_time_unix_nano: o.map_or(0, |t| t as u64),
                    severity_number: 9,
                    body: Some(AnyValue {
                        value: Some(any_value::Value::StringValue(format!("record {i}"))),
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        })
        .collect();
    let converted = weir_core::convert::logs_to_batch(&ExportLogsServiceRequest { resource_logs })
        .expect("valid logs");
    assert_eq!(converted.rejected, 0);
    converted.batch
}

/// `n` log records at `start_ns`, `start_ns + step_ns`, ... of service
/// `service`.
pub(crate) fn logs_at(start_ns: i64, step_ns: i64, n: usize, service: &str) -> RecordBatch {
    let times: Vec<Option<i64>> = (0..n as i64)
        .map(|i| Some(start_ns + i * step_ns))
        .collect();
    let observed = vec![None; n];
    let services = vec![service; n];
    logs_batch(&times, &observed, &services)
}
