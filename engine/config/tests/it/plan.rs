//! Valid pipelines: what the plan holds.

use std::io::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use weir_cli::{load, parse_str};
use weir_config::{ApiConfig, ComponentKind, RuntimeConfig};
use weir_core::{Signal, SignalSet};
use weir_rules::RulesConfig;
use weir_sinks::FileSinkConfig;
use weir_sources::OtlpSourceConfig;

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("test address is valid")
}

/// Scenario: the smallest pipeline. Guarantees: every unset key takes its
/// documented default, and there are no warnings.
#[test]
fn defaults_fill_unset_keys() {
    let plan = parse_str(
        "[sources.otlp]\ntype = \"otlp\"\n[sinks.null]\ntype = \"blackhole\"\ninputs = [\"otlp\"]\n",
        "p.toml",
    )
    .expect("valid");
    assert_eq!(plan.api, ApiConfig::default());
    assert_eq!(plan.api.address, addr("127.0.0.1:8888"));
    assert!(plan.api.enabled);
    assert_eq!(plan.runtime, RuntimeConfig::default());
    assert_eq!(plan.runtime.shutdown_timeout, Duration::from_secs(30));
    assert_eq!(plan.runtime.worker_threads, 0);
    let otlp = plan.component("otlp").expect("source exists");
    assert_eq!(
        otlp.config_as::<OtlpSourceConfig>(),
        Some(&OtlpSourceConfig::default())
    );
    let OtlpSourceConfig {
        grpc,
        http,
        max_request_size,
        max_expanded_request_size,
        max_in_flight_bytes,
        max_concurrent_requests,
        max_concurrent_streams,
        max_connections,
        read_timeout,
        queue_wait,
        retry_after,
        ack_timeout,
        ..
    } = OtlpSourceConfig::default();
    assert!(grpc && http);
    assert_eq!(max_request_size, 8 * 1024 * 1024);
    assert_eq!(max_expanded_request_size, 128 * 1024 * 1024);
    assert_eq!(max_in_flight_bytes, 512 * 1024 * 1024);
    assert_eq!(max_concurrent_requests, 512);
    assert_eq!(max_concurrent_streams, 100);
    assert_eq!(max_connections, 4096);
    assert_eq!(read_timeout, Duration::from_secs(10));
    assert_eq!(queue_wait, Duration::from_millis(200));
    assert_eq!(retry_after, Duration::from_secs(1));
    assert_eq!(ack_timeout, Duration::from_secs(30));
    assert_eq!(plan.component("null").map(|c| c.queue_capacity), Some(32));
    assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
}

/// Scenario: every key set. Guarantees: each value lands in its field, in
/// its unit (sizes in bytes, durations as `Duration`).
#[test]
fn every_key_is_read() {
    let plan = parse_str(
        r#"
[api]
address = "0.0.0.0:9999"
enabled = false
[runtime]
shutdown_timeout = "1m"
worker_threads = 4
[sources.in]
type = "otlp"
grpc = false
http_address = "[::1]:4318"
max_request_size = "4MB"
max_expanded_request_size = "64MiB"
max_in_flight_bytes = "1GiB"
max_concurrent_requests = 8
max_concurrent_streams = 16
max_connections = 100
read_timeout = "30s"
queue_wait = "0s"
retry_after = "3s"
ack_timeout = "1h"
[sinks.out]
type = "file"
inputs = ["in"]
path = "out.jsonl"
fsync = true
queue_capacity = 1
"#,
        "p.toml",
    )
    .expect("valid");
    assert_eq!(plan.api.address, addr("0.0.0.0:9999"));
    assert!(!plan.api.enabled);
    assert_eq!(plan.runtime.shutdown_timeout, Duration::from_secs(60));
    assert_eq!(plan.runtime.worker_threads, 4);
    let Some(otlp) = plan.components[0].config_as::<OtlpSourceConfig>() else {
        panic!("first component is the otlp source: {:?}", plan.components);
    };
    assert!(!otlp.grpc && otlp.http);
    assert_eq!(otlp.http_address, addr("[::1]:4318"));
    assert_eq!(otlp.max_request_size, 4_000_000);
    assert_eq!(otlp.max_expanded_request_size, 64 << 20);
    assert_eq!(otlp.max_in_flight_bytes, 1 << 30);
    assert_eq!(otlp.max_concurrent_requests, 8);
    assert_eq!(otlp.max_concurrent_streams, 16);
    assert_eq!(otlp.max_connections, 100);
    assert_eq!(otlp.read_timeout, Duration::from_secs(30));
    assert_eq!(otlp.queue_wait, Duration::ZERO);
    assert_eq!(otlp.retry_after, Duration::from_secs(3));
    assert_eq!(otlp.ack_timeout, Duration::from_secs(3600));
    let out = &plan.components[1];
    assert_eq!(
        out.config_as::<FileSinkConfig>(),
        Some(&FileSinkConfig {
            path: "out.jsonl".into(),
            fsync: true
        })
    );
    assert_eq!(out.queue_capacity, 1);
    assert_eq!(out.kind(), ComponentKind::Sink);
    assert_eq!(out.type_name, "file");
}

