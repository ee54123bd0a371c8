//! The `rules` processor as a pipeline runs it: configured from TOML, fed
//! span batches, emitting recorded series as metric points and alert
//! events as `alerts` batches.

use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point};
use weir_config::{Plan, Registry};
use weir_core::{Ack, AckStatus, Batch, Processor, Signal};
use weir_rules::{AlertSettings, RulesConfig, RulesProcessor};

/// A multiple of 30 s, in seconds since the epoch.
const BASE: u64 = 1_700_000_040;

const PIPELINE: &str = r#"
[sources.otlp]
type = "otlp"

[processors.slo]
type = "rules"
inputs = ["otlp.spans"]
every = "30s"

[[processors.slo.rules]]
record = "spans_per_service"
window = "1m"
sql = "SELECT service_name, CAST(count(*) AS DOUBLE) AS value FROM spans GROUP BY service_name"

[[processors.slo.rules]]
alert = "CartIsBusy"
window = "1m"
sql = "SELECT service_name, CAST(count(*) AS DOUBLE) AS value FROM spans WHERE service_name = 'cart' GROUP BY service_name HAVING count(*) >= 3"
labels = { severity = "page" }

[sinks.store]
type = "store"
inputs = ["slo", "otlp"]
"#;

/// Reads `pipeline` with the component types its files use.
fn parse_str(pipeline: &str, file: &str) -> Result<Plan, weir_config::ConfigError> {
    let registry = Registry::new()
        .source::<weir_sources::OtlpSourceConfig>("otlp")
        .processor::<RulesConfig>("rules")
        .sink::<weir_store::StoreSinkConfig>("store");
    weir_config::parse_str(pipeline, file, &registry)
}

fn processor() -> RulesProcessor {
    processor_of(PIPELINE)
}

fn processor_of(pipeline: &str) -> RulesProcessor {
    RulesProcessor::new("slo", &config_of(pipeline), &AlertSettings::default())
        .expect("the rules are valid")
}

/// Spans of `service` starting `offsets` seconds after [`BASE`].
fn spans(service: &str, offsets: &[u64]) -> arrow::record_batch::RecordBatch {
    let starts: Vec<u64> = offsets.iter().map(|s| (BASE + s) * 1_000_000_000).collect();
    spans_at(service, &starts)
}

/// Spans of `service` starting at `starts` (nanoseconds since the epoch).
fn spans_at(service: &str, starts: &[u64]) -> arrow::record_batch::RecordBatch {
    let spans: Vec<String> = starts
        .iter()
        .enumerate()
        .map(|(i, &start)| {
            format!(
                r#"{{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b17{i}",
                    "name":"op","kind":2,"startTimeUnixNano":"{start}",
                    "endTimeUnixNano":"{}"}}"#,
                start + 1_000_000
            )
        })
        .collect();
    let json = format!(
        r#"{{"resourceSpans":[{{"resource":{{"attributes":[
            {{"key":"service.name","value":{{"stringValue":"{service}"}}}}]}},
            "scopeSpans":[{{"spans":[{}]}}]}}]}}"#,
        spans.join(",")
    );
    let request = weir_core::convert::json::decode_spans(json.as_bytes()).expect("OTLP/JSON");
    weir_core::convert::spans_to_batch(&request)
        .expect("converts")
        .batch
}

/// (metric name, service, value) of every point in `out`.
fn points(out: &[Batch]) -> Vec<(String, String, f64)> {
    let mut points: Vec<_> = states(out)
        .into_iter()
        .map(|(_, name, service, value, _)| (name, service, value))
        .collect();
    points.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    points
}

