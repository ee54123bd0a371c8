//! One Kafka message -> records: an OTLP request (protobuf or JSON) or a
//! log record made of a plain line, with the Kafka attributes the source
//! is asked to add.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message as _;
use weir_core::convert::{self, Converted, json};

use super::config::{Encoding, TopicSignal};

/// What the source takes from one Kafka message.
#[derive(Debug)]
pub(crate) struct Message<'a> {
    /// The topic it was read from.
    pub topic: &'a str,
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// Its key, if any.
    pub key: Option<&'a [u8]>,
    /// Its value (empty for a tombstone).
    pub value: &'a [u8],
    /// Its headers, in order.
    pub headers: Vec<(&'a str, &'a [u8])>,
    /// Its timestamp, milliseconds since the epoch, if it has one.
    pub timestamp_ms: Option<i64>,
}

/// A message copied out of the consumer, to be decoded on another thread.
#[derive(Debug)]
pub(crate) struct OwnedMessage {
    pub topic: std::sync::Arc<str>,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
    pub timestamp_ms: Option<i64>,
}

impl OwnedMessage {
    /// A copy of `m`.
    pub(crate) fn of(m: &Message<'_>, topic: std::sync::Arc<str>) -> Self {
        OwnedMessage {
            topic,
            partition: m.partition,
            offset: m.offset,
            key: m.key.map(<[u8]>::to_vec),
            value: m.value.to_vec(),
            headers: m
                .headers
                .iter()
                .map(|(k, v)| ((*k).to_string(), v.to_vec()))
                .collect(),
            timestamp_ms: m.timestamp_ms,
        }
    }

    /// The message as [`decode`] reads it.
    pub(crate) fn view(&self) -> Message<'_> {
        Message {
            topic: &self.topic,
            partition: self.partition,
            offset: self.offset,
            key: self.key.as_deref(),
            value: &self.value,
            headers: self
                .headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_slice()))
                .collect(),
            timestamp_ms: self.timestamp_ms,
        }
    }
}

/// Which Kafka attributes to add to what a message carries.
#[derive(Debug, Clone, Default)]
pub(crate) struct Attach {
    /// `kafka.topic`, `kafka.partition`, `kafka.offset`.
    pub metadata: bool,
    /// The headers added as `kafka.header.NAME`.
    pub headers: Vec<String>,
}

/// The records of one message.
#[derive(Debug)]
pub(crate) enum Decoded {
    /// An OTLP logs request.
    Logs(ExportLogsServiceRequest),
    /// The rows of an OTLP trace request, converted on the thread that
    /// decoded it (a protobuf request is read into rows directly).
    Spans(Converted),
    /// An OTLP metrics request.
    Metrics(ExportMetricsServiceRequest),
    /// A plain log line.
    Line(LogRecord),
}

impl Decoded {
    /// How many records (log records, spans, data points) it holds.
    pub(crate) fn records(&self) -> usize {
        match self {
            Decoded::Logs(r) => r
                .resource_logs
                .iter()
                .flat_map(|r| &r.scope_logs)
                .map(|s| s.log_records.len())
                .sum(),
            Decoded::Spans(c) => c.batch.num_rows(),
            Decoded::Metrics(r) => r
                .resource_metrics
                .iter()
                .flat_map(|r| &r.scope_metrics)
                .flat_map(|s| &s.metrics)
                .map(convert::point_count)
                .sum(),
            Decoded::Line(_) => 1,
        }
    }
}

