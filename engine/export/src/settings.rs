//! The keys every external sink shares: how batches are gathered before a
//! request (`max_batch_records`, `max_batch_bytes`, `batch_timeout`), how
//! many requests are out at once (`max_in_flight`), how a failure that may
//! pass is retried (`retry = { ... }`) and the optional disk queue
//! (`queue = { ... }`).
//!
//! Each sink's config holds these keys beside its own (so that unknown keys
//! are still refused) and hands them over as a [`SendSettings`].

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use weir_config::{Problem, values};

/// What the shared part of a sink does, as its config says.
#[derive(Debug, Clone, PartialEq)]
pub struct SendSettings {
    /// The most records in one request.
    pub max_batch_records: usize,
    /// The most bytes of rows (Arrow, in memory) gathered into one request.
    pub max_batch_bytes: u64,
    /// How long the first batch of a request may wait for more.
    pub batch_timeout: Duration,
    /// Requests out at once.
    pub max_in_flight: usize,
    /// How a failure that may pass is tried again.
    pub retry: RetryConfig,
    /// The disk queue, if any.
    pub queue: Option<QueueConfig>,
}

/// `retry = { ... }`: how a request that may pass (no connection, a
/// timeout, HTTP 429 or 5xx, gRPC `UNAVAILABLE`) is tried again: after a
/// wait that doubles from `initial_backoff` up to `max_backoff`, with
/// jitter, or as long as the backend asked (`Retry-After`, `RetryInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct RetryConfig {
    /// The wait before the first retry. Default `"1s"`.
    #[serde(
        default = "default_initial_backoff",
        deserialize_with = "values::positive_duration"
    )]
    pub initial_backoff: Duration,
    /// The longest wait between two tries, also for a backend's own
    /// `Retry-After`. Default `"30s"`.
    #[serde(
        default = "default_max_backoff",
        deserialize_with = "values::positive_duration"
    )]
    pub max_backoff: Duration,
    /// Without a disk queue: how long a batch is retried before it is
    /// failed back to its source (whose client then retries it: an OTLP
    /// client is answered `UNAVAILABLE`, a Kafka source sends it again).
    /// Default `"5m"`. With a disk queue a batch is retried until the
    /// backend takes or refuses it; this key is then ignored.
    #[serde(
        default = "default_max_elapsed",
        deserialize_with = "values::positive_duration"
    )]
    pub max_elapsed: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            initial_backoff: default_initial_backoff(),
            max_backoff: default_max_backoff(),
            max_elapsed: default_max_elapsed(),
        }
    }
}

/// `queue = { ... }`: a bounded queue on disk between the pipeline and the
/// backend, in the store's write-ahead-log format. While the backend is
/// down it fills; when it is full the sink takes nothing more, so the
/// pipeline holds back its sources (OTLP clients are answered
/// `UNAVAILABLE` / 503, Kafka partitions pause). What it holds is sent
/// after a restart, a `kill -9` included.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct QueueConfig {
    /// The most bytes the queue holds on disk, such as `"1GiB"`. Required.
    #[serde(deserialize_with = "values::byte_size")]
    pub max_size: u64,
    /// The most bytes of queued rows kept in memory. Default `"64MiB"`.
    /// Batches beyond it wait in the log on disk only and are read back,
    /// a log segment (at most a quarter of this) at a time, when their
    /// turn comes; so a queue filling during an outage grows on disk, not
    /// in memory.
    #[serde(
        default = "default_queue_memory",
        deserialize_with = "values::byte_size"
    )]
    pub max_memory: u64,
    /// The directory of the queue. Default: `queues/<sink name>` in the
    /// store's directory (`[store] dir`); required when there is none.
    #[serde(default, deserialize_with = "optional_path")]
    pub dir: Option<PathBuf>,
    /// When the source is told a batch is taken: `"queued"` (default), once
    /// it is fsynced in the queue; `"delivered"`, once the backend took it
    /// (the queue then only survives restarts).
    #[serde(default)]
    pub ack: AckMode,
}

fn default_queue_memory() -> u64 {
    64 << 20
}

