//! Runs a plugin natively, in plain `cargo test`, on records given as
//! OTLP/JSON (the JSON encoding of `ExportLogsServiceRequest`,
//! `ExportTraceServiceRequest` or `ExportMetricsServiceRequest`).
//!
//! The records become a [`Table`] with the columns of Weir's tables that
//! plugins use most ([`logs`], [`spans`], [`metrics`] say which), with
//! attribute values and bodies in the same string forms Weir uses. The
//! plugin's `init` and `process` run on it exactly as in the host; compare
//! the result with another OTLP/JSON text through [`logs`].
//!
//! [`run`] makes one instance and runs one `process` on logs. A
//! [`Session`] keeps one instance across any number of `process` and
//! `tick` calls and simulates the host's [`hold`](crate::hold): each call
//! returns the batch as the plugin left it, the rows it released and the
//! records it emitted.
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

use crate::native::{self, NativeHold};
pub use crate::native::{Column, Table};
use crate::{Batch, Error, Held, Plugin, Signal};

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

/// One plugin instance kept across calls, as the host keeps it: `init`
/// once, then any number of [`Session::process`] and [`Session::tick`]
/// calls, with the host's hold simulated (what the plugin holds in one
/// call it may release or discard in a later one).
///
/// Each call returns a [`Call`]: the batch as the plugin left it, the
/// rows it released and the records it emitted. A call that returns an
/// error is treated as the host treats a failure: the instance is
/// replaced (`init` again), the rows the call held are forgotten (they
/// were still in its input) and everything else held is released; those
/// rows come out first in the `released` of the next call.
///
/// ```
/// use weir_plugin::{Batch, Error, Plugin, harness, hold};
///
/// /// Holds each log until a log with the same `trace_id` says "done".
/// struct Wait;
///
/// impl Plugin for Wait {
///     fn init(_: &str) -> Result<Self, Error> {
///         Ok(Wait)
///     }
///     fn process(&mut self, batch: &mut Batch<'_>) -> Result<(), Error> {
///         let bodies = batch.strings("body")?;
///         let traces = batch.strings("trace_id")?;
///         let done: Vec<String> = bodies.iter().zip(&traces)
///             .filter(|(b, _)| b.as_deref() == Some("done"))
///             .filter_map(|(_, t)| t.clone())
///             .collect();
///         batch.hold(&traces)?;
///         hold::release(&done)?;
///         Ok(())
///     }
/// }
///
/// let log = |trace: &str, body: &str| format!(r#"{{"resourceLogs":[{{"scopeLogs":[{{"logRecords":[
///     {{"traceId":"{trace}","body":{{"stringValue":"{body}"}}}}]}}]}}]}}"#);
/// let mut session = harness::Session::<Wait>::new("{}").unwrap();
/// let first = session.logs(&log("0af7651916cd43dd8448eb211c80319c", "start")).unwrap();
/// assert!(first.released.is_empty());
/// assert_eq!(session.holding().rows, 1);
/// let second = session.logs(&log("0af7651916cd43dd8448eb211c80319c", "done")).unwrap();
/// assert_eq!(second.released[0].strings("body").unwrap(),
///            [Some("start".to_string()), Some("done".to_string())]);
/// ```
pub struct Session<P: Plugin> {
    config: String,
    plugin: P,
    hold: NativeHold,
    /// Rows given up after a failed call, released with the next one.
    orphans: Vec<Table>,
}

/// What one call of a [`Session`] left.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// The batch as the plugin left it (after any `drop-rows` and
    /// `hold`); `None` for a tick.
    pub table: Option<Table>,
    /// The rows released during the call, one table per signal in the
    /// order released; rows given up after a failed call first.
    pub released: Vec<Table>,
    /// The records it emitted: signal and OTLP/JSON text.
    pub emitted: Vec<(Signal, String)>,
}

impl<P: Plugin> Session<P> {
    /// A session of plugin `P` initialised with `config` (JSON text).
    pub fn new(config: &str) -> Result<Self, Error> {
        Ok(Session {
            config: config.to_string(),
            plugin: P::init(config)?,
            hold: NativeHold::default(),
            orphans: Vec::new(),
        })
    }