/// (seconds after [`BASE`], metric name, service, value, `alertstate`) of
/// every point in `out`, in time order.
fn states(out: &[Batch]) -> Vec<(u64, String, String, f64, String)> {
    let mut points = Vec::new();
    for batch in out.iter().filter(|b| b.signal() == Signal::Metrics) {
        let request = weir_core::convert::batch_to_metrics(batch.data()).expect("to OTLP");
        for rm in &request.resource_metrics {
            let service = rm
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| kv.value.as_ref()?.value.as_ref())
                .map(|v| match v {
                    any_value::Value::StringValue(s) => s.clone(),
                    other => panic!("service.name is a string: {other:?}"),
                })
                .unwrap_or_default();
            for sm in &rm.scope_metrics {
                for m in &sm.metrics {
                    let Some(metric::Data::Gauge(g)) = &m.data else {
                        panic!("recorded series are gauges")
                    };
                    for p in &g.data_points {
                        let value = match p.value {
                            Some(number_data_point::Value::AsDouble(v)) => v,
                            other => panic!("a double value: {other:?}"),
                        };
                        let state = p
                            .attributes
                            .iter()
                            .find(|kv| kv.key == "alertstate")
                            .and_then(|kv| kv.value.as_ref()?.value.as_ref())
                            .map(|v| match v {
                                any_value::Value::StringValue(s) => s.clone(),
                                other => panic!("alertstate is a string: {other:?}"),
                            })
                            .unwrap_or_default();
                        let at = p.time_unix_nano / 1_000_000_000 - BASE;
                        points.push((at, m.name.clone(), service.clone(), value, state));
                    }
                }
            }
        }
    }
    points.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    points
}

/// (seconds after [`BASE`], `kind`, `state`, `alertname`) of every alert
/// event in `out`, in time order.
fn events(out: &[Batch]) -> Vec<(u64, String, String, String)> {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{Int32Type, TimestampNanosecondType};
    let mut events = Vec::new();
    for batch in out.iter().filter(|b| b.signal() == Signal::Alerts) {
        let data = batch.data();
        assert_eq!(data.schema(), weir_core::schema::alerts_schema());
        let text = |name: &str, row: usize| {
            let dict = data
                .column_by_name(name)
                .expect(name)
                .as_dictionary::<Int32Type>();
            let values = dict.values().as_string::<i32>();
            values.value(dict.keys().value(row) as usize).to_string()
        };
        let time = data.column_by_name("time").expect("time");
        let labels = data.column_by_name("labels").expect("labels").as_map();
        for row in 0..data.num_rows() {
            let at = time.as_primitive::<TimestampNanosecondType>().value(row);
            let entry = labels.value(row);
            let (keys, values) = (
                entry.column(0).as_string::<i32>(),
                entry.column(1).as_string::<i32>(),
            );
            let name = (0..keys.len())
                .find(|&i| keys.value(i) == "alertname")
                .map(|i| values.value(i).to_string())
                .expect("every alert has an alertname");
            events.push((
                (at as u64) / 1_000_000_000 - BASE,
                text("kind", row),
                text("state", row),
                name,
            ));
        }
    }
    events.sort();
    events
}

/// Scenario: three `cart` spans and one `shop` span in the first 30 s, then
/// a span 35 s in that moves event time past the first due time.
/// Guarantees: nothing is emitted before the data's time passes a due
/// time; then the recording rule's points and the alert's `ALERTS` point
/// come out as metrics; the input batches are acknowledged once taken.
#[tokio::test]
async fn records_series_when_event_time_passes_a_due_time() {
    let mut p = processor();
    let mut out = Vec::new();
    let (ack, waiter) = Ack::new();
    p.process(
        Batch::new(Signal::Spans, spans("cart", &[1, 5, 9]), ack),
        &mut out,
    )
    .await
    .expect("taken");
    assert_eq!(
        waiter.await,
        AckStatus::Delivered,
        "acknowledged once taken"
    );
    p.process(
        Batch::new(Signal::Spans, spans("shop", &[12]), Ack::none()),
        &mut out,
    )
    .await
    .expect("taken");
    assert!(out.is_empty(), "no due time has passed: {}", out.len());

    p.process(
        Batch::new(Signal::Spans, spans("shop", &[35]), Ack::none()),
        &mut out,
    )
    .await
    .expect("taken");
    let got = points(&out);
    let (cart, shop) = ("cart".to_string(), "shop".to_string());
    assert!(
        got.contains(&("spans_per_service".into(), cart.clone(), 3.0)),
        "{got:?}"
    );
    assert!(
        got.contains(&("spans_per_service".into(), shop, 1.0)),
        "{got:?}"
    );
    assert!(got.contains(&("ALERTS".into(), cart, 1.0)), "{got:?}");
    assert_eq!(got.len(), 3, "{got:?}");
    // No `for`: the alert fires at once, a transition and a notification.
    let event = |kind: &str| (30, kind.into(), "firing".into(), "CartIsBusy".into());
    assert_eq!(events(&out), [event("notification"), event("transition")]);
}

