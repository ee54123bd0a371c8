//! What a user writes in the processor's `config = { ... }` table
//! ([`EnrichConfig`], parsed from the JSON the host hands to `init`), and
//! the checked [`Plan`] it resolves into. Every mistake is a
//! [`ConfigError`] naming the key to fix.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use weir_plugin::config::parse_json;

use crate::actions::{ActionKind, ActionStep, WriteMode};
use crate::lookup::{LookupStep, Output};
use crate::refs::{Ref, Set, SignalName, Signals};
use crate::template::{Missing, Template};

/// The plugin's settings, as written in the pipeline file. Lookups run
/// first, in order, then actions, in order; each step sees what the steps
/// before it wrote.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrichConfig {
    /// Attributes from lookup tables: `[{ table = "teams", from =
    /// "resource.service.name", columns = { team = "team.name" } }]`.
    /// Default: none.
    #[serde(default)]
    pub lookups: Vec<LookupConfig>,
    /// Attribute changes, as the OpenTelemetry Collector's `attributes`
    /// and `resource` processors make them: `[{ set = "resource", key =
    /// "deployment.environment", value = "prod", action = "insert" }]`.
    /// Default: none.
    #[serde(default)]
    pub actions: Vec<ActionConfig>,
}

/// One entry of `lookups`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LookupConfig {
    /// The table, by its name in the processor's `lookups`. Required.
    pub table: String,
    /// What to look up: `"resource.service.name"` (a set and a key, or a
    /// column such as `"service_name"`), or `{ set = "resource", key =
    /// "service.name" }` / `{ column = "service_name" }`. Required.
    pub from: RefConfig,
    /// Where the found values go: `{ set = "resource" }` (default: the
    /// set of `from`, or `resource` when `from` is a column); `key` to
    /// write the whole value to one attribute, or `prefix` to put before
    /// each column's name when `columns` is left out.
    #[serde(default)]
    pub to: TargetConfig,
    /// The table's columns to take, each to the attribute it goes to:
    /// `{ team = "team.name", owner = "team.owner" }`. Default: every
    /// column of the row found, each to the attribute of its own name
    /// (after `to.prefix`).
    #[serde(default)]
    pub columns: Option<BTreeMap<String, String>>,
    /// `"upsert"` (default: set whether or not the attribute is there),
    /// `"insert"` (only where it is absent) or `"update"` (only where it
    /// is present).
    #[serde(default)]
    pub action: Option<ActionName>,
    /// The signals to enrich: `["logs", "spans", "metrics"]` (default:
    /// all three).
    #[serde(default)]
    pub signals: Option<Vec<SignalName>>,
}

/// `to` of a lookup.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    /// `"resource"`, `"scope"` or `"record"`.
    #[serde(default)]
    pub set: Option<Set>,
    /// The attribute that gets the whole value found (for tables whose
    /// values are not objects of columns). Not with `columns` or
    /// `prefix`.
    #[serde(default)]
    pub key: Option<String>,
    /// Put before each column's name when `columns` is left out:
    /// `"team."` makes column `owner` attribute `team.owner`.
    #[serde(default)]
    pub prefix: Option<String>,
}

/// One entry of `actions`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionConfig {
    /// The attribute acted on. Required.
    pub key: String,
    /// `"insert"` (set where absent), `"update"` (set where present),
    /// `"upsert"` (set everywhere), `"delete"` or `"rename"` (to `to`).
    /// Required.
    pub action: ActionName,
    /// The attribute set: `"resource"`, `"scope"` or `"record"`. Default
    /// `"record"`.
    #[serde(default)]
    pub set: Set,
    /// insert, update, upsert: the value, a template: `"prod"`,
    /// `"{resource.service.namespace}/{resource.service.name}"`. Numbers
    /// and booleans are taken as their text.
    #[serde(default, deserialize_with = "scalar")]
    pub value: Option<String>,
    /// insert, update, upsert: copy the value of this attribute of the
    /// same set instead of `value`.
    #[serde(default)]
    pub from_attribute: Option<String>,
    /// rename: the new key, in the same set.
    #[serde(default)]
    pub to: Option<String>,
    /// insert, update, upsert: what a template reference missing in a row
    /// does: `"skip"` (default: the row is left alone) or `"empty"` (it
    /// counts as empty text).
    #[serde(default)]
    pub missing: Option<Missing>,
    /// The signals to act on (default: all three).
    #[serde(default)]
    pub signals: Option<Vec<SignalName>>,
}

