//! The versions of the contract: what `weir:plugin@0.2.0` adds (the hold,
//! `attribute-keys`, `partition-by`, `tick` on every instance), tested
//! with the `keeper` plugin (built with the SDK), and a plugin of 0.1.0
//! (`legacy`, built against `wit/v0.1`) running as before.

use std::time::Duration;

use arrow::record_batch::RecordBatch;
use weir_core::{Ack, AckStatus, AckWaiter, Batch, Processor, Signal};
use weir_wasm::{Contract, OnError, Runtime, WasmConfig, WasmProcessor};

use crate::common;

async fn keeper(config: &str, instances: usize) -> WasmProcessor {
    let mut c = WasmConfig::new(common::keeper());
    c.config = config.to_string();
    c.instances = Some(instances);
    keeper_with(c).await
}

async fn keeper_with(config: WasmConfig) -> WasmProcessor {
    let p = WasmProcessor::new("keeper", &config, Runtime::new(None).expect("runtime"))
        .await
        .expect("loads");
    assert_eq!(p.contract(), Contract::V0_2);
    p
}

/// Logs with these bodies, each with the record attributes `row` (its
/// index) and `b` or `c` in turn, and a resource.
fn logs(bodies: &[&str]) -> RecordBatch {
    let records: Vec<String> = bodies
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let extra = if i % 2 == 0 { "b" } else { "c" };
            format!(
                r#"{{"timeUnixNano":"{t}","severityNumber":9,"body":{{"stringValue":"{b}"}},
                  "attributes":[{{"key":"row","value":{{"intValue":"{i}"}}}},
                                {{"key":"{extra}","value":{{"boolValue":true}}}}]}}"#,
                t = 1000 + i
            )
        })
        .collect();
    let text = format!(
        r#"{{"resourceLogs":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"cart"}}}}]}},
            "scopeLogs":[{{"scope":{{"name":"s"}},"logRecords":[{}]}}]}}]}}"#,
        records.join(",")
    );
    let request = weir_core::convert::json::decode_logs(text.as_bytes()).expect("OTLP/JSON");
    weir_core::convert::logs_to_batch(&request)
        .expect("converts")
        .batch
}

fn bodies(data: &RecordBatch) -> Vec<String> {
    weir_wasm::columns::read_strings(data, "body")
        .expect("body")
        .into_iter()
        .map(Option::unwrap_or_default)
        .collect()
}

/// The rows of `data` at `rows`, in that order.
fn rows(data: &RecordBatch, rows: &[u32]) -> RecordBatch {
    arrow::compute::take_record_batch(data, &arrow::array::UInt32Array::from(rows.to_vec()))
        .expect("take")
}

/// Runs `data` through `p` with an acknowledgement to watch.
async fn run(p: &mut WasmProcessor, data: RecordBatch) -> (Vec<Batch>, AckWaiter) {
    let (ack, waiter) = Ack::new();
    let mut out = Vec::new();
    let batch = Batch::new(Signal::Logs, data, ack);
    let keep = batch.ack().clone();
    p.process(batch, &mut out).await.expect("processes");
    // What the runtime does with its clone once `process` returns.
    keep.deliver();
    (out, waiter)
}

/// Runs `bodies` through `p` and delivers every output; returns the
/// outputs' rows.
async fn run_bodies(p: &mut WasmProcessor, b: &[&str]) -> Vec<RecordBatch> {
    let (out, waiter) = run(p, logs(b)).await;
    let data: Vec<RecordBatch> = out.iter().map(|o| o.data().clone()).collect();
    out.into_iter().for_each(Batch::deliver);
    assert_eq!(waiter.await, AckStatus::Delivered);
    data
}

async fn pending(waiter: &mut AckWaiter) -> bool {
    tokio::time::timeout(Duration::from_millis(50), waiter)
        .await
        .is_err()
}

/// Scenario: logs whose attributes differ row by row.
/// Guarantees: `attribute-keys` gives every key once, in first-seen order.
#[tokio::test(flavor = "multi_thread")]
async fn attribute_keys_lists_every_key_once() {
    let mut p = keeper("{}", 1).await;
    let out = run_bodies(&mut p, &["keys", "x", "y"]).await;
    assert_eq!(bodies(&out[0]), ["row,b,c", "x", "y"]);
}

