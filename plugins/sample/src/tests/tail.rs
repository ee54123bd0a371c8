//! Tail sampling on a fake hold ([`Fake`]: rows kept per key, a fixed
//! number of bytes per row, freed when they leave, optionally a host
//! bound that refuses holds): each policy, the composites and the
//! decision rule, timing, the decision cache, the byte bound, and the
//! issue's scenario of an error trace kept whole among dropped healthy
//! ones.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use weir_plugin::{Error, Text};

use crate::columns::TailColumns;
use crate::config::Plan;
use crate::holder::{Held, Holder};
use crate::tail::{TRACE_BYTES, TailSampler, key};
use crate::threshold::{Randomness, Threshold};

const SECOND: u64 = 1_000_000_000;
/// The first tick: 2024-05-01T00:00:00Z.
const T0: u64 = 1_714_521_600 * SECOND;

/// One span as a test writes it.
#[derive(Debug, Clone, Default)]
struct Span {
    trace: u128,
    span: u32,
    status: Option<i64>,
    start_ms: Option<i64>,
    end_ms: Option<i64>,
    attributes: Vec<(&'static str, String)>,
    trace_state: Option<String>,
}

fn span(trace: u128, n: u32) -> Span {
    Span {
        trace,
        span: n,
        start_ms: Some(0),
        end_ms: Some(10),
        ..Span::default()
    }
}

/// A span's identity in the fake hold.
type Row = (u128, u32);

/// The host's hold, natively.
#[derive(Debug, Default)]
struct Fake {
    /// The current call's batch.
    batch: Vec<Row>,
    /// What `process` passed on (rows left in the batch), all calls.
    passed: Vec<Row>,
    held: BTreeMap<String, Vec<Row>>,
    released: Vec<Row>,
    discarded: Vec<Row>,
    dropped: Vec<Row>,
    row_bytes: u64,
    bytes: u64,
    /// The host's `max_held_bytes`.
    refuse_above: Option<u64>,
}

impl Fake {
    fn new(row_bytes: u64) -> Fake {
        Fake {
            row_bytes,
            ..Fake::default()
        }
    }

    /// Every row that went on, passed or released.
    fn out(&self) -> BTreeSet<Row> {
        self.passed.iter().chain(&self.released).copied().collect()
    }

    fn out_traces(&self) -> BTreeSet<u128> {
        self.out().iter().map(|(t, _)| *t).collect()
    }

    fn take(&mut self, keys: &[String]) -> (Vec<Row>, Held) {
        let mut rows = Vec::new();
        for k in keys {
            rows.extend(self.held.remove(k).unwrap_or_default());
        }
        let freed = rows.len() as u64 * self.row_bytes;
        self.bytes -= freed;
        let held = Held {
            rows: rows.len(),
            bytes: freed,
        };
        (rows, held)
    }
}

impl Holder for Fake {
    fn drop_rows(&mut self, mask: &[bool]) -> Result<usize, Error> {
        assert_eq!(mask.len(), self.batch.len(), "one mask entry per row");
        let mut i = 0;
        let dropped = &mut self.dropped;
        self.batch.retain(|row| {
            let keep = !mask[i];
            i += 1;
            if !keep {
                dropped.push(*row);
            }
            keep
        });
        Ok(self.batch.len())
    }

    fn hold(&mut self, keys: &[Option<&str>]) -> Result<Held, Error> {
        assert_eq!(keys.len(), self.batch.len(), "one key per row");
        let n = keys.iter().filter(|k| k.is_some()).count() as u64;
        if let Some(limit) = self.refuse_above
            && self.bytes + n * self.row_bytes > limit
        {
            return Err(Error::LimitExceeded("max_held_bytes".into()));
        }
        let mut left = Vec::new();
        for (row, k) in self.batch.drain(..).zip(keys) {
            match k {
                Some(k) => {
                    assert_eq!(*k, key(row.0), "the key is the trace id");
                    self.held.entry(k.to_string()).or_default().push(row);
                }
                None => left.push(row),
            }
        }
        self.batch = left;
        self.bytes += n * self.row_bytes;
        Ok(Held {
            rows: n as usize,
            bytes: self.bytes,
        })
    }