/// What an action does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionName {
    /// Set where the attribute is absent.
    Insert,
    /// Set where the attribute is present.
    Update,
    /// Set everywhere.
    Upsert,
    /// Remove the attribute.
    Delete,
    /// Move the attribute's value to another key.
    Rename,
}

impl ActionName {
    fn name(self) -> &'static str {
        match self {
            ActionName::Insert => "insert",
            ActionName::Update => "update",
            ActionName::Upsert => "upsert",
            ActionName::Delete => "delete",
            ActionName::Rename => "rename",
        }
    }

    fn write_mode(self) -> Option<WriteMode> {
        match self {
            ActionName::Insert => Some(WriteMode::Insert),
            ActionName::Update => Some(WriteMode::Update),
            ActionName::Upsert => Some(WriteMode::Upsert),
            ActionName::Delete | ActionName::Rename => None,
        }
    }
}

/// A reference as written: text (`"resource.service.name"`,
/// `"service_name"`) or a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefConfig {
    /// `"resource.service.name"` or a column name.
    Text(String),
    /// `{ set = "resource", key = "service.name" }` or `{ column =
    /// "service_name" }`.
    Table(RefTable),
}

/// The table form of a reference.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefTable {
    /// The attribute set, with `key`.
    #[serde(default)]
    pub set: Option<Set>,
    /// The attribute key, with `set`.
    #[serde(default)]
    pub key: Option<String>,
    /// A column instead of an attribute.
    #[serde(default)]
    pub column: Option<String>,
}

impl<'de> Deserialize<'de> for RefConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct TextOrTable;
        impl<'de> Visitor<'de> for TextOrTable {
            type Value = RefConfig;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "\"resource.KEY\", \"record.KEY\", \"scope.KEY\", a column name, or a table \
                     { set = ..., key = ... } / { column = ... }",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RefConfig, E> {
                Ok(RefConfig::Text(v.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RefConfig, A::Error> {
                RefTable::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(RefConfig::Table)
            }
        }
        d.deserialize_any(TextOrTable)
    }
}

/// A string, number or boolean, as text.
fn scalar<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Ok(Some(s)),
        v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_)) => Ok(Some(v.to_string())),
        serde_json::Value::Null => Ok(None),
        _ => Err(de::Error::custom(
            "expected a string, number or boolean (attributes are set as strings)",
        )),
    }
}

/// A mistake in the config, with the key to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The JSON does not fit the keys and types above.
    #[error("config key `{path}`: {message}")]
    Invalid {
        /// Where: `actions[0].action`, or `.` for the table itself.
        path: String,
        /// What serde found.
        message: String,
    },
    /// A reference (`from`, a template's `{...}`, `from_attribute`) that
    /// names nothing readable.
    #[error("config key `{path}`: {message}")]
    BadReference {
        /// Where.
        path: String,
        /// What is wrong and what to write.
        message: String,
    },
    /// A `value` that is not a template.
    #[error("config key `{path}`: the template `{template}` does not parse: {message}")]
    BadTemplate {
        /// Where.
        path: String,
        /// The template given.
        template: String,
        /// What is wrong.
        message: String,
    },
    /// An action without a key it needs.
    #[error("config key `{path}`: action \"{action}\" needs {needs}")]
    Needs {
        /// The action's path (`actions[2]`).
        path: String,
        /// The action.
        action: &'static str,
        /// What to add.
        needs: &'static str,
    },
    /// A key that means nothing for this action or lookup.
    #[error("config key `{path}.{key}`: not used by {what}; remove it")]
    NotUsed {
        /// The entry's path.
        path: String,
        /// The key given.
        key: &'static str,
        /// What does not use it.
        what: String,
    },
    /// An empty attribute key, table or column name.
    #[error("config key `{path}`: cannot be empty")]
    Empty {
        /// Where.
        path: String,
    },
    /// A rename to its own key.
    #[error("config key `{path}.to`: renaming `{key}` to itself does nothing; give another key")]
    RenameToSelf {
        /// The action's path.
        path: String,
        /// The key.
        key: String,
    },
    /// A lookup action other than insert, update and upsert.
    #[error(
        "config key `{path}.action`: a lookup sets attributes: use \"upsert\" (the default), \
         \"insert\" or \"update\", not \"{action}\""
    )]
    LookupAction {
        /// The lookup's path.
        path: String,
        /// The action given.
        action: &'static str,
    },
    /// `signals = []`.
    #[error("config key `{path}.signals`: names no signal; leave it out for all three")]
    NoSignals {
        /// The entry's path.
        path: String,
    },
    /// A table the pipeline does not give the plugin.
    #[error(
        "config key `{path}.table`: the pipeline gives this plugin no lookup table `{table}`; \
         name it in the processor's `lookups`, e.g. lookups = {{ {table} = {{ file = \
         \"{table}.csv\", key = \"...\" }} }}"
    )]
    UnknownTable {
        /// The lookup's path.
        path: String,
        /// The table named.
        table: String,
    },
    /// No lookup and no action.
    #[error(
        "config keys `lookups` and `actions`: nothing to do; add a lookup ({{ table = ..., from \
         = ... }}) or an action ({{ key = ..., action = ... }})"
    )]
    NothingToDo,
}

