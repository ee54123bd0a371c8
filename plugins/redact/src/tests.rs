//! The plugin end to end through the SDK's harness: config JSON in, OTLP
//! logs through `init` and `process`, the table and the counter calls out.

use serde_json::{Value, json};
use weir_plugin::Plugin;
use weir_plugin::harness::{self, Column, Output};

use crate::counters::recorded;
use crate::{Redact, RedactConfig};

const KEY: &str = "0123456789abcdef0123456789abcdef";

/// OTLP/JSON logs, one record per `(body, attributes)`; an empty body is
/// no body. Every record shares one resource with `resource` attributes.
fn logs_with(resource: &[(&str, &str)], records: &[(&str, &[(&str, &str)])]) -> String {
    let attrs = |kv: &[(&str, &str)]| -> Vec<Value> {
        kv.iter()
            .map(|(k, v)| json!({"key": k, "value": {"stringValue": v}}))
            .collect()
    };
    let records: Vec<Value> = records
        .iter()
        .map(|(body, kv)| {
            let mut r = json!({"attributes": attrs(kv)});
            if !body.is_empty() {
                r["body"] = json!({"stringValue": body});
            }
            r
        })
        .collect();
    json!({"resourceLogs": [{
        "resource": {"attributes": attrs(resource)},
        "scopeLogs": [{"logRecords": records}]
    }]})
    .to_string()
}

fn logs(records: &[(&str, &[(&str, &str)])]) -> String {
    logs_with(&[], records)
}

fn run(config: Value, input: &str) -> Output {
    recorded::take();
    harness::run::<Redact>(&config.to_string(), input).expect("the plugin runs")
}

/// The bodies after redacting `bodies` with `config`.
fn bodies_after(config: Value, bodies: &[&str]) -> Vec<String> {
    let records: Vec<(&str, &[(&str, &str)])> = bodies.iter().map(|b| (*b, &[][..])).collect();
    let out = run(config, &logs(&records));
    out.table
        .strings("body")
        .expect("body")
        .into_iter()
        .map(Option::unwrap_or_default)
        .collect()
}

/// The values of attribute `key` in `column` after a run.
fn attribute(out: &Output, column: &str, key: &str) -> Vec<Option<String>> {
    match out.table.column(column).expect("attribute column") {
        Column::Attributes(rows) => rows
            .iter()
            .map(|e| e.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()))
            .collect(),
        other => panic!("{column} is {other:?}"),
    }
}

fn init_error(config: Value) -> String {
    match Redact::init(&config.to_string()) {
        Ok(_) => panic!("config {config} was accepted"),
        Err(weir_plugin::Error::InvalidArgument(message)) => message,
        Err(other) => panic!("config {config}: {other:?} is not an invalid-argument error"),
    }
}

/// Checks one preset: each `(input, expected)` pair, and that each of
/// `clean` comes out unchanged.
fn check_preset(preset: &str, found: &[(&str, &str)], clean: &[&str]) {
    let inputs: Vec<&str> = found
        .iter()
        .map(|(i, _)| *i)
        .chain(clean.iter().copied())
        .collect();
    let got = bodies_after(json!({"presets": [preset]}), &inputs);
    let want: Vec<&str> = found
        .iter()
        .map(|(_, o)| *o)
        .chain(clean.iter().copied())
        .collect();
    for ((input, got), want) in inputs.iter().zip(&got).zip(&want) {
        assert_eq!(got, want, "preset {preset} on {input:?}");
    }
}

/// Guarantees: `email` masks addresses, including plus-tags and
/// subdomains, and leaves asset names and host-less handles alone.
#[test]
fn preset_email() {
    check_preset(
        "email",
        &[
            (
                "mail bob.smith+tag@example.co.uk now",
                "mail [REDACTED:email] now",
            ),
            ("<alice@mail.example.com>.", "<[REDACTED:email]>."),
            ("café: zoe@example.org ☕", "café: [REDACTED:email] ☕"),
        ],
        &["icon@2x.png", "user@localhost", "@handle says hi", "a@b"],
    );
}