/// Scenario: a file whose rule reads a table that does not exist.
/// Guarantees: the file is refused at the rule's `alert` line, naming the
/// rule and the table; building the processor fails the same way.
#[test]
fn bad_sql_fails_the_build() {
    let text = PIPELINE.replace("FROM spans WHERE", "FROM spanz WHERE");
    let line = text
        .lines()
        .position(|l| l.starts_with("alert = \"CartIsBusy\""))
        .expect("the rule is in the file")
        + 1;
    let e = parse_str(&text, "slo.toml")
        .expect_err("refused")
        .to_string();
    assert!(e.contains(&format!("slo.toml:{line}:")), "{e}");
    assert!(e.contains("CartIsBusy") && e.contains("spanz"), "{e}");

    let mut config = config_of(PIPELINE);
    config.rules[1].sql = config.rules[1].sql.replace("FROM spans", "FROM spanz");
    let e = RulesProcessor::new("slo", &config, &AlertSettings::default())
        .err()
        .expect("refused");
    assert_eq!(e.rule(), "CartIsBusy");
    assert!(e.to_string().contains("spanz"), "{e}");
}

/// Feeds `cart` spans at `offsets` (seconds after [`BASE`]) and returns
/// the `ALERTS` states emitted for `cart`.
async fn feed(p: &mut RulesProcessor, offsets: &[u64]) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    p.process(
        Batch::new(Signal::Spans, spans("cart", offsets), Ack::none()),
        &mut out,
    )
    .await
    .expect("taken");
    alert_states(&out)
}

/// (seconds after [`BASE`], `alertstate`) of the `ALERTS` points in `out`.
fn alert_states(out: &[Batch]) -> Vec<(u64, String)> {
    states(out)
        .into_iter()
        .filter(|(_, name, ..)| name == "ALERTS")
        .map(|(at, .., state)| (at, state))
        .collect()
}

/// Scenario: `CartIsBusy` (`for = "1m"`) turns pending at BASE+30; Weir
/// stops and starts again with the same state file; the condition holds
/// at BASE+60 and BASE+90. Guarantees: the pending alert keeps its `for`
/// clock across the restart and fires at BASE+90 (without the saved state
/// it would only have turned pending at BASE+60, still pending at +90);
/// evaluation resumes after the last time evaluated before the restart.
#[tokio::test]
async fn pending_alert_keeps_its_for_clock_across_a_restart() {
    let dir = tempfile::tempdir().expect("tmp");
    let state = dir.path().join("rules/slo.json");
    let pipeline = PIPELINE.replace(
        "labels = { severity = \"page\" }",
        "labels = { severity = \"page\" }\nfor = \"1m\"",
    );
    let mut first = processor_of(&pipeline).with_state_file(&state);
    assert!(feed(&mut first, &[1, 5, 9]).await.is_empty());
    assert_eq!(feed(&mut first, &[35]).await, [(30, "pending".into())]);
    drop(first);
    assert!(state.is_file(), "the state is saved after an evaluation");

    let mut second = processor_of(&pipeline).with_state_file(&state);
    // +55: no time after +30 is due yet, and +30 is not evaluated again.
    assert!(feed(&mut second, &[45, 50, 55]).await.is_empty());
    // +95: +60 (pending, clock from +30) and +90 (firing: +30 + 1m).
    let mut out = Vec::new();
    second
        .process(
            Batch::new(Signal::Spans, spans("cart", &[95]), Ack::none()),
            &mut out,
        )
        .await
        .expect("taken");
    let alerts = alert_states(&out);
    assert_eq!(alerts, [(60, "pending".into()), (90, "firing".into())]);
    // Only the firing is an event: pending began before the restart.
    let event = |kind: &str| (90, kind.into(), "firing".into(), "CartIsBusy".into());
    assert_eq!(events(&out), [event("notification"), event("transition")]);

    // The same run without the saved state only turns pending.
    let mut fresh = processor_of(&pipeline);
    assert!(feed(&mut fresh, &[45, 50, 55]).await.is_empty());
    assert_eq!(
        feed(&mut fresh, &[95]).await,
        [(60, "pending".into()), (90, "pending".into())]
    );
}

