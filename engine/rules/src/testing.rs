//! `weir test`: runs the `[[tests]]` of a pipeline file against its rules.
//!
//! A test feeds its input (metric series in promtool's notation, OTLP/JSON
//! logs, spans and metrics) into the rules in event-time order and
//! evaluates them at every multiple of the group's `every` from test time 0
//! up to the last time a test looks at, exactly as a pipeline would see the
//! same data arrive. At each time named by `[[tests.alerts]]` or
//! `[[tests.recorded]]` it compares what the rules hold with what is
//! expected, and reports every difference.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use arrow::array::{AsArray, RecordBatch, TimestampNanosecondArray};
use arrow::compute::{concat_batches, sort_to_indices, take_record_batch};
use arrow::datatypes::{DataType, TimestampNanosecondType};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
    metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use weir_config::{
    ExpectedAlerts, ExpectedRecorded, ExpectedState, PipelineTest, Plan, SeriesInput, SeriesKind,
};
use weir_core::Signal;
use weir_core::convert;
use weir_core::schema::col;

use crate::alert::{AlertSettings, AlertState, label_set_text};
use crate::config::RulesConfig;
use crate::group::RuleGroup;
use crate::processor::rule_config;
use crate::rule::RuleKind;
use crate::time::nanos;

/// What one test came to.
#[derive(Debug, Clone, PartialEq)]
pub struct TestOutcome {
    /// The test's name (`test N` when it has none).
    pub name: String,
    /// The line of its `[[tests]]` table.
    pub line: usize,
    /// Every difference or problem, as lines for the report; empty when the
    /// test passed.
    pub failures: Vec<String>,
}

impl TestOutcome {
    /// Whether the test passed.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Runs every `[[tests]]` of `plan` against the `rules` processor it names
/// (`weir test`), in file order.
pub async fn run_plan_tests(plan: &Plan) -> Vec<TestOutcome> {
    let mut outcomes = Vec::with_capacity(plan.tests.len());
    for (i, test) in plan.tests.iter().enumerate() {
        // The config crate has checked that the processor takes tests.
        let Some(config) = plan
            .component(&test.processor)
            .and_then(|c| c.config_as::<RulesConfig>())
        else {
            continue;
        };
        outcomes.push(run_test(i, test, config).await);
    }
    outcomes
}

/// Runs `test` (the `index`-th of its file) against the rules of `config`.
pub async fn run_test(index: usize, test: &PipelineTest, config: &RulesConfig) -> TestOutcome {
    let name = test
        .spec
        .name
        .clone()
        .unwrap_or_else(|| format!("test {}", index + 1));
    let mut outcome = TestOutcome {
        name,
        line: test.line,
        failures: Vec::new(),
    };
    if let Err(problem) = run(test, config, &mut outcome.failures).await {
        outcome.failures.push(problem);
    }
    outcome
}

async fn run(
    test: &PipelineTest,
    config: &RulesConfig,
    failures: &mut Vec<String>,
) -> Result<(), String> {
    let configs = config
        .rules
        .iter()
        .map(|r| rule_config(r, config))
        .collect();
    let mut group = RuleGroup::new(&test.processor, configs, &AlertSettings::default())
        .map_err(|e| e.to_string())?;
    let every = nanos(config.every);
    let mut inputs = Inputs::new(
        &test.spec.series,
        &test.spec.otlp,
        nanos(test.spec.interval),
    )?;

    let mut checks: BTreeMap<i64, (Vec<&ExpectedAlerts>, Vec<&ExpectedRecorded>)> = BTreeMap::new();
    for a in &test.spec.alerts {
        checks.entry(nanos(a.at)).or_default().0.push(a);
    }
    for r in &test.spec.recorded {
        checks.entry(nanos(r.at)).or_default().1.push(r);
    }
    for &at in checks.keys() {
        if every > 0 && at % every != 0 {
            return Err(format!(
                "{} is not an evaluation time: the rules evaluate every {}, from 0",
                duration_text(at),
                duration_text(every)
            ));
        }
    }
    let last = checks.keys().next_back().copied().unwrap_or(0);
    let mut t = 0;
    while t <= last {
        for (signal, batch) in inputs.up_to(t) {
            group
                .push(signal, &batch)
                .await
                .map_err(|e| e.to_string())?;
        }
        // Every row up to `t` is in: the watermark passes `t`.
        group.advance_watermark(t.saturating_add(1));
        let evaluations = group.evaluate(t).await;
        let mut recorded = BTreeMap::new();
        for e in evaluations {
            match e.result {
                Ok(done) => {
                    recorded.insert(e.rule, done.samples);
                }
                Err(err) => failures.push(format!("at {}: {err}", duration_text(t))),
            }
        }
        if let Some((alerts, series)) = checks.get(&t) {
            for expected in alerts {
                check_alerts(&group, expected, t, failures);
            }
            for expected in series {
                check_recorded(&group, &recorded, expected, t, failures);
            }
        }
        t += every.max(1);
    }
    Ok(())
}

/// An active instance: labels without `alertname`, state, annotations.
type GotAlert<'a> = (
    BTreeMap<String, String>,
    &'static str,
    &'a BTreeMap<String, String>,
);

