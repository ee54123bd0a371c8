//! The engine-wide tables: `[api]`, `[runtime]`, `[store]` and `[query]`.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::secret::Secret;
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
    /// Serve HTTPS with this certificate and key (PEM files), such as
    /// `{ cert_file = "weir.crt", key_file = "weir.key" }`. Default: plain
    /// HTTP.
    #[serde(default)]
    pub tls: Option<ServerTlsConfig>,
}

impl ApiConfig {
    /// [`external_url`](Self::external_url), or the scheme (`https://` with
    /// `tls`) and the address.
    pub fn external_url(&self) -> String {
        self.external_url
            .clone()
            .unwrap_or_else(|| format!("{}://{}", self.scheme(), self.address))
    }

    /// `https` with `tls`, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
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
            tls: None,
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
    /// The most resident memory Weir should use, as the OpenTelemetry
    /// Collector's `memory_limiter` sets it: a size such as `"2GiB"`. It
    /// is read every 100 ms; from `memory_limit - memory_spike_limit` on,
    /// the sources take no new data (OTLP answers 503 / `UNAVAILABLE` with
    /// a retry hint, Kafka stops fetching) until it falls back, while what
    /// was accepted goes on to the sinks. Set it well under the memory
    /// the machine or container gives Weir. Default: no limit.
    #[serde(default, deserialize_with = "values::optional_byte_size")]
    pub memory_limit: Option<u64>,
    /// The headroom under `memory_limit` for what arrives between two
    /// reads and what is already in flight: a size. Default a fifth of
    /// `memory_limit`. Only with `memory_limit`, and less than it.
    #[serde(default, deserialize_with = "values::optional_byte_size")]
    pub memory_spike_limit: Option<u64>,
}

impl RuntimeConfig {
    /// The spike limit in force: `memory_spike_limit`, or a fifth of
    /// `memory_limit` (0 without a limit).
    pub fn spike_limit(&self) -> u64 {
        match (self.memory_limit, self.memory_spike_limit) {
            (_, Some(spike)) => spike,
            (Some(limit), None) => limit / 5,
            (None, None) => 0,
        }
    }
}

fn default_shutdown_timeout() -> Duration {
    Duration::from_secs(30)
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            shutdown_timeout: default_shutdown_timeout(),
            worker_threads: 0,
            memory_limit: None,
            memory_spike_limit: None,
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
    /// partitions older than this are deleted. A record already older than
    /// its table's retention when it arrives is not stored: it is refused
    /// and reported to the sender (OTLP `partial_success`).
    #[serde(default)]
    pub retention: RetentionConfig,
    /// How far past now each table accepts event times; a record further
    /// in the future is not stored: it is refused and reported to the
    /// sender (OTLP `partial_success`).
    #[serde(default)]
    pub max_future: MaxFutureConfig,
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

/// `[store.max_future]`: how far past now each table accepts event
/// times, to absorb clock skew between senders and Weir. A record whose
/// time is later than now plus this is refused (a clock set decades ahead,
/// a timestamp in the wrong unit), so that it cannot create partitions no
/// query or retention will reach for years. Durations such as `"1h"`,
/// `"15m"`; `"0s"` refuses every time after now.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct MaxFutureConfig {
    /// The `logs` table. Default `"1h"`.
    #[serde(default = "default_max_future", deserialize_with = "values::duration")]
    pub logs: Duration,
    /// The `spans` table. Default `"1h"`.
    #[serde(default = "default_max_future", deserialize_with = "values::duration")]
    pub spans: Duration,
    /// The `metrics` table. Default `"1h"`.
    #[serde(default = "default_max_future", deserialize_with = "values::duration")]
    pub metrics: Duration,
    /// The `alerts` table. Default `"1h"`.
    #[serde(default = "default_max_future", deserialize_with = "values::duration")]
    pub alerts: Duration,
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
fn default_max_future() -> Duration {
    Duration::from_secs(HOUR)
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

impl Default for MaxFutureConfig {
    fn default() -> Self {
        MaxFutureConfig {
            logs: default_max_future(),
            spans: default_max_future(),
            metrics: default_max_future(),
            alerts: default_max_future(),
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
            max_future: MaxFutureConfig::default(),
        }
    }
}

/// `[query]`: the SQL endpoints (HTTP on the API server, and optionally
/// the Postgres wire protocol and Arrow Flight SQL), their limits and who
/// may use them.
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
    /// The most memory all running queries may use together, over every
    /// endpoint: a size. A query that would take more fails, and the
    /// others go on. Default `"2GiB"`.
    #[serde(
        default = "default_total_query_memory",
        deserialize_with = "values::byte_size"
    )]
    pub total_memory_limit: u64,
    /// How many queries may run at once, over every endpoint. A query
    /// beyond it waits for a slot (at most `queue_timeout`), then fails
    /// with an error saying so. Default `16`.
    #[serde(default = "default_max_concurrent_queries")]
    pub max_concurrent: usize,
    /// How long a query waits for a slot when `max_concurrent` queries run:
    /// a duration above zero. The wait counts in the query's `timeout`.
    /// Default `"5s"`.
    #[serde(
        default = "default_queue_timeout",
        deserialize_with = "values::positive_duration"
    )]
    pub queue_timeout: Duration,
    /// Who may query: users with passwords (Postgres, and Flight SQL's
    /// handshake) and bearer tokens (HTTP and Flight SQL). With none, the
    /// endpoints are open, which Weir allows only on loopback addresses.
    #[serde(default)]
    pub auth: QueryAuthConfig,
    /// `[query.postgres]`: serve the Postgres wire protocol (psql, Grafana's
    /// PostgreSQL data source, psycopg, JDBC). Off unless the table is given.
    #[serde(default)]
    pub postgres: Option<PostgresConfig>,
    /// `[query.flight]`: serve Arrow Flight SQL (ADBC, pyarrow.flight). Off
    /// unless the table is given.
    #[serde(default)]
    pub flight: Option<FlightConfig>,
}