/// Scenario: the state file holds garbage. Guarantees: the processor
/// starts without state, sets the file aside, and writes a good one after
/// its next evaluation.
#[tokio::test]
async fn unreadable_state_is_set_aside() {
    let dir = tempfile::tempdir().expect("tmp");
    let state = dir.path().join("slo.json");
    std::fs::write(&state, "{not json").expect("write");
    let mut p = processor().with_state_file(&state);
    assert!(dir.path().join("slo.json.unreadable").is_file());
    feed(&mut p, &[1, 5, 9]).await;
    feed(&mut p, &[35]).await;
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state).expect("saved")).expect("JSON");
    assert_eq!(saved["version"], 1);
    assert_eq!(saved["last_evaluation"], (BASE + 30) * 1_000_000_000);
}

/// Scenario: `CartIsBusy` fires at BASE+30; then nothing arrives and event
/// time is moved on an hour, as an idle input does.
/// Guarantees: the evaluations that can still see the data run one by one
/// (the alert resolves at BASE+90, once its window holds no `cart` span);
/// then the rules jump to the last due time instead of evaluating every
/// empty window in between.
#[tokio::test]
async fn idle_time_resolves_alerts_and_jumps_empty_windows() {
    let mut p = processor();
    let mut out = Vec::new();
    for offsets in [&[1, 5, 9][..], &[35]] {
        p.process(
            Batch::new(Signal::Spans, spans("cart", offsets), Ack::none()),
            &mut out,
        )
        .await
        .expect("taken");
    }
    assert!(events(&out).contains(&(
        30,
        "transition".into(),
        "firing".into(),
        "CartIsBusy".into()
    )));
    out.clear();
    let hour_later = (BASE as i64 + 3600) * 1_000_000_000 + 7;
    p.advance_idle(hour_later, &mut out).await;
    let got = events(&out);
    assert!(
        got.contains(&(
            90,
            "transition".into(),
            "resolved".into(),
            "CartIsBusy".into()
        )),
        "{got:?}"
    );
    assert_eq!(
        p.group().last_evaluation(),
        Some((BASE as i64 + 3600) * 1_000_000_000)
    );
    // +60, +90, +120 and the jump to +3600: no batch per empty window.
    assert!(out.len() < 12, "{} batches", out.len());
}

/// Scenario: a processor whose `idle_timeout` has passed with data from
/// long ago. Guarantees: a tick moves event time to the present, so the
/// last evaluation is within one interval of now.
#[tokio::test]
async fn tick_moves_an_idle_input_to_the_present() {
    let pipeline = PIPELINE.replace("every = \"30s\"", "every = \"30s\"\nidle_timeout = \"1ms\"");
    let mut p = processor_of(&pipeline);
    let mut out = Vec::new();
    p.process(
        Batch::new(Signal::Spans, spans("cart", &[1, 5, 9, 35]), Ack::none()),
        &mut out,
    )
    .await
    .expect("taken");
    assert!(p.tick_interval().is_some(), "idle advance is on");
    std::thread::sleep(std::time::Duration::from_millis(5));
    p.tick(&mut out).await.expect("tick");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos() as i64;
    let last = p.group().last_evaluation().expect("evaluated");
    assert!(
        now - last <= 31_000_000_000,
        "last evaluation {last}, now {now}"
    );
}

/// The `slo` processor's config in `pipeline`.
fn config_of(pipeline: &str) -> RulesConfig {
    let plan = parse_str(pipeline, "slo.toml").expect("valid pipeline");
    plan.component("slo")
        .and_then(|c| c.config_as::<RulesConfig>())
        .expect("slo is a rules processor")
        .clone()
}

/// The value recorded for `cart` by `metric` in `out`, at `at` seconds
/// after [`BASE`].
fn recorded(out: &[Batch], metric: &str, at: u64) -> Option<f64> {
    states(out)
        .into_iter()
        .find(|(t, name, service, ..)| *t == at && name == metric && service == "cart")
        .map(|(.., value, _)| value)
}

