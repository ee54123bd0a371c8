//! Component compliance: every registered source, processor and sink type
//! reports the standard `weir_component_*` metrics, whoever wrote it.
//!
//! The runtime counts for the components (their `Output` and `Input`), so a
//! new type gets the metrics by running in the topology like the others;
//! this test proves it for each type of the table of built-ins, and fails
//! when a type is added without a fixture here.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use weir_config::ComponentKind;
use weir_testkit::guest::guest;
use weir_testkit::kafka::Broker;
use weir_testkit::otlp::{self, Group};
use weir_testkit::time::{MILLI, SECOND, now_secs};

use crate::common::{otlp_spans, post_spans, start_in};

/// How each built-in type appears in the compliance pipeline: its table
/// (after `[KIND.NAME]` and `type`), named `KIND_TYPE` (`source_kafka`,
/// `sink_kafka`). `{dir}` is the test's directory, `{wasm}` the example
/// redaction plugin, `{kafka}` the address of a broker started for the test
/// (the kafka sink writes spans to a topic the kafka source reads).
fn fixtures() -> BTreeMap<(ComponentKind, &'static str), &'static str> {
    use ComponentKind::{Processor, Sink, Source};
    BTreeMap::from([
        (
            (Source, "otlp"),
            "grpc_address = \"127.0.0.1:0\"\nhttp_address = \"127.0.0.1:0\"",
        ),
        (
            (Source, "kafka"),
            "brokers = \"{kafka}\"\ngroup_id = \"compliance\"\ninitial_offset = \"earliest\"\n\
             batch_timeout = \"0s\"\ntopics = [{ topic = \"compliance_spans\", signal = \"spans\" }]",
        ),
        (
            (Processor, "wasm"),
            "inputs = [\"source_otlp.logs\"]\npath = \"{wasm}\"\ntimeout = \"30s\"",
        ),
        (
            (Processor, "rules"),
            "inputs = [\"source_otlp.spans\"]\nevery = \"1s\"\nidle_timeout = \"1s\"\n\
             [[processors.processor_rules.rules]]\nalert = \"Busy\"\nwindow = \"1m\"\n\
             sql = \"SELECT service_name, CAST(count(*) AS DOUBLE) AS value FROM spans GROUP BY service_name\"",
        ),
        (
            (Sink, "blackhole"),
            "inputs = [\"processor_wasm\", \"source_kafka\"]",
        ),
        (
            (Sink, "file"),
            "inputs = [\"source_otlp\"]\npath = \"{dir}/out.jsonl\"",
        ),
        (
            (Sink, "store"),
            "inputs = [\"source_otlp\", \"processor_rules.metrics\"]",
        ),
        (
            (Sink, "alertmanager"),
            // Nothing listens there: the sink queues and retries, and still
            // counts what it received.
            "inputs = [\"processor_rules.alerts\"]\nurls = [\"http://127.0.0.1:9\"]",
        ),
        (
            (Sink, "webhook"),
            "inputs = [\"processor_rules.alerts\"]\nurl = \"http://127.0.0.1:9/hook\"",
        ),
        (
            (Sink, "kafka"),
            "inputs = [\"source_otlp.spans\"]\nbrokers = \"{kafka}\"\n\
             topics = { spans = \"compliance_spans\" }",
        ),
        // The external sinks: nothing listens there either; they retry,
        // and still count what they received. Their disk queues take the
        // batches at once (without a queue a batch is acknowledged only
        // once the backend took it, and the OTLP client would wait).
        (
            (Sink, "otlp"),
            "inputs = [\"source_otlp\"]\nendpoint = \"http://127.0.0.1:9\"\n\
             queue = { max_size = \"16MiB\", dir = \"{dir}/queue-otlp\" }",
        ),
        (
            (Sink, "prometheus_remote_write"),
            "inputs = [\"processor_rules.metrics\"]\nurl = \"http://127.0.0.1:9/api/v1/write\"\n\
             queue = { max_size = \"16MiB\", dir = \"{dir}/queue-prw\" }",
        ),
        (
            (Sink, "loki"),
            "inputs = [\"source_otlp.logs\"]\nurl = \"http://127.0.0.1:9\"\n\
             queue = { max_size = \"16MiB\", dir = \"{dir}/queue-loki\" }",
        ),
    ])
}

/// The sum of the samples of metric `name` whose labels hold
/// `component="component"`, if there is any.
fn component_value(text: &str, name: &str, component: &str) -> Option<f64> {
    let label = format!("component=\"{component}\"");
    let samples: Vec<f64> = text
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?.strip_prefix('{')?;
            let (labels, value) = rest.split_once("} ")?;
            labels
                .split(',')
                .any(|l| l == label)
                .then(|| value.trim().parse().ok())?
        })
        .collect();
    (!samples.is_empty()).then(|| samples.iter().sum())
}