/// Decodes `msg`, declared to carry `signal` in `encoding`, and adds the
/// attributes `attach` asks for. A message whose decoding would take more
/// than `max_decoded` bytes (bounded from its bytes first: from its length
/// alone when that is enough, about 500 KB of protobuf for the default
/// limit, else by walking it) is refused undecoded. The error says what is
/// wrong with it.
pub(crate) fn decode(
    msg: &Message<'_>,
    signal: TopicSignal,
    encoding: Encoding,
    attach: &Attach,
    max_decoded: usize,
) -> Result<Decoded, String> {
    let bound = match (encoding, signal) {
        // Within the limit whatever it holds: no need to walk it.
        (Encoding::OtlpProto, _)
            if convert::decoded_size_at_most(msg.value.len()) <= max_decoded =>
        {
            Ok(0)
        }
        (Encoding::OtlpProto, TopicSignal::Logs) => convert::logs_decoded_size(msg.value),
        (Encoding::OtlpProto, TopicSignal::Spans) => convert::spans_decoded_size(msg.value),
        (Encoding::OtlpProto, TopicSignal::Metrics) => convert::metrics_decoded_size(msg.value),
        (Encoding::OtlpJson, _) => Ok(convert::json_decoded_size(msg.value)),
        (Encoding::Raw | Encoding::Text, _) => Ok(0),
    }
    .map_err(|e| format!("not an OTLP protobuf export request of the declared signal: {e}"))?;
    if bound > max_decoded {
        return Err(format!(
            "decoding the message would take about {bound} bytes, more than \
             `max_decoded_message_size` ({max_decoded} bytes)"
        ));
    }
    if let (Encoding::OtlpProto | Encoding::OtlpJson, TopicSignal::Spans) = (encoding, signal) {
        return spans(msg, encoding, attach).map(Decoded::Spans);
    }
    let mut decoded = match (encoding, signal) {
        (Encoding::OtlpProto, TopicSignal::Logs) => {
            Decoded::Logs(ExportLogsServiceRequest::decode(msg.value).map_err(proto_error)?)
        }
        (Encoding::OtlpProto, TopicSignal::Metrics) => {
            Decoded::Metrics(ExportMetricsServiceRequest::decode(msg.value).map_err(proto_error)?)
        }
        (Encoding::OtlpJson, TopicSignal::Logs) => {
            Decoded::Logs(json::decode_logs(msg.value).map_err(|e| e.to_string())?)
        }
        (Encoding::OtlpJson, TopicSignal::Metrics) => {
            Decoded::Metrics(json::decode_metrics(msg.value).map_err(|e| e.to_string())?)
        }
        (Encoding::Raw | Encoding::Text, TopicSignal::Logs) => {
            return Ok(Decoded::Line(line(msg, encoding, attach)));
        }
        (Encoding::OtlpProto | Encoding::OtlpJson, TopicSignal::Spans)
        | (Encoding::Raw | Encoding::Text, _) => {
            // Refused when the pipeline is checked; kept total here.
            return Err("raw and text messages can only be logs".into());
        }
    };
    let extra = kafka_attributes(msg, attach);
    match &mut decoded {
        Decoded::Logs(r) => extend(r.resource_logs.iter_mut().map(|r| &mut r.resource), &extra),
        Decoded::Metrics(r) => extend(
            r.resource_metrics.iter_mut().map(|r| &mut r.resource),
            &extra,
        ),
        Decoded::Spans(_) | Decoded::Line(_) => {}
    }
    Ok(decoded)
}

/// The rows of a trace message: a protobuf one with no Kafka attribute to
/// add is read directly ([`convert::SpansProto`]), others are decoded,
/// given their attributes and converted.
fn spans(msg: &Message<'_>, encoding: Encoding, attach: &Attach) -> Result<Converted, String> {
    let extra = kafka_attributes(msg, attach);
    if encoding == Encoding::OtlpProto
        && extra.is_empty()
        && let Some(scan) = convert::SpansProto::scan(msg.value)
    {
        return scan.to_batch().map_err(|e| e.to_string());
    }
    let mut request = match encoding {
        Encoding::OtlpProto => ExportTraceServiceRequest::decode(msg.value).map_err(proto_error)?,
        _ => json::decode_spans(msg.value).map_err(|e| e.to_string())?,
    };
    extend(
        request.resource_spans.iter_mut().map(|r| &mut r.resource),
        &extra,
    );
    convert::spans_to_batch(&request).map_err(|e| e.to_string())
}

/// Adds `extra` to every resource.
fn extend<'a>(resources: impl Iterator<Item = &'a mut Option<Resource>>, extra: &[KeyValue]) {
    if extra.is_empty() {
        return;
    }
    for resource in resources {
        resource
            .get_or_insert_with(Resource::default)
            .attributes
            .extend(extra.iter().cloned());
    }
}

