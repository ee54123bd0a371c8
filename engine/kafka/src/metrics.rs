//! The Kafka components' metrics (`weir_kafka_*`), labelled by component.
//! What a source sends on and a sink receives is counted by the standard
//! `weir_component_*` metrics.

use metrics::{Counter, Gauge, SharedString, Unit};
use weir_core::metrics::{CounterDef, GaugeDef};

const MESSAGES: CounterDef<2> = CounterDef {
    name: "weir_kafka_messages_total",
    help: "Kafka messages read by a source, by topic.",
    unit: Some(Unit::Count),
    labels: ["component", "topic"],
};

const READ_BYTES: CounterDef<2> = CounterDef {
    name: "weir_kafka_read_bytes_total",
    help: "Bytes of Kafka message values read by a source, by topic.",
    unit: Some(Unit::Bytes),
    labels: ["component", "topic"],
};

const DECODE_ERRORS: CounterDef<2> = CounterDef {
    name: "weir_kafka_decode_errors_total",
    help: "Kafka messages a source could not decode (skipped, their offsets committed), by topic.",
    unit: Some(Unit::Count),
    labels: ["component", "topic"],
};

const REJECTED: CounterDef<2> = CounterDef {
    name: "weir_kafka_rejected_records_total",
    help: "Records a source skipped because they cannot be represented (a bad id, a time past 2262) or a sink refused them for good, by signal.",
    unit: Some(Unit::Count),
    labels: ["component", "signal"],
};

const DEAD_LETTERS: CounterDef<2> = CounterDef {
    name: "weir_kafka_dead_letters_total",
    help: "Undecodable messages copied to the dead-letter topic, by outcome (written, failed).",
    unit: Some(Unit::Count),
    labels: ["component", "outcome"],
};

const COMMITS: CounterDef<2> = CounterDef {
    name: "weir_kafka_commits_total",
    help: "Offset commits of a source's consumer group, by outcome (ok, failed).",
    unit: Some(Unit::Count),
    labels: ["component", "outcome"],
};

const REBALANCES: CounterDef<2> = CounterDef {
    name: "weir_kafka_rebalances_total",
    help: "Consumer group rebalances seen by a source, by kind (assign, revoke, error).",
    unit: Some(Unit::Count),
    labels: ["component", "kind"],
};

const REDELIVERIES: CounterDef<1> = CounterDef {
    name: "weir_kafka_redeliveries_total",
    help: "Batches a source sent into the pipeline again because a sink could not take them.",
    unit: Some(Unit::Count),
    labels: ["component"],
};

const PAUSES: CounterDef<1> = CounterDef {
    name: "weir_kafka_pauses_total",
    help: "Times a source paused its partitions because max_in_flight was reached.",
    unit: Some(Unit::Count),
    labels: ["component"],
};

const IN_FLIGHT: GaugeDef<1> = GaugeDef {
    name: "weir_kafka_in_flight_bytes",
    help: "Bytes of messages a source has read and not yet seen acknowledged.",
    unit: Some(Unit::Bytes),
    labels: ["component"],
};

const LAG: GaugeDef<3> = GaugeDef {
    name: "weir_kafka_consumer_lag",
    help: "Messages between a partition's end and the source's position, as librdkafka last reported it.",
    unit: Some(Unit::Count),
    labels: ["component", "topic", "partition"],
};

const PRODUCED: CounterDef<3> = CounterDef {
    name: "weir_kafka_produced_messages_total",
    help: "Messages a sink wrote, by topic and outcome (delivered, failed, too_large).",
    unit: Some(Unit::Count),
    labels: ["component", "topic", "outcome"],
};

const PRODUCED_BYTES: CounterDef<2> = CounterDef {
    name: "weir_kafka_produced_bytes_total",
    help: "Bytes of message values a sink had acknowledged by the broker, by topic.",
    unit: Some(Unit::Bytes),
    labels: ["component", "topic"],
};

/// Gives the recorder the help text of the Kafka metrics.
pub fn describe() {
    for c in [
        &MESSAGES,
        &READ_BYTES,
        &DECODE_ERRORS,
        &REJECTED,
        &DEAD_LETTERS,
        &COMMITS,
        &REBALANCES,
        &PRODUCED_BYTES,
    ] {
        c.describe();
    }
    REDELIVERIES.describe();
    PAUSES.describe();
    PRODUCED.describe();
    IN_FLIGHT.describe();
    LAG.describe();
}

fn s(v: &str) -> SharedString {
    v.to_string().into()
}

/// `weir_kafka_messages_total{component, topic}`.
pub(crate) fn messages(component: &str, topic: &str) -> Counter {
    MESSAGES.with([s(component), s(topic)])
}

/// `weir_kafka_read_bytes_total{component, topic}`.
pub(crate) fn read_bytes(component: &str, topic: &str) -> Counter {
    READ_BYTES.with([s(component), s(topic)])
}

/// `weir_kafka_decode_errors_total{component, topic}`.
pub(crate) fn decode_errors(component: &str, topic: &str) -> Counter {
    DECODE_ERRORS.with([s(component), s(topic)])
}

/// `weir_kafka_rejected_records_total{component, signal}`.
pub(crate) fn rejected_records(component: &str, signal: weir_core::Signal) -> Counter {
    REJECTED.with([s(component), signal.as_str().into()])
}

/// `weir_kafka_dead_letters_total{component, outcome}`.
pub(crate) fn dead_letters(component: &str, outcome: &'static str) -> Counter {
    DEAD_LETTERS.with([s(component), outcome.into()])
}

/// `weir_kafka_commits_total{component, outcome}`.
pub(crate) fn commits(component: &str, outcome: &'static str) -> Counter {
    COMMITS.with([s(component), outcome.into()])
}

/// `weir_kafka_rebalances_total{component, kind}`.
pub(crate) fn rebalances(component: &str, kind: &'static str) -> Counter {
    REBALANCES.with([s(component), kind.into()])
}

/// `weir_kafka_redeliveries_total{component}`.
pub(crate) fn redeliveries(component: &str) -> Counter {
    REDELIVERIES.with([s(component)])
}

/// `weir_kafka_pauses_total{component}`.
pub(crate) fn pauses(component: &str) -> Counter {
    PAUSES.with([s(component)])
}

/// `weir_kafka_in_flight_bytes{component}`.
pub(crate) fn in_flight(component: &str) -> Gauge {
    IN_FLIGHT.with([s(component)])
}

/// `weir_kafka_consumer_lag{component, topic, partition}`.
pub(crate) fn lag(component: &str, topic: &str, partition: i32) -> Gauge {
    LAG.with([s(component), s(topic), partition.to_string().into()])
}

/// `weir_kafka_produced_messages_total{component, topic, outcome}`.
pub(crate) fn produced(component: &str, topic: &str, outcome: &'static str) -> Counter {
    PRODUCED.with([s(component), s(topic), outcome.into()])
}

/// `weir_kafka_produced_bytes_total{component, topic}`.
pub(crate) fn produced_bytes(component: &str, topic: &str) -> Counter {
    PRODUCED_BYTES.with([s(component), s(topic)])
}
