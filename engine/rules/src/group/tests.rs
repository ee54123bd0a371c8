//! The group's scenarios: shared buffers, panes against rescanning,
//! threads, shared settings, reloads.

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
    group.push(Signal::Logs, &logs(&[(10, "a")])).await.unwrap();
    group
        .push(Signal::Logs, &logs(&[(100, "a"), (110, "a")]))
        .await
        .unwrap();
    // The window of 120 includes 120: it is due once the watermark is past.
    group.advance_watermark(120 * S);
    assert_eq!(group.next_due(), Some(90 * S));
    group.advance_watermark(120 * S + 1);
    let mut due = group.evaluate_due().await;
    assert_eq!(due.len(), 1);
    let (t, results) = due.remove(0);
    assert_eq!(t, 120 * S);
    assert_eq!(group.buffer_stats()[0].1.accepted_rows, 3);
    let alert = results[0].result.as_ref().unwrap();
    assert_eq!(alert.transitions[0].state, EventState::Firing);
    assert_eq!(alert.rows, 1, "the 1m window (60, 120] holds 2 rows of `a`");
    let recorded = results[1].result.as_ref().unwrap();
    let batch = recorded.recorded.as_ref().unwrap();
    let value = batch.column_by_name("value").unwrap();
    let value = arrow::array::AsArray::as_primitive::<arrow::datatypes::Float64Type>(value);
    assert_eq!(value.value(0), 3.0, "the 2m window (0, 120] holds all 3");
    // Both rules run pane by pane: their partial states stay, the rows
    // go once aggregated (tick 150 needs only the pane (120, 150]).
    assert!(group.rules().iter().all(|r| r.is_incremental()));
    assert_eq!(group.buffer_stats()[0].1.rows, 0);
    assert!(group.pane_bytes() > 0);
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
/// max, count distinct, approximate percentiles and last_value, whether
/// a pane's rows are aggregated all at its evaluation or batch by batch
/// as they arrive (many partial states per pane, merged); the
/// incremental rules are found incremental and the others not.
#[tokio::test]
async fn panes_give_the_same_results_as_rescanning() {
    for (flush_rows, threads) in [(crate::incremental::FLUSH_ROWS, 1), (1, 1), (1, 3)] {
        panes_match_rescanning(flush_rows, threads).await;
    }
}

async fn panes_match_rescanning(flush_rows: usize, threads: usize) {
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
    group.flush_at(flush_rows);
    if threads > 1 {
        group.spread_over(threads);
    }
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
        group.push(Signal::Logs, &logs(&records)).await.unwrap();
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
        assert_eq!(rule.is_incremental(), incremental, "{}", rule.config().name);
    }
}

