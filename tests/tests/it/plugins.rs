//! The first-party plugins, named in a pipeline by `plugin = "..."`, in a
//! running Weir: the OpenTelemetry Python SDK sends (`plugin_traffic.py`),
//! the embedded store keeps what the plugin sends on, and SQL reads it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use weir_testkit::engine;

use crate::python_sdk::{python, sql};

/// Weir with OTLP on port 0, `processors` (TOML) between it and the store,
/// the last processor named `last`.
async fn start(dir: &Path, processors: &str, last: &str) -> weir_cli::Started {
    engine::start(&format!(
        r#"
[api]
address = "127.0.0.1:0"

[store]
path = "{}"

[sources.otlp]
type = "otlp"
grpc = false
http_address = "127.0.0.1:0"

{processors}

[sinks.store]
type = "store"
inputs = ["{last}"]
"#,
        dir.join("data").display()
    ))
    .await
}

/// Sends `what` (`traces` or `logs`, `count` of them) with the Python SDK
/// to `weir`; returns what the SDK exported, one JSON object per record.
async fn send(weir: &weir_cli::Started, what: &str, count: usize, dir: &Path) -> Vec<Value> {
    let endpoint = format!("http://{}", weir.listener("otlp/http").expect("http"));
    let record: PathBuf = dir.join(format!("{what}.jsonl"));
    let (what, script, file) = (
        what.to_string(),
        concat!(env!("CARGO_MANIFEST_DIR"), "/python/plugin_traffic.py"),
        record.clone(),
    );
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python())
            .arg(script)
            .arg(&endpoint)
            .arg(&what)
            .arg(count.to_string())
            .arg(&file)
            .output()
            .expect("python runs")
    })
    .await
    .expect("sender");
    assert!(
        out.status.success(),
        "the Python SDK reported failed exports:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(&record)
        .expect("the sender's record")
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

/// Runs `query` until `done` holds for its rows, or panics after 30s.
async fn until(
    api: std::net::SocketAddr,
    query: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let rows = sql(api, query).await;
        if done(&rows) {
            return rows;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{query}: still {rows:?} after 30s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Scenario: 300 log records whose bodies carry an e-mail address, a
/// Luhn-valid card number and a Luhn-invalid order id, and whose
/// `user.email` attribute is an address, pass `plugin = "redact"` with the
/// `email` and `credit_card` presets on bodies and `user.email`.
/// Guarantees: every record is stored; no stored body or attribute holds an
/// address or the card number; each body reads as the sent one with the
/// two findings masked, the order id untouched.
#[tokio::test(flavor = "multi_thread")]
async fn redact_masks_what_the_sdk_sent() {
    let dir = tempfile::tempdir().expect("temp dir");
    let weir = start(
        dir.path(),
        r#"
[processors.redact]
type = "wasm"
plugin = "redact"
inputs = ["otlp"]
config = { presets = ["email", "credit_card"], attributes = ["user.email"] }
"#,
        "redact",
    )
    .await;
    let sent = send(&weir, "logs", 300, dir.path()).await;
    assert_eq!(sent.len(), 300);
    let api = weir.api_addr.expect("api");
    let stored = sql(
        api,
        "SELECT body, attributes['user.email'] AS email FROM logs ORDER BY body",
    )
    .await;
    assert_eq!(stored.len(), 300, "every record is stored");
    for row in &stored {
        let body = row["body"].as_str().expect("body");
        assert_eq!(
            body,
            "user [REDACTED:email] paid order 4111111111111112 with card [REDACTED:credit_card]"
        );
        assert_eq!(row["email"], "[REDACTED:email]");
    }
    let leaked = sql(
        api,
        "SELECT count(*) AS n FROM logs WHERE body LIKE '%example.com%' \
         OR body LIKE '%4111 1111%' OR attributes['user.email'] LIKE '%@%'",
    )
    .await;
    assert_eq!(leaked[0]["n"], 0);
    let report = weir.stop().await;
    assert!(report.is_clean(), "weir stopped with errors: {report:?}");
}

/// Scenario: 200 traces of three spans each (a SERVER span, a CLIENT and an
/// INTERNAL child, 20 of the INTERNAL ones failed) pass `plugin =
/// "spanmetrics"` emitting every second, spans and metrics both into the
/// store.
/// Guarantees: the latest cumulative `traces.span.metrics.calls` point of
/// each series (service, span name, kind, status) equals the `count(*)` SQL
/// computes over the stored spans of that series, for every series, and
/// the duration histogram's count agrees with it.
#[tokio::test(flavor = "multi_thread")]
async fn spanmetrics_counts_equal_sql_over_the_same_spans() {
    let dir = tempfile::tempdir().expect("temp dir");
    let weir = start(
        dir.path(),
        r#"
[processors.red]
type = "wasm"
plugin = "spanmetrics"
inputs = ["otlp"]
config = { interval = "1s" }
"#,
        "red",
    )
    .await;
    let sent = send(&weir, "traces", 200, dir.path()).await;
    assert_eq!(sent.len(), 600);
    let api = weir.api_addr.expect("api");
    let by_sql: BTreeMap<String, i64> = sql(
        api,
        "SELECT service_name || '|' || name || '|' || CAST(kind AS VARCHAR) || '|' || \
         CAST(COALESCE(status_code, 0) AS VARCHAR) AS series, count(*) AS n \
         FROM spans GROUP BY 1",
    )
    .await
    .iter()
    .map(|r| {
        (
            r["series"].as_str().expect("series").to_string(),
            r["n"].as_i64().expect("n"),
        )
    })
    .collect();
    assert_eq!(by_sql.values().sum::<i64>(), 600, "every span is stored");
    assert_eq!(by_sql.len(), 4, "{by_sql:?}");

    let kinds = |k: &str| match k {
        "SPAN_KIND_INTERNAL" => "1",
        "SPAN_KIND_SERVER" => "2",
        "SPAN_KIND_CLIENT" => "3",
        other => panic!("unexpected kind {other}"),
    };
    let status = |s: &str| match s {
        "STATUS_CODE_UNSET" => "0",
        "STATUS_CODE_OK" => "1",
        "STATUS_CODE_ERROR" => "2",
        other => panic!("unexpected status {other}"),
    };
    let latest = "SELECT resource_attributes['service.name'] AS service, \
        attributes['span.name'] AS span, attributes['span.kind'] AS kind, \
        attributes['status.code'] AS status, \
        last_value(value ORDER BY time) AS calls \
        FROM metrics WHERE metric_name = 'traces.span.metrics.calls' GROUP BY 1, 2, 3, 4";
    let to_map = |rows: &[Value]| -> BTreeMap<String, i64> {
        rows.iter()
            .map(|r| {
                let key = format!(
                    "{}|{}|{}|{}",
                    r["service"].as_str().unwrap_or(""),
                    r["span"].as_str().unwrap_or(""),
                    kinds(r["kind"].as_str().unwrap_or("")),
                    status(r["status"].as_str().unwrap_or(""))
                );
                (key, r["calls"].as_f64().unwrap_or(-1.0) as i64)
            })
            .collect()
    };
    let rows = until(api, latest, |rows| to_map(rows) == by_sql).await;
    assert_eq!(to_map(&rows), by_sql);
    let hist = sql(
        api,
        "SELECT sum(c) AS n FROM (SELECT last_value(count ORDER BY time) AS c FROM metrics \
         WHERE metric_name = 'traces.span.metrics.duration' \
         GROUP BY attributes['span.name'], attributes['status.code'])",
    )
    .await;
    assert_eq!(hist[0]["n"], 600, "the histogram counts every span");
    let report = weir.stop().await;
    assert!(report.is_clean(), "weir stopped with errors: {report:?}");
}

/// The sum of counter `name` over its series carrying every one of
/// `labels` (`component="enrich"`) in the process-wide `/metrics` text; 0
/// before the counter exists.
fn counter(name: &str, labels: &[&str]) -> f64 {
    engine::metrics_text()
        .lines()
        .filter(|l| l.split(['{', ' ']).next() == Some(name))
        .filter(|l| labels.iter().all(|label| l.contains(label)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Scenario: 100 traces of service `shop` (a SERVER span with
/// `client.address` 10.0.<i % 4>.<i % 250>, two children) pass `plugin =
/// "enrich"` with a CSV table of services (exact match) and a CSV table of
/// networks (CIDR: 10.0.0.0/24, 10.0.1.0/24 and 10.0.0.0/16); then the
/// services file is rewritten, the reload is seen in
/// `weir_plugin_lookup_reloads_total`, and 100 more traces are sent.
/// Guarantees: every stored span has its service's team, owner and the
/// static environment on its resource; every SERVER span has the zone of
/// the most specific network holding its address (/24 over /16); spans sent
/// after the reload have the new team, those before keep the old one.
#[tokio::test(flavor = "multi_thread")]
async fn enrich_adds_lookups_and_sees_a_changed_table() {
    let dir = tempfile::tempdir().expect("temp dir");
    let services = dir.path().join("services.csv");
    let networks = dir.path().join("networks.csv");
    std::fs::write(
        &services,
        "service,team,owner\nshop,storefront,ana\ncart,basket,bo\n",
    )
    .expect("write");
    std::fs::write(
        &networks,
        "network,zone\n10.0.0.0/24,zone-a\n10.0.1.0/24,zone-b\n10.0.0.0/16,campus\n",
    )
    .expect("write");
    let weir = start(
        dir.path(),
        &format!(
            r#"
[processors.enrich]
type = "wasm"
plugin = "enrich"
inputs = ["otlp"]
lookups = {{ services = {{ file = "{}", key = "service" }},
             networks = {{ file = "{}", key = "network", match = "cidr" }} }}

[processors.enrich.config]
lookups = [
  {{ table = "services", from = "resource.service.name", to = {{ set = "resource" }},
     columns = {{ team = "team.name", owner = "team.owner" }} }},
  {{ table = "networks", from = "record.client.address", to = {{ set = "record" }},
     columns = {{ zone = "network.zone" }} }},
]
actions = [{{ set = "resource", key = "deployment.environment.name", value = "e2e", action = "insert" }}]
"#,
            services.display(),
            networks.display()
        ),
        "enrich",
    )
    .await;
    let api = weir.api_addr.expect("api");
    let first = send(&weir, "traces", 100, dir.path()).await;
    assert_eq!(first.len(), 300);

    // A new owner for `shop`: the host sees the file change and swaps the
    // table in whole.
    std::fs::write(&services, "service,team,owner\nshop,checkout-team,cy\n").expect("write");
    let start_wait = Instant::now();
    while counter(
        "weir_plugin_lookup_reloads_total",
        &["component=\"enrich\""],
    ) < 1.0
    {
        assert!(
            start_wait.elapsed() < Duration::from_secs(30),
            "the changed lookup file was not reloaded:\n{}",
            engine::metrics_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let second = send(&weir, "traces", 100, dir.path()).await;
    let second_ids: std::collections::BTreeSet<&str> = second
        .iter()
        .map(|s| s["span_id"].as_str().expect("span id"))
        .collect();

    let rows = sql(
        api,
        "SELECT span_id, kind, attributes['client.address'] AS address, \
         attributes['network.zone'] AS zone, resource_attributes['team.name'] AS team, \
         resource_attributes['team.owner'] AS owner, \
         resource_attributes['deployment.environment.name'] AS env FROM spans",
    )
    .await;
    assert_eq!(rows.len(), 600, "every span is stored");
    for row in &rows {
        let after = second_ids.contains(row["span_id"].as_str().expect("span id"));
        let (team, owner) = if after {
            ("checkout-team", "cy")
        } else {
            ("storefront", "ana")
        };
        assert_eq!(row["team"], team, "{row}");
        assert_eq!(row["owner"], owner, "{row}");
        assert_eq!(row["env"], "e2e", "{row}");
        if let Some(address) = row["address"].as_str() {
            let zone = match address.split('.').nth(2) {
                Some("0") => "zone-a",
                Some("1") => "zone-b",
                _ => "campus",
            };
            assert_eq!(row["zone"], zone, "{row}");
        } else {
            assert!(row["zone"].is_null(), "{row}");
        }
    }
    let servers = rows.iter().filter(|r| r["address"].is_string()).count();
    assert_eq!(servers, 200, "every SERVER span carries its address");
    let report = weir.stop().await;
    assert!(report.is_clean(), "weir stopped with errors: {report:?}");
}

/// `weir_plugin_sample_traces_total{component, decision}`: the traces the
/// plugin decided so.
fn sample_traces(component: &str, decision: &str) -> u64 {
    let labels = [
        format!(r#"component="{component}""#),
        format!(r#"decision="{decision}""#),
    ];
    let labels = [labels[0].as_str(), labels[1].as_str()];
    // The in-process text names a plugin's counter with or without
    // `_total`, as the recorder rendered it.
    [
        "weir_plugin_sample_traces_total",
        "weir_plugin_sample_traces",
    ]
    .iter()
    .map(|name| counter(name, &labels))
    .sum::<f64>() as u64
}

/// Scenario: 200 traces of three spans (in every tenth, `charge` failed),
/// sent by the Python SDK in several exports, pass `plugin = "sample"`
/// tail sampling (keep traces with an error span, and 10 % of the others
/// by their OTEP 235 randomness; `decision_wait = "1s"`, `check_interval
/// = "200ms"`) with the default number of instances, into the store.
/// Guarantees: every trace with a failed span is stored whole, its three
/// spans; no trace is stored in part (the host routes every span of a
/// trace to the instance that holds the others, by the plugin's
/// `partition_by`); of the 180 healthy traces 3 to 35 are stored (18
/// expected: the SDK's trace ids are random, and with them the
/// randomness); the traces stored are exactly the ones the plugin counted
/// as kept.
#[tokio::test(flavor = "multi_thread")]
async fn sample_keeps_error_traces_whole_and_a_tenth_of_the_others() {
    let dir = tempfile::tempdir().expect("temp dir");
    let component = "tail_sample";
    let weir = start(
        dir.path(),
        r#"
[processors.tail_sample]
type = "wasm"
plugin = "sample"
inputs = ["otlp"]
on_error = "fail"

[processors.tail_sample.config.tail]
decision_wait = "1s"
check_interval = "200ms"
policies = [
  { name = "errors", type = "status_code", status_codes = ["ERROR"] },
  { name = "tenth", type = "probabilistic", sampling_percentage = 10 },
]
"#,
        component,
    )
    .await;
    let sent = send(&weir, "traces", 200, dir.path()).await;
    assert_eq!(sent.len(), 600);
    let mut spans_sent: BTreeMap<String, usize> = BTreeMap::new();
    let mut failed: BTreeSet<String> = BTreeSet::new();
    for span in &sent {
        let trace = span["trace_id"].as_str().expect("trace_id").to_string();
        if span["error"] == true {
            failed.insert(trace.clone());
        }
        *spans_sent.entry(trace).or_default() += 1;
    }
    assert_eq!((spans_sent.len(), failed.len()), (200, 20));

    // Every trace decided, by the plugin's count; then every kept one in
    // the store.
    let start = Instant::now();
    while sample_traces(component, "kept") + sample_traces(component, "dropped") < 200 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the plugin decided {} kept and {} dropped of 200 traces after 30s",
            sample_traces(component, "kept"),
            sample_traces(component, "dropped")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let kept = sample_traces(component, "kept");
    assert_eq!(kept + sample_traces(component, "dropped"), 200);
    let api = weir.api_addr.expect("api");
    let rows = until(
        api,
        "SELECT encode(trace_id, 'hex') AS trace, count(*) AS n FROM spans GROUP BY 1",
        |rows| rows.len() as u64 >= kept,
    )
    .await;
    let stored: BTreeMap<String, i64> = rows
        .iter()
        .map(|r| {
            (
                r["trace"].as_str().expect("trace").to_string(),
                r["n"].as_i64().expect("n"),
            )
        })
        .collect();
    assert_eq!(stored.len() as u64, kept, "the traces the plugin kept");
    for trace in &failed {
        assert_eq!(stored.get(trace), Some(&3), "failed trace {trace} whole");
    }
    for (trace, n) in &stored {
        assert_eq!(
            Some(*n as usize),
            spans_sent.get(trace).copied(),
            "trace {trace} stored whole"
        );
    }
    let healthy = stored.keys().filter(|t| !failed.contains(*t)).count();
    assert!(
        (3..=35).contains(&healthy),
        "{healthy} of 180 healthy traces kept; about 18 expected"
    );
    let report = weir.stop().await;
    assert!(report.is_clean(), "weir stopped with errors: {report:?}");
}
