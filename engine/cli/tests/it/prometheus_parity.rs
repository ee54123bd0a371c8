//! Prometheus parity: Weir's alert rules go pending, fire and resolve at
//! the same evaluation as Prometheus' own rule engine.
//!
//! Each case in `tests/prometheus-parity/` (see its README) is one alert
//! written as PromQL and as Weir SQL, the series both are fed in promtool's
//! notation, and the alerts expected at every minute. The case becomes a
//! `promtool test rules` unit test (firing alerts through
//! `alert_rule_test`, pending ones through the `ALERTS` series) and a
//! `weir test` pipeline (`[[tests.alerts]]`, which lists pending and firing
//! instances), each checking every minute from 0 to the case's `minutes`.
//! Both must pass: then both engines agree with the expectation, and so
//! with each other, at every one of those evaluations.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use crate::common::{WEIR, repo};

/// One parity case, as written in its file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    alert: String,
    minutes: u64,
    #[serde(rename = "for", default)]
    for_duration: Option<String>,
    #[serde(default)]
    keep_firing_for: Option<String>,
    series: Vec<Series>,
    prometheus: PromRule,
    weir: WeirRule,
    expect: Vec<Expect>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Series {
    series: String,
    values: String,
    #[serde(default)]
    kind: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PromRule {
    expr: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WeirRule {
    window: String,
    sql: String,
}

/// An alert instance in `state` at every minute from `from` to `to`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    labels: BTreeMap<String, String>,
    state: String,
    from: String,
    to: String,
}

fn minutes(text: &str) -> u64 {
    let d: Duration = humantime::parse_duration(text).expect("a duration");
    assert_eq!(d.as_secs() % 60, 0, "{text}: whole minutes only");
    d.as_secs() / 60
}

impl Case {
    /// The instances in `state` at minute `m`, by labels.
    fn at(&self, m: u64, state: &str) -> Vec<&BTreeMap<String, String>> {
        self.expect
            .iter()
            .filter(|e| e.state == state && minutes(&e.from) <= m && m <= minutes(&e.to))
            .map(|e| &e.labels)
            .collect()
    }

    /// The rule file and unit test file for promtool (JSON, which YAML
    /// reads).
    fn promtool_files(&self) -> (String, String) {
        let mut rule = json!({ "alert": self.alert, "expr": self.prometheus.expr });
        if let Some(d) = &self.for_duration {
            rule["for"] = json!(d);
        }
        if let Some(d) = &self.keep_firing_for {
            rule["keep_firing_for"] = json!(d);
        }
        let rules = json!({ "groups": [{ "name": "parity", "interval": "1m", "rules": [rule] }] });
        let mut alert_tests = Vec::new();
        let mut pending_tests = Vec::new();
        for m in 0..=self.minutes {
            let firing: Vec<_> = self
                .at(m, "firing")
                .into_iter()
                .map(|labels| json!({ "exp_labels": labels }))
                .collect();
            alert_tests.push(json!({
                "eval_time": format!("{m}m"),
                "alertname": self.alert,
                "exp_alerts": firing,
            }));
            let pending: Vec<_> = self
                .at(m, "pending")
                .into_iter()
                .map(|labels| {
                    let mut all = labels.clone();
                    all.insert("alertname".into(), self.alert.clone());
                    all.insert("alertstate".into(), "pending".into());
                    let text: Vec<String> = all.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
                    json!({ "labels": format!("ALERTS{{{}}}", text.join(",")), "value": 1 })
                })
                .collect();
            pending_tests.push(json!({
                "expr": format!("ALERTS{{alertname={:?},alertstate=\"pending\"}}", self.alert),
                "eval_time": format!("{m}m"),
                "exp_samples": pending,
            }));
        }
        let series: Vec<_> = self
            .series
            .iter()
            .map(|s| json!({ "series": s.series, "values": s.values }))
            .collect();
        let test = json!({
            "rule_files": ["rules.yml"],
            "evaluation_interval": "1m",
            "tests": [{
                "interval": "1m",
                "input_series": series,
                "alert_rule_test": alert_tests,
                "promql_expr_test": pending_tests,
            }],
        });
        (rules.to_string(), test.to_string())
    }

    /// A pipeline file with the Weir rule and one `[[tests]]` checking
    /// every minute.
    fn weir_pipeline(&self) -> String {
        use toml::{Table, Value};
        let table = |pairs: Vec<(&str, Value)>| -> Value {
            Value::Table(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
        };
        let text = |s: &str| Value::String(s.to_string());
        let mut rule = vec![
            ("alert", text(&self.alert)),
            ("window", text(&self.weir.window)),
            ("sql", text(&self.weir.sql)),
        ];
        if let Some(d) = &self.for_duration {
            rule.push(("for", text(d)));
        }
        if let Some(d) = &self.keep_firing_for {
            rule.push(("keep_firing_for", text(d)));
        }
        let series = self
            .series
            .iter()
            .map(|s| {
                let mut t = vec![("series", text(&s.series)), ("values", text(&s.values))];
                if let Some(kind) = &s.kind {
                    t.push(("kind", text(kind)));
                }
                table(t)
            })
            .collect();
        let alerts = (0..=self.minutes)
            .map(|m| {
                let expected = ["pending", "firing"]
                    .into_iter()
                    .flat_map(|state| {
                        self.at(m, state).into_iter().map(move |labels| {
                            let labels = labels
                                .iter()
                                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                                .collect::<Table>();
                            table(vec![
                                ("labels", Value::Table(labels)),
                                ("state", text(state)),
                            ])
                        })
                    })
                    .collect();
                table(vec![
                    ("at", text(&format!("{m}m"))),
                    ("alert", text(&self.alert)),
                    ("expected", Value::Array(expected)),
                ])
            })
            .collect();
        let pipeline = table(vec![
            (
                "sources",
                table(vec![("in", table(vec![("type", text("otlp"))]))]),
            ),
            (
                "processors",
                table(vec![(
                    "parity",
                    table(vec![
                        ("type", text("rules")),
                        ("inputs", Value::Array(vec![text("in.metrics")])),
                        ("every", text("1m")),
                        ("rules", Value::Array(vec![table(rule)])),
                    ]),
                )]),
            ),
            (
                "sinks",
                table(vec![(
                    "out",
                    table(vec![
                        ("type", text("file")),
                        ("inputs", Value::Array(vec![text("parity")])),
                        ("path", text("alerts.jsonl")),
                    ]),
                )]),
            ),
            (
                "tests",
                Value::Array(vec![table(vec![
                    ("name", text(&self.name)),
                    ("series", Value::Array(series)),
                    ("alerts", Value::Array(alerts)),
                ])]),
            ),
        ]);
        toml::to_string(&pipeline).expect("a TOML pipeline")
    }
}

fn cases() -> Vec<(PathBuf, Case)> {
    let dir = repo("engine/cli/tests/prometheus-parity");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("the parity cases")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("read a case");
            let case = toml::from_str(&text)
                .unwrap_or_else(|e| panic!("{}: not a parity case: {e}", path.display()));
            (path, case)
        })
        .collect()
}

