//! One lookup over a batch: the key column read once, each distinct key
//! looked up once (one `get-many` call per batch), each value found parsed
//! once, and each target attribute written once per batch (through the
//! [`Frame`]).

use std::collections::HashMap;

use serde_json::{Map, Value};
use weir_plugin::{AttributeColumn, Error};

use crate::actions::WriteMode;
use crate::frame::{Frame, Rows};
use crate::refs::{Ref, Set, Signals};
use crate::tables::Tables;

/// A checked entry of `lookups`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupStep {
    /// The table's name in the processor's `lookups`.
    pub table: String,
    /// What is looked up.
    pub from: Ref,
    /// Where the values go.
    pub set: Set,
    /// Which values go to which attributes.
    pub output: Output,
    /// insert, update or upsert.
    pub mode: WriteMode,
    /// The signals it applies to.
    pub signals: Signals,
}

/// Which attributes a value found fills.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// The value is an object of columns: each `(column, attribute)`.
    Columns(Vec<(String, String)>),
    /// The value is an object of columns: every one, to `prefix` + its
    /// name.
    All {
        /// Put before each column's name.
        prefix: String,
    },
    /// The whole value, to this attribute.
    Whole(String),
}

/// What one lookup did to a batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Rows whose key was found.
    pub hits: u64,
    /// Rows with a key that was not found.
    pub misses: u64,
}

/// A column's value in a found object as attribute text: a string as it
/// is, `null` as nothing, anything else as its JSON text.
fn cell(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

impl LookupStep {
    /// Looks up the batch's keys and writes what is found.
    pub fn run<R: Rows + ?Sized>(
        &self,
        frame: &mut Frame<'_, R>,
        tables: &impl Tables,
    ) -> Result<Outcome, Error> {
        let keys = frame.keys(&self.from)?;
        if keys.distinct.is_empty() {
            return Ok(Outcome::default());
        }
        let found = tables.get_many(&self.table, &keys.distinct)?;
        if found.len() != keys.distinct.len() {
            return Err(Error::Failed(format!(
                "lookup table `{}` answered {} keys with {} values",
                self.table,
                keys.distinct.len(),
                found.len()
            )));
        }
        // Each value found once (many keys share a row of the table: the
        // addresses of one network), parsed once.
        let mut which: Vec<Option<usize>> = Vec::with_capacity(found.len());
        let mut raw: Vec<&str> = Vec::new();
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for value in &found {
            which.push(value.as_deref().map(|v| {
                *seen.entry(v).or_insert_with(|| {
                    raw.push(v);
                    raw.len() - 1
                })
            }));
        }
        // One cell per distinct value found, per target attribute.
        let targets: Vec<(String, Vec<Option<String>>)> = match &self.output {
            Output::Whole(attribute) => vec![(
                attribute.clone(),
                raw.iter().map(|v| Some(v.to_string())).collect(),
            )],
            Output::Columns(columns) => {
                let objects = objects(&raw);
                columns
                    .iter()
                    .map(|(column, attribute)| {
                        let values = objects
                            .iter()
                            .map(|o| o.as_ref().and_then(|o| o.get(column)).and_then(cell))
                            .collect();
                        (attribute.clone(), values)
                    })
                    .collect()
            }
            Output::All { prefix } => {
                let objects = objects(&raw);
                let mut names: Vec<&str> = Vec::new();
                for object in objects.iter().flatten() {
                    for name in object.keys() {
                        if !names.contains(&name.as_str()) {
                            names.push(name);
                        }
                    }
                }
                names
                    .iter()
                    .map(|name| {
                        let values = objects
                            .iter()
                            .map(|o| o.as_ref().and_then(|o| o.get(*name)).and_then(cell))
                            .collect();
                        (format!("{prefix}{name}"), values)
                    })
                    .collect()
            }
        };
        for (attribute, cells) in targets {
            let target = Ref::Attribute(self.set, attribute);
            if self.mode != WriteMode::Upsert {
                frame.load(&target)?;
            }
            // Each cell's number in the written values (0: none).
            let mut values = Vec::new();
            let ids: Vec<u32> = cells
                .into_iter()
                .map(|cell| match cell {
                    Some(v) => {
                        values.push(v);
                        u32::try_from(values.len()).unwrap_or(u32::MAX)
                    }
                    None => 0,
                })
                .collect();
            let view = frame.view(&target);
            let rows: Vec<u32> = keys
                .rows
                .iter()
                .enumerate()
                .map(|(row, key)| {
                    let id = key
                        .and_then(|k| which[k as usize])
                        .map_or(0, |value| ids[value]);
                    let writes = id != 0
                        && (self.mode == WriteMode::Upsert
                            || self.mode.applies(view.get(row).is_some()));
                    if writes { id } else { 0 }
                })
                .collect();
            let Ref::Attribute(_, attribute) = &target else {
                continue;
            };
            let to = frame.target(self.set, attribute);
            frame.write(to, AttributeColumn { values, rows });
        }
        let mut outcome = Outcome::default();
        for key in keys.rows.iter().flatten() {
            match found[*key as usize] {
                Some(_) => outcome.hits += 1,
                None => outcome.misses += 1,
            }
        }
        Ok(outcome)
    }
}

/// Each value found parsed as an object of columns; `None` where the
/// value is not an object.
fn objects(found: &[&str]) -> Vec<Option<Map<String, Value>>> {
    found.iter().map(|v| serde_json::from_str(v).ok()).collect()
}
