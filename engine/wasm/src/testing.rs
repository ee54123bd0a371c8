//! `weir test` for `wasm` processors: feeds a test's input through one
//! instance of the plugin, at the input's times, ticks it as it asks, and
//! compares what comes out with `[[tests.outputs]]`, like Vector's unit
//! tests of a transform.
//!
//! Test time starts at 0 (the Unix epoch), as for rules: the input's rows
//! come in time order, each time's rows as one batch, and a plugin that
//! asks for ticks every `k` gets `tick(k)`, `tick(2k)`, ... after the input
//! of the same time, up to the test's `until`. What comes out is every
//! batch the plugin left with rows in it, everything it emitted and
//! everything it released from its hold, over the whole test, each call's
//! in that order. Rows still held at `until` do not come out (`weir run`
//! would send them on, undecided, when it stops): a test of a plugin that
//! holds rows runs until past its decision.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use arrow::record_batch::RecordBatch;
use weir_config::{ExpectedOutput, OutputSignal, PipelineTest};
use weir_core::Signal;

use crate::columns::{self, AttributeSet};
use crate::processor::load_one;
use crate::{Runtime, WasmConfig};

/// A test's input, handed out in time order.
pub trait Feed {
    /// The time of the earliest row not handed out yet.
    fn next_time(&self) -> Option<i64>;
    /// The time of the latest row.
    fn last_time(&self) -> Option<i64>;
    /// The rows not handed out yet whose time is at most `t`.
    fn up_to(&mut self, t: i64) -> Vec<(Signal, RecordBatch)>;
}

/// The most steps (input times and ticks) one test may take: a tick of
/// 1ms over a day would otherwise run for a long while.
const MAX_STEPS: usize = 1_000_000;

/// Runs `test` through the plugin of `config`; returns every difference
/// or problem, as lines for the report (none when the test passed).
pub fn run_test(test: &PipelineTest, config: &WasmConfig, feed: &mut dyn Feed) -> Vec<String> {
    let mut failures = Vec::new();
    if !test.spec.alerts.is_empty() || !test.spec.recorded.is_empty() {
        failures.push(format!(
            "`{}` is a `wasm` processor: it has no alerts or recorded series to check; \
             use `[[tests.outputs]]`",
            test.processor
        ));
        return failures;
    }
    match run(test, config, feed) {
        Ok(out) => {
            for (i, expected) in test.spec.outputs.iter().enumerate() {
                check(i, expected, &out, &mut failures);
            }
        }
        Err(problem) => failures.push(problem),
    }
    failures
}

/// Feeds the input and ticks; returns everything that came out.
fn run(
    test: &PipelineTest,
    config: &WasmConfig,
    feed: &mut dyn Feed,
) -> Result<Vec<(Signal, RecordBatch)>, String> {
    let runtime = Runtime::shared().map_err(|e| e.to_string())?;
    let (plugin, mut instance) =
        load_one(&test.processor, config, &runtime).map_err(|e| e.to_string())?;
    let tick = instance.tick_every.map(nanos).filter(|&k| k > 0);
    let until = match test.spec.until {
        Some(until) => nanos(until),
        None => feed
            .last_time()
            .unwrap_or(0)
            .saturating_add(tick.unwrap_or(0)),
    };
    let mut out = Vec::new();
    let mut next_tick = tick;
    for _ in 0..MAX_STEPS {
        let next_input = feed.next_time().filter(|&t| t <= until);
        let due_tick = next_tick.filter(|&t| t <= until);
        let t = match (next_input, due_tick) {
            (None, None) => return Ok(out),
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) => a,
            (None, Some(b)) => b,
        };
        for (signal, batch) in feed.up_to(t) {
            let processed = plugin
                .process(&mut instance, signal, batch)
                .map_err(|f| format!("at {}: the plugin failed: {}", time_text(t), f.message))?;
            if processed.data.num_rows() > 0 {
                out.push((signal, processed.data));
            }
            out.extend(processed.emitted);
            out.extend(instance.commit());
        }
        if due_tick == Some(t) {
            let now = u64::try_from(t).unwrap_or(0);
            let emitted = plugin.tick(&mut instance, now).map_err(|f| {
                format!(
                    "at {}: the plugin's tick failed: {}",
                    time_text(t),
                    f.message
                )
            })?;
            out.extend(emitted);
            out.extend(instance.commit());
            next_tick = tick.map(|k| t.saturating_add(k));
        }
    }
    Err(format!(
        "the test takes more than {MAX_STEPS} steps (input times and ticks); \
         shorten `until` or lengthen the plugin's tick interval"
    ))
}

