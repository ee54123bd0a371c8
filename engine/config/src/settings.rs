//! The engine-wide tables: `[api]`, `[runtime]`, `[store]` and `[query]`.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::values;

/// `[api]`: the HTTP server for `/metrics`, `/healthz` and `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct ApiConfig {
    /// The `"IP:PORT"` the API server binds. Default `"127.0.0.1:8888"`.
    #[serde(
        default = "default_api_address",
        deserialize_with = "values::socket_addr"
    )]
    pub address: SocketAddr,
    /// Whether to run the API server at all. Default `true`.
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// The URL users reach Weir at, as alerts link back to it (their
    /// `generatorURL`, and `externalURL` in webhook messages), such as
    /// `"https://weir.example.com"`. Default: `http://` and the address
    /// bound (the port chosen, when `address` has port 0).
    #[serde(default, deserialize_with = "values::optional_http_url")]
    pub external_url: Option<String>,
}

impl ApiConfig {
    /// [`external_url`](Self::external_url), or `http://` and the address.
    pub fn external_url(&self) -> String {
        self.external_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.address))
    }
}

fn default_api_address() -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8888))
}

fn default_enabled() -> bool {
    true
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            address: default_api_address(),
            enabled: default_enabled(),
            external_url: None,
        }
    }
}

/// `[runtime]`: how the engine runs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct RuntimeConfig {
    /// How long a graceful shutdown may spend draining in-flight data
    /// before giving up: a duration such as `"30s"`. Default `"30s"`;
    /// `"0s"` stops without draining.
    #[serde(
        default = "default_shutdown_timeout",
        deserialize_with = "values::duration"
    )]
    pub shutdown_timeout: Duration,
    /// The number of tokio worker threads; `0` means one per CPU core.
    /// Default `0`.
    #[serde(default)]
    pub worker_threads: usize,
}

fn default_shutdown_timeout() -> Duration {
    Duration::from_secs(30)
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            shutdown_timeout: default_shutdown_timeout(),
            worker_threads: 0,
        }
    }
}

/// `[store]`: the embedded store behind the `store` sink and the SQL
/// endpoint: a write-ahead log on local disk, then Parquet files
/// partitioned by table and hour.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct StoreConfig {
    /// The local directory of the write-ahead log, and of the Parquet
    /// tables unless `url` puts them elsewhere. Created if missing; a
    /// relative path is taken from the directory Weir runs in. Default
    /// `"weir-data"`.
    #[serde(default = "default_store_path", deserialize_with = "values::path")]
    pub path: PathBuf,
    /// Where the Parquet tables live, as a URL: `"file:///var/lib/weir"` or
    /// `"s3://bucket/prefix"` (credentials and region from the usual `AWS_*`
    /// environment variables). Default: the `tables` folder under `path`.
    #[serde(default)]
    pub url: Option<String>,
    /// When the write-ahead log is forced to disk: `"always"` (before each
    /// acknowledgement, one fsync per group of batches: acknowledged data
    /// survives a power cut) or `"never"` (left to the operating system:
    /// acknowledged data survives a crash of Weir but not of the machine).
    /// Default `"always"`.
    #[serde(default)]
    pub fsync: FsyncPolicy,
    /// Write a table's in-memory rows to Parquet once they take this much
    /// memory: a size such as `"64MiB"`. Default `"64MiB"`.
    #[serde(default = "default_flush_size", deserialize_with = "values::byte_size")]
    pub flush_size: u64,
    /// ... or once the oldest of them has waited this long: a duration above
    /// zero such as `"60s"`. Default `"60s"`.
    #[serde(
        default = "default_flush_interval",
        deserialize_with = "values::positive_duration"
    )]
    pub flush_interval: Duration,
    /// How often small Parquet files of the same partition are merged: a
    /// duration above zero. Default `"5m"`.
    #[serde(
        default = "default_compaction_interval",
        deserialize_with = "values::positive_duration"
    )]
    pub compaction_interval: Duration,
    /// Files smaller than this are merged together by compaction: a size.
    /// Default `"64MiB"`.
    #[serde(
        default = "default_compaction_target",
        deserialize_with = "values::byte_size"
    )]
    pub compaction_target_size: u64,
    /// How long each table keeps data, by event time; whole hourly
    /// partitions older than this are deleted.
    #[serde(default)]
    pub retention: RetentionConfig,
}

