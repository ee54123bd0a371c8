//! At least once, with real failures: Weir killed with SIGKILL while it
//! consumes, the broker stopped under the source, the broker stopped under
//! the sink.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use weir_testkit::kafka::Broker;

use super::interop::traced_spans;
use super::{
    consume, count_distinct_spans, count_spans, expected_span, produce, source_to_store, start,
    stop, stored_spans, wait_for_distinct_spans,
};
use crate::common::{self, start_in};

/// Checks that the store holds every span of messages `0..messages` (of
/// `per` spans) tagged `tag`, with its content; returns how many are stored
/// more than once.
fn all_stored_once_or_more(api: &str, tag: &str, prefix: &str, messages: u64, per: u64) -> u64 {
    let stored = stored_spans(api, tag);
    let seqs: BTreeSet<u64> = stored.iter().map(|s| s.seq).collect();
    let missing: Vec<u64> = (0..messages * per).filter(|s| !seqs.contains(s)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} spans tagged {tag} are missing, e.g. {:?}",
        missing.len(),
        messages * per,
        &missing[..missing.len().min(10)]
    );
    for span in &stored {
        let (span_id, trace_id, name) = expected_span(prefix, span.seq / per, span.seq);
        assert_eq!(
            (&span.span_id, &span.trace_id, &span.name),
            (&span_id, &trace_id, &name),
            "span {}",
            span.seq
        );
    }
    stored.len() as u64 - seqs.len() as u64
}

