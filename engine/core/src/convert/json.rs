//! OTLP/JSON: the JSON encoding of OTLP requests, as the OTLP specification
//! defines it ("JSON Protobuf Encoding").
//!
//! The rules, on decode and encode:
//!
//! * keys are the lowerCamelCase field names; unknown keys are ignored, and
//!   so is `null` (it means "not set");
//! * trace and span ids are hex strings (any case on decode, lower case on
//!   encode), not base64;
//! * enums are integers; on decode their names (`"SPAN_KIND_SERVER"`) are
//!   accepted too;
//! * 64-bit integers are decimal strings; on decode JSON numbers are
//!   accepted too (and for 32-bit integers, strings too);
//! * doubles are numbers, or `"NaN"`, `"Infinity"`, `"-Infinity"`;
//! * `bytesValue` is base64;
//! * fields left at their default are omitted on encode, except members of
//!   a `oneof` and `optional` fields, which are written whenever set (an
//!   `AnyValue` holding `""` is `{"stringValue":""}`), and messages that are
//!   present but empty, which are written as `{}` (a span with an empty
//!   status keeps it).
//!
//! This module does not use `opentelemetry-proto`'s serde derives: they
//! write non-finite doubles as `null` (which then fails to decode), read
//! `"NaN"` only in summary quantiles, reject objects that omit fields such as
//! `KeyValue.key` or `ArrayValue.values`, and accept no enum names.

use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, EntityRef, InstrumentationScope, KeyValue, KeyValueList, any_value,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs, SeverityNumber};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Exemplar, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge,
    Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
    Summary, SummaryDataPoint, exemplar, exponential_histogram_data_point::Buckets, metric,
    number_data_point, summary_data_point::ValueAtQuantile,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    ResourceSpans, ScopeSpans, Span, Status, span, span::SpanKind, status::StatusCode,
};
use serde_json::{Map, Value};

use super::ConvertError;

/// Decodes an OTLP/JSON logs request.
pub fn decode_logs(body: &[u8]) -> Result<ExportLogsServiceRequest, ConvertError> {
    let root = parse(body)?;
    let resource_logs =
        repeated(&root, "resourceLogs", resource_logs).map_err(JErr::into_convert)?;
    Ok(ExportLogsServiceRequest { resource_logs })
}

/// Decodes an OTLP/JSON trace request.
pub fn decode_spans(body: &[u8]) -> Result<ExportTraceServiceRequest, ConvertError> {
    let root = parse(body)?;
    let resource_spans =
        repeated(&root, "resourceSpans", resource_spans).map_err(JErr::into_convert)?;
    Ok(ExportTraceServiceRequest { resource_spans })
}

/// Decodes an OTLP/JSON metrics request.
pub fn decode_metrics(body: &[u8]) -> Result<ExportMetricsServiceRequest, ConvertError> {
    let root = parse(body)?;
    let resource_metrics =
        repeated(&root, "resourceMetrics", resource_metrics).map_err(JErr::into_convert)?;
    Ok(ExportMetricsServiceRequest { resource_metrics })
}

/// Encodes a logs request as OTLP/JSON.
pub fn encode_logs(req: &ExportLogsServiceRequest) -> Result<Vec<u8>, ConvertError> {
    let mut w = Writer::default();
    let mut o = w.object();
    o.messages("resourceLogs", &req.resource_logs, write_resource_logs);
    o.end();
    Ok(w.out.into_bytes())
}

/// Encodes a trace request as OTLP/JSON.
pub fn encode_spans(req: &ExportTraceServiceRequest) -> Result<Vec<u8>, ConvertError> {
    let mut w = Writer::default();
    let mut o = w.object();
    o.messages("resourceSpans", &req.resource_spans, write_resource_spans);
    o.end();
    Ok(w.out.into_bytes())
}

/// Encodes a metrics request as OTLP/JSON.
pub fn encode_metrics(req: &ExportMetricsServiceRequest) -> Result<Vec<u8>, ConvertError> {
    let mut w = Writer::default();
    let mut o = w.object();
    o.messages(
        "resourceMetrics",
        &req.resource_metrics,
        write_resource_metrics,
    );
    o.end();
    Ok(w.out.into_bytes())
}

// ---------------------------------------------------------------------------
// Encoding.

/// Appends `value` as OTLP/JSON (`{"arrayValue":{...}}`, ...) to `out`.
pub(crate) fn write_any_value_to(out: &mut String, value: &AnyValue) {
    let mut w = Writer {
        out: std::mem::take(out),
    };
    write_any_value(&mut w, value);
    *out = w.out;
}

/// `entity_refs` as an OTLP/JSON array of `EntityRef` objects.
pub(crate) fn write_entity_refs_to(out: &mut String, refs: &[EntityRef]) {
    let mut w = Writer {
        out: std::mem::take(out),
    };
    w.array(refs, write_entity_ref);
    *out = w.out;
}

/// A JSON text being written.
#[derive(Default)]
struct Writer {
    out: String,
}

