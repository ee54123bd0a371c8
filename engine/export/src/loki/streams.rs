//! Log records -> Loki streams, the way Loki's own OTLP ingestion makes
//! them: chosen resource attributes and the level are the stream's labels;
//! every other attribute, the trace and span ids and the scope are the
//! entry's structured metadata (or logfmt pairs after the line); the line
//! is the body. Names are sanitized as Prometheus label names
//! (`service.name` -> `service_name`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::LogRecord;

/// The label Loki gives a stream with no other label: it refuses streams
/// without any, and its OTLP ingestion names a service without a name so.
const UNKNOWN_SERVICE: (&str, &str) = ("service_name", "unknown_service");

/// How records become streams.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// The resource attributes that become labels.
    pub labels: Vec<String>,
    /// Structured metadata (`true`) or logfmt pairs after the line.
    pub structured_metadata: bool,
}

/// One entry of a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    /// Nanoseconds since the Unix epoch.
    pub unix_nanos: u64,
    /// The line.
    pub line: String,
    /// Structured metadata, name -> value, in the order written.
    pub metadata: Vec<(String, String)>,
}

/// The streams of a batch, by label set, each oldest entry first; and the
/// records that could not be sent.
#[derive(Debug, Default)]
pub(crate) struct Streams {
    /// Label set -> entries in time order.
    pub streams: BTreeMap<BTreeMap<String, String>, Vec<Entry>>,
    /// Records without a time.
    pub rejected: u64,
    /// Why the first of them was rejected.
    pub rejection: Option<String>,
}

/// The streams of `request`.
pub(crate) fn streams(request: &ExportLogsServiceRequest, settings: &Settings) -> Streams {
    let mut out = Streams::default();
    for resource_logs in &request.resource_logs {
        let resource: &[KeyValue] = resource_logs
            .resource
            .as_ref()
            .map_or(&[], |r| &r.attributes);
        let mut resource_labels = BTreeMap::new();
        let mut resource_metadata = Vec::new();
        for kv in resource {
            let value = kv.value.as_ref().map(text).unwrap_or_default();
            if settings.labels.contains(&kv.key) {
                if !value.is_empty() {
                    resource_labels.insert(label_name(&kv.key), value);
                }
            } else {
                resource_metadata.push((label_name(&kv.key), value));
            }
        }
        for scope_logs in &resource_logs.scope_logs {
            let mut scope_metadata = Vec::new();
            if let Some(scope) = &scope_logs.scope {
                for (name, value) in [
                    ("scope_name", &scope.name),
                    ("scope_version", &scope.version),
                ] {
                    if !value.is_empty() {
                        scope_metadata.push((name.to_string(), value.clone()));
                    }
                }
                for kv in &scope.attributes {
                    let value = kv.value.as_ref().map(text).unwrap_or_default();
                    scope_metadata.push((label_name(&kv.key), value));
                }
            }
            for record in &scope_logs.log_records {
                let time = match (record.time_unix_nano, record.observed_time_unix_nano) {
                    (0, 0) => {
                        out.rejected += 1;
                        out.rejection.get_or_insert_with(|| {
                            "a log record has neither a time nor an observed time; Loki needs \
                             one"
                            .to_string()
                        });
                        continue;
                    }
                    (0, observed) => observed,
                    (time, _) => time,
                };
                let mut labels = resource_labels.clone();
                if let Some(level) = level(record) {
                    labels.insert("level".to_string(), level);
                }
                if labels.is_empty() {
                    labels.insert(UNKNOWN_SERVICE.0.to_string(), UNKNOWN_SERVICE.1.to_string());
                }
                let mut metadata = resource_metadata.clone();
                metadata.extend(scope_metadata.iter().cloned());
                metadata.extend(record_metadata(record));
                let mut line = record.body.as_ref().map(body_line).unwrap_or_default();
                if !settings.structured_metadata {
                    append_logfmt(&mut line, &metadata);
                    metadata.clear();
                }
                out.streams.entry(labels).or_default().push(Entry {
                    unix_nanos: time,
                    line,
                    metadata,
                });
            }
        }
    }
    for entries in out.streams.values_mut() {
        entries.sort_by_key(|e| e.unix_nanos);
    }
    out
}