    fn release(&mut self, keys: &[String]) -> Result<Held, Error> {
        let (rows, held) = self.take(keys);
        self.released.extend(rows);
        Ok(held)
    }

    fn discard(&mut self, keys: &[String]) -> Result<Held, Error> {
        let (rows, held) = self.take(keys);
        self.discarded.extend(rows);
        Ok(held)
    }
}

fn sampler(tail: Value) -> TailSampler {
    let config = json!({ "tail": tail });
    let plan = Plan::from_json(&config.to_string()).unwrap_or_else(|e| panic!("{config}: {e}"));
    TailSampler::new(plan.tail.unwrap_or_else(|| panic!("a tail plan")))
}

fn policies(p: Value) -> TailSampler {
    sampler(json!({ "decision_wait": "10s", "policies": p }))
}

/// The columns `TailColumns::read` would read from a batch of `spans`.
fn columns(s: &TailSampler, spans: &[Span]) -> TailColumns {
    let needs = &s.plan().needs;
    let ids: Vec<String> = spans.iter().map(|x| key(x.trace)).collect();
    let ms = |v: Option<i64>| v.map(|m| T0 as i64 + m * 1_000_000);
    TailColumns {
        trace_ids: ids.iter().map(|i| Some(i.as_str())).collect::<Text>(),
        trace_states: needs
            .trace_state
            .then(|| spans.iter().map(|x| x.trace_state.as_deref()).collect()),
        status: needs
            .status
            .then(|| spans.iter().map(|x| x.status).collect()),
        start: needs
            .times
            .then(|| spans.iter().map(|x| ms(x.start_ms)).collect()),
        end: needs
            .times
            .then(|| spans.iter().map(|x| ms(x.end_ms)).collect()),
        attributes: needs
            .attributes
            .iter()
            .map(|k| {
                spans
                    .iter()
                    .map(|x| {
                        x.attributes
                            .iter()
                            .find(|(a, _)| a == k)
                            .map(|(_, v)| v.clone())
                    })
                    .collect()
            })
            .collect(),
    }
}

/// One `process` call on `spans`.
fn feed(s: &mut TailSampler, fake: &mut Fake, spans: &[Span]) {
    fake.batch = spans.iter().map(|x| (x.trace, x.span)).collect();
    s.process(&columns(s, spans), fake)
        .unwrap_or_else(|e| panic!("process: {e:?}"));
    let passed = std::mem::take(&mut fake.batch);
    fake.passed.extend(passed);
}

fn tick(s: &mut TailSampler, fake: &mut Fake, now: u64) {
    s.tick(now, fake).unwrap_or_else(|e| panic!("tick: {e:?}"));
}

/// Feeds `traces` (each a list of spans) in one batch after a first
/// tick, then ticks past `decision_wait`; returns the traces that went on.
fn judge(s: &mut TailSampler, traces: &[Vec<Span>]) -> BTreeSet<u128> {
    let mut fake = Fake::new(100);
    tick(s, &mut fake, T0);
    let all: Vec<Span> = traces.iter().flatten().cloned().collect();
    feed(s, &mut fake, &all);
    assert!(
        fake.passed.is_empty(),
        "nothing goes on before the decision"
    );
    tick(s, &mut fake, T0 + 10 * SECOND);
    assert_eq!(s.in_flight(), 0, "every trace is decided");
    assert_eq!(fake.bytes, 0, "nothing stays held");
    fake.out_traces()
}

fn with<F: FnOnce(&mut Span)>(mut s: Span, f: F) -> Span {
    f(&mut s);
    s
}

fn set(ids: &[u128]) -> BTreeSet<u128> {
    ids.iter().copied().collect()
}

/// Guarantees: each leaf policy keeps the trace it matches and drops
/// the one it does not; status and attribute policies match when any
/// span of the trace does; latency spans the trace's earliest start to
/// latest end.
#[test]
fn each_policy_keeps_what_it_matches() {
    let error = |t| {
        vec![
            span(t, 1),
            with(span(t, 2), |s| s.status = Some(2)),
            with(span(t, 3), |s| s.status = Some(1)),
        ]
    };
    let ok = |t| vec![span(t, 1), with(span(t, 2), |s| s.status = Some(1))];
    let long = |t| {
        vec![
            with(span(t, 1), |s| s.start_ms = Some(0)),
            with(span(t, 2), |s| s.end_ms = Some(2_000)),
        ]
    };
    let very_long = |t| vec![with(span(t, 1), |s| s.end_ms = Some(5_000))];
    let attr = |t, k: &'static str, v: &str| {
        vec![
            span(t, 1),
            with(span(t, 2), |s| s.attributes.push((k, v.to_string()))),
        ]
    };
    let p = |v: Value| {
        let mut v = v;
        v["name"] = json!("p");
        json!([v])
    };