/// Guarantees: a group (and so a rule) can move into a tokio task and
/// be evaluated there, as the runtime will run it.
#[tokio::test]
async fn runs_in_a_tokio_task() {
    let mut group = RuleGroup::new("g", rules(), &AlertSettings::default()).unwrap();
    group
        .push(Signal::Logs, &logs(&[(100, "a"), (110, "a")]))
        .await
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

/// Scenario: a group of a pane-by-pane rule is reloaded with a second
/// rule that rescans its window (`ORDER BY ... LIMIT`), then with a new
/// `every`.
/// Guarantees: the buffer starts keeping rows when a rescanning rule
/// arrives and the kept rule keeps its panes; a new `every` restarts the
/// whole group (every rule's identity changed).
#[tokio::test]
async fn reload_reshapes_the_buffers() {
    let first = vec![rules().remove(1)];
    let mut group = RuleGroup::new("g", first.clone(), &AlertSettings::default()).unwrap();
    group
        .push(Signal::Logs, &logs(&[(10, "a"), (40, "a")]))
        .await
        .unwrap();
    group.advance_watermark(60 * S);
    group.evaluate_due().await;
    assert_eq!(
        group.buffer_stats()[0].1.rows,
        0,
        "no rescanning rule: no rows kept"
    );
    let panes = group.pane_bytes();
    assert!(panes > 0);

    let mut second = first.clone();
    second.push(RuleConfig {
        window: Duration::from_secs(60),
        every: Duration::from_secs(30),
        ..RuleConfig::record(
            "logs:top",
            "SELECT service_name, CAST(count(*) AS DOUBLE) AS value FROM \
             (SELECT * FROM logs ORDER BY time LIMIT 10) GROUP BY service_name",
        )
    });
    let report = group
        .reload(second, &AlertSettings::default())
        .await
        .unwrap();
    assert_eq!(report.kept, ["logs:count2m"]);
    assert_eq!(report.added, ["logs:top"]);
    assert!(!group.rules()[1].is_incremental());
    assert_eq!(group.pane_bytes(), panes, "the kept rule's panes");
    group.push(Signal::Logs, &logs(&[(70, "a")])).await.unwrap();
    assert_eq!(
        group.buffer_stats()[0].1.rows,
        1,
        "rows kept for the new rule"
    );

    let mut slower = first;
    slower[0].every = Duration::from_secs(60);
    let report = group
        .reload(slower, &AlertSettings::default())
        .await
        .unwrap();
    assert_eq!(report.changed, ["logs:count2m"], "a new identity");
    assert_eq!(report.removed, ["logs:top"]);
    assert_eq!(group.pane_bytes(), 0, "started again");
    assert_eq!(group.last_evaluation(), None);
}

/// A recording rule counting the logs of each service over `window`
/// seconds, every 30 s, with `sql` after the `FROM logs`.
fn counting(name: &str, window: u64, sql: &str) -> RuleConfig {
    RuleConfig {
        window: Duration::from_secs(window),
        every: Duration::from_secs(30),
        ..RuleConfig::record(
            name,
            format!("SELECT service_name, CAST(count(*) AS DOUBLE) AS value FROM logs {sql}"),
        )
    }
}

/// The value each rule recorded for service `x` in `evaluations`.
fn recorded_x(evaluations: &[GroupEvaluation]) -> Vec<(String, Option<f64>)> {
    evaluations
        .iter()
        .map(|e| {
            let value = e.result.as_ref().ok().and_then(|done| {
                done.samples
                    .iter()
                    .find(|s| s.labels.get("service_name").map(String::as_str) == Some("x"))
                    .map(|s| s.value)
            });
            (e.rule.clone(), value)
        })
        .collect()
}

/// Scenario: rules counting logs every 30 s. A reload changes one rule's
/// threshold and adds a rule with an aggregation of its own, while no
/// buffer keeps rows; a second reload adds a rule that rescans its window
/// (the buffer keeps rows from then on); a third adds another new
/// aggregation.
/// Guarantees: the changed rule keeps the partial aggregates of its
/// aggregation and sees its whole window at once; a new aggregation starts
/// from the rows the buffer holds (none, then those kept since the second
/// reload) and every row after; each rule whose windows reach back before
/// what the group held says from which evaluation they are whole, in its
/// status until then.
#[tokio::test]
async fn a_reload_keeps_what_the_group_holds() {
    let a = counting("a", 120, "GROUP BY service_name HAVING count(*) > 0");
    let b = counting("b", 120, "GROUP BY service_name HAVING count(*) > 1");
    let mut group = RuleGroup::new("g", vec![a.clone(), b], &AlertSettings::default()).unwrap();
    group
        .push(Signal::Logs, &logs(&[(10, "x"), (40, "x"), (70, "x")]))
        .await
        .unwrap();
    group.advance_watermark(90 * S + 1);
    let done = group.evaluate(90 * S).await;
    assert_eq!(recorded_x(&done)[0], ("a".to_string(), Some(3.0)));

    let b = counting("b", 120, "GROUP BY service_name HAVING count(*) > 2");
    let c = counting("c", 120, "WHERE severity_number > 0 GROUP BY service_name");
    let report = group
        .reload(
            vec![a.clone(), b.clone(), c.clone()],
            &AlertSettings::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        (report.changed, report.added),
        (vec!["b".to_string()], vec!["c".to_string()])
    );
    assert_eq!(group.aggregations(), 2);
    group
        .push(Signal::Logs, &logs(&[(100, "x")]))
        .await
        .unwrap();
    group.advance_watermark(120 * S + 1);
    let done = group.evaluate(120 * S).await;
    assert_eq!(
        recorded_x(&done),
        [
            ("a".to_string(), Some(4.0)),
            ("b".to_string(), Some(4.0)),
            ("c".to_string(), Some(1.0)),
        ],
        "b sees (0, 120] whole; c only what came after the reload"
    );
    let whole_from = |group: &RuleGroup| -> Vec<Option<i64>> {
        group
            .rules()
            .iter()
            .map(|r| r.complete_from().map(|t| t / S))
            .collect()
    };
    // c misses the rows up to 70 s: (t - 120, t] is whole from t = 190,
    // the evaluation at 210.
    assert_eq!(whole_from(&group), [None, None, Some(210)]);
    let status = crate::status::GroupStatus::of(&group, None);
    assert_eq!(status.rules[1].window_complete_from, None);
    assert_eq!(
        status.rules[2].window_complete_from.as_deref(),
        Some("1970-01-01T00:03:30.000000000Z")
    );

    let top = RuleConfig {
        window: Duration::from_secs(60),
        every: Duration::from_secs(30),
        ..RuleConfig::record(
            "top",
            "SELECT service_name, CAST(count(*) AS DOUBLE) AS value FROM \
             (SELECT * FROM logs ORDER BY time LIMIT 10) GROUP BY service_name",
        )
    };
    let mut rules = vec![a.clone(), b.clone(), c.clone(), top.clone()];
    group
        .reload(rules.clone(), &AlertSettings::default())
        .await
        .unwrap();
    // The buffer keeps rows from the reload on: top misses those up to
    // 100 s, its window of 60 s is whole from 160, the evaluation at 180.
    assert_eq!(whole_from(&group)[3], Some(180));
    group
        .push(Signal::Logs, &logs(&[(130, "x"), (140, "x")]))
        .await
        .unwrap();
    group.advance_watermark(150 * S + 1);
    let done = group.evaluate(150 * S).await;
    assert_eq!(recorded_x(&done)[3], ("top".to_string(), Some(2.0)));

    rules.push(counting(
        "d",
        120,
        "WHERE severity_number > 1 GROUP BY service_name",
    ));
    let report = group
        .reload(rules, &AlertSettings::default())
        .await
        .unwrap();
    assert_eq!(report.added, ["d"]);
    assert_eq!(group.aggregations(), 3);
    group.advance_watermark(180 * S + 1);
    let done = group.evaluate(180 * S).await;
    assert_eq!(
        recorded_x(&done),
        [
            ("a".to_string(), Some(4.0)),
            ("b".to_string(), Some(4.0)),
            ("c".to_string(), Some(3.0)),
            ("top".to_string(), Some(2.0)),
            ("d".to_string(), Some(2.0)),
        ],
        "d starts from the rows the buffer kept, 130 and 140"
    );
    assert_eq!(whole_from(&group)[4], Some(240));
    let status = crate::status::GroupStatus::of(&group, None);
    assert_eq!(status.rules[3].window_complete_from, None, "180 is whole");
    assert!(status.rules[4].window_complete_from.is_some());
}

/// Scenario: a log stamped 1 s after the epoch, then logs 50 years later,
/// in a group evaluated every 30 s (an alert over 1 m and a recording rule
/// over 2 m, both pane by pane).
/// Guarantees: the group evaluates the windows that hold the old log, one
/// empty window after them, the last empty one before the new logs and the
/// one that holds them, and skips the some 53 million empty ones between;
/// the rules see the new logs as usual.
#[tokio::test]
async fn a_gap_in_the_data_is_skipped_not_stepped_through() {
    let mut group = RuleGroup::new("g", rules(), &AlertSettings::default()).unwrap();
    group.push(Signal::Logs, &logs(&[(1, "a")])).await.unwrap();
    assert_eq!(group.evaluate_due().await.len(), 1, "0");
    // 50 years, a multiple of 30 s.
    let later: i64 = 50 * 365 * 86_400;
    group
        .push(Signal::Logs, &logs(&[(later, "a"), (later + 10, "a")]))
        .await
        .unwrap();
    let due = group.evaluate_due().await;
    let times: Vec<i64> = due.iter().map(|(t, _)| t / S).collect();
    assert_eq!(times, [30, 60, 90, 120, 150, later - 30, later]);
    let (_, last) = due.last().unwrap();
    assert_eq!(recorded_x(last).len(), 2);
    let count = last[1].result.as_ref().unwrap();
    assert_eq!(count.samples.len(), 1);
    assert_eq!(
        count.samples[0].value, 1.0,
        "(later - 2m, later] holds one log"
    );
}

/// A recording rule over the logs of each service, `window` seconds every
/// 30 s: `value` then what follows `FROM logs`.
fn over_logs(name: &str, window: u64, value: &str, rest: &str) -> RuleConfig {
    RuleConfig {
        window: Duration::from_secs(window),
        every: Duration::from_secs(30),
        ..RuleConfig::record(
            name,
            format!("SELECT service_name, CAST({value} AS DOUBLE) AS value FROM logs {rest}"),
        )
    }
}

/// Scenario: five rules read the logs grouped by service, with different
/// aggregates (count, newest, oldest, a sum), thresholds and windows; a
/// sixth filters the logs first. A reload then adds a rule of the first
/// shape with an aggregate none had (the maximum severity), and changes the
/// threshold of another.
/// Guarantees: the rules of one (table, filter, group-by) shape aggregate
/// once, in one store that computes each aggregate any of them needs once;
/// each rule reads its own aggregates, applies its own `HAVING` and window,
/// and gets what it would alone. After the reload the rules already served
/// keep their store and its history (the changed threshold too); the rule
/// with the new aggregate gets a store of its own, which starts from the
/// rows still held and says so.
#[tokio::test]
async fn rules_of_one_shape_share_one_aggregation_whatever_their_aggregates() {
    let by_service = "GROUP BY service_name";
    let mut rules = vec![
        over_logs(
            "count",
            60,
            "count(*)",
            "GROUP BY service_name HAVING count(*) > 0",
        ),
        over_logs("count2m", 120, "count(*)", by_service),
        over_logs("newest", 60, "to_unixtime(max(time))", by_service),
        over_logs(
            "oldest",
            60,
            "to_unixtime(min(time))",
            "GROUP BY service_name HAVING count(*) > 1",
        ),
        over_logs("severity", 60, "sum(severity_number)", by_service),
        over_logs(
            "errors",
            60,
            "count(*)",
            "WHERE severity_number >= 17 GROUP BY service_name",
        ),
    ];
    let mut group = RuleGroup::new("g", rules.clone(), &AlertSettings::default()).unwrap();
    assert_eq!(group.aggregations(), 2, "two shapes, six rules");
    group
        .push(Signal::Logs, &logs(&[(10, "x"), (20, "x"), (25, "y")]))
        .await
        .unwrap();
    group.advance_watermark(30 * S + 1);
    let done = group.evaluate(30 * S).await;
    let x = |name: &str, value: f64| (name.to_string(), Some(value));
    assert_eq!(
        recorded_x(&done),
        [
            x("count", 2.0),
            x("count2m", 2.0),
            x("newest", 20.0),
            x("oldest", 10.0),
            x("severity", 34.0),
            x("errors", 2.0),
        ]
    );
    let y_oldest = done[3].result.as_ref().unwrap().samples.len();
    assert_eq!(y_oldest, 1, "y has one log: `oldest`'s HAVING drops it");

    rules[0].sql = rules[0].sql.replace("> 0", "> 1");
    rules.push(over_logs(
        "loudest",
        120,
        "max(severity_number)",
        by_service,
    ));
    let report = group
        .reload(rules, &AlertSettings::default())
        .await
        .unwrap();
    assert_eq!(
        (report.changed, report.added),
        (vec!["count".to_string()], vec!["loudest".to_string()])
    );
    assert_eq!(group.aggregations(), 3, "the new aggregate's store");
    group.push(Signal::Logs, &logs(&[(40, "x")])).await.unwrap();
    group.advance_watermark(60 * S + 1);
    let done = group.evaluate(60 * S).await;
    assert_eq!(
        recorded_x(&done),
        [
            x("count", 3.0),
            x("count2m", 3.0),
            x("newest", 40.0),
            x("oldest", 10.0),
            x("severity", 51.0),
            x("errors", 3.0),
            x("loudest", 17.0),
        ],
        "the changed rule sees (0, 60] whole"
    );
    let whole_from: Vec<Option<i64>> = group
        .rules()
        .iter()
        .map(|r| r.complete_from().map(|t| t / S))
        .collect();
    assert_eq!(
        whole_from,
        [None, None, None, None, None, None, Some(150)],
        "loudest misses the rows up to 30 s: (t - 120, t] is whole from 150"
    );
}

/// Scenario: the same rules and the same logs, two panes' worth and then
/// some, with full panes aggregated in place and in the background (as a
/// rules processor does), pane rows flushed every two rows.
/// Guarantees: aggregating in the background changes no result: every
/// evaluation records the same values, and the partial aggregates hold
/// the same bytes after each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregating_in_the_background_changes_no_result() {
    let by_service = "GROUP BY service_name";
    let rules = vec![
        over_logs("count", 60, "count(*)", by_service),
        over_logs("newest", 120, "to_unixtime(max(time))", by_service),
        over_logs(
            "errors",
            60,
            "count(*)",
            "WHERE severity_number >= 17 GROUP BY service_name",
        ),
    ];
    let mut runs = Vec::new();
    for background in [false, true] {
        let mut group = RuleGroup::new("g", rules.clone(), &AlertSettings::default()).unwrap();
        group.flush_at(2);
        group.spread_over(2);
        group.aggregate_in_background(background);
        let mut seen = Vec::new();
        for (k, t) in [10, 20, 25, 40, 45, 50, 70, 80, 95, 100]
            .into_iter()
            .enumerate()
        {
            let service = if k % 3 == 0 { "y" } else { "x" };
            group
                .push(Signal::Logs, &logs(&[(t, service), (t + 1, "x")]))
                .await
                .unwrap();
            group.advance_watermark((t + 2) * S);
            for (at, done) in group.evaluate_due().await {
                seen.push((at / S, recorded_x(&done), group.pane_bytes()));
            }
        }
        runs.push(seen);
    }
    let times: Vec<i64> = runs[0].iter().map(|(t, _, _)| *t).collect();
    assert_eq!(times, [0, 30, 60, 90]);
    assert_eq!(
        runs[0][2].1,
        [
            ("count".to_string(), Some(10.0)),
            ("newest".to_string(), Some(51.0)),
            ("errors".to_string(), Some(10.0)),
        ],
        "(0, 60]: ten logs of x, the newest at 51 s"
    );
    assert_eq!(runs[0], runs[1]);
}