/// When a queued batch is acknowledged to its source.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AckMode {
    /// Once it is fsynced in the queue.
    #[default]
    Queued,
    /// Once the backend took it.
    Delivered,
}

/// Defines an external sink's config struct: the fields written in it, then
/// the keys every external sink shares (`max_batch_records`,
/// `max_batch_bytes`, `batch_timeout`, `max_in_flight`, `retry`, `queue`),
/// and `send()`, which hands them to the sink. The keys stay in one table
/// (serde's `flatten` would lose `deny_unknown_fields`), written once here.
macro_rules! external_sink_config {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $($(#[$field_meta:meta])* pub $field:ident: $ty:ty,)*
        }
    ) => {
        $(#[$meta])*
        pub struct $name {
            $($(#[$field_meta])* pub $field: $ty,)*
        /// The most records gathered into one export (which the exporter may
        /// still cut into several requests), from 1 to 1000000. Default 8192.
        #[serde(
            default = "crate::settings::default_max_batch_records",
            deserialize_with = "crate::settings::batch_records"
        )]
        pub max_batch_records: usize,
        /// The most bytes of rows (in memory) gathered into one export.
        /// Default `"8MiB"`.
        #[serde(
            default = "crate::settings::default_max_batch_bytes",
            deserialize_with = "values::byte_size"
        )]
        pub max_batch_bytes: u64,
        /// How long the first batch of an export waits for more before it is
        /// sent anyway. Default `"200ms"`.
        #[serde(
            default = "crate::settings::default_batch_timeout",
            deserialize_with = "values::positive_duration"
        )]
        pub batch_timeout: Duration,
        /// Exports out at once, from 1 to 256 (batches may then land out of
        /// order). Default 4.
        #[serde(
            default = "crate::settings::default_max_in_flight",
            deserialize_with = "crate::settings::in_flight"
        )]
        pub max_in_flight: usize,
        /// How a failure that may pass is retried (`initial_backoff`,
        /// `max_backoff`, `max_elapsed`). Default `{ initial_backoff = "1s",
        /// max_backoff = "30s", max_elapsed = "5m" }`.
        #[serde(default)]
        pub retry: crate::settings::RetryConfig,
        /// A bounded queue on disk before the backend (`max_size`, `dir`,
        /// `ack`), which rides out outages and restarts. Default: none (batches
        /// wait in memory, and are acknowledged once the backend took them).
        #[serde(default)]
        pub queue: Option<crate::settings::QueueConfig>,
        }

        impl $name {
        /// The shared keys, for the sink.
        pub fn send(&self) -> crate::settings::SendSettings {
            crate::settings::SendSettings {
                max_batch_records: self.max_batch_records,
                max_batch_bytes: self.max_batch_bytes,
                batch_timeout: self.batch_timeout,
                max_in_flight: self.max_in_flight,
                retry: self.retry.clone(),
                queue: self.queue.clone(),
            }
        }
        }
    };
}
pub(crate) use external_sink_config;

fn optional_path<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PathBuf>, D::Error> {
    values::path(d).map(Some)
}

/// Default `max_batch_records`: 8192.
pub fn default_max_batch_records() -> usize {
    8192
}

/// Default `max_batch_bytes`: 8 MiB of rows.
pub fn default_max_batch_bytes() -> u64 {
    8 << 20
}

/// Default `batch_timeout`: 200 ms.
pub fn default_batch_timeout() -> Duration {
    Duration::from_millis(200)
}

/// Default `max_in_flight`: 4 requests.
pub fn default_max_in_flight() -> usize {
    4
}

fn default_initial_backoff() -> Duration {
    Duration::from_secs(1)
}

fn default_max_backoff() -> Duration {
    Duration::from_secs(30)
}

fn default_max_elapsed() -> Duration {
    Duration::from_secs(300)
}

/// `max_batch_records`: 1 to 1,000,000.
pub fn batch_records<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    values::count(d, 1, 1_000_000)
}

/// `max_in_flight`: 1 to 256.
pub fn in_flight<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    values::count(d, 1, 256)
}