    let cases: Vec<(Value, Vec<Vec<Span>>, Vec<u128>)> = vec![
        (
            json!({"type": "always_sample"}),
            vec![ok(1), error(2)],
            vec![1, 2],
        ),
        (
            json!({"type": "status_code", "status_codes": ["ERROR"]}),
            vec![ok(1), error(2)],
            vec![2],
        ),
        (
            json!({"type": "status_code", "status_codes": ["UNSET"]}),
            vec![ok(1), error(2)],
            vec![1, 2],
        ),
        (
            json!({"type": "latency", "threshold": "1s"}),
            vec![ok(1), long(2)],
            vec![2],
        ),
        (
            json!({"type": "latency", "threshold": "1s", "upper_threshold": "3s"}),
            vec![ok(1), long(2), very_long(3)],
            vec![2],
        ),
        (
            json!({"type": "string_attribute", "key": "http.route", "values": ["/pay", "/cart"]}),
            vec![
                attr(1, "http.route", "/cart"),
                attr(2, "http.route", "/home"),
                ok(3),
            ],
            vec![1],
        ),
        (
            json!({"type": "numeric_attribute", "key": "http.status", "min_value": 500, "max_value": 599}),
            vec![
                attr(1, "http.status", "503"),
                attr(2, "http.status", "200"),
                attr(3, "http.status", "n/a"),
            ],
            vec![1],
        ),
        (
            json!({"type": "span_count", "min_spans": 3}),
            vec![ok(1), error(2)],
            vec![2],
        ),
        (
            json!({"type": "span_count", "min_spans": 1, "max_spans": 2}),
            vec![ok(1), error(2)],
            vec![1],
        ),
    ];
    for (policy, traces, kept) in cases {
        let mut s = policies(p(policy.clone()));
        assert_eq!(judge(&mut s, &traces), set(&kept), "{policy}");
    }
}

/// Guarantees: the probabilistic policy keeps about its share, and
/// exactly the traces head sampling at the same probability keeps (same
/// randomness, same threshold rule); an `rv` in a span's tracestate
/// takes precedence over the trace id.
#[test]
fn probabilistic_agrees_with_head_sampling() {
    let mut s =
        policies(json!([{"name": "ten", "type": "probabilistic", "sampling_percentage": 10}]));
    let traces: Vec<Vec<Span>> = (0..2_000u128)
        .map(|i| {
            vec![span(
                i.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835),
                1,
            )]
        })
        .collect();
    let kept = judge(&mut s, &traces);
    assert!((150..250).contains(&kept.len()), "{} of 2000", kept.len());
    let th = Threshold::from_probability(0.1, 12).unwrap_or(Threshold::ALWAYS);
    for t in traces.iter().map(|t| t[0].trace) {
        assert_eq!(
            kept.contains(&t),
            th.keeps(Randomness::from_trace_id_bits(t)),
            "{t:x}"
        );
    }
    // The trace id's randomness is 0 (dropped), its rv is the largest.
    let mut s =
        policies(json!([{"name": "half", "type": "probabilistic", "sampling_percentage": 50}]));
    let rv = with(span(1 << 64, 1), |x| {
        x.trace_state = Some("ot=rv:ffffffffffffff".into())
    });
    assert_eq!(
        judge(&mut s, &[vec![rv], vec![span(2 << 64, 1)]]),
        set(&[1 << 64])
    );
}

