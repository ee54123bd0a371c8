//! The `webhook` sink: the notifications of `rules` processors to any URL
//! as Alertmanager's webhook payload (version 4), grouped by `group_by`.

mod config;

use std::sync::Arc;

use async_trait::async_trait;
use weir_core::{ComponentError, Sink, SinkContext};

use crate::alerts;
use crate::alerts::deliver::{self, Encode, Receiver};
use crate::alerts::payload::{WebhookGrouping, webhook_messages};

pub use config::WebhookSinkConfig;

/// `type = "webhook"`: posts Alertmanager webhook messages to one URL.
pub struct WebhookSink {
    receiver: Receiver,
    queue_capacity: usize,
}

impl WebhookSink {
    /// The sink of `config`; `external_url` is where Weir is reached (the
    /// messages' `externalURL`). Reads the URL and headers given as
    /// secrets; fails when one cannot be read, and on a URL or headers
    /// HTTP cannot carry.
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
        let url = config.url.resolve_http_url(name, "url")?;
        Ok(WebhookSink {
            receiver: Receiver {
                component: name.into(),
                shown: weir_core::redact::url(&url),
                url,
                client: alerts::client(name)?,
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

#[async_trait]
impl Sink for WebhookSink {
    async fn run(self: Box<Self>, cx: SinkContext) -> Result<(), ComponentError> {
        alerts::run(vec![self.receiver], self.queue_capacity, cx).await
    }
}
