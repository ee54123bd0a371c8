//! `type = "kafka"` (source): what a user writes, and how it is built.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Deserializer};
use weir_config::{BuildContext, ComponentConfig, Problem, Sensitive, values};
use weir_core::{Built, ComponentError, Signal, SignalSet};

use super::KafkaSource;

/// `type = "kafka"`: a consumer in a Kafka consumer group that reads
/// telemetry from topics: OTLP as the OpenTelemetry Collector's (and
/// Rotel's) Kafka exporters write it, and plain log lines.
///
/// At least once: a message's offset is stored for commit only once every
/// batch made from it has been acknowledged by every sink; a batch a sink
/// could not take is sent again with backoff, never skipped. When more than
/// `max_in_flight` bytes wait for acknowledgement, the consumer pauses its
/// partitions. A message that does not decode is counted, logged (once per
/// partition a minute), optionally copied to `dead_letter_topic`, and its
/// offset committed, so it never stalls its partition.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct KafkaSourceConfig {
    /// The brokers to bootstrap from, `HOST:PORT` separated by commas.
    /// Required.
    pub brokers: String,
    /// The consumer group. Default `"weir"`: Weir instances with the same
    /// group share the partitions.
    #[serde(default = "default_group_id")]
    pub group_id: String,
    /// The topics to read and what each carries. Default: the collector's
    /// topics, `otlp_spans`, `otlp_metrics` and `otlp_logs`, as `otlp_proto`
    /// (Rotel writes spans to `otlp_traces` unless told otherwise: list it).
    #[serde(default = "default_topics")]
    pub topics: Vec<TopicConfig>,
    /// Where a group with no committed offset starts: `"latest"` (the
    /// default: only new messages) or `"earliest"` (all that the topic
    /// holds).
    #[serde(default)]
    pub initial_offset: InitialOffset,
    /// Whether to add `kafka.topic`, `kafka.partition` and `kafka.offset`
    /// attributes (on the resource for OTLP, on the record for log lines).
    /// Default `false`.
    #[serde(default)]
    pub metadata: bool,
    /// Message headers to add as `kafka.header.NAME` attributes (on the
    /// resource for OTLP, on the record for log lines). Default: none (log
    /// lines carry every header anyway).
    #[serde(default)]
    pub headers: Vec<String>,
    /// A topic to copy undecodable messages to (value, key and headers
    /// unchanged, plus `weir.error`, `weir.topic`, `weir.partition` and
    /// `weir.offset` headers). Default: none; they are only counted and
    /// logged.
    #[serde(default)]
    pub dead_letter_topic: Option<String>,
    /// The most message bytes read and not yet acknowledged by every sink:
    /// a size such as `"64MiB"`. Beyond it the consumer pauses its
    /// partitions until acknowledgements come back. Default `"64MiB"`.
    #[serde(
        default = "default_max_in_flight",
        deserialize_with = "values::byte_size"
    )]
    pub max_in_flight: u64,
    /// The most memory decoding one message may take, bounded from its
    /// bytes before it is decoded (an empty attribute is two bytes in a
    /// message and about a hundred once decoded): a size such as
    /// `"128MiB"`. Default `"128MiB"`. A message over it is handled as one
    /// that does not decode: counted, logged, copied to
    /// `dead_letter_topic` if set, and its offset committed. Up to four
    /// messages per core are decoded at once, so decoding takes at most
    /// four times this per core.
    #[serde(
        default = "default_max_decoded_message_size",
        deserialize_with = "values::byte_size"
    )]
    pub max_decoded_message_size: u64,
    /// The most records in one batch sent into the pipeline (1 to 1000000).
    /// Default `8192`. Messages are gathered into batches up to it; a
    /// message of 512 records or more (or of half of this, if fewer) goes
    /// as a batch of its own.
    #[serde(
        default = "default_max_batch_records",
        deserialize_with = "batch_records"
    )]
    pub max_batch_records: usize,
    /// The longest a record waits for its batch to fill: a duration such as
    /// `"100ms"`. Default `"100ms"`; `"0s"` sends each message's records on
    /// their own.
    #[serde(
        default = "default_batch_timeout",
        deserialize_with = "values::duration"
    )]
    pub batch_timeout: Duration,
    /// How often stored offsets are committed to the group: a duration
    /// above zero. Default `"1s"`. They are also committed when partitions
    /// are revoked and on shutdown.
    #[serde(
        default = "default_commit_interval",
        deserialize_with = "values::positive_duration"
    )]
    pub commit_interval: Duration,
    /// librdkafka settings passed through as they are, as strings: TLS,
    /// SASL, fetch sizes, timeouts (see librdkafka's CONFIGURATION.md), for
    /// example `"security.protocol" = "SASL_SSL"`. A value may be read when
    /// the pipeline starts from an environment variable or a file, such as
    /// `"sasl.password" = { env = "KAFKA_PASSWORD" }`. Weir sets
    /// `bootstrap.servers`, `group.id`, `auto.offset.reset` and the
    /// offset-store and commit settings itself.
    #[serde(default)]
    pub librdkafka: BTreeMap<String, Sensitive>,
}

