//! The Kafka source and sink end to end, through `weir run`, against a real
//! Kafka-compatible broker (tansu, [`weir_testkit::kafka`]) and real Kafka
//! clients (confluent-kafka, librdkafka's Python binding, with the official
//! OpenTelemetry protobuf classes: `tests/python/kafka_*.py`).
//!
//! * [`interop`]: OTLP produced by confluent-kafka, and by a Rotel
//!   collector fed by the OpenTelemetry Python SDK, lands in the store;
//!   what the sink writes decodes with the official classes; alerts reach a
//!   topic, firing then resolved.
//! * [`delivery`]: at least once through `kill -9` of Weir and a stopped
//!   broker, on both the source and the sink side.
//! * [`bad_input`]: undecodable messages, a missing topic, a wrong
//!   encoding, an unreachable broker.
//!
//! Every test uses topics it creates first and a consumer group of its own.
//! `scripts/test` installs tansu and the Python packages and sets
//! `WEIR_TEST_TANSU` and `WEIR_TEST_PYTHON`; without them the tests fail.

mod bad_input;
mod delivery;
mod interop;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use weir_testkit::kafka::Broker;

use crate::common::{self, Weir};
pub(crate) use crate::common::{log_tail, stop};

/// The test venv's Python (confluent-kafka, opentelemetry-proto).
fn python() -> String {
    std::env::var("WEIR_TEST_PYTHON").unwrap_or_else(|_| {
        panic!(
            "WEIR_TEST_PYTHON is not set: run the suite with `scripts/test`, which installs \
             confluent-kafka and the OpenTelemetry protobuf classes into a venv and sets it"
        )
    })
}

/// Runs `tests/python/SCRIPT ARGS`; its exit status and its JSON summary.
fn script(name: &str, args: &[&str]) -> (bool, Value) {
    let out = Command::new(python())
        .arg(common::repo(&format!("tests/python/{name}")))
        .args(args)
        .output()
        .expect("python runs");
    let summary = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{name} {args:?} printed no summary ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    if !out.status.success() {
        eprintln!("{name} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    (out.status.success(), summary)
}

/// Produces with `kafka_produce.py BROKER TOPIC ARGS` and checks that the
/// broker acknowledged every message; its summary.
fn produce(broker: &Broker, topic: &str, args: &[&str]) -> Value {
    let mut all = vec![broker.address(), topic.to_string()];
    all.extend(args.iter().map(|a| a.to_string()));
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    let (ok, summary) = script("kafka_produce.py", &all);
    assert!(ok, "producing to {topic} failed: {summary}");
    summary
}

/// Consumes with `kafka_consume.py BROKER TOPIC ARGS`; whether it met its
/// target, and its summary.
fn consume(broker: &Broker, topic: &str, args: &[&str]) -> (bool, Value) {
    let mut all = vec![broker.address(), topic.to_string()];
    all.extend(args.iter().map(|a| a.to_string()));
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    script("kafka_consume.py", &all)
}

/// The ids and name `kafka_produce.py` gives span `seq` of message
/// `number`, for a tag whose `id_prefix` it printed.
fn expected_span(prefix: &str, number: u64, seq: u64) -> (String, String, String) {
    (
        format!("{prefix}{:08x}", seq + 1),
        format!("{prefix}00000000{number:016x}"),
        format!("op-{}", seq % 7),
    )
}

/// Writes the pipeline `body` (sources, processors, sinks) into `dir`,
/// with the API on port 0, a store in `dir/data` and an OTLP/HTTP source
/// `otlp` on port 0, and starts `weir run` on it.
fn start(dir: &Path, body: &str) -> Weir {
    let config = write_pipeline(dir, body);
    common::start_in(dir, &config)
}

/// [`start`]'s pipeline file.
fn write_pipeline(dir: &Path, body: &str) -> PathBuf {
    let file = dir.join("pipeline.toml");
    let text = format!(
        r#"[api]
address = "127.0.0.1:0"

[store]
path = "data"
fsync = "always"

[sources.otlp]
type = "otlp"
grpc = false
http_address = "127.0.0.1:0"
{body}"#
    );
    std::fs::write(&file, text).expect("write pipeline");
    file
}

/// A Kafka source `fleet` reading `topic` (OTLP protobuf spans) from the
/// start, in consumer group `group`, and a store sink taking it.
fn source_to_store(broker: &Broker, topic: &str, group: &str, extra: &str) -> String {
    format!(
        r#"
[sources.fleet]
type = "kafka"
brokers = "{brokers}"
group_id = "{group}"
initial_offset = "earliest"
topics = [{{ topic = "{topic}", signal = "spans", encoding = "otlp_proto" }}]
{extra}

[sinks.store]
type = "store"
inputs = ["fleet"]
"#,
        brokers = broker.address()
    )
}

/// Runs `sql` on Weir's SQL API; the CSV rows, header skipped.
fn sql(api: &str, sql: &str) -> Vec<String> {
    let response = reqwest::blocking::Client::new()
        .post(format!("http://{api}/api/v1/sql?format=csv"))
        .header("content-type", "text/plain")
        .body(sql.to_string())
        .timeout(Duration::from_secs(60))
        .send()
        .expect("sql");
    let status = response.status();
    let text = response.text().expect("csv");
    assert!(status.is_success(), "{sql}: {status} {text}");
    text.lines().skip(1).map(str::to_string).collect()
}

/// A stored span of a test: ids (hex), name, `seq` attribute.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Stored {
    seq: u64,
    span_id: String,
    trace_id: String,
    name: String,
}

/// The spans in the store tagged `tag`, with repeats, by `seq` (a number;
/// the attribute is text).
fn stored_spans(api: &str, tag: &str) -> Vec<Stored> {
    let rows = sql(
        api,
        &format!(
            "SELECT attributes['seq'] AS seq, span_id, trace_id, name FROM spans \
             WHERE attributes['test.tag'] = '{tag}'"
        ),
    );
    let mut spans: Vec<Stored> = rows
        .iter()
        .map(|row| {
            let cells: Vec<&str> = row.split(',').collect();
            let [seq, span_id, trace_id, name] = cells[..] else {
                panic!("unexpected row `{row}`");
            };
            Stored {
                seq: seq.parse().unwrap_or_else(|_| panic!("bad seq in `{row}`")),
                span_id: span_id.to_string(),
                trace_id: trace_id.to_string(),
                name: name.to_string(),
            }
        })
        .collect();
    spans.sort();
    spans
}

/// How many spans tagged `tag` the store holds, with repeats.
fn count_spans(api: &str, tag: &str) -> u64 {
    let rows = sql(
        api,
        &format!("SELECT count(*) FROM spans WHERE attributes['test.tag'] = '{tag}'"),
    );
    rows.first()
        .and_then(|r| r.trim().parse().ok())
        .unwrap_or(0)
}

/// How many distinct spans tagged `tag` the store holds.
fn count_distinct_spans(api: &str, tag: &str) -> u64 {
    let rows = sql(
        api,
        &format!(
            "SELECT count(DISTINCT span_id) FROM spans WHERE attributes['test.tag'] = '{tag}'"
        ),
    );
    rows.first()
        .and_then(|r| r.trim().parse().ok())
        .unwrap_or(0)
}

/// Waits until the store holds `n` distinct spans tagged `tag`; panics
/// with the count reached after `within`.
fn wait_for_distinct_spans(weir: &Weir, tag: &str, n: u64, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let got = count_distinct_spans(&weir.api, tag);
        if got >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the store holds {got} of the {n} spans tagged {tag} after {within:?}; weir's log:\n{}",
            log_tail(weir)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The sum of the samples of metric `name` on Weir's `/metrics` whose
/// labels include every one of `labels`, if there is any.
fn metric_sum(api: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let text = reqwest::blocking::get(format!("http://{api}/metrics"))
        .and_then(|r| r.text())
        .expect("/metrics answers");
    let wanted: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    let samples: Vec<f64> = text
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?.strip_prefix('{')?;
            let (have, value) = rest.split_once("} ")?;
            let have: Vec<&str> = have.split(',').collect();
            wanted
                .iter()
                .all(|w| have.contains(&w.as_str()))
                .then(|| value.trim().parse().ok())?
        })
        .collect();
    (!samples.is_empty()).then(|| samples.iter().sum())
}

