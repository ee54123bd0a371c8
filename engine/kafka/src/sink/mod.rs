//! The `kafka` sink: batches -> messages ([`encode`] for telemetry,
//! [`alerts`] for alert events) -> librdkafka's producer; each batch's
//! acknowledgement is released once the broker acknowledged all of its
//! messages, and failed if any of them could not be delivered.

pub mod alerts;
pub mod config;
mod encode;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rdkafka::error::KafkaError;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::{JoinHandle, JoinSet};
use tracing::{info, warn};
use weir_core::metrics::component::ComponentMetrics;
use weir_core::{Ack, ComponentError, Signal, Sink, SinkContext};
use weir_sinks::alerts::payload::WebhookGrouping;

pub use config::{
    Acks, AlertsEncoding, Compression, KafkaSinkConfig, SinkTopics, TelemetryEncoding,
};

use crate::client::LogContext;
use crate::metrics;
use encode::{Cut, Encoded, Outbound};

/// A `kafka` sink, with its producer.
pub struct KafkaSink {
    name: Arc<str>,
    config: KafkaSinkConfig,
    producer: FutureProducer<LogContext>,
    grouping: WebhookGrouping,
}

impl KafkaSink {
    /// Makes the producer of `config` (it connects in the background);
    /// `external_url` is where Weir is reached, for webhook messages.
    pub fn new(
        name: &str,
        config: KafkaSinkConfig,
        external_url: &str,
    ) -> Result<Self, ComponentError> {
        let mut cfg = crate::client::config(name, &config.brokers, &config.librdkafka)?;
        cfg.set("acks", config.acks.as_str())
            .set("compression.type", config.compression.as_str())
            .set(
                "message.timeout.ms",
                config.timeout.as_millis().max(1).to_string(),
            );
        // Room for a message of max_message_bytes and its framing.
        if !config.librdkafka.contains_key("message.max.bytes") {
            let max = config
                .max_message_bytes
                .saturating_add(64 << 10)
                .min(1_000_000_000);
            cfg.set("message.max.bytes", max.to_string());
        }
        if !config.librdkafka.contains_key("queue.buffering.max.kbytes") {
            cfg.set("queue.buffering.max.kbytes", (64 << 10).to_string());
        }
        let producer = cfg
            .create_with_context(LogContext {
                component: name.to_string(),
            })
            .map_err(|e| {
                ComponentError::config(name, format!("cannot make a Kafka producer: {e}"))
            })?;
        let grouping = WebhookGrouping {
            receiver: config.receiver.clone().unwrap_or_else(|| name.to_string()),
            group_by: config.group_by.clone(),
            external_url: external_url.to_string(),
            max_alerts: 0,
        };
        Ok(KafkaSink {
            name: Arc::from(name),
            config,
            producer,
            grouping,
        })
    }

    fn messages(
        &self,
        signal: Signal,
        data: &arrow::record_batch::RecordBatch,
    ) -> Result<Encoded, String> {
        match signal {
            Signal::Alerts => Ok(Encoded {
                messages: alerts::messages(data, self.config.alerts_encoding, &self.grouping)?,
                too_large: 0,
            }),
            _ => encode::telemetry(
                signal,
                data,
                Cut {
                    encoding: self.config.encoding,
                    by_trace: self.config.partition_traces_by_id,
                    by_resource: self.config.partition_by_resource,
                    max_bytes: usize::try_from(self.config.max_message_bytes).unwrap_or(usize::MAX),
                },
            )
            .map_err(|e| e.to_string()),
        }
    }
}

#[async_trait]
impl Sink for KafkaSink {
    /// Encodes up to one batch per core at once, on blocking threads, and
    /// hands the messages to the producer in the order the batches came.
    async fn run(self: Box<Self>, mut cx: SinkContext) -> Result<(), ComponentError> {
        info!(component = %self.name, brokers = %self.config.brokers, "kafka producer started");
        let this: Arc<KafkaSink> = Arc::from(self);
        let component = ComponentMetrics::new(this.name.clone());
        let permits = Arc::new(Semaphore::new(this.config.max_in_flight));
        let parallel = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let mut encoding: VecDeque<Encoding> = VecDeque::new();
        let mut waiting = JoinSet::new();
        let mut open = true;
        loop {
            let room = open && encoding.len() < parallel;
            if !room && encoding.is_empty() {
                break;
            }
            tokio::select! {
                biased;
                batch = cx.input.recv(), if room => match batch {
                    Some(batch) => {
                        let (signal, data, ack) = batch.into_parts();
                        let sink = this.clone();
                        let task = tokio::task::spawn_blocking(move || sink.messages(signal, &data));
                        encoding.push_back(Encoding { signal, ack, task });
                    }
                    None => open = false,
                },
                done = async { (&mut encoding.front_mut().expect("checked").task).await },
                    if !encoding.is_empty() => {
                    let Encoding { signal, ack, .. } = encoding.pop_front().expect("checked");
                    let encoded = done.unwrap_or_else(|e| Err(format!("encoding stopped: {e}")));
                    while waiting.try_join_next().is_some() {}
                    let Ok(permit) = permits.clone().acquire_owned().await else {
                        break;
                    };
                    this.produce(&component, signal, encoded, ack, permit, &mut waiting)
                        .await;
                }
            }
        }
        // The input is closed: what is out gets its answer, or its timeout.
        while waiting.join_next().await.is_some() {}
        let _ = this.producer.flush(Duration::from_secs(5));
        Ok(())
    }
}

