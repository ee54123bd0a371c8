//! `type = "rules"`: what a user writes for a group of SQL recording and
//! alert rules, and how it is built.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use weir_config::{BuildContext, ComponentConfig, Problem, values};
use weir_core::{Built, ComponentError, Signal, SignalSet};

use crate::{AlertSettings, RulesProcessor};

/// `type = "rules"`: a group of recording and alert rules, each a SQL query
/// (DataFusion) over the tables `logs`, `spans` and `metrics` as they stand
/// in a window of event time, evaluated at every multiple of `every`.
///
/// The processor reads the signals its `inputs` give it into event-time
/// buffers (records later than `allowed_lateness` behind the newest are
/// counted in `weir_rule_late_records_total`, not folded in) and, each time
/// the data's time passes a due time, runs every rule. A recording rule's
/// result rows become metric points; an alert rule's rows are alert
/// instances, keyed by their label columns, with Prometheus' lifecycle, and
/// its pending and firing instances are recorded as the `ALERTS` series.
/// Both flow on to the processor's readers as `metrics`.
///
/// ```toml
/// [processors.slo]
/// type = "rules"
/// inputs = ["otlp.spans"]
/// every = "30s"
///
/// [[processors.slo.rules]]
/// record = "service_error_ratio"
/// window = "5m"
/// sql = """SELECT service_name,
///   avg(CASE WHEN status_code = 2 THEN 1.0 ELSE 0.0 END) AS value
///   FROM spans GROUP BY service_name"""
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct RulesConfig {
    /// How often the rules are evaluated, in event time: a duration above
    /// zero such as `"30s"`. Default `"1m"`. The evaluation times are the
    /// multiples of it since the Unix epoch.
    #[serde(
        default = "default_every",
        deserialize_with = "values::positive_duration"
    )]
    pub every: Duration,
    /// How far behind the newest record, in event time, a record may arrive
    /// and still be counted: a duration such as `"30s"`. Default `"0s"`.
    /// An evaluation waits until the data's time is this far past it.
    #[serde(default, deserialize_with = "values::duration")]
    pub allowed_lateness: Duration,
    /// When no record has arrived for this long (wall-clock time), event
    /// time moves on with the clock, to now less `idle_timeout`, so that
    /// alerts on silence fire and others resolve when everything stopped
    /// sending. A record that then arrives older than that is late. A
    /// duration such as `"5m"`, the default; `"0s"` keeps event time moving
    /// with the data only.
    #[serde(
        default = "default_idle_timeout",
        deserialize_with = "values::duration"
    )]
    pub idle_timeout: Duration,
    /// How far ahead of Weir's clock a record's time may be: records stamped
    /// later are dropped and counted in
    /// `weir_rule_future_records_total`, so that one record from a broken
    /// clock (a timestamp in 2262) cannot move event time ahead and make
    /// every later record late. A duration such as `"10m"`, the default.
    #[serde(default = "default_max_future", deserialize_with = "values::duration")]
    pub max_future: Duration,
    /// The rules, one `[[processors.NAME.rules]]` table each; at least one.
    pub rules: Vec<RuleSpec>,
}

fn default_max_future() -> Duration {
    Duration::from_secs(600)
}

fn default_idle_timeout() -> Duration {
    Duration::from_secs(300)
}

/// One rule of a `rules` processor: `[[processors.NAME.rules]]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct RuleSpec {
    /// An alert rule's name (its alerts' `alertname` label). Give exactly
    /// one of `alert` and `record`.
    pub alert: Option<String>,
    /// A recording rule's name: the name of the metric it records. Give
    /// exactly one of `alert` and `record`.
    pub record: Option<String>,
    /// The query. It reads `logs`, `spans` and/or `metrics` (the columns of
    /// `docs/schema.md`) and returns one numeric column `value` and any
    /// number of text label columns. Required.
    pub sql: String,
    /// How much event time the query sees, ending at the evaluation time
    /// (less `query_offset`): a duration above zero. Default `"5m"`.
    #[serde(
        default = "default_window",
        deserialize_with = "values::positive_duration"
    )]
    pub window: Duration,
    /// Alerts: how long an instance stays pending before it fires.
    /// Default `"0s"` (fire at once).
    #[serde(rename = "for", default, deserialize_with = "values::duration")]
    pub for_duration: Duration,
    /// Alerts: how long a firing instance keeps firing after the query
    /// stops returning it. Default `"0s"`.
    #[serde(default, deserialize_with = "values::duration")]
    pub keep_firing_for: Duration,
    /// How far behind the evaluation time the window ends, for data that
    /// arrives late (Prometheus' `query_offset`). Default `"0s"`.
    #[serde(default, deserialize_with = "values::duration")]
    pub query_offset: Duration,
    /// Labels added to every alert or recorded point, replacing result
    /// labels of the same name; alert labels may use templates
    /// (`{{ $labels.service_name }}`, `{{ $value }}`). Default none.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Alerts: annotations, templates over `$labels` and `$value`
    /// (`summary = "{{ $labels.service_name }} fails {{ $value }} %"`).
    /// Default none.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

fn default_every() -> Duration {
    Duration::from_secs(60)
}

