//! Sink types.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use weir_core::SignalSet;

use crate::components::Problem;
use crate::values;

/// A sink's configuration, chosen by its `type`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SinkConfig {
    /// `type = "blackhole"`: acknowledges and drops everything.
    Blackhole(BlackholeSinkConfig),
    /// `type = "file"`: appends OTLP/JSON lines to a file.
    File(FileSinkConfig),
    /// `type = "store"`: writes to the embedded store (`[store]`).
    Store(StoreSinkConfig),
    /// `type = "alertmanager"`: sends alert notifications to Alertmanager.
    Alertmanager(AlertmanagerSinkConfig),
    /// `type = "webhook"`: posts alert notifications as Alertmanager's
    /// webhook JSON.
    Webhook(WebhookSinkConfig),
}

impl SinkConfig {
    /// The sink's `type` as written in the file.
    pub fn type_name(&self) -> &'static str {
        match self {
            SinkConfig::Blackhole(_) => "blackhole",
            SinkConfig::File(_) => "file",
            SinkConfig::Store(_) => "store",
            SinkConfig::Alertmanager(_) => "alertmanager",
            SinkConfig::Webhook(_) => "webhook",
        }
    }

    /// The signals the sink can take in.
    pub fn accepts(&self) -> SignalSet {
        match self {
            SinkConfig::Blackhole(_) | SinkConfig::Store(_) => SignalSet::ALL,
            // OTLP/JSON has no form for alert events.
            SinkConfig::File(_) => SignalSet::TELEMETRY,
            SinkConfig::Alertmanager(_) | SinkConfig::Webhook(_) => {
                SignalSet::only(weir_core::Signal::Alerts)
            }
        }
    }

    pub(crate) fn problems(&self) -> Vec<Problem> {
        match self {
            SinkConfig::Alertmanager(c) => c.problems(),
            SinkConfig::Webhook(c) => c.problems(),
            SinkConfig::Blackhole(_) | SinkConfig::File(_) | SinkConfig::Store(_) => Vec::new(),
        }
    }
}

/// `type = "blackhole"`: acknowledges every batch at once and drops it.
/// For benchmarks and for trying a pipeline out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct BlackholeSinkConfig {
    /// When set, log how many records arrived every this often: a duration
    /// above zero such as `"10s"`. Default: no logging.
    #[serde(default, deserialize_with = "values::optional_positive_duration")]
    pub log_interval: Option<Duration>,
}

/// `type = "file"`: appends each export request as one line of OTLP/JSON
/// (the protobuf JSON mapping), a format other OTLP tools read back.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct FileSinkConfig {
    /// The file to append to; created if missing. Required. A relative path
    /// is taken from the directory Weir runs in.
    #[serde(deserialize_with = "values::path")]
    pub path: PathBuf,
    /// Whether to `fsync` after each write before acknowledging it, so that
    /// acknowledged data survives a power cut. Default `false` (data is
    /// handed to the operating system only).
    #[serde(default)]
    pub fsync: bool,
}

/// `type = "store"`: writes every batch to the embedded store configured
/// in `[store]`, acknowledging it once the write-ahead log holds it. The
/// SQL endpoints read the same store.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct StoreSinkConfig {}

/// `type = "alertmanager"`: sends the notifications of `rules` processors
/// to Alertmanager's API v2 (`POST /api/v2/alerts`) as Prometheus does:
/// firing alerts with an `endsAt` a few resend intervals ahead, re-sent
/// while they fire, and resolved alerts with their resolution time.
///
/// Alerts wait in a bounded queue per Alertmanager, so a slow or absent
/// Alertmanager never holds the pipeline up; when the queue is full the
/// oldest alerts are dropped and counted.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct AlertmanagerSinkConfig {
    /// The Alertmanagers, by base URL, such as `["http://alertmanager:9093"]`.
    /// Every alert goes to each of them, as Prometheus sends to every member
    /// of an Alertmanager cluster. Required, at least one.
    pub urls: Vec<String>,
    /// How long one request may take. Default `"10s"`.
    #[serde(
        default = "default_alert_timeout",
        deserialize_with = "values::positive_duration"
    )]
    pub timeout: Duration,
    /// HTTP headers sent with every request, such as
    /// `{ Authorization = "Bearer ..." }`. Default: none.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The most alerts held for each Alertmanager while it is slow or
    /// away, from 1 to 1000000. Default 10000 (Prometheus' default).
    #[serde(
        default = "default_alert_queue",
        deserialize_with = "values::alert_queue_capacity"
    )]
    pub queue_capacity: usize,
    /// The most alerts in one request, from 1 to 10000. Default 256.
    #[serde(
        default = "default_alert_batch",
        deserialize_with = "values::alert_batch_size"
    )]
    pub max_batch: usize,
    /// How failed requests are tried again.
    #[serde(default)]
    pub retry: RetryConfig,
}