/// Guarantees: a rate limit keeps traces while their spans fit in its
/// bucket (one second's worth, refilled by the tick's time), in arrival
/// order, and refuses the rest.
#[test]
fn rate_limiting_keeps_spans_per_second() {
    let mut s =
        policies(json!([{"name": "rate", "type": "rate_limiting", "spans_per_second": 10}]));
    let four = |t| (1..=4).map(|n| span(t, n)).collect::<Vec<_>>();
    assert_eq!(judge(&mut s, &[four(1), four(2), four(3)]), set(&[1, 2]));
    // Ten seconds later the bucket is full again (at most one second's).
    let mut fake = Fake::new(1);
    feed(&mut s, &mut fake, &[four(4), four(5), four(6)].concat());
    tick(&mut s, &mut fake, T0 + 30 * SECOND);
    assert_eq!(fake.out_traces(), set(&[4, 5]));
}

/// Guarantees, the decision rule: `and` needs all its policies; `not`
/// negates (at the top level it keeps what its policy does not match,
/// without vetoing anything); `drop` vetoes whatever else matched; a
/// trace no policy matches is dropped.
#[test]
fn composites_follow_the_documented_rule() {
    let errors_in = |t, service: &str| {
        vec![with(span(t, 1), |s| {
            s.status = Some(2);
            s.attributes.push(("service", service.to_string()));
        })]
    };
    let fine_in = |t, service: &str| {
        vec![with(span(t, 1), |s| {
            s.attributes.push(("service", service.to_string()))
        })]
    };
    let traces = [
        errors_in(1, "checkout"),
        errors_in(2, "search"),
        fine_in(3, "checkout"),
        fine_in(4, "health"),
    ];
    let error = json!({"type": "status_code", "status_codes": ["ERROR"]});
    let checkout = json!({"type": "string_attribute", "key": "service", "values": ["checkout"]});
    let health = json!({"type": "string_attribute", "key": "service", "values": ["health"]});

    let mut s = policies(json!([{"name": "a", "type": "and", "policies": [error, checkout]}]));
    assert_eq!(judge(&mut s, &traces), set(&[1]), "and");

    let mut s = policies(json!([{"name": "a", "type": "and", "policies": [
        error, {"type": "not", "policy": checkout}]}]));
    assert_eq!(judge(&mut s, &traces), set(&[2]), "not inside and");

    let mut s = policies(json!([
        {"name": "errors", "type": "status_code", "status_codes": ["ERROR"]},
        {"name": "not-health", "type": "not", "policy": health},
    ]));
    assert_eq!(
        judge(&mut s, &traces),
        set(&[1, 2, 3]),
        "top-level not is a plain negation"
    );

    let mut s = policies(json!([
        {"name": "all", "type": "always_sample"},
        {"name": "no-checkout-errors", "type": "drop", "policies": [error, checkout]},
    ]));
    assert_eq!(judge(&mut s, &traces), set(&[2, 3, 4]), "drop vetoes");

    let mut s =
        policies(json!([{"name": "errors", "type": "status_code", "status_codes": ["OK"]}]));
    assert_eq!(judge(&mut s, &traces), set(&[]), "no match, no keep");

    let names: Vec<String> = s.plan().policies.iter().map(|p| p.name.clone()).collect();
    assert_eq!(names, ["errors"]);
}

/// Guarantees: a trace is decided `decision_wait` after its *last* span
/// (stamped with the last tick's time), not its first: spans arriving
/// every 6 s keep a 10 s wait from expiring; then it is decided within a
/// tick of the wait.
#[test]
fn a_trace_waits_for_its_last_span() {
    let mut s = policies(json!([{"name": "all", "type": "always_sample"}]));
    let mut fake = Fake::new(1);
    tick(&mut s, &mut fake, T0);
    for n in 0..5u32 {
        feed(&mut s, &mut fake, &[span(7, n)]);
        tick(&mut s, &mut fake, T0 + u64::from(n + 1) * 6 * SECOND);
        assert!(
            fake.released.is_empty(),
            "still waiting after {} s",
            (n + 1) * 6
        );
    }
    // Last span stamped at T0 + 24 s: not at 33 s, but at 34 s.
    tick(&mut s, &mut fake, T0 + 33 * SECOND);
    assert!(fake.released.is_empty());
    tick(&mut s, &mut fake, T0 + 34 * SECOND);
    assert_eq!(fake.released.len(), 5, "the whole trace at once");
}

