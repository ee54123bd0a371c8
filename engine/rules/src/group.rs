//! Rule groups: rules that share an interval and their input buffers.
//!
//! A [`RuleGroup`] holds one [`WindowBuffer`] per table any of its rules
//! reads, sized to the group's largest `window + query_offset`; a batch is
//! pushed once, whatever the number of rules. At each due time (the
//! multiples of the group's `every`) every rule is evaluated in turn over
//! its own window of the shared buffers, then the buffers are evicted
//! behind the largest window. The rules of a group have the same `every`,
//! `allowed_lateness` and buffer limits: they are the group's.

use std::time::Duration;

use arrow::record_batch::RecordBatch;
use weir_core::{Signal, SignalSet};

use crate::alert::AlertSettings;
use crate::error::{EvalError, RuleError, WindowError};
use crate::rule::{Evaluation, Rule, RuleConfig, next_due};
use crate::time::{UnixNanos, nanos};
use crate::window::{BufferLimits, BufferStats, Inputs};

/// A group of rules evaluated together. See the [module docs](self).
#[derive(Debug)]
pub struct RuleGroup {
    name: String,
    rules: Vec<Rule>,
    inputs: Inputs,
    every: i64,
    reach: i64,
    last_eval: Option<UnixNanos>,
}

/// The evaluation of one rule of a group.
#[derive(Debug)]
pub struct GroupEvaluation {
    /// The rule's name.
    pub rule: String,
    /// What it produced, or why it failed.
    pub result: Result<Evaluation, EvalError>,
}

impl RuleGroup {
    /// Validates the rules and builds the group. The first rule sets the
    /// group's `every`, `allowed_lateness` and buffer limits; a rule that
    /// differs is an error.
    pub fn new(
        name: impl Into<String>,
        configs: Vec<RuleConfig>,
        settings: &AlertSettings,
    ) -> Result<RuleGroup, RuleError> {
        let name = name.into();
        let Some(first) = configs.first() else {
            return Err(RuleError::Field {
                rule: name,
                field: "rules".into(),
                message: "is empty; a rule group holds at least one rule".into(),
            });
        };
        let (every, lateness, limits): (Duration, Duration, BufferLimits) =
            (first.every, first.allowed_lateness, first.buffer_limits);
        let mut rules = Vec::with_capacity(configs.len());
        let mut inputs = SignalSet::NONE;
        let mut reach = 0i64;
        for config in configs {
            let differs = |field: &str, theirs: String, ours: String| RuleError::Field {
                rule: config.name.clone(),
                field: field.into(),
                message: format!(
                    "is {theirs} but the other rules of group `{name}` have {ours}; rules of a \
                     group share it: set it once on the group"
                ),
            };
            if config.every != every {
                return Err(differs(
                    "every",
                    format!("{:?}", config.every),
                    format!("{every:?}"),
                ));
            }
            if config.allowed_lateness != lateness {
                return Err(differs(
                    "allowed_lateness",
                    format!("{:?}", config.allowed_lateness),
                    format!("{lateness:?}"),
                ));
            }
            if config.buffer_limits != limits {
                return Err(differs(
                    "buffer_limits",
                    format!("{:?}", config.buffer_limits),
                    format!("{limits:?}"),
                ));
            }
            if let Some(other) = rules
                .iter()
                .find(|r: &&Rule| r.config().name == config.name)
            {
                return Err(RuleError::Field {
                    rule: other.config().name.clone(),
                    field: "name".into(),
                    message: format!(
                        "is used twice in group `{name}`; give each rule its own name"
                    ),
                });
            }
            reach = reach.max(nanos(config.window).saturating_add(nanos(config.query_offset)));
            let rule = Rule::new(config, settings)?;
            inputs = inputs.union(rule.inputs());
            rules.push(rule);
        }
        Ok(RuleGroup {
            name,
            rules,
            inputs: Inputs::new(inputs, lateness, limits),
            every: nanos(every),
            reach,
            last_eval: None,
        })
    }

