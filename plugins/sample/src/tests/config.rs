//! The config: errors at `init` naming the plugin and the key, defaults.

use serde_json::{Value, json};
use weir_plugin::{Error, Plugin};

use crate::Sample;
use crate::config::{Mode, Plan};

fn init_error(config: Value) -> String {
    match Sample::init(&config.to_string()) {
        Ok(_) => panic!("config {config} was accepted"),
        Err(Error::InvalidArgument(message)) => message,
        Err(other) => panic!("config {config}: {other:?} is not an invalid-argument error"),
    }
}

fn tail(policies: Value) -> Value {
    json!({"tail": {"policies": policies}})
}

/// Scenario: every kind of bad config. Guarantees: `init` refuses it with
/// an invalid-argument error that starts with the plugin's name and names
/// the key to fix.
#[test]
fn bad_configs_are_refused_naming_the_key() {
    let bad: Vec<(Value, &str, &str)> = vec![
        (
            json!({}),
            "neither `head` nor `tail`",
            "sampling_percentage",
        ),
        (json!({"haed": {}}), "`haed`", "unknown field"),
        (
            json!({"head": {"sampling_percentage": -5}}),
            "`head.sampling_percentage`",
            "not a percentage",
        ),
        (
            json!({"head": {"sampling_percentage": 150}}),
            "`head.sampling_percentage`",
            "0 to 100",
        ),
        (
            json!({"head": {}}),
            "`head`",
            "missing field `sampling_percentage`",
        ),
        (
            json!({"head": {"sampling_percentage": 10, "mode": "hash_seed"}}),
            "`head.mode`",
            "unknown variant",
        ),
        (
            json!({"head": {"sampling_percentage": 10, "sampling_precision": 0}}),
            "`head.sampling_precision`",
            "1 to 14",
        ),
        (
            json!({"head": {"sampling_percentage": 10, "percentage": 5}}),
            "`head.percentage`",
            "unknown field",
        ),
        (
            json!({"head": {"sampling_percentage": 10, "logs_without_trace_id": "hash"}}),
            "`head.logs_hash_attribute`",
            "required",
        ),
        (
            json!({"head": {"sampling_percentage": 10, "logs_hash_attribute": "x"}}),
            "`head.logs_hash_attribute`",
            "only used",
        ),
        (json!({"tail": {}}), "`tail`", "missing field `policies`"),
        (tail(json!([])), "`tail.policies`", "at least one"),
        (
            tail(json!([{"name": "x", "type": "sometimes"}])),
            "`tail.policies[0]`",
            "unknown variant `sometimes`",
        ),
        (
            tail(json!([{"type": "always_sample"}])),
            "`tail.policies[0].name`",
            "needs a name",
        ),
        (
            tail(
                json!([{"name": "a", "type": "always_sample"}, {"name": "a", "type": "always_sample"}]),
            ),
            "`tail.policies[1].name`",
            "no other policy",
        ),
        (
            tail(json!([{"name": "l", "type": "latency", "threshold": "fast"}])),
            "`tail.policies[0].threshold`",
            "is not a unit",
        ),
        (
            tail(
                json!([{"name": "l", "type": "latency", "threshold": "2s", "upper_threshold": "1s"}]),
            ),
            "`tail.policies[0].upper_threshold`",
            "below `threshold`",
        ),
        (
            tail(json!([{"name": "l", "type": "latency", "threshold": "2s", "threshold_ms": 5}])),
            "`tail.policies[0]`",
            "unknown field `threshold_ms`",
        ),
        (
            tail(json!([{"name": "p", "type": "probabilistic", "sampling_percentage": -1}])),
            "`tail.policies[0].sampling_percentage`",
            "not a percentage",
        ),
        (
            tail(json!([{"name": "r", "type": "rate_limiting", "spans_per_second": 0}])),
            "`tail.policies[0].spans_per_second`",
            "above zero",
        ),
        (
            tail(json!([{"name": "s", "type": "status_code", "status_codes": ["FAILED"]}])),
            "`tail.policies[0]`",
            "unknown variant `FAILED`",
        ),
        (
            tail(json!([{"name": "n", "type": "numeric_attribute", "key": "k"}])),
            "`tail.policies[0].min_value`",
            "min_value, max_value or both",
        ),
        (
            tail(json!([{"name": "c", "type": "span_count", "min_spans": 5, "max_spans": 2}])),
            "`tail.policies[0].max_spans`",
            "below min_spans",
        ),
        (
            tail(json!([{"name": "a", "type": "and", "policies": [
                {"type": "drop", "policies": [{"type": "always_sample"}]}]}])),
            "`tail.policies[0].policies[0].type`",
            "top level only",
        ),
        (
            tail(json!([{"name": "a", "type": "and", "policies": [
                {"type": "latency", "threshold": "-1s"}]}])),
            "`tail.policies[0].policies[0].threshold`",
            "",
        ),
        (
            json!({"tail": {"max_memory": "lots", "policies": [{"name": "a", "type": "always_sample"}]}}),
            "`tail.max_memory`",
            "not a size",
        ),
        (
            json!({"tail": {"max_memory": "10KiB", "policies": [{"name": "a", "type": "always_sample"}]}}),
            "`tail.max_memory`",
            "at least",
        ),
        (
            json!({"tail": {"decision_wait": "0s", "policies": [{"name": "a", "type": "always_sample"}]}}),
            "`tail.decision_wait`",
            "longer than zero",
        ),
        (
            json!({"tail": {"decision_wait": "5s", "check_interval": "10s",
                            "policies": [{"name": "a", "type": "always_sample"}]}}),
            "`tail.check_interval`",
            "out of range",
        ),
    ];
    for (config, key, words) in bad {
        let message = init_error(config.clone());
        assert!(message.starts_with("sample: "), "{config}: {message}");
        // The key as a prefix: serde may name a key under it (`.type`).
        let prefix = key.trim_end_matches('`');
        assert!(
            message.contains(prefix),
            "{config}: `{message}` names {key}"
        );
        assert!(
            message.contains(words),
            "{config}: `{message}` says {words}"
        );
    }
}

