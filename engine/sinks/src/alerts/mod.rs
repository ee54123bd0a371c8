//! The alert sinks: where the notifications of `rules` processors go.
//!
//! * [`AlertmanagerSink`] (`type = "alertmanager"`): Alertmanager's API v2,
//!   every alert to each Alertmanager named;
//! * [`WebhookSink`] (`type = "webhook"`): Alertmanager's webhook payload
//!   (version 4) to any URL.
//!
//! Both read `alerts` batches and take the rows of kind `notification`
//! (firing and resolved alerts, re-sent while they last, as Prometheus
//! sends them); transitions are for the store. Alerts wait in a bounded
//! queue per receiver, so a slow or absent receiver never holds the
//! pipeline up: the batch is acknowledged once queued, failed requests are
//! tried again with backoff, and what cannot be sent is dropped and
//! counted (see [`deliver`] for the metrics).

pub mod deliver;
pub mod payload;
pub mod rows;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tracing::warn;
use weir_config::{AlertmanagerSinkConfig, WebhookSinkConfig};
use weir_core::{ComponentError, Sink, SinkContext};

use deliver::{Encode, Queue, Receiver};
use payload::{WebhookGrouping, postable_alerts, webhook_messages};

/// How long a stopping sink waits for its queues to empty at most.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// `type = "alertmanager"`: posts alerts to `<url>/api/v2/alerts` of every
/// Alertmanager named.
pub struct AlertmanagerSink {
    receivers: Vec<Receiver>,
    queue_capacity: usize,
}

impl AlertmanagerSink {
    /// The sink of `config`; fails on headers HTTP cannot carry.
    pub fn new(name: &str, config: &AlertmanagerSinkConfig) -> Result<Self, ComponentError> {
        let headers = deliver::headers(name, &config.headers)?;
        let client = client(name)?;
        let encode: Encode = Arc::new(|alerts| {
            let body = serde_json::to_vec(&postable_alerts(alerts)).unwrap_or_default();
            vec![(body, alerts.len())]
        });
        let receivers = config
            .urls
            .iter()
            .map(|url| Receiver {
                component: name.into(),
                url: format!("{}/api/v2/alerts", url.trim_end_matches('/')),
                client: client.clone(),
                headers: headers.clone(),
                timeout: config.timeout,
                retry: config.retry.clone(),
                max_batch: config.max_batch,
                encode: encode.clone(),
            })
            .collect();
        Ok(AlertmanagerSink {
            receivers,
            queue_capacity: config.queue_capacity,
        })
    }
}

/// `type = "webhook"`: posts Alertmanager webhook messages to one URL.
pub struct WebhookSink {
    receiver: Receiver,
    queue_capacity: usize,
}

impl WebhookSink {
    /// The sink of `config`; `external_url` is where Weir is reached (the
    /// messages' `externalURL`). Fails on headers HTTP cannot carry.
    pub fn new(
        name: &str,
        config: &WebhookSinkConfig,
        external_url: &str,
    ) -> Result<Self, ComponentError> {
        let grouping = WebhookGrouping {
            receiver: config.receiver.clone().unwrap_or_else(|| name.to_string()),
            group_by: config.group_by.clone(),
            external_url: external_url.to_string(),
            max_alerts: config.max_alerts,
        };
        let encode: Encode = Arc::new(move |alerts| {
            webhook_messages(&grouping, alerts)
                .into_iter()
                .map(|m| {
                    let count = m.alerts.len() + m.truncated_alerts;
                    (serde_json::to_vec(&m).unwrap_or_default(), count)
                })
                .collect()
        });
        Ok(WebhookSink {
            receiver: Receiver {
                component: name.into(),
                url: config.url.clone(),
                client: client(name)?,
                headers: deliver::headers(name, &config.headers)?,
                timeout: config.timeout,
                retry: config.retry.clone(),
                // Alertmanager sends a group whole; so does Weir.
                max_batch: usize::MAX,
                encode,
            },
            queue_capacity: config.queue_capacity,
        })
    }
}

fn client(name: &str) -> Result<reqwest::Client, ComponentError> {
    reqwest::Client::builder()
        .user_agent(concat!("weir/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| ComponentError::internal(name, format!("cannot make an HTTP client: {e}")))
}

#[async_trait]
impl Sink for AlertmanagerSink {
    async fn run(self: Box<Self>, cx: SinkContext) -> Result<(), ComponentError> {
        run(self.receivers, self.queue_capacity, cx).await
    }
}

#[async_trait]
impl Sink for WebhookSink {
    async fn run(self: Box<Self>, cx: SinkContext) -> Result<(), ComponentError> {
        run(vec![self.receiver], self.queue_capacity, cx).await
    }
}

/// Queues the notifications of every batch for each receiver until the
/// input closes, then gives the senders [`SHUTDOWN_GRACE`] to finish.
async fn run(
    receivers: Vec<Receiver>,
    capacity: usize,
    mut cx: SinkContext,
) -> Result<(), ComponentError> {
    let queues: Vec<(String, Arc<Queue>)> = receivers
        .iter()
        .map(|r| (r.url.clone(), Queue::new(capacity)))
        .collect();
    let mut senders = tokio::task::JoinSet::new();
    for (receiver, (_, queue)) in receivers.into_iter().zip(&queues) {
        senders.spawn(deliver::run(receiver, queue.clone()));
    }
    let mut batches = Vec::with_capacity(64);
    while cx.input.recv_many(&mut batches, 64).await.is_some() {
        for batch in batches.drain(..) {
            match rows::notifications(batch.data()) {
                Ok(alerts) if alerts.is_empty() => {}
                Ok(alerts) => {
                    for (url, queue) in &queues {
                        let (dropped, _) = queue.push(&alerts);
                        if dropped > 0 {
                            warn!(component = %cx.name, url = %url, dropped,
                                "the alert queue is full; the oldest alerts are dropped");
                        }
                        deliver::dropped(&cx.name, url, "queue_full", dropped);
                    }
                }
                Err(e) => {
                    metrics::counter!("weir_component_errors_total",
                        "component" => cx.name.to_string(), "stage" => "decode")
                    .increment(1);
                    warn!(component = %cx.name, error = %e,
                        "a batch sent here is not alert events; it is dropped");
                }
            }
        }
    }
    for (_, queue) in &queues {
        queue.close();
    }
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while senders.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        senders.abort_all();
        for (url, queue) in &queues {
            let left = queue.take_all().len();
            warn!(component = %cx.name, url = %url, alerts = left,
                "stopping before every alert was sent");
            deliver::dropped(&cx.name, url, "shutdown", left);
        }
    }
    Ok(())
}
