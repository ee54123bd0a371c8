//! What the rules are doing, for Weir's API: each group's rules with their
//! health and their active alerts, in the JSON of Prometheus'
//! `/api/v1/rules` and `/api/v1/alerts`, and the page an alert's
//! `generatorURL` points at.
//!
//! A [`RulesProcessor`](crate::RulesProcessor) publishes its
//! [`GroupStatus`] into a [`RulesStatus`] when it starts, after each
//! evaluation and after a reload; the API reads copies.
//!
//! Where the JSON differs from Prometheus': times (`lastEvaluation`,
//! `activeAt`) are event time, as every time of the rules is; a rule also
//! tells its `window` (seconds), whether it is evaluated pane by pane
//! (`incremental`) and, while its windows are partial after a reload,
//! from when they are whole (`windowCompleteFrom`); `file` is the `rules`
//! processor's name.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use serde::Serialize;

use crate::alert::{Alert, AlertState};
use crate::group::RuleGroup;
use crate::rule::{Rule, RuleKind};
use crate::template::format_value;
use crate::time::{UnixNanos, rfc3339};

/// Prometheus' zero time, written for "never".
const NEVER: &str = "0001-01-01T00:00:00Z";

/// A rules processor's status, shared with the API. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct RulesStatus(Arc<RwLock<GroupStatus>>);

impl RulesStatus {
    /// A copy of the status as last published.
    pub fn get(&self) -> GroupStatus {
        self.0.read().clone()
    }

    /// Replaces the status with `group`'s, whose last evaluation of every
    /// rule took `took` (wall clock), if it was evaluated.
    pub fn publish(&self, group: &RuleGroup, took: Option<Duration>) {
        *self.0.write() = GroupStatus::of(group, took);
    }
}

/// One group of rules (a `rules` processor), as Prometheus' `RuleGroup`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupStatus {
    /// The group's name: the `rules` processor's.
    pub name: String,
    /// Where the rules are defined: the `rules` processor's name.
    pub file: String,
    /// The rules, in the order they are defined.
    pub rules: Vec<RuleStatus>,
    /// The evaluation interval, in seconds.
    pub interval: f64,
    /// Prometheus' alert and series limit: Weir has none (0).
    pub limit: u64,
    /// How long the last evaluation of the whole group took, in seconds.
    pub evaluation_time: f64,
    /// The last evaluation time (event time, RFC 3339), or Prometheus'
    /// zero time.
    pub last_evaluation: String,
}

/// One rule, as Prometheus' `AlertingRule` or `RecordingRule`: the fields
/// of an alert rule only are absent from a recording rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleStatus {
    /// `firing`, `pending` or `inactive`: the most urgent of its alerts'.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<&'static str>,
    /// The rule's name (`alert` or `record`).
    pub name: String,
    /// The SQL.
    pub query: String,
    /// `for`, in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<f64>,
    /// `keep_firing_for`, in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_firing_for: Option<f64>,
    /// The labels the rule adds.
    pub labels: BTreeMap<String, String>,
    /// The annotations' templates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// The pending and firing alerts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alerts: Option<Vec<AlertStatus>>,
    /// `ok`, `err` (the last evaluation failed) or `unknown` (none yet).
    pub health: &'static str,
    /// Why the last evaluation failed.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub last_error: String,
    /// How long the last evaluation took, in seconds.
    pub evaluation_time: f64,
    /// The last evaluation time (event time, RFC 3339), or Prometheus'
    /// zero time.
    pub last_evaluation: String,
    /// `alerting` or `recording`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Weir: how much event time the query sees, in seconds.
    pub window: f64,
    /// Weir: whether the rule is evaluated pane by pane.
    pub incremental: bool,
    /// Weir: while the rule's windows are partial (a reload added or
    /// changed it when the rows its windows reach back to were no longer
    /// held), the first evaluation time (event time, RFC 3339) whose window
    /// is whole.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_complete_from: Option<String>,
}

/// One active alert, as Prometheus' `Alert`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertStatus {
    /// The identifying labels, `alertname` included.
    pub labels: BTreeMap<String, String>,
    /// The annotations as last rendered.
    pub annotations: BTreeMap<String, String>,
    /// `pending` or `firing`.
    pub state: &'static str,
    /// When it became pending (event time, RFC 3339).
    pub active_at: String,
    /// Since when it has been kept firing without being in the result.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_firing_since: Option<String>,
    /// The value at the last evaluation that returned it.
    pub value: String,
}

impl GroupStatus {
    /// The status of `group` now; `took` is how long its last evaluation
    /// took, if known.
    pub fn of(group: &RuleGroup, took: Option<Duration>) -> GroupStatus {
        let rules: Vec<RuleStatus> = group.rules().iter().map(RuleStatus::of).collect();
        let interval = group
            .rules()
            .first()
            .map(|r| r.config().every.as_secs_f64())
            .unwrap_or_default();
        GroupStatus {
            name: group.name().to_string(),
            file: group.name().to_string(),
            rules,
            interval,
            limit: 0,
            evaluation_time: took.map(|d| d.as_secs_f64()).unwrap_or_default(),
            last_evaluation: time_text(group.last_evaluation()),
        }
    }
}

