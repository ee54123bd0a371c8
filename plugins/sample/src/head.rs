//! Head sampling: each span or log record kept or dropped on its own, by
//! its trace's randomness against a threshold, so that every span of a
//! trace gets the same decision here, in SDKs and in collectors that
//! follow the same specification ([`crate::threshold`]).
//!
//! For one record ([`decide`]):
//!
//! 1. its upstream state is read: for spans the `ot` entry of
//!    `trace_state` (`th`, `rv`), for log records the attributes
//!    `sampling.threshold` and `sampling.randomness` (the Collector's);
//! 2. the randomness is `rv` when present, else the trace id's last 7
//!    bytes (for a log record without a trace id: see
//!    [`LogsFallback`]);
//! 3. a record with no randomness, a malformed `th` or `rv`, or an
//!    upstream `th` its randomness does not pass (it should not have been
//!    kept) is *invalid*: dropped with `fail_closed`, else passed on as is;
//! 4. at 100 % the record passes untouched; at 0 % it is dropped;
//! 5. the effective threshold is `max(upstream th, ours)` (equalizing) or
//!    the threshold of `upstream probability × ours` (proportional);
//! 6. kept iff randomness >= effective threshold; a kept record whose
//!    threshold changed gets it written (`ot=th:...` in its tracestate;
//!    attribute `sampling.threshold` on a log record).

use weir_plugin::Text;

use crate::config::{HeadPlan, LogsFallback, Mode};
use crate::threshold::{ParseError, Randomness, Threshold};
use crate::tracestate::{self, OtSampling};

/// What happens to one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Kept; with the threshold to write when it changed.
    Keep(Option<Threshold>),
    /// Dropped by the sampling decision.
    Drop,
    /// Its sampling state cannot be trusted.
    Invalid,
}

/// The decision on one record with `randomness` (`None` when it has
/// none) and the upstream sampling state `upstream`.
pub fn decide(
    plan: &HeadPlan,
    randomness: Option<Randomness>,
    upstream: Result<OtSampling, ParseError>,
) -> Outcome {
    let Ok(upstream) = upstream else {
        return Outcome::Invalid;
    };
    let Some(r) = upstream.randomness.or(randomness) else {
        return Outcome::Invalid;
    };
    if let Some(th) = upstream.threshold
        && !th.keeps(r)
    {
        return Outcome::Invalid;
    }
    if plan.probability >= 1.0 {
        return Outcome::Keep(None);
    }
    let Some(ours) = plan.threshold else {
        return Outcome::Drop;
    };
    let effective = match (plan.mode, upstream.threshold) {
        (_, None) => ours,
        (Mode::Equalizing, Some(th)) => th.max(ours),
        (Mode::Proportional, Some(th)) => match th.times(plan.probability, plan.precision) {
            Some(t) => t,
            // Below 2^-56: no threshold can say it; nothing is kept.
            None => return Outcome::Drop,
        },
    };
    if effective.keeps(r) {
        Outcome::Keep((Some(effective) != upstream.threshold).then_some(effective))
    } else {
        Outcome::Drop
    }
}

/// How many records went which way in one batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Kept by the decision (invalid ones passed on are not counted here).
    pub kept: u64,
    /// Dropped by the decision.
    pub dropped: u64,
    /// Invalid: dropped with `fail_closed`, passed on without.
    pub invalid: u64,
    /// Log records without a trace id passed or dropped by
    /// `logs_without_trace_id = "keep"` or `"drop"`.
    pub no_trace_id: u64,
}

/// What head sampling does to one batch.
#[derive(Debug, Clone, Default)]
pub struct Verdicts {
    /// `true` for the rows to drop.
    pub drop: Vec<bool>,
    /// For spans: the whole new `trace_state` column, when a threshold
    /// changed.
    pub trace_state: Option<Text>,
    /// For logs: `sampling.threshold` to set (`None` leaves a row alone).
    pub threshold_attribute: Option<Vec<Option<String>>>,
    /// For logs: `sampling.randomness` to set on hashed rows.
    pub randomness_attribute: Option<Vec<Option<String>>>,
    /// The counts.
    pub tally: Tally,
}

impl Verdicts {
    /// Whether any row is dropped.
    pub fn drops_any(&self) -> bool {
        self.drop.iter().any(|d| *d)
    }

    fn apply(&mut self, plan: &HeadPlan, row: usize, outcome: Outcome) -> Option<Threshold> {
        match outcome {
            Outcome::Keep(th) => {
                self.tally.kept += 1;
                th
            }
            Outcome::Drop => {
                self.tally.dropped += 1;
                self.drop[row] = true;
                None
            }
            Outcome::Invalid => {
                self.tally.invalid += 1;
                self.drop[row] = plan.fail_closed;
                None
            }
        }
    }
}

