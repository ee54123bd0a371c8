//! Head sampling: the effective threshold with and without an upstream
//! `th`, `rv` before the trace id, invalid state and `fail_closed`, the
//! tracestate written, the share kept; log records through the SDK's
//! harness, by trace id and without one.

use serde_json::{Value, json};
use weir_plugin::{Text, harness};

use crate::config::{HeadPlan, Plan};
use crate::head::{self, Outcome};
use crate::threshold::{Randomness, Threshold};
use crate::tracestate::OtSampling;
use crate::{LOG_RANDOMNESS, LOG_THRESHOLD, Sample};

fn plan(config: Value) -> HeadPlan {
    Plan::from_json(&json!({ "head": config }).to_string())
        .unwrap_or_else(|e| panic!("{config}: {e}"))
        .head
        .unwrap_or_else(|| panic!("a head plan"))
}

fn th(text: &str) -> Threshold {
    Threshold::parse(text).unwrap_or_else(|e| panic!("{e}"))
}

fn r(v: u64) -> Option<Randomness> {
    Randomness::new(v)
}

fn up(threshold: Option<&str>, rv: Option<&str>) -> OtSampling {
    OtSampling {
        threshold: threshold.map(th),
        randomness: rv.map(|v| Randomness::parse(v).unwrap_or_else(|e| panic!("{e}"))),
    }
}

/// A deterministic stream of trace ids (xorshift), as hex.
fn trace_ids(n: usize, seed: u64) -> Vec<String> {
    let mut s = seed | 1;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    (0..n)
        .map(|_| format!("{:016x}{:016x}", next(), next()))
        .collect()
}

/// Guarantees (equalizing, the default): an upstream `th` above ours
/// stands (the probability is never raised) and is not rewritten; one
/// below ours is raised to ours and written; no upstream `th` gets ours.
#[test]
fn equalizing_takes_the_larger_threshold() {
    let p = plan(json!({"sampling_percentage": 25}));
    // Upstream 1/16 (th:f) is stricter than 25 % (th:c): it decides.
    assert_eq!(
        head::decide(&p, r(0xf8000000000000), Ok(up(Some("f"), None))),
        Outcome::Keep(None)
    );
    // Upstream 50 %: raised to th:c, kept above it, dropped below.
    assert_eq!(
        head::decide(&p, r(0xd0000000000000), Ok(up(Some("8"), None))),
        Outcome::Keep(Some(th("c")))
    );
    assert_eq!(
        head::decide(&p, r(0x90000000000000), Ok(up(Some("8"), None))),
        Outcome::Drop
    );
    // None upstream.
    assert_eq!(
        head::decide(&p, r(0xc0000000000000), Ok(OtSampling::default())),
        Outcome::Keep(Some(th("c")))
    );
    assert_eq!(
        head::decide(&p, r(0xbfffffffffffff), Ok(OtSampling::default())),
        Outcome::Drop
    );
}

/// Guarantees (proportional): the probability is the upstream one times
/// ours, so 50 % after 50 % is `th:c`, and 25 % after nothing is `th:c`.
#[test]
fn proportional_multiplies_the_probabilities() {
    let p = plan(json!({"sampling_percentage": 50, "mode": "proportional"}));
    assert_eq!(
        head::decide(&p, r(0xc0000000000000), Ok(up(Some("8"), None))),
        Outcome::Keep(Some(th("c")))
    );
    assert_eq!(
        head::decide(&p, r(0xb0000000000000), Ok(up(Some("8"), None))),
        Outcome::Drop
    );
    assert_eq!(
        head::decide(&p, r(0x80000000000000), Ok(OtSampling::default())),
        Outcome::Keep(Some(th("8")))
    );
}

/// Guarantees: `rv` takes precedence over the trace id's randomness; an
/// upstream `th` the randomness does not pass, a malformed state and no
/// randomness at all are invalid; 100 % passes untouched, 0 % drops.
#[test]
fn rv_first_and_untrustworthy_state_is_invalid() {
    let p = plan(json!({"sampling_percentage": 50}));
    // The trace id says drop (0x10...), rv says keep.
    assert_eq!(
        head::decide(
            &p,
            r(0x10000000000000),
            Ok(up(None, Some("f0000000000000")))
        ),
        Outcome::Keep(Some(th("8")))
    );
    assert_eq!(
        head::decide(
            &p,
            r(0xf0000000000000),
            Ok(up(None, Some("10000000000000")))
        ),
        Outcome::Drop
    );
    // Sampled upstream at th:c although its randomness is below it.
    assert_eq!(
        head::decide(&p, r(0x90000000000000), Ok(up(Some("c"), None))),
        Outcome::Invalid
    );
    assert_eq!(
        head::decide(&p, None, Ok(OtSampling::default())),
        Outcome::Invalid
    );
    let all = plan(json!({"sampling_percentage": 100}));
    assert_eq!(
        head::decide(&all, r(0), Ok(up(Some("8"), None))),
        Outcome::Invalid
    );
    assert_eq!(
        head::decide(&all, r(0x90000000000000), Ok(up(Some("8"), None))),
        Outcome::Keep(None)
    );
    let none = plan(json!({"sampling_percentage": 0}));
    assert_eq!(
        head::decide(&none, r(0xffffffffffffff), Ok(OtSampling::default())),
        Outcome::Drop
    );
}