    /// Bounds what the plugin may hold, as the pipeline's
    /// `max_held_bytes` does (default 256 MiB; bytes are estimated).
    pub fn with_max_held_bytes(mut self, bytes: u64) -> Self {
        self.hold.max_bytes = bytes;
        self
    }

    /// The plugin instance.
    pub fn plugin(&self) -> &P {
        &self.plugin
    }

    /// The plugin instance, to change.
    pub fn plugin_mut(&mut self) -> &mut P {
        &mut self.plugin
    }

    /// What the plugin holds now.
    pub fn holding(&self) -> Held {
        self.hold.holding()
    }

    /// Runs `process` on `table` (made by [`logs`], [`spans`], [`metrics`]
    /// or by hand).
    pub fn process(&mut self, mut table: Table) -> Result<Call, Error> {
        let (released, emitted) =
            self.call(|plugin| plugin.process(&mut Batch::from_native(&mut table)))?;
        Ok(Call {
            table: Some(table),
            released,
            emitted,
        })
    }

    /// Runs `process` on the logs of an OTLP/JSON `ExportLogsServiceRequest`.
    pub fn logs(&mut self, otlp_json: &str) -> Result<Call, Error> {
        self.process(logs(otlp_json)?)
    }

    /// Runs `process` on the spans of an OTLP/JSON
    /// `ExportTraceServiceRequest`.
    pub fn spans(&mut self, otlp_json: &str) -> Result<Call, Error> {
        self.process(spans(otlp_json)?)
    }

    /// Runs `process` on the points of an OTLP/JSON
    /// `ExportMetricsServiceRequest`.
    pub fn metrics(&mut self, otlp_json: &str) -> Result<Call, Error> {
        self.process(metrics(otlp_json)?)
    }

    /// Runs `tick` with `now` (nanoseconds since the Unix epoch).
    pub fn tick(&mut self, now: u64) -> Result<Call, Error> {
        let (released, emitted) = self.call(|plugin| plugin.tick(now))?;
        Ok(Call {
            table: None,
            released,
            emitted,
        })
    }

    /// Runs one call with this session's hold in place.
    #[allow(clippy::type_complexity)]
    fn call(
        &mut self,
        f: impl FnOnce(&mut P) -> Result<(), Error>,
    ) -> Result<(Vec<Table>, Vec<(Signal, String)>), Error> {
        native::take_emitted();
        let outer = native::swap_hold(std::mem::take(&mut self.hold));
        native::with_hold(NativeHold::begin_call);
        let result = f(&mut self.plugin);
        self.hold = native::swap_hold(outer);
        let emitted = native::take_emitted();
        match result {
            Ok(()) => {
                let mut released = std::mem::take(&mut self.orphans);
                for table in self.hold.commit() {
                    match released.iter_mut().find(|t| t.signal == table.signal) {
                        Some(t) => t.append(table),
                        None => released.push(table),
                    }
                }
                Ok((released, emitted))
            }
            Err(e) => {
                self.orphans.extend(self.hold.fail());
                self.plugin = P::init(&self.config)?;
                Err(e)
            }
        }
    }
}

/// The logs of an OTLP/JSON `ExportLogsServiceRequest` as a [`Table`]:
/// columns `service_name`, `resource_attributes`, `scope_name`,
/// `scope_version`, `scope_attributes`, `time`, `observed_time`,
/// `severity_number`, `severity_text`, `body`, `attributes`, `trace_id`,
/// `span_id`, `event_name`.
pub fn logs(otlp_json: &str) -> Result<Table, Error> {
    let root = parse(otlp_json)?;
    let mut b = Builder::new(&[
        ("time", 'i'),
        ("observed_time", 'i'),
        ("severity_number", 'i'),
        ("severity_text", 't'),
        ("body", 't'),
        ("attributes", 'a'),
        ("trace_id", 't'),
        ("span_id", 't'),
        ("event_name", 't'),
    ]);
    for (resource, scope, r) in records(&root, ["resourceLogs", "scopeLogs", "logRecords"]) {
        b.resource_and_scope(resource, scope);
        b.int("time", int(r.get("timeUnixNano")));
        b.int("observed_time", int(r.get("observedTimeUnixNano")));
        b.int("severity_number", int(r.get("severityNumber")).or(Some(0)));
        b.text("severity_text", string(r.get("severityText")));
        b.text("body", r.get("body").and_then(any_value));
        b.attrs("attributes", attributes(r.get("attributes")));
        b.text("trace_id", id(r.get("traceId")));
        b.text("span_id", id(r.get("spanId")));
        b.text("event_name", string(r.get("eventName")));
    }
    Ok(Table {
        signal: Signal::Logs,
        columns: b.columns,
    })
}

