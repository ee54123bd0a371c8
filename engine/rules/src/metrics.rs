//! The `rules` processor's metrics (`weir_rule_*`), labelled by component:
//! evaluations, reloads, the event-time buffers and the panes.

use std::sync::Arc;

use metrics::{Counter, Gauge, Histogram, SharedString, Unit};
use weir_core::Signal;
use weir_core::metrics::{CounterDef, GaugeDef, HistogramDef};

const EVALUATIONS: CounterDef<2> = CounterDef {
    name: "weir_rule_evaluations_total",
    help: "Evaluations of a rule.",
    unit: Some(Unit::Count),
    labels: ["component", "rule"],
};

const EVALUATION_FAILURES: CounterDef<2> = CounterDef {
    name: "weir_rule_evaluation_failures_total",
    help: "Evaluations of a rule that failed (the next one tries again).",
    unit: Some(Unit::Count),
    labels: ["component", "rule"],
};

const GROUP_EVALUATION_SECONDS: HistogramDef<1> = HistogramDef {
    name: "weir_rule_group_evaluation_seconds",
    help: "How long one evaluation of every rule of the processor at one time took.",
    unit: Some(Unit::Seconds),
    labels: ["component"],
};

const RELOADS: CounterDef<2> = CounterDef {
    name: "weir_rule_reloads_total",
    help: "Reloads of the rules, by result (ok, invalid).",
    unit: Some(Unit::Count),
    labels: ["component", "result"],
};

const STATE_SAVE_FAILURES: CounterDef<1> = CounterDef {
    name: "weir_rule_state_save_failures_total",
    help: "Failed saves of the alert state file.",
    unit: Some(Unit::Count),
    labels: ["component"],
};

const IDLE_ADVANCES: CounterDef<1> = CounterDef {
    name: "weir_rule_idle_advances_total",
    help: "Times event time moved on with the clock because no input arrived for idle_timeout.",
    unit: Some(Unit::Count),
    labels: ["component"],
};

const PANE_BYTES: GaugeDef<1> = GaugeDef {
    name: "weir_rule_pane_bytes",
    help: "Bytes of the partial aggregates kept in the panes of the incremental rules.",
    unit: Some(Unit::Bytes),
    labels: ["component"],
};

const PENDING_BYTES: GaugeDef<1> = GaugeDef {
    name: "weir_rule_pending_bytes",
    help: "Bytes of the rows gathered for panes and not yet aggregated.",
    unit: Some(Unit::Bytes),
    labels: ["component"],
};

const INCREMENTAL: GaugeDef<2> = GaugeDef {
    name: "weir_rule_incremental",
    help: "1 when a rule is evaluated pane by pane, 0 when it rescans its window.",
    unit: None,
    labels: ["component", "rule"],
};

const BUFFER_ROWS: GaugeDef<2> = GaugeDef {
    name: "weir_rule_buffer_rows",
    help: "Rows buffered for the rules that rescan their window, by table.",
    unit: Some(Unit::Count),
    labels: ["component", "table"],
};

const BUFFER_BYTES: GaugeDef<2> = GaugeDef {
    name: "weir_rule_buffer_bytes",
    help: "Bytes buffered for the rules that rescan their window, by table.",
    unit: Some(Unit::Bytes),
    labels: ["component", "table"],
};

const LATE_RECORDS: CounterDef<2> = CounterDef {
    name: "weir_rule_late_records_total",
    help: "Records later than allowed_lateness, not folded in, by table.",
    unit: Some(Unit::Count),
    labels: ["component", "table"],
};

const REJECTED_RECORDS: CounterDef<2> = CounterDef {
    name: "weir_rule_rejected_records_total",
    help: "Records refused because the buffer was full, by table.",
    unit: Some(Unit::Count),
    labels: ["component", "table"],
};

const FUTURE_RECORDS: CounterDef<2> = CounterDef {
    name: "weir_rule_future_records_total",
    help: "Records stamped further ahead of the clock than max_future, dropped, by table.",
    unit: Some(Unit::Count),
    labels: ["component", "table"],
};

const SKIPPED_EVALUATIONS: CounterDef<1> = CounterDef {
    name: "weir_rule_skipped_evaluations_total",
    help: "Evaluation times skipped because every window between held no data.",
    unit: Some(Unit::Count),
    labels: ["component"],
};