/// The randomness of `trace_id` (32 hex digits) without parsing all of
/// it: its last 14 digits; the all-zero id has none.
#[inline]
fn trace_randomness(trace_id: &str) -> Option<Randomness> {
    if trace_id.len() != 32 {
        return None;
    }
    let low = u64::from_str_radix(trace_id.get(18..)?, 16).ok()?;
    if low == 0 && trace_id.bytes().all(|b| b == b'0') {
        return None;
    }
    Randomness::new(low)
}

/// Head sampling of a batch of spans, given its `trace_id` and
/// `trace_state` columns.
pub fn spans(plan: &HeadPlan, trace_ids: &Text, trace_states: &Text) -> Verdicts {
    let rows = trace_ids.len();
    let mut v = Verdicts {
        drop: vec![false; rows],
        ..Verdicts::default()
    };
    let mut changed: Vec<(usize, Threshold)> = Vec::new();
    for row in 0..rows {
        let randomness = trace_ids.get(row).and_then(trace_randomness);
        let state = trace_states.get(row);
        let upstream = state.map_or(Ok(OtSampling::default()), tracestate::parse);
        if let Some(th) = v.apply(plan, row, decide(plan, randomness, upstream)) {
            changed.push((row, th));
        }
    }
    if !changed.is_empty() {
        let mut out = Text::with_capacity(rows, trace_states.as_bytes().len() + changed.len() * 16);
        let mut next = changed.iter().peekable();
        for row in 0..rows {
            let old = trace_states.get(row);
            match next.peek() {
                Some((r, th)) if *r == row => {
                    out.push(Some(&tracestate::with_threshold(old, *th)));
                    next.next();
                }
                _ => out.push(old),
            }
        }
        v.trace_state = Some(out);
    }
    v
}

/// What head sampling of logs reads from a batch of log records.
#[derive(Debug, Clone, Default)]
pub struct LogColumns {
    /// `trace_id`.
    pub trace_ids: Text,
    /// Attribute `sampling.threshold` of each record.
    pub threshold: Vec<Option<String>>,
    /// Attribute `sampling.randomness` of each record.
    pub randomness: Vec<Option<String>>,
    /// With `logs_without_trace_id = "hash"`: the hashed attribute's value
    /// (the record's, else the resource's).
    pub hashed: Option<Vec<Option<String>>>,
}

/// Head sampling of a batch of log records.
pub fn logs(plan: &HeadPlan, cols: &LogColumns) -> Verdicts {
    let rows = cols.trace_ids.len();
    let mut v = Verdicts {
        drop: vec![false; rows],
        ..Verdicts::default()
    };
    let mut thresholds: Vec<Option<String>> = vec![None; rows];
    let mut randomness_out: Vec<Option<String>> = vec![None; rows];
    let (mut any_th, mut any_rv) = (false, false);
    for row in 0..rows {
        let upstream = (|| {
            Ok(OtSampling {
                threshold: cols.threshold[row]
                    .as_deref()
                    .map(Threshold::parse)
                    .transpose()?,
                randomness: cols.randomness[row]
                    .as_deref()
                    .map(Randomness::parse)
                    .transpose()?,
            })
        })();
        let mut randomness = cols.trace_ids.get(row).and_then(trace_randomness);
        let mut hashed = false;
        let has_rv = matches!(
            upstream,
            Ok(OtSampling {
                randomness: Some(_),
                ..
            })
        );
        if randomness.is_none() && !has_rv {
            match plan.logs_without_trace_id {
                LogsFallback::Keep => {
                    v.tally.no_trace_id += 1;
                    continue;
                }
                LogsFallback::Drop => {
                    v.tally.no_trace_id += 1;
                    v.drop[row] = true;
                    continue;
                }
                LogsFallback::Hash => {
                    randomness = cols
                        .hashed
                        .as_ref()
                        .and_then(|h| h[row].as_deref())
                        .map(|value| Randomness::from_hash(value.as_bytes()));
                    hashed = randomness.is_some();
                }
            }
        }
        let outcome = decide(plan, randomness, upstream);
        if let Some(th) = v.apply(plan, row, outcome) {
            thresholds[row] = Some(th.to_string());
            any_th = true;
            if hashed && let Some(r) = randomness {
                randomness_out[row] = Some(r.to_string());
                any_rv = true;
            }
        }
    }
    v.threshold_attribute = any_th.then_some(thresholds);
    v.randomness_attribute = any_rv.then_some(randomness_out);
    v
}
