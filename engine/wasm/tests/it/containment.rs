//! Containment: a plugin that loops, allocates without end, traps, panics,
//! floods its output or writes garbage is stopped; the processor keeps
//! serving, replaces the instance, applies `on_error` to the batch and
//! counts the failure in `weir_plugin_errors_total{component,kind}`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use weir_core::{Ack, AckStatus, Batch, Processor, Signal};
use weir_wasm::{OnError, WasmConfig};
use weir_wasm::{Runtime, WasmProcessor};

use crate::common;

fn snapshotter() -> &'static Snapshotter {
    static S: OnceLock<Snapshotter> = OnceLock::new();
    S.get_or_init(|| {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::set_global_recorder(recorder).expect("one recorder per test binary");
        snapshotter
    })
}

/// Every counter's total so far, by its key (name and labels). A snapshot
/// of the debugging recorder resets the counters it reports, and the tests
/// of this binary run side by side: each reading adds what it drains here,
/// so that no test's reading takes counts away from another's.
fn totals() -> &'static Mutex<HashMap<metrics::Key, u64>> {
    static T: OnceLock<Mutex<HashMap<metrics::Key, u64>>> = OnceLock::new();
    T.get_or_init(Default::default)
}

fn counter(name: &str, labels: &[(&str, &str)]) -> u64 {
    let mut totals = totals().lock().unwrap_or_else(|e| e.into_inner());
    for (key, _, _, value) in snapshotter().snapshot().into_vec() {
        if let DebugValue::Counter(c) = value {
            *totals.entry(key.key().clone()).or_default() += c;
        }
    }
    totals
        .iter()
        .filter(|(key, _)| {
            key.name() == name
                && labels
                    .iter()
                    .all(|(k, v)| key.labels().any(|l| l.key() == *k && l.value() == *v))
        })
        .map(|(_, c)| c)
        .sum()
}

fn runtime() -> Arc<Runtime> {
    static R: OnceLock<Arc<Runtime>> = OnceLock::new();
    R.get_or_init(|| Runtime::new(None).expect("runtime"))
        .clone()
}

