//! The plugin's logic end to end, natively. Logs go through the SDK's
//! harness (`init` and `process` on a batch built from OTLP/JSON); spans
//! and metric points, which the harness does not build, through
//! [`Rows`], a table of the tests' own that follows the host's rules and
//! records every call. Lookups go to [`Fake`] tables held per test thread.
//! This module holds the helpers; the tests are in its children, by
//! concern.

mod actions;
mod config;
mod lookups;

use std::cell::RefCell;
use std::collections::HashMap;

use serde_json::{Value, json};
use weir_plugin::harness::{self, Column, Output};
use weir_plugin::{AttributeColumn, AttributeSet, AttributeWrite, Error, Plugin, Signal, Text};

use crate::{Enrich, Plan, Tables};

thread_local! {
    /// The tables of the running test: name -> key -> value.
    static TABLES: RefCell<HashMap<String, HashMap<String, String>>> = RefCell::default();
    /// Every `get_many` call: table and keys.
    static LOOKUPS: RefCell<Vec<(String, Vec<String>)>> = RefCell::default();
}

/// Lookup tables of the running test (see [`tables`]).
#[derive(Debug, Default, Clone, Copy)]
pub struct Fake;

impl Tables for Fake {
    fn get_many(&self, table: &str, keys: &[String]) -> Result<Vec<Option<String>>, Error> {
        TABLES.with(|t| {
            let t = t.borrow();
            let table_rows = t
                .get(table)
                .ok_or_else(|| Error::Denied(format!("no lookup table `{table}`")))?;
            if !keys.is_empty() {
                LOOKUPS.with(|l| l.borrow_mut().push((table.to_string(), keys.to_vec())));
            }
            Ok(keys.iter().map(|k| table_rows.get(k).cloned()).collect())
        })
    }
}

/// Gives the running test table `name` with `rows` (key, value).
fn table(name: &str, rows: &[(&str, &str)]) {
    TABLES.with(|t| {
        t.borrow_mut().insert(
            name.to_string(),
            rows.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
    });
}

/// The `get_many` calls made since the last call of this function.
fn lookups_made() -> Vec<(String, Vec<String>)> {
    LOOKUPS.with(|l| std::mem::take(&mut *l.borrow_mut()))
}

fn plan(config: Value) -> Plan {
    Plan::from_json(&config.to_string()).unwrap_or_else(|e| panic!("{config}: {e}"))
}

fn plugin(config: Value) -> Enrich<Fake> {
    Enrich::new(plan(config.clone()), Fake).unwrap_or_else(|e| panic!("{config}: {e}"))
}

/// The message of the error `init` gives for `config`.
fn init_error(config: Value) -> String {
    match Enrich::<Fake>::init(&config.to_string()) {
        Ok(_) => panic!("config {config} was accepted"),
        Err(Error::InvalidArgument(message)) => message,
        Err(other) => panic!("config {config}: {other:?} is not an invalid-argument error"),
    }
}

/// OTLP attributes from pairs.
fn attrs(kv: &[(&str, &str)]) -> Vec<Value> {
    kv.iter()
        .map(|(k, v)| json!({"key": k, "value": {"stringValue": v}}))
        .collect()
}

/// Attribute pairs as a test writes them.
type Pairs<'a> = &'a [(&'a str, &'a str)];

/// OTLP/JSON logs: one resource per entry of `resources`, each with its
/// records' attributes.
fn logs(resources: &[(Pairs<'_>, &[Pairs<'_>])]) -> String {
    let resource_logs: Vec<Value> = resources
        .iter()
        .map(|(resource, records)| {
            let records: Vec<Value> = records
                .iter()
                .map(|kv| json!({"attributes": attrs(kv), "body": {"stringValue": "x"}}))
                .collect();
            json!({
                "resource": {"attributes": attrs(resource)},
                "scopeLogs": [{"scope": {"name": "lib"}, "logRecords": records}]
            })
        })
        .collect();
    json!({ "resourceLogs": resource_logs }).to_string()
}

/// Runs the plugin on `otlp` logs through the harness.
fn run_logs(config: Value, otlp: &str) -> Output {
    harness::run::<Enrich<Fake>>(&config.to_string(), otlp)
        .unwrap_or_else(|e| panic!("{config}: {e:?}"))
}

/// Every row's attributes of `column` after a harness run.
fn entries(out: &Output, column: &str) -> Vec<Vec<(String, String)>> {
    match out.table.column(column).expect("attribute column") {
        Column::Attributes(rows) => rows.clone(),
        other => panic!("{column} is {other:?}"),
    }
}

