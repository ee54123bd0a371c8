//! The metrics of the alert sinks (`alertmanager`, `webhook`), labelled by
//! component and receiver URL (its scheme, host and port only: a path or
//! query may hold a token): alerts sent, dropped, retried, and waiting.

use std::sync::Arc;

use metrics::{Counter, Gauge, Unit};
use weir_core::metrics::{CounterDef, GaugeDef};

const SENT: CounterDef<2> = CounterDef {
    name: "weir_alerts_sent_total",
    help: "Alerts a receiver accepted.",
    unit: Some(Unit::Count),
    labels: ["component", "url"],
};

const DROPPED: CounterDef<3> = CounterDef {
    name: "weir_alerts_dropped_total",
    help: "Alerts dropped, by reason (queue_full, refused, retries_exhausted, shutdown).",
    unit: Some(Unit::Count),
    labels: ["component", "url", "reason"],
};

const SEND_RETRIES: CounterDef<2> = CounterDef {
    name: "weir_alert_send_retries_total",
    help: "Requests to a receiver tried again after a failure.",
    unit: Some(Unit::Count),
    labels: ["component", "url"],
};

const QUEUE_LENGTH: GaugeDef<2> = GaugeDef {
    name: "weir_alert_queue_length",
    help: "Alerts waiting in the queue of a receiver.",
    unit: Some(Unit::Count),
    labels: ["component", "url"],
};

/// Gives the recorder the help text of the alert sinks' metrics.
pub fn describe() {
    SENT.describe();
    DROPPED.describe();
    SEND_RETRIES.describe();
    QUEUE_LENGTH.describe();
}

/// `weir_alerts_sent_total{component, url}`.
pub(crate) fn sent(component: &Arc<str>, url: &str) -> Counter {
    SENT.with([component.clone().into(), url.to_string().into()])
}

/// `weir_alerts_dropped_total{component, url, reason}`.
pub(crate) fn dropped(component: &Arc<str>, url: &str, reason: &'static str) -> Counter {
    DROPPED.with([
        component.clone().into(),
        url.to_string().into(),
        reason.into(),
    ])
}

/// `weir_alert_send_retries_total{component, url}`.
pub(crate) fn send_retries(component: &Arc<str>, url: &str) -> Counter {
    SEND_RETRIES.with([component.clone().into(), url.to_string().into()])
}

/// `weir_alert_queue_length{component, url}`.
pub(crate) fn queue_length(component: &Arc<str>, url: &str) -> Gauge {
    QUEUE_LENGTH.with([component.clone().into(), url.to_string().into()])
}