impl Writer {
    fn object(&mut self) -> Obj<'_> {
        self.out.push('{');
        Obj {
            w: self,
            first: true,
        }
    }

    fn array<T>(&mut self, items: &[T], mut f: impl FnMut(&mut Writer, &T)) {
        self.out.push('[');
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            f(self, item);
        }
        self.out.push(']');
    }

    fn string(&mut self, s: &str) {
        let out = &mut self.out;
        out.push('"');
        let mut start = 0;
        for (i, b) in s.bytes().enumerate() {
            let escape = match b {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0x00..=0x1f => "",
                _ => continue,
            };
            out.push_str(&s[start..i]);
            if escape.is_empty() {
                // Writing to a String cannot fail.
                let _ = write!(out, "\\u{b:04x}");
            } else {
                out.push_str(escape);
            }
            start = i + 1;
        }
        out.push_str(&s[start..]);
        out.push('"');
    }

    fn f64(&mut self, v: f64) {
        if v.is_nan() {
            self.out.push_str("\"NaN\"");
        } else if v == f64::INFINITY {
            self.out.push_str("\"Infinity\"");
        } else if v == f64::NEG_INFINITY {
            self.out.push_str("\"-Infinity\"");
        } else {
            // `{:?}` is the shortest text that parses back to the same
            // double, with an exponent for extreme magnitudes: valid JSON.
            // Writing to a String cannot fail.
            let _ = write!(self.out, "{v:?}");
        }
    }

    fn display(&mut self, v: impl std::fmt::Display) {
        // Writing to a String cannot fail.
        let _ = write!(self.out, "{v}");
    }

    fn quoted(&mut self, v: impl std::fmt::Display) {
        // Writing to a String cannot fail.
        let _ = write!(self.out, "\"{v}\"");
    }
}

/// An object being written; `end` closes it.
struct Obj<'w> {
    w: &'w mut Writer,
    first: bool,
}

impl Obj<'_> {
    fn key(&mut self, key: &str) -> &mut Writer {
        if !self.first {
            self.w.out.push(',');
        }
        self.first = false;
        self.w.out.push('"');
        self.w.out.push_str(key);
        self.w.out.push_str("\":");
        self.w
    }

    fn end(self) {
        self.w.out.push('}');
    }

    /// A string field, omitted when empty.
    fn str(&mut self, key: &str, v: &str) {
        if !v.is_empty() {
            self.key(key).string(v);
        }
    }

    /// A 64-bit unsigned field, as a string, omitted when 0.
    fn u64(&mut self, key: &str, v: u64) {
        if v != 0 {
            self.key(key).quoted(v);
        }
    }

    /// A 32-bit integer or enum field, as a number, omitted when 0.
    fn int(&mut self, key: &str, v: impl Into<i64>) {
        let v = v.into();
        if v != 0 {
            self.key(key).display(v);
        }
    }

    fn bool(&mut self, key: &str, v: bool) {
        if v {
            self.key(key).out.push_str("true");
        }
    }

    /// A double field, omitted when 0 (a `-0.0` is kept).
    fn f64(&mut self, key: &str, v: f64) {
        if v.to_bits() != 0 {
            self.key(key).f64(v);
        }
    }

    /// An `optional double` field, written whenever set.
    fn opt_f64(&mut self, key: &str, v: Option<f64>) {
        if let Some(v) = v {
            self.key(key).f64(v);
        }
    }

    /// A trace or span id, as hex, omitted when empty.
    fn hex(&mut self, key: &str, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let out = &mut self.key(key).out;
        out.push('"');
        for b in bytes {
            // Writing to a String cannot fail.
            let _ = write!(out, "{b:02x}");
        }
        out.push('"');
    }

    /// A message field, written (possibly as `{}`) when present.
    fn message<T>(&mut self, key: &str, v: Option<&T>, f: impl FnOnce(&mut Writer, &T)) {
        if let Some(v) = v {
            f(self.key(key), v);
        }
    }

    /// A repeated message field, omitted when empty.
    fn messages<T>(&mut self, key: &str, items: &[T], f: impl FnMut(&mut Writer, &T)) {
        if !items.is_empty() {
            self.key(key).array(items, f);
        }
    }

    fn attributes(&mut self, key: &str, attrs: &[KeyValue]) {
        self.messages(key, attrs, write_key_value);
    }
}

fn write_any_value(w: &mut Writer, v: &AnyValue) {
    let mut o = w.object();
    match &v.value {
        None => {}
        Some(any_value::Value::StringValue(s)) => o.key("stringValue").string(s),
        Some(any_value::Value::BoolValue(b)) => o.key("boolValue").display(b),
        Some(any_value::Value::IntValue(i)) => o.key("intValue").quoted(i),
        Some(any_value::Value::DoubleValue(d)) => o.key("doubleValue").f64(*d),
        Some(any_value::Value::BytesValue(b)) => {
            let out = &mut o.key("bytesValue").out;
            out.push('"');
            BASE64.encode_string(b, out);
            out.push('"');
        }
        Some(any_value::Value::ArrayValue(a)) => {
            let mut inner = o.key("arrayValue").object();
            inner.messages("values", &a.values, write_any_value);
            inner.end();
        }
        Some(any_value::Value::KvlistValue(kv)) => {
            let mut inner = o.key("kvlistValue").object();
            inner.attributes("values", &kv.values);
            inner.end();
        }
        Some(any_value::Value::StringValueStrindex(i)) => {
            o.key("stringValueStrindex").display(i);
        }
    }
    o.end();
}

fn write_key_value(w: &mut Writer, kv: &KeyValue) {
    let mut o = w.object();
    o.key("key").string(&kv.key);
    o.message("value", kv.value.as_ref(), write_any_value);
    o.int("keyStrindex", kv.key_strindex);
    o.end();
}