/// Pairs as owned entries.
fn owned(kv: &[(&str, &str)]) -> Vec<(String, String)> {
    kv.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// One row of a [`Rows`] table.
#[derive(Debug, Clone, Default)]
struct Row {
    columns: Vec<(&'static str, &'static str)>,
    resource: Vec<(String, String)>,
    scope: Vec<(String, String)>,
    record: Vec<(String, String)>,
}

fn row(
    columns: &[(&'static str, &'static str)],
    resource: &[(&str, &str)],
    record: &[(&str, &str)],
) -> Row {
    Row {
        columns: columns.to_vec(),
        resource: owned(resource),
        scope: Vec::new(),
        record: owned(record),
    }
}

/// Rows of one signal held by the tests, following the host's rules for
/// attributes, with every call recorded.
#[derive(Debug)]
struct Rows {
    signal: Signal,
    /// The column names the signal has.
    column_names: &'static [&'static str],
    rows: Vec<Row>,
    calls: Vec<String>,
}

const SPAN_COLUMNS: &[&str] = &["service_name", "name", "kind", "duration_ns", "scope_name"];
const METRIC_COLUMNS: &[&str] = &["service_name", "metric_name", "value", "scope_name"];

fn spans(rows: Vec<Row>) -> Rows {
    Rows {
        signal: Signal::Spans,
        column_names: SPAN_COLUMNS,
        rows,
        calls: Vec::new(),
    }
}

fn metrics(rows: Vec<Row>) -> Rows {
    Rows {
        signal: Signal::Metrics,
        column_names: METRIC_COLUMNS,
        rows,
        calls: Vec::new(),
    }
}

fn set_name(set: AttributeSet) -> &'static str {
    match set {
        AttributeSet::Resource => "resource",
        AttributeSet::Scope => "scope",
        AttributeSet::Record => "record",
    }
}

impl Row {
    fn set(&self, set: AttributeSet) -> &Vec<(String, String)> {
        match set {
            AttributeSet::Resource => &self.resource,
            AttributeSet::Scope => &self.scope,
            AttributeSet::Record => &self.record,
        }
    }

    fn set_mut(&mut self, set: AttributeSet) -> &mut Vec<(String, String)> {
        match set {
            AttributeSet::Resource => &mut self.resource,
            AttributeSet::Scope => &mut self.scope,
            AttributeSet::Record => &mut self.record,
        }
    }
}

impl Rows {
    /// The attribute `key` of `set` in every row.
    fn values(&self, set: AttributeSet, key: &str) -> Vec<Option<String>> {
        self.rows
            .iter()
            .map(|r| {
                r.set(set)
                    .iter()
                    .find(|(k, _)| k == key)
                    .map(|(_, v)| v.clone())
            })
            .collect()
    }
}

impl crate::Rows for Rows {
    fn signal(&self) -> Signal {
        self.signal
    }

    fn num_rows(&self) -> usize {
        self.rows.len()
    }

    fn attribute(&self, set: AttributeSet, key: &str) -> Result<AttributeColumn, Error> {
        // Reads are not recorded: `calls` is about what is written. Each
        // distinct value once, as Weir gives them.
        let mut column = AttributeColumn {
            values: Vec::new(),
            rows: Vec::new(),
        };
        for value in self.values(set, key) {
            let at = match value {
                Some(v) => match column.values.iter().position(|x| *x == v) {
                    Some(i) => i + 1,
                    None => {
                        column.values.push(v);
                        column.values.len()
                    }
                },
                None => 0,
            };
            column.rows.push(at as u32);
        }
        Ok(column)
    }

    fn text(&self, column: &str) -> Result<Text, Error> {
        if !self.column_names.contains(&column) {
            return Err(Error::NoSuchColumn(column.to_string()));
        }
        Ok(self
            .rows
            .iter()
            .map(|r| {
                r.columns
                    .iter()
                    .find(|(c, _)| *c == column)
                    .map(|(_, v)| *v)
            })
            .collect())
    }

    fn write_attributes(
        &mut self,
        set: AttributeSet,
        remove: &[String],
        writes: &[AttributeWrite],
    ) -> Result<(), Error> {
        let keys: Vec<&str> = writes.iter().map(|w| w.key.as_str()).collect();
        self.calls.push(format!(
            "{}: remove [{}], set [{}]",
            set_name(set),
            remove.join(", "),
            keys.join(", ")
        ));
        for row in &mut self.rows {
            row.set_mut(set).retain(|(k, _)| !remove.contains(k));
        }
        for write in writes {
            assert_eq!(
                write.column.rows.len(),
                self.rows.len(),
                "one entry per row"
            );
            for (i, row) in self.rows.iter_mut().enumerate() {
                let Some(value) = write.column.get(i) else {
                    continue;
                };
                let entries = row.set_mut(set);
                match entries.iter_mut().find(|(k, _)| *k == write.key) {
                    Some(entry) => entry.1 = value.to_string(),
                    None => entries.push((write.key.clone(), value.to_string())),
                }
            }
        }
        Ok(())
    }
}
