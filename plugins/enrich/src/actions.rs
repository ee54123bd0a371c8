//! The attribute actions of the OpenTelemetry Collector's `attributes` and
//! `resource` processors: insert, update, upsert (with constant or
//! templated values), delete and rename, on one attribute set.

use weir_plugin::{AttributeColumn, Error};

use crate::frame::{Frame, Rows, View};
use crate::refs::{Ref, Set, Signals};
use crate::template::{Missing, Template};

/// When a write happens, by whether the attribute is there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// Only where the attribute is absent.
    Insert,
    /// Only where it is present.
    Update,
    /// Everywhere.
    Upsert,
}

impl WriteMode {
    /// Whether a row where the attribute is `present` (or not) is written.
    pub fn applies(self, present: bool) -> bool {
        match self {
            WriteMode::Insert => !present,
            WriteMode::Update => present,
            WriteMode::Upsert => true,
        }
    }
}

/// A checked entry of `actions`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionStep {
    /// The attribute set.
    pub set: Set,
    /// The attribute acted on.
    pub key: String,
    /// What is done.
    pub kind: ActionKind,
    /// The signals it applies to.
    pub signals: Signals,
}

/// What an action does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionKind {
    /// insert, update or upsert a value.
    Write {
        /// When.
        mode: WriteMode,
        /// The value (`from_attribute` is a template of one reference).
        value: Template,
        /// What a missing reference does.
        missing: Missing,
    },
    /// Remove the attribute.
    Delete,
    /// Move the value to `to` (replacing a value there) and remove the
    /// attribute.
    Rename {
        /// The new key.
        to: String,
    },
}

impl ActionStep {
    /// Applies the action to every row.
    pub fn run<R: Rows + ?Sized>(&self, frame: &mut Frame<'_, R>) -> Result<(), Error> {
        let target = Ref::Attribute(self.set, self.key.clone());
        match &self.kind {
            ActionKind::Delete => frame.delete(self.set, &self.key),
            ActionKind::Rename { to } => {
                frame.load(&target)?;
                let view = frame.view(&target);
                let moved = column_of(frame.len(), |row| view.get(row));
                let to = frame.target(self.set, to);
                frame.write(to, moved);
                frame.delete(self.set, &self.key);
            }
            ActionKind::Write {
                mode,
                value,
                missing,
            } => {
                if *mode != WriteMode::Upsert {
                    frame.load(&target)?;
                }
                for reference in value.refs() {
                    frame.load(reference)?;
                }
                let view = frame.view(&target);
                let applies = |row: usize| mode.applies(view.get(row).is_some());
                let written = match value.constant() {
                    Some(text) => AttributeColumn {
                        values: vec![text.to_string()],
                        rows: (0..frame.len())
                            .map(|row| u32::from(applies(row)))
                            .collect(),
                    },
                    None => {
                        let refs: Vec<(&Ref, View<'_>)> =
                            value.refs().map(|r| (r, frame.view(r))).collect();
                        // Rows with the same values of the references get
                        // the same text, rendered once: resource attributes
                        // repeat row after row.
                        let mut last: Option<(Vec<Option<&str>>, u32)> = None;
                        let mut current: Vec<Option<&str>> = Vec::with_capacity(refs.len());
                        let mut values = Vec::new();
                        let mut rows = Vec::with_capacity(frame.len());
                        for row in 0..frame.len() {
                            if !applies(row) {
                                rows.push(0);
                                continue;
                            }
                            current.clear();
                            current.extend(refs.iter().map(|(_, v)| v.get(row)));
                            let id = match &last {
                                Some((seen, id)) if *seen == current => *id,
                                _ => {
                                    let text = value.render(
                                        |r| {
                                            refs.iter()
                                                .position(|(x, _)| *x == r)
                                                .and_then(|i| current[i])
                                        },
                                        *missing,
                                    );
                                    let id = match text {
                                        Some(text) => {
                                            values.push(text);
                                            u32::try_from(values.len()).unwrap_or(u32::MAX)
                                        }
                                        None => 0,
                                    };
                                    last = Some((current.clone(), id));
                                    id
                                }
                            };
                            rows.push(id);
                        }
                        AttributeColumn { values, rows }
                    }
                };
                let to = frame.target(self.set, &self.key);
                frame.write(to, written);
            }
        }
        Ok(())
    }
}

/// The column of `value(row)` for every row; consecutive rows of equal
/// text share one value.
fn column_of<'v>(rows: usize, value: impl Fn(usize) -> Option<&'v str>) -> AttributeColumn {
    let mut column = AttributeColumn {
        values: Vec::new(),
        rows: Vec::with_capacity(rows),
    };
    let mut last: Option<&str> = None;
    for row in 0..rows {
        match value(row) {
            Some(text) => {
                if last != Some(text) {
                    column.values.push(text.to_string());
                    last = Some(text);
                }
                column
                    .rows
                    .push(u32::try_from(column.values.len()).unwrap_or(u32::MAX));
            }
            None => column.rows.push(0),
        }
    }
    column
}