impl RuleStatus {
    /// The status of `rule` now.
    pub fn of(rule: &Rule) -> RuleStatus {
        let config = rule.config();
        let run = rule.last_run();
        let (health, last_error) = match run {
            None => ("unknown", String::new()),
            Some(run) => match &run.error {
                None => ("ok", String::new()),
                Some(e) => ("err", e.clone()),
            },
        };
        let alert = config.kind == RuleKind::Alert;
        let alerts: Vec<AlertStatus> = rule
            .alerts()
            .into_iter()
            .filter_map(AlertStatus::of)
            .collect();
        let state = if alerts.iter().any(|a| a.state == "firing") {
            "firing"
        } else if alerts.is_empty() {
            "inactive"
        } else {
            "pending"
        };
        RuleStatus {
            state: alert.then_some(state),
            name: config.name.clone(),
            query: config.sql.clone(),
            duration: alert.then_some(config.for_duration.as_secs_f64()),
            keep_firing_for: alert.then_some(config.keep_firing_for.as_secs_f64()),
            labels: config.labels.clone(),
            annotations: alert.then(|| config.annotations.clone()),
            alerts: alert.then_some(alerts),
            health,
            last_error,
            evaluation_time: run.map(|r| r.took.as_secs_f64()).unwrap_or_default(),
            last_evaluation: time_text(run.map(|r| r.at)),
            kind: if alert { "alerting" } else { "recording" },
            window: config.window.as_secs_f64(),
            incremental: rule.is_incremental(),
            window_complete_from: rule
                .complete_from()
                .filter(|&from| run.is_none_or(|r| r.at < from))
                .map(rfc3339),
        }
    }
}

impl AlertStatus {
    /// `alert` as the API shows it; `None` for a resolved one (Prometheus
    /// lists only active alerts).
    pub fn of(alert: &Alert) -> Option<AlertStatus> {
        let state = match alert.state {
            AlertState::Inactive => return None,
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
        };
        Some(AlertStatus {
            labels: alert.labels.clone(),
            annotations: alert.annotations.clone(),
            state,
            active_at: rfc3339(alert.active_at),
            keep_firing_since: alert.keep_firing_since.map(rfc3339),
            value: format_value(alert.value),
        })
    }
}

fn time_text(t: Option<UnixNanos>) -> String {
    t.map(rfc3339).unwrap_or_else(|| NEVER.to_string())
}

/// Which rules a `/api/v1/rules` request asks for: Prometheus' `type`
/// (`alert` or `record`), `rule_name[]` and `rule_group[]` parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleFilter {
    /// Only alert rules (`Some(Alert)`) or only recording rules.
    pub kind: Option<RuleKind>,
    /// Only rules of these names (all when empty).
    pub names: Vec<String>,
    /// Only groups of these names (all when empty).
    pub groups: Vec<String>,
}

impl RuleFilter {
    /// Reads the filter from a URL query string; an unknown `type` is an
    /// error naming the values allowed.
    pub fn parse(query: &str) -> Result<RuleFilter, String> {
        let mut filter = RuleFilter::default();
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            match &*key {
                "type" => {
                    filter.kind = match &*value {
                        "alert" => Some(RuleKind::Alert),
                        "record" => Some(RuleKind::Record),
                        "" => None,
                        other => {
                            return Err(format!("type `{other}` is not `alert` or `record`"));
                        }
                    }
                }
                "rule_name[]" | "rule_name" => filter.names.push(value.into_owned()),
                "rule_group[]" | "rule_group" => filter.groups.push(value.into_owned()),
                _ => {}
            }
        }
        Ok(filter)
    }

    /// The groups of `groups` the filter keeps, with the rules it keeps; a
    /// group left without rules is dropped when a rule filter is set.
    pub fn apply(&self, groups: Vec<GroupStatus>) -> Vec<GroupStatus> {
        let rule_filter = self.kind.is_some() || !self.names.is_empty();
        groups
            .into_iter()
            .filter(|g| self.groups.is_empty() || self.groups.contains(&g.name))
            .filter_map(|mut g| {
                g.rules.retain(|r| {
                    let kind = match self.kind {
                        Some(RuleKind::Alert) => r.kind == "alerting",
                        Some(RuleKind::Record) => r.kind == "recording",
                        None => true,
                    };
                    kind && (self.names.is_empty() || self.names.contains(&r.name))
                });
                (!rule_filter || !g.rules.is_empty()).then_some(g)
            })
            .collect()
    }
}

/// The body of `/api/v1/rules`: `{"status":"success","data":{"groups":[…]}}`.
pub fn rules_response(groups: &[GroupStatus]) -> serde_json::Value {
    serde_json::json!({ "status": "success", "data": { "groups": groups } })
}