/// One topic (or pattern) and what its messages carry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct TopicConfig {
    /// The topic's name, or a regular expression starting with `^` that
    /// matches topic names (new matching topics are picked up).
    pub topic: String,
    /// The signal its messages carry: `"logs"`, `"spans"` or `"metrics"`.
    pub signal: TopicSignal,
    /// How its messages are encoded. Default `"otlp_proto"`.
    #[serde(default)]
    pub encoding: Encoding,
}

/// The telemetry signal a topic carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TopicSignal {
    /// Log records.
    Logs,
    /// Spans (the collector's "traces").
    #[serde(alias = "traces")]
    Spans,
    /// Metric data points.
    Metrics,
}

impl TopicSignal {
    /// The engine's signal.
    pub fn signal(self) -> Signal {
        match self {
            TopicSignal::Logs => Signal::Logs,
            TopicSignal::Spans => Signal::Spans,
            TopicSignal::Metrics => Signal::Metrics,
        }
    }
}

/// How a topic's messages are encoded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// An OTLP export request in protobuf (`ExportTraceServiceRequest`,
    /// ...), as the collector's Kafka exporter writes by default.
    #[default]
    OtlpProto,
    /// An OTLP export request in OTLP/JSON.
    OtlpJson,
    /// Logs only: the value is the body, as bytes.
    Raw,
    /// Logs only: the value is the body, as UTF-8 text (invalid sequences
    /// replaced).
    Text,
}

/// Where a group with no committed offset starts reading.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InitialOffset {
    /// At the end: only messages produced from now on.
    #[default]
    Latest,
    /// At the beginning: everything the topic still holds.
    Earliest,
}

fn default_group_id() -> String {
    "weir".to_string()
}

fn default_topics() -> Vec<TopicConfig> {
    [
        ("otlp_spans", TopicSignal::Spans),
        ("otlp_metrics", TopicSignal::Metrics),
        ("otlp_logs", TopicSignal::Logs),
    ]
    .into_iter()
    .map(|(topic, signal)| TopicConfig {
        topic: topic.to_string(),
        signal,
        encoding: Encoding::OtlpProto,
    })
    .collect()
}

fn default_max_in_flight() -> u64 {
    64 << 20
}

fn default_max_decoded_message_size() -> u64 {
    128 << 20
}

fn default_max_batch_records() -> usize {
    8192
}

fn batch_records<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    values::count(d, 1, 1_000_000)
}

fn default_batch_timeout() -> Duration {
    Duration::from_millis(100)
}

fn default_commit_interval() -> Duration {
    Duration::from_secs(1)
}

#[async_trait]
impl ComponentConfig for KafkaSourceConfig {
    fn accepts(&self) -> SignalSet {
        SignalSet::NONE
    }

    fn outputs(&self, _input: SignalSet) -> SignalSet {
        self.topics.iter().fold(SignalSet::NONE, |s, t| {
            s.union(SignalSet::only(t.signal.signal()))
        })
    }

    async fn build(&self, cx: &mut BuildContext<'_>) -> Result<Built, ComponentError> {
        let source = KafkaSource::new(cx.name(), self.clone())?;
        Ok(Built::Source(Box::new(source)))
    }

