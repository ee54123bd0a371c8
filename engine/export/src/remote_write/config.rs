//! What a user writes for a Prometheus remote-write backend.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use weir_config::{Problem, Sensitive, values};

use crate::headers::UserHeaders;

crate::settings::external_sink_config! {
/// Where and how metrics are sent with Prometheus remote write 1.0
/// (Prometheus with `--web.enable-remote-write-receiver`, Mimir, Cortex,
/// Thanos receive, VictoriaMetrics...).
///
/// ```toml
/// url = "http://prometheus:9090/api/v1/write"
/// tenant = "team-a"
/// headers = { Authorization = { env = "PROM_AUTHORIZATION" } }
/// resource_to_labels = ["deployment.environment"]
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct PrometheusRemoteWriteConfig {
    /// The remote-write endpoint, such as
    /// `"http://prometheus:9090/api/v1/write"` or VictoriaMetrics'
    /// `"http://vm:8428/api/v1/write"`. Required. A URL that carries a
    /// secret (`https://user:token@...`) may be read when Weir starts from
    /// an environment variable, `{ env = "PROM_WRITE_URL" }`, or a file,
    /// `{ file = "/run/secrets/prom-write-url" }`. Logs, errors and metrics
    /// show only its scheme, host and port.
    #[serde(deserialize_with = "values::sensitive_http_url")]
    pub url: Sensitive,
    /// HTTP headers sent with every request, such as
    /// `{ "X-Team" = "checkout" }`. A value may instead be read when the
    /// pipeline starts from an environment variable or a file, such as
    /// `{ Authorization = { env = "PROM_AUTHORIZATION" } }` or
    /// `{ Authorization = { file = "/run/secrets/token" } }`; one that
    /// cannot be read stops the start. Default: none.
    #[serde(default)]
    pub headers: BTreeMap<String, Sensitive>,
    /// Deprecated: write `headers = { NAME = { env = "VARIABLE" } }`
    /// instead (a warning at start says so).
    /// HTTP headers whose value is read from an environment variable when
    /// the pipeline starts, header name -> variable name, such as
    /// `{ Authorization = "PROM_AUTHORIZATION" }`, so secrets stay out of
    /// the file. A variable that is not set stops the start. Default: none.
    #[serde(default)]
    pub headers_from_env: BTreeMap<String, String>,
    /// Deprecated: write `headers = { NAME = { file = "PATH" } }`
    /// instead (a warning at start says so).
    /// HTTP headers whose value is the content of a file (surrounding
    /// whitespace trimmed), read when the pipeline starts, header name ->
    /// path, such as `{ Authorization = "/run/secrets/prom-auth" }`. A file
    /// that cannot be read stops the start. Default: none.
    #[serde(default)]
    pub headers_from_file: BTreeMap<String, PathBuf>,
    /// How long one request may take, from connecting to reading the
    /// answer. Default `"30s"`.
    #[serde(
        default = "default_timeout",
        deserialize_with = "values::positive_duration"
    )]
    pub timeout: Duration,
    /// The tenant, sent as `X-Scope-OrgID` (Mimir, Cortex, Loki's
    /// convention). Default: none (no header).
    #[serde(default)]
    pub tenant: Option<String>,
    /// Resource attributes copied onto every series of the resource as
    /// labels (`deployment.environment` -> `deployment_environment`), and
    /// left out of `target_info`. A point attribute of the same name wins.
    /// Default: none (`service.name`, `service.namespace` and
    /// `service.instance.id` always become `job` and `instance`).
    #[serde(default)]
    pub resource_to_labels: Vec<String>,
    /// How exponential histograms are sent: `"native"` (Prometheus native
    /// histograms, in remote write 1.0's `histograms` field; Prometheus
    /// needs `--enable-feature=native-histograms`) or `"classic"`
    /// (`_bucket{le}`, `_sum` and `_count` series, one bucket per
    /// exponential bucket). Default `"native"`.
    #[serde(default)]
    pub histograms: HistogramMode,
    /// A series this exporter sent and has not seen since for this long
    /// gets one stale marker (Prometheus' staleness NaN), so queries stop
    /// showing it at once instead of after 5 minutes of lookback. Default
    /// `"5m"`. At most 100000 series are tracked; series beyond that get
    /// no marker.
    #[serde(
        default = "default_stale_after",
        deserialize_with = "values::positive_duration"
    )]
    pub stale_after: Duration,
    /// The most bytes of one request's protobuf body before snappy; larger
    /// batches are cut into several requests. Default `"4MiB"`.
    #[serde(
        default = "default_max_request_bytes",
        deserialize_with = "values::request_size"
    )]
    pub max_request_bytes: u64,
    /// The most samples (float samples and histograms) in one request,
    /// from 1 to 1000000. Default 2000 (Prometheus' `max_samples_per_send`).
    #[serde(
        default = "default_max_samples_per_request",
        deserialize_with = "samples_per_request"
    )]
    pub max_samples_per_request: usize,
}
}

/// How exponential histograms are sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HistogramMode {
    /// Prometheus native histograms.
    #[default]
    Native,
    /// Classic `_bucket{le}` / `_sum` / `_count` series.
    Classic,
}

fn default_timeout() -> Duration {
    Duration::from_secs(30)
}

fn default_stale_after() -> Duration {
    Duration::from_secs(5 * 60)
}

fn default_max_request_bytes() -> u64 {
    4 * 1024 * 1024
}