/// The body of `/api/v1/alerts`: every active alert of `groups`.
pub fn alerts_response(groups: &[GroupStatus]) -> serde_json::Value {
    let alerts: Vec<&AlertStatus> = groups
        .iter()
        .flat_map(|g| &g.rules)
        .flat_map(|r| r.alerts.iter().flatten())
        .collect();
    serde_json::json!({ "status": "success", "data": { "alerts": alerts } })
}

/// The body of an error answer, as Prometheus writes it.
pub fn error_response(kind: &str, message: &str) -> serde_json::Value {
    serde_json::json!({ "status": "error", "errorType": kind, "error": message })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::AlertSettings;
    use crate::rule::RuleConfig;
    use crate::window::tests::{S, logs};

    fn group() -> RuleGroup {
        let every = Duration::from_secs(30);
        RuleGroup::new(
            "alerts",
            vec![
                RuleConfig {
                    window: Duration::from_secs(60),
                    every,
                    for_duration: Duration::from_secs(60),
                    annotations: [("summary".into(), "{{ $labels.service_name }}".into())].into(),
                    ..RuleConfig::alert(
                        "Errors",
                        "SELECT service_name, count(*) AS value FROM logs GROUP BY service_name",
                    )
                },
                RuleConfig {
                    window: Duration::from_secs(60),
                    every,
                    ..RuleConfig::record("log_count", "SELECT count(*) AS value FROM logs")
                },
            ],
            &AlertSettings::default(),
        )
        .unwrap()
    }

    /// Guarantees: before any evaluation the rules are listed with health
    /// `unknown` and no alerts; after one, an alert rule shows its pending
    /// alert (labels, rendered annotations, `activeAt`, value) and health
    /// `ok`, and a recording rule carries no alert fields.
    #[tokio::test]
    async fn reports_rules_and_their_alerts() {
        let mut group = group();
        let status = GroupStatus::of(&group, None);
        assert_eq!(status.rules.len(), 2);
        assert!(status.rules.iter().all(|r| r.health == "unknown"));
        assert_eq!(status.last_evaluation, NEVER);
        assert_eq!(status.interval, 30.0);

        group
            .push(weir_core::Signal::Logs, &logs(&[(10, "api"), (20, "api")]))
            .await
            .unwrap();
        group.advance_watermark(61 * S);
        let done = group.evaluate_due().await;
        assert_eq!(done.len(), 1, "{done:?}");
        let status = GroupStatus::of(&group, Some(Duration::from_millis(3)));
        assert_eq!(status.last_evaluation, "1970-01-01T00:01:00.000000000Z");
        assert_eq!(status.evaluation_time, 0.003);

        let json = serde_json::to_value(&status.rules[0]).unwrap();
        assert_eq!(json["type"], "alerting");
        assert_eq!(json["health"], "ok");
        assert_eq!(json["state"], "pending");
        assert_eq!(json["duration"], 60.0);
        assert_eq!(json["lastEvaluation"], "1970-01-01T00:01:00.000000000Z");
        let alert = &json["alerts"][0];
        assert_eq!(alert["labels"]["alertname"], "Errors");
        assert_eq!(alert["labels"]["service_name"], "api");
        assert_eq!(alert["annotations"]["summary"], "api");
        assert_eq!(alert["state"], "pending");
        assert_eq!(alert["activeAt"], "1970-01-01T00:01:00.000000000Z");
        assert_eq!(alert["value"], "2");
        assert!(json.get("lastError").is_none(), "{json}");

        let json = serde_json::to_value(&status.rules[1]).unwrap();
        assert_eq!(json["type"], "recording");
        assert_eq!(json["health"], "ok");
        for absent in ["state", "alerts", "annotations", "duration"] {
            assert!(json.get(absent).is_none(), "{absent} in {json}");
        }

        let alerts = alerts_response(&[status]);
        assert_eq!(alerts["data"]["alerts"].as_array().unwrap().len(), 1);
    }

    /// Guarantees: `type`, `rule_name[]` and `rule_group[]` select as in
    /// Prometheus, and an unknown `type` is refused with the values allowed.
    #[test]
    fn filters_as_prometheus_does() {
        let status = GroupStatus::of(&group(), None);
        let pick = |q: &str| {
            RuleFilter::parse(q)
                .unwrap()
                .apply(vec![status.clone()])
                .iter()
                .flat_map(|g| g.rules.iter().map(|r| r.name.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(pick(""), ["Errors", "log_count"]);
        assert_eq!(pick("type=alert"), ["Errors"]);
        assert_eq!(pick("type=record"), ["log_count"]);
        assert_eq!(pick("rule_name%5B%5D=log_count"), ["log_count"]);
        assert_eq!(pick("rule_name[]=Nope"), Vec::<String>::new());
        assert_eq!(pick("rule_group[]=other"), Vec::<String>::new());
        let err = RuleFilter::parse("type=alerts").unwrap_err();
        assert!(err.contains("`alert` or `record`"), "{err}");
    }
}