/// Guarantees: `credit_card` masks Luhn-valid numbers of 13 to 19 digits
/// with or without separators, and leaves Luhn-invalid order ids, Unix
/// times, mixed separators and digits inside longer numbers alone.
#[test]
fn preset_credit_card() {
    check_preset(
        "credit_card",
        &[
            (
                "card 4111 1111 1111 1111 exp 12/27",
                "card [REDACTED:credit_card] exp 12/27",
            ),
            ("4111-1111-1111-1111", "[REDACTED:credit_card]"),
            ("pan=5500000000000004;", "pan=[REDACTED:credit_card];"),
            ("amex 378282246310005", "amex [REDACTED:credit_card]"),
            ("visa13 4222222222222", "visa13 [REDACTED:credit_card]"),
        ],
        &[
            // A 16-digit order id that fails Luhn.
            "order 4111111111111112 shipped",
            "order 1234567812345678 shipped",
            // Unix times in ms and ns start with 1.
            "ts=1700000000000 ns=1700000000123456789",
            "4111-1111 1111-1111",
            "ref 4111111111111111-7",
            // An HDFS block id whose digits pass Luhn.
            "block blk_-6952295868487656571 terminating",
            "12345678901234567890123",
        ],
    );
}

/// Guarantees: `ipv4` masks dotted quads (keeping a port) and leaves
/// longer dotted numbers and out-of-range parts alone.
#[test]
fn preset_ipv4() {
    check_preset(
        "ipv4",
        &[
            ("from 192.168.1.10:8080 ok", "from [REDACTED:ipv4]:8080 ok"),
            ("peer 10.0.0.1.", "peer [REDACTED:ipv4]."),
            ("x=255.255.255.255,y", "x=[REDACTED:ipv4],y"),
        ],
        &["oid 1.3.6.1.4.1.311", "999.1.1.1", "v1.2.3", "01.02.03.04"],
    );
}

/// Guarantees: `ipv6` masks full, compressed and IPv4-suffixed addresses
/// and leaves times, MAC addresses and C++/Rust paths alone.
#[test]
fn preset_ipv6() {
    check_preset(
        "ipv6",
        &[
            ("src 2001:db8::8a2e:370:7334 in", "src [REDACTED:ipv6] in"),
            (
                "url http://[fe80::1]:443/",
                "url http://[[REDACTED:ipv6]]:443/",
            ),
            ("mapped ::ffff:192.0.2.1", "mapped [REDACTED:ipv6]"),
            (
                "full 2001:0db8:0000:0000:0000:ff00:0042:8329",
                "full [REDACTED:ipv6]",
            ),
            ("lo ::1", "lo [REDACTED:ipv6]"),
        ],
        &[
            "at 12:30:45 today",
            "mac 00:1a:2b:3c:4d:5e",
            "std::vec::Vec and Add::add",
            "addr :: unset",
            "2024-01-02T10:20:30.123Z",
        ],
    );
}

/// Guarantees: `jwt` masks a whole token and leaves `eyJ` inside another
/// word, or without three segments, alone.
#[test]
fn preset_jwt() {
    let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
    let body = format!("token {jwt} used");
    check_preset(
        "jwt",
        &[(&body, "token [REDACTED:jwt] used")],
        &[
            "eyJustkidding",
            "xeyJhbGciOi.eyJzdWIi.abc",
            "eyJhbGciOiJIUzI1NiJ9 alone",
        ],
    );
}

/// Guarantees: `bearer` masks the credential of `Bearer` and of an
/// `Authorization` header (keeping the scheme), and leaves prose alone.
#[test]
fn preset_bearer() {
    check_preset(
        "bearer",
        &[
            (
                "Authorization: Bearer abcdef123456789",
                "Authorization: Bearer [REDACTED:bearer]",
            ),
            (
                "authorization=Basic dXNlcjpwYXNzd29yZA==",
                "authorization=Basic [REDACTED:bearer]",
            ),
            (
                r#"{"authorization":"sk_live_0123456789"}"#,
                r#"{"authorization":"[REDACTED:bearer]"}"#,
            ),
            (
                "call with bearer abcdefgh12345678",
                "call with bearer [REDACTED:bearer]",
            ),
            ("Basic dXNlcjpwYXNzd29yZA==", "Basic [REDACTED:bearer]"),
        ],
        &[
            "missing Bearer token",
            "WWW-Authenticate: Bearer realm",
            "authorization failed",
            "Basic configuration loaded",
        ],
    );
}

/// Guarantees: `aws_access_key` masks AKIA/ASIA key ids of 20 characters
/// and leaves shorter ones, lower case and ids inside words alone.
#[test]
fn preset_aws_access_key() {
    check_preset(
        "aws_access_key",
        &[
            (
                "key AKIAIOSFODNN7EXAMPLE used",
                "key [REDACTED:aws_access_key] used",
            ),
            ("ASIAY34FZKBOKMUTVV7A", "[REDACTED:aws_access_key]"),
        ],
        &[
            "AKIAIOSFODNN7EXAMPL",
            "akiaiosfodnn7example",
            "XAKIAIOSFODNN7EXAMPLE",
        ],
    );
}

