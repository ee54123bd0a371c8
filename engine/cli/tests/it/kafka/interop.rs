//! Interoperability with real Kafka clients: what confluent-kafka and a
//! Rotel collector produce Weir reads, and what Weir writes confluent-kafka
//! reads, decoded with the official OpenTelemetry protobuf classes.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;
use weir_testkit::backends::Rotel;
use weir_testkit::kafka::Broker;
use weir_testkit::otlp::{self, Group};
use weir_testkit::time::{MILLI, now_ns};

use super::{
    consume, expected_span, metric_sum, produce, source_to_store, start, stop, stored_spans,
    wait_for_distinct_spans, wait_for_line,
};
use crate::common;

/// Scenario: confluent-kafka produces 20 OTLP trace messages of 512 spans
/// each (built with the official protobuf classes) to a topic of 3
/// partitions, 5 of them uncompressed and 5 each gzip, lz4 and zstd; a
/// Kafka source reads the topic into the store.
/// Guarantees: the source logs that it started; the store holds exactly the
/// 10240 spans, once each, with their span ids, trace ids, names and
/// attributes; `weir_kafka_messages_total` counts the 20 messages.
#[test]
fn otlp_produced_by_confluent_kafka_lands_in_the_store() {
    let broker = Broker::start();
    broker.create_topic("spans-in", 3);
    let mut prefix = String::new();
    for (i, compression) in ["none", "gzip", "lz4", "zstd"].iter().enumerate() {
        let first = (i * 5).to_string();
        let summary = produce(
            &broker,
            "spans-in",
            &[
                "spans",
                "5",
                "512",
                "interop-in",
                "--first",
                &first,
                "--compression",
                compression,
            ],
        );
        prefix = summary["id_prefix"]
            .as_str()
            .expect("id_prefix")
            .to_string();
    }
    let dir = tempfile::tempdir().expect("tmp");
    let weir = start(
        dir.path(),
        &source_to_store(&broker, "spans-in", "interop-in", ""),
    );
    let started = wait_for_line(&weir, "start line", Duration::from_secs(30), |l| {
        l["fields"]["message"] == "kafka consumer started"
    });
    assert_eq!(started["fields"]["component"], "fleet", "{started}");
    assert_eq!(
        started["fields"]["brokers"].as_str(),
        Some(broker.address().as_str()),
        "{started}"
    );

    wait_for_distinct_spans(&weir, "interop-in", 10240, Duration::from_secs(120));
    let stored = stored_spans(&weir.api, "interop-in");
    assert_eq!(stored.len(), 10240, "every span once");
    for (seq, span) in (0u64..).zip(&stored) {
        let (span_id, trace_id, name) = expected_span(&prefix, seq / 512, seq);
        assert_eq!(span.seq, seq);
        assert_eq!(
            (&span.span_id, &span.trace_id, &span.name),
            (&span_id, &trace_id, &name)
        );
    }
    let rows = super::sql(
        &weir.api,
        "SELECT DISTINCT service_name, scope_name, kind FROM spans \
         WHERE attributes['test.tag'] = 'interop-in'",
    );
    assert_eq!(rows, ["kafka-producer,weir.kafka-test,2"]);
    let messages = metric_sum(
        &weir.api,
        "weir_kafka_messages_total",
        &[("component", "fleet"), ("topic", "spans-in")],
    );
    assert_eq!(messages, Some(20.0));
    stop(weir);
}

/// Spans of 4 traces, `n` per trace, numbered from `first`, as OTLP/JSON:
/// span id `first + i`, name `step-{i % 5}`.
pub(super) fn traced_spans(first: u64, n: u64) -> String {
    let now = now_ns();
    let spans = (0..4 * n).map(|i| {
        let id = first + i;
        let trace = 0x7a11_0000_0000_0000_0000_0000_0000_0000_u128 + u128::from(i % 4);
        otlp::span(
            &trace.to_be_bytes(),
            &id.to_be_bytes(),
            &format!("step-{}", i % 5),
            now + i * MILLI,
            now + i * MILLI + 500,
        )
    });
    otlp::spans_json(&Group::new(spans).service("sink-test").spans())
}

/// The topic names of a Kafka sink: `{prefix}-spans` and so on.
fn sink_topics(broker: &Broker, prefix: &str) -> String {
    for signal in ["spans", "metrics", "logs", "alerts"] {
        broker.create_topic(&format!("{prefix}-{signal}"), 2);
    }
    format!(
        "topics = {{ spans = \"{prefix}-spans\", metrics = \"{prefix}-metrics\", \
         logs = \"{prefix}-logs\", alerts = \"{prefix}-alerts\" }}"
    )
}

