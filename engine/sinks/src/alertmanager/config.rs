//! `type = "alertmanager"`: what a user writes, and how it is built.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Deserializer};
use weir_config::{BuildContext, ComponentConfig, Problem, Sensitive, values};
use weir_core::{Built, ComponentError, Signal, SignalSet};

use super::AlertmanagerSink;
use crate::alerts::RetryConfig;

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
    /// of an Alertmanager cluster. Required, at least one. A URL holding
    /// credentials may be read when Weir starts from an environment
    /// variable, `{ env = "ALERTMANAGER_URL" }`, or a file,
    /// `{ file = "/run/secrets/alertmanager-url" }`.
    pub urls: Vec<Sensitive>,
    /// How long one request may take. Default `"10s"`.
    #[serde(
        default = "crate::alerts::default_timeout",
        deserialize_with = "values::positive_duration"
    )]
    pub timeout: Duration,
    /// HTTP headers sent with every request, such as `{ "X-Team" = "sre" }`.
    /// A value may be read when Weir starts from an environment variable or
    /// a file, such as `{ Authorization = { file = "/run/secrets/am-auth" } }`.
    /// Default: none.
    #[serde(default)]
    pub headers: BTreeMap<String, Sensitive>,
    /// The most alerts held for each Alertmanager while it is slow or
    /// away, from 1 to 1000000. Default 10000 (Prometheus' default).
    #[serde(
        default = "crate::alerts::default_queue",
        deserialize_with = "crate::alerts::queue_capacity"
    )]
    pub queue_capacity: usize,
    /// The most alerts in one request, from 1 to 10000. Default 256.
    #[serde(default = "default_batch", deserialize_with = "alert_batch_size")]
    pub max_batch: usize,
    /// How failed requests are tried again.
    #[serde(default)]
    pub retry: RetryConfig,
}

#[async_trait]
impl ComponentConfig for AlertmanagerSinkConfig {
    fn accepts(&self) -> SignalSet {
        SignalSet::only(Signal::Alerts)
    }

    fn outputs(&self, _input: SignalSet) -> SignalSet {
        SignalSet::NONE
    }

    async fn build(&self, cx: &mut BuildContext<'_>) -> Result<Built, ComponentError> {
        Ok(Built::Sink(Box::new(AlertmanagerSink::new(
            cx.name(),
            self,
        )?)))
    }

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
        problems.extend(
            self.urls
                .iter()
                .filter_map(Sensitive::plain)
                .filter_map(|u| url_problem("urls", u)),
        );
        problems.extend(self.retry.problems());
        problems
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

fn default_batch() -> usize {
    256
}

/// A number of alerts in one request, from 1 to 10000.
fn alert_batch_size<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    values::count(d, 1, 10_000)
}
