//! One lookup over a batch: the key column read once, each distinct key
//! looked up once (one `get-many` call per batch), each value found parsed
//! once, and each target attribute written once per batch (through the
//! [`Frame`]).

use serde_json::{Map, Value};
use weir_plugin::Error;

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
        // One column of values per target attribute, one entry per
        // distinct key.
        let targets: Vec<(String, Vec<Option<String>>)> = match &self.output {
            Output::Whole(attribute) => vec![(attribute.clone(), found.clone())],
            Output::Columns(columns) => {
                let objects = objects(&found);
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
                let objects = objects(&found);
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
        for (attribute, values) in targets {
            let target = Ref::Attribute(self.set, attribute);
            if self.mode != WriteMode::Upsert {
                frame.load(&target)?;
            }
            let present: Vec<bool> = match self.mode {
                WriteMode::Upsert => Vec::new(),
                _ => {
                    let view = frame.view(&target);
                    (0..frame.len())
                        .map(|row| view.get(row).is_some())
                        .collect()
                }
            };
            let Ref::Attribute(_, attribute) = &target else {
                continue;
            };
            let to = frame.target(self.set, attribute);
            for (row, key) in keys.rows.iter().enumerate() {
                let Some(Some(value)) = key.map(|k| &values[k as usize]) else {
                    continue;
                };
                if self
                    .mode
                    .applies(present.get(row).copied().unwrap_or(false))
                {
                    frame.write(to, row, value.clone());
                }
            }
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

/// Each value found parsed as an object of columns, once; `None` where
/// nothing was found or the value is not an object.
fn objects(found: &[Option<String>]) -> Vec<Option<Map<String, Value>>> {
    found
        .iter()
        .map(|v| v.as_deref().and_then(|v| serde_json::from_str(v).ok()))
        .collect()
}
