//! Telemetry rows -> Kafka messages: OTLP export requests (protobuf or
//! JSON), one per batch, per trace or per resource, each within the
//! largest message size (a part too large is split in rows until it fits;
//! a single record too large is refused).

use std::collections::HashMap;

use arrow::array::{Array, AsArray, UInt32Array};
use arrow::compute::take_record_batch;
use arrow::record_batch::RecordBatch;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use prost::Message as _;
use weir_core::Signal;
use weir_core::convert::{self, ConvertError, json};
use weir_core::schema::col;

use super::config::TelemetryEncoding;

/// One message to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Outbound {
    /// Its key, if any.
    pub key: Option<Vec<u8>>,
    /// Its value.
    pub value: Vec<u8>,
}

/// How telemetry batches are cut into messages.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cut {
    pub encoding: TelemetryEncoding,
    pub by_trace: bool,
    pub by_resource: bool,
    pub max_bytes: usize,
}

/// The messages of one batch, and how many of its records were too large
/// to fit in any message.
#[derive(Debug, Default)]
pub(crate) struct Encoded {
    pub messages: Vec<Outbound>,
    pub too_large: usize,
}

/// Cuts `batch` (rows of `signal`) into messages.
pub(crate) fn telemetry(
    signal: Signal,
    batch: &RecordBatch,
    cut: Cut,
) -> Result<Encoded, ConvertError> {
    let mut out = Encoded::default();
    if signal == Signal::Spans && cut.by_trace {
        for (trace, rows) in group_by_trace(batch)? {
            let key = Some(hex(&trace).into_bytes());
            fit(signal, &rows, cut, &key, &mut out)?;
        }
    } else if cut.by_resource && matches!(signal, Signal::Logs | Signal::Metrics) {
        for (key, value, part) in by_resource(signal, batch, cut)? {
            let key = Some(key.into_bytes());
            if value.len() <= cut.max_bytes {
                out.messages.push(Outbound { key, value });
            } else {
                // One resource's request too large on its own: cut its rows.
                fit(signal, &part, cut, &key, &mut out)?;
            }
        }
    } else {
        fit(signal, batch, cut, &None, &mut out)?;
    }
    Ok(out)
}

/// Encodes `rows` as one message, or, when too large, as several of fewer
/// rows each.
fn fit(
    signal: Signal,
    rows: &RecordBatch,
    cut: Cut,
    key: &Option<Vec<u8>>,
    out: &mut Encoded,
) -> Result<(), ConvertError> {
    if rows.num_rows() == 0 {
        return Ok(());
    }
    let value = encode(signal, rows, cut.encoding)?;
    if value.len() <= cut.max_bytes {
        out.messages.push(Outbound {
            key: key.clone(),
            value,
        });
        return Ok(());
    }
    let n = rows.num_rows();
    if n == 1 {
        out.too_large += 1;
        return Ok(());
    }
    // Enough parts that each should fit, at least two.
    let parts = (value.len().div_ceil(cut.max_bytes) + 1).clamp(2, n);
    let size = n.div_ceil(parts);
    let mut start = 0;
    while start < n {
        let len = size.min(n - start);
        fit(signal, &rows.slice(start, len), cut, key, out)?;
        start += len;
    }
    Ok(())
}

/// Rows as one OTLP export request in `encoding`: spans and logs in
/// protobuf are written straight from the rows (the bytes prost would
/// write for `batch_to_*`, without the request in between).
pub(crate) fn encode(
    signal: Signal,
    rows: &RecordBatch,
    encoding: TelemetryEncoding,
) -> Result<Vec<u8>, ConvertError> {
    match (signal, encoding) {
        (Signal::Spans, TelemetryEncoding::OtlpProto) => convert::spans_to_proto(rows),
        (Signal::Spans, TelemetryEncoding::OtlpJson) => {
            json::encode_spans(&convert::batch_to_spans(rows)?)
        }
        (Signal::Logs, TelemetryEncoding::OtlpProto) => convert::logs_to_proto(rows),
        (Signal::Logs, TelemetryEncoding::OtlpJson) => {
            json::encode_logs(&convert::batch_to_logs(rows)?)
        }
        (Signal::Metrics, TelemetryEncoding::OtlpProto) => {
            Ok(convert::batch_to_metrics(rows)?.encode_to_vec())
        }
        (Signal::Metrics, TelemetryEncoding::OtlpJson) => {
            json::encode_metrics(&convert::batch_to_metrics(rows)?)
        }
        (Signal::Alerts, _) => Err(ConvertError::InvalidBatch {
            table: "alerts",
            message: "alerts are not OTLP telemetry".into(),
        }),
    }
}