/// Gives the recorder the help text of the `rules` processor's metrics.
pub fn describe() {
    EVALUATIONS.describe();
    EVALUATION_FAILURES.describe();
    GROUP_EVALUATION_SECONDS.describe();
    RELOADS.describe();
    STATE_SAVE_FAILURES.describe();
    IDLE_ADVANCES.describe();
    PANE_BYTES.describe();
    PENDING_BYTES.describe();
    INCREMENTAL.describe();
    BUFFER_ROWS.describe();
    BUFFER_BYTES.describe();
    LATE_RECORDS.describe();
    REJECTED_RECORDS.describe();
    FUTURE_RECORDS.describe();
    SKIPPED_EVALUATIONS.describe();
}

/// The metrics of one `rules` processor.
#[derive(Debug, Clone)]
pub(crate) struct RuleMetrics {
    component: Arc<str>,
}

impl RuleMetrics {
    /// The metrics of the processor named `component`.
    pub(crate) fn new(component: &str) -> Self {
        RuleMetrics {
            component: component.into(),
        }
    }

    /// `weir_rule_evaluations_total{component, rule}`.
    pub(crate) fn evaluations(&self, rule: &str) -> Counter {
        EVALUATIONS.with([self.name(), rule.to_string().into()])
    }

    /// `weir_rule_evaluation_failures_total{component, rule}`.
    pub(crate) fn evaluation_failures(&self, rule: &str) -> Counter {
        EVALUATION_FAILURES.with([self.name(), rule.to_string().into()])
    }

    /// `weir_rule_group_evaluation_seconds{component}`.
    pub(crate) fn group_evaluation_seconds(&self) -> Histogram {
        GROUP_EVALUATION_SECONDS.with([self.name()])
    }

    /// `weir_rule_reloads_total{component, result}`.
    pub(crate) fn reloads(&self, result: &'static str) -> Counter {
        RELOADS.with([self.name(), result.into()])
    }

    /// `weir_rule_state_save_failures_total{component}`.
    pub(crate) fn state_save_failures(&self) -> Counter {
        STATE_SAVE_FAILURES.with([self.name()])
    }

    /// `weir_rule_idle_advances_total{component}`.
    pub(crate) fn idle_advances(&self) -> Counter {
        IDLE_ADVANCES.with([self.name()])
    }

    /// `weir_rule_pane_bytes{component}`.
    pub(crate) fn pane_bytes(&self) -> Gauge {
        PANE_BYTES.with([self.name()])
    }

    /// `weir_rule_pending_bytes{component}`.
    pub(crate) fn pending_bytes(&self) -> Gauge {
        PENDING_BYTES.with([self.name()])
    }

    /// `weir_rule_incremental{component, rule}`.
    pub(crate) fn incremental(&self, rule: &str) -> Gauge {
        INCREMENTAL.with([self.name(), rule.to_string().into()])
    }

    /// `weir_rule_buffer_rows{component, table}`.
    pub(crate) fn buffer_rows(&self, table: Signal) -> Gauge {
        BUFFER_ROWS.with([self.name(), table.as_str().into()])
    }

    /// `weir_rule_buffer_bytes{component, table}`.
    pub(crate) fn buffer_bytes(&self, table: Signal) -> Gauge {
        BUFFER_BYTES.with([self.name(), table.as_str().into()])
    }

    /// `weir_rule_late_records_total{component, table}`.
    pub(crate) fn late_records(&self, table: Signal) -> Counter {
        LATE_RECORDS.with([self.name(), table.as_str().into()])
    }

    /// `weir_rule_rejected_records_total{component, table}`.
    pub(crate) fn rejected_records(&self, table: Signal) -> Counter {
        REJECTED_RECORDS.with([self.name(), table.as_str().into()])
    }

    /// `weir_rule_future_records_total{component, table}`.
    pub(crate) fn future_records(&self, table: Signal) -> Counter {
        FUTURE_RECORDS.with([self.name(), table.as_str().into()])
    }

    /// `weir_rule_skipped_evaluations_total{component}`.
    pub(crate) fn skipped_evaluations(&self) -> Counter {
        SKIPPED_EVALUATIONS.with([self.name()])
    }

    /// The `component` label's value, sharing the name.
    fn name(&self) -> SharedString {
        self.component.clone().into()
    }
}
