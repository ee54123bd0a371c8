//! The `alertmanager` sink: the notifications of `rules` processors to
//! Alertmanager's API v2, every alert to each Alertmanager named, as
//! Prometheus sends them.

mod config;

use std::sync::Arc;

use async_trait::async_trait;
use weir_core::{ComponentError, Sink, SinkContext};

use crate::alerts;
use crate::alerts::deliver::{self, Encode, Receiver};
use crate::alerts::payload::postable_alerts;

pub use config::AlertmanagerSinkConfig;

/// `type = "alertmanager"`: posts alerts to `<url>/api/v2/alerts` of every
/// Alertmanager named.
pub struct AlertmanagerSink {
    receivers: Vec<Receiver>,
    queue_capacity: usize,
}

impl AlertmanagerSink {
    /// The sink of `config`. Reads the URLs and headers given as secrets;
    /// fails when one cannot be read, and on URLs or headers HTTP cannot
    /// carry.
    pub fn new(name: &str, config: &AlertmanagerSinkConfig) -> Result<Self, ComponentError> {
        let headers = deliver::headers(name, &config.headers)?;
        let client = alerts::client(name)?;
        let encode: Encode = Arc::new(|alerts| {
            let body = serde_json::to_vec(&postable_alerts(alerts)).unwrap_or_default();
            vec![(body, alerts.len())]
        });
        let mut urls = Vec::with_capacity(config.urls.len());
        for url in &config.urls {
            urls.push(url.resolve_http_url(name, "urls")?);
        }
        let receivers = urls
            .into_iter()
            .map(|url| format!("{}/api/v2/alerts", url.trim_end_matches('/')))
            .map(|url| Receiver {
                component: name.into(),
                shown: weir_core::redact::url(&url),
                url,
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

#[async_trait]
impl Sink for AlertmanagerSink {
    async fn run(self: Box<Self>, cx: SinkContext) -> Result<(), ComponentError> {
        alerts::run(self.receivers, self.queue_capacity, cx).await
    }
}
