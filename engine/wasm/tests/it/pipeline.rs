//! The plugin host inside a pipeline: acknowledgements pass through the
//! plugin, and the example redaction
//! plugin works end to end behind a real OTLP/HTTP source.

use std::time::Duration;

use weir_core::{Ack, AckStatus, Batch, Processor, Signal, SignalSet};
use weir_runtime::{Built, Node, Topology};
use weir_sinks::FileSinkConfig;
use weir_sources::OtlpSourceConfig;
use weir_wasm::WasmConfig;
use weir_wasm::{Runtime, WasmProcessor};

use crate::common;

fn bodies(batch: &Batch) -> Vec<Option<String>> {
    weir_wasm::columns::read_strings(batch.data(), "body").expect("body")
}

async fn redact(instances: usize) -> WasmProcessor {
    let mut config = WasmConfig::new(common::redact());
    config.instances = Some(instances);
    WasmProcessor::new("redact", &config, Runtime::new(None).expect("runtime"))
        .await
        .expect("loads")
}

/// Scenario: a batch of 4,096 rows through a plugin with two instances.
/// Guarantees: it is split across both, the output keeps the rows in
/// order, and the source hears back only once every part is delivered.
#[tokio::test(flavor = "multi_thread")]
async fn split_batch_is_acknowledged_when_all_parts_are() {
    let mut p = redact(2).await;
    let rows: Vec<(i32, String)> = (0..4096).map(|i| (9, format!("row {i}"))).collect();
    let rows: Vec<(i32, &str)> = rows.iter().map(|(s, b)| (*s, b.as_str())).collect();
    let (ack, mut waiter) = Ack::new();
    let mut out = Vec::new();
    p.process(Batch::new(Signal::Logs, common::logs(&rows), ack), &mut out)
        .await
        .expect("processes");
    assert_eq!(out.len(), 2, "one output per instance");
    assert_eq!(bodies(&out[0])[0].as_deref(), Some("row #"));
    assert_eq!(bodies(&out[1])[2047].as_deref(), Some("row ####"));
    let second = out.pop().expect("two parts");
    out.into_iter().for_each(Batch::deliver);
    assert!(
        tokio::time::timeout(Duration::from_millis(50), &mut waiter)
            .await
            .is_err(),
        "not acknowledged while a part is in flight"
    );
    second.deliver();
    assert_eq!(waiter.await, AckStatus::Delivered);
}

/// Scenario: every record of a batch is DEBUG. Guarantees: the plugin drops
/// them all, nothing is sent on, and the batch is acknowledged at once.
#[tokio::test(flavor = "multi_thread")]
async fn dropped_batch_is_acknowledged() {
    let mut p = redact(1).await;
    let (ack, waiter) = Ack::new();
    let mut out = Vec::new();
    p.process(
        Batch::new(Signal::Logs, common::logs(&[(5, "a"), (1, "b")]), ack),
        &mut out,
    )
    .await
    .expect("processes");
    assert!(out.is_empty());
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .expect("resolved"),
        AckStatus::Delivered
    );
}