/// Compares output `i` with the rows of its signal that came out.
fn check(
    i: usize,
    expected: &ExpectedOutput,
    out: &[(Signal, RecordBatch)],
    failures: &mut Vec<String>,
) {
    let signal = match expected.signal {
        OutputSignal::Logs => Signal::Logs,
        OutputSignal::Spans => Signal::Spans,
        OutputSignal::Metrics => Signal::Metrics,
    };
    let what = format!("output {} ({})", i + 1, signal.as_str());
    let mut columns: Vec<&str> = expected.filter.keys().map(String::as_str).collect();
    for row in expected.expected.iter().flatten() {
        columns.extend(row.keys().map(String::as_str));
    }
    columns.sort_unstable();
    columns.dedup();
    let rows = match rows_of(out, signal, &columns) {
        Ok(rows) => rows,
        Err(e) => {
            failures.push(format!("{what}: {e}"));
            return;
        }
    };
    let mut got: Vec<&Row> = rows
        .iter()
        .filter(|row| matches_all(row, &expected.filter))
        .collect();
    let mut lines = Vec::new();
    if let Some(n) = expected.rows
        && n != got.len()
    {
        lines.push(format!("    expected {n} rows, got {}", got.len()));
    }
    if let Some(want) = &expected.expected {
        for row in want {
            match got.iter().position(|g| matches_all(g, row)) {
                Some(i) => {
                    got.remove(i);
                }
                None => lines.push(format!("    missing:    {}", expected_text(row))),
            }
        }
        for row in got {
            lines.push(format!("    unexpected: {}", row_text(row, &columns)));
        }
    }
    if !lines.is_empty() {
        failures.push(format!("{what}:\n{}", lines.join("\n")));
    }
}

/// One row out: the text of each column a test looks at.
type Row = BTreeMap<String, Option<String>>;

/// The rows of `signal` in `out`, with the values of `columns`.
fn rows_of(
    out: &[(Signal, RecordBatch)],
    signal: Signal,
    columns: &[&str],
) -> Result<Vec<Row>, String> {
    let mut rows = Vec::new();
    for (s, batch) in out.iter().filter(|(s, _)| *s == signal) {
        let mut values = Vec::with_capacity(columns.len());
        for &column in columns {
            values.push(
                read(batch, column)
                    .map_err(|e| format!("column `{column}` of {}: {e}", s.as_str()))?,
            );
        }
        for r in 0..batch.num_rows() {
            rows.push(
                columns
                    .iter()
                    .zip(&values)
                    .map(|(c, v)| ((*c).to_string(), v[r].clone()))
                    .collect(),
            );
        }
    }
    Ok(rows)
}

/// The values of `column` (a column, or `attributes.KEY`, `resource.KEY`,
/// `scope.KEY`) in every row of `batch`.
fn read(batch: &RecordBatch, column: &str) -> Result<Vec<Option<String>>, String> {
    for (prefix, set) in [
        ("attributes.", AttributeSet::Record),
        ("resource.", AttributeSet::Resource),
        ("resource_attributes.", AttributeSet::Resource),
        ("scope.", AttributeSet::Scope),
        ("scope_attributes.", AttributeSet::Scope),
    ] {
        if let Some(key) = column.strip_prefix(prefix) {
            return columns::read_attribute(batch, set, key).map_err(|e| e.to_string());
        }
    }
    columns::read_strings(batch, column).map_err(|e| match e {
        columns::ColumnError::NoSuchColumn(_) => {
            "no such column; name a column of the table (docs/schema.md) or an attribute as \
             `attributes.KEY`, `resource.KEY` or `scope.KEY`"
                .to_string()
        }
        other => other.to_string(),
    })
}

fn matches_all(row: &Row, want: &BTreeMap<String, toml::Value>) -> bool {
    want.iter()
        .all(|(column, value)| matches(row.get(column).and_then(Option::as_deref), value))
}

/// Whether a value read as `got` is what `want` says.
fn matches(got: Option<&str>, want: &toml::Value) -> bool {
    match want {
        toml::Value::Table(t) if t.get("absent") == Some(&toml::Value::Boolean(true)) => {
            got.is_none()
        }
        toml::Value::String(s) => got == Some(s.as_str()),
        toml::Value::Integer(i) => got.is_some_and(|g| {
            g.parse::<i64>().is_ok_and(|g| g == *i)
                || g.parse::<f64>().is_ok_and(|g| g == *i as f64)
        }),
        toml::Value::Float(f) => got.and_then(|g| g.parse::<f64>().ok()).is_some_and(|g| {
            (g.is_nan() && f.is_nan()) || g == *f || (g - f).abs() <= 1e-9 * g.abs().max(f.abs())
        }),
        toml::Value::Boolean(b) => got == Some(if *b { "true" } else { "false" }),
        toml::Value::Datetime(d) => got == Some(d.to_string().as_str()),
        toml::Value::Array(_) | toml::Value::Table(_) => false,
    }
}

fn expected_text(row: &BTreeMap<String, toml::Value>) -> String {
    let mut out = String::from("{ ");
    for (i, (k, v)) in row.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "{k} = {v}");
    }
    out.push_str(" }");
    out
}

fn row_text(row: &Row, columns: &[&str]) -> String {
    let mut out = String::from("{ ");
    for (i, c) in columns.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        match row.get(*c).and_then(Option::as_deref) {
            Some(v) => {
                let _ = write!(out, "{c} = {v:?}");
            }
            None => {
                let _ = write!(out, "{c} = {{ absent = true }}");
            }
        }
    }
    out.push_str(" }");
    out
}

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// `90s` as "1m30s".
fn time_text(n: i64) -> String {
    let d = Duration::from_nanos(u64::try_from(n).unwrap_or(0));
    humantime::format_duration(d).to_string().replace(' ', "")
}
