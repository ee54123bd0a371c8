//! The standard metrics of every component (`weir_component_*`), labelled
//! with the component's name: what it received and sent, its input's fill,
//! backpressure, errors, and whether it runs.
//!
//! [`Output`](crate::Output) and [`Input`](crate::Input) count records,
//! bytes, fill and backpressure; the runtime counts `up` and the errors of
//! processors; a sink counts its own errors through
//! [`ComponentMetrics::errors`].

use std::sync::Arc;

use ::metrics::{Counter, Gauge, SharedString, Unit};

use super::{CounterDef, GaugeDef};
use crate::Signal;

const RECEIVED_RECORDS: CounterDef<2> = CounterDef {
    name: "weir_component_received_records_total",
    help: "Records a component took from its input, by signal.",
    unit: Some(Unit::Count),
    labels: ["component", "signal"],
};

const RECEIVED_BYTES: CounterDef<2> = CounterDef {
    name: "weir_component_received_bytes_total",
    help: "Bytes (Arrow, in memory) a component took from its input, by signal.",
    unit: Some(Unit::Bytes),
    labels: ["component", "signal"],
};

const SENT_RECORDS: CounterDef<2> = CounterDef {
    name: "weir_component_sent_records_total",
    help: "Records a component sent downstream, by signal.",
    unit: Some(Unit::Count),
    labels: ["component", "signal"],
};

const SENT_BYTES: CounterDef<2> = CounterDef {
    name: "weir_component_sent_bytes_total",
    help: "Bytes (Arrow, in memory) a component sent downstream, by signal.",
    unit: Some(Unit::Bytes),
    labels: ["component", "signal"],
};

const BACKPRESSURE_EVENTS: CounterDef<2> = CounterDef {
    name: "weir_component_backpressure_events_total",
    help: "Times a component found the input of a downstream component full and had to wait.",
    unit: Some(Unit::Count),
    labels: ["component", "downstream"],
};

const INPUT_QUEUE_BATCHES: GaugeDef<1> = GaugeDef {
    name: "weir_component_input_queue_batches",
    help: "Batches waiting in a component's input channel.",
    unit: Some(Unit::Count),
    labels: ["component"],
};

const ERRORS: CounterDef<2> = CounterDef {
    name: "weir_component_errors_total",
    help: "Errors of a component, by stage (process, tick, close, send, run, write, decode).",
    unit: Some(Unit::Count),
    labels: ["component", "stage"],
};

const UP: GaugeDef<1> = GaugeDef {
    name: "weir_component_up",
    help: "1 while a component's task runs, 0 once it has ended.",
    unit: None,
    labels: ["component"],
};

/// Gives the recorder the help text of every standard component metric.
pub fn describe() {
    RECEIVED_RECORDS.describe();
    RECEIVED_BYTES.describe();
    SENT_RECORDS.describe();
    SENT_BYTES.describe();
    BACKPRESSURE_EVENTS.describe();
    INPUT_QUEUE_BATCHES.describe();
    ERRORS.describe();
    UP.describe();
}

/// The standard metrics of one component.
///
/// Cheap to make and to clone (the name is shared), and nothing is
/// registered until a metric is first recorded.
#[derive(Debug, Clone)]
pub struct ComponentMetrics {
    component: Arc<str>,
}

impl ComponentMetrics {
    /// The metrics of the component named `component`.
    pub fn new(component: impl Into<Arc<str>>) -> Self {
        ComponentMetrics {
            component: component.into(),
        }
    }

    /// `weir_component_received_records_total{component, signal}`.
    pub fn received_records(&self, signal: Signal) -> Counter {
        RECEIVED_RECORDS.with([self.name(), signal.as_str().into()])
    }

    /// `weir_component_received_bytes_total{component, signal}`.
    pub fn received_bytes(&self, signal: Signal) -> Counter {
        RECEIVED_BYTES.with([self.name(), signal.as_str().into()])
    }

    /// `weir_component_sent_records_total{component, signal}`.
    pub fn sent_records(&self, signal: Signal) -> Counter {
        SENT_RECORDS.with([self.name(), signal.as_str().into()])
    }

    /// `weir_component_sent_bytes_total{component, signal}`.
    pub fn sent_bytes(&self, signal: Signal) -> Counter {
        SENT_BYTES.with([self.name(), signal.as_str().into()])
    }

    /// `weir_component_backpressure_events_total{component, downstream}`.
    pub fn backpressure_events(&self, downstream: &Arc<str>) -> Counter {
        BACKPRESSURE_EVENTS.with([self.name(), downstream.clone().into()])
    }

    /// `weir_component_input_queue_batches{component}`.
    pub fn input_queue_batches(&self) -> Gauge {
        INPUT_QUEUE_BATCHES.with([self.name()])
    }

    /// `weir_component_errors_total{component, stage}`.
    pub fn errors(&self, stage: &'static str) -> Counter {
        ERRORS.with([self.name(), stage.into()])
    }

    /// `weir_component_up{component}`.
    pub fn up(&self) -> Gauge {
        UP.with([self.name()])
    }

    /// The `component` label's value, sharing the name.
    fn name(&self) -> SharedString {
        self.component.clone().into()
    }
}