/// OTLP/HTTP -> wasm(`plugin`, two instances) -> file, in a real
/// topology; sends `body` (OTLP/JSON logs) with a real HTTP client and
/// returns what the file sink wrote once the request was answered 200.
async fn through_pipeline(plugin: std::path::PathBuf, body: &str) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let out_path = dir.path().join("out.jsonl");
    let source_config = OtlpSourceConfig {
        grpc: false,
        http_address: "127.0.0.1:0".parse().expect("address"),
        ..OtlpSourceConfig::default()
    };
    let source = weir_sources::OtlpSource::bind("otlp", source_config)
        .await
        .expect("binds");
    let addr = source.http_addr().expect("http listener");
    let mut wasm = WasmConfig::new(plugin);
    wasm.instances = Some(2);
    // Room for the JavaScript and Python runtimes on a loaded test machine:
    // this test is about equal output, not speed.
    wasm.timeout = Duration::from_secs(30);
    let processor = WasmProcessor::new("redact", &wasm, Runtime::new(None).expect("runtime"))
        .await
        .expect("loads");
    let sink = weir_sinks::FileSink::open(
        "file",
        &FileSinkConfig {
            path: out_path.clone(),
            fsync: false,
        },
    )
    .await
    .expect("opens");
    let nodes = vec![
        Node {
            name: "otlp".into(),
            built: Built::Source(Box::new(source)),
            inputs: vec![],
            queue_capacity: 8,
        },
        Node {
            name: "redact".into(),
            built: Built::Processor(Box::new(processor)),
            inputs: vec![("otlp".into(), SignalSet::ALL)],
            queue_capacity: 8,
        },
        Node {
            name: "file".into(),
            built: Built::Sink(Box::new(sink)),
            inputs: vec![("redact".into(), SignalSet::ALL)],
            queue_capacity: 8,
        },
    ];
    let running = Topology::new(nodes).expect("valid graph").start();
    let response = reqwest::Client::new()
        .post(format!("http://{addr}/v1/logs"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("request sent");
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    let written = std::fs::read_to_string(&out_path).expect("the sink wrote");
    let report = running.drain(Duration::from_secs(5)).await;
    assert!(report.is_clean(), "{report:?}");
    written
}

const LOGS: &str = r#"{"resourceLogs":[{"resource":{"attributes":[
    {"key":"service.name","value":{"stringValue":"checkout"}}]},
  "scopeLogs":[{"logRecords":[
    {"severityNumber":5,"severityText":"DEBUG","body":{"stringValue":"cache miss for 12345"}},
    {"severityNumber":9,"severityText":"INFO","body":{"stringValue":"order 987 paid by card 4111"},
     "attributes":[{"key":"user","value":{"stringValue":"u-42"}}]},
    {"severityNumber":1,"severityText":"TRACE","body":{"stringValue":"enter 1"}},
    {"severityNumber":17,"severityText":"ERROR","body":{"stringValue":"no digits here"}},
    {"body":{"stringValue":"unspecified 7"}},
    {"severityNumber":13,"severityText":"WARN"}]}]}]}"#;

/// Scenario: OTLP/HTTP -> wasm(redact-rust) -> file, logs sent by a real
/// HTTP client. Guarantees: the request is answered 200 once the file holds
/// the data; DEBUG records are gone and digits masked in what is written.
#[tokio::test(flavor = "multi_thread")]
async fn otlp_to_redact_to_file() {
    let written = through_pipeline(common::redact(), LOGS).await;
    assert!(!written.contains("cache miss"), "DEBUG dropped: {written}");
    assert!(!written.contains("enter"), "TRACE dropped: {written}");
    assert!(written.contains("order ### paid by card ####"), "{written}");
    assert!(written.contains("no digits here"), "{written}");
    assert!(written.contains("unspecified #"), "{written}");
    assert!(written.contains("u-42"), "attributes untouched: {written}");
    assert!(
        !written.contains("987") && !written.contains("4111"),
        "{written}"
    );
}

/// Scenario: the same redaction plugin written in Rust, JavaScript
/// (componentize-js) and Python (componentize-py), each in the same real
/// pipeline with the same input. Guarantees: all three write identical
/// output, and it is the redacted input.
#[tokio::test(flavor = "multi_thread")]
async fn same_plugin_in_rust_js_and_python_gives_identical_output() {
    let rust = through_pipeline(common::redact(), LOGS).await;
    assert!(rust.contains("order ### paid by card ####"), "{rust}");
    for lang in ["js", "python"] {
        let other = through_pipeline(common::redact_in(lang), LOGS).await;
        assert_eq!(
            other, rust,
            "the {lang} plugin's output differs from Rust's"
        );
    }
}

/// Scenario: the component file is replaced while the processor runs, then
/// replaced by a broken file. Guarantees: the next batch runs the new
/// plugin without a restart; a broken file leaves the running one serving.
#[tokio::test(flavor = "multi_thread")]
async fn changed_file_is_reloaded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("plugin.wasm");
    std::fs::copy(common::hostile(), &path).expect("copied");
    let mut config = WasmConfig::new(&path);
    config.config = r#"{"mode":"ok"}"#.into();
    config.instances = Some(1);
    let mut p = WasmProcessor::new("reload", &config, Runtime::new(None).expect("runtime"))
        .await
        .expect("loads");
    p.set_reload_check(Duration::ZERO);
    let run = async |p: &mut WasmProcessor| {
        let mut out = Vec::new();
        p.process(
            Batch::new(Signal::Logs, common::logs(&[(9, "abc 1")]), Ack::none()),
            &mut out,
        )
        .await
        .expect("processes");
        bodies(&out[0])
    };
    assert_eq!(run(&mut p).await, [Some("ABC 1".to_string())]);
    std::fs::copy(common::redact(), &path).expect("replaced");
    assert_eq!(run(&mut p).await, [Some("abc #".to_string())]);
    std::fs::write(&path, b"not a component").expect("broken");
    assert_eq!(run(&mut p).await, [Some("abc #".to_string())]);
}