/// Guarantees: `iban` masks mod-97-valid IBANs of a known country and
/// length, printed or electronic, and leaves an invalid check, an unknown
/// country or a wrong length alone.
#[test]
fn preset_iban() {
    check_preset(
        "iban",
        &[
            (
                "to DE89 3704 0044 0532 0130 00 EUR",
                "to [REDACTED:iban] EUR",
            ),
            ("GB29NWBK60161331926819", "[REDACTED:iban]"),
            ("iban NO9386011117947.", "iban [REDACTED:iban]."),
        ],
        &[
            "to DE88 3704 0044 0532 0130 00 EUR",
            "XX89370400440532013000",
            "DE8937040044053201300",
            "GB29NWBK6016133192681",
        ],
    );
}

/// Guarantees: `phone` masks international and common national numbers
/// and leaves timestamps, Unix times, times of day, time zones, number
/// lists and dates alone.
#[test]
fn preset_phone() {
    check_preset(
        "phone",
        &[
            ("call +1 415 555 0132 now", "call [REDACTED:phone] now"),
            ("uk +44 (0)20 7946 0958.", "uk [REDACTED:phone]."),
            ("de +4915123456789", "de [REDACTED:phone]"),
            ("fr +33 1 23 45 67 89", "fr [REDACTED:phone]"),
            ("us (415) 555-0132", "us [REDACTED:phone]"),
            ("us 415-555-0132", "us [REDACTED:phone]"),
            ("us 1-415-555-0132", "us [REDACTED:phone]"),
            ("uk 020 7946 0958", "uk [REDACTED:phone]"),
            ("fr 01 23 45 67 89", "fr [REDACTED:phone]"),
        ],
        &[
            "2024-01-02T10:20:30Z",
            "2024-01-02 10:20:30,123 INFO start",
            "epoch 1700000000 ms 1700000000123",
            "stamp 20240102 103000",
            "at 12:34:56.789",
            "tz +0100 or +01:00",
            "sizes 512 256 1024",
            "id 123-456-7890",
            "mixed 415-555.0132",
            "date 01.02.2024 and 01/02/2024",
            "delta +12345678",
            "/v1/0123/4567/890",
        ],
    );
}

/// Guarantees: presets not named stay off: an e-mail passes a config of
/// `ipv4` only.
#[test]
fn only_named_presets_run() {
    let got = bodies_after(json!({"presets": ["ipv4"]}), &["bob@example.com 10.1.2.3"]);
    assert_eq!(got, ["bob@example.com [REDACTED:ipv4]"]);
}

/// Guarantees: when presets overlap, one finding wins: a JWT after
/// `Bearer` is labelled `jwt`, an IPv4-mapped IPv6 address `ipv6`.
#[test]
fn overlapping_findings_are_settled() {
    let body =
        "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln from ::ffff:10.0.0.1";
    let got = bodies_after(
        json!({"presets": ["bearer", "jwt", "ipv4", "ipv6"]}),
        &[body],
    );
    assert_eq!(
        got,
        ["Authorization: Bearer [REDACTED:jwt] from [REDACTED:ipv6]"]
    );
}

/// Guarantees: a custom rule masks what its regex matches, alongside the
/// presets.
#[test]
fn custom_rule() {
    let config = json!({
        "presets": ["email"],
        "rules": [{"name": "order_ref", "regex": "ORD-[0-9]{8}"}],
    });
    let got = bodies_after(config, &["ORD-12345678 for a@b.io", "ORD-123 stays"]);
    assert_eq!(
        got,
        ["[REDACTED:order_ref] for [REDACTED:email]", "ORD-123 stays"]
    );
}

/// Guarantees: `mask` sets the replacement text, with `{rule}` filled in.
#[test]
fn mask_template() {
    let got = bodies_after(
        json!({"presets": ["email"], "mask": "<{rule}>"}),
        &["to a@b.io"],
    );
    assert_eq!(got, ["to <email>"]);
    let got = bodies_after(json!({"presets": ["email"], "mask": "***"}), &["to a@b.io"]);
    assert_eq!(got, ["to ***"]);
}

fn hashed(key: &str, bodies: &[&str]) -> Vec<String> {
    bodies_after(
        json!({"presets": ["email"], "action": "hash", "hash_key": key}),
        bodies,
    )
}