impl From<ConfigError> for weir_plugin::Error {
    fn from(e: ConfigError) -> Self {
        weir_plugin::Error::InvalidArgument(e.to_string())
    }
}

/// The config, checked: the steps [`crate::Enrich`] runs, lookups first.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The lookups, in order.
    pub lookups: Vec<LookupStep>,
    /// The actions, in order.
    pub actions: Vec<ActionStep>,
}

impl Plan {
    /// Parses and checks the JSON text `init` receives.
    pub fn from_json(json: &str) -> Result<Plan, ConfigError> {
        EnrichConfig::parse(json)?.resolve()
    }
}

impl EnrichConfig {
    /// Parses the JSON text `init` receives.
    pub fn parse(json: &str) -> Result<Self, ConfigError> {
        parse_json(json).map_err(|e| ConfigError::Invalid {
            path: e.path,
            message: e.message,
        })
    }

    /// Checks everything and builds the steps.
    pub fn resolve(self) -> Result<Plan, ConfigError> {
        if self.lookups.is_empty() && self.actions.is_empty() {
            return Err(ConfigError::NothingToDo);
        }
        let lookups = self
            .lookups
            .into_iter()
            .enumerate()
            .map(|(i, l)| l.resolve(&format!("lookups[{i}]")))
            .collect::<Result<_, _>>()?;
        let actions = self
            .actions
            .into_iter()
            .enumerate()
            .map(|(i, a)| a.resolve(&format!("actions[{i}]")))
            .collect::<Result<_, _>>()?;
        Ok(Plan { lookups, actions })
    }
}

fn non_empty(path: String, text: String) -> Result<String, ConfigError> {
    if text.is_empty() {
        return Err(ConfigError::Empty { path });
    }
    Ok(text)
}

fn signals(path: &str, names: Option<Vec<SignalName>>) -> Result<Signals, ConfigError> {
    let signals = Signals::of(names.as_deref());
    if signals.is_empty() {
        return Err(ConfigError::NoSignals {
            path: path.to_string(),
        });
    }
    Ok(signals)
}

impl RefConfig {
    fn resolve(self, path: &str) -> Result<Ref, ConfigError> {
        let bad = |message: String| ConfigError::BadReference {
            path: path.to_string(),
            message,
        };
        match self {
            RefConfig::Text(text) => Ref::parse(&text).map_err(bad),
            RefConfig::Table(RefTable {
                set: Some(set),
                key: Some(key),
                column: None,
            }) => Ok(Ref::Attribute(set, non_empty(format!("{path}.key"), key)?)),
            RefConfig::Table(RefTable {
                set: None,
                key: None,
                column: Some(column),
            }) => match Ref::parse(&column).map_err(bad)? {
                r @ Ref::Column(_) => Ok(r),
                Ref::Attribute(..) => Err(bad(format!(
                    "`{column}` is not a column; write {{ set = ..., key = ... }} for an \
                         attribute"
                ))),
            },
            RefConfig::Table(_) => Err(bad(
                "give `set` and `key` (an attribute), or `column` alone".to_string(),
            )),
        }
    }
}