impl AlertmanagerSinkConfig {
    fn problems(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        if self.urls.is_empty() {
            problems.push(Problem {
                key: "urls".to_string(),
                message: "no Alertmanager to send to".to_string(),
                help: "name at least one, such as urls = [\"http://alertmanager:9093\"]"
                    .to_string(),
            });
        }
        problems.extend(self.urls.iter().filter_map(|u| url_problem("urls", u)));
        problems.extend(self.retry.problems());
        problems
    }
}

/// `type = "webhook"`: posts the notifications of `rules` processors to a
/// URL as Alertmanager's webhook payload (version 4), grouped by
/// `group_by`, so receivers written for Alertmanager work unchanged. Failed
/// requests are tried again with exponential backoff.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct WebhookSinkConfig {
    /// Where to `POST` the JSON, an `http://` or `https://` URL. Required.
    #[serde(deserialize_with = "values::http_url")]
    pub url: String,
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
        default = "default_alert_timeout",
        deserialize_with = "values::positive_duration"
    )]
    pub timeout: Duration,
    /// HTTP headers sent with every request. Default: none.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The most alerts held while the receiver is slow or away, from 1 to
    /// 1000000. Default 10000; when full, the oldest are dropped and
    /// counted.
    #[serde(
        default = "default_alert_queue",
        deserialize_with = "values::alert_queue_capacity"
    )]
    pub queue_capacity: usize,
    /// How failed requests are tried again.
    #[serde(default)]
    pub retry: RetryConfig,
}

impl WebhookSinkConfig {
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

/// `retry = { ... }` of the alert sinks: how a request that failed for a
/// reason that may pass (no connection, a timeout, HTTP 408, 429 or 5xx) is
/// tried again. Other refusals (HTTP 4xx) are logged and not repeated.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct RetryConfig {
    /// How many times to try again before dropping the alerts (counted in
    /// `weir_alerts_dropped_total`), from 0 to 100. Default 5.
    #[serde(
        default = "default_attempts",
        deserialize_with = "values::retry_attempts"
    )]
    pub attempts: u32,
    /// The wait before the first retry; it doubles each time, with jitter.
    /// Default `"500ms"`.
    #[serde(
        default = "default_initial_backoff",
        deserialize_with = "values::positive_duration"
    )]
    pub initial_backoff: Duration,
    /// The longest wait between two tries (a `Retry-After` from the
    /// receiver is honoured up to this). Default `"30s"`.
    #[serde(
        default = "default_max_backoff",
        deserialize_with = "values::positive_duration"
    )]
    pub max_backoff: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            attempts: default_attempts(),
            initial_backoff: default_initial_backoff(),
            max_backoff: default_max_backoff(),
        }
    }
}

impl RetryConfig {
    fn problems(&self) -> Vec<Problem> {
        if self.initial_backoff <= self.max_backoff {
            return Vec::new();
        }
        vec![Problem {
            key: "retry".to_string(),
            message: format!(
                "`initial_backoff` ({}) is longer than `max_backoff` ({})",
                humantime::format_duration(self.initial_backoff),
                humantime::format_duration(self.max_backoff)
            ),
            help: "make `max_backoff` at least `initial_backoff`".to_string(),
        }]
    }
}

fn url_problem(key: &str, url: &str) -> Option<Problem> {
    values::http_url_problem(url).map(|message| Problem {
        key: key.to_string(),
        message,
        help: "write the URL with its scheme and host, such as \"http://alertmanager:9093\""
            .to_string(),
    })
}

fn default_alert_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_alert_queue() -> usize {
    10_000
}

fn default_alert_batch() -> usize {
    256
}

fn default_group_by() -> Vec<String> {
    vec!["alertname".to_string()]
}

fn default_attempts() -> u32 {
    5
}

fn default_initial_backoff() -> Duration {
    Duration::from_millis(500)
}

fn default_max_backoff() -> Duration {
    Duration::from_secs(30)
}
