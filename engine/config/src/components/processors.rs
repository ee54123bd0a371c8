//! Processor types: `wasm`, a WebAssembly component plugin; `rules`, SQL
//! recording and alert rules over event-time windows.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer};
use weir_core::SignalSet;

use super::Problem;
use crate::values;

/// A processor's configuration, chosen by its `type`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProcessorConfig {
    /// `type = "wasm"`: a WebAssembly component plugin.
    Wasm(WasmConfig),
    /// `type = "rules"`: a group of SQL recording and alert rules.
    Rules(RulesConfig),
}

impl ProcessorConfig {
    /// The processor's `type` as written in the file.
    pub fn type_name(&self) -> &'static str {
        match self {
            ProcessorConfig::Wasm(_) => "wasm",
            ProcessorConfig::Rules(_) => "rules",
        }
    }

    /// The signals the processor can take in.
    pub fn accepts(&self) -> SignalSet {
        match self {
            // Plugins and rules see telemetry; alert events go to sinks.
            ProcessorConfig::Wasm(_) | ProcessorConfig::Rules(_) => SignalSet::TELEMETRY,
        }
    }

    /// The signals the processor emits when it receives `input`.
    pub fn outputs(&self, input: SignalSet) -> SignalSet {
        match self {
            // A plugin may emit records of any signal (spans in, metric
            // points out), so readers may take any of them.
            ProcessorConfig::Wasm(_) => {
                let _ = input;
                SignalSet::TELEMETRY
            }
            // Recorded series and the `ALERTS` series are metric points;
            // each alert state transition is an alert event.
            ProcessorConfig::Rules(_) => SignalSet::only(weir_core::Signal::Metrics)
                .union(SignalSet::only(weir_core::Signal::Alerts)),
        }
    }

    pub(crate) fn problems(&self) -> Vec<Problem> {
        match self {
            ProcessorConfig::Wasm(c) => c.problems(),
            ProcessorConfig::Rules(c) => c.problems(),
        }
    }
}

/// What happens to a batch when its plugin fails on it (a trap, a panic, a
/// limit reached, an error returned, output the host refuses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// Refuse the batch upstream with a retryable error: the source tells
    /// its client to send it again (OTLP `UNAVAILABLE` / 503). Nothing is
    /// lost, but a plugin that always fails on some input blocks it.
    #[default]
    Fail,
    /// Send the batch on unchanged, as if the plugin were not there.
    Pass,
    /// Acknowledge the batch and discard it.
    Drop,
}

impl OnError {
    /// The policy as written in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            OnError::Fail => "fail",
            OnError::Pass => "pass",
            OnError::Drop => "drop",
        }
    }
}

/// `type = "wasm"`: runs a WebAssembly component built against the
/// `weir:plugin` WIT package (world `processor`) on every batch.
///
/// The component is compiled once and the result cached on disk; several
/// instances run side by side, each in its own sandbox with a memory cap and
/// a time budget per call. The plugin sees no files, network, environment
/// or clock unless granted here. When it fails on a batch, the instance is
/// replaced, `weir_plugin_errors_total{component,kind}` goes up and the
/// batch follows `on_error`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct WasmConfig {
    /// The component file (`.wasm`). Required. A relative path is taken
    /// from the directory Weir runs in.
    #[serde(deserialize_with = "values::path")]
    pub path: PathBuf,
    /// The plugin's own settings: a table, handed to the plugin's `init` as
    /// JSON text (`config = { mask = "#" }` arrives as `{"mask":"#"}`;
    /// TOML dates arrive as strings). Default: an empty table, `{}`.
    #[serde(default = "default_config", deserialize_with = "json_table")]
    pub config: String,
    /// What happens to a batch the plugin fails on: `"fail"` (refuse it
    /// upstream with a retryable error), `"pass"` (send it on unchanged) or
    /// `"drop"` (acknowledge and discard it). Default `"fail"`.
    #[serde(default)]
    pub on_error: OnError,
    /// The most linear memory one instance may use: a size such as
    /// `"64MiB"`, from 1MiB to 4GiB. Default `"64MiB"`. A plugin that asks
    /// for more fails the call (kind `memory`).
    #[serde(default = "default_max_memory", deserialize_with = "memory_size")]
    pub max_memory: u64,
    /// The longest one call into the plugin may run: a duration above zero
    /// such as `"100ms"`. Default `"1s"`. A call that runs longer is
    /// interrupted (kind `timeout`); the check runs every 10ms.
    #[serde(
        default = "default_timeout",
        deserialize_with = "values::positive_duration"
    )]
    pub timeout: Duration,
    /// How many instances run side by side (1 to 256). Default: the number
    /// of CPU cores. Large batches are split across idle instances.
    #[serde(default, deserialize_with = "instances")]
    pub instances: Option<usize>,
    /// The most records one call may add through `emit` (0 to 10000000).
    /// Default `100000`. A plugin that emits more fails the call (kind
    /// `output_limit`).
    #[serde(
        default = "default_max_emitted_records",
        deserialize_with = "emitted_records"
    )]
    pub max_emitted_records: usize,
    /// Read-only lookup tables the plugin may read, by name: `lookups =
    /// { hosts = "hosts.json" }`. Each file holds one JSON object; its keys
    /// map to values (non-string values as their JSON text). Loaded when
    /// the pipeline starts. Default: none.
    #[serde(default, deserialize_with = "lookups")]
    pub lookups: BTreeMap<String, PathBuf>,
    /// Whether the plugin may read the time of day (the `clock` interface
    /// and the WASI clocks). Default `false`: the clocks read the Unix
    /// epoch, so output depends on input alone.
    #[serde(default)]
    pub allow_clock: bool,
}

