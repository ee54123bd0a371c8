//! Bad input and bad surroundings: undecodable messages, a topic that does
//! not exist, a wrong encoding in the pipeline, a broker that is not there.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use weir_testkit::kafka::Broker;

use super::{
    consume, count_spans, log_tail, metric_sum, produce, source_to_store, start, stop,
    wait_for_distinct_spans, wait_for_line,
};
use crate::common::WEIR;

/// Whether a JSON log line is a warning or an error whose text mentions
/// `needle`.
fn complains_about(line: &Value, needle: &str) -> bool {
    let level = line["level"].as_str().unwrap_or_default();
    (level == "WARN" || level == "ERROR") && line.to_string().contains(needle)
}

/// Scenario: a partition holds 5 good OTLP messages, 7 undecodable ones,
/// then 5 good ones; the source has a dead-letter topic.
/// Guarantees: the garbage never stalls the partition (the good messages
/// after it arrive, all 1000 spans); `weir_kafka_decode_errors_total`
/// counts the 7, and they are copied to the dead-letter topic.
#[test]
fn undecodable_messages_are_counted_dead_lettered_and_skipped() {
    let broker = Broker::start();
    broker.create_topic("mixed", 1);
    broker.create_topic("dead", 1);
    produce(&broker, "mixed", &["spans", "5", "100", "mixed"]);
    produce(&broker, "mixed", &["garbage", "7"]);
    produce(
        &broker,
        "mixed",
        &["spans", "5", "100", "mixed", "--first", "5"],
    );
    let dir = tempfile::tempdir().expect("tmp");
    let weir = start(
        dir.path(),
        &source_to_store(&broker, "mixed", "mixed", "dead_letter_topic = \"dead\""),
    );
    wait_for_distinct_spans(&weir, "mixed", 1000, Duration::from_secs(60));
    assert_eq!(count_spans(&weir.api, "mixed"), 1000);
    let labels = [("component", "fleet"), ("topic", "mixed")];
    let errors = metric_sum(&weir.api, "weir_kafka_decode_errors_total", &labels);
    assert_eq!(errors, Some(7.0), "decode errors");
    let (ok, dead) = consume(&broker, "dead", &["raw", "--count", "7"]);
    assert!(ok, "the dead-letter topic: {dead}");
    assert_eq!(dead["messages"], 7, "{dead}");
    let letters = metric_sum(
        &weir.api,
        "weir_kafka_dead_letters_total",
        &[("component", "fleet")],
    );
    assert_eq!(letters, Some(7.0), "dead letters");
    stop(weir);
}