/// Guarantees: spans arriving after their trace was decided follow the
/// decision at once (passed on if kept, dropped if not) without being
/// held, and are counted as late; with `decision_cache = 0` they start a
/// new trace instead.
#[test]
fn late_spans_follow_the_cached_decision() {
    let config = |cache: usize| {
        sampler(
            json!({"decision_wait": "5s", "decision_cache": cache, "policies": [
            {"name": "errors", "type": "status_code", "status_codes": ["ERROR"]}]}),
        )
    };
    let mut s = config(1000);
    let mut fake = Fake::new(10);
    tick(&mut s, &mut fake, T0);
    feed(
        &mut s,
        &mut fake,
        &[with(span(1, 1), |x| x.status = Some(2)), span(2, 1)],
    );
    tick(&mut s, &mut fake, T0 + 5 * SECOND);
    assert_eq!(fake.out_traces(), set(&[1]));
    s.take_stats();

    feed(&mut s, &mut fake, &[span(1, 2), span(2, 2), span(1, 3)]);
    assert_eq!(fake.passed, [(1, 2), (1, 3)], "kept trace: passed at once");
    assert_eq!(fake.dropped, [(2, 2)], "dropped trace: dropped at once");
    assert_eq!((s.in_flight(), fake.bytes), (0, 0), "nothing held");
    let stats = s.take_stats();
    assert_eq!((stats.late_kept, stats.late_dropped), (2, 1));

    let mut s = config(0);
    let mut fake = Fake::new(10);
    tick(&mut s, &mut fake, T0);
    feed(&mut s, &mut fake, &[span(2, 1)]);
    tick(&mut s, &mut fake, T0 + 5 * SECOND);
    feed(&mut s, &mut fake, &[span(2, 2)]);
    assert_eq!(
        (s.in_flight(), fake.held.len()),
        (1, 1),
        "without a cache it is held again"
    );
}

/// Guarantees: the decision cache is bounded: past its size the oldest
/// decisions are forgotten.
#[test]
fn the_decision_cache_is_bounded() {
    let mut s = sampler(
        json!({"decision_wait": "1s", "decision_cache": 100, "policies": [
        {"name": "all", "type": "always_sample"}]}),
    );
    let traces: Vec<Vec<Span>> = (0..1_000u128).map(|t| vec![span(t, 1)]).collect();
    let kept = {
        let mut fake = Fake::new(1);
        tick(&mut s, &mut fake, T0);
        feed(&mut s, &mut fake, &traces.concat());
        tick(&mut s, &mut fake, T0 + SECOND);
        fake.out_traces().len()
    };
    assert_eq!(kept, 1_000);
    assert_eq!(s.cached_decisions(), 100);
}

/// Guarantees: with more traces in flight than `max_memory` holds, the
/// memory (host bytes plus bookkeeping) is at or under `max_memory`
/// after every call; the oldest traces are the ones decided early, and
/// they are counted; nothing is lost (every span is released or
/// discarded).
#[test]
fn the_byte_bound_decides_the_oldest_traces_early() {
    let mut s = sampler(
        json!({"decision_wait": "30s", "max_memory": "1MiB", "policies": [
        {"name": "all", "type": "always_sample"}]}),
    );
    let mut fake = Fake::new(1_000);
    tick(&mut s, &mut fake, T0);
    let mut spans_sent = 0;
    for batch in 0..40u128 {
        // 100 new traces of 3 spans per batch: 300 KB a batch.
        let spans: Vec<Span> = (0..100u128)
            .flat_map(|t| (1..=3).map(move |n| span(batch * 100 + t, n)))
            .collect();
        spans_sent += spans.len();
        feed(&mut s, &mut fake, &spans);
        assert!(s.memory() <= 1 << 20, "batch {batch}: {} bytes", s.memory());
        assert_eq!(
            s.held_bytes(),
            fake.bytes,
            "the plugin's count is the host's"
        );
    }
    let stats = s.take_stats();
    assert!(stats.early > 3_000, "{} decided early", stats.early);
    // The oldest first: the first traces are out, the last still held.
    let out = fake.out_traces();
    assert!(out.contains(&0) && out.contains(&1_000));
    assert!(!out.contains(&3_999) && fake.held.contains_key(&key(3_999)));
    assert_eq!(s.in_flight() as u64 * TRACE_BYTES, s.bookkeeping_bytes());
    tick(&mut s, &mut fake, T0 + 30 * SECOND);
    assert_eq!(fake.released.len() + fake.discarded.len(), spans_sent);
    assert_eq!(fake.bytes, 0);
}

