//! Tail sampling through the plugin's own `init`, `process` and `tick`,
//! on the SDK's hold as the harness's [`Session`] simulates it (the
//! host's behaviour: rows held by key, released as output of the call,
//! bytes reported by the hold), on spans given as OTLP/JSON.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use weir_plugin::harness::{Call, Session, Table};
use weir_plugin::{Held, Plugin};

use crate::Sample;

const SECOND: u64 = 1_000_000_000;
/// The first tick: 2024-05-01T00:00:00Z.
const T0: u64 = 1_714_521_600 * SECOND;

/// Trace `i`'s id: 32 hex digits, distinct per `i`.
fn trace_id(i: u64) -> String {
    format!("{:016x}{i:016x}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
}

/// Span `n` of trace `i`, failed with `error`, with an attribute of `pad`
/// bytes (to give the hold something to count).
fn span(i: u64, n: u32, error: bool, pad: usize) -> Value {
    let mut s = json!({
        "traceId": trace_id(i),
        "spanId": format!("{i:08x}{n:08x}"),
        "name": format!("op-{n}"),
        "startTimeUnixNano": (T0 + u64::from(n)).to_string(),
        "endTimeUnixNano": (T0 + u64::from(n) + 1_000).to_string(),
        "attributes": [{"key": "pad", "value": {"stringValue": "x".repeat(pad)}}],
    });
    if error {
        s["status"] = json!({"code": 2, "message": "declined"});
    }
    s
}

/// An `ExportTraceServiceRequest` carrying `spans`.
fn request(spans: &[Value]) -> String {
    json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "shop"}}]},
        "scopeSpans": [{"spans": spans}],
    }]})
    .to_string()
}

fn session(tail: Value) -> Session<Sample> {
    let config = json!({ "tail": tail }).to_string();
    Session::new(&config).unwrap_or_else(|e| panic!("{config}: {e:?}"))
}

fn process(s: &mut Session<Sample>, spans: &[Value]) -> Call {
    s.spans(&request(spans))
        .unwrap_or_else(|e| panic!("process: {e:?}"))
}

fn tick(s: &mut Session<Sample>, now: u64) -> Call {
    s.tick(now).unwrap_or_else(|e| panic!("tick: {e:?}"))
}

/// The span ids of `table`'s rows, in order.
fn span_ids(table: &Table) -> Vec<String> {
    table
        .strings("span_id")
        .unwrap_or_else(|e| panic!("span_id: {e:?}"))
        .into_iter()
        .map(Option::unwrap_or_default)
        .collect()
}

/// The span ids of every row a call sent on: left in the batch, then
/// released.
fn sent_on(call: &Call) -> Vec<String> {
    call.table
        .iter()
        .chain(&call.released)
        .flat_map(span_ids)
        .collect()
}

fn ids(spans: &[(u64, u32)]) -> Vec<String> {
    spans
        .iter()
        .map(|(i, n)| format!("{i:08x}{n:08x}"))
        .collect()
}

/// Guarantees: a `tail` config is accepted; the plugin then asks the host
/// to route rows by `trace_id` and to tick at `check_interval`; with
/// `head` alone it asks for neither.
#[test]
fn a_tail_config_routes_by_trace_id() {
    let tail = json!({"tail": {"check_interval": "200ms",
        "policies": [{"name": "all", "type": "always_sample"}]}});
    let plugin = Sample::init(&tail.to_string()).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(plugin.partition_by(), Some("trace_id"));
    assert_eq!(
        plugin.tick_every(),
        Some(std::time::Duration::from_millis(200))
    );
    let head = json!({"head": {"sampling_percentage": 10}});
    let plugin = Sample::init(&head.to_string()).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!((plugin.partition_by(), plugin.tick_every()), (None, None));
}