/// Scenario: `CartIsBusy` (`for = "1m"`) turns pending at BASE+30; the
/// config is reloaded with both rules unchanged and a new recording rule;
/// the condition holds on. Then a reload with broken SQL, then one that
/// changes `CartIsBusy`'s labels.
/// Guarantees: unchanged rules keep their alert state (the `for` clock
/// from +30: firing at +90) and their partial aggregates (the count at +60
/// holds the spans from before the reload); a new rule that aggregates
/// as `CartIsBusy` does shares its partial aggregates, so its first window
/// holds the spans from before the reload too; an invalid reload changes
/// nothing and says why; a changed rule starts afresh; a reload sent
/// through `reloads()` is taken before the next batch.
#[tokio::test]
async fn reload_keeps_the_state_of_unchanged_rules() {
    let pipeline = PIPELINE.replace(
        "labels = { severity = \"page\" }",
        "labels = { severity = \"page\" }\nfor = \"1m\"",
    );
    let mut p = processor_of(&pipeline);
    assert!(feed(&mut p, &[1, 5, 9]).await.is_empty());
    assert_eq!(feed(&mut p, &[35]).await, [(30, "pending".into())]);

    let added = format!(
        "{pipeline}\n[[processors.slo.rules]]\nrecord = \"cart_spans\"\nwindow = \"1m\"\n\
         sql = \"SELECT service_name, CAST(count(*) AS DOUBLE) AS value FROM spans \
         WHERE service_name = 'cart' GROUP BY service_name\"\n"
    );
    let report = p.reload(&config_of(&added)).await.expect("valid");
    assert_eq!(report.kept, ["spans_per_service", "CartIsBusy"]);
    assert_eq!(report.added, ["cart_spans"]);
    assert!(report.changed.is_empty() && report.removed.is_empty());

    // A file with such SQL is refused when read; a config that reaches
    // the processor anyway is refused by it.
    let mut broken = config_of(&added);
    for rule in &mut broken.rules {
        rule.sql = rule.sql.replace(
            "FROM spans WHERE service_name = 'cart' GROUP",
            "FROM spanz GROUP",
        );
    }
    let e = p.reload(&broken).await.expect_err("refused");
    assert!(e.to_string().contains("spanz"), "{e}");

    let mut out = Vec::new();
    for offsets in [&[45, 50, 55][..], &[95]] {
        p.process(
            Batch::new(Signal::Spans, spans("cart", offsets), Ack::none()),
            &mut out,
        )
        .await
        .expect("taken");
    }
    let alerts = alert_states(&out);
    assert_eq!(alerts, [(60, "pending".into()), (90, "firing".into())]);
    assert_eq!(recorded(&out, "spans_per_service", 60), Some(7.0));
    assert_eq!(
        recorded(&out, "cart_spans", 60),
        Some(7.0),
        "the new rule runs CartIsBusy's aggregation: its first window is whole"
    );

    // Changing the alert's labels makes it another rule: it starts again.
    let relabelled = added.replace("severity = \"page\"", "severity = \"ticket\"");
    p.reloads().send(config_of(&relabelled));
    let mut out = Vec::new();
    p.process(
        Batch::new(
            Signal::Spans,
            spans("cart", &[100, 105, 110, 125]),
            Ack::none(),
        ),
        &mut out,
    )
    .await
    .expect("taken");
    let alerts = alert_states(&out);
    assert_eq!(alerts, [(120, "pending".into())], "a new `for` clock");
    assert_eq!(
        recorded(&out, "cart_spans", 120),
        Some(4.0),
        "kept: 95..110"
    );
}

/// Scenario: a span stamped now, then one stamped in 2262 (the last time a
/// nanosecond timestamp holds) by a broken clock, then one a second after
/// the first.
/// Guarantees: the one from 2262 is dropped and counted as from the
/// future; event time stays with the clock (at most `max_future`, 10
/// minutes by default, ahead), so the span after it is not late.
#[tokio::test]
async fn a_record_from_a_broken_clock_does_not_move_event_time() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_nanos() as u64;
    let mut p = processor();
    let mut out = Vec::new();
    for starts in [
        &[now][..],
        &[9_223_372_036_000_000_000],
        &[now + 1_000_000_000],
    ] {
        p.process(
            Batch::new(Signal::Spans, spans_at("cart", starts), Ack::none()),
            &mut out,
        )
        .await
        .expect("taken");
    }
    let stats = p.group().buffer_stats()[0].1;
    assert_eq!((stats.future_rows, stats.late_rows), (1, 0));
    assert_eq!(stats.accepted_rows, 2);
    let watermark = p.group().watermark().expect("a watermark") as u64;
    assert!(
        watermark <= now + 600_000_000_000,
        "event time stays near the clock"
    );
}
