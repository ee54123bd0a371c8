//! The consumer's callbacks: librdkafka's log and errors into Weir's log,
//! lag from its statistics, commits counted, and rebalances handed to the
//! source's loop (which owns the offsets).

use std::sync::Mutex;

use rdkafka::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::TopicPartitionList;
use rdkafka::types::RDKafkaErrorCode;

use crate::{client, metrics};

/// A change of the partitions this consumer owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Rebalanced {
    /// These partitions are now this consumer's.
    Assigned(Vec<(String, i32)>),
    /// These partitions are no longer this consumer's.
    Revoked(Vec<(String, i32)>),
}

/// The context of one `kafka` source's consumer.
pub(crate) struct SourceContext {
    component: String,
    events: Mutex<Vec<Rebalanced>>,
}

impl SourceContext {
    pub(crate) fn new(component: &str) -> Self {
        SourceContext {
            component: component.to_string(),
            events: Mutex::new(Vec::new()),
        }
    }

    /// The rebalances since last asked.
    pub(crate) fn take_events(&self) -> Vec<Rebalanced> {
        std::mem::take(&mut *self.events.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn push(&self, event: Rebalanced) {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(event);
    }
}

fn partitions(tpl: &TopicPartitionList) -> Vec<(String, i32)> {
    tpl.elements()
        .iter()
        .map(|e| (e.topic().to_string(), e.partition()))
        .collect()
}

/// Commits what is stored now; "nothing stored" is not a failure.
pub(crate) fn commit_stored<C: ConsumerContext>(
    component: &str,
    consumer: &impl Consumer<C>,
    mode: CommitMode,
) {
    match consumer.commit_consumer_state(mode) {
        Ok(()) => {}
        Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
        Err(e) => {
            tracing::warn!(component, error = %e, "committing offsets failed; they will be committed later, or read again");
        }
    }
}

impl ClientContext for SourceContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        client::log(&self.component, level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(component = %self.component, %error, "kafka: {reason}");
    }

    fn stats(&self, statistics: Statistics) {
        for (topic, t) in &statistics.topics {
            for (partition, p) in &t.partitions {
                // librdkafka lists an internal partition -1, and -1 lag
                // for partitions it does not consume.
                if *partition >= 0 && p.consumer_lag >= 0 {
                    metrics::lag(&self.component, topic, *partition).set(p.consumer_lag as f64);
                }
            }
        }
    }
}

impl ConsumerContext for SourceContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(tpl) => {
                metrics::rebalances(&self.component, "revoke").increment(1);
                // What is finished is committed before another consumer
                // takes the partitions over.
                commit_stored(&self.component, consumer, CommitMode::Sync);
                self.push(Rebalanced::Revoked(partitions(tpl)));
            }
            Rebalance::Assign(_) => {}
            Rebalance::Error(e) => {
                metrics::rebalances(&self.component, "error").increment(1);
                tracing::warn!(component = %self.component, error = %e, "kafka: rebalance failed");
            }
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            metrics::rebalances(&self.component, "assign").increment(1);
            let assigned = partitions(tpl);
            tracing::info!(component = %self.component, partitions = assigned.len(),
                "kafka: partitions assigned");
            self.push(Rebalanced::Assigned(assigned));
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        match result {
            Ok(()) => metrics::commits(&self.component, "ok").increment(1),
            Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
            Err(e) => {
                metrics::commits(&self.component, "failed").increment(1);
                tracing::warn!(component = %self.component, error = %e,
                    "kafka: committing offsets failed; will try again");
            }
        }
    }
}
