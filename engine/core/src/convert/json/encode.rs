//! OTLP/JSON encoding: a small JSON writer and one function per OTLP
//! message that writes its fields by the rules of [`super`].

use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, EntityRef, InstrumentationScope, KeyValue, any_value,
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

use crate::convert::ConvertError;

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