fn default_window() -> Duration {
    Duration::from_secs(300)
}

impl RuleSpec {
    /// The rule's name, whichever of `alert` or `record` holds it.
    pub fn name(&self) -> &str {
        self.alert
            .as_deref()
            .or(self.record.as_deref())
            .unwrap_or("")
    }

    /// Whether this is an alert rule.
    pub fn is_alert(&self) -> bool {
        self.alert.is_some()
    }
}

#[async_trait]
impl ComponentConfig for RulesConfig {
    /// Rules read telemetry; alert events go to sinks.
    fn accepts(&self) -> SignalSet {
        SignalSet::TELEMETRY
    }

    /// Recorded series and the `ALERTS` series are metric points; each
    /// alert state transition is an alert event.
    fn outputs(&self, _input: SignalSet) -> SignalSet {
        SignalSet::only(Signal::Metrics).union(SignalSet::only(Signal::Alerts))
    }

    fn takes_tests(&self) -> bool {
        true
    }

    /// Builds the processor; keeps its alert state under the state
    /// directory (`rules/NAME.json`), takes new rules on a reload, and
    /// shows its rules on the API (see [`crate::api`]).
    async fn build(&self, cx: &mut BuildContext<'_>) -> Result<Built, ComponentError> {
        let name = cx.name().to_string();
        let settings = AlertSettings {
            external_url: cx.external_url().to_string(),
            ..AlertSettings::default()
        };
        let mut processor = RulesProcessor::new(&name, self, &settings)
            .map_err(|e| ComponentError::config(&name, e.to_string()))?;
        if let Some(dir) = cx.state_dir() {
            processor = processor.with_state_file(dir.join("rules").join(format!("{name}.json")));
        }
        cx.on_reload(processor.reloads());
        crate::api::publish(cx, &name, processor.status());
        Ok(Built::Processor(Box::new(processor)))
    }

    /// Besides the checks of each rule's keys, plans every rule's SQL
    /// against the signal tables: an unknown column, a query without a
    /// `value`, a template naming a label the query does not return is
    /// reported at the rule's `alert` or `record` line.
    fn problems(&self) -> Vec<Problem> {
        let mut problems = self.key_problems();
        if problems.is_empty()
            && let Err(e) = RulesProcessor::new("check", self, &AlertSettings::default())
        {
            let at = self
                .rules
                .iter()
                .position(|r| r.name() == e.rule())
                .map(|i| {
                    let key = if self.rules[i].alert.is_some() {
                        "alert"
                    } else {
                        "record"
                    };
                    format!("rules[{i}].{key}")
                })
                .unwrap_or_else(|| "rules".to_string());
            problems.push(Problem {
                key: at,
                message: e.to_string(),
                help: "fix the rule's SQL or templates; the columns of each table are in \
                       docs/schema.md"
                    .to_string(),
            });
        }
        problems
    }
}

impl RulesConfig {
    /// The problems of the rules' keys alone, without planning their SQL.
    fn key_problems(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        if self.rules.is_empty() {
            problems.push(Problem {
                key: "rules".into(),
                message: "no rules are given".to_string(),
                help: "add at least one `[[processors.NAME.rules]]` table with `alert` or \
                       `record` and `sql`"
                    .to_string(),
            });
        }
        for (i, rule) in self.rules.iter().enumerate() {
            let which = format!("rule {} (`{}`)", i + 1, rule.name());
            let at = format!("rules[{i}]");
            match (&rule.alert, &rule.record) {
                (Some(_), Some(_)) | (None, None) => problems.push(Problem {
                    key: at.clone(),
                    message: format!(
                        "rule {} has {} of `alert` and `record`",
                        i + 1,
                        if rule.alert.is_some() {
                            "both"
                        } else {
                            "neither"
                        }
                    ),
                    help: "give an alert rule `alert = \"Name\"` and a recording rule \
                           `record = \"metric_name\"`, not both"
                        .to_string(),
                }),
                _ => {}
            }
            if rule.name().is_empty() && (rule.alert.is_some() || rule.record.is_some()) {
                problems.push(Problem {
                    key: at.clone(),
                    message: format!("rule {} has an empty name", i + 1),
                    help: "name the rule: `alert = \"HighErrorRate\"`".to_string(),
                });
            }
            if rule.record.is_some() {
                let alert_only = [
                    ("for", !rule.for_duration.is_zero()),
                    ("keep_firing_for", !rule.keep_firing_for.is_zero()),
                    ("annotations", !rule.annotations.is_empty()),
                ];
                for (key, set) in alert_only {
                    if set {
                        problems.push(Problem {
                            key: at.clone(),
                            message: format!("{which} is a recording rule but sets `{key}`"),
                            help: format!(
                                "`{key}` applies to alert rules only; remove it or make the \
                                 rule an alert (`alert = \"Name\"`)"
                            ),
                        });
                    }
                }
            }
            if rule.sql.trim().is_empty() {
                problems.push(Problem {
                    key: at.clone(),
                    message: format!("{which} has an empty `sql`"),
                    help: "write the query: `sql = \"SELECT service_name, count(*) AS value \
                           FROM spans GROUP BY service_name\"`"
                        .to_string(),
                });
            }
        }
        problems
    }
}