fn config(mode: &str, on_error: OnError) -> WasmConfig {
    let mut c = WasmConfig::new(common::hostile());
    c.config = format!(r#"{{"mode":"{mode}"}}"#);
    c.on_error = on_error;
    c.instances = Some(1);
    c.timeout = Duration::from_millis(200);
    c.max_memory = 32 * 1024 * 1024;
    c.max_emitted_records = 1_000;
    c
}

async fn processor(name: &str, mode: &str, on_error: OnError) -> WasmProcessor {
    // The recorder must be in place before anything is counted.
    snapshotter();
    WasmProcessor::new(name, &config(mode, on_error), runtime())
        .await
        .expect("the plugin loads")
}

fn bodies(batch: &Batch) -> Vec<Option<String>> {
    weir_wasm::columns::read_strings(batch.data(), "body").expect("body")
}

/// Runs one failing batch through `p` and returns what came out and how
/// the source was answered.
async fn run(
    p: &mut WasmProcessor,
    body: &str,
) -> (Result<(), String>, Vec<Vec<Option<String>>>, AckStatus) {
    let (ack, waiter) = Ack::new();
    let batch = Batch::new(Signal::Logs, common::logs(&[(9, body), (9, "x")]), ack);
    let keep = batch.ack().clone();
    let mut out = Vec::new();
    let result = p.process(batch, &mut out).await.map_err(|e| e.to_string());
    // What the runtime does with its clone once the processor returns.
    match &result {
        Ok(()) => keep.deliver(),
        Err(e) => keep.fail(e.clone()),
    }
    // Sent on and then delivered downstream.
    let sent: Vec<_> = out
        .drain(..)
        .map(|b| {
            let sent = bodies(&b);
            b.deliver();
            sent
        })
        .collect();
    let status = tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .expect("acknowledged");
    (result, sent, status)
}

/// After a failure the same processor still works on the next batch.
async fn still_serves(p: &mut WasmProcessor) {
    let mut out = Vec::new();
    let batch = Batch::new(Signal::Logs, common::logs(&[(9, "fine")]), Ack::none());
    p.process(batch, &mut out)
        .await
        .expect("a healthy batch passes");
    assert_eq!(bodies(&out[0]), [Some("FINE".to_string())]);
}

async fn contained(mode: &str, kind: &str) {
    let name = format!("hostile-{mode}");
    // `once-`: misbehave only on batches mentioning "boom".
    let mut p = processor(&name, &format!("once-{mode}"), OnError::Fail).await;
    let started = Instant::now();
    let (result, out, status) = run(&mut p, "boom").await;
    assert!(result.is_err(), "{mode}: the call must fail");
    assert!(out.is_empty(), "{mode}: nothing is sent on");
    assert!(
        matches!(status, AckStatus::Failed(_)),
        "{mode}: retryable: {status:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{mode}: stopped in time"
    );
    assert_eq!(
        counter(
            "weir_plugin_errors_total",
            &[("component", &name), ("kind", kind)]
        ),
        1,
        "{mode}: counted as `{kind}`: {result:?}"
    );
    still_serves(&mut p).await;
}

/// Scenario: a plugin that leaks 1 MiB on every call, under a 32 MiB cap.
/// Guarantees: no batch fails; the instance is replaced between batches
/// once it holds three quarters of its cap, and that is counted.
#[tokio::test(flavor = "multi_thread")]
async fn leaking_plugin_is_recycled_between_batches() {
    let name = "hostile-leak";
    let mut p = processor(name, "leak", OnError::Fail).await;
    for i in 0..100 {
        let mut out = Vec::new();
        let batch = Batch::new(Signal::Logs, common::logs(&[(9, "drip")]), Ack::none());
        p.process(batch, &mut out)
            .await
            .unwrap_or_else(|e| panic!("batch {i} failed: {e}"));
        assert_eq!(bodies(&out[0]), [Some("DRIP".to_string())], "batch {i}");
    }
    let recycled = counter(
        "weir_plugin_instances_recycled_total",
        &[("component", name)],
    );
    // 100 MiB leaked, at most 24 MiB per instance: at least four renewals.
    assert!(recycled >= 4, "recycled {recycled} times");
    assert_eq!(
        counter(
            "weir_plugin_errors_total",
            &[("component", name), ("kind", "memory")]
        ),
        0
    );
}

/// Scenario: an endless loop. Guarantees: interrupted by the call timeout.
#[tokio::test(flavor = "multi_thread")]
async fn infinite_loop_is_interrupted() {
    contained("loop", "timeout").await;
}

/// Scenario: allocation without end. Guarantees: stopped at `max_memory`.
#[tokio::test(flavor = "multi_thread")]
async fn allocation_bomb_hits_the_memory_cap() {
    contained("alloc", "memory").await;
}

/// Scenario: an out-of-bounds access. Guarantees: a trap, contained.
#[tokio::test(flavor = "multi_thread")]
async fn trap_is_contained() {
    contained("trap", "trap").await;
}

/// Scenario: a Rust panic. Guarantees: contained, counted as `panic`.
#[tokio::test(flavor = "multi_thread")]
async fn panic_is_contained() {
    contained("panic", "panic").await;
}

/// Scenario: a plugin emits a million records for a two-record batch.
/// Guarantees: stopped at `max_emitted_records`.
#[tokio::test(flavor = "multi_thread")]
async fn huge_output_is_refused() {
    contained("huge", "output_limit").await;
}

/// Scenario: writes of the wrong shape and invalid OTLP, refusals ignored,
/// `ok` returned. Guarantees: the call fails anyway (`invalid_output`).
#[tokio::test(flavor = "multi_thread")]
async fn garbage_output_is_refused() {
    contained("garbage", "invalid_output").await;
}

/// Scenario: `on_error = "pass"`. Guarantees: the batch goes on unchanged.
#[tokio::test(flavor = "multi_thread")]
async fn on_error_pass_forwards_unchanged() {
    let mut p = processor("pass", "once-panic", OnError::Pass).await;
    let (result, out, status) = run(&mut p, "boom").await;
    assert!(result.is_ok());
    assert_eq!(out.len(), 1);
    assert_eq!(out[0], [Some("boom".into()), Some("x".into())]);
    assert_eq!(status, AckStatus::Delivered);
    still_serves(&mut p).await;
}

/// Scenario: `on_error = "drop"`. Guarantees: the batch is acknowledged and
/// discarded.
#[tokio::test(flavor = "multi_thread")]
async fn on_error_drop_acknowledges() {
    let mut p = processor("drop", "once-trap", OnError::Drop).await;
    let (result, out, status) = run(&mut p, "boom").await;
    assert!(result.is_ok());
    assert!(out.is_empty());
    assert_eq!(status, AckStatus::Delivered);
    still_serves(&mut p).await;
}

/// Scenario: a config the plugin refuses. Guarantees: a config error at
/// start, naming the component.
#[tokio::test(flavor = "multi_thread")]
async fn refused_config_fails_the_start() {
    let err = WasmProcessor::new("picky", &config("fail-init", OnError::Fail), runtime())
        .await
        .expect_err("refused");
    let text = err.to_string();
    assert!(
        text.contains("picky") && text.contains("fail-init"),
        "{text}"
    );
}

/// Scenario: a plugin reaches for files, environment and clocks without
/// grants. Guarantees: no directory opens, no variable is visible, the
/// `clock` interface is denied and the WASI wall clock reads the epoch;
/// with `allow_clock` both clocks work.
#[tokio::test(flavor = "multi_thread")]
async fn sandbox_grants_nothing_by_default() {
    let mut p = processor("probe", "probe", OnError::Fail).await;
    let (result, _, _) = run(&mut p, "x").await;
    let report = result.expect_err("the probe always fails");
    assert!(report.contains("files closed"), "{report}");
    assert!(report.contains("env vars 0"), "{report}");
    assert!(report.contains("clock denied"), "{report}");
    assert!(report.contains("wall clock 0s"), "{report}");

    let mut granted = config("probe", OnError::Fail);
    granted.allow_clock = true;
    let mut p = WasmProcessor::new("probe-clock", &granted, runtime())
        .await
        .expect("loads");
    let (result, _, _) = run(&mut p, "x").await;
    let report = result.expect_err("the probe always fails");
    assert!(report.contains("clock granted"), "{report}");
    assert!(!report.contains("wall clock 0s"), "{report}");
}