/// Scenario: 5 OTLP/HTTP requests of 200 spans (4 traces) go into Weir,
/// whose three Kafka sinks write them: one zstd-compressed, one lz4 with a
/// message per trace, one with `max_message_bytes = "8KB"` (smaller than
/// a request); confluent-kafka reads the three topics.
/// Guarantees: once Weir answered 200, every span is on each topic and
/// decodes with the official protobuf classes, with its span id and name;
/// the per-trace sink writes one trace per message, keyed by its trace id;
/// batches too large for one message are split, none above the limit and
/// no span dropped.
#[test]
fn what_the_sink_writes_decodes_with_the_official_classes() {
    let broker = Broker::start();
    let plain = sink_topics(&broker, "plain");
    let by_trace = sink_topics(&broker, "bytrace");
    let small = sink_topics(&broker, "small");
    let dir = tempfile::tempdir().expect("tmp");
    let weir = start(
        dir.path(),
        &format!(
            r#"
[sinks.plain]
type = "kafka"
inputs = ["otlp"]
brokers = "{brokers}"
compression = "zstd"
{plain}

[sinks.bytrace]
type = "kafka"
inputs = ["otlp"]
brokers = "{brokers}"
compression = "lz4"
partition_traces_by_id = true
{by_trace}

[sinks.small]
type = "kafka"
inputs = ["otlp"]
brokers = "{brokers}"
max_message_bytes = "8KB"
{small}
"#,
            brokers = broker.address()
        ),
    );
    let client = reqwest::blocking::Client::new();
    for request in 0..5 {
        common::post_spans(&client, &weir.http, traced_spans(1000 + request * 200, 50));
    }
    let mut ids: Vec<String> = (1000u64..2000).map(|id| format!("{id:016x}")).collect();
    ids.sort();
    let names: BTreeMap<String, Value> = (0..5)
        .map(|n| (format!("step-{n}"), Value::from(200)))
        .collect();
    for topic in ["plain-spans", "bytrace-spans", "small-spans"] {
        let (ok, read) = consume(&broker, topic, &["spans", "--count", "1000"]);
        assert!(ok, "{topic}: {read}");
        assert_eq!(read["spans"], 1000, "{topic}");
        assert_eq!(read["span_ids"], Value::from(ids.clone()), "{topic}");
        assert_eq!(read["names"], serde_json::to_value(&names).expect("json"));
    }
    let (_, split) = consume(&broker, "small-spans", &["spans", "--count", "1000"]);
    let messages = split["messages"].as_u64().expect("messages");
    let largest = split["largest"].as_u64().expect("largest");
    assert!(
        messages >= 10 && largest <= 8000,
        "5 requests of about 20 KB in messages of at most 8 KB: {messages} messages, \
         the largest {largest} bytes"
    );
    let (_, by_trace) = consume(&broker, "bytrace-spans", &["spans", "--count", "1000"]);
    assert_eq!(
        by_trace["mixed_traces"], 0,
        "one trace per message: {by_trace}"
    );
    // The key is the trace id in hex, as text or as the 16 raw bytes.
    let mut keys: Vec<String> = by_trace["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| {
            let k = k.as_str().unwrap_or_default();
            k.strip_prefix("0x").unwrap_or(k).to_string()
        })
        .collect();
    keys.sort();
    let traces: Vec<String> = (0..4u128)
        .map(|i| {
            format!(
                "{:032x}",
                0x7a11_0000_0000_0000_0000_0000_0000_0000_u128 + i
            )
        })
        .collect();
    assert_eq!(keys, traces, "{by_trace}");
    stop(weir);
}

