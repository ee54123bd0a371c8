//! What a user writes for an OTLP backend.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use weir_config::{Problem, Sensitive, values};

use crate::headers::UserHeaders;

crate::settings::external_sink_config! {
/// Where and how rows are sent with OTLP (an OpenTelemetry Collector,
/// Tempo, Jaeger, another Weir...).
///
/// ```toml
/// endpoint = "https://collector:4317"
/// protocol = "grpc"
/// compression = "gzip"
/// headers = { Authorization = { env = "OTLP_AUTHORIZATION" } }
/// tls = { ca_file = "/etc/weir/ca.pem" }
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct OtlpConfig {
    /// The receiver: `"http://collector:4317"` for gRPC; for HTTP the base
    /// URL, to which `/v1/traces`, `/v1/logs` and `/v1/metrics` are
    /// appended (`"http://collector:4318"`). `https://` uses TLS. Required.
    /// An endpoint that carries a secret may be read when Weir starts from
    /// an environment variable, `{ env = "OTLP_ENDPOINT" }`, or a file,
    /// `{ file = "/run/secrets/otlp-endpoint" }`. Logs, errors and metrics
    /// show only its scheme, host and port.
    #[serde(deserialize_with = "values::sensitive_http_url")]
    pub endpoint: Sensitive,
    /// `"grpc"`, `"http/protobuf"` or `"http/json"`, as the OpenTelemetry
    /// SDKs name them. Default `"grpc"`.
    #[serde(default)]
    pub protocol: Protocol,
    /// `"none"`, `"gzip"` or `"zstd"`. Default `"none"`.
    #[serde(default)]
    pub compression: Compression,
    /// HTTP headers (gRPC metadata) sent with every request, such as
    /// `{ "X-Team" = "checkout" }`. A value may instead be read when the
    /// pipeline starts from an environment variable or a file, such as
    /// `{ Authorization = { env = "OTLP_AUTHORIZATION" } }` or
    /// `{ Authorization = { file = "/run/secrets/token" } }`; one that
    /// cannot be read stops the start. Default: none.
    #[serde(default)]
    pub headers: BTreeMap<String, Sensitive>,
    /// Deprecated: write `headers = { NAME = { env = "VARIABLE" } }`
    /// instead (a warning at start says so).
    /// Headers whose value is read from an environment variable when the
    /// pipeline starts, header name -> variable name, such as
    /// `{ Authorization = "OTLP_AUTHORIZATION" }`. A variable that is not
    /// set stops the start. Default: none.
    #[serde(default)]
    pub headers_from_env: BTreeMap<String, String>,
    /// Deprecated: write `headers = { NAME = { file = "PATH" } }`
    /// instead (a warning at start says so).
    /// Headers whose value is the content of a file (surrounding
    /// whitespace trimmed), read when the pipeline starts, header name ->
    /// path. A file that cannot be read stops the start. Default: none.
    #[serde(default)]
    pub headers_from_file: BTreeMap<String, PathBuf>,
    /// The tenant, sent as `X-Scope-OrgID` (Tempo, Mimir and Loki's OTLP
    /// endpoints). Default: none (no header).
    #[serde(default)]
    pub tenant: Option<String>,
    /// TLS settings for an `https://` endpoint. Default: the system's
    /// trusted roots.
    #[serde(default)]
    pub tls: TlsConfig,
    /// How long one request may take, from connecting to reading the
    /// answer. Default `"10s"` (the OpenTelemetry SDKs' default).
    #[serde(
        default = "default_timeout",
        deserialize_with = "values::positive_duration"
    )]
    pub timeout: Duration,
    /// The most bytes of one request's protobuf message before
    /// compression; larger batches are cut into several requests. Default
    /// `"4MiB"`, the default limit of gRPC receivers (the Collector's,
    /// Weir's own). A single metric or record larger than this is not sent
    /// and is counted as rejected.
    #[serde(
        default = "default_max_request_bytes",
        deserialize_with = "values::request_size"
    )]
    pub max_request_bytes: u64,
}
}

/// The OTLP transport and encoding.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum Protocol {
    /// OTLP/gRPC.
    #[default]
    #[serde(rename = "grpc")]
    Grpc,
    /// OTLP/HTTP with protobuf bodies.
    #[serde(rename = "http/protobuf")]
    HttpProtobuf,
    /// OTLP/HTTP with JSON bodies.
    #[serde(rename = "http/json")]
    HttpJson,
}

/// The compression of requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    /// As is.
    #[default]
    None,
    /// gzip.
    Gzip,
    /// zstd.
    Zstd,
}

/// TLS towards an `https://` endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct TlsConfig {
    /// A PEM file of CA certificates trusted besides the system's roots
    /// (for a private CA), read when the pipeline starts. Default: none.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_max_request_bytes() -> u64 {
    4 * 1024 * 1024
}