/// Guarantees: `hash` replaces a finding by `[HASH:<rule>:<16 hex>]`, the
/// same for the same value (across rows and runs), different for another
/// value or another key.
#[test]
fn hash_is_stable_and_keyed() {
    let a = hashed(KEY, &["from a@b.io", "to a@b.io", "cc c@d.io"]);
    let (first, rest) = a[0].split_at("from ".len());
    assert_eq!(first, "from ");
    assert!(
        rest.starts_with("[HASH:email:") && rest.ends_with(']'),
        "{rest}"
    );
    let hex = &rest["[HASH:email:".len()..rest.len() - 1];
    assert!(
        hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
        "{hex}"
    );
    assert_eq!(a[1], format!("to {rest}"), "same value, same hash");
    assert_ne!(a[2], format!("cc {rest}"), "another value, another hash");
    assert_eq!(
        hashed(KEY, &["from a@b.io"])[0],
        a[0],
        "the same in another run"
    );
    let other_key = hashed("fedcba9876543210fedcba9876543210", &["from a@b.io"]);
    assert_ne!(other_key[0], a[0], "another key, another hash");
}

/// Guarantees: `actions` sets the action of one rule; the others keep
/// `action`.
#[test]
fn actions_per_rule() {
    let config = json!({
        "presets": ["email", "ipv4"],
        "actions": {"email": "hash"},
        "hash_key": KEY,
    });
    let got = bodies_after(config, &["a@b.io from 10.0.0.1"]);
    assert!(got[0].starts_with("[HASH:email:"), "{}", got[0]);
    assert!(got[0].ends_with("] from [REDACTED:ipv4]"), "{}", got[0]);
}

/// Guarantees: a `drop` finding in a body replaces the whole body by the
/// rule's mask; other bodies are untouched, and null bodies stay null.
#[test]
fn drop_replaces_a_body() {
    let config = json!({"presets": ["email", "ipv4"], "actions": {"email": "drop"}});
    let out = run(
        config,
        &logs(&[
            ("keep 10.0.0.1", &[]),
            ("", &[]),
            ("secret a@b.io here", &[]),
        ]),
    );
    assert_eq!(
        out.table.strings("body").expect("body"),
        [
            Some("keep [REDACTED:ipv4]".to_string()),
            None,
            Some("[REDACTED:email]".to_string())
        ]
    );
}

/// Guarantees: a `drop` finding in an attribute removes that attribute
/// from that row only; the other rows keep theirs, rewritten or as they
/// were.
#[test]
fn drop_removes_an_attribute_where_it_matched() {
    let config = json!({
        "presets": ["email", "ipv4"],
        "actions": {"email": "drop"},
        "attributes": ["contact"],
    });
    let out = run(
        config,
        &logs(&[
            ("a", &[("contact", "a@b.io"), ("other", "x")]),
            ("b", &[("contact", "desk 10.0.0.1")]),
            ("c", &[("contact", "nobody")]),
            ("d", &[("other", "y")]),
        ]),
    );
    assert_eq!(
        attribute(&out, "attributes", "contact"),
        [
            None,
            Some("desk [REDACTED:ipv4]".into()),
            Some("nobody".into()),
            None
        ]
    );
    assert_eq!(
        attribute(&out, "attributes", "other"),
        [Some("x".into()), None, None, Some("y".into())]
    );
}

/// Guarantees: the keys named in `attributes` are redacted, others are
/// not, and the body is redacted too by default.
#[test]
fn named_attributes_only() {
    let config = json!({"presets": ["email"], "attributes": ["user.email", "user.missing"]});
    let out = run(
        config,
        &logs(&[
            ("by a@b.io", &[("user.email", "a@b.io"), ("note", "c@d.io")]),
            ("clean", &[("note", "e@f.io")]),
        ]),
    );
    assert_eq!(
        attribute(&out, "attributes", "user.email"),
        [Some("[REDACTED:email]".into()), None]
    );
    assert_eq!(
        attribute(&out, "attributes", "note"),
        [Some("c@d.io".into()), Some("e@f.io".into())]
    );
    assert_eq!(
        out.table.strings("body").expect("body")[0].as_deref(),
        Some("by [REDACTED:email]")
    );
}

/// Guarantees: with `body = false` the body stays as it is and only the
/// attributes are redacted.
#[test]
fn body_can_be_left_alone() {
    let config = json!({"presets": ["email"], "body": false, "attributes": ["user"]});
    let out = run(config, &logs(&[("by a@b.io", &[("user", "a@b.io")])]));
    assert_eq!(
        out.table.strings("body").expect("body")[0].as_deref(),
        Some("by a@b.io")
    );
    assert_eq!(
        attribute(&out, "attributes", "user"),
        [Some("[REDACTED:email]".into())]
    );
}