/// Scenario: the alert rule of `alerts.rs` (three or more `cart` spans in
/// a minute) fires and then resolves; two Kafka sinks take the rules
/// processor's alerts, one as alert_event, one as Alertmanager's webhook
/// JSON; confluent-kafka reads both topics.
/// Guarantees: the alert_event topic holds the alert's `firing`
/// transition, then its `resolved` one, for rule `CartIsBusy` with its
/// labels, each keyed by the alert's fingerprint; the webhook topic holds
/// version "4" groups for receiver `webhooks`, firing then resolved.
#[test]
fn alert_events_reach_a_topic_firing_then_resolved() {
    let broker = Broker::start();
    let topics = sink_topics(&broker, "alerting");
    let webhook_topics = sink_topics(&broker, "am");
    let dir = tempfile::tempdir().expect("tmp");
    let weir = start(
        dir.path(),
        &format!(
            r#"
[processors.slo]
type = "rules"
inputs = ["otlp.spans"]
every = "30s"

[[processors.slo.rules]]
alert = "CartIsBusy"
window = "1m"
sql = "SELECT service_name, CAST(count(*) AS DOUBLE) AS value FROM spans WHERE service_name = 'cart' GROUP BY service_name HAVING count(*) >= 3"
labels = {{ severity = "page" }}

[sinks.alerts]
type = "kafka"
inputs = ["slo.alerts"]
brokers = "{brokers}"
alerts_encoding = "alert_event"
{topics}

[sinks.webhooks]
type = "kafka"
inputs = ["slo.alerts"]
brokers = "{brokers}"
alerts_encoding = "alertmanager_webhook"
{webhook_topics}
"#,
            brokers = broker.address()
        ),
    );
    let now = weir_testkit::time::now_secs();
    let base = now / 30 * 30 - 120;
    let client = reqwest::blocking::Client::new();
    let send = |body: String| common::post_spans(&client, &weir.http, body);
    send(common::otlp_spans(base, "cart", &[1, 5, 9]));
    send(common::otlp_spans(base, "shop", &[35]));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let alerts: Value = client
            .get(format!("http://{}/api/v1/alerts", weir.api))
            .send()
            .and_then(|r| r.bytes())
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        if alerts["data"]["alerts"][0]["state"] == "firing" {
            break;
        }
        assert!(Instant::now() < deadline, "the alert never fired: {alerts}");
        std::thread::sleep(Duration::from_millis(200));
    }
    send(common::otlp_spans(base, "shop", &[95]));

    let (ok, read) = consume(
        &broker,
        "alerting-alerts",
        &["alerts", "--until", "resolved", "--deadline", "60"],
    );
    assert!(ok, "{read}");
    let transitions: Vec<&Value> = read["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .filter(|a| a["kind"] == "transition")
        .collect();
    let statuses: Vec<&str> = transitions
        .iter()
        .filter_map(|a| a["status"].as_str())
        .filter(|s| *s != "pending")
        .collect();
    assert_eq!(statuses, ["firing", "resolved"], "{read}");
    for a in read["alerts"].as_array().expect("alerts") {
        assert_eq!(a["rule"], "CartIsBusy", "{a}");
        assert_eq!(a["labels"]["service_name"], "cart", "{a}");
        assert_eq!(a["labels"]["severity"], "page", "{a}");
        assert_eq!(a["key"], transitions[0]["key"], "one fingerprint: {read}");
    }
    assert!(
        !transitions[0]["key"]
            .as_str()
            .unwrap_or_default()
            .is_empty(),
        "{read}"
    );

    let (ok, read) = consume(
        &broker,
        "am-alerts",
        &["alerts", "--until", "resolved", "--deadline", "60"],
    );
    assert!(ok, "{read}");
    let groups = read["alerts"].as_array().expect("alerts");
    let statuses: Vec<&str> = groups.iter().filter_map(|g| g["status"].as_str()).collect();
    let firing = statuses.iter().position(|s| *s == "firing");
    let resolved = statuses.iter().rposition(|s| *s == "resolved");
    assert!(
        matches!((firing, resolved), (Some(f), Some(r)) if f < r),
        "{read}"
    );
    for g in groups {
        assert_eq!(g["version"], "4", "{g}");
        assert_eq!(g["receiver"], "webhooks", "{g}");
        assert!(!g["key"].as_str().unwrap_or_default().is_empty(), "{g}");
    }
    stop(weir);
}

/// Rotel with OTLP/HTTP on a free port, exporting to `broker`'s topics
/// `otlp_spans` (the Collector's default; Rotel's own is `otlp_traces`),
/// `otlp_metrics` and `otlp_logs`, protobuf.
fn rotel_to_kafka(broker: &Broker, dir: &std::path::Path) -> Rotel {
    let brokers = broker.address();
    Rotel::start(
        &super::python(),
        &dir.join("rotel.log"),
        &[
            "--exporter",
            "kafka",
            "--kafka-exporter-brokers",
            &brokers,
            "--kafka-exporter-traces-topic",
            "otlp_spans",
        ],
    )
}

/// How many rows of `table` carry `test.tag = tag`.
fn tagged(api: &str, table: &str, tag: &str) -> u64 {
    let rows = super::sql(
        api,
        &format!("SELECT count(*) FROM {table} WHERE attributes['test.tag'] = '{tag}'"),
    );
    rows.first()
        .and_then(|r| r.trim().parse().ok())
        .unwrap_or(0)
}