    fn problems(&self) -> Vec<Problem> {
        let mut problems = crate::client::problems(&self.brokers, &self.librdkafka);
        if self.group_id.trim().is_empty() {
            problems.push(Problem {
                key: "group_id".into(),
                message: "the consumer group is empty".into(),
                help: "name a group, such as group_id = \"weir\"".into(),
            });
        }
        if self.topics.is_empty() {
            problems.push(Problem {
                key: "topics".into(),
                message: "no topic to read".into(),
                help: "list topics, such as topics = [{ topic = \"otlp_spans\", \
                       signal = \"spans\" }], or remove `topics` for the collector's defaults"
                    .into(),
            });
        }
        for (i, t) in self.topics.iter().enumerate() {
            if t.topic.trim().is_empty() {
                problems.push(Problem {
                    key: format!("topics[{i}].topic"),
                    message: "the topic name is empty".into(),
                    help: "name a topic, or a pattern starting with `^`".into(),
                });
            } else if t.topic.starts_with('^')
                && let Err(e) = regex::Regex::new(&t.topic)
            {
                problems.push(Problem {
                    key: format!("topics[{i}].topic"),
                    message: format!("`{}` is not a valid regular expression: {e}", t.topic),
                    help: "a topic starting with `^` is a pattern; fix it, or drop the `^` \
                           for a plain name"
                        .into(),
                });
            }
            if matches!(t.encoding, Encoding::Raw | Encoding::Text) && t.signal != TopicSignal::Logs
            {
                problems.push(Problem {
                    key: format!("topics[{i}].encoding"),
                    message: format!(
                        "encoding `{}` makes log records, but this topic is declared to carry {}",
                        if t.encoding == Encoding::Raw {
                            "raw"
                        } else {
                            "text"
                        },
                        t.signal.signal()
                    ),
                    help: "use signal = \"logs\" with raw or text, or encoding = \"otlp_proto\" \
                           / \"otlp_json\" for spans and metrics"
                        .into(),
                });
            }
            if let Some(j) = self.topics[..i].iter().position(|o| o.topic == t.topic) {
                problems.push(Problem {
                    key: format!("topics[{i}].topic"),
                    message: format!("topic `{}` is listed twice (also topics[{j}])", t.topic),
                    help: "a topic carries one signal in one encoding: keep one entry".into(),
                });
            }
        }
        if let Some(dlq) = &self.dead_letter_topic
            && (dlq.trim().is_empty() || self.topics.iter().any(|t| &t.topic == dlq))
        {
            problems.push(Problem {
                key: "dead_letter_topic".into(),
                message: format!("`{dlq}` cannot be the dead-letter topic"),
                help: "name a topic of its own that this source does not read".into(),
            });
        }
        if let Some(i) = self.headers.iter().position(|h| h.trim().is_empty()) {
            problems.push(Problem {
                key: "headers".into(),
                message: format!("header {} of `headers` is empty", i + 1),
                help: "name headers, such as headers = [\"tenant\"]".into(),
            });
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> KafkaSourceConfig {
        toml::from_str(toml_text).expect("parses")
    }

    /// Guarantees: with only `brokers`, the source reads the collector's
    /// three default topics as OTLP protobuf and emits the three signals.
    #[test]
    fn defaults_are_the_collectors() {
        let c = parse("brokers = \"k:9092\"");
        let topics: Vec<_> = c.topics.iter().map(|t| t.topic.as_str()).collect();
        assert_eq!(topics, ["otlp_spans", "otlp_metrics", "otlp_logs"]);
        assert!(c.topics.iter().all(|t| t.encoding == Encoding::OtlpProto));
        assert_eq!(c.outputs(SignalSet::NONE), SignalSet::TELEMETRY);
        assert_eq!(c.initial_offset, InitialOffset::Latest);
        assert!(c.problems().is_empty());
    }

    /// Guarantees: line encodings on a non-log topic, a broken pattern, a
    /// duplicate topic and a dead-letter topic that is read are problems
    /// pointing at their keys.
    #[test]
    fn contradictions_are_problems() {
        let c = parse(
            r#"
            brokers = "k:9092"
            dead_letter_topic = "a"
            topics = [
              { topic = "a", signal = "spans", encoding = "text" },
              { topic = "^b(", signal = "logs" },
              { topic = "a", signal = "logs" },
            ]"#,
        );
        let keys: Vec<_> = c.problems().into_iter().map(|p| p.key).collect();
        assert_eq!(
            keys,
            [
                "topics[0].encoding",
                "topics[1].topic",
                "topics[2].topic",
                "dead_letter_topic"
            ]
        );
    }

    /// Guarantees: an unknown encoding is refused when the file is read.
    #[test]
    fn unknown_encoding_is_refused() {
        let e = toml::from_str::<KafkaSourceConfig>(
            "brokers = \"k:1\"\ntopics = [{ topic = \"a\", signal = \"logs\", encoding = \"avro\" }]",
        )
        .expect_err("avro is not an encoding");
        assert!(e.to_string().contains("otlp_proto"), "{e}");
    }
}