/// A session with an error policy, `decision_wait = 5s`, in which trace 1
/// (its last span failed) and trace 2 (healthy) arrived interleaved over
/// two batches, the second at T0 + 1 s, and were decided at T0 + 6 s.
/// Returns the session and the calls' results in order.
fn errors_decided() -> (Session<Sample>, Vec<Call>) {
    let mut s = session(json!({"decision_wait": "5s", "check_interval": "1s",
        "policies": [{"name": "errors", "type": "status_code", "status_codes": ["ERROR"]}]}));
    let mut calls = vec![tick(&mut s, T0)];
    calls.push(process(
        &mut s,
        &[
            span(1, 1, false, 0),
            span(2, 1, false, 0),
            span(1, 2, false, 0),
        ],
    ));
    calls.push(tick(&mut s, T0 + SECOND));
    calls.push(process(
        &mut s,
        &[
            span(2, 2, false, 0),
            span(1, 3, true, 0),
            span(2, 3, false, 0),
        ],
    ));
    calls.push(tick(&mut s, T0 + 5 * SECOND));
    calls.push(tick(&mut s, T0 + 6 * SECOND));
    (s, calls)
}

/// Guarantees: spans of undecided traces leave their batch into the
/// host's hold (nothing goes on, the hold reports them); a trace is
/// decided `decision_wait` after its last span, not before, and then
/// goes whole: the kept trace's spans all released by that tick, in the
/// order they arrived, the dropped one's discarded; nothing stays held.
#[test]
fn a_held_trace_is_kept_or_dropped_whole_after_decision_wait() {
    let (s, calls) = errors_decided();
    let [first_tick, first, second_tick, second, early, due] = &calls[..] else {
        panic!("six calls")
    };
    for call in [first_tick, first, second_tick, second, early] {
        assert_eq!(sent_on(call), Vec::<String>::new(), "nothing goes on yet");
    }
    assert_eq!(first.table.as_ref().map(Table::num_rows), Some(0));
    assert_eq!(second.table.as_ref().map(Table::num_rows), Some(0));
    assert_eq!(
        due.released.iter().map(span_ids).collect::<Vec<_>>(),
        [ids(&[(1, 1), (1, 2), (1, 3)])],
        "trace 1 whole, trace 2 not at all"
    );
    assert_eq!(s.holding(), Held::default(), "trace 2 discarded");
    let tail = s.plugin().tail().unwrap_or_else(|| panic!("tail"));
    assert_eq!((tail.in_flight(), tail.held_bytes()), (0, 0));
}

/// Guarantees: while undecided, the hold has every span so far (the
/// plugin's count of held bytes is the hold's).
#[test]
fn undecided_spans_are_in_the_hold() {
    let mut s = session(json!({"decision_wait": "5s",
        "policies": [{"name": "all", "type": "always_sample"}]}));
    tick(&mut s, T0);
    process(&mut s, &[span(1, 1, false, 100), span(2, 1, false, 100)]);
    assert_eq!(s.holding().rows, 2);
    process(&mut s, &[span(1, 2, false, 100)]);
    assert_eq!(s.holding().rows, 3);
    let tail = s.plugin().tail().unwrap_or_else(|| panic!("tail"));
    assert_eq!(tail.held_bytes(), s.holding().bytes);
    assert_eq!(tail.in_flight(), 2);
}

/// Guarantees: spans arriving after their trace was decided follow the
/// decision cache at once: a kept trace's span stays in its batch and
/// goes on, a dropped trace's span is dropped; neither is held.
#[test]
fn late_spans_follow_the_decision_cache() {
    let (mut s, _) = errors_decided();
    let late = process(&mut s, &[span(2, 4, false, 0), span(1, 4, false, 0)]);
    assert_eq!(
        late.table.as_ref().map(span_ids),
        Some(ids(&[(1, 4)])),
        "kept trace's span passes, dropped trace's span is dropped"
    );
    assert!(late.released.is_empty());
    assert_eq!(s.holding(), Held::default(), "nothing held");
}

/// Traces `0..count` of three spans with `pad`-byte attributes, in
/// groups of `per`, each trace spread over three batches: batch `b`
/// carries span 1 of group `b`, span 2 of group `b - 1` and span 3 of
/// group `b - 2`.
fn spread(count: u64, per: u64, pad: usize) -> Vec<Vec<Value>> {
    let groups = count.div_ceil(per);
    (0..groups + 2)
        .map(|b| {
            (1..=3u32)
                .filter_map(|n| b.checked_sub(u64::from(n) - 1).filter(|g| *g < groups))
                .flat_map(|g| (g * per..((g + 1) * per).min(count)).map(move |i| (i, g)))
                .map(|(i, g)| span(i, (b - g) as u32 + 1, false, pad))
                .collect()
        })
        .collect()
}