fn default_config() -> String {
    "{}".to_string()
}

fn default_max_memory() -> u64 {
    64 * 1024 * 1024
}

fn default_timeout() -> Duration {
    Duration::from_secs(1)
}

fn default_max_emitted_records() -> usize {
    100_000
}

impl WasmConfig {
    /// A configuration for the component at `path` with every default.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        WasmConfig {
            path: path.into(),
            config: default_config(),
            on_error: OnError::default(),
            max_memory: default_max_memory(),
            timeout: default_timeout(),
            instances: None,
            max_emitted_records: default_max_emitted_records(),
            lookups: BTreeMap::new(),
            allow_clock: false,
        }
    }

    fn problems(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        if self.path.extension().is_none_or(|e| e != "wasm") {
            problems.push(Problem {
                key: "path".into(),
                message: format!(
                    "the plugin file `{}` does not end in `.wasm`",
                    self.path.display()
                ),
                help: "build the plugin with `cargo build --target wasm32-wasip2 --release` \
                       and point `path` at the `.wasm` file it writes"
                    .to_string(),
            });
        }
        problems
    }
}

fn memory_size<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let bytes = values::byte_size(d)?;
    if !(1024 * 1024..=4 * 1024 * 1024 * 1024).contains(&bytes) {
        return Err(de::Error::custom(format!(
            "{bytes} bytes is outside 1MiB to 4GiB; write a size such as \"64MiB\""
        )));
    }
    Ok(bytes)
}

fn instances<'de, D: Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    let n = i64::deserialize(d)?;
    if !(1..=256).contains(&n) {
        return Err(de::Error::custom(format!(
            "{n} is outside 1 to 256; leave `instances` out to use one per CPU core"
        )));
    }
    Ok(usize::try_from(n).ok())
}

fn emitted_records<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    let n = i64::deserialize(d)?;
    if !(0..=10_000_000).contains(&n) {
        return Err(de::Error::custom(format!("{n} is outside 0 to 10000000")));
    }
    usize::try_from(n).map_err(de::Error::custom)
}

fn lookups<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, PathBuf>, D::Error> {
    let table = BTreeMap::<String, String>::deserialize(d)?;
    let mut out = BTreeMap::new();
    for (name, file) in table {
        let valid = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
        if !valid {
            return Err(de::Error::custom(format!(
                "lookup table name `{name}` must be letters, digits, `_`, `-` or `.`"
            )));
        }
        if file.is_empty() {
            return Err(de::Error::custom(format!(
                "lookup table `{name}` needs a file name"
            )));
        }
        out.insert(name, PathBuf::from(file));
    }
    Ok(out)
}

/// A TOML table, kept as its JSON text.
fn json_table<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let table = toml::Table::deserialize(d)?;
    let mut out = String::new();
    write_json(&toml::Value::Table(table), &mut out);
    Ok(out)
}

fn write_json(value: &toml::Value, out: &mut String) {
    match value {
        toml::Value::String(s) => write_json_string(s, out),
        toml::Value::Integer(i) => {
            let _ = write!(out, "{i}");
        }
        toml::Value::Float(f) if f.is_finite() => {
            let _ = write!(out, "{f:?}");
        }
        // JSON has no NaN or infinity: they travel as strings.
        toml::Value::Float(f) => write_json_string(&f.to_string(), out),
        toml::Value::Boolean(b) => {
            let _ = write!(out, "{b}");
        }
        toml::Value::Datetime(d) => write_json_string(&d.to_string(), out),
        toml::Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(item, out);
            }
            out.push(']');
        }
        toml::Value::Table(table) => {
            out.push('{');
            for (i, (key, item)) in table.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_string(key, out);
                out.push(':');
                write_json(item, out);
            }
            out.push('}');
        }
    }
}

fn write_json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guarantees: the plugin's `config` table reaches it as equivalent
    /// JSON, escapes and nesting included.
    #[test]
    fn config_table_becomes_json() {
        let table: toml::Table = toml::from_str(
            "a = \"x\\\"y\\n\"\nb = [1, 2.5, true]\nc = { d = 1979-05-27 }\ne = nan",
        )
        .expect("valid TOML");
        let mut out = String::new();
        write_json(&toml::Value::Table(table), &mut out);
        assert_eq!(
            out,
            r#"{"a":"x\"y\n","b":[1,2.5,true],"c":{"d":"1979-05-27"},"e":"NaN"}"#
        );
    }
}

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
    /// The rules, one `[[processors.NAME.rules]]` table each; at least one.
    pub rules: Vec<RuleSpec>,
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

impl RulesConfig {
    fn problems(&self) -> Vec<Problem> {
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