/// The headers Weir sets itself: a user's value would break the protocol.
const RESERVED_HEADERS: [&str; 5] = [
    "content-encoding",
    "content-type",
    "content-length",
    "grpc-encoding",
    "grpc-timeout",
];

impl OtlpConfig {
    /// A config sending to `endpoint` with every default.
    pub fn new(endpoint: impl Into<String>) -> Self {
        OtlpConfig {
            endpoint: Sensitive::Plain(endpoint.into()),
            protocol: Protocol::default(),
            compression: Compression::default(),
            headers: BTreeMap::new(),
            headers_from_env: BTreeMap::new(),
            headers_from_file: BTreeMap::new(),
            tenant: None,
            tls: TlsConfig::default(),
            timeout: default_timeout(),
            max_request_bytes: default_max_request_bytes(),
            max_batch_records: crate::settings::default_max_batch_records(),
            max_batch_bytes: crate::settings::default_max_batch_bytes(),
            batch_timeout: crate::settings::default_batch_timeout(),
            max_in_flight: crate::settings::default_max_in_flight(),
            retry: crate::settings::RetryConfig::default(),
            queue: None,
        }
    }

    /// What is wrong across keys: a header named twice or set by the
    /// protocol, an empty tenant, a CA file for a plain `http://` endpoint.
    pub fn problems(&self) -> Vec<Problem> {
        let mut problems = self.user_headers().problems(&RESERVED_HEADERS, "OTLP");
        let plain = self.endpoint.plain();
        if let Some(endpoint) =
            plain.filter(|e| self.tls.ca_file.is_some() && !e.starts_with("https://"))
        {
            problems.push(Problem {
                key: "tls.ca_file".to_string(),
                message: format!("`{endpoint}` does not use TLS"),
                help: "write the endpoint with https://, or remove `tls`".to_string(),
            });
        }
        problems
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
    OtlpConfig,
    super::OtlpExporter,
    weir_core::SignalSet::TELEMETRY
);

#[cfg(test)]
mod tests {
    use super::*;

    /// Guarantees: a config with only `endpoint` takes every documented
    /// default.
    #[test]
    fn defaults() {
        let config: OtlpConfig =
            toml::from_str(r#"endpoint = "http://collector:4317""#).expect("valid");
        assert_eq!(config, OtlpConfig::new("http://collector:4317"));
        assert_eq!(config.protocol, Protocol::Grpc);
        assert_eq!(config.compression, Compression::None);
        assert_eq!(config.timeout, Duration::from_secs(10));
        assert_eq!(config.max_request_bytes, 4 * 1024 * 1024);
        assert!(config.problems().is_empty());
    }

    /// Guarantees: every key parses from TOML with the SDKs' protocol
    /// names; unknown keys are refused.
    #[test]
    fn every_key_parses_and_unknown_keys_are_refused() {
        let config: OtlpConfig = toml::from_str(
            r#"
            endpoint = "https://collector:4318"
            protocol = "http/json"
            compression = "zstd"
            headers = { "X-Team" = "a" }
            headers_from_env = { Authorization = "TOKEN" }
            headers_from_file = { "X-Key" = "/run/key" }
            tenant = "t1"
            tls = { ca_file = "/etc/ca.pem" }
            timeout = "3s"
            max_request_bytes = "1MiB"
            "#,
        )
        .expect("valid config");
        assert_eq!(config.protocol, Protocol::HttpJson);
        assert_eq!(config.compression, Compression::Zstd);
        assert_eq!(config.tls.ca_file, Some(PathBuf::from("/etc/ca.pem")));
        assert_eq!(config.timeout, Duration::from_secs(3));
        assert!(config.problems().is_empty());
        // The two deprecated keys work, and each is warned about.
        let warned: Vec<String> = config
            .user_headers()
            .deprecations()
            .into_iter()
            .map(|p| p.key)
            .collect();
        assert_eq!(warned, ["headers_from_env", "headers_from_file"]);
        let proto: OtlpConfig =
            toml::from_str("endpoint = \"http://c\"\nprotocol = \"http/protobuf\"").expect("valid");
        assert_eq!(proto.protocol, Protocol::HttpProtobuf);

        assert!(toml::from_str::<OtlpConfig>("endpoint = \"http://c\"\nretries = 3").is_err());
        assert!(
            toml::from_str::<OtlpConfig>("endpoint = \"http://c\"\nprotocol = \"udp\"").is_err()
        );
    }

    /// Guarantees: a protocol header and a CA file for plain HTTP are
    /// reported at their keys.
    #[test]
    fn conflicts_are_problems() {
        let mut config = OtlpConfig::new("http://collector:4317");
        config
            .headers
            .insert("grpc-encoding".to_string(), "gzip".into());
        config.tls.ca_file = Some(PathBuf::from("/ca.pem"));
        let keys: Vec<String> = config.problems().into_iter().map(|p| p.key).collect();
        assert_eq!(keys, ["headers.grpc-encoding", "tls.ca_file"]);
    }
}