/// Scenario: rows held under two keys in one batch, one key released by a
/// later batch, the other discarded by a third.
/// Guarantees: held rows leave the batch and their input is acknowledged
/// at once; the release gives back exactly the rows held (every column),
/// in the order held, as output of the releasing call sharing its
/// acknowledgement; `holding` reports rows and bytes; discard drops the
/// rest and frees every byte.
#[tokio::test(flavor = "multi_thread")]
async fn held_rows_are_released_exactly_by_a_later_call() {
    let mut p = keeper("{}", 1).await;
    let first = logs(&["hold a", "x", "hold b", "hold a"]);
    let (out, waiter) = run(&mut p, first.clone()).await;
    assert_eq!(out.len(), 1);
    assert_eq!(bodies(out[0].data()), ["x"]);
    out.into_iter().for_each(Batch::deliver);
    assert_eq!(waiter.await, AckStatus::Delivered, "held rows are handled");

    let out = run_bodies(&mut p, &["holding"]).await;
    let holding = bodies(&out[0]).remove(0);
    let bytes: u64 = holding
        .strip_prefix("holding 3 ")
        .unwrap_or_else(|| panic!("{holding}"))
        .parse()
        .expect("bytes");
    assert!(bytes > 0);

    let (mut out, mut waiter) = run(&mut p, logs(&["release a"])).await;
    assert_eq!(out.len(), 2, "the batch and the released rows");
    assert_eq!(
        bodies(out[0].data())[0],
        "released 2 0",
        "key b still holds the chunk"
    );
    assert_eq!(
        out[1].data(),
        &rows(&first, &[0, 3]),
        "the same rows, every column"
    );
    let released = out.pop().expect("released");
    out.into_iter().for_each(Batch::deliver);
    assert!(
        pending(&mut waiter).await,
        "the released rows carry the call's ack"
    );
    released.deliver();
    assert_eq!(waiter.await, AckStatus::Delivered);

    let out = run_bodies(&mut p, &["discard b", "holding", "release b"]).await;
    assert_eq!(out.len(), 1, "nothing released");
    assert_eq!(
        bodies(&out[0]),
        [
            format!("discarded 1 {bytes}"),
            "holding 0 0".to_string(),
            "released 0 0".to_string()
        ]
    );
}

/// Scenario: a row held, its key released at the next tick.
/// Guarantees: the tick's output holds exactly that row, belonging to no
/// request.
#[tokio::test(flavor = "multi_thread")]
async fn held_rows_are_released_by_a_tick() {
    let mut p = keeper(r#"{"tick":true}"#, 1).await;
    assert_eq!(p.tick_interval(), Some(Duration::from_secs(1)));
    let input = logs(&["x", "hold t", "later t"]);
    let (out, waiter) = run(&mut p, input.clone()).await;
    assert_eq!(bodies(out[0].data()), ["x", "later t"]);
    out.into_iter().for_each(Batch::deliver);
    assert_eq!(waiter.await, AckStatus::Delivered);
    let mut out = Vec::new();
    p.tick(&mut out).await.expect("ticks");
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].data(), &rows(&input, &[1]));
    let out = run_bodies(&mut p, &["holding"]).await;
    assert_eq!(bodies(&out[0]), ["holding 0 0"]);
}

/// Scenario: `max_held_bytes` smaller than any row.
/// Guarantees: `hold` is refused with `limit-exceeded`, the rows stay in
/// the batch, nothing is held.
#[tokio::test(flavor = "multi_thread")]
async fn the_hold_is_bounded() {
    let mut c = WasmConfig::new(common::keeper());
    c.instances = Some(1);
    c.max_held_bytes = 1;
    let mut p = keeper_with(c).await;
    let out = run_bodies(&mut p, &["hold a", "x", "holding"]).await;
    assert_eq!(bodies(&out[0]), ["refused", "x", "holding 0 0"]);
}

/// Scenario: an instance holds rows, then panics on a later batch in
/// which it held more.
/// Guarantees: the failed batch is refused (retry), the rows held before
/// it are not lost but sent on with the next output, exactly as held; the
/// rows the failed call held are not (its input is retried with them);
/// the replacement instance holds nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_instance_releases_what_it_held() {
    let mut c = WasmConfig::new(common::keeper());
    c.instances = Some(1);
    c.on_error = OnError::Fail;
    let mut p = keeper_with(c).await;
    let first = logs(&["hold a", "hold b"]);
    let (out, waiter) = run(&mut p, first.clone()).await;
    assert!(out.is_empty());
    assert_eq!(waiter.await, AckStatus::Delivered);

    let (ack, waiter) = Ack::new();
    let mut out = Vec::new();
    let failed = Batch::new(Signal::Logs, logs(&["hold c", "trap"]), ack);
    let keep = failed.ack().clone();
    let result = p.process(failed, &mut out).await;
    assert!(result.is_err(), "the panic fails the batch");
    keep.fail("as the runtime does");
    assert!(out.is_empty());
    assert!(matches!(waiter.await, AckStatus::Failed(_)));

    let out = run_bodies(&mut p, &["x", "holding"]).await;
    assert_eq!(out.len(), 2, "the batch, and the rows given up");
    assert_eq!(bodies(&out[0]), ["x", "holding 0 0"]);
    assert_eq!(out[1], first, "exactly the rows held before, every column");
}