impl SendSettings {
    /// What is wrong across the shared keys.
    pub fn problems(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        if self.retry.initial_backoff > self.retry.max_backoff {
            problems.push(Problem {
                key: "retry".to_string(),
                message: format!(
                    "`initial_backoff` ({}) is longer than `max_backoff` ({})",
                    humantime::format_duration(self.retry.initial_backoff),
                    humantime::format_duration(self.retry.max_backoff)
                ),
                help: "make `max_backoff` at least `initial_backoff`".to_string(),
            });
        }
        if let Some(q) = &self.queue
            && q.max_size < 1 << 20
        {
            problems.push(Problem {
                key: "queue.max_size".to_string(),
                message: format!("{} bytes is too small for a disk queue", q.max_size),
                help: "give it at least \"1MiB\"; a few hundred MiB ride out an outage of minutes"
                    .to_string(),
            });
        }
        problems
    }

    /// Settings with every default and no queue.
    pub fn defaults() -> Self {
        SendSettings {
            max_batch_records: default_max_batch_records(),
            max_batch_bytes: default_max_batch_bytes(),
            batch_timeout: default_batch_timeout(),
            max_in_flight: default_max_in_flight(),
            retry: RetryConfig::default(),
            queue: None,
        }
    }
}

/// The wait before try number `attempt` (1 for the first retry): doubling
/// from `initial_backoff`, capped at `max_backoff`, with "equal jitter"
/// (between half and all of it) from `jitter` in `[0, 1)`; a wait the
/// backend asked for (`after`) is honoured up to `max_backoff`.
pub fn backoff(
    retry: &RetryConfig,
    attempt: u32,
    after: Option<Duration>,
    jitter: f64,
) -> Duration {
    let doubled = retry
        .initial_backoff
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
    let capped = doubled.min(retry.max_backoff);
    let jittered = capped.mul_f64(0.5 + jitter.clamp(0.0, 1.0) / 2.0);
    match after {
        Some(asked) => asked.min(retry.max_backoff),
        None => jittered,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guarantees: the wait doubles from the initial backoff, stays under
    /// the cap, keeps at least half of itself under jitter, and a backend's
    /// `Retry-After` is honoured up to the cap.
    #[test]
    fn backoff_doubles_is_capped_and_honours_the_backend() {
        let r = RetryConfig {
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(10),
            max_elapsed: Duration::from_secs(60),
        };
        assert_eq!(backoff(&r, 1, None, 1.0), Duration::from_secs(1));
        assert_eq!(backoff(&r, 2, None, 1.0), Duration::from_secs(2));
        assert_eq!(backoff(&r, 3, None, 0.0), Duration::from_secs(2));
        assert_eq!(backoff(&r, 30, None, 1.0), Duration::from_secs(10));
        assert_eq!(
            backoff(&r, 1, Some(Duration::from_secs(7)), 0.0),
            Duration::from_secs(7)
        );
        assert_eq!(
            backoff(&r, 1, Some(Duration::from_secs(600)), 0.0),
            Duration::from_secs(10)
        );
    }

    /// Guarantees: a queue needs a size, knows its keys only, and an
    /// initial backoff above the cap or a tiny queue are problems.
    #[test]
    fn queue_and_retry_keys() {
        let q: QueueConfig =
            toml::from_str("max_size = \"1GiB\"\nack = \"delivered\"").expect("a valid queue");
        assert_eq!(q.max_size, 1 << 30);
        assert_eq!(q.ack, AckMode::Delivered);
        assert!(toml::from_str::<QueueConfig>("ack = \"queued\"").is_err());
        assert!(toml::from_str::<QueueConfig>("max_size = 5\nsize = 3").is_err());
        let mut s = SendSettings::defaults();
        s.retry.initial_backoff = Duration::from_secs(60);
        s.queue = Some(QueueConfig {
            max_size: 1000,
            max_memory: 64 << 20,
            dir: None,
            ack: AckMode::Queued,
        });
        let keys: Vec<String> = s.problems().into_iter().map(|p| p.key).collect();
        assert_eq!(keys, ["retry", "queue.max_size"]);
    }
}
