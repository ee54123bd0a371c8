//! The running rule's scenarios, each through a group of that one rule (as
//! the `rules` processor and `weir test` run rules), and the fixtures the
//! tests of the other `rule` modules share.

use std::collections::BTreeMap;
use std::time::Duration;

use arrow::array::{AsArray, MapArray};
use arrow::datatypes::{Float64Type, TimestampNanosecondType};
use weir_core::schema::{col, metrics_schema};
use weir_core::{Signal, SignalSet};

use super::{Evaluation, Rule, RuleConfig};
use crate::alert::{AlertSettings, AlertState, EventState};
use crate::error::EvalError;
use crate::group::RuleGroup;
use crate::time::UnixNanos;
use crate::window::tests::{S, logs};

/// `n` seconds.
pub(super) fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A label (or annotation) map of `pairs`.
pub(super) fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// An alert rule: error logs per service, over 1m every 30s, `for: 30s`,
/// with templated labels and annotations.
pub(super) fn error_rule() -> RuleConfig {
    RuleConfig {
        window: secs(60),
        every: secs(30),
        for_duration: secs(30),
        labels: map(&[
            ("severity", "page"),
            ("team", "{{ $labels.service_name }}-team"),
        ]),
        annotations: map(&[(
            "summary",
            "{{ $labels.service_name }} logged {{ $value }} errors",
        )]),
        ..RuleConfig::alert(
            "ServiceErrors",
            "SELECT service_name, count(*) AS value FROM logs \
             WHERE severity_number >= 17 GROUP BY service_name HAVING count(*) >= 2",
        )
    }
}

/// Alert settings with an external URL.
pub(super) fn settings() -> AlertSettings {
    AlertSettings {
        external_url: "http://weir:8080/".into(),
        ..AlertSettings::default()
    }
}

/// The group of the one rule `config`: how a rule runs.
pub(super) fn group_of(config: RuleConfig) -> RuleGroup {
    RuleGroup::new("g", vec![config], &settings()).unwrap()
}

/// The one rule of `group`.
pub(super) fn rule(group: &RuleGroup) -> &Rule {
    &group.rules()[0]
}

/// Evaluates the one rule of `group` at `t`, as the group does.
pub(super) async fn evaluate(group: &mut RuleGroup, t: UnixNanos) -> Result<Evaluation, EvalError> {
    let mut done = group.evaluate(t).await;
    assert_eq!(done.len(), 1, "a group of one rule");
    done.remove(0).result
}

/// Evaluates every due tick; returns (time, transitions) per tick.
async fn run_due(group: &mut RuleGroup) -> Vec<(i64, Vec<(String, EventState)>)> {
    let mut out = Vec::new();
    for (t, mut done) in group.evaluate_due().await {
        assert_eq!(done.len(), 1, "a group of one rule");
        let kinds = done
            .remove(0)
            .result
            .unwrap()
            .transitions
            .iter()
            .map(|e| (e.labels["service_name"].clone(), e.state))
            .collect();
        out.push((t / S, kinds));
    }
    out
}

