//! `type = "wasm"`: what a user writes for a plugin, and how it is built.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use serde::de::{self, Deserializer};
use weir_config::{BuildContext, ComponentConfig, Problem, values};
use weir_core::{Built, ComponentError, SignalSet};

use crate::lookup::LookupFile;
use crate::{Runtime, WasmProcessor};

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
    /// A first-party plugin, by name: `"enrich"`, `"redact"`, `"sample"`,
    /// `"spanmetrics"` (`weir plugin list` shows them with their config
    /// keys). They are built into Weir: no file to give. Either `plugin`
    /// or `path`, not both.
    #[serde(default)]
    pub plugin: Option<String>,
    /// The component file (`.wasm`) of a plugin of your own. A relative
    /// path is taken from the directory Weir runs in. Either `path` or
    /// `plugin`, not both.
    #[serde(default, deserialize_with = "optional_path")]
    pub path: Option<PathBuf>,
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
    /// of CPU cores. Large batches are split across idle instances (or by
    /// the value of the column a `weir:plugin@0.2.0` plugin partitions
    /// by, `partition-by`).
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
    /// { hosts = "hosts.json", teams = { file = "teams.csv", key =
    /// "service", match = "exact" } }`. A plain file name is a JSON object
    /// of keys to values (non-string values as their JSON text), matched
    /// exactly; a table gives `file`, `key`, `match` (`"exact"`,
    /// `"prefix"`, `"cidr"`) and `format` ([`LookupFile`]). Loaded when
    /// the pipeline starts (a missing or bad file fails the start) and
    /// again about a second after a file changes. Default: none.
    #[serde(default, deserialize_with = "lookups")]
    pub lookups: BTreeMap<String, LookupFile>,
    /// Whether the plugin may read the time of day (the `clock` interface
    /// and the WASI clocks). Default `false`: the clocks read the Unix
    /// epoch, so output depends on input alone.
    #[serde(default)]
    pub allow_clock: bool,
    /// The most the plugin's instances may hold together through the
    /// `hold` interface (`weir:plugin@0.2.0`), in bytes of Arrow buffers: a
    /// size such as `"256MiB"`, up to 1TiB.
    /// Default `"256MiB"`. Past it `hold` is refused with
    /// `limit-exceeded` and the rows stay in the batch. Held rows are in
    /// memory only: an instance replaced after a failure, a reload or a
    /// shutdown sends them on, but a crash of Weir loses them (they were
    /// acknowledged when held).
    #[serde(default = "default_max_held_bytes", deserialize_with = "held_size")]
    pub max_held_bytes: u64,
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

fn default_max_held_bytes() -> u64 {
    256 * 1024 * 1024
}

impl WasmConfig {
    /// A configuration for the component at `path` with every default.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        WasmConfig {
            path: Some(path.into()),
            ..Self::defaults()
        }
    }

    /// A configuration for the first-party plugin `name` with every
    /// default.
    pub fn bundled(name: &str) -> Self {
        WasmConfig {
            plugin: Some(name.to_string()),
            ..Self::defaults()
        }
    }

    fn defaults() -> Self {
        WasmConfig {
            plugin: None,
            path: None,
            config: default_config(),
            on_error: OnError::default(),
            max_memory: default_max_memory(),
            timeout: default_timeout(),
            instances: None,
            max_emitted_records: default_max_emitted_records(),
            lookups: BTreeMap::new(),
            allow_clock: false,
            max_held_bytes: default_max_held_bytes(),
        }
    }
}

#[async_trait]
impl ComponentConfig for WasmConfig {
    /// Plugins see telemetry; alert events go to sinks.
    fn accepts(&self) -> SignalSet {
        SignalSet::TELEMETRY
    }

    /// A plugin may emit records of any signal (spans in, metric points
    /// out), so readers may take any of them.
    fn outputs(&self, _input: SignalSet) -> SignalSet {
        SignalSet::TELEMETRY
    }

    async fn build(&self, cx: &mut BuildContext<'_>) -> Result<Built, ComponentError> {
        let runtime =
            Runtime::shared().map_err(|e| ComponentError::internal(cx.name(), e.to_string()))?;
        Ok(Built::Processor(Box::new(
            WasmProcessor::new(cx.name(), self, runtime).await?,
        )))
    }

