//! Times the enrich logic natively: batches of 1,024 spans through
//! `Enrich::enrich`, the work `process` does between reading the columns
//! and writing them back. The batch stands in for the host: a read hands
//! out a copy of the column, each distinct value once (as the boundary
//! copies it), a write is taken and dropped; the lookup tables are in-memory maps. What the host does
//! (Arrow reads and writes, the table's match) comes on top.
//!
//! ```sh
//! cargo run --release -p enrich --example throughput [lookup|ip|actions|issue ...]
//! ```
//!
//! - `lookup`: the rows of 8 services (resource `service.name`) looked up
//!   in a table of 1,000 services, 3 columns to resource attributes.
//! - `ip`: every row a different `client.address` looked up, the whole
//!   value to one record attribute (1,024 distinct keys a batch).
//! - `actions`: insert a constant, rename and delete a record attribute,
//!   upsert a template of two resource attributes.
//! - `issue`: the lookup of `lookup` and the actions of `actions` together
//!   (the example config of the plugin's README).
//!
//! Prints records/s for each.

use std::collections::HashMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use enrich::{Enrich, Plan, Rows, Tables};
use weir_plugin::{AttributeColumn, AttributeSet, AttributeWrite, Error, Signal, Text};

const ROWS: usize = 1024;

/// Tables in memory.
struct Maps(HashMap<String, HashMap<String, String>>);

impl Tables for Maps {
    fn get_many(&self, table: &str, keys: &[String]) -> Result<Vec<Option<String>>, Error> {
        let t = self
            .0
            .get(table)
            .ok_or_else(|| Error::Denied(table.to_string()))?;
        Ok(keys.iter().map(|k| t.get(k).cloned()).collect())
    }
}

/// A batch of spans held as the columns the configs read.
struct Columns {
    attributes: HashMap<(u8, String), AttributeColumn>,
    names: Vec<Option<String>>,
    written: usize,
}

fn set_id(set: AttributeSet) -> u8 {
    match set {
        AttributeSet::Resource => 0,
        AttributeSet::Scope => 1,
        AttributeSet::Record => 2,
    }
}

impl Rows for Columns {
    fn signal(&self) -> Signal {
        Signal::Spans
    }
    fn num_rows(&self) -> usize {
        ROWS
    }
    fn attribute(&self, set: AttributeSet, key: &str) -> Result<AttributeColumn, Error> {
        Ok(self
            .attributes
            .get(&(set_id(set), key.to_string()))
            .cloned()
            .unwrap_or_else(|| AttributeColumn {
                values: Vec::new(),
                rows: vec![0; ROWS],
            }))
    }
    fn text(&self, column: &str) -> Result<Text, Error> {
        match column {
            "name" => Ok(self.names.iter().map(Option::as_deref).collect()),
            other => Err(Error::NoSuchColumn(other.to_string())),
        }
    }
    fn write_attributes(
        &mut self,
        _set: AttributeSet,
        _remove: &[String],
        writes: &[AttributeWrite],
    ) -> Result<(), Error> {
        self.written += black_box(writes).len();
        Ok(())
    }
}

/// A column as Weir hands it out: each distinct value once.
fn distinct(values: Vec<Option<String>>) -> AttributeColumn {
    let mut column = AttributeColumn {
        values: Vec::new(),
        rows: Vec::new(),
    };
    let mut seen: HashMap<String, u32> = HashMap::new();
    for value in values {
        let at = match value {
            Some(v) => *seen.entry(v.clone()).or_insert_with(|| {
                column.values.push(v);
                column.values.len() as u32
            }),
            None => 0,
        };
        column.rows.push(at);
    }
    column
}

fn batch() -> Columns {
    let mut attributes = HashMap::new();
    let column = |f: &dyn Fn(usize) -> Option<String>| distinct((0..ROWS).map(f).collect());
    attributes.insert(
        (0, "service.name".to_string()),
        column(&|i| Some(format!("service-{}", (i / 128) * 97))),
    );
    attributes.insert(
        (0, "service.namespace".to_string()),
        column(&|_| Some("shop".to_string())),
    );
    attributes.insert(
        (2, "client.address".to_string()),
        column(&|i| Some(format!("10.{}.{}.{}", i % 7, i / 256, i % 256))),
    );
    attributes.insert(
        (2, "http.route".to_string()),
        column(&|i| Some(format!("/api/v1/items/{{id}}/{}", i % 5))),
    );
    attributes.insert(
        (2, "user.password".to_string()),
        column(&|i| (i % 4 == 0).then(|| "hunter2".to_string())),
    );
    Columns {
        attributes,
        names: (0..ROWS)
            .map(|i| Some(format!("GET /items/{}", i % 5)))
            .collect(),
        written: 0,
    }
}

fn tables() -> Maps {
    let teams = (0..1000)
        .map(|i| {
            (
                format!("service-{i}"),
                format!(
                    r#"{{"owner":"owner-{i}","team":"team-{}","tier":"{}"}}"#,
                    i % 40,
                    i % 3
                ),
            )
        })
        .collect();
    let zones = (0..ROWS)
        .map(|i| {
            (
                format!("10.{}.{}.{}", i % 7, i / 256, i % 256),
                format!("zone-{}", i % 9),
            )
        })
        .collect();
    Maps(HashMap::from([
        ("teams".to_string(), teams),
        ("zones".to_string(), zones),
    ]))
}

const LOOKUP: &str = r#"{ "table": "teams", "from": "resource.service.name",
    "columns": { "team": "team.name", "owner": "team.owner", "tier": "team.tier" } }"#;
const ACTIONS: &str = r#"[
    { "set": "resource", "key": "deployment.environment", "value": "prod", "action": "insert" },
    { "set": "record", "key": "http.route", "action": "rename", "to": "route" },
    { "set": "record", "key": "user.password", "action": "delete" },
    { "set": "resource", "key": "service.ns_name", "action": "upsert",
      "value": "{resource.service.namespace}/{resource.service.name}" } ]"#;

fn main() {
    let cases = [
        ("lookup", format!(r#"{{ "lookups": [{LOOKUP}] }}"#)),
        (
            "ip",
            r#"{ "lookups": [{ "table": "zones", "from": "record.client.address",
                 "to": { "key": "client.zone" } }] }"#
                .to_string(),
        ),
        ("actions", format!(r#"{{ "actions": {ACTIONS} }}"#)),
        (
            "issue",
            format!(r#"{{ "lookups": [{LOOKUP}], "actions": {ACTIONS} }}"#),
        ),
    ];
    let only: Vec<String> = std::env::args().skip(1).collect();
    for (name, config) in cases
        .iter()
        .filter(|(n, _)| only.is_empty() || only.iter().any(|o| o == n))
    {
        let plan = Plan::from_json(config).unwrap_or_else(|e| panic!("{name}: {e}"));
        let plugin = Enrich::new(plan, tables()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut rows = batch();
        for _ in 0..20 {
            black_box(plugin.enrich(&mut rows).unwrap_or_else(|e| panic!("{e:?}")));
        }
        let started = Instant::now();
        let mut batches = 0u32;
        while started.elapsed() < Duration::from_secs(2) {
            black_box(plugin.enrich(&mut rows).unwrap_or_else(|e| panic!("{e:?}")));
            batches += 1;
        }
        let secs = started.elapsed().as_secs_f64();
        #[allow(clippy::print_stdout)]
        {
            println!(
                "{name:<8} {:>10.0} records/s  ({batches} batches of {ROWS} spans)",
                f64::from(batches) * ROWS as f64 / secs
            );
        }
    }
}