/// The rows of each trace, in order of first appearance.
fn group_by_trace(batch: &RecordBatch) -> Result<Vec<([u8; 16], RecordBatch)>, ConvertError> {
    let ids = batch
        .column_by_name(col::TRACE_ID)
        .and_then(|c| c.as_fixed_size_binary_opt())
        .ok_or_else(|| ConvertError::InvalidBatch {
            table: "spans",
            message: "no fixed-size binary `trace_id` column".into(),
        })?;
    let mut order: Vec<[u8; 16]> = Vec::new();
    let mut rows: HashMap<[u8; 16], Vec<u32>> = HashMap::new();
    for i in 0..ids.len() {
        let mut id = [0u8; 16];
        if !ids.is_null(i) && ids.value(i).len() == 16 {
            id.copy_from_slice(ids.value(i));
        }
        let entry = rows.entry(id).or_insert_with(|| {
            order.push(id);
            Vec::new()
        });
        entry.push(u32::try_from(i).unwrap_or(u32::MAX));
    }
    order
        .into_iter()
        .map(|id| {
            let indices = UInt32Array::from(rows.remove(&id).unwrap_or_default());
            take_record_batch(batch, &indices)
                .map(|b| (id, b))
                .map_err(|e| ConvertError::Internal(e.to_string()))
        })
        .collect()
}

/// One request per distinct resource, keyed by a hash of its attributes.
fn by_resource(
    signal: Signal,
    batch: &RecordBatch,
    cut: Cut,
) -> Result<Vec<(String, Vec<u8>, RecordBatch)>, ConvertError> {
    // Rows are grouped by the hash of their resource's attributes, read
    // back through the request the rows make.
    let mut groups: Vec<(String, Vec<u32>)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut row = 0u32;
    let mut add = |attrs: &[KeyValue], records: usize| {
        let key = resource_key(attrs);
        let g = *index.entry(key.clone()).or_insert_with(|| {
            groups.push((key, Vec::new()));
            groups.len() - 1
        });
        for _ in 0..records {
            groups[g].1.push(row);
            row += 1;
        }
    };
    match signal {
        Signal::Logs => {
            let req: ExportLogsServiceRequest = convert::batch_to_logs(batch)?;
            for r in &req.resource_logs {
                let n = r.scope_logs.iter().map(|s| s.log_records.len()).sum();
                add(attrs(r.resource.as_ref().map(|r| &r.attributes)), n);
            }
        }
        _ => {
            let req: ExportMetricsServiceRequest = convert::batch_to_metrics(batch)?;
            for r in &req.resource_metrics {
                let n = r
                    .scope_metrics
                    .iter()
                    .flat_map(|s| &s.metrics)
                    .map(convert::point_count)
                    .sum();
                add(attrs(r.resource.as_ref().map(|r| &r.attributes)), n);
            }
        }
    }
    groups
        .into_iter()
        .map(|(key, rows)| {
            let part = take_record_batch(batch, &UInt32Array::from(rows))
                .map_err(|e| ConvertError::Internal(e.to_string()))?;
            let value = encode(signal, &part, cut.encoding)?;
            Ok((key, value, part))
        })
        .collect()
}

fn attrs(a: Option<&Vec<KeyValue>>) -> &[KeyValue] {
    a.map_or(&[], Vec::as_slice)
}

