//! The config: errors naming the key, defaults, and `process` through the
//! SDK's harness.

use serde_json::{Value, json};
use weir_plugin::{Error, Plugin, harness};

use super::*;

fn init_error(config: Value) -> String {
    match SpanMetrics::init(&config.to_string()) {
        Ok(_) => panic!("config {config} was accepted"),
        Err(Error::InvalidArgument(message)) => message,
        Err(other) => panic!("config {config}: {other:?} is not an invalid-argument error"),
    }
}

/// Scenario: every kind of bad config. Guarantees: `init` refuses it with
/// an invalid-argument error whose message names the key to fix.
#[test]
fn bad_configs_are_refused_naming_the_key() {
    for (config, key, words) in [
        (
            json!({"intervall": "15s"}),
            "`intervall`",
            "unknown field `intervall`",
        ),
        (json!({"unit": "min"}), "`unit`", "unknown variant `min`"),
        (
            json!({"temporality": "sometimes"}),
            "`temporality`",
            "unknown variant",
        ),
        (json!({"interval": "0s"}), "`interval`", "longer than zero"),
        (json!({"interval": "15"}), "`interval`", "no unit"),
        (json!({"interval": "25h"}), "`interval`", "too long"),
        (
            json!({"buckets": ["10ms", "5ms"]}),
            "`buckets`",
            "`5ms` (buckets[1]) follows `10ms`",
        ),
        (
            json!({"buckets": ["10ms", "10ms"]}),
            "`buckets`",
            "must increase",
        ),
        (json!({"buckets": []}), "`buckets`", "at least one bound"),
        (
            json!({"buckets": ["10 parsecs"]}),
            "`buckets[0]`",
            "not a unit",
        ),
        (
            json!({"buckets": [10, 20]}),
            "`buckets[0]`",
            "expected a string",
        ),
        (json!({"expiration": "0s"}), "`expiration`", "zero"),
        (
            json!({"expiration": "5m", "temporality": "delta"}),
            "`expiration`",
            "cumulative",
        ),
        (json!({"max_series": 0}), "`max_series`", "out of range"),
        (
            json!({"dimensions": [{"name": "span.name"}]}),
            "`dimensions[0].name`",
            "default dimension",
        ),
        (
            json!({"dimensions": [{"name": "a"}, {"name": "a"}]}),
            "`dimensions[1].name`",
            "listed twice",
        ),
        (
            json!({"dimensions": [{"name": ""}]}),
            "`dimensions[0].name`",
            "needs an attribute key",
        ),
        (
            json!({"dimensions": [{"name": "a", "defaults": "x"}]}),
            "`dimensions[0].defaults`",
            "unknown field `defaults`",
        ),
        (
            json!({"exclude_dimensions": ["http.method"]}),
            "`exclude_dimensions`",
            "not a default",
        ),
        (
            json!({"resource_attributes": ["service.name"]}),
            "`resource_attributes`",
            "always copied",
        ),
        (
            json!({"drop_spans": "yes"}),
            "`drop_spans`",
            "expected a boolean",
        ),
    ] {
        let message = init_error(config.clone());
        assert!(
            message.contains(&format!("config key {key}")) && message.contains(words),
            "{config}: {message}"
        );
    }
}

/// Scenario: the defaults. Guarantees: they are the connector's (names,
/// buckets in ms, cumulative) plus the 15s interval and 10,000 series,
/// and the host is asked to tick every interval.
#[test]
fn defaults_follow_the_connector() {
    let m = SpanMetrics::init("{}").expect("the empty config is valid");
    let p = m.plan();
    assert_eq!(p.calls_name, CALLS);
    assert_eq!(p.duration_name, DURATION);
    assert_eq!(p.temporality, crate::Temporality::Cumulative);
    assert_eq!(p.max_series, 10_000);
    assert!(!p.drop_spans);
    assert_eq!(m.tick_every(), Some(std::time::Duration::from_secs(15)));
    let h = p.histogram.as_ref().expect("a histogram");
    assert_eq!(h.bounds_ns.first(), Some(&2_000_000));
    assert_eq!(h.bounds_ns.len(), 16);
    let m = SpanMetrics::init(r#"{"interval": "1m", "unit": "s"}"#).expect("valid");
    assert_eq!(m.tick_every(), Some(std::time::Duration::from_secs(60)));
    assert_eq!(
        m.plan().histogram.as_ref().map(|h| h.bounds[0]),
        Some(0.002)
    );
}

/// Scenario: a logs batch through `process` in the SDK's harness (which
/// builds log batches only). Guarantees: records of other signals pass
/// through untouched and emit nothing.
#[test]
fn other_signals_pass_through() {
    let logs = r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[
        {"severityNumber":9,"body":{"stringValue":"fine"}}]}]}]}"#;
    let out = harness::run::<SpanMetrics>(r#"{"drop_spans": true}"#, logs).expect("runs");
    assert_eq!(
        out.table.strings("body").expect("body"),
        [Some("fine".to_string())]
    );
    assert!(out.emitted.is_empty());
}