    /// The group's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The rules.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The rules, to restore their state.
    pub fn rules_mut(&mut self) -> &mut [Rule] {
        &mut self.rules
    }

    /// The tables the rules read.
    pub fn inputs(&self) -> SignalSet {
        self.inputs.buffers().iter().map(|b| b.signal()).collect()
    }

    /// The counters of the shared buffers.
    pub fn buffer_stats(&self) -> Vec<(Signal, BufferStats)> {
        self.inputs.stats()
    }

    /// Takes a batch of `signal`'s table, once for all the rules; a table no
    /// rule reads is ignored (0 rows taken).
    pub fn push(&mut self, signal: Signal, batch: &RecordBatch) -> Result<usize, WindowError> {
        self.push_bounded(signal, batch, None)
    }

    /// [`Self::push`], dropping rows stamped after `not_after` (see
    /// [`WindowBuffer::push_bounded`]).
    pub fn push_bounded(
        &mut self,
        signal: Signal,
        batch: &RecordBatch,
        not_after: Option<UnixNanos>,
    ) -> Result<usize, WindowError> {
        self.inputs.push_bounded(signal, batch, not_after)
    }

    /// Moves the watermark of every input to at least `to` (idle inputs).
    pub fn advance_watermark(&mut self, to: UnixNanos) {
        self.inputs.advance_watermark(to);
    }

    /// The least watermark of the inputs; `None` until each has one.
    pub fn watermark(&self) -> Option<UnixNanos> {
        self.inputs.watermark()
    }

    /// The greatest watermark of the inputs; `None` while none has one.
    pub fn newest_watermark(&self) -> Option<UnixNanos> {
        self.inputs.newest_watermark()
    }

    /// The time of the last evaluation, if any.
    pub fn last_evaluation(&self) -> Option<UnixNanos> {
        self.last_eval
    }

    /// Resumes after a restart: the next evaluation is the one after `t`.
    pub fn resume_after(&mut self, t: UnixNanos) {
        self.last_eval = Some(self.last_eval.map_or(t, |l| l.max(t)));
    }

    /// The next evaluation time at which every rule's window is complete.
    pub fn next_due(&self) -> Option<UnixNanos> {
        let watermark = self.watermark()?;
        // The rule with the smallest offset needs the most data.
        let offset = self
            .rules
            .iter()
            .map(|r| nanos(r.config().query_offset))
            .min()
            .unwrap_or(0);
        next_due(watermark, self.last_eval, self.every, offset)
    }

    /// Evaluates every due time in turn, oldest first.
    pub async fn evaluate_due(&mut self) -> Vec<(UnixNanos, Vec<GroupEvaluation>)> {
        let mut out = Vec::new();
        while let Some(t) = self.next_due() {
            out.push((t, self.evaluate(t).await));
        }
        out
    }