/// The spans of an OTLP/JSON `ExportTraceServiceRequest` as a [`Table`]:
/// columns `service_name`, `resource_attributes`, `scope_name`,
/// `scope_version`, `scope_attributes`, `trace_id`, `span_id`,
/// `parent_span_id`, `trace_state`, `name`, `kind`, `start_time`,
/// `end_time`, `duration_ns`, `attributes`, `status_code`,
/// `status_message` (ids as lowercase hex, as Weir reads them as text).
pub fn spans(otlp_json: &str) -> Result<Table, Error> {
    let root = parse(otlp_json)?;
    let mut b = Builder::new(&[
        ("trace_id", 't'),
        ("span_id", 't'),
        ("parent_span_id", 't'),
        ("trace_state", 't'),
        ("name", 't'),
        ("kind", 'i'),
        ("start_time", 'i'),
        ("end_time", 'i'),
        ("duration_ns", 'i'),
        ("attributes", 'a'),
        ("status_code", 'i'),
        ("status_message", 't'),
    ]);
    for (resource, scope, s) in records(&root, ["resourceSpans", "scopeSpans", "spans"]) {
        b.resource_and_scope(resource, scope);
        b.text("trace_id", id(s.get("traceId")));
        b.text("span_id", id(s.get("spanId")));
        b.text("parent_span_id", id(s.get("parentSpanId")));
        b.text("trace_state", string(s.get("traceState")));
        b.text("name", string(s.get("name")));
        b.int("kind", int(s.get("kind")).or(Some(0)));
        let (start, end) = (
            int(s.get("startTimeUnixNano")),
            int(s.get("endTimeUnixNano")),
        );
        b.int("start_time", start);
        b.int("end_time", end);
        b.int("duration_ns", start.zip(end).map(|(s, e)| e - s));
        b.attrs("attributes", attributes(s.get("attributes")));
        let status = s.get("status");
        b.int(
            "status_code",
            status.map(|st| int(st.get("code")).unwrap_or(0)),
        );
        b.text(
            "status_message",
            status.and_then(|st| string(st.get("message"))),
        );
    }
    Ok(Table {
        signal: Signal::Spans,
        columns: b.columns,
    })
}

/// The data points of an OTLP/JSON `ExportMetricsServiceRequest` as a
/// [`Table`], one row per point of a gauge, sum or histogram: columns
/// `service_name`, `resource_attributes`, `scope_name`, `scope_version`,
/// `scope_attributes`, `metric_name`, `metric_description`,
/// `metric_unit`, `metric_type`, `time`, `start_time`, `value` (gauge and
/// sum), `count`, `sum` (histogram), `attributes`. Other point kinds are
/// left out.
pub fn metrics(otlp_json: &str) -> Result<Table, Error> {
    let root = parse(otlp_json)?;
    let mut b = Builder::new(&[
        ("metric_name", 't'),
        ("metric_description", 't'),
        ("metric_unit", 't'),
        ("metric_type", 't'),
        ("time", 'i'),
        ("start_time", 'i'),
        ("value", 'f'),
        ("count", 'i'),
        ("sum", 'f'),
        ("attributes", 'a'),
    ]);
    for (resource, scope, m) in records(&root, ["resourceMetrics", "scopeMetrics", "metrics"]) {
        for kind in ["gauge", "sum", "histogram"] {
            let Some(data) = m.get(kind) else { continue };
            for point in array(data, "dataPoints") {
                b.resource_and_scope(resource, scope);
                b.text("metric_name", string(m.get("name")));
                b.text("metric_description", string(m.get("description")));
                b.text("metric_unit", string(m.get("unit")));
                b.text("metric_type", Some(kind.to_string()));
                b.int("time", int(point.get("timeUnixNano")));
                b.int("start_time", int(point.get("startTimeUnixNano")));
                let value = point
                    .get("asDouble")
                    .and_then(float)
                    .or_else(|| int(point.get("asInt")).map(|i| i as f64));
                b.float("value", value);
                b.int("count", int(point.get("count")));
                b.float("sum", point.get("sum").and_then(float));
                b.attrs("attributes", attributes(point.get("attributes")));
            }
        }
    }
    Ok(Table {
        signal: Signal::Metrics,
        columns: b.columns,
    })
}