fn check_alerts(group: &RuleGroup, expected: &ExpectedAlerts, t: i64, failures: &mut Vec<String>) {
    let at = duration_text(t);
    let Some(rule) = group
        .rules()
        .iter()
        .find(|r| r.config().name == expected.alert && r.config().kind == RuleKind::Alert)
    else {
        failures.push(format!(
            "at {at}: there is no alert rule `{}`",
            expected.alert
        ));
        return;
    };
    let mut got: Vec<GotAlert<'_>> = rule
        .alerts()
        .into_iter()
        .filter_map(|a| {
            let state = match a.state {
                AlertState::Pending => "pending",
                AlertState::Firing => "firing",
                _ => return None,
            };
            let mut labels = a.labels.clone();
            labels.remove("alertname");
            Some((labels, state, &a.annotations))
        })
        .collect();
    let mut lines = Vec::new();
    for want in &expected.expected {
        let state = match want.state {
            ExpectedState::Firing => "firing",
            ExpectedState::Pending => "pending",
        };
        let Some(i) = got.iter().position(|(labels, ..)| *labels == want.labels) else {
            lines.push(format!(
                "    missing:    {} {state}",
                label_set_text(&want.labels)
            ));
            continue;
        };
        let (labels, got_state, annotations) = got.remove(i);
        if got_state != state {
            lines.push(format!(
                "    {}: expected {state}, got {got_state}",
                label_set_text(&labels)
            ));
        }
        if let Some(want_ann) = &want.annotations
            && want_ann != annotations
        {
            lines.push(format!(
                "    {} annotations:\n      expected {}\n      got      {}",
                label_set_text(&labels),
                label_set_text(want_ann),
                label_set_text(annotations)
            ));
        }
    }
    for (labels, state, _) in got {
        lines.push(format!(
            "    unexpected: {} {state}",
            label_set_text(&labels)
        ));
    }
    if !lines.is_empty() {
        failures.push(format!(
            "at {at}, alert `{}`:\n{}",
            expected.alert,
            lines.join("\n")
        ));
    }
}