/// Waits until a line Weir logged (JSON) satisfies `wanted`; returns it.
fn wait_for_line(
    weir: &Weir,
    what: &str,
    within: Duration,
    wanted: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let found = weir
            .lines
            .lock()
            .expect("lock")
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|v| wanted(v));
        if let Some(line) = found {
            return line;
        }
        assert!(
            Instant::now() < deadline,
            "weir logged no {what} within {within:?}:\n{}",
            log_tail(weir)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The distinct span ids (hex) a `kafka_consume.py spans` summary lists.
fn span_ids(read: &Value) -> std::collections::BTreeSet<String> {
    read["span_ids"]
        .as_array()
        .expect("span ids")
        .iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

/// Scenario: a broker with a topic and 20 messages is stopped (SIGKILL)
/// and started again on its data.
/// Guarantees: the harness's broker keeps topics, messages and a consumer
/// group's committed offsets across a restart, so the tests that stop it
/// test Weir, not the broker.
#[test]
fn broker_keeps_messages_and_offsets_across_a_restart() {
    let mut broker = Broker::start();
    broker.create_topic("keep", 2);
    produce(&broker, "keep", &["spans", "20", "4", "keep"]);
    let (ok, read) = consume(
        &broker,
        "keep",
        &["spans", "--count", "80", "--group", "g1"],
    );
    assert!(ok, "{read}");
    broker.restart();
    let (ok, again) = consume(&broker, "keep", &["spans", "--count", "80"]);
    assert!(ok, "{again}\n{}", broker.log());
    assert_eq!(again["span_ids"], read["span_ids"]);
    // The group committed all 20: nothing is left for it.
    let (_, left) = consume(
        &broker,
        "keep",
        &["raw", "--count", "1", "--group", "g1", "--deadline", "5"],
    );
    assert_eq!(left["messages"], 0, "{left}");
}