fn write_entity_ref(w: &mut Writer, e: &EntityRef) {
    let mut o = w.object();
    o.str("schemaUrl", &e.schema_url);
    o.str("type", &e.r#type);
    o.messages("idKeys", &e.id_keys, |w, s| w.string(s));
    o.messages("descriptionKeys", &e.description_keys, |w, s| w.string(s));
    o.end();
}

fn write_resource(w: &mut Writer, r: &Resource) {
    let mut o = w.object();
    o.attributes("attributes", &r.attributes);
    o.int("droppedAttributesCount", r.dropped_attributes_count);
    o.messages("entityRefs", &r.entity_refs, write_entity_ref);
    o.end();
}

fn write_scope(w: &mut Writer, s: &InstrumentationScope) {
    let mut o = w.object();
    o.str("name", &s.name);
    o.str("version", &s.version);
    o.attributes("attributes", &s.attributes);
    o.int("droppedAttributesCount", s.dropped_attributes_count);
    o.end();
}

fn write_resource_logs(w: &mut Writer, r: &ResourceLogs) {
    let mut o = w.object();
    o.message("resource", r.resource.as_ref(), write_resource);
    o.messages("scopeLogs", &r.scope_logs, write_scope_logs);
    o.str("schemaUrl", &r.schema_url);
    o.end();
}

fn write_scope_logs(w: &mut Writer, s: &ScopeLogs) {
    let mut o = w.object();
    o.message("scope", s.scope.as_ref(), write_scope);
    o.messages("logRecords", &s.log_records, write_log_record);
    o.str("schemaUrl", &s.schema_url);
    o.end();
}

fn write_log_record(w: &mut Writer, r: &LogRecord) {
    let mut o = w.object();
    o.u64("timeUnixNano", r.time_unix_nano);
    o.u64("observedTimeUnixNano", r.observed_time_unix_nano);
    o.int("severityNumber", r.severity_number);
    o.str("severityText", &r.severity_text);
    o.message("body", r.body.as_ref(), write_any_value);
    o.attributes("attributes", &r.attributes);
    o.int("droppedAttributesCount", r.dropped_attributes_count);
    o.int("flags", r.flags);
    o.hex("traceId", &r.trace_id);
    o.hex("spanId", &r.span_id);
    o.str("eventName", &r.event_name);
    o.end();
}

fn write_resource_spans(w: &mut Writer, r: &ResourceSpans) {
    let mut o = w.object();
    o.message("resource", r.resource.as_ref(), write_resource);
    o.messages("scopeSpans", &r.scope_spans, write_scope_spans);
    o.str("schemaUrl", &r.schema_url);
    o.end();
}

fn write_scope_spans(w: &mut Writer, s: &ScopeSpans) {
    let mut o = w.object();
    o.message("scope", s.scope.as_ref(), write_scope);
    o.messages("spans", &s.spans, write_span);
    o.str("schemaUrl", &s.schema_url);
    o.end();
}

fn write_span(w: &mut Writer, s: &Span) {
    let mut o = w.object();
    o.hex("traceId", &s.trace_id);
    o.hex("spanId", &s.span_id);
    o.str("traceState", &s.trace_state);
    o.hex("parentSpanId", &s.parent_span_id);
    o.int("flags", s.flags);
    o.str("name", &s.name);
    o.int("kind", s.kind);
    o.u64("startTimeUnixNano", s.start_time_unix_nano);
    o.u64("endTimeUnixNano", s.end_time_unix_nano);
    o.attributes("attributes", &s.attributes);
    o.int("droppedAttributesCount", s.dropped_attributes_count);
    o.messages("events", &s.events, write_event);
    o.int("droppedEventsCount", s.dropped_events_count);
    o.messages("links", &s.links, write_link);
    o.int("droppedLinksCount", s.dropped_links_count);
    o.message("status", s.status.as_ref(), write_status);
    o.end();
}

fn write_event(w: &mut Writer, e: &span::Event) {
    let mut o = w.object();
    o.u64("timeUnixNano", e.time_unix_nano);
    o.str("name", &e.name);
    o.attributes("attributes", &e.attributes);
    o.int("droppedAttributesCount", e.dropped_attributes_count);
    o.end();
}

fn write_link(w: &mut Writer, l: &span::Link) {
    let mut o = w.object();
    o.hex("traceId", &l.trace_id);
    o.hex("spanId", &l.span_id);
    o.str("traceState", &l.trace_state);
    o.attributes("attributes", &l.attributes);
    o.int("droppedAttributesCount", l.dropped_attributes_count);
    o.int("flags", l.flags);
    o.end();
}

fn write_status(w: &mut Writer, s: &Status) {
    let mut o = w.object();
    o.str("message", &s.message);
    o.int("code", s.code);
    o.end();
}

fn write_resource_metrics(w: &mut Writer, r: &ResourceMetrics) {
    let mut o = w.object();
    o.message("resource", r.resource.as_ref(), write_resource);
    o.messages("scopeMetrics", &r.scope_metrics, write_scope_metrics);
    o.str("schemaUrl", &r.schema_url);
    o.end();
}

fn write_scope_metrics(w: &mut Writer, s: &ScopeMetrics) {
    let mut o = w.object();
    o.message("scope", s.scope.as_ref(), write_scope);
    o.messages("metrics", &s.metrics, write_metric);
    o.str("schemaUrl", &s.schema_url);
    o.end();
}

fn write_metric(w: &mut Writer, m: &Metric) {
    let mut o = w.object();
    o.str("name", &m.name);
    o.str("description", &m.description);
    o.str("unit", &m.unit);
    match &m.data {
        None => {}
        Some(metric::Data::Gauge(g)) => o.message("gauge", Some(g), write_gauge),
        Some(metric::Data::Sum(s)) => o.message("sum", Some(s), write_sum),
        Some(metric::Data::Histogram(h)) => o.message("histogram", Some(h), write_histogram),
        Some(metric::Data::ExponentialHistogram(h)) => {
            o.message("exponentialHistogram", Some(h), write_exp_histogram);
        }
        Some(metric::Data::Summary(s)) => o.message("summary", Some(s), write_summary),
    }
    o.attributes("metadata", &m.metadata);
    o.end();
}

fn write_gauge(w: &mut Writer, g: &Gauge) {
    let mut o = w.object();
    o.messages("dataPoints", &g.data_points, write_number_point);
    o.end();
}

fn write_sum(w: &mut Writer, s: &Sum) {
    let mut o = w.object();
    o.messages("dataPoints", &s.data_points, write_number_point);
    o.int("aggregationTemporality", s.aggregation_temporality);
    o.bool("isMonotonic", s.is_monotonic);
    o.end();
}

fn write_histogram(w: &mut Writer, h: &Histogram) {
    let mut o = w.object();
    o.messages("dataPoints", &h.data_points, write_histogram_point);
    o.int("aggregationTemporality", h.aggregation_temporality);
    o.end();
}

fn write_exp_histogram(w: &mut Writer, h: &ExponentialHistogram) {
    let mut o = w.object();
    o.messages("dataPoints", &h.data_points, write_exp_histogram_point);
    o.int("aggregationTemporality", h.aggregation_temporality);
    o.end();
}

fn write_summary(w: &mut Writer, s: &Summary) {
    let mut o = w.object();
    o.messages("dataPoints", &s.data_points, write_summary_point);
    o.end();
}

fn write_number_point(w: &mut Writer, p: &NumberDataPoint) {
    let mut o = w.object();
    o.attributes("attributes", &p.attributes);
    o.u64("startTimeUnixNano", p.start_time_unix_nano);
    o.u64("timeUnixNano", p.time_unix_nano);
    match p.value {
        None => {}
        Some(number_data_point::Value::AsDouble(d)) => o.key("asDouble").f64(d),
        Some(number_data_point::Value::AsInt(i)) => o.key("asInt").quoted(i),
    }
    o.messages("exemplars", &p.exemplars, write_exemplar);
    o.int("flags", p.flags);
    o.end();
}

fn write_u64s(w: &mut Writer, v: &u64) {
    w.quoted(v);
}

fn write_f64s(w: &mut Writer, v: &f64) {
    w.f64(*v);
}

fn write_histogram_point(w: &mut Writer, p: &HistogramDataPoint) {
    let mut o = w.object();
    o.attributes("attributes", &p.attributes);
    o.u64("startTimeUnixNano", p.start_time_unix_nano);
    o.u64("timeUnixNano", p.time_unix_nano);
    o.u64("count", p.count);
    o.opt_f64("sum", p.sum);
    o.messages("bucketCounts", &p.bucket_counts, write_u64s);
    o.messages("explicitBounds", &p.explicit_bounds, write_f64s);
    o.messages("exemplars", &p.exemplars, write_exemplar);
    o.int("flags", p.flags);
    o.opt_f64("min", p.min);
    o.opt_f64("max", p.max);
    o.end();
}

fn write_buckets(w: &mut Writer, b: &Buckets) {
    let mut o = w.object();
    o.int("offset", b.offset);
    o.messages("bucketCounts", &b.bucket_counts, write_u64s);
    o.end();
}

fn write_exp_histogram_point(w: &mut Writer, p: &ExponentialHistogramDataPoint) {
    let mut o = w.object();
    o.attributes("attributes", &p.attributes);
    o.u64("startTimeUnixNano", p.start_time_unix_nano);
    o.u64("timeUnixNano", p.time_unix_nano);
    o.u64("count", p.count);
    o.opt_f64("sum", p.sum);
    o.int("scale", p.scale);
    o.u64("zeroCount", p.zero_count);
    o.message("positive", p.positive.as_ref(), write_buckets);
    o.message("negative", p.negative.as_ref(), write_buckets);
    o.int("flags", p.flags);
    o.messages("exemplars", &p.exemplars, write_exemplar);
    o.opt_f64("min", p.min);
    o.opt_f64("max", p.max);
    o.f64("zeroThreshold", p.zero_threshold);
    o.end();
}

fn write_summary_point(w: &mut Writer, p: &SummaryDataPoint) {
    let mut o = w.object();
    o.attributes("attributes", &p.attributes);
    o.u64("startTimeUnixNano", p.start_time_unix_nano);
    o.u64("timeUnixNano", p.time_unix_nano);
    o.u64("count", p.count);
    o.f64("sum", p.sum);
    o.messages(
        "quantileValues",
        &p.quantile_values,
        |w, q: &ValueAtQuantile| {
            let mut o = w.object();
            o.f64("quantile", q.quantile);
            o.f64("value", q.value);
            o.end();
        },
    );
    o.int("flags", p.flags);
    o.end();
}

fn write_exemplar(w: &mut Writer, e: &Exemplar) {
    let mut o = w.object();
    o.attributes("filteredAttributes", &e.filtered_attributes);
    o.u64("timeUnixNano", e.time_unix_nano);
    match e.value {
        None => {}
        Some(exemplar::Value::AsDouble(d)) => o.key("asDouble").f64(d),
        Some(exemplar::Value::AsInt(i)) => o.key("asInt").quoted(i),
    }
    o.hex("spanId", &e.span_id);
    o.hex("traceId", &e.trace_id);
    o.end();
}

// ---------------------------------------------------------------------------
// Decoding.

/// A decoding error and where it happened (the path is built on the way up).
pub(crate) struct JErr {
    /// Path segments, innermost first.
    path: Vec<String>,
    message: String,
}

impl JErr {
    fn new(message: impl Into<String>) -> Self {
        JErr {
            path: Vec::new(),
            message: message.into(),
        }
    }

    fn into_convert(self) -> ConvertError {
        ConvertError::InvalidOtlp(self.to_string())
    }
}

impl std::fmt::Display for JErr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            return f.write_str(&self.message);
        }
        let mut path = String::new();
        for seg in self.path.iter().rev() {
            if !seg.starts_with('[') && !path.is_empty() {
                path.push('.');
            }
            path.push_str(seg);
        }
        write!(f, "at `{path}`: {}", self.message)
    }
}

