//! `[[tests]]`: unit tests of a file's rules, in the spirit of `promtool
//! test rules`, and of its plugins, in the spirit of Vector's unit tests;
//! run by `weir test`.
//!
//! ```toml
//! [[tests]]
//! name = "errors fire after 5m"
//! processor = "slo"           # may be left out when the file has one
//! interval = "1m"             # spacing of `values` (default 1m)
//!
//! [[tests.series]]             # metric points, compact notation
//! series = 'queue_depth{service_name="worker"}'
//! values = "90+5x10"          # 90 95 100 ... 140
//!
//! [[tests.otlp]]               # OTLP/JSON logs, spans or metrics
//! at = "2m"                   # added to every time in the JSON
//! every = "10s"               # replayed every 10s ...
//! until = "8m"                # ... up to 8m (both optional)
//! json = '{"resourceSpans": [...]}'
//!
//! [[tests.alerts]]             # the alerts expected at a time
//! at = "6m"
//! alert = "QueueTooDeep"
//! expected = [{ labels = { service_name = "worker" }, annotations = { summary = "..." } }]
//!
//! [[tests.recorded]]           # the recorded series expected at a time
//! at = "5m"
//! metric = "queue:depth:max"
//! expected = [{ labels = { service_name = "worker" }, value = 140.0 }]
//! ```
//!
//! A test of a `wasm` processor feeds the same input through the plugin
//! and checks what comes out:
//!
//! ```toml
//! [[tests.outputs]]            # the records of one signal sent on
//! signal = "logs"
//! where = { severity_text = "ERROR" }      # optional filter
//! expected = [{ body = "user [REDACTED:email]", "attributes.team" = "core" }]
//! ```
//!
//! Test time starts at 0, the Unix epoch: a series' first value is at 0,
//! and times in OTLP/JSON count from 0 too (then `at` is added).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::values;

/// One `[[tests]]` table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct TestSpec {
    /// What the report calls the test. Default: `test N`, by position.
    #[serde(default)]
    pub name: Option<String>,
    /// The processor under test, a `rules` or a `wasm` one; may be left
    /// out when the file has exactly one.
    #[serde(default)]
    pub processor: Option<String>,
    /// The time between two values of a `series`. Default `"1m"`.
    #[serde(
        default = "default_interval",
        deserialize_with = "values::positive_duration"
    )]
    pub interval: Duration,
    /// Metric input, one series per table.
    #[serde(default)]
    pub series: Vec<SeriesInput>,
    /// Input as OTLP/JSON: logs, spans or metrics.
    #[serde(default)]
    pub otlp: Vec<OtlpInput>,
    /// The alerts expected at given evaluation times.
    #[serde(default)]
    pub alerts: Vec<ExpectedAlerts>,
    /// The recorded series expected at given evaluation times.
    #[serde(default)]
    pub recorded: Vec<ExpectedRecorded>,
    /// `wasm` processors: the records expected out of the plugin, one
    /// table per signal (and filter).
    #[serde(default)]
    pub outputs: Vec<ExpectedOutput>,
    /// `wasm` processors: the test time the test runs to. Input is fed at
    /// its times, and a plugin that asks for ticks gets one at every
    /// multiple of its interval from 0 up to this time, with the test time
    /// as the time of day. Default: the last input's time, plus one
    /// interval for a plugin that ticks.
    #[serde(default, deserialize_with = "values::optional_duration")]
    pub until: Option<Duration>,
}

fn default_interval() -> Duration {
    Duration::from_secs(60)
}

/// `[[tests.series]]`: one metric series in promtool's notation.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct SeriesInput {
    /// The metric and its labels, `name{label="value", ...}`; a
    /// `service_name` label is the resource's `service.name`.
    pub series: String,
    /// The values, one per `interval` from time 0, space-separated: a
    /// number; `a+bxn` (a, a+b, ... n+1 values) or `a-bxn`; `axn` (a, n+1
    /// times); `_` (no value at that step); `_xn` (n+1 steps without).
    pub values: String,
    /// `"gauge"` (the default) or `"sum"` (a cumulative monotonic
    /// counter).
    #[serde(default)]
    pub kind: SeriesKind,
}

/// The OTLP metric type of a test series.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeriesKind {
    /// A gauge.
    #[default]
    Gauge,
    /// A cumulative, monotonic sum (a counter).
    Sum,
}

