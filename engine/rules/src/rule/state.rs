//! A rule's saved state, and the format of the state file: [`RulesState`]
//! holds the alert instances of each rule (Prometheus' `ALERTS_FOR_STATE`),
//! serialisable, e.g. as JSON in the store's state directory. State goes
//! back only to a rule of the very same definition ([`RuleId`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::config::RuleId;
use super::run::Rule;
use crate::alert::{Alert, AlertLifecycle};
use crate::time::UnixNanos;

/// The saved state of one rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleSnapshot {
    /// The rule's name (for people reading the file).
    pub name: String,
    /// The identity of the definition the state belongs to.
    pub id: RuleId,
    /// The alert instances.
    pub alerts: Vec<Alert>,
}

/// The saved state of a set of rules, serialisable (e.g. as JSON in the
/// store's state directory).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RulesState {
    /// The format version, [`RulesState::VERSION`].
    pub version: u32,
    /// One entry per rule.
    pub rules: Vec<RuleSnapshot>,
    /// The group's last evaluation time, when saved by a group: after a
    /// restart evaluation resumes after it, instead of evaluating an
    /// earlier time over buffers that no longer hold its data.
    #[serde(default)]
    pub last_evaluation: Option<UnixNanos>,
}

/// What [`RulesState::restore`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestoreReport {
    /// Rules that took their saved state.
    pub restored: Vec<String>,
    /// Saved states left unused: the rule is gone or its definition changed.
    pub discarded: Vec<String>,
}

impl RulesState {
    /// The current format version.
    pub const VERSION: u32 = 1;

    /// The state of `rules`.
    pub fn capture<'a>(rules: impl IntoIterator<Item = &'a Rule>) -> Self {
        RulesState {
            version: Self::VERSION,
            rules: rules.into_iter().map(Rule::snapshot).collect(),
            last_evaluation: None,
        }
    }

    /// Gives each rule the saved state of the same definition.
    pub fn restore<'a>(&self, rules: impl IntoIterator<Item = &'a mut Rule>) -> RestoreReport {
        let mut saved: BTreeMap<&RuleId, &RuleSnapshot> =
            self.rules.iter().map(|s| (&s.id, s)).collect();
        let mut report = RestoreReport::default();
        for rule in rules {
            if let Some(snapshot) = saved.remove(rule.id())
                && rule.restore(snapshot)
            {
                report.restored.push(rule.config().name.clone());
            }
        }
        report.discarded = saved.values().map(|s| s.name.clone()).collect();
        report
    }
}

impl Rule {
    /// The rule's saved state.
    pub fn snapshot(&self) -> RuleSnapshot {
        RuleSnapshot {
            name: self.config().name.clone(),
            id: self.id().clone(),
            alerts: self
                .lifecycle()
                .map(AlertLifecycle::snapshot)
                .unwrap_or_default(),
        }
    }

    /// Restores saved state if it belongs to this very definition; returns
    /// whether it did.
    pub fn restore(&mut self, snapshot: &RuleSnapshot) -> bool {
        if &snapshot.id != self.id() {
            return false;
        }
        if let Some(lifecycle) = self.lifecycle_mut() {
            lifecycle.restore(snapshot.alerts.clone());
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{AlertState, EventState};
    use crate::rule::RuleConfig;
    use crate::rule::tests::{error_rule, evaluate, group_of, rule, secs};
    use crate::window::tests::{S, logs};
    use weir_core::Signal;

    /// Scenario: restart, then a reload that changes one rule. Guarantees:
    /// the saved state (as JSON) goes back to the rule of the same
    /// definition, whose pending alert keeps its `for` clock and fires at
    /// the original time; the changed rule starts empty and is reported.
    #[tokio::test]
    async fn state_restores_to_unchanged_rules_only() {
        let mut group = group_of(error_rule());
        group
            .push(Signal::Logs, &logs(&[(100, "cart"), (101, "cart")]))
            .await
            .unwrap();
        group.advance_watermark(120 * S + 1);
        while let Some(t) = group.next_due() {
            evaluate(&mut group, t).await.unwrap();
        }
        assert_eq!(rule(&group).alerts()[0].state, AlertState::Pending);
        let json = serde_json::to_string(&RulesState::capture(group.rules())).unwrap();
        let saved: RulesState = serde_json::from_str(&json).unwrap();

        let mut same = group_of(error_rule());
        let changed_config = RuleConfig {
            for_duration: secs(60),
            ..error_rule()
        };
        assert_ne!(changed_config.id(), error_rule().id());
        let mut changed = group_of(changed_config);
        let report = saved.restore(same.rules_mut().iter_mut().chain(changed.rules_mut()));
        assert_eq!(report.restored, ["ServiceErrors"]);
        assert!(report.discarded.is_empty());
        assert!(rule(&changed).alerts().is_empty());
        assert_eq!(rule(&same).alerts()[0].active_at, 120 * S);

        // After the restart the data comes again (at-least-once replay) and
        // the alert fires at 150, 30s after its original active_at.
        same.push(
            Signal::Logs,
            &logs(&[(100, "cart"), (101, "cart"), (125, "cart")]),
        )
        .await
        .unwrap();
        same.advance_watermark(150 * S + 1);
        let t = same.next_due().unwrap();
        assert_eq!(t, 150 * S);
        let ev = evaluate(&mut same, t).await.unwrap();
        assert_eq!(ev.transitions[0].state, EventState::Firing);
        assert_eq!(ev.transitions[0].starts_at, 150 * S);

        let gone = RulesState::capture(changed.rules()).restore(same.rules_mut());
        assert_eq!(gone.discarded, ["ServiceErrors"]);
    }
}
