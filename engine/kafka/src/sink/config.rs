//! `type = "kafka"` (sink): what a user writes, and how it is built.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Deserializer};
use weir_config::{BuildContext, ComponentConfig, Problem, Sensitive, values};
use weir_core::{Built, ComponentError, Signal, SignalSet};

use super::KafkaSink;

/// `type = "kafka"`: writes telemetry to Kafka as OTLP (what the
/// OpenTelemetry Collector's Kafka receiver reads) and the alert events of
/// `rules` processors as JSON.
///
/// A batch is acknowledged upstream only once the broker has acknowledged
/// every message made from it (with `acks = "all"`, once every in-sync
/// replica has it); a failed delivery fails the batch, so the sender
/// retries. A batch whose encoding exceeds `max_message_bytes` is split
/// over several messages; a single record larger than that is refused and
/// counted, never retried forever.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct KafkaSinkConfig {
    /// The brokers to bootstrap from, `HOST:PORT` separated by commas.
    /// Required.
    pub brokers: String,
    /// How telemetry is encoded: `"otlp_proto"` (the default; an OTLP
    /// export request in protobuf per message) or `"otlp_json"`.
    #[serde(default)]
    pub encoding: TelemetryEncoding,
    /// How alert events are encoded: `"alert_event"` (the default; one JSON
    /// object per alert transition and notification, keyed by the alert's
    /// fingerprint, so a compacted topic keeps each alert's latest state)
    /// or `"alertmanager_webhook"` (Alertmanager's webhook message, version
    /// 4, one per group of notifications, keyed by its group key).
    #[serde(default)]
    pub alerts_encoding: AlertsEncoding,
    /// The topic of each signal.
    #[serde(default)]
    pub topics: SinkTopics,
    /// Spans: one message per trace, keyed by the trace id (hex), so that a
    /// trace's spans land in one partition. Default `false`: one message per
    /// batch, no key.
    #[serde(default)]
    pub partition_traces_by_id: bool,
    /// Logs and metrics: one message per resource, keyed by a hash of its
    /// attributes, so that a resource's records land in one partition.
    /// Default `false`.
    #[serde(default)]
    pub partition_by_resource: bool,
    /// Compression of message batches: `"none"` (the default), `"gzip"`,
    /// `"snappy"`, `"lz4"` or `"zstd"`.
    #[serde(default)]
    pub compression: Compression,
    /// How many replicas must have a message before the broker
    /// acknowledges it: `"all"` (the default), `"1"` or `"0"` (no
    /// acknowledgement: data can be lost).
    #[serde(default)]
    pub acks: Acks,
    /// The largest message value written, in bytes: a size such as `"1MB"`.
    /// Default `"1MB"` (Kafka's own default `message.max.bytes`); larger
    /// batches are split.
    #[serde(
        default = "default_max_message_bytes",
        deserialize_with = "values::byte_size"
    )]
    pub max_message_bytes: u64,
    /// How long the broker may take to acknowledge a message, retries
    /// included, before its batch fails: a duration above zero. Default
    /// `"30s"`.
    #[serde(
        default = "default_timeout",
        deserialize_with = "values::positive_duration"
    )]
    pub timeout: Duration,
    /// `alertmanager_webhook`: the labels notifications are grouped by.
    /// Default `["alertname"]`.
    #[serde(default = "default_group_by")]
    pub group_by: Vec<String>,
    /// `alertmanager_webhook`: the `receiver` field. Default: the sink's
    /// name.
    #[serde(default)]
    pub receiver: Option<String>,
    /// The most batches waiting for the broker at once (1 to 1024).
    /// Default `32`; beyond it the sink stops taking batches, which holds
    /// the pipeline back.
    #[serde(default = "default_max_in_flight", deserialize_with = "in_flight")]
    pub max_in_flight: usize,
    /// librdkafka settings passed through as they are, as strings: TLS,
    /// SASL, `linger.ms`, `batch.size` (see librdkafka's CONFIGURATION.md).
    /// A value may be read when the pipeline starts from an environment
    /// variable or a file, such as
    /// `"sasl.password" = { file = "/run/secrets/kafka-password" }`.
    #[serde(default)]
    pub librdkafka: BTreeMap<String, Sensitive>,
}

/// The topic each signal is written to.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct SinkTopics {
    /// Spans. Default `"otlp_spans"`, the collector's.
    #[serde(default = "spans_topic")]
    pub spans: String,
    /// Metric points. Default `"otlp_metrics"`.
    #[serde(default = "metrics_topic")]
    pub metrics: String,
    /// Logs. Default `"otlp_logs"`.
    #[serde(default = "logs_topic")]
    pub logs: String,
    /// Alert events. Default `"weir_alerts"`.
    #[serde(default = "alerts_topic")]
    pub alerts: String,
}

impl SinkTopics {
    /// The topic of `signal`.
    pub fn of(&self, signal: Signal) -> &str {
        match signal {
            Signal::Spans => &self.spans,
            Signal::Metrics => &self.metrics,
            Signal::Logs => &self.logs,
            Signal::Alerts => &self.alerts,
        }
    }
}