/// Scenario: the OpenTelemetry Python SDK sends 250 spans, logs and metric
/// points to a Rotel collector whose Kafka exporter writes the Collector's
/// default topics; a Kafka source with its default topics reads them.
/// Guarantees: every span, log record and data point arrives in the store,
/// once.
#[test]
fn python_sdk_through_rotel_lands_in_the_store() {
    let broker = Broker::start();
    for topic in ["otlp_spans", "otlp_metrics", "otlp_logs"] {
        broker.create_topic(topic, 2);
    }
    let dir = tempfile::tempdir().expect("tmp");
    let rotel = rotel_to_kafka(&broker, dir.path());
    let weir = start(
        dir.path(),
        &format!(
            r#"
[sources.fleet]
type = "kafka"
brokers = "{}"
group_id = "rotel"
initial_offset = "earliest"

[sinks.store]
type = "store"
inputs = ["fleet"]
"#,
            broker.address()
        ),
    );
    let out = std::process::Command::new(super::python())
        .arg(common::repo("tests/python/send.py"))
        .args([
            "http",
            &format!("http://{}", rotel.http),
            "250",
            "via-rotel",
        ])
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "the SDK's exports to Rotel failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let counts = loop {
        let counts: Vec<u64> = ["spans", "logs", "metrics"]
            .iter()
            .map(|table| tagged(&weir.api, table, "via-rotel"))
            .collect();
        if counts.iter().all(|n| *n >= 250) || Instant::now() > deadline {
            break counts;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        counts,
        [250, 250, 250],
        "spans, logs, points; rotel's log:\n{}",
        std::fs::read_to_string(dir.path().join("rotel.log")).unwrap_or_default()
    );
    stop(weir);
}

/// Scenario: 30 OTLP messages (10 spans each) with a `tenant` header go to
/// a topic of 2 partitions read with `metadata = true` and
/// `headers = ["tenant"]`, and 25 plain text lines with the same header to
/// a topic read as `text` logs.
/// Guarantees: each span carries `kafka.topic`, `kafka.partition`,
/// `kafka.offset` (one distinct offset per message) and
/// `kafka.header.tenant` on its resource; each line is a log record whose
/// body is the line, with `kafka.key` and the header as attributes;
/// `/metrics` shows the consumer lag per partition (0 once read), commits
/// and the assignment.
#[test]
fn kafka_metadata_headers_lines_and_consumer_metrics() {
    let broker = Broker::start();
    broker.create_topic("meta", 2);
    broker.create_topic("lines", 1);
    produce(
        &broker,
        "meta",
        &["spans", "30", "10", "meta", "--header", "tenant=acme"],
    );
    produce(
        &broker,
        "lines",
        &["lines", "25", "0", "app", "--header", "tenant=acme"],
    );
    let dir = tempfile::tempdir().expect("tmp");
    let weir = start(
        dir.path(),
        &format!(
            r#"
[sources.fleet]
type = "kafka"
brokers = "{}"
group_id = "meta"
initial_offset = "earliest"
metadata = true
headers = ["tenant"]
topics = [
  {{ topic = "meta", signal = "spans" }},
  {{ topic = "lines", signal = "logs", encoding = "text" }},
]
[sources.fleet.librdkafka]
"statistics.interval.ms" = "500"

[sinks.store]
type = "store"
inputs = ["fleet"]
"#,
            broker.address()
        ),
    );
    super::wait_for_distinct_spans(&weir, "meta", 300, Duration::from_secs(60));
    let rows = super::sql(
        &weir.api,
        "SELECT count(*), count(DISTINCT resource_attributes['kafka.partition'] || '/' || \
         resource_attributes['kafka.offset']), min(resource_attributes['kafka.topic']), \
         min(resource_attributes['kafka.header.tenant']) FROM spans",
    );
    assert_eq!(rows, ["300,30,meta,acme"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let lines = loop {
        let lines = super::sql(
            &weir.api,
            "SELECT body, attributes['kafka.key'], attributes['kafka.header.tenant'], \
             attributes['kafka.topic'] FROM logs ORDER BY CAST(attributes['kafka.key'] AS INT)",
        );
        if lines.len() >= 25 || Instant::now() > deadline {
            break lines;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let expected: Vec<String> = (0..25)
        .map(|n| format!("app line {n},{n},acme,lines"))
        .collect();
    assert_eq!(lines, expected);
    let metric = |name: &str, labels: &[(&str, &str)]| {
        let mut all = vec![("component", "fleet")];
        all.extend_from_slice(labels);
        super::metric_sum(&weir.api, name, &all)
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let lag: Vec<Option<f64>> = ["0", "1"]
            .iter()
            .map(|p| {
                metric(
                    "weir_kafka_consumer_lag",
                    &[("topic", "meta"), ("partition", p)],
                )
            })
            .collect();
        let commits = metric("weir_kafka_commits_total", &[("outcome", "ok")]);
        if lag.iter().all(|l| *l == Some(0.0)) && commits.is_some_and(|c| c >= 1.0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "lag {lag:?}, commits {commits:?} after 30 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(metric("weir_kafka_rebalances_total", &[("kind", "assign")]).is_some_and(|n| n >= 1.0));
    assert_eq!(
        metric("weir_kafka_messages_total", &[("topic", "meta")]),
        Some(30.0)
    );
    stop(weir);
}