/// The record's own attributes, trace id, span id and event name.
fn record_metadata(record: &LogRecord) -> Vec<(String, String)> {
    let mut metadata: Vec<(String, String)> = record
        .attributes
        .iter()
        .map(|kv| {
            let value = kv.value.as_ref().map(text).unwrap_or_default();
            (label_name(&kv.key), value)
        })
        .collect();
    for (name, id) in [("trace_id", &record.trace_id), ("span_id", &record.span_id)] {
        if !id.is_empty() && id.iter().any(|b| *b != 0) {
            metadata.push((name.to_string(), hex(id)));
        }
    }
    if !record.event_name.is_empty() {
        metadata.push(("event_name".to_string(), record.event_name.clone()));
    }
    metadata
}

/// The `level` label: the severity text lower-cased, else the name of the
/// severity number's range; none when neither is set.
fn level(record: &LogRecord) -> Option<String> {
    let text = record.severity_text.trim();
    if !text.is_empty() {
        return Some(text.to_lowercase());
    }
    let name = match record.severity_number {
        1..=4 => "trace",
        5..=8 => "debug",
        9..=12 => "info",
        13..=16 => "warn",
        17..=20 => "error",
        21..=24 => "fatal",
        _ => return None,
    };
    Some(name.to_string())
}

/// An attribute name as a Prometheus label name: every character but
/// ASCII letters, digits and `_` becomes `_`, and a leading digit gets
/// `key_` before it (Loki's OTLP ingestion does the same).
pub(crate) fn label_name(key: &str) -> String {
    let mut name: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert_str(0, "key_");
    }
    if name.is_empty() {
        name.push('_');
    }
    name
}

/// A label set in Prometheus' syntax, as `StreamAdapter.labels` holds it:
/// `{a="1", b="x \"y\""}`.
pub(crate) fn label_set(labels: &BTreeMap<String, String>) -> String {
    let mut out = String::from("{");
    for (i, (name, value)) in labels.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(name);
        out.push('=');
        push_quoted(&mut out, value);
    }
    out.push('}');
    out
}

