//! The external sinks' metrics (`weir_export_*`), labelled by component.
//! What a sink receives is counted by the standard `weir_component_*`
//! metrics; these say what became of it.

use metrics::{Counter, Gauge, SharedString, Unit};
use weir_core::Signal;
use weir_core::metrics::{CounterDef, GaugeDef};

const SENT: CounterDef<2> = CounterDef {
    name: "weir_export_sent_records_total",
    help: "Records an external sink's backend took, by signal (records it refused while taking the rest are in weir_export_dropped_records_total).",
    unit: Some(Unit::Count),
    labels: ["component", "signal"],
};

const REQUESTS: CounterDef<2> = CounterDef {
    name: "weir_export_requests_total",
    help: "Exports an external sink attempted, by outcome (sent, retried, refused).",
    unit: Some(Unit::Count),
    labels: ["component", "outcome"],
};

const DROPPED: CounterDef<2> = CounterDef {
    name: "weir_export_dropped_records_total",
    help: "Records an external sink dropped, by reason (refused: the backend refused them for good; partial: refused while the rest was taken; expired: retried longer than retry.max_elapsed without a queue, failed back to the source; unreadable: acknowledged in a disk queue whose log was then damaged on disk).",
    unit: Some(Unit::Count),
    labels: ["component", "reason"],
};

const QUEUE_BYTES: GaugeDef<1> = GaugeDef {
    name: "weir_export_queue_bytes",
    help: "Bytes an external sink's queue holds (on disk with a disk queue, rows in memory without).",
    unit: Some(Unit::Bytes),
    labels: ["component"],
};

const QUEUE_RECORDS: GaugeDef<1> = GaugeDef {
    name: "weir_export_queue_records",
    help: "Records waiting in an external sink's queue, not yet being sent.",
    unit: Some(Unit::Count),
    labels: ["component"],
};

const QUEUE_OLDEST: GaugeDef<1> = GaugeDef {
    name: "weir_export_queue_oldest_age_seconds",
    help: "How long the oldest batch waiting in an external sink's queue has waited.",
    unit: Some(Unit::Seconds),
    labels: ["component"],
};

/// Gives the recorder the help text of the export metrics.
pub fn describe() {
    SENT.describe();
    REQUESTS.describe();
    DROPPED.describe();
    QUEUE_BYTES.describe();
    QUEUE_RECORDS.describe();
    QUEUE_OLDEST.describe();
}

fn s(v: &str) -> SharedString {
    v.to_string().into()
}

/// `weir_export_sent_records_total{component, signal}`.
pub(crate) fn sent(component: &str, signal: Signal) -> Counter {
    SENT.with([s(component), signal.as_str().into()])
}

/// `weir_export_requests_total{component, outcome}`.
pub(crate) fn requests(component: &str, outcome: &'static str) -> Counter {
    REQUESTS.with([s(component), outcome.into()])
}

/// `weir_export_dropped_records_total{component, reason}`.
pub(crate) fn dropped(component: &str, reason: &'static str) -> Counter {
    DROPPED.with([s(component), reason.into()])
}

/// The queue gauges of one sink.
#[derive(Clone)]
pub(crate) struct QueueGauges {
    bytes: Gauge,
    records: Gauge,
    oldest: Gauge,
    unreadable: Counter,
}

impl QueueGauges {
    /// The gauges of `component`.
    pub(crate) fn new(component: &str) -> Self {
        QueueGauges {
            bytes: QUEUE_BYTES.with([s(component)]),
            records: QUEUE_RECORDS.with([s(component)]),
            oldest: QUEUE_OLDEST.with([s(component)]),
            unreadable: dropped(component, "unreadable"),
        }
    }

    /// Counts `records` the queue could not read back from its log.
    pub(crate) fn lost(&self, records: u64) {
        self.unreadable.increment(records);
    }

    pub(crate) fn set(&self, bytes: u64, records: usize, oldest: std::time::Duration) {
        self.bytes.set(bytes as f64);
        self.records.set(records as f64);
        self.oldest.set(oldest.as_secs_f64());
    }
}