fn check_recorded(
    group: &RuleGroup,
    recorded: &BTreeMap<String, Vec<crate::query::Sample>>,
    expected: &ExpectedRecorded,
    t: i64,
    failures: &mut Vec<String>,
) {
    let at = duration_text(t);
    let is_record = group
        .rules()
        .iter()
        .any(|r| r.config().name == expected.metric && r.config().kind == RuleKind::Record);
    if !is_record {
        failures.push(format!(
            "at {at}: there is no recording rule `{}`",
            expected.metric
        ));
        return;
    }
    let mut got: Vec<&crate::query::Sample> = recorded
        .get(&expected.metric)
        .map(|s| s.iter().collect())
        .unwrap_or_default();
    let mut lines = Vec::new();
    for want in &expected.expected {
        let Some(i) = got.iter().position(|s| s.labels == want.labels) else {
            lines.push(format!(
                "    missing:    {} {}",
                label_set_text(&want.labels),
                want.value
            ));
            continue;
        };
        let sample = got.remove(i);
        if !close(sample.value, want.value) {
            lines.push(format!(
                "    {}: expected {}, got {}",
                label_set_text(&want.labels),
                want.value,
                sample.value
            ));
        }
    }
    for s in got {
        lines.push(format!(
            "    unexpected: {} {}",
            label_set_text(&s.labels),
            s.value
        ));
    }
    if !lines.is_empty() {
        failures.push(format!(
            "at {at}, recorded `{}`:\n{}",
            expected.metric,
            lines.join("\n")
        ));
    }
}

