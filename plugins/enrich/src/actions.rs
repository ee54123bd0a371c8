//! The attribute actions of the OpenTelemetry Collector's `attributes` and
//! `resource` processors: insert, update, upsert (with constant or
//! templated values), delete and rename, on one attribute set.

use weir_plugin::Error;

use crate::frame::{Frame, Rows};
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
                let moved: Vec<(usize, String)> = (0..frame.len())
                    .filter_map(|row| view.get(row).map(|v| (row, v.to_string())))
                    .collect();
                let to = frame.target(self.set, to);
                for (row, value) in moved {
                    frame.write(to, row, value);
                }
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
                let rendered: Vec<Option<String>> = match value.constant() {
                    Some(text) => {
                        let view = frame.view(&target);
                        (0..frame.len())
                            .map(|row| {
                                mode.applies(view.get(row).is_some())
                                    .then(|| text.to_string())
                            })
                            .collect()
                    }
                    None => {
                        let view = frame.view(&target);
                        let refs: Vec<(&Ref, _)> =
                            value.refs().map(|r| (r, frame.view(r))).collect();
                        (0..frame.len())
                            .map(|row| {
                                if !mode.applies(view.get(row).is_some()) {
                                    return None;
                                }
                                value.render(
                                    |r| {
                                        refs.iter()
                                            .find(|(x, _)| *x == r)
                                            .and_then(|(_, v)| v.get(row))
                                    },
                                    *missing,
                                )
                            })
                            .collect()
                    }
                };
                let to = frame.target(self.set, &self.key);
                for (row, v) in rendered.into_iter().enumerate() {
                    if let Some(v) = v {
                        frame.write(to, row, v);
                    }
                }
            }
        }
        Ok(())
    }
}
