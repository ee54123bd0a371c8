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
        let horizon = t.saturating_add(self.every).saturating_sub(self.reach);
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
    /// its own window; rows stay until the largest window no longer needs
    /// them; state capture works over the group's rules.
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
        // Next tick 150 needs [30, 150): the batch ending at 10 is gone, the
        // other stays.
        assert_eq!(group.buffer_stats()[0].1.rows, 2);
        assert_eq!(group.next_due(), None);
        let state = RulesState::capture(group.rules());
        assert_eq!(state.rules.len(), 2);
        let report = state.restore(group.rules_mut());
        assert_eq!(report.restored, ["Errors", "logs:count2m"]);
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