fn close(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

/// `90s` as "1m30s".
fn duration_text(n: i64) -> String {
    let d = std::time::Duration::from_nanos(u64::try_from(n).unwrap_or(0));
    humantime::format_duration(d).to_string().replace(' ', "")
}

/// A test's input (its `[[tests.series]]` and `[[tests.otlp]]`), per
/// table sorted by time, handed out in time order. `weir test` feeds
/// plugins from it too.
pub struct Inputs {
    tables: Vec<(Signal, RecordBatch, usize)>,
}

impl Inputs {
    /// The input of a test: its series (one value every `interval`
    /// nanoseconds from 0) and its OTLP/JSON blocks.
    pub fn new(
        series: &[SeriesInput],
        otlp: &[weir_config::OtlpInput],
        interval: i64,
    ) -> Result<Inputs, String> {
        let mut by_signal: BTreeMap<Signal, Vec<RecordBatch>> = BTreeMap::new();
        for (i, s) in series.iter().enumerate() {
            let batch = series_batch(s, interval).map_err(|e| format!("series {}: {e}", i + 1))?;
            by_signal.entry(Signal::Metrics).or_default().push(batch);
        }
        for (i, o) in otlp.iter().enumerate() {
            let at = nanos(o.at);
            let until = o.until.map(nanos).unwrap_or(at);
            let step = o.every.map(nanos).filter(|&s| s > 0);
            let mut shift = at;
            loop {
                let (signal, batch) =
                    otlp_batch(o, shift).map_err(|e| format!("otlp input {}: {e}", i + 1))?;
                by_signal.entry(signal).or_default().push(batch);
                match step {
                    Some(step) if shift + step <= until => shift += step,
                    _ => break,
                }
                if by_signal.values().map(Vec::len).sum::<usize>() > 100_000 {
                    return Err(format!("otlp input {}: more than 100000 replays", i + 1));
                }
            }
        }
        let mut tables = Vec::new();
        for (signal, batches) in by_signal {
            let schema = weir_core::schema::schema_for(signal);
            let all = concat_batches(&schema, &batches).map_err(|e| e.to_string())?;
            let time = all
                .column_by_name(signal.time_column())
                .ok_or("no time column")?;
            let order = sort_to_indices(time, None, None).map_err(|e| e.to_string())?;
            let sorted = take_record_batch(&all, &order).map_err(|e| e.to_string())?;
            tables.push((signal, sorted, 0));
        }
        Ok(Inputs { tables })
    }

    /// The time of the earliest row not handed out yet.
    pub fn next_time(&self) -> Option<i64> {
        self.tables
            .iter()
            .filter_map(|(signal, batch, next)| times(*signal, batch)?.get(*next).copied())
            .min()
    }

    /// The time of the latest row.
    pub fn last_time(&self) -> Option<i64> {
        self.tables
            .iter()
            .filter_map(|(signal, batch, _)| times(*signal, batch)?.last().copied())
            .max()
    }

    /// The rows not handed out yet whose time is at most `t`.
    pub fn up_to(&mut self, t: i64) -> Vec<(Signal, RecordBatch)> {
        let mut out = Vec::new();
        for (signal, batch, next) in &mut self.tables {
            let Some(time) = batch
                .column_by_name(signal.time_column())
                .and_then(|c| c.as_primitive_opt::<TimestampNanosecondType>())
            else {
                continue;
            };
            let values = time.values();
            let end = *next + values[*next..].partition_point(|&v| v <= t);
            if end > *next {
                out.push((*signal, batch.slice(*next, end - *next)));
                *next = end;
            }
        }
        out
    }
}

/// The times of a table sorted by its time column.
fn times(signal: Signal, batch: &RecordBatch) -> Option<&[i64]> {
    batch
        .column_by_name(signal.time_column())
        .and_then(|c| c.as_primitive_opt::<TimestampNanosecondType>())
        .map(|c| &c.values()[..])
}

fn otlp_batch(input: &weir_config::OtlpInput, shift: i64) -> Result<(Signal, RecordBatch), String> {
    let mut json: serde_json::Value =
        serde_json::from_str(&input.json).map_err(|e| format!("not JSON: {e}"))?;
    shift_times(&mut json, shift);
    let body = json.to_string();
    let body = body.as_bytes();
    let converted = if json.get("resourceSpans").is_some() {
        (
            Signal::Spans,
            convert::json::decode_spans(body).and_then(|r| convert::spans_to_batch(&r)),
        )
    } else if json.get("resourceLogs").is_some() {
        (
            Signal::Logs,
            convert::json::decode_logs(body).and_then(|r| convert::logs_to_batch(&r)),
        )
    } else if json.get("resourceMetrics").is_some() {
        (
            Signal::Metrics,
            convert::json::decode_metrics(body).and_then(|r| convert::metrics_to_batch(&r)),
        )
    } else {
        return Err(
            "expected an OTLP/JSON request: an object with `resourceLogs`, `resourceSpans` \
             or `resourceMetrics`"
                .to_string(),
        );
    };
    let (signal, result) = converted;
    let converted = result.map_err(|e| e.to_string())?;
    if converted.rejected > 0 {
        return Err(format!(
            "{} records refused: {}",
            converted.rejected,
            converted.rejection.unwrap_or_default()
        ));
    }
    Ok((signal, converted.batch))
}

/// Adds `by` to every `timeUnixNano`, `startTimeUnixNano`, ... value
/// (string or number) in `json`.
fn shift_times(json: &mut serde_json::Value, by: i64) {
    match json {
        serde_json::Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                let lower = key.to_ascii_lowercase();
                if lower.ends_with("timeunixnano") || lower.ends_with("time_unix_nano") {
                    let base = match &*value {
                        serde_json::Value::String(s) => s.parse::<i64>().ok(),
                        serde_json::Value::Number(n) => n.as_i64(),
                        _ => None,
                    };
                    if let Some(base) = base {
                        *value = serde_json::Value::String(base.saturating_add(by).to_string());
                    }
                } else {
                    shift_times(value, by);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(|v| shift_times(v, by)),
        _ => {}
    }
}

fn series_batch(input: &SeriesInput, interval: i64) -> Result<RecordBatch, String> {
    let (name, labels) = parse_series(&input.series)?;
    let values = expand_values(&input.values)?;
    let kv = |k: &str, v: &str| KeyValue {
        key: k.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.to_string())),
        }),
        ..Default::default()
    };
    let attributes: Vec<KeyValue> = labels
        .iter()
        .filter(|(k, _)| k.as_str() != col::SERVICE_NAME)
        .map(|(k, v)| kv(k, v))
        .collect();
    let mut times = Vec::with_capacity(values.len());
    let points: Vec<NumberDataPoint> = values
        .iter()
        .enumerate()
        .filter_map(|(i, v)| {
            let v = (*v)?;
            let time = i64::try_from(i).ok()?.saturating_mul(interval);
            times.push(time);
            Some(NumberDataPoint {
                attributes: attributes.clone(),
                time_unix_nano: u64::try_from(time).ok()?,
                value: Some(number_data_point::Value::AsDouble(v)),
                ..Default::default()
            })
        })
        .collect();
    let data = match input.kind {
        SeriesKind::Gauge => metric::Data::Gauge(Gauge {
            data_points: points,
        }),
        SeriesKind::Sum => metric::Data::Sum(Sum {
            data_points: points,
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
            is_monotonic: true,
        }),
    };
    let resource = labels.get(col::SERVICE_NAME).map(|s| Resource {
        attributes: vec![kv("service.name", s)],
        ..Default::default()
    });
    let request = ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource,
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name,
                    data: Some(data),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let batch = convert::metrics_to_batch(&request)
        .map(|c| c.batch)
        .map_err(|e| e.to_string())?;
    // OTLP reads a time of 0 as "unset"; a series starts at 0, as in
    // promtool: the times are set here, one per point, in order.
    with_times(batch, times)
}