/// A batch being encoded: its signal, its acknowledgement, and the task.
struct Encoding {
    signal: Signal,
    ack: Ack,
    task: JoinHandle<Result<Encoded, String>>,
}

impl KafkaSink {
    /// Hands one encoded batch's messages to the producer, and starts
    /// waiting for their delivery reports in `waiting`.
    async fn produce(
        &self,
        component: &ComponentMetrics,
        signal: Signal,
        encoded: Result<Encoded, String>,
        ack: Ack,
        permit: OwnedSemaphorePermit,
        waiting: &mut JoinSet<()>,
    ) {
        let topic: Arc<str> = Arc::from(self.config.topics.of(signal));
        let Encoded {
            messages,
            too_large,
        } = match encoded {
            Ok(e) => e,
            Err(e) => {
                component.errors("encode").increment(1);
                warn!(component = %self.name, %signal, error = %e, "kafka: a batch cannot be encoded; it is refused");
                ack.reject(e);
                return;
            }
        };
        if too_large > 0 {
            metrics::produced(&self.name, &topic, "too_large").increment(too_large as u64);
            warn!(component = %self.name, %signal, records = too_large,
                max_message_bytes = self.config.max_message_bytes,
                "kafka: records larger than max_message_bytes on their own are refused");
        }
        let mut deliveries = Vec::with_capacity(messages.len());
        let mut refused = None;
        for m in messages {
            let bytes = m.value.len();
            match enqueue(&self.producer, &topic, m).await {
                Ok(d) => deliveries.push((d, bytes)),
                Err(e) => {
                    refused = Some(e.to_string());
                    break;
                }
            }
        }
        let name = self.name.clone();
        waiting.spawn(async move {
            let _permit = permit;
            settle(&name, &topic, deliveries, refused, too_large, ack).await;
        });
    }
}

/// Queues one message, waiting while librdkafka's queue is full.
async fn enqueue(
    producer: &FutureProducer<LogContext>,
    topic: &str,
    m: Outbound,
) -> Result<DeliveryFuture, KafkaError> {
    loop {
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic).payload(&m.value);
        if let Some(key) = &m.key {
            record = record.key(key);
        }
        match producer.send_result(record) {
            Ok(delivery) => return Ok(delivery),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err((e, _)) => return Err(e),
        }
    }
}

/// Waits for every delivery of one batch and answers its acknowledgement.
async fn settle(
    name: &str,
    topic: &str,
    deliveries: Vec<(DeliveryFuture, usize)>,
    refused: Option<String>,
    too_large: usize,
    ack: Ack,
) {
    let mut failure = refused;
    let (mut delivered, mut failed, mut delivered_bytes) = (0u64, 0u64, 0u64);
    for (delivery, bytes) in deliveries {
        match delivery.await {
            Ok(Ok(_)) => {
                delivered += 1;
                delivered_bytes += bytes as u64;
            }
            Ok(Err((e, _))) => {
                failed += 1;
                failure.get_or_insert_with(|| e.to_string());
            }
            Err(_) => {
                failed += 1;
                failure.get_or_insert_with(|| "the producer stopped".to_string());
            }
        }
    }
    metrics::produced(name, topic, "delivered").increment(delivered);
    metrics::produced(name, topic, "failed").increment(failed);
    metrics::produced_bytes(name, topic).increment(delivered_bytes);
    if let Some(reason) = failure {
        warn!(component = name, topic, error = %reason, "kafka: the broker did not take a batch; it is failed so that it is sent again");
        ack.fail(format!("Kafka topic `{topic}`: {reason}"));
    } else if too_large > 0 {
        ack.reject(format!(
            "{too_large} records are larger than the Kafka sink's max_message_bytes on their own"
        ));
    } else {
        ack.deliver();
    }
}
