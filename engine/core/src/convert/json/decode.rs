//! OTLP/JSON decoding: the body is parsed with `serde_json`, then each OTLP
//! message is read out of the document by one function, with the field
//! readers of [`super::fields`].

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
use serde_json::Value;

use super::fields::{
    At, JErr, JMap, JResult, base64_value, bool_value, enum_value, f64_value, field, hex_value,
    i32_value, i64_value, kind, msg, opt_msg, repeated, repeated_values, scalar, string_value,
    u32_value, u64_value,
};
use crate::convert::ConvertError;

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