/// Counts the spans sent on per trace (the id's first 8 hex digits).
fn per_trace(out: &[String]) -> BTreeMap<u64, usize> {
    let mut per: BTreeMap<u64, usize> = BTreeMap::new();
    for id in out {
        let trace = u64::from_str_radix(&id[..8], 16).unwrap_or_else(|e| panic!("{id}: {e}"));
        *per.entry(trace).or_default() += 1;
    }
    per
}

/// Guarantees, with the SDK's hold reporting real byte counts: with far
/// more spans than `max_memory` (1 MiB) holds, the plugin's memory (the
/// hold's bytes plus its bookkeeping) is within `max_memory` after every
/// call and its count of held bytes is the hold's; the oldest traces are
/// decided early, during `process`, and released there; a trace decided
/// early with spans still to come gets them through the decision cache,
/// so every trace goes on whole, exactly once; at the end nothing is held.
#[test]
fn the_byte_bound_decides_early_on_the_real_hold() {
    let mut s = session(json!({"decision_wait": "30s", "max_memory": "1MiB",
        "policies": [{"name": "all", "type": "always_sample"}]}));
    tick(&mut s, T0);
    let (count, per) = (600, 20);
    let mut out = Vec::new();
    let mut early = Vec::new();
    for batch in spread(count, per, 2_000) {
        let call = process(&mut s, &batch);
        early.extend(call.released.iter().flat_map(span_ids));
        out.extend(sent_on(&call));
        let tail = s.plugin().tail().unwrap_or_else(|| panic!("tail"));
        assert!(tail.memory() <= 1 << 20, "{} bytes", tail.memory());
        assert_eq!(tail.held_bytes(), s.holding().bytes, "the hold's count");
    }
    let decided_early = per_trace(&early);
    assert!(
        decided_early.len() > 300,
        "{} traces decided early",
        decided_early.len()
    );
    assert!(decided_early.contains_key(&0), "the oldest first");
    assert!(!decided_early.contains_key(&(count - 1)), "the newest wait");
    out.extend(sent_on(&tick(&mut s, T0 + 30 * SECOND)));
    let per = per_trace(&out);
    assert_eq!(per.len() as u64, count, "every trace goes on");
    assert!(per.values().all(|n| *n == 3), "each whole, once: {per:?}");
    assert_eq!(s.holding(), Held::default());
}

/// Guarantees: when the host refuses a hold (its `max_held_bytes`, here
/// below the plugin's `max_memory`), the plugin decides its older traces
/// early and holds again, so every call succeeds and the hold stays
/// within the host's bound; the batch's spans of traces decided then
/// follow their decision rather than being held under a trace no longer
/// in flight, so every trace still goes on whole and nothing stays held.
#[test]
fn a_refused_hold_sheds_and_holds_again() {
    let mut s = session(json!({"decision_wait": "30s", "max_memory": "64MiB",
        "policies": [{"name": "all", "type": "always_sample"}]}))
    .with_max_held_bytes(100_000);
    tick(&mut s, T0);
    let mut out = Vec::new();
    // 30 spans of about 2 KB a batch, each trace over three batches:
    // holds are refused while the traces decided to make room have
    // spans in the batch being held.
    for batch in spread(300, 10, 2_000) {
        out.extend(sent_on(&process(&mut s, &batch)));
        assert!(s.holding().bytes <= 100_000, "{:?}", s.holding());
    }
    assert!(!out.is_empty(), "some traces decided early");
    out.extend(sent_on(&tick(&mut s, T0 + 30 * SECOND)));
    let per = per_trace(&out);
    assert_eq!(per.len(), 300);
    assert!(per.values().all(|n| *n == 3), "each whole, once: {per:?}");
    assert_eq!(s.holding(), Held::default(), "nothing left held");
}
