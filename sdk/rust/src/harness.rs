//! Runs a plugin natively, in plain `cargo test`, on log records given as
//! OTLP/JSON (the JSON encoding of `ExportLogsServiceRequest`).
//!
//! The records become a [`Table`] with the columns of Weir's `logs` table
//! that plugins use most (`time`, `observed_time`, `severity_number`,
//! `severity_text`, `body`, `attributes`, `trace_id`, `span_id`,
//! `event_name`, `service_name`, `resource_attributes`, `scope_name`,
//! `scope_version`, `scope_attributes`), with attribute values and bodies
//! in the same string forms Weir uses. The plugin's `init` and `process`
//! run on it exactly as in the host; compare the result with another
//! OTLP/JSON text through [`logs`].
//!
//! ```
//! use weir_plugin::{Batch, Error, Plugin, harness};
//!
//! struct KeepErrors;
//!
//! impl Plugin for KeepErrors {
//!     fn init(_: &str) -> Result<Self, Error> {
//!         Ok(KeepErrors)
//!     }
//!     fn process(&mut self, batch: &mut Batch<'_>) -> Result<(), Error> {
//!         batch.retain_by_ints("severity_number", |s| s.unwrap_or(0) >= 17)?;
//!         Ok(())
//!     }
//! }
//!
//! let out = harness::run::<KeepErrors>("{}", r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[
//!     {"severityNumber":9,"body":{"stringValue":"fine"}},
//!     {"severityNumber":17,"body":{"stringValue":"boom"}}]}]}]}"#).unwrap();
//! assert_eq!(out.table.strings("body").unwrap(), [Some("boom".to_string())]);
//! ```

use serde_json::Value;

pub use crate::native::{Column, Table};
use crate::{Batch, Error, Plugin, Signal};

/// What a plugin left after one `process` call.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// The batch as the plugin left it.
    pub table: Table,
    /// The records it emitted: signal and OTLP/JSON text.
    pub emitted: Vec<(Signal, String)>,
}

impl Table {
    /// Every row's value of `column` as text, as the plugin would read it.
    pub fn strings(&self, column: &str) -> Result<Vec<Option<String>>, Error> {
        self.read_strings(column)
    }
}

/// Initialises plugin `P` with `config` (JSON text) and runs `process` on
/// the logs of `otlp_json`.
pub fn run<P: Plugin>(config: &str, otlp_json: &str) -> Result<Output, Error> {
    let mut plugin = P::init(config)?;
    let mut table = logs(otlp_json)?;
    crate::native::take_emitted();
    plugin.process(&mut Batch::from_native(&mut table))?;
    Ok(Output {
        table,
        emitted: crate::native::take_emitted(),
    })
}

/// The logs of an OTLP/JSON `ExportLogsServiceRequest` as a [`Table`].
pub fn logs(otlp_json: &str) -> Result<Table, Error> {
    let root: Value = serde_json::from_str(otlp_json)
        .map_err(|e| Error::InvalidArgument(format!("not JSON: {e}")))?;
    let mut b = Builder::default();
    for rl in array(&root, "resourceLogs") {
        let resource = rl.get("resource");
        let resource_attrs = resource.map(|r| attributes(r.get("attributes")));
        let service = resource_attrs.as_ref().and_then(|a| {
            a.iter()
                .find(|(k, _)| k == "service.name")
                .map(|(_, v)| v.clone())
        });
        for sl in array(rl, "scopeLogs") {
            let scope = sl.get("scope");
            for r in array(sl, "logRecords") {
                b.text("service_name", service.clone());
                b.attrs(
                    "resource_attributes",
                    resource_attrs.clone().unwrap_or_default(),
                );
                b.text("scope_name", scope.and_then(|s| string(s.get("name"))));
                b.text(
                    "scope_version",
                    scope.and_then(|s| string(s.get("version"))),
                );
                b.attrs(
                    "scope_attributes",
                    scope
                        .map(|s| attributes(s.get("attributes")))
                        .unwrap_or_default(),
                );
                b.int("time", int(r.get("timeUnixNano")));
                b.int("observed_time", int(r.get("observedTimeUnixNano")));
                b.int("severity_number", int(r.get("severityNumber")).or(Some(0)));
                b.text("severity_text", string(r.get("severityText")));
                b.text("body", r.get("body").and_then(any_value));
                b.attrs("attributes", attributes(r.get("attributes")));
                b.text(
                    "trace_id",
                    string(r.get("traceId")).map(|s| s.to_lowercase()),
                );
                b.text("span_id", string(r.get("spanId")).map(|s| s.to_lowercase()));
                b.text("event_name", string(r.get("eventName")));
            }
        }
    }
    Ok(Table {
        signal: Signal::Logs,
        columns: b.columns,
    })
}

#[derive(Default)]
struct Builder {
    columns: Vec<(String, Column)>,
}

impl Builder {
    fn slot(&mut self, name: &str, empty: Column) -> &mut Column {
        if let Some(i) = self.columns.iter().position(|(n, _)| n == name) {
            return &mut self.columns[i].1;
        }
        self.columns.push((name.to_string(), empty));
        let last = self.columns.len() - 1;
        &mut self.columns[last].1
    }

    fn text(&mut self, name: &str, v: Option<String>) {
        if let Column::Text(c) = self.slot(name, Column::Text(Vec::new())) {
            c.push(v.filter(|s| !s.is_empty()));
        }
    }

    fn int(&mut self, name: &str, v: Option<i64>) {
        if let Column::Int(c) = self.slot(name, Column::Int(Vec::new())) {
            c.push(v.filter(|x| *x != 0 || name == "severity_number"));
        }
    }

    fn attrs(&mut self, name: &str, v: Vec<(String, String)>) {
        if let Column::Attributes(c) = self.slot(name, Column::Attributes(Vec::new())) {
            c.push(v);
        }
    }
}

fn array<'a>(v: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter())
        .into_iter()
        .flatten()
}

fn string(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str).map(str::to_owned)
}

fn int(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// The string form Weir gives an `AnyValue`.
fn any_value(v: &Value) -> Option<String> {
    let (kind, inner) = v.as_object()?.iter().next()?;
    match kind.as_str() {
        "stringValue" => inner.as_str().map(str::to_owned),
        "intValue" => int(Some(inner)).map(|i| i.to_string()),
        "doubleValue" => inner.as_f64().map(|d| format!("{d:?}")),
        "boolValue" => inner.as_bool().map(|b| b.to_string()),
        "bytesValue" => inner.as_str().map(str::to_owned),
        _ => Some(v.to_string()),
    }
}

fn attributes(v: Option<&Value>) -> Vec<(String, String)> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|kv| {
                    let key = kv.get("key")?.as_str()?.to_string();
                    let value = kv.get("value").and_then(any_value).unwrap_or_default();
                    Some((key, value))
                })
                .collect()
        })
        .unwrap_or_default()
}
