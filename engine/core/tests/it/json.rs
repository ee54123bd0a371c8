//! OTLP/JSON decoding and encoding follow the rules of the OTLP
//! specification, on hand-written edge cases.

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
    metric, number_data_point,
};
use weir_core::convert::{ConvertError, json};

fn spans_json(span: &str) -> String {
    format!(r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{span}]}}]}}]}}"#)
}

/// Guarantees: 64-bit integers are accepted both as decimal strings and as
/// JSON numbers, for times, counts and `intValue`.
#[test]
fn int64_as_string_or_number() {
    let a = json::decode_spans(spans_json(
        r#"{"traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"EEE19B7EC3C1B174",
            "startTimeUnixNano":"1544712660000000000","endTimeUnixNano":1544712661000000000,
            "attributes":[{"key":"a","value":{"intValue":"-10"}},{"key":"b","value":{"intValue":10}}]}"#,
    ).as_bytes())
    .expect("decodes");
    let span = &a.resource_spans[0].scope_spans[0].spans[0];
    assert_eq!(span.start_time_unix_nano, 1_544_712_660_000_000_000);
    assert_eq!(span.end_time_unix_nano, 1_544_712_661_000_000_000);
    assert_eq!(
        span.attributes[0].value,
        Some(AnyValue {
            value: Some(any_value::Value::IntValue(-10))
        })
    );
    assert_eq!(
        span.attributes[1].value,
        Some(AnyValue {
            value: Some(any_value::Value::IntValue(10))
        })
    );
    // Ids are hex in any case.
    assert_eq!(span.trace_id[0], 0x5b);
    assert_eq!(
        span.span_id,
        vec![0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x74]
    );
}

/// Guarantees: unknown fields are ignored at every level, and `null` means
/// "not set".
#[test]
fn unknown_fields_and_nulls_are_ignored() {
    let body = r#"{"resourceLogs":[{"future":1,"resource":{"attributes":[],"x":[1,2]},
        "scopeLogs":[{"scope":null,"logRecords":[{"body":{"stringValue":"hi","other":{}},
        "severityText":null,"surprise":{"deep":[{"a":null}]}}]}]}],"extra":"yes"}"#;
    let req = json::decode_logs(body.as_bytes()).expect("decodes");
    let rl = &req.resource_logs[0];
    assert!(rl.resource.is_some());
    assert!(rl.scope_logs[0].scope.is_none());
    let record = &rl.scope_logs[0].log_records[0];
    assert_eq!(
        record.body,
        Some(AnyValue {
            value: Some(any_value::Value::StringValue("hi".into()))
        })
    );
    assert_eq!(record.severity_text, "");
}

/// Guarantees: fields may be missing (a key-value without value, a record
/// with nothing, a scope without name), and decode to their defaults.
#[test]
fn missing_optional_fields() {
    let req = json::decode_logs(
        br#"{"resourceLogs":[{"scopeLogs":[{"scope":{},"logRecords":[{},{"attributes":[{"key":"k"},{"value":{}}]}]}]}]}"#,
    )
    .expect("decodes");
    let sl = &req.resource_logs[0].scope_logs[0];
    assert_eq!(sl.scope.as_ref().map(|s| s.name.as_str()), Some(""));
    assert_eq!(sl.log_records.len(), 2);
    let attrs = &sl.log_records[1].attributes;
    assert_eq!(
        attrs[0],
        KeyValue {
            key: "k".into(),
            value: None,
            key_strindex: 0
        }
    );
    assert_eq!(attrs[1].key, "");
    assert_eq!(attrs[1].value, Some(AnyValue { value: None }));
    assert!(
        json::decode_logs(b"{}")
            .expect("decodes")
            .resource_logs
            .is_empty()
    );
}

