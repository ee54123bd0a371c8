//! insert, update, upsert, delete and rename, with constant and templated
//! values, on the three sets and the three signals.

use serde_json::json;

use super::*;

/// Guarantees: insert sets only where the key is absent, update only
/// where it is present, upsert everywhere; the other rows and keys are
/// left as they were.
#[test]
fn insert_update_upsert() {
    let input = logs(&[(
        &[("service.name", "checkout")],
        &[&[("env", "dev"), ("a", "1")], &[("a", "2")]],
    )]);
    let out = run_logs(
        json!({"actions": [
            {"key": "env", "value": "prod", "action": "insert"},
            {"key": "a", "value": "changed", "action": "update"},
            {"key": "b", "value": "new", "action": "update"},
            {"key": "team", "value": "payments", "action": "upsert"},
        ]}),
        &input,
    );
    assert_eq!(
        entries(&out, "attributes"),
        [
            owned(&[("env", "dev"), ("a", "changed"), ("team", "payments")]),
            owned(&[("a", "changed"), ("env", "prod"), ("team", "payments")]),
        ]
    );
}

/// Guarantees: delete removes the key from every row; rename moves the
/// value to the new key (replacing one there) in the rows that have it
/// and removes the old key; rows without it keep their attributes.
#[test]
fn delete_and_rename() {
    let input = logs(&[(
        &[],
        &[
            &[
                ("http.route", "/cart"),
                ("user.password", "x"),
                ("route", "old"),
            ],
            &[("other", "y")],
        ],
    )]);
    let out = run_logs(
        json!({"actions": [
            {"set": "record", "key": "http.route", "action": "rename", "to": "route"},
            {"set": "record", "key": "user.password", "action": "delete"},
        ]}),
        &input,
    );
    assert_eq!(
        entries(&out, "attributes"),
        [owned(&[("route", "/cart")]), owned(&[("other", "y")])]
    );
}

/// Guarantees: a template reads attributes of any set and columns; a
/// missing reference skips the row by default and counts as empty with
/// `missing = "empty"`; a later action sees what an earlier one wrote.
#[test]
fn templates_read_every_set_and_columns() {
    let input = logs(&[
        (
            &[("service.name", "checkout"), ("service.namespace", "shop")],
            &[&[("http.route", "/cart")]],
        ),
        (&[("service.name", "cart")], &[&[]]),
    ]);
    let out = run_logs(
        json!({"actions": [
            {"set": "resource", "key": "service.ns_name", "action": "upsert",
             "value": "{resource.service.namespace}/{resource.service.name}"},
            {"set": "resource", "key": "ns_or_empty", "action": "upsert", "missing": "empty",
             "value": "{resource.service.namespace}/{service_name}"},
            {"key": "where", "action": "upsert",
             "value": "{scope_name}:{record.http.route}@{resource.service.ns_name}"},
            {"key": "copy", "action": "insert", "from_attribute": "http.route"},
        ]}),
        &input,
    );
    let resource = entries(&out, "resource_attributes");
    assert_eq!(
        resource[0][2..],
        owned(&[
            ("service.ns_name", "shop/checkout"),
            ("ns_or_empty", "shop/checkout")
        ])
    );
    assert_eq!(resource[1][1..], owned(&[("ns_or_empty", "/cart")]));
    let record = entries(&out, "attributes");
    assert_eq!(
        record[0],
        owned(&[
            ("http.route", "/cart"),
            ("where", "lib:/cart@shop/checkout"),
            ("copy", "/cart")
        ])
    );
    assert_eq!(record[1], owned(&[]));
}

/// Guarantees: actions apply to spans and metric points as to logs, on
/// the set they name; span and metric columns can be read in templates;
/// a column another signal lacks reads as missing.
#[test]
fn spans_and_metrics() {
    let p = plugin(json!({"actions": [
        {"set": "resource", "key": "deployment.environment", "value": "prod", "action": "insert"},
        {"key": "op", "value": "{span.name} ({kind})", "action": "upsert"},
        {"key": "metric", "value": "{metric_name}={value}", "action": "upsert"},
        {"set": "scope", "key": "enriched", "value": true, "action": "upsert"},
    ]}));
    let mut s = spans(vec![
        row(
            &[("name", "GET /cart"), ("kind", "2")],
            &[("service.name", "cart")],
            &[],
        ),
        row(
            &[("name", "SELECT"), ("kind", "3")],
            &[("deployment.environment", "dev")],
            &[],
        ),
    ]);
    p.enrich(&mut s).expect("runs");
    assert_eq!(
        s.values(AttributeSet::Resource, "deployment.environment"),
        [Some("prod".into()), Some("dev".into())]
    );
    assert_eq!(
        s.values(AttributeSet::Record, "op"),
        [Some("GET /cart (2)".into()), Some("SELECT (3)".into())]
    );
    assert_eq!(s.values(AttributeSet::Record, "metric"), [None, None]);
    assert_eq!(
        s.values(AttributeSet::Scope, "enriched"),
        [Some("true".into()), Some("true".into())]
    );

    let mut m = metrics(vec![row(
        &[("metric_name", "http.server.duration"), ("value", "0.25")],
        &[],
        &[],
    )]);
    p.enrich(&mut m).expect("runs");
    assert_eq!(
        m.values(AttributeSet::Record, "metric"),
        [Some("http.server.duration=0.25".into())]
    );
    assert_eq!(m.values(AttributeSet::Record, "op"), [None]);
}

/// Guarantees: `signals` limits an action to the signals named.
#[test]
fn signals_limit_an_action() {
    let p = plugin(json!({"actions": [
        {"key": "only_logs", "value": "x", "action": "upsert", "signals": ["logs"]},
        {"key": "only_spans", "value": "y", "action": "upsert", "signals": ["spans"]},
    ]}));
    let mut s = spans(vec![row(&[], &[], &[])]);
    p.enrich(&mut s).expect("runs");
    assert_eq!(s.rows[0].record, owned(&[("only_spans", "y")]));
}

/// Guarantees: the changes go back in one call per attribute set, each
/// key once whatever the number of steps touching it (a removal and a
/// write for a key deleted then set again), and nothing is written for a
/// key no row changed.
#[test]
fn each_key_is_written_once_per_batch() {
    let p = plugin(json!({"actions": [
        {"key": "a", "value": "1", "action": "upsert"},
        {"key": "a", "value": "{record.a}-2", "action": "upsert"},
        {"key": "b", "action": "delete"},
        {"key": "b", "value": "fresh", "action": "insert"},
        {"key": "c", "value": "never", "action": "update"},
        {"key": "d", "action": "rename", "to": "e"},
    ]}));
    let mut s = spans(vec![row(&[], &[], &[("b", "old"), ("d", "v")]); 3]);
    p.enrich(&mut s).expect("runs");
    assert_eq!(s.calls, ["record: remove [b, d], set [a, b, e]"]);
    assert_eq!(
        s.rows[0].record,
        owned(&[("a", "1-2"), ("b", "fresh"), ("e", "v")])
    );
}