fn run(command: &mut Command, dir: &Path) -> Result<String, String> {
    let out = command
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{command:?} does not start: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(text)
    }
}

/// Scenario: every case of the parity suite: a threshold with `for`,
/// `keep_firing_for`, a flapping series, a series with gaps, and a
/// counter's increase over a range. Guarantees: promtool (Prometheus'
/// rule engine) and `weir test` both produce exactly the expected pending
/// and firing alerts at every minute of every case, so Weir's alert
/// transitions fall on the same evaluations as Prometheus'.
#[test]
fn alerts_change_state_at_the_same_evaluations_as_prometheus() {
    let promtool = std::env::var_os("WEIR_TEST_PROMTOOL").unwrap_or_else(|| "promtool".into());
    let cases = cases();
    assert!(cases.len() >= 5, "the suite holds its five kinds of case");
    let mut failures = Vec::new();
    let mut checks = 0;
    for (path, case) in &cases {
        assert!(
            case.expect.iter().any(|e| e.state == "firing"),
            "{}: a case must fire",
            path.display()
        );
        let dir = tempfile::tempdir().expect("tmp");
        let (rules, test) = case.promtool_files();
        std::fs::write(dir.path().join("rules.yml"), rules).expect("write");
        std::fs::write(dir.path().join("test.yml"), test).expect("write");
        std::fs::write(dir.path().join("pipeline.toml"), case.weir_pipeline()).expect("write");
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if let Err(out) = run(
            Command::new(&promtool).args(["test", "rules", "test.yml"]),
            dir.path(),
        ) {
            failures.push(format!("{name}: promtool disagrees:\n{out}"));
        }
        match run(
            Command::new(WEIR).args(["test", "pipeline.toml"]),
            dir.path(),
        ) {
            Ok(out) => assert!(out.contains("ok: 1 passed, 0 failed"), "{name}: {out}"),
            Err(out) => failures.push(format!("{name}: weir test disagrees:\n{out}")),
        }
        checks += case.minutes + 1;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    eprintln!(
        "{} cases, {checks} minutes checked in each engine",
        cases.len()
    );
}
