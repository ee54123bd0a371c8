//! `retry = { ... }`: how the alert sinks try a failed request again.

use std::time::Duration;

use serde::{Deserialize, Deserializer};
use weir_config::{Problem, values};

/// `retry = { ... }` of the alert sinks: how a request that failed for a
/// reason that may pass (no connection, a timeout, HTTP 408, 429 or 5xx) is
/// tried again. Other refusals (HTTP 4xx) are logged and not repeated.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct RetryConfig {
    /// How many times to try again before dropping the alerts (counted in
    /// `weir_alerts_dropped_total`), from 0 to 100. Default 5.
    #[serde(default = "default_attempts", deserialize_with = "retry_attempts")]
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
    pub(crate) fn problems(&self) -> Vec<Problem> {
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

fn default_attempts() -> u32 {
    5
}

fn default_initial_backoff() -> Duration {
    Duration::from_millis(500)
}

fn default_max_backoff() -> Duration {
    Duration::from_secs(30)
}

/// How many times a request is tried again, from 0 to 100.
fn retry_attempts<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    values::count(d, 0, 100).map(|n| u32::try_from(n).unwrap_or(u32::MAX))
}
