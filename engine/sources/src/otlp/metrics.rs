//! The metrics of the OTLP source (`weir_otlp_*`), labelled by component;
//! what it sends on is counted by the standard `weir_component_*` metrics
//! of its output.

use std::sync::Arc;

use metrics::{Counter, Gauge, Unit};
use weir_core::Signal;
use weir_core::metrics::{CounterDef, GaugeDef};

const REQUESTS: CounterDef<3> = CounterDef {
    name: "weir_otlp_requests_total",
    help: "OTLP requests answered, by protocol (grpc, http) and outcome (accepted, partially_accepted, invalid, too_large, unavailable, too_many_requests, in_flight_full, read_timeout, unsupported_media_type).",
    unit: Some(Unit::Count),
    labels: ["component", "protocol", "outcome"],
};

const RECEIVED_BYTES: CounterDef<2> = CounterDef {
    name: "weir_otlp_received_bytes_total",
    help: "Bytes (uncompressed) of the OTLP requests converted to rows, by signal.",
    unit: Some(Unit::Bytes),
    labels: ["component", "signal"],
};

const REJECTED_RECORDS: CounterDef<2> = CounterDef {
    name: "weir_otlp_rejected_records_total",
    help: "Records refused one by one (OTLP partial_success), by signal.",
    unit: Some(Unit::Count),
    labels: ["component", "signal"],
};

const DISCARDED_RECORDS: CounterDef<2> = CounterDef {
    name: "weir_otlp_discarded_records_total",
    help: "Records accepted and discarded because no component reads their signal, by signal.",
    unit: Some(Unit::Count),
    labels: ["component", "signal"],
};

const CONNECTIONS: GaugeDef<2> = GaugeDef {
    name: "weir_otlp_connections",
    help: "OTLP connections open, by protocol (grpc, http); each listener holds at most max_connections.",
    unit: Some(Unit::Count),
    labels: ["component", "protocol"],
};

const CONNECTION_LIMIT_REACHED: CounterDef<2> = CounterDef {
    name: "weir_otlp_connection_limit_reached_total",
    help: "Times a listener held max_connections open connections and stopped accepting until one closed, by protocol.",
    unit: Some(Unit::Count),
    labels: ["component", "protocol"],
};

const STALLED_CONNECTIONS: CounterDef<2> = CounterDef {
    name: "weir_otlp_stalled_connections_total",
    help: "Connections closed because the client left its first bytes, an HTTP/2 frame or a header block unfinished for read_timeout, by protocol.",
    unit: Some(Unit::Count),
    labels: ["component", "protocol"],
};

/// Gives the recorder the help text of the OTLP source's metrics.
pub fn describe() {
    REQUESTS.describe();
    RECEIVED_BYTES.describe();
    REJECTED_RECORDS.describe();
    DISCARDED_RECORDS.describe();
    CONNECTIONS.describe();
    CONNECTION_LIMIT_REACHED.describe();
    STALLED_CONNECTIONS.describe();
}

/// `weir_otlp_requests_total{component, protocol, outcome}`.
pub(crate) fn requests(
    component: &Arc<str>,
    protocol: &'static str,
    outcome: &'static str,
) -> Counter {
    REQUESTS.with([component.clone().into(), protocol.into(), outcome.into()])
}

/// `weir_otlp_received_bytes_total{component, signal}`.
pub(crate) fn received_bytes(component: &Arc<str>, signal: Signal) -> Counter {
    RECEIVED_BYTES.with([component.clone().into(), signal.as_str().into()])
}

/// `weir_otlp_rejected_records_total{component, signal}`.
pub(crate) fn rejected_records(component: &Arc<str>, signal: Signal) -> Counter {
    REJECTED_RECORDS.with([component.clone().into(), signal.as_str().into()])
}

/// `weir_otlp_discarded_records_total{component, signal}`.
pub(crate) fn discarded_records(component: &Arc<str>, signal: Signal) -> Counter {
    DISCARDED_RECORDS.with([component.clone().into(), signal.as_str().into()])
}

/// `weir_otlp_connections{component, protocol}`.
pub(crate) fn connections(component: &Arc<str>, protocol: &'static str) -> Gauge {
    CONNECTIONS.with([component.clone().into(), protocol.into()])
}

/// `weir_otlp_connection_limit_reached_total{component, protocol}`.
pub(crate) fn connection_limit_reached(component: &Arc<str>, protocol: &'static str) -> Counter {
    CONNECTION_LIMIT_REACHED.with([component.clone().into(), protocol.into()])
}

/// `weir_otlp_stalled_connections_total{component, protocol}`.
pub(crate) fn stalled_connections(component: &Arc<str>, protocol: &'static str) -> Counter {
    STALLED_CONNECTIONS.with([component.clone().into(), protocol.into()])
}