impl Default for SinkTopics {
    fn default() -> Self {
        SinkTopics {
            spans: spans_topic(),
            metrics: metrics_topic(),
            logs: logs_topic(),
            alerts: alerts_topic(),
        }
    }
}

fn spans_topic() -> String {
    "otlp_spans".into()
}
fn metrics_topic() -> String {
    "otlp_metrics".into()
}
fn logs_topic() -> String {
    "otlp_logs".into()
}
fn alerts_topic() -> String {
    "weir_alerts".into()
}

/// How telemetry is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TelemetryEncoding {
    /// OTLP protobuf export requests.
    #[default]
    OtlpProto,
    /// OTLP/JSON export requests.
    OtlpJson,
}

/// How alert events are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertsEncoding {
    /// One JSON object per event, keyed by fingerprint.
    #[default]
    AlertEvent,
    /// Alertmanager's webhook message, version 4, per group.
    AlertmanagerWebhook,
}

/// Compression of message batches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    /// None.
    #[default]
    None,
    /// gzip.
    Gzip,
    /// Snappy.
    Snappy,
    /// LZ4.
    Lz4,
    /// Zstandard.
    Zstd,
}

impl Compression {
    /// librdkafka's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

/// The broker's acknowledgement asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum Acks {
    /// Every in-sync replica.
    #[default]
    #[serde(rename = "all")]
    All,
    /// The leader only.
    #[serde(rename = "1")]
    Leader,
    /// None: a message may be lost without anyone knowing.
    #[serde(rename = "0")]
    None,
}

impl Acks {
    /// librdkafka's value.
    pub fn as_str(self) -> &'static str {
        match self {
            Acks::All => "all",
            Acks::Leader => "1",
            Acks::None => "0",
        }
    }
}

fn default_max_message_bytes() -> u64 {
    1_000_000
}

fn default_timeout() -> Duration {
    Duration::from_secs(30)
}

fn default_group_by() -> Vec<String> {
    vec!["alertname".to_string()]
}

fn default_max_in_flight() -> usize {
    32
}

fn in_flight<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    values::count(d, 1, 1024)
}

#[async_trait]
impl ComponentConfig for KafkaSinkConfig {
    fn accepts(&self) -> SignalSet {
        SignalSet::ALL
    }

    fn outputs(&self, _input: SignalSet) -> SignalSet {
        SignalSet::NONE
    }

    async fn build(&self, cx: &mut BuildContext<'_>) -> Result<Built, ComponentError> {
        let sink = KafkaSink::new(cx.name(), self.clone(), cx.external_url())?;
        Ok(Built::Sink(Box::new(sink)))
    }

    fn problems(&self) -> Vec<Problem> {
        let mut problems = crate::client::problems(&self.brokers, &self.librdkafka);
        for (key, topic) in [
            ("topics.spans", &self.topics.spans),
            ("topics.metrics", &self.topics.metrics),
            ("topics.logs", &self.topics.logs),
            ("topics.alerts", &self.topics.alerts),
        ] {
            if topic.trim().is_empty() {
                problems.push(Problem {
                    key: key.into(),
                    message: "the topic name is empty".into(),
                    help: "name a topic, or leave the key out for its default".into(),
                });
            }
        }
        if self.max_message_bytes < 1024 {
            problems.push(Problem {
                key: "max_message_bytes".into(),
                message: format!(
                    "{} bytes is too small for a message",
                    self.max_message_bytes
                ),
                help: "use the broker's message.max.bytes, Kafka's default being \"1MB\"".into(),
            });
        }
        if let Some(i) = self.group_by.iter().position(|l| l.trim().is_empty()) {
            problems.push(Problem {
                key: "group_by".into(),
                message: format!("label {} of `group_by` is empty", i + 1),
                help: "name labels, such as group_by = [\"alertname\", \"service\"]".into(),
            });
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guarantees: with only `brokers`, the sink writes OTLP protobuf to
    /// the collector's topics with `acks=all`, and alerts as events.
    #[test]
    fn defaults_are_the_collectors() {
        let c: KafkaSinkConfig = toml::from_str("brokers = \"k:9092\"").expect("parses");
        assert_eq!(c.topics.of(Signal::Spans), "otlp_spans");
        assert_eq!(c.topics.of(Signal::Alerts), "weir_alerts");
        assert_eq!(
            (c.encoding, c.acks, c.alerts_encoding),
            (
                TelemetryEncoding::OtlpProto,
                Acks::All,
                AlertsEncoding::AlertEvent
            )
        );
        assert_eq!(c.max_message_bytes, 1_000_000);
        assert!(c.problems().is_empty());
    }

    /// Guarantees: `acks` takes Kafka's spellings, and a wrong encoding is
    /// refused when the file is read.
    #[test]
    fn spellings() {
        let c: KafkaSinkConfig =
            toml::from_str("brokers = \"k:1\"\nacks = \"1\"\ncompression = \"zstd\"")
                .expect("parses");
        assert_eq!((c.acks, c.compression.as_str()), (Acks::Leader, "zstd"));
        assert!(
            toml::from_str::<KafkaSinkConfig>("brokers = \"k:1\"\nencoding = \"avro\"").is_err()
        );
    }
}