/// Guarantees: enums are accepted as integers and by name.
#[test]
fn enums_as_numbers_or_names() {
    let req = json::decode_spans(
        spans_json(r#"{"traceId":"01","spanId":"02","kind":"SPAN_KIND_CLIENT","status":{"code":"STATUS_CODE_ERROR"}},
                      {"kind":2,"status":{"code":1}}"#)
        .as_bytes(),
    )
    .expect("decodes");
    let spans = &req.resource_spans[0].scope_spans[0].spans;
    assert_eq!(spans[0].kind, 3);
    assert_eq!(spans[0].status.as_ref().map(|s| s.code), Some(2));
    assert_eq!(spans[1].kind, 2);
    assert_eq!(spans[1].status.as_ref().map(|s| s.code), Some(1));
    let logs = json::decode_logs(
        br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"severityNumber":"SEVERITY_NUMBER_WARN"}]}]}]}"#,
    )
    .expect("decodes");
    assert_eq!(
        logs.resource_logs[0].scope_logs[0].log_records[0].severity_number,
        13
    );
    let err = json::decode_spans(spans_json(r#"{"kind":"SPAN_KIND_NOPE"}"#).as_bytes())
        .expect_err("an unknown enum name is an error");
    assert!(err.to_string().contains("kind"), "{err}");
}

/// Guarantees: doubles accept "NaN", "Infinity" and "-Infinity", and the
/// encoder writes non-finite doubles that way (never `null`).
#[test]
fn non_finite_doubles() {
    let req = ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![
                    Metric {
                        name: "g".into(),
                        data: Some(metric::Data::Gauge(Gauge {
                            data_points: vec![NumberDataPoint {
                                value: Some(number_data_point::Value::AsDouble(f64::NAN)),
                                ..Default::default()
                            }],
                        })),
                        ..Default::default()
                    },
                    Metric {
                        name: "h".into(),
                        data: Some(metric::Data::Histogram(Histogram {
                            data_points: vec![HistogramDataPoint {
                                sum: Some(f64::INFINITY),
                                min: Some(f64::NEG_INFINITY),
                                explicit_bounds: vec![f64::INFINITY],
                                ..Default::default()
                            }],
                            aggregation_temporality: 2,
                        })),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let text = String::from_utf8(json::encode_metrics(&req).expect("encodes")).expect("UTF-8");
    assert!(text.contains(r#""asDouble":"NaN""#), "{text}");
    assert!(text.contains(r#""sum":"Infinity""#), "{text}");
    assert!(text.contains(r#""min":"-Infinity""#), "{text}");
    assert!(!text.contains("null"), "{text}");
    let back = json::decode_metrics(text.as_bytes()).expect("decodes");
    let point = match &back.resource_metrics[0].scope_metrics[0].metrics[0].data {
        Some(metric::Data::Gauge(g)) => g.data_points[0].value,
        other => panic!("expected a gauge, got {other:?}"),
    };
    assert!(matches!(point, Some(number_data_point::Value::AsDouble(d)) if d.is_nan()));
}

/// Guarantees: the encoder writes lowerCamelCase keys, hex ids, 64-bit
/// integers as strings, enums as integers, bytes as base64, and omits
/// fields left at their default, but keeps set oneof members such as an
/// empty `stringValue`.
#[test]
fn encoder_follows_otlp_json() {
    let req = json::decode_spans(
        spans_json(
            r#"{"traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"EEE19B7EC3C1B174",
                "kind":2,"startTimeUnixNano":"1","droppedEventsCount":0,
                "attributes":[{"key":"b","value":{"bytesValue":"AP8="}},{"key":"e","value":{"stringValue":""}}]}"#,
        )
        .as_bytes(),
    )
    .expect("decodes");
    let text = String::from_utf8(json::encode_spans(&req).expect("encodes")).expect("UTF-8");
    assert_eq!(
        text,
        r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","kind":2,"startTimeUnixNano":"1","attributes":[{"key":"b","value":{"bytesValue":"AP8="}},{"key":"e","value":{"stringValue":""}}]}]}]}]}"#
    );
}

/// Guarantees: invalid input is an `InvalidOtlp` error that says where the
/// problem is, never a panic.
#[test]
fn errors_name_the_place() {
    let bad = |body: &str| match json::decode_spans(body.as_bytes()) {
        Err(ConvertError::InvalidOtlp(message)) => message,
        other => panic!("expected InvalidOtlp for {body}, got {other:?}"),
    };
    assert!(bad("not json").contains("not valid JSON"));
    assert!(bad("[]").contains("top level"));
    let m = bad(&spans_json(r#"{"startTimeUnixNano":"soon"}"#));
    assert!(
        m.contains("resourceSpans[0].scopeSpans[0].spans[0].startTimeUnixNano"),
        "{m}"
    );
    let m = bad(&spans_json(r#"{"traceId":"zz"}"#));
    assert!(m.contains("traceId") && m.contains("hex"), "{m}");
    let m = bad(&spans_json(r#"{"startTimeUnixNano":-1}"#));
    assert!(m.contains("startTimeUnixNano"), "{m}");
    let m = bad(r#"{"resourceSpans":{}}"#);
    assert!(m.contains("expected an array"), "{m}");
}