fn proto_error(e: prost::DecodeError) -> String {
    format!("not an OTLP protobuf export request of the declared signal: {e}")
}

/// A log record whose body is the message's value: bytes for `raw`, text
/// for `text`. The key and every header become attributes.
fn line(msg: &Message<'_>, encoding: Encoding, attach: &Attach) -> LogRecord {
    let body = match encoding {
        Encoding::Raw => any_value::Value::BytesValue(msg.value.to_vec()),
        _ => any_value::Value::StringValue(String::from_utf8_lossy(msg.value).into_owned()),
    };
    let mut attributes = Vec::with_capacity(msg.headers.len() + 4);
    if let Some(key) = msg.key {
        attributes.push(kv("kafka.key", bytes_or_text(key)));
    }
    for (name, value) in &msg.headers {
        attributes.push(kv(&format!("kafka.header.{name}"), bytes_or_text(value)));
    }
    if attach.metadata {
        attributes.extend(metadata(msg));
    }
    // A timestamp the time column cannot hold (before 1970, after 2262)
    // leaves the time unset rather than costing the line: the observed time
    // still says when it arrived.
    let time = msg
        .timestamp_ms
        .and_then(|t| t.checked_mul(1_000_000))
        .filter(|t| *t > 0)
        .map_or(0, |t| t as u64);
    LogRecord {
        time_unix_nano: time,
        observed_time_unix_nano: now_ns(),
        body: Some(AnyValue { value: Some(body) }),
        attributes,
        ..LogRecord::default()
    }
}

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// The attributes an OTLP message's resources get.
fn kafka_attributes(msg: &Message<'_>, attach: &Attach) -> Vec<KeyValue> {
    let mut out = Vec::new();
    if attach.metadata {
        out.extend(metadata(msg));
    }
    for wanted in &attach.headers {
        if let Some((_, value)) = msg.headers.iter().rev().find(|(n, _)| n == wanted) {
            out.push(kv(&format!("kafka.header.{wanted}"), bytes_or_text(value)));
        }
    }
    out
}

fn metadata(msg: &Message<'_>) -> [KeyValue; 3] {
    [
        kv(
            "kafka.topic",
            any_value::Value::StringValue(msg.topic.to_string()),
        ),
        kv(
            "kafka.partition",
            any_value::Value::IntValue(i64::from(msg.partition)),
        ),
        kv("kafka.offset", any_value::Value::IntValue(msg.offset)),
    ]
}