/// `batch` with its time column replaced by `times`.
fn with_times(batch: RecordBatch, times: Vec<i64>) -> Result<RecordBatch, String> {
    let schema = batch.schema();
    let index = schema
        .index_of(Signal::Metrics.time_column())
        .map_err(|e| e.to_string())?;
    let timezone = match schema.field(index).data_type() {
        DataType::Timestamp(_, tz) => tz.clone(),
        other => return Err(format!("the time column is {other}")),
    };
    let mut columns = batch.columns().to_vec();
    columns[index] = Arc::new(TimestampNanosecondArray::from(times).with_timezone_opt(timezone));
    RecordBatch::try_new(schema, columns).map_err(|e| e.to_string())
}

/// `name{a="1", b="2"}` as the name and the labels.
pub fn parse_series(text: &str) -> Result<(String, BTreeMap<String, String>), String> {
    let text = text.trim();
    let (name, rest) = match text.find('{') {
        Some(i) => (&text[..i], Some(&text[i + 1..])),
        None => (text, None),
    };
    let name = name.trim();
    if name.is_empty() {
        return Err(format!(
            "`{text}` has no metric name: write `name{{label=\"value\"}}`"
        ));
    }
    let mut labels = BTreeMap::new();
    let Some(rest) = rest else {
        return Ok((name.to_string(), labels));
    };
    let body = rest
        .trim_end()
        .strip_suffix('}')
        .ok_or_else(|| format!("`{text}`: the labels do not end with `}}`"))?;
    let mut chars = body.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let key: String = chars
            .by_ref()
            .take_while(|c| *c != '=')
            .collect::<String>()
            .trim()
            .to_string();
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if key.is_empty() || chars.next() != Some('"') {
            return Err(format!(
                "`{text}`: write each label as name=\"value\", separated by commas"
            ));
        }
        let mut value = String::new();
        let mut closed = false;
        while let Some(c) = chars.next() {
            match c {
                '\\' => value.extend(chars.next()),
                '"' => {
                    closed = true;
                    break;
                }
                c => value.push(c),
            }
        }
        if !closed {
            return Err(format!(
                "`{text}`: the value of `{key}` has no closing quote"
            ));
        }
        labels.insert(key, value);
    }
    Ok((name.to_string(), labels))
}

