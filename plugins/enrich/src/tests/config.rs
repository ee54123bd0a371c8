//! Config mistakes: each is refused at `init` with the key to fix.

use serde_json::json;

use super::*;

/// Guarantees: the example config is accepted as written.
#[test]
fn the_documented_example_is_accepted() {
    table("teams", &[]);
    plugin(json!({
        "lookups": [{"table": "teams", "from": {"set": "resource", "key": "service.name"},
                     "to": {"set": "resource"}, "columns": {"team": "team", "owner": "owner"}}],
        "actions": [
            {"set": "resource", "key": "deployment.environment", "value": "prod", "action": "insert"},
            {"set": "record", "key": "http.route", "action": "rename", "to": "route"},
            {"set": "record", "key": "user.password", "action": "delete"},
            {"set": "resource", "key": "service.ns_name", "action": "upsert",
             "value": "{resource.service.namespace}/{resource.service.name}"}
        ]
    }));
}

/// Guarantees: each mistake is refused with the config key to fix and
/// what to write instead.
#[test]
fn mistakes_name_the_key() {
    table("teams", &[]);
    let cases = [
        (json!({}), "nothing to do"),
        (
            json!({"actions": [{"key": "a", "action": "upsert", "valeu": "x"}]}),
            "config key `actions[0].valeu`: unknown field `valeu`",
        ),
        (
            json!({"actions": [{"key": "a", "action": "hash"}]}),
            "config key `actions[0].action`: unknown variant `hash`",
        ),
        (
            json!({"actions": [{"key": "a", "action": "insert"}]}),
            "config key `actions[0]`: action \"insert\" needs `value`",
        ),
        (
            json!({"actions": [{"key": "a", "action": "delete", "value": "x"}]}),
            "config key `actions[0].value`: not used by action \"delete\"",
        ),
        (
            json!({"actions": [{"key": "a", "action": "rename"}]}),
            "action \"rename\" needs `to`",
        ),
        (
            json!({"actions": [{"key": "a", "action": "rename", "to": "a"}]}),
            "renaming `a` to itself",
        ),
        (
            json!({"actions": [{"key": "", "action": "delete"}]}),
            "config key `actions[0].key`: cannot be empty",
        ),
        (
            json!({"actions": [{"key": "a", "action": "upsert", "value": "{resource.x"}]}),
            "config key `actions[0].value`: the template `{resource.x` does not parse: a `{` is never closed",
        ),
        (
            json!({"actions": [{"key": "a", "action": "upsert", "value": "{service.name}"}]}),
            "neither an attribute (write `resource.KEY`",
        ),
        (
            json!({"actions": [{"key": "a", "action": "upsert", "value": "x", "signals": []}]}),
            "config key `actions[0].signals`: names no signal",
        ),
        (
            json!({"actions": [{"key": "a", "action": "upsert", "value": "x", "set": "span"}]}),
            "config key `actions[0].set`: unknown variant `span`",
        ),
        (
            json!({"lookups": [{"table": "nope", "from": "service_name"}]}),
            "config key `lookups[0].table`: the pipeline gives this plugin no lookup table `nope`",
        ),
        (
            json!({"lookups": [{"table": "teams", "from": "servce_name"}]}),
            "config key `lookups[0].from`: `servce_name` is neither",
        ),
        (
            json!({"lookups": [{"table": "teams", "from": {"set": "resource"}}]}),
            "config key `lookups[0].from`: give `set` and `key`",
        ),
        (
            json!({"lookups": [{"table": "teams", "from": "service_name", "action": "delete"}]}),
            "config key `lookups[0].action`: a lookup sets attributes",
        ),
        (
            json!({"lookups": [{"table": "teams", "from": "service_name", "to": {"key": "t"},
                             "columns": {"team": "team"}}]}),
            "config key `lookups[0].to.key`: not used by a lookup with `columns`",
        ),
        (
            json!({"lookups": [{"table": "teams", "from": "service_name", "columns": {"team": ""}}]}),
            "config key `lookups[0].columns.team`: cannot be empty",
        ),
        (
            json!({"lookups": [{"table": "teams"}]}),
            "config key `lookups[0]`: missing field `from`",
        ),
    ];
    for (config, expected) in cases {
        let message = init_error(config.clone());
        assert!(
            message.contains(expected),
            "config {config}:\n  got      {message}\n  expected {expected}"
        );
    }
}