type JResult<T> = Result<T, JErr>;

/// Adds a path segment to an error on its way up.
trait At<T> {
    fn at(self, seg: impl FnOnce() -> String) -> JResult<T>;
}

impl<T> At<T> for JResult<T> {
    fn at(self, seg: impl FnOnce() -> String) -> JResult<T> {
        self.map_err(|mut e| {
            e.path.push(seg());
            e
        })
    }
}

type JMap = Map<String, Value>;

fn parse(body: &[u8]) -> Result<JMap, ConvertError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(other) => Err(ConvertError::InvalidOtlp(format!(
            "OTLP/JSON: expected a JSON object at the top level, found {}",
            kind(&other)
        ))),
        Err(e) => Err(ConvertError::InvalidOtlp(format!(
            "OTLP/JSON: not valid JSON: {e}"
        ))),
    }
}

/// The deepest JSON nesting [`parse_any_value`] reads. Protobuf decoding
/// stops at 100 nested messages, about 150 JSON levels for nested arrays:
/// more than serde_json's default limit of 128, well under this one.
const MAX_VALUE_DEPTH: usize = 512;

/// The deepest nesting of arrays and objects in `text`.
fn json_depth(text: &str) -> usize {
    let (mut depth, mut max, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for b in text.bytes() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// Parses the OTLP/JSON text of one `AnyValue` (an attribute's string form,
/// nested as deep as protobuf allows).
pub(crate) fn parse_any_value(text: &str) -> Result<AnyValue, String> {
    use serde::Deserialize as _;
    let depth = json_depth(text);
    if depth > MAX_VALUE_DEPTH {
        return Err(format!(
            "the value nests {depth} levels deep, more than {MAX_VALUE_DEPTH}"
        ));
    }
    let mut de = serde_json::Deserializer::from_str(text);
    de.disable_recursion_limit();
    let v = Value::deserialize(&mut de).map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())?;
    any_value_from(&v).map_err(|e| e.to_string())
}

/// Parses an OTLP/JSON array of `EntityRef` objects.
pub(crate) fn parse_entity_refs(text: &str) -> Result<Vec<EntityRef>, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    match &v {
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| msg(item, entity_ref).at(|| format!("[{i}]")))
            .collect::<JResult<_>>()
            .map_err(|e| e.to_string()),
        other => Err(format!("expected an array, found {}", kind(other))),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The value of `key`, or `None` when absent or null.
fn field<'a>(m: &'a JMap, key: &str) -> Option<&'a Value> {
    m.get(key).filter(|v| !v.is_null())
}

