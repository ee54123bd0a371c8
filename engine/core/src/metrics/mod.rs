//! Weir's own metrics — what `/metrics` tells about Weir itself, not the
//! `metrics` signal it carries — declared once.
//!
//! Each crate declares the metrics it records in one module, its metric
//! set: [`component`] here (the standard metrics of every component),
//! `weir_sources::otlp::metrics`, `weir_sinks::alerts::metrics`,
//! `weir_store::obs`, `weir_query::metrics`, `weir_rules::metrics`,
//! `weir_wasm::metrics` and `weir_cli::metrics`. A set holds one
//! [`CounterDef`], [`GaugeDef`] or [`HistogramDef`] per metric — its name,
//! one line of help, unit and label keys — and the typed functions that
//! record it, so that a metric's name is spelled in one place and no label
//! is forgotten. Each set's `describe()` gives `/metrics` its `# HELP`
//! lines; `weir-cli` calls them all when it installs the recorder.
//!
//! ```
//! use metrics::Unit;
//! use weir_core::metrics::CounterDef;
//!
//! const REQUESTS: CounterDef<1> = CounterDef {
//!     name: "example_requests_total",
//!     help: "Requests served, by outcome.",
//!     unit: Some(Unit::Count),
//!     labels: ["outcome"],
//! };
//! REQUESTS.describe();
//! REQUESTS.with(["ok".into()]).increment(1);
//! ```
//!
//! Recording goes through the `metrics` facade exactly as its `counter!`,
//! `gauge!` and `histogram!` macros do (the current recorder, a local one
//! in tests included), and costs what they cost: one vector of labels per
//! call when the metric has labels.

pub mod component;

use ::metrics::{Counter, Gauge, Histogram, Label, SharedString, Unit};

/// A counter: its name, help text, unit and `N` label keys.
#[derive(Debug, Clone, Copy)]
pub struct CounterDef<const N: usize> {
    /// The name `/metrics` shows.
    pub name: &'static str,
    /// One line on what it counts: the `# HELP` text.
    pub help: &'static str,
    /// What it counts, if a unit says it.
    pub unit: Option<Unit>,
    /// Its label keys, in the order the values are given.
    pub labels: [&'static str; N],
}

impl<const N: usize> CounterDef<N> {
    /// The counter of these label values (in the order of `labels`).
    pub fn with(&self, values: [SharedString; N]) -> Counter {
        ::metrics::counter!(self.name, labels(&self.labels, values))
    }

    /// Gives the current recorder the help text and unit.
    pub fn describe(&self) {
        ::metrics::with_recorder(|r| {
            r.describe_counter(self.name.into(), self.unit, self.help.into());
        });
    }
}

/// A gauge: its name, help text, unit and `N` label keys.
#[derive(Debug, Clone, Copy)]
pub struct GaugeDef<const N: usize> {
    /// The name `/metrics` shows.
    pub name: &'static str,
    /// One line on what it measures: the `# HELP` text.
    pub help: &'static str,
    /// What it measures, if a unit says it.
    pub unit: Option<Unit>,
    /// Its label keys, in the order the values are given.
    pub labels: [&'static str; N],
}

impl<const N: usize> GaugeDef<N> {
    /// The gauge of these label values (in the order of `labels`).
    pub fn with(&self, values: [SharedString; N]) -> Gauge {
        ::metrics::gauge!(self.name, labels(&self.labels, values))
    }

    /// Gives the current recorder the help text and unit.
    pub fn describe(&self) {
        ::metrics::with_recorder(|r| {
            r.describe_gauge(self.name.into(), self.unit, self.help.into());
        });
    }
}

/// A histogram: its name, help text, unit and `N` label keys.
#[derive(Debug, Clone, Copy)]
pub struct HistogramDef<const N: usize> {
    /// The name `/metrics` shows.
    pub name: &'static str,
    /// One line on what it measures: the `# HELP` text.
    pub help: &'static str,
    /// What it measures, if a unit says it.
    pub unit: Option<Unit>,
    /// Its label keys, in the order the values are given.
    pub labels: [&'static str; N],
}

impl<const N: usize> HistogramDef<N> {
    /// The histogram of these label values (in the order of `labels`).
    pub fn with(&self, values: [SharedString; N]) -> Histogram {
        ::metrics::histogram!(self.name, labels(&self.labels, values))
    }

    /// Gives the current recorder the help text and unit.
    pub fn describe(&self) {
        ::metrics::with_recorder(|r| {
            r.describe_histogram(self.name.into(), self.unit, self.help.into());
        });
    }
}

/// The labels of `keys` with `values`; no allocation when there are none.
fn labels<const N: usize>(keys: &[&'static str; N], values: [SharedString; N]) -> Vec<Label> {
    keys.iter()
        .zip(values)
        .map(|(key, value)| Label::new(*key, value))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use ::metrics::{Key, KeyName, Metadata, Recorder};

    use super::*;

    const DEF: CounterDef<2> = CounterDef {
        name: "test_things_total",
        help: "Things, by colour and size.",
        unit: Some(Unit::Count),
        labels: ["colour", "size"],
    };

    /// What reached the recorder: descriptions and registered keys.
    #[derive(Default)]
    struct Seen(Arc<Mutex<Vec<String>>>);

    impl Seen {
        fn note(&self, line: String) {
            self.0.lock().expect("lock").push(line);
        }
    }

    impl Recorder for Seen {
        fn describe_counter(&self, name: KeyName, unit: Option<Unit>, help: SharedString) {
            self.note(format!("describe {} {unit:?} {help}", name.as_str()));
        }
        fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
            let labels: Vec<String> = key
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            self.note(format!("counter {}{{{}}}", key.name(), labels.join(",")));
            Counter::noop()
        }
        fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
            Gauge::noop()
        }
        fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
            Histogram::noop()
        }
    }

    /// Guarantees: a declared counter registers under its name with its
    /// label keys in declaration order, and its help text and unit reach the
    /// recorder.
    #[test]
    fn a_declared_counter_records_its_name_and_labels() {
        let seen = Seen::default();
        let lines = seen.0.clone();
        ::metrics::with_local_recorder(&seen, || {
            DEF.describe();
            DEF.with(["red".into(), "large".into()]).increment(2);
        });
        assert_eq!(
            *lines.lock().expect("lock"),
            [
                "describe test_things_total Some(Count) Things, by colour and size.",
                "counter test_things_total{colour=red,size=large}",
            ]
        );
    }
}