fn default_max_samples_per_request() -> usize {
    2000
}

fn samples_per_request<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    values::count(d, 1, 1_000_000)
}

/// The headers Weir sets itself: a user's value would break the protocol.
const RESERVED_HEADERS: [&str; 4] = [
    "content-encoding",
    "content-type",
    "x-prometheus-remote-write-version",
    "content-length",
];

impl PrometheusRemoteWriteConfig {
    /// A config sending to `url` with every default.
    pub fn new(url: impl Into<String>) -> Self {
        PrometheusRemoteWriteConfig {
            url: Sensitive::Plain(url.into()),
            headers: BTreeMap::new(),
            headers_from_env: BTreeMap::new(),
            headers_from_file: BTreeMap::new(),
            timeout: default_timeout(),
            tenant: None,
            resource_to_labels: Vec::new(),
            histograms: HistogramMode::default(),
            stale_after: default_stale_after(),
            max_request_bytes: default_max_request_bytes(),
            max_samples_per_request: default_max_samples_per_request(),
            max_batch_records: crate::settings::default_max_batch_records(),
            max_batch_bytes: crate::settings::default_max_batch_bytes(),
            batch_timeout: crate::settings::default_batch_timeout(),
            max_in_flight: crate::settings::default_max_in_flight(),
            retry: crate::settings::RetryConfig::default(),
            queue: None,
        }
    }

    /// What is wrong across keys: a header named twice, a header Weir sets
    /// itself, an empty tenant.
    pub fn problems(&self) -> Vec<Problem> {
        self.user_headers()
            .problems(&RESERVED_HEADERS, "the remote-write protocol")
    }

    /// The user's headers and tenant.
    pub(crate) fn user_headers(&self) -> UserHeaders<'_> {
        UserHeaders {
            headers: &self.headers,
            from_env: &self.headers_from_env,
            from_file: &self.headers_from_file,
            tenant: self.tenant.as_deref(),
        }
    }
}

crate::export_sink_config!(
    PrometheusRemoteWriteConfig,
    super::RemoteWriteExporter,
    weir_core::SignalSet::only(weir_core::Signal::Metrics)
);

#[cfg(test)]
mod tests {
    use super::*;

    /// Guarantees: a config with only `url` takes every documented default.
    #[test]
    fn defaults() {
        let config: PrometheusRemoteWriteConfig =
            toml::from_str(r#"url = "http://prom:9090/api/v1/write""#).expect("valid config");
        assert_eq!(
            config,
            PrometheusRemoteWriteConfig::new("http://prom:9090/api/v1/write")
        );
        assert_eq!(config.timeout, Duration::from_secs(30));
        assert_eq!(config.stale_after, Duration::from_secs(300));
        assert_eq!(config.max_request_bytes, 4 * 1024 * 1024);
        assert_eq!(config.max_samples_per_request, 2000);
        assert_eq!(config.histograms, HistogramMode::Native);
        assert!(config.problems().is_empty());
    }

    /// Guarantees: every key parses from TOML, with human durations and
    /// sizes; unknown keys are refused.
    #[test]
    fn every_key_parses_and_unknown_keys_are_refused() {
        let config: PrometheusRemoteWriteConfig = toml::from_str(
            r#"
            url = "https://mimir:8080/api/v1/push"
            headers = { "X-Team" = "a" }
            headers_from_env = { Authorization = "TOKEN" }
            headers_from_file = { "X-Key" = "/run/key" }
            timeout = "5s"
            tenant = "t1"
            resource_to_labels = ["deployment.environment"]
            histograms = "classic"
            stale_after = "1m"
            max_request_bytes = "1MiB"
            max_samples_per_request = 500
            "#,
        )
        .expect("valid config");
        assert_eq!(config.timeout, Duration::from_secs(5));
        assert_eq!(config.histograms, HistogramMode::Classic);
        assert_eq!(config.max_request_bytes, 1024 * 1024);
        assert_eq!(config.max_samples_per_request, 500);
        assert_eq!(config.tenant.as_deref(), Some("t1"));
        assert!(config.problems().is_empty());

        let unknown = toml::from_str::<PrometheusRemoteWriteConfig>(
            r#"
            url = "http://p/api/v1/write"
            compression = "zstd"
            "#,
        );
        assert!(unknown.is_err());
        let bad_url = toml::from_str::<PrometheusRemoteWriteConfig>(r#"url = "prom:9090""#);
        assert!(bad_url.is_err());
    }

    /// Guarantees: a header set twice, a protocol header and a tenant given
    /// both ways are reported at the key to fix.
    #[test]
    fn conflicting_headers_are_problems() {
        let mut config = PrometheusRemoteWriteConfig::new("http://p/api/v1/write");
        config
            .headers
            .insert("Authorization".to_string(), "x".into());
        config
            .headers_from_env
            .insert("authorization".to_string(), "TOKEN".to_string());
        config
            .headers
            .insert("Content-Encoding".to_string(), "gzip".into());
        config
            .headers
            .insert("X-Scope-OrgID".to_string(), "a".into());
        config.tenant = Some("b".to_string());
        let keys: Vec<String> = config.problems().into_iter().map(|p| p.key).collect();
        assert_eq!(
            keys,
            [
                "headers.Content-Encoding",
                "headers.X-Scope-OrgID",
                "headers_from_env.authorization"
            ]
        );
    }
}
