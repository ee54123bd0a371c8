//! `type = "webhook"`: what a user writes, and how it is built.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use weir_config::{BuildContext, ComponentConfig, Problem, Sensitive, values};
use weir_core::{Built, ComponentError, Signal, SignalSet};

use super::WebhookSink;
use crate::alerts::RetryConfig;

/// `type = "webhook"`: posts the notifications of `rules` processors to a
/// URL as Alertmanager's webhook payload (version 4), grouped by
/// `group_by`, so receivers written for Alertmanager work unchanged. Failed
/// requests are tried again with exponential backoff.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct WebhookSinkConfig {
    /// Where to `POST` the JSON, an `http://` or `https://` URL. Required.
    /// Chat webhooks (Slack, Teams, ...) carry their token in the URL, so
    /// it may be read when Weir starts from an environment variable,
    /// `{ env = "SLACK_WEBHOOK_URL" }`, or a file,
    /// `{ file = "/run/secrets/slack-webhook-url" }`. Logs and metrics show
    /// only its scheme, host and port.
    #[serde(deserialize_with = "values::sensitive_http_url")]
    pub url: Sensitive,
    /// The `receiver` field of the payload. Default: the sink's name.
    #[serde(default)]
    pub receiver: Option<String>,
    /// The labels alerts are grouped by: one message per group. Default
    /// `["alertname"]`; `[]` sends all alerts of a moment in one message.
    #[serde(default = "default_group_by")]
    pub group_by: Vec<String>,
    /// The most alerts in one message; the rest are counted in
    /// `truncatedAlerts`, as Alertmanager does. 0 (the default) means no
    /// limit.
    #[serde(default)]
    pub max_alerts: usize,
    /// How long one request may take. Default `"10s"`.
    #[serde(
        default = "crate::alerts::default_timeout",
        deserialize_with = "values::positive_duration"
    )]
    pub timeout: Duration,
    /// HTTP headers sent with every request, such as
    /// `{ "X-Team" = "sre" }`. A value may be read when Weir starts from an
    /// environment variable or a file, such as
    /// `{ Authorization = { env = "HOOK_AUTHORIZATION" } }`. Default: none.
    #[serde(default)]
    pub headers: BTreeMap<String, Sensitive>,
    /// The most alerts held while the receiver is slow or away, from 1 to
    /// 1000000. Default 10000; when full, the oldest are dropped and
    /// counted.
    #[serde(
        default = "crate::alerts::default_queue",
        deserialize_with = "crate::alerts::queue_capacity"
    )]
    pub queue_capacity: usize,
    /// How failed requests are tried again.
    #[serde(default)]
    pub retry: RetryConfig,
}

#[async_trait]
impl ComponentConfig for WebhookSinkConfig {
    fn accepts(&self) -> SignalSet {
        SignalSet::only(Signal::Alerts)
    }

    fn outputs(&self, _input: SignalSet) -> SignalSet {
        SignalSet::NONE
    }

    async fn build(&self, cx: &mut BuildContext<'_>) -> Result<Built, ComponentError> {
        let sink = WebhookSink::new(cx.name(), self, cx.external_url())?;
        Ok(Built::Sink(Box::new(sink)))
    }

    fn problems(&self) -> Vec<Problem> {
        let mut problems = self.retry.problems();
        if let Some(i) = self.group_by.iter().position(|l| l.trim().is_empty()) {
            problems.push(Problem {
                key: "group_by".to_string(),
                message: format!("label {} of `group_by` is empty", i + 1),
                help: "name labels, such as group_by = [\"alertname\", \"service\"]".to_string(),
            });
        }
        problems
    }
}

fn default_group_by() -> Vec<String> {
    vec!["alertname".to_string()]
}