/// Scenario: a plugin partitioned by `body` with four instances; batches
/// of eight values in changing order, big enough to be split.
/// Guarantees: every value always meets the same instance, several
/// instances take part, and a batch split across instances is
/// acknowledged once every part is delivered.
#[tokio::test(flavor = "multi_thread")]
async fn partition_by_sends_a_value_to_one_instance() {
    let mut p = keeper(r#"{"partition":"body"}"#, 4).await;
    let values: Vec<String> = (0..8).map(|i| format!("v{i}")).collect();
    for round in 0..5 {
        let mut order: Vec<&str> = values.iter().map(String::as_str).collect();
        order.rotate_left(round);
        let (mut out, mut waiter) = run(&mut p, logs(&order)).await;
        assert!(out.len() > 1, "split across instances: {}", out.len());
        let rows: usize = out.iter().map(Batch::num_rows).sum();
        assert_eq!(rows, 8);
        let last = out.pop().expect("parts");
        out.into_iter().for_each(Batch::deliver);
        assert!(pending(&mut waiter).await, "a part is still in flight");
        last.deliver();
        assert_eq!(waiter.await, AckStatus::Delivered);
    }
    let out = run_bodies(&mut p, &["seen"]).await;
    let seen = bodies(&out[0]).remove(0);
    let used: usize = seen
        .strip_prefix("seen 0 ")
        .unwrap_or_else(|| panic!("a value met two instances: {seen}"))
        .parse()
        .expect("count");
    assert!(used > 1, "{seen}");
}

/// Scenario: one tick of a 0.2.0 plugin with three instances.
/// Guarantees: every instance is ticked.
#[tokio::test(flavor = "multi_thread")]
async fn tick_reaches_every_instance() {
    let mut p = keeper(r#"{"tick":true}"#, 3).await;
    let mut out = Vec::new();
    p.tick(&mut out).await.expect("ticks");
    let out = run_bodies(&mut p, &["ticked"]).await;
    assert_eq!(bodies(&out[0]), ["ticked 3"]);
}

/// Scenario: a plugin built against `weir:plugin@0.1.0` (wit/v0.1) with
/// three instances, ticked twice.
/// Guarantees: it loads as 0.1.0, processes batches, and only its first
/// instance is ticked, as before 0.2.0.
#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_of_0_1_still_runs() {
    let mut c = WasmConfig::new(common::legacy());
    c.instances = Some(3);
    let mut p = WasmProcessor::new("legacy", &c, Runtime::new(None).expect("runtime"))
        .await
        .expect("loads");
    assert_eq!(p.contract(), Contract::V0_1);
    assert_eq!(p.tick_interval(), Some(Duration::from_secs(1)));
    for _ in 0..2 {
        let mut out = Vec::new();
        p.tick(&mut out).await.expect("ticks");
        assert!(out.is_empty());
    }
    let out = run_bodies(&mut p, &["abc", "ticks"]).await;
    assert_eq!(bodies(&out[0]), ["ABC", "2"]);
}

/// Scenario: rows held, then the component file replaced (hot reload);
/// rows held again, then the input ends (`close`).
/// Guarantees: the reload sends what the old instances held on with the
/// next output, and `close` sends on what is held then: nothing held is
/// lost, and nothing stays counted.
#[tokio::test(flavor = "multi_thread")]
async fn reload_and_close_release_what_is_held() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("plugin.wasm");
    std::fs::copy(common::keeper(), &path).expect("copied");
    let mut c = WasmConfig::new(&path);
    c.instances = Some(1);
    let mut p = keeper_with(c).await;
    p.set_reload_check(Duration::ZERO);
    let first = logs(&["hold a", "hold b"]);
    let (out, _) = run(&mut p, first.clone()).await;
    assert!(out.is_empty());
    // The same plugin, written anew: a file with a new modification time.
    std::fs::File::options()
        .write(true)
        .open(&path)
        .and_then(|f| f.set_modified(std::time::SystemTime::now() + Duration::from_secs(10)))
        .expect("touched");
    let out = run_bodies(&mut p, &["holding"]).await;
    assert_eq!(out.len(), 2, "the batch and the rows the old instance held");
    assert_eq!(bodies(&out[0]), ["holding 0 0"]);
    assert_eq!(out[1], first);

    let second = logs(&["x", "hold c"]);
    run(&mut p, second.clone()).await;
    let mut out = Vec::new();
    p.close(&mut out).await.expect("closes");
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].data(), &rows(&second, &[1]));
}