/// Guarantees: the defaults are the documented ones (equalizing, precision
/// 4, fail closed, 30 s wait, 1 s checks, 256 MiB, 100,000 decisions);
/// the Collector's policy names and keys are accepted as documented.
#[test]
fn defaults_are_the_documented_ones() {
    let plan = Plan::from_json(
        &json!({"head": {"sampling_percentage": 10},
                "tail": {"policies": [
                    {"name": "errors", "type": "status_code", "status_codes": ["ERROR", "UNSET"]},
                    {"name": "slow", "type": "latency", "threshold": "5s", "upper_threshold": "10s"},
                    {"name": "vip", "type": "string_attribute", "key": "tier", "values": ["gold"]},
                    {"name": "5xx", "type": "numeric_attribute", "key": "code", "min_value": 500},
                    {"name": "some", "type": "probabilistic", "sampling_percentage": 1},
                    {"name": "rate", "type": "rate_limiting", "spans_per_second": 100},
                    {"name": "big", "type": "span_count", "min_spans": 100},
                    {"name": "both", "type": "and", "policies": [
                        {"type": "always_sample"}, {"type": "not", "policy": {"type": "always_sample"}}]},
                    {"name": "noisy", "type": "drop", "policies": [
                        {"type": "string_attribute", "key": "http.route", "values": ["/healthz"]}]}]}})
        .to_string(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let head = plan.head.unwrap_or_else(|| panic!("head"));
    assert_eq!(
        (head.mode, head.precision, head.fail_closed),
        (Mode::Equalizing, 4, true)
    );
    assert_eq!(
        head.threshold.map(|t| t.to_string()).as_deref(),
        Some("e666")
    );
    let tail = plan.tail.unwrap_or_else(|| panic!("tail"));
    assert_eq!(tail.decision_wait_ns, 30_000_000_000);
    assert_eq!(tail.check_interval_ns, 1_000_000_000);
    assert_eq!(tail.max_memory, 256 << 20);
    assert_eq!(tail.decision_cache, 100_000);
    assert_eq!(tail.policies.len(), 9);
    assert!(tail.policies[8].veto);
    assert_eq!(tail.needs.attributes, ["tier", "code", "http.route"]);
}