/// Decodes the object `v` with `f`.
fn msg<T>(v: &Value, f: impl FnOnce(&JMap) -> JResult<T>) -> JResult<T> {
    match v {
        Value::Object(m) => f(m),
        other => Err(JErr::new(format!(
            "expected an object, found {}",
            kind(other)
        ))),
    }
}

/// An optional message field.
fn opt_msg<T>(m: &JMap, key: &str, f: impl FnOnce(&JMap) -> JResult<T>) -> JResult<Option<T>> {
    match field(m, key) {
        None => Ok(None),
        Some(v) => msg(v, f).map(Some).at(|| key.to_string()),
    }
}

/// A repeated field whose items are decoded by `f`.
fn repeated<T>(m: &JMap, key: &str, f: impl Fn(&JMap) -> JResult<T>) -> JResult<Vec<T>> {
    repeated_values(m, key, |v| msg(v, &f))
}

fn repeated_values<T>(m: &JMap, key: &str, f: impl Fn(&Value) -> JResult<T>) -> JResult<Vec<T>> {
    match field(m, key) {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| f(v).at(|| format!("[{i}]")))
            .collect::<JResult<Vec<T>>>()
            .at(|| key.to_string()),
        Some(other) => Err(JErr::new(format!(
            "expected an array, found {}",
            kind(other)
        )))
        .at(|| key.to_string()),
    }
}

/// A scalar field decoded by `f`, or `T::default()` when absent.
fn scalar<T: Default>(m: &JMap, key: &str, f: impl FnOnce(&Value) -> JResult<T>) -> JResult<T> {
    match field(m, key) {
        None => Ok(T::default()),
        Some(v) => f(v).at(|| key.to_string()),
    }
}

fn string_value(v: &Value) -> JResult<String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        other => Err(JErr::new(format!(
            "expected a string, found {}",
            kind(other)
        ))),
    }
}

fn bool_value(v: &Value) -> JResult<bool> {
    match v {
        Value::Bool(b) => Ok(*b),
        other => Err(JErr::new(format!(
            "expected true or false, found {}",
            kind(other)
        ))),
    }
}

/// An integer given as a JSON number or as a decimal string.
fn integer<T: TryFrom<i128> + std::str::FromStr>(v: &Value, what: &str) -> JResult<T> {
    let out_of_range = || JErr::new(format!("{v} is not a valid {what}"));
    match v {
        Value::Number(n) => {
            let wide: i128 = if let Some(u) = n.as_u64() {
                u.into()
            } else if let Some(i) = n.as_i64() {
                i.into()
            } else {
                // A number written with a fraction or an exponent: accept it
                // when it is a whole number that a double holds exactly.
                match n.as_f64() {
                    Some(f) if f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_992.0 => f as i128,
                    _ => return Err(out_of_range()),
                }
            };
            T::try_from(wide).map_err(|_| out_of_range())
        }
        Value::String(s) => s.trim().parse::<T>().map_err(|_| out_of_range()),
        other => Err(JErr::new(format!(
            "expected a {what} (a number or a decimal string), found {}",
            kind(other)
        ))),
    }
}