/// Guarantees: over a batch of spans, kept spans get `ot=th:c` written
/// into their tracestate (other entries kept), spans that already carry
/// it are not rewritten, an invalid span is dropped with `fail_closed`
/// (the default) and passed on without.
#[test]
fn spans_get_their_tracestate_written_and_invalid_ones_follow_fail_closed() {
    let ids: Text = [
        Some("0000000000000000ffffffffffffffff"), // kept
        Some("00000000000000000000000000000001"), // dropped
        Some("0000000000000000ffffffffffffffff"), // kept, tracestate kept as is
        Some("00000000000000000000000000000001"), // invalid: th:8 but low randomness
    ]
    .into_iter()
    .collect();
    let states: Text = [None, None, Some("ot=th:c,v=1"), Some("ot=th:8")]
        .into_iter()
        .collect();
    let v = head::spans(&plan(json!({"sampling_percentage": 25})), &ids, &states);
    assert_eq!(v.drop, [false, true, false, true]);
    let written: Vec<Option<&str>> = v
        .trace_state
        .as_ref()
        .map(|t| t.iter().collect())
        .unwrap_or_default();
    assert_eq!(
        written,
        [Some("ot=th:c"), None, Some("ot=th:c,v=1"), Some("ot=th:8")]
    );
    assert_eq!((v.tally.kept, v.tally.dropped, v.tally.invalid), (2, 1, 1));
    let open = head::spans(
        &plan(json!({"sampling_percentage": 25, "fail_closed": false})),
        &ids,
        &states,
    );
    assert_eq!(open.drop, [false, true, false, false]);
}

/// Guarantees: over 20,000 random trace ids, 10 % keeps close to 10 %
/// and 25 % close to 25 %, and every trace kept at 10 % is kept at 25 %
/// (consistency: a lower probability keeps a subset).
#[test]
fn shares_kept_are_right_and_consistent() {
    let ids: Text = trace_ids(20_000, 7)
        .iter()
        .map(|s| Some(s.as_str()))
        .collect();
    let states: Text = (0..20_000).map(|_| None).collect();
    let ten = head::spans(&plan(json!({"sampling_percentage": 10})), &ids, &states);
    let quarter = head::spans(&plan(json!({"sampling_percentage": 25})), &ids, &states);
    let kept = |d: &[bool]| d.iter().filter(|x| !**x).count();
    assert!(
        (1_800..2_200).contains(&kept(&ten.drop)),
        "{}",
        kept(&ten.drop)
    );
    assert!(
        (4_700..5_300).contains(&kept(&quarter.drop)),
        "{}",
        kept(&quarter.drop)
    );
    for (a, b) in ten.drop.iter().zip(&quarter.drop) {
        assert!(*a || !*b, "kept at 10 % but dropped at 25 %");
    }
}

fn log(trace_id: Option<&str>, attrs: &[(&str, &str)]) -> Value {
    let mut record = json!({
        "body": {"stringValue": "x"},
        "attributes": attrs.iter().map(|(k, v)| json!({"key": k, "value": {"stringValue": v}})).collect::<Vec<_>>(),
    });
    if let Some(id) = trace_id {
        record["traceId"] = json!(id);
    }
    record
}

/// Attribute `key` of every row of a harness table.
fn attr(table: &harness::Table, key: &str) -> Option<Vec<Option<String>>> {
    match table.column("attributes").ok()? {
        harness::Column::Attributes(rows) => Some(
            rows.iter()
                .map(|e| e.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()))
                .collect(),
        ),
        _ => panic!("attributes is a map"),
    }
}

fn run_logs(config: Value, records: Vec<Value>) -> harness::Output {
    let request = json!({"resourceLogs": [{"scopeLogs": [{"logRecords": records}]}]});
    harness::run::<Sample>(&config.to_string(), &request.to_string())
        .unwrap_or_else(|e| panic!("{config}: {e:?}"))
}

/// Guarantees: log records with a trace id are sampled exactly as spans
/// of that trace (same randomness, same threshold) and get
/// `sampling.threshold`; records without one are kept by default.
#[test]
fn logs_follow_their_trace_id() {
    let out = run_logs(
        json!({"head": {"sampling_percentage": 25}}),
        vec![
            log(Some("0000000000000000ffffffffffffffff"), &[("n", "kept")]),
            log(
                Some("00000000000000000000000000000001"),
                &[("n", "dropped")],
            ),
            log(None, &[("n", "no trace")]),
        ],
    );
    assert_eq!(
        attr(&out.table, "n"),
        Some(vec![Some("kept".into()), Some("no trace".into())])
    );
    assert_eq!(
        attr(&out.table, LOG_THRESHOLD),
        Some(vec![Some("c".into()), None])
    );
}

/// Guarantees: `logs_without_trace_id = "drop"` drops records without a
/// trace id; `"hash"` samples them by the attribute's hash, the same
/// value always the same way, and records the randomness it used.
#[test]
fn logs_without_trace_id_are_dropped_or_hashed_as_configured() {
    let dropped = run_logs(
        json!({"head": {"sampling_percentage": 50, "logs_without_trace_id": "drop"}}),
        vec![log(None, &[("n", "a")])],
    );
    assert_eq!(dropped.table.num_rows(), 0);

    let config = json!({"head": {"sampling_percentage": 50, "logs_without_trace_id": "hash",
                                 "logs_hash_attribute": "record.id"}});
    let records: Vec<Value> = (0..400)
        .map(|i| log(None, &[("record.id", &format!("r-{}", i % 200))]))
        .collect();
    let out = run_logs(config, records);
    let ids = attr(&out.table, "record.id").unwrap_or_default();
    // Each id appears twice in the input: kept twice or not at all.
    for id in &ids {
        assert_eq!(ids.iter().filter(|x| *x == id).count(), 2, "{id:?}");
    }
    assert!((140..260).contains(&ids.len()), "{} of 400 kept", ids.len());
    let rv = attr(&out.table, LOG_RANDOMNESS).unwrap_or_default();
    assert!(
        rv.iter()
            .all(|v| v.as_deref().is_some_and(|v| v.len() == 14))
    );
}