/// Expands promtool's value notation: `1 2 _ 3`, `a+bxn`, `a-bxn`, `axn`,
/// `_xn`, `stale` (taken as no value).
pub fn expand_values(text: &str) -> Result<Vec<Option<f64>>, String> {
    let mut out = Vec::new();
    for token in text.split_whitespace() {
        let bad = || {
            format!(
                "`{token}` is not a value: write a number, `_`, `a+bxn`, `a-bxn`, `axn` or `_xn`"
            )
        };
        if token == "_" || token == "stale" {
            out.push(None);
            continue;
        }
        let Some((head, times)) = token.rsplit_once('x').filter(|(h, _)| !h.is_empty()) else {
            out.push(Some(token.parse::<f64>().map_err(|_| bad())?));
            continue;
        };
        let n: usize = times.parse().map_err(|_| bad())?;
        if n > 100_000 {
            return Err(format!("`{token}`: at most 100000 repeats"));
        }
        if head == "_" {
            out.extend(std::iter::repeat_n(None, n));
            continue;
        }
        // The operator is the first `+` or `-` after the first character
        // (which may be a sign) that does not follow an exponent's `e`.
        let bytes = head.as_bytes();
        let op = (1..bytes.len()).find(|&i| {
            (bytes[i] == b'+' || bytes[i] == b'-') && !matches!(bytes[i - 1], b'e' | b'E')
        });
        let (start, step) = match op {
            Some(i) => {
                let start: f64 = head[..i].parse().map_err(|_| bad())?;
                let step: f64 = head[i + 1..].parse().map_err(|_| bad())?;
                (start, if bytes[i] == b'-' { -step } else { step })
            }
            None => (head.parse::<f64>().map_err(|_| bad())?, 0.0),
        };
        out.extend((0..=n).map(|k| Some(start + step * k as f64)));
    }
    Ok(out)
}

/// Renders the outcomes as `weir test` prints them.
pub fn report(file: &str, outcomes: &[TestOutcome]) -> String {
    let mut text = String::new();
    for o in outcomes {
        let verdict = if o.passed() { "ok" } else { "FAILED" };
        let _ = writeln!(text, "test {} ({file}:{}) ... {verdict}", o.name, o.line);
        for f in &o.failures {
            for line in f.lines() {
                let _ = writeln!(text, "  {line}");
            }
        }
    }
    let failed = outcomes.iter().filter(|o| !o.passed()).count();
    let _ = writeln!(
        text,
        "\n{}: {} passed, {failed} failed",
        if failed == 0 { "ok" } else { "FAILED" },
        outcomes.len() - failed
    );
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guarantees: promtool's value notation expands as promtool does.
    #[test]
    fn expands_promtool_values() {
        let v = |s: &str| expand_values(s).expect(s);
        assert_eq!(v("1 2 _ 3"), [Some(1.0), Some(2.0), None, Some(3.0)]);
        assert_eq!(v("0+10x3"), [Some(0.0), Some(10.0), Some(20.0), Some(30.0)]);
        assert_eq!(v("-1-1x2"), [Some(-1.0), Some(-2.0), Some(-3.0)]);
        assert_eq!(v("5x2"), [Some(5.0); 3]);
        assert_eq!(v("_x2 1e3"), [None, None, Some(1000.0)]);
        assert_eq!(v("1e2+1x1"), [Some(100.0), Some(101.0)]);
        assert!(expand_values("1+x3").is_err());
        assert!(expand_values("abc").is_err());
    }

    /// Guarantees: series text parses into a name and labels, escapes
    /// included; malformed text is an error saying how to write it.
    #[test]
    fn parses_series_text() {
        let (name, labels) =
            parse_series(r#"queue_depth{service_name="worker", queue="a \"b\""}"#).expect("ok");
        assert_eq!(name, "queue_depth");
        assert_eq!(labels["service_name"], "worker");
        assert_eq!(labels["queue"], "a \"b\"");
        assert_eq!(parse_series("up").expect("ok").1.len(), 0);
        assert!(parse_series(r#"x{a=b}"#).is_err());
        assert!(parse_series(r#"{a="b"}"#).is_err());
        assert!(parse_series(r#"x{a="b""#).is_err());
    }
}