/// Guarantees: `resource_attributes` redacts resource attributes, the same
/// in every row that shares the resource.
#[test]
fn resource_attributes() {
    let config = json!({"presets": ["ipv4"], "resource_attributes": ["host.ip"]});
    let input = logs_with(
        &[("host.ip", "10.1.2.3"), ("host.name", "web-1")],
        &[("one", &[]), ("two", &[]), ("three", &[])],
    );
    let out = run(config, &input);
    assert_eq!(
        attribute(&out, "resource_attributes", "host.ip"),
        vec![Some("[REDACTED:ipv4]".to_string()); 3]
    );
    assert_eq!(
        attribute(&out, "resource_attributes", "host.name"),
        vec![Some("web-1".to_string()); 3]
    );
    assert_eq!(recorded::take(), [("ipv4".to_string(), 3)]);
}

/// Guarantees: the counter gets one call per rule per batch, with the
/// findings of every row, body and attributes together; rules that found
/// nothing make no call, and a clean batch none at all.
#[test]
fn counters_once_per_rule_per_batch() {
    let config = json!({
        "presets": ["email", "credit_card", "ipv4"],
        "attributes": ["user"],
    });
    run(
        config.clone(),
        &logs(&[
            ("a@b.io and c@d.io", &[("user", "e@f.io")]),
            ("card 4111111111111111", &[]),
            ("a@b.io and c@d.io", &[]),
        ]),
    );
    assert_eq!(
        recorded::take(),
        [("email".to_string(), 5), ("credit_card".to_string(), 1)]
    );
    run(config, &logs(&[("nothing here", &[("user", "anon")])]));
    assert_eq!(recorded::take(), []);
}

/// Guarantees: a batch with no finding is left exactly as it came.
#[test]
fn clean_batch_is_untouched() {
    let input = logs(&[("GET /index.html 200 12ms", &[("user", "anon")]), ("", &[])]);
    let out = run(
        json!({"presets": ["email", "phone"], "attributes": ["user"]}),
        &input,
    );
    assert_eq!(out.table, harness::logs(&input).expect("valid"));
}

/// Guarantees: every config mistake stops `init` with a message naming
/// the key (and the preset, rule or value) to fix.
#[test]
fn config_errors_name_the_key() {
    let cases = [
        (
            json!({"presets": ["emial"]}),
            vec!["`presets`", "emial", "credit_card"],
        ),
        (
            json!({"rules": [{"name": "ord", "regex": "ORD-[0-9"}]}),
            vec!["`rules`", "`ord`", "ORD-[0-9", "unclosed character class"],
        ),
        (
            json!({"rules": [{"name": "any", "regex": "x*"}]}),
            vec!["`rules`", "`any`", "empty text"],
        ),
        (
            json!({"presets": ["email"], "action": "hash"}),
            vec!["`hash_key`", "required", "`email`"],
        ),
        (
            json!({"presets": ["email"], "actions": {"email": "hash"}, "hash_key": "short"}),
            vec!["`hash_key`", "5 bytes", "16"],
        ),
        (
            json!({"presets": ["email"], "colour": 1}),
            vec!["`colour`", "unknown field"],
        ),
        (
            json!({"rules": [{"name": "r", "regex": "x", "action": "hash"}]}),
            vec!["`rules[0].action`", "unknown field"],
        ),
        (
            json!({"presets": ["email"], "action": "hide"}),
            vec!["`action`", "hide", "mask"],
        ),
        (
            json!({"presets": ["email"], "actions": {"phone": "drop"}}),
            vec!["`actions`", "`phone`", "email"],
        ),
        (
            json!({"presets": ["email"], "rules": [{"name": "email", "regex": "x"}]}),
            vec!["`rules`", "`email`", "twice"],
        ),
        (
            json!({"rules": [{"name": "has space", "regex": "x"}]}),
            vec!["`rules`", "`has space`", "letters"],
        ),
        (json!({}), vec!["`presets`", "`rules`", "nothing to redact"]),
        (
            json!({"presets": ["email"], "body": false}),
            vec!["`body`", "`attributes`"],
        ),
        (
            json!({"presets": ["email"], "attributes": ["*", "user.email"]}),
            vec!["`attributes`", "\"*\"", "`user.email`", "alone"],
        ),
        (
            json!({"presets": ["email"], "attributes": ["user.email"],
                   "resource_attributes": "*", "allow_keys": ["user.email"]}),
            vec!["`attributes`", "`allow_keys`", "`user.email`", "both"],
        ),
        (
            json!({"presets": ["email"], "attributes": "*",
                   "resource_attributes": ["k8s.pod.name"], "allow_keys": ["k8s.*"]}),
            vec![
                "`resource_attributes`",
                "`allow_keys`",
                "`k8s.pod.name`",
                "`k8s.*`",
            ],
        ),
        (
            json!({"presets": ["email"], "attributes": ["user.email"], "allow_keys": ["id"]}),
            vec!["`allow_keys`", "\"*\"", "remove `allow_keys`"],
        ),
        (
            json!({"presets": ["email"], "attributes": "*", "allow_keys": ["k8s.*.name"]}),
            vec!["`allow_keys`", "`k8s.*.name`", "prefix"],
        ),
        (
            json!({"presets": ["email"], "attributes": "*", "allow_keys": ["*"]}),
            vec!["`allow_keys`", "every key alone"],
        ),
        (
            json!({"presets": ["email"], "attributes": "*", "allow_keys": [""]}),
            vec!["`allow_keys`", "empty"],
        ),
        (
            json!({"presets": ["email"], "attributes": "*", "allow_keys": "http.route"}),
            vec!["`allow_keys`", "sequence"],
        ),
        (
            json!({"presets": ["email"], "attributes": [""]}),
            vec!["`attributes`", "empty"],
        ),
        (json!({"presets": "email"}), vec!["`presets`", "sequence"]),
    ];
    for (config, wanted) in cases {
        let message = init_error(config.clone());
        for w in wanted {
            assert!(
                message.contains(w),
                "config {config}: {message:?} lacks {w:?}"
            );
        }
    }
}