/// When the write-ahead log is forced to disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FsyncPolicy {
    /// Before every acknowledgement (grouped: one fsync per write).
    #[default]
    Always,
    /// Never explicitly; the operating system writes back in its own time.
    Never,
}

/// `[store.retention]`: how long each table keeps data. Durations such as
/// `"7d"`, `"24h"`; the defaults are those of the stack Weir replaces.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct RetentionConfig {
    /// The `logs` table. Default `"7d"` (Loki's usual setting).
    #[serde(
        default = "default_logs_retention",
        deserialize_with = "values::positive_duration"
    )]
    pub logs: Duration,
    /// The `spans` table. Default `"24h"` (Tempo's default).
    #[serde(
        default = "default_spans_retention",
        deserialize_with = "values::positive_duration"
    )]
    pub spans: Duration,
    /// The `metrics` table. Default `"30d"`.
    #[serde(
        default = "default_metrics_retention",
        deserialize_with = "values::positive_duration"
    )]
    pub metrics: Duration,
    /// The `alerts` table. Default `"30d"`.
    #[serde(
        default = "default_metrics_retention",
        deserialize_with = "values::positive_duration"
    )]
    pub alerts: Duration,
    /// How often expired partitions are looked for. Default `"10m"`.
    #[serde(
        default = "default_retention_check",
        deserialize_with = "values::positive_duration"
    )]
    pub check_interval: Duration,
}

const HOUR: u64 = 3600;

fn default_store_path() -> PathBuf {
    PathBuf::from("weir-data")
}
fn default_flush_size() -> u64 {
    64 << 20
}
fn default_flush_interval() -> Duration {
    Duration::from_secs(60)
}
fn default_compaction_interval() -> Duration {
    Duration::from_secs(300)
}
fn default_compaction_target() -> u64 {
    64 << 20
}
fn default_logs_retention() -> Duration {
    Duration::from_secs(7 * 24 * HOUR)
}
fn default_spans_retention() -> Duration {
    Duration::from_secs(24 * HOUR)
}
fn default_metrics_retention() -> Duration {
    Duration::from_secs(30 * 24 * HOUR)
}
fn default_retention_check() -> Duration {
    Duration::from_secs(600)
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            logs: default_logs_retention(),
            spans: default_spans_retention(),
            metrics: default_metrics_retention(),
            alerts: default_metrics_retention(),
            check_interval: default_retention_check(),
        }
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            path: default_store_path(),
            url: None,
            fsync: FsyncPolicy::default(),
            flush_size: default_flush_size(),
            flush_interval: default_flush_interval(),
            compaction_interval: default_compaction_interval(),
            compaction_target_size: default_compaction_target(),
            retention: RetentionConfig::default(),
        }
    }
}

/// `[query]`: limits of the SQL endpoints, per query.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct QueryConfig {
    /// A query running longer than this is cancelled and answered with an
    /// error: a duration above zero. Default `"30s"`.
    #[serde(
        default = "default_query_timeout",
        deserialize_with = "values::positive_duration"
    )]
    pub timeout: Duration,
    /// The most memory one query may use for sorting, grouping and joining:
    /// a size. A query that needs more fails alone. Default `"1GiB"`.
    #[serde(
        default = "default_query_memory",
        deserialize_with = "values::byte_size"
    )]
    pub memory_limit: u64,
}

fn default_query_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_query_memory() -> u64 {
    1 << 30
}

impl Default for QueryConfig {
    fn default() -> Self {
        QueryConfig {
            timeout: default_query_timeout(),
            memory_limit: default_query_memory(),
        }
    }
}