/// Scenario: `[store.max_future]` with one table set, and with none.
/// Guarantees: the table set takes its duration (zero allowed), the
/// others the documented default of one hour, as `[store.retention]`'s
/// unset tables take theirs.
#[test]
fn store_max_future_is_read_per_table() {
    let pipeline = |store: &str| {
        format!(
            "{store}\n[sources.otlp]\ntype = \"otlp\"\n[sinks.null]\ntype = \"blackhole\"\ninputs = [\"otlp\"]\n"
        )
    };
    let plan = parse_str(&pipeline(""), "p.toml").expect("valid");
    let hour = Duration::from_secs(3600);
    let f = &plan.store.max_future;
    assert_eq!(
        (f.logs, f.spans, f.metrics, f.alerts),
        (hour, hour, hour, hour)
    );
    let plan = parse_str(
        &pipeline("[store.max_future]\nspans = \"5m\"\nalerts = \"0s\""),
        "p.toml",
    )
    .expect("valid");
    let f = &plan.store.max_future;
    assert_eq!(f.spans, Duration::from_secs(300));
    assert_eq!(f.alerts, Duration::ZERO);
    assert_eq!((f.logs, f.metrics), (hour, hour));
}

/// Scenario: sinks written before their source, inputs split by signal.
/// Guarantees: components come in topological order, and entries from one
/// upstream merge into a single input with the union of their signals.
#[test]
fn order_and_signals() {
    let plan = parse_str(
        r#"
[sinks.two]
type = "blackhole"
inputs = ["otlp.logs", "otlp.metrics"]
[sinks.one]
type = "blackhole"
inputs = ["otlp"]
[sources.otlp]
type = "otlp"
"#,
        "p.toml",
    )
    .expect("valid");
    let names: Vec<&str> = plan.components.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["otlp", "two", "one"]);
    let two = plan.component("two").expect("exists");
    assert_eq!(two.inputs.len(), 1);
    assert_eq!(two.inputs[0].from, "otlp");
    assert_eq!(
        two.inputs[0].signals,
        [Signal::Logs, Signal::Metrics]
            .into_iter()
            .collect::<SignalSet>()
    );
    let readers: Vec<&str> = plan.readers("otlp").map(|(c, _)| c.name.as_str()).collect();
    assert_eq!(readers, ["two", "one"]);
}

/// Scenario: a source nothing reads and a signal nothing reads.
/// Guarantees: the plan is still made, with a rendered warning for each.
#[test]
fn unread_output_is_a_warning() {
    let plan = parse_str(
        "[sources.a]\ntype = \"otlp\"\n[sources.b]\ntype = \"otlp\"\ngrpc_address = \"127.0.0.1:1\"\nhttp_address = \"127.0.0.1:2\"\n[sinks.s]\ntype = \"blackhole\"\ninputs = [\"a.logs\"]\n",
        "p.toml",
    )
    .expect("valid despite warnings");
    assert_eq!(plan.warnings.len(), 2, "{:?}", plan.warnings);
    assert!(plan.warnings[0].starts_with(
        "warning: source `a` emits spans and metrics that nothing reads\n --> p.toml:1:1\n"
    ));
    assert!(
        plan.warnings[1].starts_with("warning: nothing reads from source `b`\n --> p.toml:3:1\n")
    );
}

/// Scenario: `load` on a file on disk, and on a path that does not exist.
/// Guarantees: the file is read and checked with its path in messages; a
/// missing file is an error naming the path.
#[test]
fn load_reads_files() {
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    file.write_all(b"[sources.otlp]\ntype = \"otlp\"\n[sinks.null]\ntype = \"blackhol\"\ninputs = [\"otlp\"]\n")
        .expect("write fixture");
    let err = load(file.path()).expect_err("type is misspelt");
    let d = &err.diagnostics()[0];
    assert_eq!(d.file, file.path().display().to_string());
    assert_eq!(d.line(), Some(4));

    let missing = file.path().with_extension("missing");
    let err = load(&missing).expect_err("no such file");
    assert!(
        err.to_string().contains("cannot read pipeline file"),
        "{err}"
    );
    assert_eq!(err.diagnostics()[0].line(), None);
}