    /// Evaluates every rule at `t`, in order, then evicts the rows no later
    /// evaluation needs.
    pub async fn evaluate(&mut self, t: UnixNanos) -> Vec<GroupEvaluation> {
        let mut out = Vec::with_capacity(self.rules.len());
        for rule in &mut self.rules {
            out.push(GroupEvaluation {
                rule: rule.config().name.clone(),
                result: rule.evaluate_over(t, self.inputs.buffers()).await,
            });
        }
        self.last_eval = Some(t);
        // Pane-by-pane rules need only the rows of panes still to come.
        let reach = self
            .rules
            .iter()
            .map(Rule::reach)
            .max()
            .unwrap_or(self.reach);
        let horizon = t.saturating_add(self.every).saturating_sub(reach);
        self.inputs.evict_before(horizon);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::EventState;
    use crate::rule::RulesState;
    use crate::window::tests::{S, logs};

    fn rules() -> Vec<RuleConfig> {
        vec![
            RuleConfig {
                window: Duration::from_secs(60),
                every: Duration::from_secs(30),
                ..RuleConfig::alert(
                    "Errors",
                    "SELECT service_name, count(*) AS value FROM logs GROUP BY service_name \
                     HAVING count(*) >= 2",
                )
            },
            RuleConfig {
                window: Duration::from_secs(120),
                every: Duration::from_secs(30),
                ..RuleConfig::record(
                    "logs:count2m",
                    "SELECT service_name, count(*) AS value FROM logs GROUP BY service_name",
                )
            },
        ]
    }

    /// Scenario: an alert rule over 1m and a recording rule over 2m in one
    /// group. Guarantees: a batch is buffered once for both; each rule sees
    /// its own window; rows are freed once every rule has aggregated them
    /// into its panes; state capture works over the group's rules.
    #[tokio::test]
    async fn shares_buffers_and_keeps_the_largest_window() {
        let mut group = RuleGroup::new("g", rules(), &AlertSettings::default()).unwrap();
        assert_eq!(group.inputs(), SignalSet::only(Signal::Logs));
        group.push(Signal::Logs, &logs(&[(10, "a")])).unwrap();
        group
            .push(Signal::Logs, &logs(&[(100, "a"), (110, "a")]))
            .unwrap();
        group.advance_watermark(120 * S);
        let mut due = group.evaluate_due().await;
        assert_eq!(due.len(), 1);
        let (t, results) = due.remove(0);
        assert_eq!(t, 120 * S);
        assert_eq!(group.buffer_stats()[0].1.accepted_rows, 3);
        let alert = results[0].result.as_ref().unwrap();
        assert_eq!(alert.transitions[0].state, EventState::Firing);
        assert_eq!(alert.rows, 1, "the 1m window [60, 120) holds 2 rows of `a`");
        let recorded = results[1].result.as_ref().unwrap();
        let batch = recorded.recorded.as_ref().unwrap();
        let value = batch.column_by_name("value").unwrap();
        let value = arrow::array::AsArray::as_primitive::<arrow::datatypes::Float64Type>(value);
        assert_eq!(value.value(0), 3.0, "the 2m window [0, 120) holds all 3");
        // Both rules run pane by pane: their partial states stay, the rows
        // go once aggregated (tick 150 needs only the pane [120, 150)).
        assert!(
            group
                .rules()
                .iter()
                .all(|r| r.is_incremental() == Some(true))
        );
        assert_eq!(group.buffer_stats()[0].1.rows, 0);
        assert!(group.rules()[1].pane_bytes() > 0);
        assert_eq!(group.next_due(), None);
        let state = RulesState::capture(group.rules());
        assert_eq!(state.rules.len(), 2);
        let report = state.restore(group.rules_mut());
        assert_eq!(report.restored, ["Errors", "logs:count2m"]);
    }

    /// Scenario: ten minutes of logs from three services, pushed in 20 s
    /// batches; each aggregate in two rules, one of the incremental shape
    /// and one that reads through `ORDER BY ... LIMIT` (not incremental),
    /// evaluated every 30 s over 2 minutes.
    /// Guarantees: pane-by-pane evaluation gives the same series as
    /// rescanning the window, at every evaluation and for count, avg, min,
    /// max, count distinct, approximate percentiles and last_value; the
    /// incremental rules are found incremental and the others not.
    #[tokio::test]
    async fn panes_give_the_same_results_as_rescanning() {
        let aggregates = [
            "CAST(count(*) AS DOUBLE)",
            "avg(CAST(time AS BIGINT) / 1e9)",
            "max(CAST(time AS BIGINT) / 1e9) - min(CAST(time AS BIGINT) / 1e9)",
            "CAST(count(DISTINCT CAST(time AS BIGINT) % 5) AS DOUBLE)",
            "approx_percentile_cont(CAST(time AS BIGINT) / 1e9, 0.9)",
            "last_value(CAST(time AS BIGINT) / 1e9 ORDER BY time)",
        ];
        let mut configs = Vec::new();
        for (i, agg) in aggregates.iter().enumerate() {
            for (kind, from) in [
                ("inc", "logs"),
                (
                    "scan",
                    "(SELECT * FROM logs ORDER BY time LIMIT 1000000000)",
                ),
            ] {
                configs.push(RuleConfig {
                    window: Duration::from_secs(120),
                    every: Duration::from_secs(30),
                    ..RuleConfig::record(
                        format!("r{i}:{kind}"),
                        format!(
                            "SELECT service_name, {agg} AS value FROM {from} \
                             GROUP BY service_name HAVING count(*) > 3"
                        ),
                    )
                });
            }
        }
        let mut group = RuleGroup::new("g", configs, &AlertSettings::default()).unwrap();
        let mut evaluations = 0;
        for batch_start in (0..600).step_by(20) {
            let records: Vec<(i64, &str)> = (batch_start..batch_start + 20)
                .step_by(3)
                .flat_map(|s| {
                    let mut r = vec![(s, if s % 2 == 0 { "a" } else { "b" })];
                    if s % 7 == 0 {
                        r.push((s, "c"));
                    }
                    r
                })
                .collect();
            group.push(Signal::Logs, &logs(&records)).unwrap();
            for (t, results) in group.evaluate_due().await {
                evaluations += 1;
                for pair in results.chunks(2) {
                    let sorted = |i: usize| {
                        let mut s = pair[i].result.as_ref().unwrap().samples.clone();
                        s.sort_by(|a, b| a.labels.cmp(&b.labels));
                        s
                    };
                    let (inc, scan) = (sorted(0), sorted(1));
                    assert_eq!(inc.len(), scan.len(), "{} at {t}", pair[0].rule);
                    for (a, b) in inc.iter().zip(&scan) {
                        assert_eq!(a.labels, b.labels, "{} at {t}", pair[0].rule);
                        let close = (a.value - b.value).abs() <= 1e-9 * a.value.abs().max(1.0);
                        assert!(close, "{} at {t}: {} vs {}", pair[0].rule, a.value, b.value);
                    }
                }
            }
        }
        assert!(evaluations >= 18, "{evaluations}");
        for (i, rule) in group.rules().iter().enumerate() {
            let incremental = i % 2 == 0;
            assert_eq!(
                rule.is_incremental(),
                Some(incremental),
                "{}",
                rule.config().name
            );
        }
    }

    /// Guarantees: a group (and so a rule) can move into a tokio task and
    /// be evaluated there, as the runtime will run it.
    #[tokio::test]
    async fn runs_in_a_tokio_task() {
        let mut group = RuleGroup::new("g", rules(), &AlertSettings::default()).unwrap();
        group
            .push(Signal::Logs, &logs(&[(100, "a"), (110, "a")]))
            .unwrap();
        let task = tokio::spawn(async move {
            group.advance_watermark(120 * S);
            group.evaluate_due().await
        });
        let due = task.await.unwrap();
        assert_eq!(due.len(), 1);
        assert!(due[0].1.iter().all(|e| e.result.is_ok()));
    }

    /// Guarantees: rules of a group must agree on the shared settings and
    /// have distinct names; the error names the rule and says what to do.
    #[test]
    fn rules_must_agree_on_shared_settings() {
        let mut configs = rules();
        configs[1].every = Duration::from_secs(60);
        let err = RuleGroup::new("g", configs, &AlertSettings::default()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("rule `logs:count2m`: `every` is 60s but"),
            "{err}"
        );
        let mut configs = rules();
        configs[1] = configs[0].clone();
        let err = RuleGroup::new("g", configs, &AlertSettings::default()).unwrap_err();
        assert!(err.to_string().contains("used twice"), "{err}");
        let err = RuleGroup::new("g", vec![], &AlertSettings::default()).unwrap_err();
        assert!(err.to_string().contains("at least one rule"), "{err}");
    }
}