/// Guarantees: one huge trace alone above `max_memory` is decided early
/// (whole, as far as it has arrived), and its later spans follow that
/// decision through the cache instead of being held again.
#[test]
fn one_huge_trace_cannot_exhaust_memory() {
    let mut s = sampler(
        json!({"decision_wait": "30s", "max_memory": "1MiB", "policies": [
        {"name": "all", "type": "always_sample"}]}),
    );
    let mut fake = Fake::new(1_000);
    tick(&mut s, &mut fake, T0);
    for b in 0..5u32 {
        let spans: Vec<Span> = (0..400).map(|n| span(42, b * 400 + n)).collect();
        feed(&mut s, &mut fake, &spans);
        assert!(s.memory() <= 1 << 20);
    }
    assert_eq!(
        fake.out().len(),
        2_000,
        "released early, then passed as late spans"
    );
    assert_eq!(s.take_stats().early, 1);
}

/// Guarantees: when the host refuses a hold (its own bound across
/// instances), the older traces are decided early and the hold is tried
/// again, so the call succeeds.
#[test]
fn a_refused_hold_sheds_and_retries() {
    let mut s = sampler(
        json!({"decision_wait": "30s", "max_memory": "64MiB", "policies": [
        {"name": "all", "type": "always_sample"}]}),
    );
    let mut fake = Fake::new(1_000);
    fake.refuse_above = Some(500_000);
    tick(&mut s, &mut fake, T0);
    for batch in 0..10u128 {
        let spans: Vec<Span> = (0..100u128).map(|t| span(batch * 100 + t, 1)).collect();
        feed(&mut s, &mut fake, &spans);
        assert!(fake.bytes <= 500_000);
    }
    assert!(s.take_stats().early > 0);
}

/// The scenario. Guarantees: with a status policy and a 10 %
/// probabilistic one, over 1,000 traces of 5 spans arriving interleaved
/// in several batches, every trace with one error span is kept whole
/// (all 5 spans), about 90 % of the healthy traces are dropped, and no
/// trace comes out in part.
#[test]
fn an_error_trace_is_kept_whole_while_most_healthy_ones_are_dropped() {
    let mut s = sampler(json!({"decision_wait": "10s", "policies": [
        {"name": "errors", "type": "status_code", "status_codes": ["ERROR"]},
        {"name": "ten-percent", "type": "probabilistic", "sampling_percentage": 10}]}));
    let mut fake = Fake::new(200);
    let trace = |i: u128| i.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835) | 1;
    let with_error = |i: u128| i % 100 == 7;
    tick(&mut s, &mut fake, T0);
    // Span n of every trace in batch n: each trace spans five batches.
    for n in 0..5u32 {
        let spans: Vec<Span> = (0..1_000u128)
            .map(|i| {
                let mut x = span(trace(i), n);
                if with_error(i) && n == 2 {
                    x.status = Some(2);
                }
                x
            })
            .collect();
        feed(&mut s, &mut fake, &spans);
        tick(&mut s, &mut fake, T0 + u64::from(n + 1) * SECOND);
    }
    tick(&mut s, &mut fake, T0 + 20 * SECOND);
    let mut per_trace: BTreeMap<u128, usize> = BTreeMap::new();
    for (t, _) in fake.out() {
        *per_trace.entry(t).or_default() += 1;
    }
    assert!(
        per_trace.values().all(|n| *n == 5),
        "every trace out is whole"
    );
    for i in (0..1_000u128).filter(|i| with_error(*i)) {
        assert_eq!(
            per_trace.get(&trace(i)),
            Some(&5),
            "error trace {i} kept whole"
        );
    }
    let healthy_kept = (0..1_000u128)
        .filter(|i| !with_error(*i) && per_trace.contains_key(&trace(*i)))
        .count();
    assert!(
        (60..140).contains(&healthy_kept),
        "{healthy_kept} of 990 healthy traces kept; about 99 expected"
    );
    let stats = s.take_stats();
    assert_eq!(stats.kept + stats.dropped, 1_000);
    assert_eq!(
        stats.policy[0], 10,
        "the error policy matched the 10 error traces"
    );
}