/// `[[tests.otlp]]`: records as OTLP/JSON.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct OtlpInput {
    /// Added to every `...TimeUnixNano` in `json`. Default `"0s"`.
    #[serde(default, deserialize_with = "values::duration")]
    pub at: Duration,
    /// Replays the records every this long after `at`, up to `until`: a
    /// steady stream from one block. Default: once.
    #[serde(default, deserialize_with = "values::optional_positive_duration")]
    pub every: Option<Duration>,
    /// With `every`: the last time to replay at (inclusive). Default: `at`.
    #[serde(default, deserialize_with = "values::optional_duration")]
    pub until: Option<Duration>,
    /// One OTLP/JSON export request (`resourceLogs`, `resourceSpans` or
    /// `resourceMetrics`), times counted from test time 0.
    pub json: String,
}

/// `[[tests.alerts]]`: the instances of one alert rule at one time.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct ExpectedAlerts {
    /// The evaluation time, from test time 0; a multiple of the group's
    /// `every`.
    #[serde(deserialize_with = "values::duration")]
    pub at: Duration,
    /// The alert rule's name.
    pub alert: String,
    /// Every instance expected pending or firing then; none means the
    /// alert is expected quiet.
    #[serde(default)]
    pub expected: Vec<ExpectedAlert>,
}

/// One expected alert instance.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct ExpectedAlert {
    /// Its labels, without `alertname`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Its annotations; when left out they are not compared.
    #[serde(default)]
    pub annotations: Option<BTreeMap<String, String>>,
    /// `"firing"` (the default) or `"pending"`.
    #[serde(default)]
    pub state: ExpectedState,
}

/// The state of an expected alert.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpectedState {
    /// Firing.
    #[default]
    Firing,
    /// Pending: active, `for` not yet elapsed.
    Pending,
}

/// `[[tests.recorded]]`: the points of one recorded series at one time.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct ExpectedRecorded {
    /// The evaluation time, from test time 0; a multiple of `every`.
    #[serde(deserialize_with = "values::duration")]
    pub at: Duration,
    /// The recording rule's name (the metric's).
    pub metric: String,
    /// Every point expected; none means no point.
    #[serde(default)]
    pub expected: Vec<ExpectedPoint>,
}

/// One expected recorded point.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct ExpectedPoint {
    /// Its labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Its value; compared with a relative tolerance of 1e-9.
    pub value: f64,
}

/// `[[tests.outputs]]`: the records of one signal a `wasm` processor sends
/// on (what the plugin left of its input, what it emitted, what it
/// released), over the whole test.
///
/// Rows are given by the columns that matter, in any order: a column of
/// the signal's table (`body`, `name`, `severity_number`, `metric_name`,
/// `value`, `trace_state`, ...) or an attribute, `attributes.KEY`,
/// `resource.KEY` or `scope.KEY`. A string is compared with the value's
/// text (as a plugin reads it: numbers in decimal, times in RFC 3339), a
/// number with its number, a boolean with `true`/`false`, and
/// `{ absent = true }` matches a null value or a missing attribute.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct ExpectedOutput {
    /// `"logs"`, `"spans"` or `"metrics"`.
    pub signal: OutputSignal,
    /// Only rows with these values are looked at (same notation as a row
    /// of `expected`). Default: every row of the signal.
    #[serde(default, rename = "where")]
    pub filter: BTreeMap<String, toml::Value>,
    /// How many rows are expected. Required unless `expected` is given
    /// (it then must agree with it).
    #[serde(default)]
    pub rows: Option<usize>,
    /// The rows expected, each matched by a different row out, in any
    /// order; rows out that match none are reported.
    #[serde(default)]
    pub expected: Option<Vec<BTreeMap<String, toml::Value>>>,
}

/// The signal of an expected output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputSignal {
    /// Log records.
    Logs,
    /// Spans.
    Spans,
    /// Metric points.
    Metrics,
}

/// A `[[tests]]` table of a checked file, with where it is.
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineTest {
    /// The test.
    pub spec: TestSpec,
    /// The line of its `[[tests]]` header.
    pub line: usize,
    /// The `rules` processor it tests (its `processor`, or the file's
    /// only one).
    pub processor: String,
}