    fn takes_tests(&self) -> bool {
        true
    }

    fn problems(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        let path = match (&self.plugin, &self.path) {
            (Some(_), Some(_)) => {
                problems.push(Problem {
                    key: "plugin".into(),
                    message: "both `plugin` and `path` are given".to_string(),
                    help: "keep `plugin` for a first-party plugin, or `path` for a `.wasm` file \
                           of your own"
                        .to_string(),
                });
                return problems;
            }
            (None, None) => {
                problems.push(Problem {
                    key: "plugin".into(),
                    message: "the processor names no plugin".to_string(),
                    help: format!(
                        "add `plugin = ` one of {} (`weir plugin list`), or `path = ` a \
                         `.wasm` file of your own",
                        bundled_list()
                    ),
                });
                return problems;
            }
            (Some(name), None) => {
                if weir_bundled::find(name).is_none() {
                    problems.push(Problem {
                        key: "plugin".into(),
                        message: format!("there is no first-party plugin `{name}`"),
                        help: format!(
                            "name one of {} (`weir plugin list`); a plugin of your own is \
                             given by `path`",
                            bundled_list()
                        ),
                    });
                }
                return problems;
            }
            (None, Some(path)) => path,
        };
        if path.extension().is_none_or(|e| e != "wasm") {
            problems.push(Problem {
                key: "path".into(),
                message: format!(
                    "the plugin file `{}` does not end in `.wasm`",
                    path.display()
                ),
                help: "build the plugin with `cargo build --target wasm32-wasip2 --release` \
                       and point `path` at the `.wasm` file it writes"
                    .to_string(),
            });
        }
        problems
    }
}

/// The first-party plugins' names, quoted: `"enrich"`, `"redact"`, ...
fn bundled_list() -> String {
    weir_bundled::names()
        .map(|n| format!("`\"{n}\"`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn optional_path<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PathBuf>, D::Error> {
    values::path(d).map(Some)
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

fn held_size<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let bytes = values::byte_size(d)?;
    if bytes > 1024 * 1024 * 1024 * 1024 {
        return Err(de::Error::custom(format!(
            "{bytes} bytes is more than 1TiB; write a size such as \"256MiB\""
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

fn lookups<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, LookupFile>, D::Error> {
    /// One table's value: a file name or a table of settings.
    #[derive(Deserialize)]
    struct Entry(#[serde(deserialize_with = "crate::lookup::config::lookup_file")] LookupFile);
    let table = BTreeMap::<String, Entry>::deserialize(d)?;
    let mut out = BTreeMap::new();
    for (name, Entry(file)) in table {
        let valid = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
        if !valid {
            return Err(de::Error::custom(format!(
                "lookup table name `{name}` must be letters, digits, `_`, `-` or `.`"
            )));
        }
        if let Some(problem) = file.problem() {
            return Err(de::Error::custom(format!(
                "lookup table `{name}`: {problem}"
            )));
        }
        out.insert(name, file);
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

    /// Guarantees: a first-party plugin is named without a file; an
    /// unknown name, both `plugin` and `path`, or neither, is a problem on
    /// `plugin` that lists the first-party plugins.
    #[test]
    fn a_plugin_is_named_or_given_by_path() {
        assert!(WasmConfig::bundled("redact").problems().is_empty());
        assert!(WasmConfig::new("mine.wasm").problems().is_empty());
        let unknown = WasmConfig::bundled("redcat").problems();
        assert_eq!(unknown.len(), 1);
        assert_eq!(unknown[0].key, "plugin");
        assert!(
            unknown[0]
                .message
                .contains("no first-party plugin `redcat`")
        );
        assert!(
            unknown[0].help.contains("`\"redact\"`"),
            "{}",
            unknown[0].help
        );
        let both = WasmConfig {
            path: Some("mine.wasm".into()),
            ..WasmConfig::bundled("redact")
        };
        assert!(both.problems()[0].message.contains("both"));
        let neither = WasmConfig {
            path: None,
            ..WasmConfig::new("x.wasm")
        };
        assert!(neither.problems()[0].help.contains("`\"spanmetrics\"`"));
    }

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