/// Guarantees: a bad config is an `invalid-argument` error (the user's
/// mistake), not a failure of the plugin.
#[test]
fn config_errors_are_invalid_arguments() {
    let err = Redact::init(r#"{"presets": ["emial"]}"#).expect_err("refused");
    assert!(
        matches!(err, weir_plugin::Error::InvalidArgument(_)),
        "{err:?}"
    );
}

/// Guarantees: every preset compiles, alone and all together, and the
/// documented example config is valid.
#[test]
fn all_presets_and_the_example_config_load() {
    for preset in crate::presets::Preset::ALL {
        Redact::from_json(&json!({"presets": [preset.name()]}).to_string())
            .unwrap_or_else(|e| panic!("preset {}: {e}", preset.name()));
    }
    let example = json!({
        "presets": ["email", "credit_card", "ipv4", "ipv6", "jwt", "bearer",
                    "aws_access_key", "iban", "phone"],
        "rules": [{"name": "order_ref", "regex": "ORD-[0-9]{8}"}],
        "action": "mask",
        "actions": {"email": "hash", "jwt": "drop"},
        "hash_key": "3b9f0c7e5a1d4e2f8c6b0a9d7e5f3c1a",
        "mask": "[REDACTED:{rule}]",
        "body": true,
        "attributes": ["user.email", "http.request.header.authorization"],
        "resource_attributes": ["host.name"],
    });
    let config = RedactConfig::parse(&example.to_string()).expect("parses");
    config.resolve().expect("resolves");
    let every = json!({
        "presets": ["email"],
        "attributes": "*",
        "resource_attributes": ["host.name"],
        "allow_keys": ["http.route", "trace.parent", "k8s.*"],
    });
    let config = RedactConfig::parse(&every.to_string()).expect("parses");
    config.resolve().expect("resolves");
}

/// Guarantees: hostile bodies (long runs of near-misses for every preset)
/// are handled in time linear in their size: 256 KiB of each, in one
/// batch, take well under a second in an optimised build (the bound here
/// is loose for unoptimised test builds).
#[test]
fn hostile_bodies_stay_linear() {
    let shapes = [
        "4111 1111 1111 1112 ",
        "44 ",
        "1-",
        "::",
        "a:",
        "eyJ.",
        "a@b.png ",
        "+1 ",
        "0 ",
        "DE89 ",
        "Bearer ",
        "AKIA",
        "1.2.",
        "é",
    ];
    let bodies: Vec<String> = shapes
        .iter()
        .map(|s| s.repeat(256 * 1024 / s.len()))
        .collect();
    let bodies: Vec<&str> = bodies.iter().map(String::as_str).collect();
    let all = json!({"presets": ["email", "credit_card", "ipv4", "ipv6", "jwt", "bearer",
                                 "aws_access_key", "iban", "phone"]});
    let started = std::time::Instant::now();
    let out = bodies_after(all, &bodies);
    let took = started.elapsed();
    assert_eq!(out.len(), shapes.len());
    assert!(took < std::time::Duration::from_secs(20), "took {took:?}");
}

/// Guarantees: one value hashes alike in a body and in an attribute, so
/// records can still be joined on it.
#[test]
fn hash_joins_body_and_attributes() {
    let config = json!({
        "presets": ["email"],
        "action": "hash",
        "hash_key": KEY,
        "attributes": ["user"],
    });
    let out = run(config, &logs(&[("a@b.io", &[("user", "a@b.io")])]));
    let body = out.table.strings("body").expect("body")[0].clone();
    assert!(
        body.as_deref()
            .is_some_and(|b| b.starts_with("[HASH:email:")),
        "{body:?}"
    );
    assert_eq!(attribute(&out, "attributes", "user"), [body]);
}

/// Guarantees: a custom rule anchored to the whole value (`^...$`) redacts
/// values that are nothing but the match, in bodies and attributes alike.
#[test]
fn anchored_custom_rule() {
    let config = json!({
        "rules": [{"name": "user_id", "regex": "^u-[0-9]+$"}],
        "attributes": ["user.id"],
    });
    let out = run(
        config,
        &logs(&[
            ("u-123", &[("user.id", "u-123")]),
            ("by u-123", &[("user.id", "u-123 (guest)")]),
        ]),
    );
    assert_eq!(
        out.table.strings("body").expect("body"),
        [
            Some("[REDACTED:user_id]".to_string()),
            Some("by u-123".to_string())
        ]
    );
    assert_eq!(
        attribute(&out, "attributes", "user.id"),
        [
            Some("[REDACTED:user_id]".into()),
            Some("u-123 (guest)".into())
        ]
    );
}

/// Guarantees: with `attributes = "*"`, every record attribute of every
/// row is redacted, keys named nowhere in the config included, whichever
/// rows hold them; `["*"]` means the same.
#[test]
fn every_attribute_is_redacted() {
    let input = logs(&[
        ("a", &[("contact", "a@b.io"), ("note", "x")]),
        ("b", &[("peer", "from 10.0.0.1"), ("contact", "nobody")]),
        ("c", &[]),
    ]);
    for every in [json!("*"), json!(["*"])] {
        let config = json!({"presets": ["email", "ipv4"], "attributes": every});
        let out = run(config, &input);
        assert_eq!(
            attribute(&out, "attributes", "contact"),
            [Some("[REDACTED:email]".into()), Some("nobody".into()), None]
        );
        assert_eq!(
            attribute(&out, "attributes", "peer"),
            [None, Some("from [REDACTED:ipv4]".into()), None]
        );
        assert_eq!(
            attribute(&out, "attributes", "note"),
            [Some("x".into()), None, None]
        );
    }
}

/// Guarantees: under `"*"`, a key of `allow_keys` is never touched,
/// whatever the rules find in it; an entry ending in `*` leaves every key
/// with that prefix alone and no other (`k8s.*` keeps `k8s.pod.ip`, not
/// `k8s`); bodies and other keys are redacted as before.
#[test]
fn allow_keys_are_left_alone() {
    let config = json!({
        "presets": ["email", "ipv4"],
        "attributes": "*",
        "allow_keys": ["http.route", "k8s.*"],
    });
    let out = run(
        config,
        &logs(&[(
            "by a@b.io",
            &[
                ("http.route", "/users/a@b.io"),
                ("k8s.pod.ip", "10.0.0.1"),
                ("k8s", "10.0.0.2"),
                ("http.route.full", "/users/c@d.io"),
            ],
        )]),
    );
    assert_eq!(
        attribute(&out, "attributes", "http.route"),
        [Some("/users/a@b.io".into())]
    );
    assert_eq!(
        attribute(&out, "attributes", "k8s.pod.ip"),
        [Some("10.0.0.1".into())]
    );
    assert_eq!(
        attribute(&out, "attributes", "k8s"),
        [Some("[REDACTED:ipv4]".into())]
    );
    assert_eq!(
        attribute(&out, "attributes", "http.route.full"),
        [Some("/users/[REDACTED:email]".into())]
    );
    assert_eq!(
        out.table.strings("body").expect("body")[0].as_deref(),
        Some("by [REDACTED:email]")
    );
    assert_eq!(
        recorded::take(),
        [("email".to_string(), 2), ("ipv4".to_string(), 1)]
    );
}

/// Guarantees: under `"*"` the counter still gets one call per rule per
/// batch, with the findings of the body and of every key together.
#[test]
fn counters_under_every_key() {
    let config = json!({
        "presets": ["email", "credit_card", "ipv4"],
        "attributes": "*",
    });
    run(
        config,
        &logs(&[
            ("a@b.io", &[("x", "c@d.io"), ("y", "10.0.0.1 e@f.io")]),
            (
                "card 4111111111111111",
                &[("z", "10.0.0.2"), ("x", "g@h.io")],
            ),
            ("clean", &[("w", "nothing")]),
        ]),
    );
    assert_eq!(
        recorded::take(),
        [
            ("email".to_string(), 4),
            ("credit_card".to_string(), 1),
            ("ipv4".to_string(), 2)
        ]
    );
}

/// Guarantees: under `"*"` a `drop` finding removes that key from the
/// rows it was found in only, and a batch with no finding is left exactly
/// as it came.
#[test]
fn every_key_drops_and_leaves_clean_batches() {
    let config = json!({
        "presets": ["email"],
        "actions": {"email": "drop"},
        "body": false,
        "attributes": "*",
    });
    let out = run(
        config.clone(),
        &logs(&[("", &[("contact", "a@b.io")]), ("", &[("contact", "desk")])]),
    );
    assert_eq!(
        attribute(&out, "attributes", "contact"),
        [None, Some("desk".into())]
    );
    let clean = logs(&[("", &[("contact", "desk"), ("n", "1")]), ("", &[])]);
    let out = run(config, &clean);
    assert_eq!(out.table, harness::logs(&clean).expect("valid"));
}

/// Guarantees: `resource_attributes = "*"` redacts every resource
/// attribute but those of `allow_keys`, counted once per row that shares
/// the resource, and leaves record attributes alone when `attributes` is
/// not given.
#[test]
fn every_resource_attribute() {
    let config = json!({
        "presets": ["ipv4"],
        "body": false,
        "resource_attributes": "*",
        "allow_keys": ["host.name"],
    });
    let input = logs_with(
        &[("host.ip", "10.1.2.3"), ("host.name", "10.9.9.9")],
        &[("one", &[("peer", "10.0.0.1")]), ("two", &[])],
    );
    let out = run(config, &input);
    assert_eq!(
        attribute(&out, "resource_attributes", "host.ip"),
        vec![Some("[REDACTED:ipv4]".to_string()); 2]
    );
    assert_eq!(
        attribute(&out, "resource_attributes", "host.name"),
        vec![Some("10.9.9.9".to_string()); 2]
    );
    assert_eq!(
        attribute(&out, "attributes", "peer"),
        [Some("10.0.0.1".into()), None]
    );
    assert_eq!(recorded::take(), [("ipv4".to_string(), 2)]);
}

/// Guarantees: `"*"` works on spans (no body) as on logs: every span
/// attribute is redacted, and `allow_keys` is honoured.
#[test]
fn every_span_attribute() {
    let config = json!({
        "presets": ["email"],
        "attributes": "*",
        "allow_keys": ["trace.parent"],
    });
    let spans = json!({"resourceSpans": [{"scopeSpans": [{"spans": [{
        "traceId": "0af7651916cd43dd8448eb211c80319c",
        "spanId": "b7ad6b7169203331",
        "name": "checkout",
        "attributes": [
            {"key": "enduser.id", "value": {"stringValue": "a@b.io"}},
            {"key": "trace.parent", "value": {"stringValue": "c@d.io"}},
            {"key": "http.status_code", "value": {"intValue": "200"}}
        ]
    }]}]}]})
    .to_string();
    recorded::take();
    let mut session = harness::Session::<Redact>::new(&config.to_string()).expect("init");
    let call = session.spans(&spans).expect("the plugin runs");
    let table = call.table.expect("the span stays");
    let out = Output {
        table,
        emitted: Vec::new(),
    };
    assert_eq!(
        attribute(&out, "attributes", "enduser.id"),
        [Some("[REDACTED:email]".into())]
    );
    assert_eq!(
        attribute(&out, "attributes", "trace.parent"),
        [Some("c@d.io".into())]
    );
    assert_eq!(
        attribute(&out, "attributes", "http.status_code"),
        [Some("200".into())]
    );
    assert_eq!(recorded::take(), [("email".to_string(), 1)]);
}