/// What a component of `kind` must report, once data has flowed: the
/// metric and whether its value must be above zero (else only present).
fn standard(kind: ComponentKind) -> Vec<(&'static str, bool)> {
    let mut out = vec![("weir_component_up", true)];
    if kind != ComponentKind::Sink {
        out.extend([
            ("weir_component_sent_records_total", true),
            ("weir_component_sent_bytes_total", true),
        ]);
    }
    if kind != ComponentKind::Source {
        out.extend([
            ("weir_component_received_records_total", true),
            ("weir_component_received_bytes_total", true),
            ("weir_component_input_queue_batches", false),
        ]);
    }
    out
}

/// Scenario: one `weir run` pipeline holding a component of every
/// registered type (sources, processors, sinks), fed OTLP logs and spans
/// until the rules fire an alert.
/// Guarantees: every registered type has a fixture here (a new type cannot
/// skip this test), and each component reports `weir_component_up` = 1,
/// records and bytes sent (sources, processors) and received (processors,
/// sinks) above zero, and its input queue gauge, on its own `/metrics`.
#[test]
fn every_component_type_reports_the_standard_metrics() {
    let registry = weir_cli::builtins();
    let fixtures = fixtures();
    let registered: Vec<(ComponentKind, &str)> = registry
        .types()
        .iter()
        .map(|t| (t.kind(), t.name()))
        .collect();
    for key in &registered {
        assert!(
            fixtures.contains_key(key),
            "the {} type `{}` has no fixture in the compliance test; add one",
            key.0.noun(),
            key.1
        );
    }
    assert_eq!(registered.len(), fixtures.len(), "a fixture of no type");

    let dir = tempfile::tempdir().expect("tmp");
    let wasm = guest("plugins", "redact-rust");
    let broker = Broker::start();
    broker.create_topic("compliance_spans", 1);
    let mut pipeline = format!(
        "[api]\naddress = \"127.0.0.1:0\"\n\n[store]\npath = \"{}/data\"\n",
        dir.path().display()
    );
    for ((kind, name), table) in &fixtures {
        let table = table
            .replace("{dir}", &dir.path().display().to_string())
            .replace("{wasm}", &wasm.display().to_string())
            .replace("{kafka}", &broker.address());
        pipeline.push_str(&format!(
            "\n[{}.{}_{name}]\ntype = \"{name}\"\n{table}\n",
            kind.section(),
            kind.noun()
        ));
    }
    let file = dir.path().join("compliance.toml");
    std::fs::write(&file, &pipeline).expect("write the pipeline");
    let weir = start_in(Path::new(dir.path()), &file);

    let client = reqwest::blocking::Client::new();
    let metrics = || {
        client
            .get(format!("http://{}/metrics", weir.api))
            .send()
            .and_then(|r| r.text())
            .expect("/metrics answers")
    };
    let missing = |text: &str| -> Vec<String> {
        let mut missing = Vec::new();
        for (kind, name) in fixtures.keys() {
            let component = format!("{}_{name}", kind.noun());
            for (metric, positive) in standard(*kind) {
                match component_value(text, metric, &component) {
                    Some(v) if v > 0.0 || !positive => {}
                    got => missing.push(format!("{component}: {metric} = {got:?}")),
                }
            }
        }
        missing
    };

    let deadline = Instant::now() + Duration::from_secs(120);
    let mut round = 0u64;
    loop {
        let now = now_secs();
        post_spans(&client, &weir.http, otlp_spans(now, "cart", &[0]));
        let logs = Group::new(vec![otlp::log(
            now * SECOND + round * MILLI,
            9,
            "card 4111 1111",
        )])
        .service("cart")
        .logs();
        let response = client
            .post(format!("http://{}/v1/logs", weir.http))
            .header("content-type", "application/json")
            .body(otlp::logs_json(&logs))
            .timeout(Duration::from_secs(30))
            .send()
            .expect("weir answers");
        assert_eq!(response.status().as_u16(), 200);
        let left = missing(&metrics());
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after {round} rounds, still missing:\n{}",
            left.join("\n")
        );
        round += 1;
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Guarantees: a component's samples are summed over their other labels,
/// and neither a longer component name nor a longer metric name is taken
/// for it.
#[test]
fn component_values_are_read_by_label() {
    let text = "x{component=\"a\",signal=\"logs\"} 2\nx{component=\"a\",signal=\"spans\"} 3\n\
                x{component=\"ab\",signal=\"logs\"} 7\nx_total{component=\"a\"} 9\n";
    assert_eq!(component_value(text, "x", "a"), Some(5.0));
    assert_eq!(component_value(text, "x", "b"), None);
}