/// Scenario: a partition holds 3 good OTLP messages of 100 spans, one whose
/// 100 spans are stamped after the year 2262, then one good message.
/// Guarantees: the spans of 2262 are refused one by one and counted in
/// `weir_kafka_rejected_records_total` (not a decode error), and they
/// stall nothing: the 400 good spans are all stored.
#[test]
fn spans_stamped_after_2262_are_refused_one_by_one() {
    let broker = Broker::start();
    broker.create_topic("future", 1);
    produce(&broker, "future", &["spans", "3", "100", "future"]);
    produce(
        &broker,
        "future",
        &["spans", "1", "100", "future", "--first", "3", "--future"],
    );
    produce(
        &broker,
        "future",
        &["spans", "1", "100", "future", "--first", "4"],
    );
    let dir = tempfile::tempdir().expect("tmp");
    let weir = start(
        dir.path(),
        &source_to_store(&broker, "future", "future", ""),
    );
    wait_for_distinct_spans(&weir, "future", 400, Duration::from_secs(60));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let rejected = loop {
        let rejected = metric_sum(
            &weir.api,
            "weir_kafka_rejected_records_total",
            &[("component", "fleet"), ("signal", "spans")],
        );
        if rejected.is_some() || std::time::Instant::now() > deadline {
            break rejected;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(rejected, Some(100.0), "rejected spans");
    assert_eq!(count_spans(&weir.api, "future"), 400);
    let errors = metric_sum(
        &weir.api,
        "weir_kafka_decode_errors_total",
        &[("component", "fleet")],
    );
    assert_eq!(errors, None, "no decode error");
    stop(weir);
}

/// Scenario: a source reads a topic that does not exist on the broker.
/// Guarantees: Weir logs a warning or an error naming the topic, keeps
/// running and serves its API (no crash), and stops cleanly.
#[test]
fn a_missing_topic_is_logged_without_a_crash() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().expect("tmp");
    let weir = start(
        dir.path(),
        &source_to_store(&broker, "no-such-topic", "missing", ""),
    );
    wait_for_line(
        &weir,
        "complaint about the missing topic",
        Duration::from_secs(60),
        |l| complains_about(l, "no-such-topic"),
    );
    assert_eq!(count_spans(&weir.api, "missing"), 0);
    let mut weir = weir;
    assert!(
        matches!(weir.child.try_wait(), Ok(None)),
        "weir exited: {}",
        log_tail(&weir)
    );
    stop(weir);
}

/// `weir validate` on `text`, written as `bad.toml`: its exit code and
/// stderr.
fn validate(text: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, text).expect("write");
    let out = Command::new(WEIR)
        .arg("validate")
        .arg(&file)
        .output()
        .expect("weir runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Guarantees: a wrong `encoding` in a Kafka source's topic, a wrong sink
/// `encoding`, and the `text` encoding for spans (logs only) are `weir
/// validate` errors (exit 3) at the file and line, naming the bad value.
#[test]
fn a_wrong_encoding_is_a_validate_error_at_file_and_line() {
    let source = |encoding: &str, signal: &str| {
        format!(
            "[sources.fleet]\ntype = \"kafka\"\nbrokers = \"127.0.0.1:9\"\n\
             topics = [{{ topic = \"t\", signal = \"{signal}\", encoding = \"{encoding}\" }}]\n\n\
             [sinks.out]\ntype = \"blackhole\"\ninputs = [\"fleet\"]\n"
        )
    };
    let (code, err) = validate(&source("protobuf", "spans"));
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("bad.toml:4"), "{err}");
    assert!(
        err.contains("protobuf") && err.contains("otlp_proto"),
        "{err}"
    );

    let (code, err) = validate(&source("text", "spans"));
    assert_eq!(code, Some(3), "text is for logs only: {err}");
    assert!(err.contains("bad.toml:4") && err.contains("text"), "{err}");
    let (code, err) = validate(&source("text", "logs"));
    assert_eq!(code, Some(0), "text suits logs: {err}");

    let sink = "[sources.otlp]\ntype = \"otlp\"\n\n[sinks.out]\ntype = \"kafka\"\n\
                inputs = [\"otlp\"]\nbrokers = \"127.0.0.1:9\"\nencoding = \"avro\"\n";
    let (code, err) = validate(sink);
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("bad.toml:8"), "{err}");
    assert!(err.contains("avro") && err.contains("otlp_json"), "{err}");
}

/// Scenario: 10 messages wait in a topic; the broker is stopped, Weir
/// starts with a source on it, and the broker is started again 10 s later.
/// Guarantees: Weir starts and serves its API with its broker unreachable,
/// logs a warning or an error naming the broker, does not exit, and once
/// the broker is back it reads all 1000 spans (it kept retrying).
#[test]
fn an_unreachable_broker_at_start_is_retried() {
    let mut broker = Broker::start();
    broker.create_topic("late", 2);
    produce(&broker, "late", &["spans", "10", "100", "late"]);
    broker.stop();
    let dir = tempfile::tempdir().expect("tmp");
    let mut weir = start(dir.path(), &source_to_store(&broker, "late", "late", ""));
    let address = broker.address();
    let port = address.rsplit(':').next().unwrap_or_default().to_string();
    wait_for_line(
        &weir,
        "complaint about the broker",
        Duration::from_secs(30),
        |l| complains_about(l, &port),
    );
    let ready = Instant::now() + Duration::from_secs(10);
    while Instant::now() < ready {
        assert_eq!(count_spans(&weir.api, "late"), 0);
        assert!(
            matches!(weir.child.try_wait(), Ok(None)),
            "weir exited: {}",
            log_tail(&weir)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    broker.restart();
    wait_for_distinct_spans(&weir, "late", 1000, Duration::from_secs(120));
    stop(weir);
}