/// `value` in double quotes with Go's escapes.
fn push_quoted(out: &mut String, value: &str) {
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends ` name=value` for each pair, quoting values that need it
/// (logfmt).
fn append_logfmt(line: &mut String, pairs: &[(String, String)]) {
    for (name, value) in pairs {
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(name);
        line.push('=');
        let plain = !value.is_empty()
            && !value
                .chars()
                .any(|c| c == ' ' || c == '=' || c == '"' || c == '\\' || c.is_control());
        if plain {
            line.push_str(value);
        } else {
            push_quoted(line, value);
        }
    }
}

/// The line of a body: a string as is, anything else as JSON.
fn body_line(body: &AnyValue) -> String {
    match &body.value {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        _ => json(body).to_string(),
    }
}

/// A value as text: a string as is, numbers and booleans as written,
/// bytes in base64, arrays and maps as JSON (as Loki's OTLP ingestion
/// writes them).
fn text(value: &AnyValue) -> String {
    use any_value::Value as V;
    match &value.value {
        None => String::new(),
        Some(V::StringValue(s)) => s.clone(),
        Some(V::BoolValue(b)) => b.to_string(),
        Some(V::IntValue(i)) => i.to_string(),
        Some(V::DoubleValue(d)) => d.to_string(),
        Some(V::BytesValue(b)) => BASE64.encode(b),
        Some(V::StringValueStrindex(i)) => i.to_string(),
        Some(V::ArrayValue(_) | V::KvlistValue(_)) => json(value).to_string(),
    }
}

/// A value as plain JSON: maps as objects, bytes in base64.
fn json(value: &AnyValue) -> serde_json::Value {
    use any_value::Value as V;
    use serde_json::Value as J;
    match &value.value {
        None => J::Null,
        Some(V::StringValue(s)) => J::String(s.clone()),
        Some(V::BoolValue(b)) => J::Bool(*b),
        Some(V::IntValue(i)) => J::from(*i),
        Some(V::DoubleValue(d)) => serde_json::Number::from_f64(*d).map_or(J::Null, J::Number),
        Some(V::BytesValue(b)) => J::String(BASE64.encode(b)),
        Some(V::StringValueStrindex(i)) => J::from(*i),
        Some(V::ArrayValue(a)) => J::Array(a.values.iter().map(json).collect()),
        Some(V::KvlistValue(kvs)) => J::Object(
            kvs.values
                .iter()
                .map(|kv| (kv.key.clone(), kv.value.as_ref().map_or(J::Null, json)))
                .collect(),
        ),
    }
}

/// Lower-case hex.
fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{ArrayValue, KeyValueList};
    use opentelemetry_proto::tonic::logs::v1::{ResourceLogs, ScopeLogs};
    use opentelemetry_proto::tonic::resource::v1::Resource;

    fn string(key: &str, value: &str) -> KeyValue {
        KeyValue {
            key: key.to_string(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(value.to_string())),
            }),
            ..Default::default()
        }
    }

    fn request(resource: Vec<KeyValue>, records: Vec<LogRecord>) -> ExportLogsServiceRequest {
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

    fn settings(structured_metadata: bool) -> Settings {
        Settings {
            labels: vec!["service.name".to_string()],
            structured_metadata,
        }
    }

    /// Guarantees: names become Prometheus label names as Loki makes them,
    /// and label sets are written in Prometheus' syntax with Go escapes.
    #[test]
    fn names_and_label_sets() {
        assert_eq!(label_name("service.name"), "service_name");
        assert_eq!(label_name("k8s.pod-name"), "k8s_pod_name");
        assert_eq!(label_name("0day"), "key_0day");
        let labels = BTreeMap::from([
            ("a".to_string(), "x \"y\"\\\n".to_string()),
            ("b".to_string(), "1".to_string()),
        ]);
        assert_eq!(label_set(&labels), r#"{a="x \"y\"\\\n", b="1"}"#);
    }

    /// Guarantees: `level` comes from the severity text lower-cased, else
    /// from the severity number's range, else is absent; a stream with no
    /// label at all is `service_name="unknown_service"`.
    #[test]
    fn level_from_severity() {
        let record = |number: i32, text: &str| LogRecord {
            time_unix_nano: 1,
            severity_number: number,
            severity_text: text.to_string(),
            ..Default::default()
        };
        let out = streams(
            &request(
                vec![],
                vec![
                    record(17, ""),
                    record(9, "WARNING"),
                    record(3, ""),
                    record(0, ""),
                ],
            ),
            &settings(true),
        );
        let sets: Vec<String> = out.streams.keys().map(label_set).collect();
        assert_eq!(
            sets,
            [
                r#"{level="error"}"#,
                r#"{level="trace"}"#,
                r#"{level="warning"}"#,
                r#"{service_name="unknown_service"}"#
            ]
        );
    }

    /// Guarantees: non-label attributes, the scope and the ids are
    /// structured metadata, or logfmt pairs after the line when it is off;
    /// non-string bodies are JSON; entries are in time order; a record
    /// without any time is rejected and counted, one with only an observed
    /// time takes it.
    #[test]
    fn metadata_lines_and_order() {
        let kvlist = AnyValue {
            value: Some(any_value::Value::KvlistValue(KeyValueList {
                values: vec![string("k", "v")],
            })),
        };
        let array = AnyValue {
            value: Some(any_value::Value::ArrayValue(ArrayValue {
                values: vec![AnyValue {
                    value: Some(any_value::Value::IntValue(1)),
                }],
            })),
        };
        let records = vec![
            LogRecord {
                time_unix_nano: 30,
                body: Some(kvlist),
                trace_id: vec![0xab; 16],
                attributes: vec![string("http.method", "GET")],
                ..Default::default()
            },
            LogRecord {
                observed_time_unix_nano: 10,
                body: Some(AnyValue {
                    value: Some(any_value::Value::StringValue("plain text".to_string())),
                }),
                attributes: vec![KeyValue {
                    key: "list".to_string(),
                    value: Some(array),
                    ..Default::default()
                }],
                ..Default::default()
            },
            LogRecord::default(),
        ];
        let resource = vec![string("service.name", "api"), string("host.name", "h 1")];
        let out = streams(&request(resource.clone(), records.clone()), &settings(true));
        assert_eq!(out.rejected, 1);
        assert!(out.rejection.is_some());
        let (labels, entries) = out.streams.iter().next().expect("one stream");
        assert_eq!(label_set(labels), r#"{service_name="api"}"#);
        let times: Vec<u64> = entries.iter().map(|e| e.unix_nanos).collect();
        assert_eq!(times, [10, 30]);
        assert_eq!(entries[0].line, "plain text");
        assert_eq!(entries[1].line, r#"{"k":"v"}"#);
        let pair = |n: &str, v: &str| (n.to_string(), v.to_string());
        assert_eq!(
            entries[0].metadata,
            [pair("host_name", "h 1"), pair("list", "[1]")]
        );
        assert_eq!(
            entries[1].metadata,
            [
                pair("host_name", "h 1"),
                pair("http_method", "GET"),
                pair("trace_id", &"ab".repeat(16))
            ]
        );

        let out = streams(&request(resource, records), &settings(false));
        let entries = out.streams.values().next().expect("one stream");
        assert_eq!(entries[0].line, r#"plain text host_name="h 1" list=[1]"#);
        assert!(entries[0].metadata.is_empty());
    }
}
