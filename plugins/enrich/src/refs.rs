//! What a config may read from a row: an attribute of one of the three
//! sets (`resource.service.name`, `scope.KEY`, `record.http.route`) or a
//! column of Weir's tables (`service_name`, `name`, `severity_text`, ...;
//! `docs/schema.md`). Templates, lookup keys and `from_attribute` all use
//! these [`Ref`]s.

use serde::Deserialize;
use weir_plugin::{AttributeSet, Signal};

/// Which attribute list of a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Set {
    /// The resource's attributes (column `resource_attributes`).
    Resource,
    /// The instrumentation scope's attributes (`scope_attributes`).
    Scope,
    /// The record's own attributes (`attributes`): the log record's, the
    /// span's or the data point's.
    #[default]
    Record,
}

impl Set {
    /// The set as the plugin contract names it.
    pub fn wit(self) -> AttributeSet {
        match self {
            Set::Resource => AttributeSet::Resource,
            Set::Scope => AttributeSet::Scope,
            Set::Record => AttributeSet::Record,
        }
    }

    /// The set as a config writes it.
    pub fn name(self) -> &'static str {
        match self {
            Set::Resource => "resource",
            Set::Scope => "scope",
            Set::Record => "record",
        }
    }
}

/// A value of a row a config reads.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Ref {
    /// Attribute `key` of a set.
    Attribute(Set, String),
    /// A column, by its name in Weir's tables.
    Column(&'static str),
}

/// The columns a config may read as text, and the signals that have them
/// (`L`ogs, `S`pans, `M`etrics). A column of another signal reads as
/// missing in every row.
pub const COLUMNS: &[(&str, &str)] = &[
    ("service_name", "LSM"),
    ("scope_name", "LSM"),
    ("scope_version", "LSM"),
    ("resource_schema_url", "LSM"),
    ("scope_schema_url", "LSM"),
    ("time", "LM"),
    ("observed_time", "L"),
    ("severity_number", "L"),
    ("severity_text", "L"),
    ("body", "L"),
    ("event_name", "L"),
    ("flags", "LSM"),
    ("start_time", "SM"),
    ("end_time", "S"),
    ("duration_ns", "S"),
    ("name", "S"),
    ("kind", "S"),
    ("trace_state", "S"),
    ("status_code", "S"),
    ("status_message", "S"),
    ("metric_name", "M"),
    ("metric_description", "M"),
    ("metric_unit", "M"),
    ("metric_type", "M"),
    ("aggregation_temporality", "M"),
    ("is_monotonic", "M"),
    ("value", "M"),
    ("int_value", "M"),
    ("count", "M"),
    ("sum", "M"),
    ("min", "M"),
    ("max", "M"),
];

/// Other names of columns, as OpenTelemetry's transformation language
/// writes them.
const ALIASES: &[(&str, &str)] = &[
    ("span.name", "name"),
    ("metric.name", "metric_name"),
    ("log.body", "body"),
];

impl Ref {
    /// Parses `resource.KEY`, `scope.KEY`, `record.KEY` (the key is the
    /// rest, dots and all) or a column name. The error says what is
    /// wrong, for a message that adds the config key.
    pub fn parse(text: &str) -> Result<Ref, String> {
        for set in [Set::Resource, Set::Scope, Set::Record] {
            if let Some(key) = text
                .strip_prefix(set.name())
                .and_then(|r| r.strip_prefix('.'))
            {
                if key.is_empty() {
                    return Err(format!(
                        "`{text}` names no attribute key after `{}.`",
                        set.name()
                    ));
                }
                return Ok(Ref::Attribute(set, key.to_string()));
            }
        }
        let column = ALIASES
            .iter()
            .find(|(alias, _)| *alias == text)
            .map_or(text, |(_, column)| column);
        match COLUMNS.iter().find(|(name, _)| *name == column) {
            Some((name, _)) => Ok(Ref::Column(name)),
            None => Err(format!(
                "`{text}` is neither an attribute (write `resource.KEY`, `scope.KEY` or \
                 `record.KEY`) nor a column; the columns are {}",
                COLUMNS
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }

    /// The reference as a config writes it.
    pub fn describe(&self) -> String {
        match self {
            Ref::Attribute(set, key) => format!("{}.{key}", set.name()),
            Ref::Column(c) => (*c).to_string(),
        }
    }
}

/// A set of signals, as `signals = ["logs", "spans"]` gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signals(u8);

/// A signal as a config names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignalName {
    /// Log records.
    Logs,
    /// Spans.
    Spans,
    /// Metric data points.
    Metrics,
}

impl Signals {
    /// Every signal.
    pub const ALL: Signals = Signals(0b111);

    /// The signals named (every one when `None`).
    pub fn of(names: Option<&[SignalName]>) -> Signals {
        match names {
            None => Signals::ALL,
            Some(names) => Signals(names.iter().fold(0, |bits, n| {
                bits | match n {
                    SignalName::Logs => 1,
                    SignalName::Spans => 2,
                    SignalName::Metrics => 4,
                }
            })),
        }
    }

    /// Whether `signal` is one of them.
    pub fn contains(self, signal: Signal) -> bool {
        let bit = match signal {
            Signal::Logs => 1,
            Signal::Spans => 2,
            Signal::Metrics => 4,
        };
        self.0 & bit != 0
    }

    /// Whether there is none.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guarantees: the three set prefixes give attributes (the key keeps
    /// its dots), column names and aliases give columns, and anything else
    /// is refused with the list of columns.
    #[test]
    fn references_parse() {
        assert_eq!(
            Ref::parse("resource.service.name"),
            Ok(Ref::Attribute(Set::Resource, "service.name".into()))
        );
        assert_eq!(
            Ref::parse("record.http.route"),
            Ok(Ref::Attribute(Set::Record, "http.route".into()))
        );
        assert_eq!(
            Ref::parse("scope.x"),
            Ok(Ref::Attribute(Set::Scope, "x".into()))
        );
        assert_eq!(Ref::parse("service_name"), Ok(Ref::Column("service_name")));
        assert_eq!(Ref::parse("span.name"), Ok(Ref::Column("name")));
        assert!(Ref::parse("resource.").is_err());
        let e = Ref::parse("service.name").expect_err("refused");
        assert!(
            e.contains("`resource.KEY`") && e.contains("service_name"),
            "{e}"
        );
    }
}