/// A stable key for a resource: FNV-1a (64 bits, hex) of its attributes
/// sorted by key, so that the same resource always lands in the same
/// partition, whatever Weir's version or the attributes' order.
pub(crate) fn resource_key(attrs: &[KeyValue]) -> String {
    let mut sorted: Vec<(&str, Vec<u8>)> = attrs
        .iter()
        .map(|kv| {
            (
                kv.key.as_str(),
                kv.value
                    .as_ref()
                    .map(|v| v.encode_to_vec())
                    .unwrap_or_default(),
            )
        })
        .collect();
    sorted.sort();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for (k, v) in &sorted {
        eat(k.as_bytes());
        eat(&[0xff]);
        eat(v);
        eat(&[0xfe]);
    }
    format!("{h:016x}")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

    use super::*;

    fn spans(traces: u8, per_trace: u8, name_len: usize) -> RecordBatch {
        let mut spans = Vec::new();
        for t in 0..traces {
            for s in 0..per_trace {
                spans.push(Span {
                    trace_id: vec![t + 1; 16],
                    span_id: vec![s + 1; 8],
                    name: "x".repeat(name_len),
                    start_time_unix_nano: 1,
                    end_time_unix_nano: 2,
                    ..Span::default()
                });
            }
        }
        let req = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource::default()),
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..ScopeSpans::default()
                }],
                ..ResourceSpans::default()
            }],
        };
        convert::spans_to_batch(&req).expect("converts").batch
    }

    fn decoded_spans(messages: &[Outbound]) -> usize {
        messages
            .iter()
            .map(|m| {
                ExportTraceServiceRequest::decode(m.value.as_slice())
                    .expect("OTLP protobuf")
                    .resource_spans
                    .iter()
                    .flat_map(|r| &r.scope_spans)
                    .map(|s| s.spans.len())
                    .sum::<usize>()
            })
            .sum()
    }

    const CUT: Cut = Cut {
        encoding: TelemetryEncoding::OtlpProto,
        by_trace: false,
        by_resource: false,
        max_bytes: 1_000_000,
    };

    /// Guarantees: a batch that fits is one unkeyed message holding every
    /// span.
    #[test]
    fn one_message_per_batch() {
        let e = telemetry(Signal::Spans, &spans(3, 4, 10), CUT).expect("encodes");
        assert_eq!(e.messages.len(), 1);
        assert_eq!(e.messages[0].key, None);
        assert_eq!(decoded_spans(&e.messages), 12);
    }

    /// Guarantees: a batch larger than the limit is split into messages
    /// that each fit and together hold every span; none is dropped.
    #[test]
    fn too_large_batches_are_split() {
        let batch = spans(4, 50, 1000);
        let cut = Cut {
            max_bytes: 20_000,
            ..CUT
        };
        let e = telemetry(Signal::Spans, &batch, cut).expect("encodes");
        assert!(e.messages.len() >= 10, "{}", e.messages.len());
        assert!(e.messages.iter().all(|m| m.value.len() <= 20_000));
        assert_eq!(decoded_spans(&e.messages), 200);
        assert_eq!(e.too_large, 0);
    }

    /// Guarantees: a single span larger than the limit is counted as too
    /// large, not retried and not silently lost among the others.
    #[test]
    fn a_single_record_too_large_is_counted() {
        let cut = Cut {
            max_bytes: 1024,
            ..CUT
        };
        let e = telemetry(Signal::Spans, &spans(1, 3, 5000), cut).expect("encodes");
        assert_eq!((e.messages.len(), e.too_large), (0, 3));
    }

    /// Guarantees: by trace, each message holds one trace's spans and is
    /// keyed by its id in hex.
    #[test]
    fn partition_traces_by_id() {
        let cut = Cut {
            by_trace: true,
            ..CUT
        };
        let e = telemetry(Signal::Spans, &spans(3, 2, 10), cut).expect("encodes");
        assert_eq!(e.messages.len(), 3);
        assert_eq!(
            e.messages[0].key.as_deref(),
            Some("01".repeat(16).as_bytes())
        );
        assert_eq!(decoded_spans(&e.messages[..1]), 2);
    }

    /// Guarantees: the resource key ignores attribute order and tells
    /// different resources apart.
    #[test]
    fn resource_key_is_stable() {
        let kv = |k: &str, v: &str| KeyValue {
            key: k.into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(v.into())),
            }),
            ..KeyValue::default()
        };
        let a = [kv("service.name", "a"), kv("host", "h")];
        let b = [kv("host", "h"), kv("service.name", "a")];
        assert_eq!(resource_key(&a), resource_key(&b));
        assert_ne!(resource_key(&a), resource_key(&[kv("service.name", "b")]));
    }
}