fn u64_value(v: &Value) -> JResult<u64> {
    integer(v, "64-bit unsigned integer")
}

fn i64_value(v: &Value) -> JResult<i64> {
    integer(v, "64-bit integer")
}

fn u32_value(v: &Value) -> JResult<u32> {
    integer(v, "32-bit unsigned integer")
}

fn i32_value(v: &Value) -> JResult<i32> {
    integer(v, "32-bit integer")
}

fn f64_value(v: &Value) -> JResult<f64> {
    match v {
        Value::Number(n) => n
            .as_f64()
            .ok_or_else(|| JErr::new(format!("{n} is not a valid double"))),
        Value::String(s) => match s.as_str() {
            "NaN" => Ok(f64::NAN),
            "Infinity" => Ok(f64::INFINITY),
            "-Infinity" => Ok(f64::NEG_INFINITY),
            other => other.trim().parse::<f64>().map_err(|_| {
                JErr::new(format!(
                    "\"{other}\" is not a double (expected a number, \"NaN\", \"Infinity\" or \"-Infinity\")"
                ))
            }),
        },
        other => Err(JErr::new(format!("expected a double, found {}", kind(other)))),
    }
}

/// An enum given as an integer or by its name.
fn enum_value(v: &Value, from_name: fn(&str) -> Option<i32>) -> JResult<i32> {
    if let Value::String(s) = v
        && let Some(i) = from_name(s)
    {
        return Ok(i);
    }
    i32_value(v).map_err(|_| {
        JErr::new(format!(
            "{v} is neither an enum number nor a known enum name"
        ))
    })
}

/// A trace or span id in hex.
fn hex_value(v: &Value) -> JResult<Vec<u8>> {
    let s = match v {
        Value::String(s) => s.as_str(),
        other => {
            return Err(JErr::new(format!(
                "expected a hex string, found {}",
                kind(other)
            )));
        }
    };
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let bytes = s.as_bytes();
    if bytes.len() % 2 != 0 {
        return Err(JErr::new(format!(
            "\"{s}\" is not hex: it has an odd number of digits"
        )));
    }
    bytes
        .chunks_exact(2)
        .map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?))
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(|| JErr::new(format!("\"{s}\" is not a hex string")))
}

fn base64_value(v: &Value) -> JResult<Vec<u8>> {
    let s = string_value(v)?;
    BASE64
        .decode(s.trim())
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(s.trim()))
        .map_err(|e| JErr::new(format!("not valid base64: {e}")))
}

fn any_value_from(v: &Value) -> JResult<AnyValue> {
    msg(v, any_value)
}

fn any_value(m: &JMap) -> JResult<AnyValue> {
    use any_value::Value as V;
    let mut value = None;
    for (key, v) in m {
        if v.is_null() {
            continue;
        }
        let decoded = match key.as_str() {
            "stringValue" => V::StringValue(string_value(v)?),
            "boolValue" => V::BoolValue(bool_value(v)?),
            "intValue" => V::IntValue(i64_value(v)?),
            "doubleValue" => V::DoubleValue(f64_value(v)?),
            "bytesValue" => V::BytesValue(base64_value(v)?),
            "arrayValue" => V::ArrayValue(msg(v, |m| {
                Ok(ArrayValue {
                    values: repeated(m, "values", any_value)?,
                })
            })?),
            "kvlistValue" => V::KvlistValue(msg(v, |m| {
                Ok(KeyValueList {
                    values: repeated(m, "values", key_value)?,
                })
            })?),
            "stringValueStrindex" => V::StringValueStrindex(i32_value(v)?),
            _ => continue,
        };
        value = Some(decoded);
    }
    Ok(AnyValue { value })
}

fn key_value(m: &JMap) -> JResult<KeyValue> {
    Ok(KeyValue {
        key: scalar(m, "key", string_value)?,
        value: opt_msg(m, "value", any_value)?,
        key_strindex: scalar(m, "keyStrindex", i32_value)?,
    })
}

fn attributes(m: &JMap, key: &str) -> JResult<Vec<KeyValue>> {
    repeated(m, key, key_value)
}

fn strings(m: &JMap, key: &str) -> JResult<Vec<String>> {
    repeated_values(m, key, string_value)
}

fn entity_ref(m: &JMap) -> JResult<EntityRef> {
    Ok(EntityRef {
        schema_url: scalar(m, "schemaUrl", string_value)?,
        r#type: scalar(m, "type", string_value)?,
        id_keys: strings(m, "idKeys")?,
        description_keys: strings(m, "descriptionKeys")?,
    })
}

fn resource(m: &JMap) -> JResult<Resource> {
    Ok(Resource {
        attributes: attributes(m, "attributes")?,
        dropped_attributes_count: scalar(m, "droppedAttributesCount", u32_value)?,
        entity_refs: repeated(m, "entityRefs", entity_ref)?,
    })
}

fn scope(m: &JMap) -> JResult<InstrumentationScope> {
    Ok(InstrumentationScope {
        name: scalar(m, "name", string_value)?,
        version: scalar(m, "version", string_value)?,
        attributes: attributes(m, "attributes")?,
        dropped_attributes_count: scalar(m, "droppedAttributesCount", u32_value)?,
    })
}

fn resource_logs(m: &JMap) -> JResult<ResourceLogs> {
    Ok(ResourceLogs {
        resource: opt_msg(m, "resource", resource)?,
        scope_logs: repeated(m, "scopeLogs", scope_logs)?,
        schema_url: scalar(m, "schemaUrl", string_value)?,
    })
}

fn scope_logs(m: &JMap) -> JResult<ScopeLogs> {
    Ok(ScopeLogs {
        scope: opt_msg(m, "scope", scope)?,
        log_records: repeated(m, "logRecords", log_record)?,
        schema_url: scalar(m, "schemaUrl", string_value)?,
    })
}