impl LookupConfig {
    fn resolve(self, path: &str) -> Result<LookupStep, ConfigError> {
        let table = non_empty(format!("{path}.table"), self.table)?;
        let from = self.from.resolve(&format!("{path}.from"))?;
        let set = self.to.set.unwrap_or(match &from {
            Ref::Attribute(set, _) => *set,
            Ref::Column(_) => Set::Resource,
        });
        let output = match (self.to.key, self.to.prefix, self.columns) {
            (Some(key), None, None) => Output::Whole(non_empty(format!("{path}.to.key"), key)?),
            (Some(_), _, _) => {
                return Err(ConfigError::NotUsed {
                    path: format!("{path}.to"),
                    key: "key",
                    what: "a lookup with `columns` or `to.prefix` (`to.key` takes the whole \
                           value into one attribute)"
                        .to_string(),
                });
            }
            (None, prefix, None) => Output::All {
                prefix: prefix.unwrap_or_default(),
            },
            (None, Some(_), Some(_)) => {
                return Err(ConfigError::NotUsed {
                    path: format!("{path}.to"),
                    key: "prefix",
                    what: "a lookup with `columns` (which names each attribute)".to_string(),
                });
            }
            (None, None, Some(columns)) => {
                let mut out = Vec::with_capacity(columns.len());
                for (column, attribute) in columns {
                    let at = format!("{path}.columns.{column}");
                    if column.is_empty() {
                        return Err(ConfigError::Empty {
                            path: format!("{path}.columns"),
                        });
                    }
                    out.push((column, non_empty(at, attribute)?));
                }
                Output::Columns(out)
            }
        };
        let mode = match self.action {
            None => WriteMode::Upsert,
            Some(a) => a.write_mode().ok_or(ConfigError::LookupAction {
                path: path.to_string(),
                action: a.name(),
            })?,
        };
        Ok(LookupStep {
            signals: signals(path, self.signals)?,
            table,
            from,
            set,
            output,
            mode,
        })
    }
}

impl ActionConfig {
    fn resolve(self, path: &str) -> Result<ActionStep, ConfigError> {
        let key = non_empty(format!("{path}.key"), self.key)?;
        let action = self.action.name();
        let not_used = |key: &'static str| ConfigError::NotUsed {
            path: path.to_string(),
            key,
            what: format!("action \"{action}\""),
        };
        let kind = match self.action.write_mode() {
            Some(mode) => {
                if self.to.is_some() {
                    return Err(not_used("to"));
                }
                let value = match (self.value, self.from_attribute) {
                    (Some(_), Some(_)) => return Err(not_used("from_attribute")),
                    (None, None) => {
                        return Err(ConfigError::Needs {
                            path: path.to_string(),
                            action,
                            needs: "`value` (text or a template) or `from_attribute`",
                        });
                    }
                    (Some(value), None) => {
                        Template::parse(&value).map_err(|message| ConfigError::BadTemplate {
                            path: format!("{path}.value"),
                            template: value.clone(),
                            message,
                        })?
                    }
                    (None, Some(from)) => Template::of(Ref::Attribute(
                        self.set,
                        non_empty(format!("{path}.from_attribute"), from)?,
                    )),
                };
                ActionKind::Write {
                    mode,
                    value,
                    missing: self.missing.unwrap_or_default(),
                }
            }
            None => {
                for (given, name) in [
                    (self.value.is_some(), "value"),
                    (self.from_attribute.is_some(), "from_attribute"),
                    (self.missing.is_some(), "missing"),
                ] {
                    if given {
                        return Err(not_used(name));
                    }
                }
                match (self.action, self.to) {
                    (ActionName::Rename, None) => {
                        return Err(ConfigError::Needs {
                            path: path.to_string(),
                            action,
                            needs: "`to`, the new key",
                        });
                    }
                    (ActionName::Rename, Some(to)) if to == key => {
                        return Err(ConfigError::RenameToSelf {
                            path: path.to_string(),
                            key,
                        });
                    }
                    (ActionName::Rename, Some(to)) => ActionKind::Rename {
                        to: non_empty(format!("{path}.to"), to)?,
                    },
                    (_, Some(_)) => return Err(not_used("to")),
                    (_, None) => ActionKind::Delete,
                }
            }
        };
        Ok(ActionStep {
            signals: signals(path, self.signals)?,
            set: self.set,
            key,
            kind,
        })
    }
}
