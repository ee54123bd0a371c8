//! Lookups: keys from attributes or columns, columns of the row found to
//! attributes, one `get_many` per lookup and batch with each key once.

use serde_json::json;

use super::*;

const TEAMS: &[(&str, &str)] = &[
    (
        "checkout",
        r#"{"team":"payments","owner":"ana","tier":"1"}"#,
    ),
    ("cart", r#"{"team":"shop","owner":"bo"}"#),
];

/// Guarantees: a lookup by a resource attribute writes the columns named
/// in `columns` to the attributes given, on every row of a found key;
/// rows whose key is not found, or who lack it, are left alone.
#[test]
fn columns_go_to_the_attributes_named() {
    table("teams", TEAMS);
    let input = logs(&[
        (&[("service.name", "checkout")], &[&[], &[]]),
        (&[("service.name", "unknown")], &[&[]]),
        (&[], &[&[]]),
    ]);
    let out = run_logs(
        json!({"lookups": [{"table": "teams", "from": {"set": "resource", "key": "service.name"},
                            "to": {"set": "resource"},
                            "columns": {"team": "team.name", "owner": "team.owner"}}]}),
        &input,
    );
    let resource = entries(&out, "resource_attributes");
    let expected = owned(&[
        ("service.name", "checkout"),
        ("team.owner", "ana"),
        ("team.name", "payments"),
    ]);
    assert_eq!(resource[0], expected);
    assert_eq!(resource[1], expected);
    assert_eq!(resource[2], owned(&[("service.name", "unknown")]));
    assert_eq!(resource[3], owned(&[]));
    assert_eq!(
        lookups_made(),
        [(
            "teams".to_string(),
            vec!["checkout".to_string(), "unknown".to_string()]
        )]
    );
}

/// Guarantees: without `columns`, every column of the row found becomes
/// an attribute (after `to.prefix`), only in the rows that have it; the
/// key may be a plain column (`service_name`), whose lookups go to the
/// resource by default.
#[test]
fn every_column_with_a_prefix() {
    table("teams", TEAMS);
    let p = plugin(json!({"lookups": [
        {"table": "teams", "from": "service_name", "to": {"prefix": "team."}}
    ]}));
    let mut s = spans(vec![
        row(&[("service_name", "checkout")], &[], &[]),
        row(&[("service_name", "cart")], &[], &[]),
    ]);
    p.enrich(&mut s).expect("runs");
    assert_eq!(
        s.rows[0].resource,
        owned(&[
            ("team.owner", "ana"),
            ("team.team", "payments"),
            ("team.tier", "1")
        ])
    );
    assert_eq!(
        s.rows[1].resource,
        owned(&[("team.owner", "bo"), ("team.team", "shop")])
    );
}

/// Guarantees: `to.key` takes the whole value found, for tables whose
/// values are plain strings; a lookup writes to the record set of a
/// metric point by a record attribute.
#[test]
fn whole_values_to_one_attribute() {
    table("zones", &[("10.1.2.3", "eu-west")]);
    let p = plugin(json!({"lookups": [
        {"table": "zones", "from": "record.client.address", "to": {"key": "client.zone"}}
    ]}));
    let mut m = metrics(vec![
        row(&[], &[], &[("client.address", "10.1.2.3")]),
        row(&[], &[], &[("client.address", "192.0.2.1")]),
    ]);
    p.enrich(&mut m).expect("runs");
    assert_eq!(
        m.values(AttributeSet::Record, "client.zone"),
        [Some("eu-west".into()), None]
    );
}

/// Guarantees: `action = "insert"` keeps values already there, `update`
/// writes only over them; a later action sees what a lookup wrote.
#[test]
fn insert_and_update_and_later_actions() {
    table("teams", TEAMS);
    let p = plugin(json!({
        "lookups": [
            {"table": "teams", "from": "resource.service.name", "columns": {"team": "team"},
             "action": "insert"},
            {"table": "teams", "from": "resource.service.name", "columns": {"owner": "owner"},
             "action": "update"}
        ],
        "actions": [{"set": "resource", "key": "label", "value": "{resource.team}/{resource.owner}",
                     "action": "upsert", "missing": "empty"}]
    }));
    let mut s = spans(vec![
        row(&[], &[("service.name", "checkout"), ("team", "mine")], &[]),
        row(&[], &[("service.name", "cart"), ("owner", "someone")], &[]),
    ]);
    p.enrich(&mut s).expect("runs");
    assert_eq!(
        s.values(AttributeSet::Resource, "team"),
        [Some("mine".into()), Some("shop".into())]
    );
    assert_eq!(
        s.values(AttributeSet::Resource, "owner"),
        [None, Some("bo".into())]
    );
    assert_eq!(
        s.values(AttributeSet::Resource, "label"),
        [Some("mine/".into()), Some("shop/bo".into())]
    );
}

/// Guarantees: a batch of many rows makes one `get_many` per lookup with
/// each distinct key once, and one write per target attribute; the
/// counts of hits and misses are per row.
#[test]
fn one_lookup_and_one_write_per_batch() {
    table("teams", TEAMS);
    let p = plugin(json!({"lookups": [
        {"table": "teams", "from": "resource.service.name",
         "columns": {"team": "team", "owner": "owner"}}
    ]}));
    let services = ["checkout", "cart", "checkout", "nope", "cart", "checkout"];
    let rows: Vec<Row> = (0..1024)
        .map(|i| row(&[], &[("service.name", services[i % services.len()])], &[]))
        .collect();
    let mut s = spans(rows);
    lookups_made();
    let outcomes = p.enrich(&mut s).expect("runs");
    assert_eq!(
        lookups_made(),
        [(
            "teams".to_string(),
            vec![
                "checkout".to_string(),
                "cart".to_string(),
                "nope".to_string()
            ]
        )]
    );
    assert_eq!(s.calls, ["resource: remove [], set [owner, team]"]);
    let misses = (0..1024).filter(|i| i % 6 == 3).count() as u64;
    assert_eq!(outcomes[0].hits + outcomes[0].misses, 1024);
    assert_eq!(outcomes[0].misses, misses);
}

/// Guarantees: a value that is not an object of columns, a column the row
/// lacks and a `null` cell fill nothing; numbers and booleans become their
/// text.
#[test]
fn odd_values() {
    table(
        "t",
        &[
            ("a", "plain text"),
            ("b", r#"{"n": 3, "ok": true, "none": null}"#),
        ],
    );
    let p = plugin(json!({"lookups": [
        {"table": "t", "from": "record.k", "columns": {"n": "n", "ok": "ok", "none": "none", "x": "x"}}
    ]}));
    let mut s = spans(vec![
        row(&[], &[], &[("k", "a")]),
        row(&[], &[], &[("k", "b")]),
    ]);
    p.enrich(&mut s).expect("runs");
    assert_eq!(s.rows[0].record, owned(&[("k", "a")]));
    assert_eq!(
        s.rows[1].record,
        owned(&[("k", "b"), ("n", "3"), ("ok", "true")])
    );
}