fn severity_from_name(s: &str) -> Option<i32> {
    SeverityNumber::from_str_name(s).map(|v| v as i32)
}

fn log_record(m: &JMap) -> JResult<LogRecord> {
    Ok(LogRecord {
        time_unix_nano: scalar(m, "timeUnixNano", u64_value)?,
        observed_time_unix_nano: scalar(m, "observedTimeUnixNano", u64_value)?,
        severity_number: scalar(m, "severityNumber", |v| enum_value(v, severity_from_name))?,
        severity_text: scalar(m, "severityText", string_value)?,
        body: opt_msg(m, "body", any_value)?,
        attributes: attributes(m, "attributes")?,
        dropped_attributes_count: scalar(m, "droppedAttributesCount", u32_value)?,
        flags: scalar(m, "flags", u32_value)?,
        trace_id: scalar(m, "traceId", hex_value)?,
        span_id: scalar(m, "spanId", hex_value)?,
        event_name: scalar(m, "eventName", string_value)?,
    })
}

fn resource_spans(m: &JMap) -> JResult<ResourceSpans> {
    Ok(ResourceSpans {
        resource: opt_msg(m, "resource", resource)?,
        scope_spans: repeated(m, "scopeSpans", scope_spans)?,
        schema_url: scalar(m, "schemaUrl", string_value)?,
    })
}

fn scope_spans(m: &JMap) -> JResult<ScopeSpans> {
    Ok(ScopeSpans {
        scope: opt_msg(m, "scope", scope)?,
        spans: repeated(m, "spans", span)?,
        schema_url: scalar(m, "schemaUrl", string_value)?,
    })
}

fn span_kind_from_name(s: &str) -> Option<i32> {
    SpanKind::from_str_name(s).map(|v| v as i32)
}

fn status_code_from_name(s: &str) -> Option<i32> {
    StatusCode::from_str_name(s).map(|v| v as i32)
}

fn span(m: &JMap) -> JResult<Span> {
    Ok(Span {
        trace_id: scalar(m, "traceId", hex_value)?,
        span_id: scalar(m, "spanId", hex_value)?,
        trace_state: scalar(m, "traceState", string_value)?,
        parent_span_id: scalar(m, "parentSpanId", hex_value)?,
        flags: scalar(m, "flags", u32_value)?,
        name: scalar(m, "name", string_value)?,
        kind: scalar(m, "kind", |v| enum_value(v, span_kind_from_name))?,
        start_time_unix_nano: scalar(m, "startTimeUnixNano", u64_value)?,
        end_time_unix_nano: scalar(m, "endTimeUnixNano", u64_value)?,
        attributes: attributes(m, "attributes")?,
        dropped_attributes_count: scalar(m, "droppedAttributesCount", u32_value)?,
        events: repeated(m, "events", event)?,
        dropped_events_count: scalar(m, "droppedEventsCount", u32_value)?,
        links: repeated(m, "links", link)?,
        dropped_links_count: scalar(m, "droppedLinksCount", u32_value)?,
        status: opt_msg(m, "status", status)?,
    })
}

fn event(m: &JMap) -> JResult<span::Event> {
    Ok(span::Event {
        time_unix_nano: scalar(m, "timeUnixNano", u64_value)?,
        name: scalar(m, "name", string_value)?,
        attributes: attributes(m, "attributes")?,
        dropped_attributes_count: scalar(m, "droppedAttributesCount", u32_value)?,
    })
}

fn link(m: &JMap) -> JResult<span::Link> {
    Ok(span::Link {
        trace_id: scalar(m, "traceId", hex_value)?,
        span_id: scalar(m, "spanId", hex_value)?,
        trace_state: scalar(m, "traceState", string_value)?,
        attributes: attributes(m, "attributes")?,
        dropped_attributes_count: scalar(m, "droppedAttributesCount", u32_value)?,
        flags: scalar(m, "flags", u32_value)?,
    })
}

fn status(m: &JMap) -> JResult<Status> {
    Ok(Status {
        message: scalar(m, "message", string_value)?,
        code: scalar(m, "code", |v| enum_value(v, status_code_from_name))?,
    })
}

fn resource_metrics(m: &JMap) -> JResult<ResourceMetrics> {
    Ok(ResourceMetrics {
        resource: opt_msg(m, "resource", resource)?,
        scope_metrics: repeated(m, "scopeMetrics", scope_metrics)?,
        schema_url: scalar(m, "schemaUrl", string_value)?,
    })
}

fn scope_metrics(m: &JMap) -> JResult<ScopeMetrics> {
    Ok(ScopeMetrics {
        scope: opt_msg(m, "scope", scope)?,
        metrics: repeated(m, "metrics", metric)?,
        schema_url: scalar(m, "schemaUrl", string_value)?,
    })
}

fn temporality_from_name(s: &str) -> Option<i32> {
    AggregationTemporality::from_str_name(s).map(|v| v as i32)
}

fn temporality(m: &JMap) -> JResult<i32> {
    scalar(m, "aggregationTemporality", |v| {
        enum_value(v, temporality_from_name)
    })
}