const RULES: &str = r#"
[sources.otlp]
type = "otlp"

[processors.slo]
type = "rules"
inputs = ["otlp.spans"]
every = "30s"
allowed_lateness = "10s"

[[processors.slo.rules]]
record = "service_error_ratio"
window = "5m"
sql = "SELECT service_name, avg(CASE WHEN status_code = 2 THEN 1.0 ELSE 0.0 END) AS value FROM spans GROUP BY service_name"

[[processors.slo.rules]]
alert = "HighErrorRate"
for = "5m"
keep_firing_for = "1m"
query_offset = "15s"
sql = "SELECT service_name, 1.0 AS value FROM spans GROUP BY service_name"
labels = { severity = "page" }
annotations = { summary = "{{ $labels.service_name }} fails" }

[sinks.store]
type = "store"
inputs = ["slo", "otlp"]
"#;

/// Scenario: a `rules` processor with a recording and an alert rule.
/// Guarantees: every key of the group and of its rules is read, defaults
/// fill the rest, and the processor emits metric points only.
#[test]
fn rules_processor_is_read() {
    let plan = parse_str(RULES, "rules.toml").expect("valid");
    let slo = plan.component("slo").expect("slo");
    let Some(RulesConfig {
        every,
        allowed_lateness,
        idle_timeout,
        max_future,
        rules,
    }) = slo.config_as::<RulesConfig>()
    else {
        panic!("a rules processor: {:?}", slo.config);
    };
    assert_eq!(*every, Duration::from_secs(30));
    assert_eq!(*allowed_lateness, Duration::from_secs(10));
    assert_eq!(*idle_timeout, Duration::from_secs(300), "the default");
    assert_eq!(*max_future, Duration::from_secs(600), "the default");
    assert_eq!(rules.len(), 2);
    assert_eq!(rules[0].name(), "service_error_ratio");
    assert!(!rules[0].is_alert());
    assert_eq!(rules[0].window, Duration::from_secs(300));
    assert_eq!(rules[1].name(), "HighErrorRate");
    assert_eq!(rules[1].for_duration, Duration::from_secs(300));
    assert_eq!(rules[1].keep_firing_for, Duration::from_secs(60));
    assert_eq!(rules[1].query_offset, Duration::from_secs(15));
    assert_eq!(rules[1].window, Duration::from_secs(300));
    assert_eq!(rules[1].labels["severity"], "page");
    assert_eq!(
        rules[1].annotations["summary"],
        "{{ $labels.service_name }} fails"
    );
    let store = plan.component("store").expect("store");
    let from_slo = store.inputs.iter().find(|i| i.from == "slo").expect("edge");
    assert_eq!(
        from_slo.signals,
        SignalSet::only(Signal::Metrics).union(SignalSet::only(Signal::Alerts))
    );
}

/// Scenario: rules that are not well formed. Guarantees: each is an error
/// naming the rule and what to do, at the `rules` key's line.
#[test]
fn malformed_rules_are_errors() {
    let bad = |rule: &str| {
        let text = format!(
            "[sources.otlp]\ntype = \"otlp\"\n[processors.r]\ntype = \"rules\"\ninputs = [\"otlp\"]\n\
             [[processors.r.rules]]\n{rule}\n[sinks.s]\ntype = \"blackhole\"\ninputs = [\"r\"]\n"
        );
        parse_str(&text, "r.toml").expect_err("invalid").to_string()
    };
    let both = bad("alert = \"A\"\nrecord = \"b\"\nsql = \"SELECT 1 AS value\"");
    assert!(both.contains("both of `alert` and `record`"), "{both}");
    assert!(both.contains("r.toml:"), "{both}");
    let neither = bad("sql = \"SELECT 1 AS value\"");
    assert!(neither.contains("neither"), "{neither}");
    let for_on_record = bad("record = \"b\"\nfor = \"5m\"\nsql = \"SELECT 1 AS value\"");
    assert!(for_on_record.contains("sets `for`"), "{for_on_record}");
    let unknown = bad("alert = \"A\"\nsql = \"SELECT 1 AS value\"\nfour = \"5m\"");
    assert!(unknown.contains("four"), "{unknown}");
    let no_sql = bad("alert = \"A\"");
    assert!(no_sql.contains("sql"), "{no_sql}");
    let bad_window = bad("alert = \"A\"\nsql = \"SELECT 1 AS value\"\nwindow = \"0s\"");
    assert!(bad_window.contains("longer than zero"), "{bad_window}");
}
