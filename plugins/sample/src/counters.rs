//! The plugin's own metrics in Weir's `/metrics` (the host prefixes
//! `weir_plugin_` and adds the label `component`; Prometheus adds
//! `_total`):
//!
//! | counter | labels | counts |
//! |---|---|---|
//! | `sample_head_records` | `signal` (`spans`, `logs`), `decision` (`kept`, `dropped`, `invalid`, `no_trace_id`) | records head sampling decided on |
//! | `sample_traces` | `decision` (`kept`, `dropped`) | traces tail sampling decided on |
//! | `sample_decided_early` | | traces decided before `decision_wait` because `max_memory` was reached |
//! | `sample_late_spans` | `decision` (`kept`, `dropped`) | spans of an already decided trace, sent its way by the decision cache |
//! | `sample_policy_matched` | `policy` | decided traces each top-level policy matched |
//!
//! Counts are gathered during a call and added once at its end, only
//! when not zero.

use weir_plugin::services::{self, Label, Level};

use crate::head::Tally;

/// Head sampling decisions.
pub const HEAD_RECORDS: &str = "sample_head_records";
/// Tail sampling decisions.
pub const TRACES: &str = "sample_traces";
/// Early decisions.
pub const DECIDED_EARLY: &str = "sample_decided_early";
/// Late spans.
pub const LATE_SPANS: &str = "sample_late_spans";
/// Policy matches.
pub const POLICY_MATCHED: &str = "sample_policy_matched";

/// What tail sampling counted during one call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TailStats {
    /// Traces kept.
    pub kept: u64,
    /// Traces dropped.
    pub dropped: u64,
    /// Traces decided early.
    pub early: u64,
    /// Late spans of kept traces.
    pub late_kept: u64,
    /// Late spans of dropped traces.
    pub late_dropped: u64,
    /// Per top-level policy: traces it matched.
    pub policy: Vec<u64>,
}

impl TailStats {
    /// Adds `other` into `self`.
    pub fn absorb(&mut self, other: &TailStats) {
        self.kept += other.kept;
        self.dropped += other.dropped;
        self.early += other.early;
        self.late_kept += other.late_kept;
        self.late_dropped += other.late_dropped;
        if self.policy.len() < other.policy.len() {
            self.policy.resize(other.policy.len(), 0);
        }
        for (a, b) in self.policy.iter_mut().zip(&other.policy) {
            *a += b;
        }
    }
}

fn label(name: &str, value: &str) -> Label {
    Label {
        name: name.to_string(),
        value: value.to_string(),
    }
}

/// Adds `value` to counter `name` with `labels` when it is not zero. A
/// counter the host refuses is logged, not returned: the records are
/// handled already.
pub fn add(name: &'static str, value: u64, labels: &[Label]) {
    if value == 0 {
        return;
    }
    if let Err(e) = services::counter_add(name, value, labels) {
        services::log(
            Level::Warn,
            &format!("sample: counter `{name}` refused: {e:?}"),
        );
    }
}

/// Reports one batch of head sampling of `signal` (`spans` or `logs`).
pub fn head(signal: &str, t: &Tally) {
    for (decision, n) in [
        ("kept", t.kept),
        ("dropped", t.dropped),
        ("invalid", t.invalid),
        ("no_trace_id", t.no_trace_id),
    ] {
        add(
            HEAD_RECORDS,
            n,
            &[label("signal", signal), label("decision", decision)],
        );
    }
}

/// Reports what tail sampling counted, `names` being the top-level
/// policies'.
pub fn tail(s: &TailStats, names: &[String]) {
    add(TRACES, s.kept, &[label("decision", "kept")]);
    add(TRACES, s.dropped, &[label("decision", "dropped")]);
    add(DECIDED_EARLY, s.early, &[]);
    add(LATE_SPANS, s.late_kept, &[label("decision", "kept")]);
    add(LATE_SPANS, s.late_dropped, &[label("decision", "dropped")]);
    for (n, name) in s.policy.iter().zip(names) {
        add(POLICY_MATCHED, *n, &[label("policy", name)]);
    }
}