fn metric(m: &JMap) -> JResult<Metric> {
    let mut data = None;
    if let Some(g) = opt_msg(m, "gauge", |m| {
        Ok(Gauge {
            data_points: repeated(m, "dataPoints", number_point)?,
        })
    })? {
        data = Some(metric::Data::Gauge(g));
    }
    if let Some(s) = opt_msg(m, "sum", |m| {
        Ok(Sum {
            data_points: repeated(m, "dataPoints", number_point)?,
            aggregation_temporality: temporality(m)?,
            is_monotonic: scalar(m, "isMonotonic", bool_value)?,
        })
    })? {
        data = Some(metric::Data::Sum(s));
    }
    if let Some(h) = opt_msg(m, "histogram", |m| {
        Ok(Histogram {
            data_points: repeated(m, "dataPoints", histogram_point)?,
            aggregation_temporality: temporality(m)?,
        })
    })? {
        data = Some(metric::Data::Histogram(h));
    }
    if let Some(h) = opt_msg(m, "exponentialHistogram", |m| {
        Ok(ExponentialHistogram {
            data_points: repeated(m, "dataPoints", exp_histogram_point)?,
            aggregation_temporality: temporality(m)?,
        })
    })? {
        data = Some(metric::Data::ExponentialHistogram(h));
    }
    if let Some(s) = opt_msg(m, "summary", |m| {
        Ok(Summary {
            data_points: repeated(m, "dataPoints", summary_point)?,
        })
    })? {
        data = Some(metric::Data::Summary(s));
    }
    Ok(Metric {
        name: scalar(m, "name", string_value)?,
        description: scalar(m, "description", string_value)?,
        unit: scalar(m, "unit", string_value)?,
        metadata: attributes(m, "metadata")?,
        data,
    })
}

fn opt_f64(m: &JMap, key: &str) -> JResult<Option<f64>> {
    match field(m, key) {
        None => Ok(None),
        Some(v) => f64_value(v).map(Some).at(|| key.to_string()),
    }
}

fn number_point(m: &JMap) -> JResult<NumberDataPoint> {
    let value = if let Some(v) = field(m, "asInt") {
        Some(number_data_point::Value::AsInt(
            i64_value(v).at(|| "asInt".into())?,
        ))
    } else {
        opt_f64(m, "asDouble")?.map(number_data_point::Value::AsDouble)
    };
    Ok(NumberDataPoint {
        attributes: attributes(m, "attributes")?,
        start_time_unix_nano: scalar(m, "startTimeUnixNano", u64_value)?,
        time_unix_nano: scalar(m, "timeUnixNano", u64_value)?,
        exemplars: repeated(m, "exemplars", exemplar)?,
        flags: scalar(m, "flags", u32_value)?,
        value,
    })
}

fn histogram_point(m: &JMap) -> JResult<HistogramDataPoint> {
    Ok(HistogramDataPoint {
        attributes: attributes(m, "attributes")?,
        start_time_unix_nano: scalar(m, "startTimeUnixNano", u64_value)?,
        time_unix_nano: scalar(m, "timeUnixNano", u64_value)?,
        count: scalar(m, "count", u64_value)?,
        sum: opt_f64(m, "sum")?,
        bucket_counts: repeated_values(m, "bucketCounts", u64_value)?,
        explicit_bounds: repeated_values(m, "explicitBounds", f64_value)?,
        exemplars: repeated(m, "exemplars", exemplar)?,
        flags: scalar(m, "flags", u32_value)?,
        min: opt_f64(m, "min")?,
        max: opt_f64(m, "max")?,
    })
}

fn buckets(m: &JMap) -> JResult<Buckets> {
    Ok(Buckets {
        offset: scalar(m, "offset", i32_value)?,
        bucket_counts: repeated_values(m, "bucketCounts", u64_value)?,
    })
}

fn exp_histogram_point(m: &JMap) -> JResult<ExponentialHistogramDataPoint> {
    Ok(ExponentialHistogramDataPoint {
        attributes: attributes(m, "attributes")?,
        start_time_unix_nano: scalar(m, "startTimeUnixNano", u64_value)?,
        time_unix_nano: scalar(m, "timeUnixNano", u64_value)?,
        count: scalar(m, "count", u64_value)?,
        sum: opt_f64(m, "sum")?,
        scale: scalar(m, "scale", i32_value)?,
        zero_count: scalar(m, "zeroCount", u64_value)?,
        positive: opt_msg(m, "positive", buckets)?,
        negative: opt_msg(m, "negative", buckets)?,
        flags: scalar(m, "flags", u32_value)?,
        exemplars: repeated(m, "exemplars", exemplar)?,
        min: opt_f64(m, "min")?,
        max: opt_f64(m, "max")?,
        zero_threshold: scalar(m, "zeroThreshold", f64_value)?,
    })
}

fn summary_point(m: &JMap) -> JResult<SummaryDataPoint> {
    Ok(SummaryDataPoint {
        attributes: attributes(m, "attributes")?,
        start_time_unix_nano: scalar(m, "startTimeUnixNano", u64_value)?,
        time_unix_nano: scalar(m, "timeUnixNano", u64_value)?,
        count: scalar(m, "count", u64_value)?,
        sum: scalar(m, "sum", f64_value)?,
        quantile_values: repeated(m, "quantileValues", |m| {
            Ok(ValueAtQuantile {
                quantile: scalar(m, "quantile", f64_value)?,
                value: scalar(m, "value", f64_value)?,
            })
        })?,
        flags: scalar(m, "flags", u32_value)?,
    })
}

fn exemplar(m: &JMap) -> JResult<Exemplar> {
    let value = if let Some(v) = field(m, "asInt") {
        Some(exemplar::Value::AsInt(i64_value(v).at(|| "asInt".into())?))
    } else {
        opt_f64(m, "asDouble")?.map(exemplar::Value::AsDouble)
    };
    Ok(Exemplar {
        filtered_attributes: attributes(m, "filteredAttributes")?,
        time_unix_nano: scalar(m, "timeUnixNano", u64_value)?,
        span_id: scalar(m, "spanId", hex_value)?,
        trace_id: scalar(m, "traceId", hex_value)?,
        value,
    })
}