/// Scenario: error logs per service over a 1m window every 30s, `for:
/// 30s`, data pushed in event time. Guarantees: evaluation times follow
/// the watermark; the service over the threshold goes pending, fires
/// after `for`, and resolves when the window no longer holds enough
/// errors; labels and annotations are templated; notifications carry
/// Alertmanager's times; buffers are evicted behind the windows.
#[tokio::test]
async fn alert_rule_lifecycle_over_event_time_windows() {
    let mut group = group_of(error_rule());
    assert_eq!(rule(&group).inputs(), SignalSet::only(Signal::Logs));
    assert_eq!(rule(&group).label_columns(), ["service_name"]);
    assert_eq!(group.next_due(), None, "no watermark yet");
    assert_eq!(
        group.push(Signal::Spans, &logs(&[(1, "x")])).await.unwrap(),
        0,
        "unread table"
    );
    group
        .push(
            Signal::Logs,
            &logs(&[(100, "cart"), (101, "cart"), (102, "pay")]),
        )
        .await
        .unwrap();
    // Watermark 102: the first tick is 90, over [30, 90): empty.
    assert_eq!(run_due(&mut group).await, vec![(90, vec![])]);
    group
        .push(Signal::Logs, &logs(&[(125, "cart")]))
        .await
        .unwrap();
    assert_eq!(
        run_due(&mut group).await,
        vec![(120, vec![("cart".into(), EventState::Pending)])]
    );
    group
        .push(Signal::Logs, &logs(&[(151, "cart")]))
        .await
        .unwrap();
    let t = group.next_due().unwrap();
    assert_eq!(t, 150 * S);
    let ev = evaluate(&mut group, t).await.unwrap();
    assert_eq!(ev.rows, 1);
    let fired = &ev.transitions[0];
    assert_eq!(fired.state, EventState::Firing);
    assert_eq!(
        fired.labels,
        map(&[
            ("alertname", "ServiceErrors"),
            ("service_name", "cart"),
            ("severity", "page"),
            ("team", "cart-team"),
        ])
    );
    assert_eq!(
        fired.annotations,
        map(&[("summary", "cart logged 3 errors")])
    );
    assert_eq!(fired.generator_url, "http://weir:8080/rules/ServiceErrors");
    assert_eq!(ev.notifications.len(), 1);
    let sent = &ev.notifications[0];
    // startsAt = firedAt; endsAt = now + 4 × max(resend delay 1m, every 30s).
    assert_eq!((sent.starts_at, sent.ends_at), (150 * S, Some(390 * S)));
    assert_eq!(
        ev.recorded.map(|b| b.num_rows()),
        Some(1),
        "one ALERTS series, for the firing alert"
    );
    let alert = rule(&group).alerts()[0].clone();
    assert_eq!(
        (alert.state, alert.active_at, alert.fired_at),
        (AlertState::Firing, 120 * S, Some(150 * S))
    );
    // No more data: the source is idle and the runtime advances time. The
    // window of 240 ends at 240 and includes it: it waits for the
    // watermark to pass 240.
    group.advance_watermark(240 * S);
    assert_eq!(
        run_due(&mut group).await,
        vec![
            (180, vec![]),
            (210, vec![("cart".into(), EventState::Resolved)]),
        ]
    );
    group.advance_watermark(240 * S + 1);
    assert_eq!(run_due(&mut group).await, vec![(240, vec![])]);
    assert_eq!(rule(&group).alerts()[0].resolved_at, Some(210 * S));
    let stats = group.buffer_stats();
    assert_eq!(stats[0].1.rows, 0, "everything is behind the next window");
    assert_eq!(stats[0].1.accepted_rows, 5);
}

/// Scenario: a recording rule with `query_offset: 10s` and an allowed
/// lateness of 15s. Guarantees: the window ends `query_offset` before
/// the evaluation time; each row becomes a gauge point at that end time
/// with the rule's labels; rows later than allowed are counted, not used.
#[tokio::test]
async fn recording_rule_emits_metric_points() {
    let config = RuleConfig {
        window: secs(60),
        every: secs(60),
        query_offset: secs(10),
        allowed_lateness: secs(15),
        labels: map(&[("source", "weir")]),
        ..RuleConfig::record(
            "service:logs:count1m",
            "SELECT service_name, count(*) AS value FROM logs GROUP BY service_name",
        )
    };
    let mut group = group_of(config);
    group
        .push(
            Signal::Logs,
            &logs(&[(55, "a"), (65, "a"), (69, "b"), (130, "c")]),
        )
        .await
        .unwrap();
    // Watermark 130 - 15 = 115: 116 is on time, 90 is too late.
    assert_eq!(
        group
            .push(Signal::Logs, &logs(&[(116, "b"), (90, "b")]))
            .await
            .unwrap(),
        1
    );
    assert_eq!(group.buffer_stats()[0].1.late_rows, 1);
    let t = group.next_due().unwrap();
    assert_eq!(t, 120 * S);
    let ev = evaluate(&mut group, t).await.unwrap();
    assert!(ev.transitions.is_empty() && ev.notifications.is_empty());
    let batch = ev.recorded.unwrap();
    assert_eq!(batch.schema().fields(), metrics_schema().fields());
    assert_eq!(batch.num_rows(), 2);
    let times = batch
        .column_by_name(col::TIME)
        .unwrap()
        .as_primitive::<TimestampNanosecondType>();
    assert!(times.iter().all(|t| t == Some(110 * S)));
    let values: Vec<f64> = batch
        .column_by_name(col::VALUE)
        .unwrap()
        .as_primitive::<Float64Type>()
        .iter()
        .flatten()
        .collect();
    // a: 55, 65; b: 69 (116 is past the window's end, 110).
    assert_eq!(values, [2.0, 1.0]);
    let attrs: &MapArray = batch.column_by_name(col::ATTRIBUTES).unwrap().as_map();
    assert_eq!(attrs.keys().as_string::<i32>().value(0), "source");
    assert_eq!(attrs.values().as_string::<i32>().value(0), "weir");
}