/// `[query.auth]`: the credentials the SQL endpoints accept. Secrets are
/// read from the environment or from files when Weir starts, never
/// written in the pipeline file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct QueryAuthConfig {
    /// Users and their passwords, such as
    /// `[{ name = "grafana", password = { env = "WEIR_GRAFANA_PASSWORD" } }]`.
    /// Postgres clients sign in with them (SCRAM-SHA-256), Flight SQL
    /// clients with basic authentication, HTTP clients with
    /// `Authorization: Basic`.
    #[serde(default)]
    pub users: Vec<QueryUser>,
    /// Bearer tokens, such as `[{ file = "/run/secrets/weir-sql-token" }]`,
    /// accepted as `Authorization: Bearer TOKEN` by HTTP and Flight SQL.
    #[serde(default)]
    pub tokens: Vec<Secret>,
}

impl QueryAuthConfig {
    /// Whether any credential is configured.
    pub fn is_enabled(&self) -> bool {
        !self.users.is_empty() || !self.tokens.is_empty()
    }
}

/// A user of the SQL endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct QueryUser {
    /// The user name.
    pub name: String,
    /// Where the password is read from.
    pub password: Secret,
}

/// A certificate and its private key, both PEM files, for serving TLS.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct ServerTlsConfig {
    /// The certificate chain, PEM.
    pub cert_file: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1), PEM.
    pub key_file: PathBuf,
}

/// `[query.postgres]`: the Postgres wire protocol endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct PostgresConfig {
    /// The `"IP:PORT"` to listen on. Default `"127.0.0.1:5432"`. Any
    /// address other than a loopback one needs `[query.auth] users`.
    #[serde(
        default = "default_postgres_address",
        deserialize_with = "values::socket_addr"
    )]
    pub address: SocketAddr,
    /// The most client connections at once; more are refused. Default `64`.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Serve TLS with this certificate (clients asking `sslmode=require`).
    /// Default: no TLS.
    #[serde(default)]
    pub tls: Option<ServerTlsConfig>,
}

/// `[query.flight]`: the Arrow Flight SQL endpoint (gRPC).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct FlightConfig {
    /// The `"IP:PORT"` to listen on. Default `"127.0.0.1:50051"`. Any
    /// address other than a loopback one needs `[query.auth]`.
    #[serde(
        default = "default_flight_address",
        deserialize_with = "values::socket_addr"
    )]
    pub address: SocketAddr,
    /// Serve TLS with this certificate. Default: no TLS.
    #[serde(default)]
    pub tls: Option<ServerTlsConfig>,
}

fn default_query_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_query_memory() -> u64 {
    1 << 30
}
fn default_total_query_memory() -> u64 {
    2 << 30
}
fn default_max_concurrent_queries() -> usize {
    16
}
fn default_queue_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_max_connections() -> usize {
    64
}
fn default_postgres_address() -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 5432))
}
fn default_flight_address() -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 50051))
}

impl QueryConfig {
    /// What is wrong with exposing the SQL endpoints as configured: an
    /// endpoint bound to an address other than loopback while no credential
    /// is configured. `http` is where the HTTP endpoint listens, when SQL is
    /// served there.
    pub fn exposure_problems(&self, http: Option<SocketAddr>) -> Vec<String> {
        let mut problems = Vec::new();
        let open = |address: &SocketAddr| !address.ip().is_loopback();
        if self.max_concurrent == 0 {
            problems.push("`[query] max_concurrent` must be at least 1".to_string());
        }
        if let Some(postgres) = &self.postgres {
            if open(&postgres.address) && self.auth.users.is_empty() {
                problems.push(format!(
                    "`[query.postgres] address` is {}, reachable from other hosts, but \
                     `[query.auth] users` is empty: add a user with a password, or listen on \
                     127.0.0.1",
                    postgres.address
                ));
            }
            if postgres.max_connections == 0 {
                problems.push("`[query.postgres] max_connections` must be at least 1".to_string());
            }
        }
        if let Some(flight) = &self.flight
            && open(&flight.address)
            && !self.auth.is_enabled()
        {
            problems.push(format!(
                "`[query.flight] address` is {}, reachable from other hosts, but `[query.auth]` \
                 has no users or tokens: add one, or listen on 127.0.0.1",
                flight.address
            ));
        }
        if let Some(address) = http
            && open(&address)
            && !self.auth.is_enabled()
        {
            problems.push(format!(
                "`[api] address` is {address}, reachable from other hosts, and serves SQL at \
                 /api/v1/sql, but `[query.auth]` has no users or tokens: add one, or listen on \
                 127.0.0.1"
            ));
        }
        problems
    }
}

impl Default for QueryConfig {
    fn default() -> Self {
        QueryConfig {
            timeout: default_query_timeout(),
            memory_limit: default_query_memory(),
            total_memory_limit: default_total_query_memory(),
            max_concurrent: default_max_concurrent_queries(),
            queue_timeout: default_queue_timeout(),
            auth: QueryAuthConfig::default(),
            postgres: None,
            flight: None,
        }
    }
}