/// Scenario: 100 messages of 50 spans wait in a topic of 3 partitions and
/// 300 more are produced, one every 100 ms, while Weir consumes; 5 times,
/// 0.2 to 2.3 s after new spans reached the store, Weir is killed with
/// SIGKILL and started again in the same consumer group (a 6 s session
/// timeout, so that the dead member's partitions come back soon).
/// `max_batch_records = 100`: each 50-span message is half a batch, so it
/// is converted alone on the thread that decoded it.
/// Guarantees: every produced span is in the store at least once, with its
/// content (offsets are committed only after the store acknowledged); the
/// number of spans stored more than once is reported.
#[test]
fn kill_9_while_consuming_loses_nothing() {
    let broker = Broker::start();
    broker.create_topic("load", 3);
    let summary = produce(&broker, "load", &["spans", "100", "50", "kill9"]);
    let prefix = summary["id_prefix"]
        .as_str()
        .expect("id_prefix")
        .to_string();
    let address = broker.address();
    let producer = std::thread::spawn(move || {
        let args = [
            "spans", "300", "50", "kill9", "--first", "100", "--pace", "100",
        ];
        let mut all = vec![address.as_str(), "load"];
        all.extend(args);
        super::script("kafka_produce.py", &all)
    });

    let dir = tempfile::tempdir().expect("tmp");
    let extra = "max_batch_records = 100\n[sources.fleet.librdkafka]\n\
                 \"session.timeout.ms\" = \"6000\"\n\"heartbeat.interval.ms\" = \"1000\"";
    let mut weir = start(
        dir.path(),
        &source_to_store(&broker, "load", "kill9", extra),
    );
    let mut mid_stream = 0;
    for cycle in 0..5u64 {
        // Killed while it consumes: after new spans arrived, a moment on.
        let had = count_spans(&weir.api, "kill9");
        let deadline = Instant::now() + Duration::from_secs(60);
        while count_spans(&weir.api, "kill9") == had {
            assert!(
                Instant::now() < deadline,
                "no progress after restart {cycle}: {}",
                super::log_tail(&weir)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        // From before the first offset commit (every 1 s) to after a few.
        std::thread::sleep(Duration::from_millis(200 + 700 * (cycle % 4)));
        if !producer.is_finished() {
            mid_stream += 1;
        }
        weir.child.kill().expect("SIGKILL");
        weir.child.wait().expect("reaped");
        weir = start_in(dir.path(), &dir.path().join("pipeline.toml"));
    }
    let (ok, produced) = producer.join().expect("producer");
    assert!(ok, "{produced}");
    wait_for_distinct_spans(&weir, "kill9", 400 * 50, Duration::from_secs(180));
    let twice = all_stored_once_or_more(&weir.api, "kill9", &prefix, 400, 50);
    eprintln!(
        "kill -9 x5 ({mid_stream} while the producer still produced): 20000 spans produced, \
         {} stored, {twice} stored more than once",
        count_spans(&weir.api, "kill9")
    );
    stop(weir);
}

/// Scenario: 50 messages of 100 spans wait in a topic and 100 more are
/// produced, one every 100 ms; as soon as the first spans are in the store
/// the broker is stopped (SIGKILL) for 30 s, while the producer still
/// produces (librdkafka holds its messages), then started again on its data
/// and port.
/// Guarantees: Weir keeps running and serving its API while the broker is
/// down, and afterwards every span produced is in the store.
#[test]
fn broker_down_for_30s_mid_stream_loses_nothing() {
    let mut broker = Broker::start();
    broker.create_topic("outage", 2);
    let summary = produce(&broker, "outage", &["spans", "50", "100", "outage"]);
    let prefix = summary["id_prefix"]
        .as_str()
        .expect("id_prefix")
        .to_string();
    let address = broker.address();
    let producer = std::thread::spawn(move || {
        let args = [
            "spans", "100", "100", "outage", "--first", "50", "--pace", "100",
        ];
        let mut all = vec![address.as_str(), "outage"];
        all.extend(args);
        super::script("kafka_produce.py", &all)
    });
    let dir = tempfile::tempdir().expect("tmp");
    let mut weir = start(
        dir.path(),
        &source_to_store(&broker, "outage", "outage", ""),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while count_spans(&weir.api, "outage") == 0 {
        assert!(Instant::now() < deadline, "nothing arrived");
        std::thread::sleep(Duration::from_millis(20));
    }
    broker.stop();
    assert!(!producer.is_finished(), "the broker stopped mid-stream");
    let before = count_distinct_spans(&weir.api, "outage");
    std::thread::sleep(Duration::from_secs(30));
    assert!(
        matches!(weir.child.try_wait(), Ok(None)),
        "weir exited while the broker was down"
    );
    let during = count_spans(&weir.api, "outage");
    broker.restart();
    let (ok, produced) = producer.join().expect("producer");
    assert!(ok, "{produced}");
    wait_for_distinct_spans(&weir, "outage", 150 * 100, Duration::from_secs(120));
    let twice = all_stored_once_or_more(&weir.api, "outage", &prefix, 150, 100);
    eprintln!(
        "broker down 30 s: {before} of 15000 spans stored when it stopped, {during} while down; \
         {twice} stored more than once"
    );
    stop(weir);
}

/// Scenario: Weir takes OTLP/HTTP spans into a Kafka sink (3 s delivery
/// timeout); the broker is stopped, a request is posted, the broker is
/// started again and the client retries the request until it is taken.
/// Guarantees: while the broker is down the client gets a retryable 503
/// with Retry-After (the sink failed the batch, it did not drop it); once
/// the broker is back the retried request is taken, and every span of the
/// requests answered 200 is on the topic.
#[test]
fn sink_with_its_broker_down_answers_503_then_delivers() {
    let mut broker = Broker::start();
    for signal in ["spans", "metrics", "logs", "alerts"] {
        broker.create_topic(&format!("down-{signal}"), 1);
    }
    let dir = tempfile::tempdir().expect("tmp");
    let weir = start(
        dir.path(),
        &format!(
            r#"
[sinks.out]
type = "kafka"
inputs = ["otlp"]
brokers = "{}"
timeout = "3s"
topics = {{ spans = "down-spans", metrics = "down-metrics", logs = "down-logs", alerts = "down-alerts" }}
"#,
            broker.address()
        ),
    );
    let client = reqwest::blocking::Client::new();
    common::post_spans(&client, &weir.http, traced_spans(5000, 1));
    broker.stop();
    let body = traced_spans(6000, 2);
    let post = || {
        client
            .post(format!("http://{}/v1/traces", weir.http))
            .header("content-type", "application/json")
            .body(body.clone())
            .timeout(Duration::from_secs(90))
            .send()
            .expect("weir answers")
    };
    let refused = post();
    assert_eq!(refused.status().as_u16(), 503, "{:?}", refused.text());
    assert!(refused.headers().contains_key("retry-after"));

    broker.restart();
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut tries = 1;
    loop {
        let answer = post();
        tries += 1;
        if answer.status().as_u16() == 200 {
            break;
        }
        assert_eq!(answer.status().as_u16(), 503);
        assert!(
            Instant::now() < deadline,
            "the sink never delivered after the broker came back"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let (ok, read) = consume(&broker, "down-spans", &["spans", "--count", "12"]);
    assert!(ok, "{read}");
    let ids = super::span_ids(&read);
    let expected: BTreeSet<String> = (5000..5004u64)
        .chain(6000..6008)
        .map(|id| format!("{id:016x}"))
        .collect();
    assert_eq!(ids, expected, "{read}");
    eprintln!(
        "sink with its broker down: {tries} posts of the second request, {} spans on the topic \
         for 12 taken",
        read["spans"]
    );
    stop(weir);
}

/// Scenario: a Kafka source reads 40 messages of 512 spans from one broker
/// into a Kafka sink whose broker (another one) is down, with
/// `max_in_flight = "1MiB"` and a 2 s delivery timeout; after a while the
/// sink's broker is started again.
/// Guarantees: the sink fails the batches and the source sends them again
/// (`weir_kafka_redeliveries_total` rises) instead of skipping them; the
/// source pauses its partitions (`weir_kafka_pauses_total`) and holds at
/// most a few MiB meanwhile; once the broker is back every span reaches
/// the sink's topic.
#[test]
fn a_failing_sink_makes_the_source_redeliver_and_pause() {
    let upstream = Broker::start();
    upstream.create_topic("in", 2);
    let mut downstream = Broker::start();
    downstream.create_topic("out", 1);
    produce(&upstream, "in", &["spans", "40", "512", "redeliver"]);
    downstream.stop();

    let dir = tempfile::tempdir().expect("tmp");
    let weir = start(
        dir.path(),
        &format!(
            r#"
[sources.fleet]
type = "kafka"
brokers = "{up}"
group_id = "redeliver"
initial_offset = "earliest"
max_in_flight = "1MiB"
topics = [{{ topic = "in", signal = "spans" }}]

[sinks.out]
type = "kafka"
inputs = ["fleet"]
brokers = "{down}"
timeout = "2s"
topics = {{ spans = "out" }}
"#,
            up = upstream.address(),
            down = downstream.address()
        ),
    );
    let metric = |name: &str| super::metric_sum(&weir.api, name, &[("component", "fleet")]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut peak: f64 = 0.0;
    loop {
        peak = peak.max(metric("weir_kafka_in_flight_bytes").unwrap_or(0.0));
        let redelivered = metric("weir_kafka_redeliveries_total").unwrap_or(0.0);
        let paused = metric("weir_kafka_pauses_total").unwrap_or(0.0);
        if redelivered >= 2.0 && paused >= 1.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no redelivery ({redelivered}) or pause ({paused}) within 60 s:\n{}",
            super::log_tail(&weir)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        peak <= (3 << 20) as f64,
        "the source held {peak} bytes with max_in_flight = 1MiB"
    );

    downstream.restart();
    let (ok, read) = consume(
        &downstream,
        "out",
        &["spans", "--count", "20480", "--deadline", "90"],
    );
    assert!(ok, "{read}");
    assert_eq!(
        super::span_ids(&read).len(),
        20480,
        "distinct spans on the sink's topic"
    );
    eprintln!(
        "failing sink: peak in flight {peak} bytes, {} spans written for 20480 distinct",
        read["spans"]
    );
    stop(weir);
}

/// Scenario: two Weir instances in one consumer group share a topic of 4
/// partitions: the first consumes alone, the second joins mid-stream (the
/// group rebalances and partitions move to it), then the first stops and
/// the second takes everything over. Each keeps its own store.
/// Guarantees: every produced span is in one store or the other (the
/// first commits what it finished before it gives partitions up, and the
/// second reads on from there); both instances read some; the spans
/// stored twice are reported.
#[test]
fn two_instances_in_one_group_share_and_hand_over_partitions() {
    let broker = Broker::start();
    broker.create_topic("shared", 4);
    let address = broker.address();
    let producer = std::thread::spawn(move || {
        let args = ["spans", "200", "20", "share", "--pace", "50"];
        let mut all = vec![address.as_str(), "shared"];
        all.extend(args);
        super::script("kafka_produce.py", &all)
    });
    let extra = "[sources.fleet.librdkafka]\n\"session.timeout.ms\" = \"6000\"\n\
                 \"heartbeat.interval.ms\" = \"500\"";
    let pipeline = source_to_store(&broker, "shared", "sharing", extra);
    let (dir_a, dir_b) = (
        tempfile::tempdir().expect("tmp"),
        tempfile::tempdir().expect("tmp"),
    );
    let a = start(dir_a.path(), &pipeline);
    wait_for_distinct_spans(&a, "share", 200, Duration::from_secs(60));
    let b = start(dir_b.path(), &pipeline);
    wait_for_distinct_spans(&b, "share", 200, Duration::from_secs(60));
    let from_a = count_distinct_spans(&a.api, "share");
    stop(a);
    let (ok, produced) = producer.join().expect("producer");
    assert!(ok, "{produced}");
    let deadline = Instant::now() + Duration::from_secs(120);
    let spans = |api: &str| -> Vec<u64> {
        super::stored_spans(api, "share")
            .iter()
            .map(|s| s.seq)
            .collect()
    };
    let a_spans = {
        // `a` stopped: read its store with a Weir of its own on its data.
        let reader = start(
            dir_a.path(),
            "[sinks.store]\ntype = \"store\"\ninputs = [\"otlp\"]",
        );
        let s = spans(&reader.api);
        stop(reader);
        s
    };
    loop {
        let b_spans = spans(&b.api);
        let all: BTreeSet<u64> = a_spans.iter().chain(&b_spans).copied().collect();
        if all.len() == 4000 {
            let twice = a_spans.len() + b_spans.len() - all.len();
            assert!(!b_spans.is_empty() && from_a > 0);
            eprintln!(
                "two instances: first stored {}, second {}, {twice} stored twice, 4000 produced",
                a_spans.len(),
                b_spans.len()
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of 4000 spans stored by the two instances:\n{}",
            all.len(),
            super::log_tail(&b)
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    stop(b);
}