fn parse(otlp_json: &str) -> Result<Value, Error> {
    serde_json::from_str(otlp_json).map_err(|e| Error::InvalidArgument(format!("not JSON: {e}")))
}

/// Every record of an OTLP/JSON request with its resource and scope:
/// `path` names the resource, scope and record lists.
fn records<'a>(
    root: &'a Value,
    path: [&'static str; 3],
) -> impl Iterator<Item = (Option<&'a Value>, Option<&'a Value>, &'a Value)> {
    array(root, path[0]).flat_map(move |r| {
        array(r, path[1]).flat_map(move |s| {
            array(s, path[2]).map(move |record| (r.get("resource"), s.get("scope"), record))
        })
    })
}

/// An id in the form Weir reads it as text: lowercase hex.
fn id(v: Option<&Value>) -> Option<String> {
    string(v).map(|s| s.to_lowercase())
}

fn float(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

#[derive(Default)]
struct Builder {
    columns: Vec<(String, Column)>,
}

impl Builder {
    /// A builder whose table has the resource and scope columns, then
    /// `columns` (name and kind: `t`ext, `i`nteger, `f`loat, `a`ttributes),
    /// even when no record comes.
    fn new(columns: &[(&str, char)]) -> Self {
        let mut b = Builder::default();
        let common = [
            ("service_name", 't'),
            ("resource_attributes", 'a'),
            ("scope_name", 't'),
            ("scope_version", 't'),
            ("scope_attributes", 'a'),
        ];
        for (name, kind) in common.iter().chain(columns) {
            let empty = match kind {
                'i' => Column::Int(Vec::new()),
                'f' => Column::Float(Vec::new()),
                'a' => Column::Attributes(Vec::new()),
                _ => Column::Text(Vec::new()),
            };
            b.columns.push(((*name).to_string(), empty));
        }
        b
    }

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
            // A time of 0 is OTLP's "unset".
            c.push(v.filter(|x| *x != 0 || !name.ends_with("time")));
        }
    }

    fn float(&mut self, name: &str, v: Option<f64>) {
        if let Column::Float(c) = self.slot(name, Column::Float(Vec::new())) {
            c.push(v);
        }
    }

    fn attrs(&mut self, name: &str, v: Vec<(String, String)>) {
        if let Column::Attributes(c) = self.slot(name, Column::Attributes(Vec::new())) {
            c.push(v);
        }
    }

    /// The resource and scope columns of one record.
    fn resource_and_scope(&mut self, resource: Option<&Value>, scope: Option<&Value>) {
        let resource_attrs = resource.map(|r| attributes(r.get("attributes")));
        let service = resource_attrs.as_ref().and_then(|a| {
            a.iter()
                .find(|(k, _)| k == "service.name")
                .map(|(_, v)| v.clone())
        });
        self.text("service_name", service);
        self.attrs("resource_attributes", resource_attrs.unwrap_or_default());
        self.text("scope_name", scope.and_then(|s| string(s.get("name"))));
        self.text(
            "scope_version",
            scope.and_then(|s| string(s.get("version"))),
        );
        self.attrs(
            "scope_attributes",
            scope
                .map(|s| attributes(s.get("attributes")))
                .unwrap_or_default(),
        );
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