/// Scenario: Prometheus' `TestAlertingRuleEmptyLabelFromTemplate` and
/// `TestAlertingRuleDuplicate`, over SQL. Guarantees: a rule label that
/// renders empty is removed; rows that collide once the rule's labels
/// are applied are an evaluation error; a query with no table runs on
/// the advanced watermark.
#[tokio::test]
async fn templated_labels_and_duplicates() {
    let config = RuleConfig {
        labels: map(&[("owner", "{{ $labels.who }}")]),
        ..RuleConfig::alert("Always", "SELECT CAST(NULL AS VARCHAR) AS who, 1 AS value")
    };
    let mut group = group_of(config);
    assert_eq!(group.next_due(), None);
    group.advance_watermark(60 * S);
    let t = group.next_due().unwrap();
    let ev = evaluate(&mut group, t).await.unwrap();
    assert_eq!(ev.transitions[0].labels, map(&[("alertname", "Always")]));
    assert_eq!(
        ev.transitions[0].state,
        EventState::Firing,
        "for: 0 fires at once"
    );

    let config = RuleConfig {
        labels: map(&[("who", "everyone")]),
        ..RuleConfig::alert(
            "Dup",
            "SELECT who, 1 AS value FROM (VALUES ('a'), ('b')) AS t(who)",
        )
    };
    let mut group = group_of(config);
    let err = evaluate(&mut group, 60 * S).await.unwrap_err();
    assert!(
        matches!(&err, EvalError::DuplicateLabels { labels, .. } if labels.contains("everyone")),
        "{err}"
    );
}

/// Scenario: a query whose hash table outgrows `max_query_memory`.
/// Guarantees: the evaluation fails with DataFusion's resources error
/// instead of taking the memory; the rule stays usable.
#[tokio::test]
async fn query_memory_is_bounded() {
    let config = RuleConfig {
        max_query_memory: 64 << 10,
        ..RuleConfig::alert(
            "Big",
            "SELECT CAST(v AS VARCHAR) AS k, count(*) AS value \
             FROM (SELECT unnest(range(1, 200000)) AS v) GROUP BY 1",
        )
    };
    let mut group = group_of(config);
    let err = evaluate(&mut group, 60 * S).await.unwrap_err();
    assert!(
        matches!(&err, EvalError::Query { message, .. } if message.contains("esources exhausted")),
        "{err}"
    );
    assert!(rule(&group).alerts().is_empty());
}

/// Scenario: the query fails at execution (division by zero once rows
/// arrive). Guarantees: the error names the rule and carries
/// DataFusion's message; the alert state is untouched; the rule moves on
/// to the next tick instead of retrying the same one forever.
#[tokio::test]
async fn failed_evaluation_moves_on() {
    let config = RuleConfig {
        window: secs(60),
        every: secs(60),
        ..RuleConfig::alert(
            "Broken",
            "SELECT service_name, count(*) / 0 AS value FROM logs GROUP BY service_name",
        )
    };
    let mut group = group_of(config);
    group.push(Signal::Logs, &logs(&[(30, "a")])).await.unwrap();
    group.push(Signal::Logs, &logs(&[(61, "a")])).await.unwrap();
    let t = group.next_due().unwrap();
    assert_eq!(t, 60 * S);
    let err = evaluate(&mut group, t).await.unwrap_err();
    assert!(
        matches!(&err, EvalError::Query { rule, message } if rule == "Broken" && message.contains("zero")),
        "{err}"
    );
    assert!(rule(&group).alerts().is_empty());
    assert_eq!(
        group.next_due(),
        None,
        "60 is done; 120 is not complete yet"
    );
    assert!(rule(&group).is_incremental());
    assert_eq!(
        group.buffer_stats()[0].1.rows,
        0,
        "a pane-by-pane rule keeps no rows in its buffer"
    );
    // The failed pane [0, 60) is gone with its evaluation; the next
    // window fails on its own rows, not on the old pane's error.
    group.advance_watermark(120 * S);
    let err = evaluate(&mut group, 120 * S).await.unwrap_err();
    assert!(matches!(&err, EvalError::Query { message, .. } if message.contains("zero")));
    group.advance_watermark(180 * S);
    let quiet = evaluate(&mut group, 180 * S).await.unwrap();
    assert_eq!(quiet.rows, 0, "an empty window runs again");
}
