//! The kinds of telemetry Weir carries, one table each.

use std::fmt;
use std::str::FromStr;

use arrow::datatypes::SchemaRef;

use crate::schema::{col, schema_for};

/// A kind of telemetry. Each signal has its own Arrow schema
/// ([`crate::schema`]) and its own table in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Signal {
    /// Log records (`logs` table).
    Logs,
    /// Spans of traces (`spans` table).
    Spans,
    /// Metric data points, one row per point (`metrics` table).
    Metrics,
    /// Alert events: the state transitions of alert instances, made by
    /// `rules` processors (`alerts` table). Not telemetry from outside: no
    /// OTLP form, not seen by plugins.
    Alerts,
}

impl Signal {
    /// Every signal, in a fixed order.
    pub const ALL: [Signal; 4] = [Signal::Logs, Signal::Spans, Signal::Metrics, Signal::Alerts];

    /// The three OpenTelemetry signals: what OTLP carries and plugins see.
    pub const TELEMETRY: [Signal; 3] = [Signal::Logs, Signal::Spans, Signal::Metrics];

    /// The signal's name as used in pipeline files, metrics labels and table
    /// names: `logs`, `spans`, `metrics` or `alerts`.
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Logs => "logs",
            Signal::Spans => "spans",
            Signal::Metrics => "metrics",
            Signal::Alerts => "alerts",
        }
    }

    /// The Arrow schema of the signal's batches and of its table.
    pub fn schema(self) -> SchemaRef {
        schema_for(self)
    }

    /// The name of the signal's event-time column: `start_time` for
    /// spans, `time` for the others. Windows and the store's hourly
    /// partitions go by it.
    pub fn time_column(self) -> &'static str {
        match self {
            Signal::Spans => col::START_TIME,
            Signal::Logs | Signal::Metrics | Signal::Alerts => col::TIME,
        }
    }

    fn bit(self) -> u8 {
        match self {
            Signal::Logs => 1,
            Signal::Spans => 2,
            Signal::Metrics => 4,
            Signal::Alerts => 8,
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The name given is not one of `logs`, `spans`, `metrics`, `alerts`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown signal `{0}`: expected one of `logs`, `spans`, `metrics`, `alerts`")]
pub struct UnknownSignal(pub String);

impl FromStr for Signal {
    type Err = UnknownSignal;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "logs" => Ok(Signal::Logs),
            "spans" | "traces" => Ok(Signal::Spans),
            "metrics" => Ok(Signal::Metrics),
            "alerts" => Ok(Signal::Alerts),
            other => Err(UnknownSignal(other.to_string())),
        }
    }
}

/// A set of signals, e.g. the signals a component accepts or emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SignalSet(u8);

impl SignalSet {
    /// No signal.
    pub const NONE: SignalSet = SignalSet(0);
    /// Every signal.
    pub const ALL: SignalSet = SignalSet(15);
    /// Logs, spans and metrics: the OpenTelemetry signals.
    pub const TELEMETRY: SignalSet = SignalSet(7);

    /// The set holding just `signal`.
    pub fn only(signal: Signal) -> Self {
        SignalSet(signal.bit())
    }

    /// Whether `signal` is in the set.
    pub fn contains(self, signal: Signal) -> bool {
        self.0 & signal.bit() != 0
    }

    /// The signals in both sets.
    pub fn intersect(self, other: SignalSet) -> SignalSet {
        SignalSet(self.0 & other.0)
    }

    /// The signals in either set.
    pub fn union(self, other: SignalSet) -> SignalSet {
        SignalSet(self.0 | other.0)
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The signals in the set, in [`Signal::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Signal> {
        Signal::ALL.into_iter().filter(move |s| self.contains(*s))
    }
}

impl FromIterator<Signal> for SignalSet {
    fn from_iter<I: IntoIterator<Item = Signal>>(iter: I) -> Self {
        iter.into_iter()
            .fold(SignalSet::NONE, |set, s| set.union(SignalSet::only(s)))
    }
}

impl fmt::Display for SignalSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(Signal::as_str).collect();
        write!(f, "[{}]", names.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guarantees: names parse back to the signal they came from.
    #[test]
    fn names_round_trip() {
        for s in Signal::ALL {
            assert_eq!(s.as_str().parse::<Signal>(), Ok(s));
        }
        assert!("log".parse::<Signal>().is_err());
    }

    /// Guarantees: each signal's time column is a timestamp column of its
    /// schema.
    #[test]
    fn time_columns_are_in_the_schemas() {
        for s in Signal::ALL {
            let field = s.schema().field_with_name(s.time_column()).cloned();
            assert!(
                field.is_ok_and(|f| matches!(
                    f.data_type(),
                    arrow::datatypes::DataType::Timestamp(..)
                )),
                "{s}"
            );
        }
    }

    /// Guarantees: set operations behave like sets.
    #[test]
    fn sets() {
        let a: SignalSet = [Signal::Logs, Signal::Spans].into_iter().collect();
        let b = SignalSet::only(Signal::Spans);
        assert!(a.contains(Signal::Logs) && !a.contains(Signal::Metrics));
        assert_eq!(a.intersect(b), b);
        assert_eq!(
            a.union(SignalSet::only(Signal::Metrics)),
            SignalSet::TELEMETRY
        );
        assert_eq!(
            SignalSet::TELEMETRY.union(SignalSet::only(Signal::Alerts)),
            SignalSet::ALL
        );
        assert_eq!(
            Signal::ALL.into_iter().collect::<SignalSet>(),
            SignalSet::ALL
        );
        assert_eq!(a.iter().count(), 2);
        assert_eq!(a.to_string(), "[logs, spans]");
    }
}