fn bytes_or_text(v: &[u8]) -> any_value::Value {
    match std::str::from_utf8(v) {
        Ok(s) => any_value::Value::StringValue(s.to_string()),
        Err(_) => any_value::Value::BytesValue(v.to_vec()),
    }
}

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(value) }),
        ..KeyValue::default()
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

    use super::*;

    fn msg(value: &[u8]) -> Message<'_> {
        Message {
            topic: "otlp_spans",
            partition: 3,
            offset: 42,
            key: Some(b"k1"),
            value,
            headers: vec![("tenant", b"acme"), ("other", b"x")],
            timestamp_ms: Some(1_700_000_000_000),
        }
    }

    fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
        attrs
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_ref()?.value.as_ref())
    }

    /// Guarantees: an OTLP protobuf message becomes its rows, and the
    /// metadata and the chosen headers (only those) land on its resource.
    #[test]
    fn otlp_proto_with_metadata_and_headers() {
        let span = Span {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            ..Span::default()
        };
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource::default()),
                scope_spans: vec![ScopeSpans {
                    spans: vec![span.clone(), span],
                    ..ScopeSpans::default()
                }],
                ..ResourceSpans::default()
            }],
        };
        let bytes = request.encode_to_vec();
        let attach = Attach {
            metadata: true,
            headers: vec!["tenant".into()],
        };
        let decoded = decode(
            &msg(&bytes),
            TopicSignal::Spans,
            Encoding::OtlpProto,
            &attach,
            usize::MAX,
        )
        .expect("decodes");
        assert_eq!(decoded.records(), 2);
        let Decoded::Spans(rows) = decoded else {
            panic!("spans expected")
        };
        let r = convert::batch_to_spans(&rows.batch).expect("reads back");
        let attrs = &r.resource_spans[0]
            .resource
            .as_ref()
            .expect("resource")
            .attributes;
        assert_eq!(
            attr(attrs, "kafka.offset"),
            Some(&any_value::Value::IntValue(42))
        );
        assert_eq!(
            attr(attrs, "kafka.header.tenant"),
            Some(&any_value::Value::StringValue("acme".into()))
        );
        assert_eq!(attr(attrs, "kafka.header.other"), None);
    }

    /// Guarantees: bytes that are not the declared request are an error,
    /// not an empty request.
    #[test]
    fn garbage_is_an_error() {
        let e = decode(
            &msg(b"\xff\xff\xff not protobuf"),
            TopicSignal::Logs,
            Encoding::OtlpProto,
            &Attach::default(),
            usize::MAX,
        )
        .expect_err("garbage");
        assert!(e.contains("OTLP protobuf"), "{e}");
        assert!(
            decode(
                &msg(b"{not json"),
                TopicSignal::Spans,
                Encoding::OtlpJson,
                &Attach::default(),
                usize::MAX,
            )
            .is_err()
        );
    }

    /// Guarantees: a message of 500,000 empty attributes (1 MB, about
    /// 64 MB decoded) is refused before it is decoded when that is over
    /// `max_decoded_message_size`, naming the setting, and decodes under a
    /// larger one.
    #[test]
    fn a_message_that_would_decode_too_large_is_refused() {
        let mut record = Vec::new();
        for _ in 0..500_000 {
            record.extend_from_slice(&[0x32, 0x00]);
        }
        let request = ExportLogsServiceRequest {
            resource_logs: vec![opentelemetry_proto::tonic::logs::v1::ResourceLogs {
                scope_logs: vec![opentelemetry_proto::tonic::logs::v1::ScopeLogs {
                    log_records: vec![LogRecord::decode(&record[..]).expect("a record")],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let bytes = request.encode_to_vec();
        let e = decode(
            &msg(&bytes),
            TopicSignal::Logs,
            Encoding::OtlpProto,
            &Attach::default(),
            16 << 20,
        )
        .expect_err("too large");
        assert!(e.contains("max_decoded_message_size"), "{e}");
        let decoded = decode(
            &msg(&bytes),
            TopicSignal::Logs,
            Encoding::OtlpProto,
            &Attach::default(),
            128 << 20,
        )
        .expect("decodes");
        assert_eq!(decoded.records(), 1);
    }

    /// Guarantees: a line whose message timestamp is past 2262 (beyond the
    /// time column) or before 1970 is kept, with its time unset and its
    /// observed time set.
    #[test]
    fn hostile_timestamps_keep_the_line() {
        for ts in [i64::MAX / 10, i64::MAX, -5] {
            let m = Message {
                timestamp_ms: Some(ts),
                ..msg(b"x")
            };
            let Decoded::Line(record) = decode(
                &m,
                TopicSignal::Logs,
                Encoding::Text,
                &Attach::default(),
                usize::MAX,
            )
            .expect("decodes") else {
                panic!("a line expected")
            };
            assert_eq!(record.time_unix_nano, 0, "{ts}");
            assert!(record.observed_time_unix_nano > 0);
        }
    }

    /// Guarantees: a text line becomes a log record whose body is the
    /// value, with the key and every header as attributes and the
    /// message's timestamp as its time.
    #[test]
    fn text_line() {
        let Decoded::Line(record) = decode(
            &msg(b"GET /health 200"),
            TopicSignal::Logs,
            Encoding::Text,
            &Attach::default(),
            usize::MAX,
        )
        .expect("decodes") else {
            panic!("a line expected")
        };
        assert_eq!(
            record.body.and_then(|b| b.value),
            Some(any_value::Value::StringValue("GET /health 200".into()))
        );
        assert_eq!(record.time_unix_nano, 1_700_000_000_000_000_000);
        assert_eq!(
            attr(&record.attributes, "kafka.key"),
            Some(&any_value::Value::StringValue("k1".into()))
        );
        assert!(attr(&record.attributes, "kafka.header.other").is_some());
    }
}
