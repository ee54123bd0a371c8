//! Weir's Kafka components, on librdkafka.
//!
//! * [`source`]: `type = "kafka"` under `[sources]`: a consumer group that
//!   reads OTLP (protobuf or JSON, as the OpenTelemetry Collector's Kafka
//!   exporter writes it) and plain log lines from topics, at least once: a
//!   message's offset is stored only once every batch made from it is
//!   acknowledged by every sink.
//! * [`sink`]: `type = "kafka"` under `[sinks]`: writes telemetry as OTLP
//!   and alerts as JSON events or Alertmanager webhook messages; a batch is
//!   acknowledged upstream only once the broker acknowledged every message
//!   made from it.
//!
//! Both take the same client settings ([`client`]) and report the
//! `weir_kafka_*` metrics ([`metrics`]). The crate is apart from
//! `weir-sources` and `weir-sinks` because it links librdkafka, a C library
//! built from source: the other components build without it.

pub mod client;
pub mod metrics;
pub mod sink;
pub mod source;

pub use sink::KafkaSinkConfig;
pub use source::KafkaSourceConfig;
