//! What the alert sinks share: [`crate::alertmanager`] (Alertmanager's
//! API v2) and [`crate::webhook`] (Alertmanager's webhook payload).
//!
//! Both read `alerts` batches and take the rows of kind `notification`
//! (firing and resolved alerts, re-sent while they last, as Prometheus
//! sends them); transitions are for the store. Alerts wait in a bounded
//! queue per receiver, so a slow or absent receiver never holds the
//! pipeline up: the batch is acknowledged once queued, failed requests are
//! tried again with backoff, and what cannot be sent is dropped and
//! counted (see [`metrics`]).

pub mod deliver;
pub mod metrics;
pub mod payload;
mod retry;
pub mod rows;

use std::sync::Arc;
use std::time::Duration;

use serde::Deserializer;
use tracing::warn;
use weir_config::values;
use weir_core::metrics::component::ComponentMetrics;
use weir_core::{ComponentError, SinkContext};

use deliver::{Queue, Receiver};

pub use retry::RetryConfig;

/// How long a stopping sink waits for its queues to empty at most.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The default time one request may take.
pub(crate) fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

/// The default number of alerts held per receiver (Prometheus' default).
pub(crate) fn default_queue() -> usize {
    10_000
}

/// A number of alerts held for sending, from 1 to 1000000.
pub(crate) fn queue_capacity<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    values::count(d, 1, 1_000_000)
}

/// The HTTP client of alert sink `name`.
pub(crate) fn client(name: &str) -> Result<reqwest::Client, ComponentError> {
    // No redirects: a 3xx is refused, so that neither the alerts nor the
    // headers go somewhere the pipeline does not name.
    reqwest::Client::builder()
        .user_agent(concat!("weir/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| ComponentError::internal(name, format!("cannot make an HTTP client: {e}")))
}

/// Queues the notifications of every batch for each receiver until the
/// input closes, then gives the senders [`SHUTDOWN_GRACE`] to finish.
pub(crate) async fn run(
    receivers: Vec<Receiver>,
    capacity: usize,
    mut cx: SinkContext,
) -> Result<(), ComponentError> {
    let queues: Vec<(String, Arc<Queue>)> = receivers
        .iter()
        .map(|r| (r.shown.clone(), Queue::new(capacity)))
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
                    ComponentMetrics::new(cx.name.clone())
                        .errors("decode")
                        .increment(1);
                    warn!(component = %cx.name, error = %e,
                        "a batch sent here is not alert events; it is dropped");
                }
            }
            // Queued (or dropped on purpose, counted above): acknowledged.
            batch.deliver();
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
