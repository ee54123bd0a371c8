//! What a user writes for a Loki backend.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use weir_config::{Problem, Sensitive, values};

use crate::headers::UserHeaders;

crate::settings::external_sink_config! {
/// Where and how logs are pushed to Grafana Loki (or anything taking its
/// push API).
///
/// ```toml
/// url = "http://loki:3100"          # posts to /loki/api/v1/push
/// tenant = "team-a"
/// labels = ["service.name", "k8s.namespace.name"]
/// headers = { Authorization = { env = "LOKI_AUTHORIZATION" } }
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct LokiConfig {
    /// Loki's push endpoint, such as `"http://loki:3100/loki/api/v1/push"`;
    /// a URL without a path (`"http://loki:3100"`) gets
    /// `/loki/api/v1/push`. Required. A URL that carries a secret
    /// (`https://user:token@...`) may be read when Weir starts from an
    /// environment variable, `{ env = "LOKI_URL" }`, or a file,
    /// `{ file = "/run/secrets/loki-url" }`. Logs, errors and metrics show
    /// only its scheme, host and port.
    #[serde(deserialize_with = "values::sensitive_http_url")]
    pub url: Sensitive,
    /// How requests are written: `"protobuf"` (a snappy-compressed
    /// `logproto.PushRequest`, as Promtail and Alloy send) or `"json"`.
    /// Default `"protobuf"`.
    #[serde(default)]
    pub encoding: Encoding,
    /// The compression of `"json"` requests: `"none"` or `"gzip"`.
    /// Protobuf requests are always snappy-compressed, as Loki requires.
    /// Default `"none"`.
    #[serde(default)]
    pub compression: Compression,
    /// The resource attributes that become stream labels, with every
    /// character Prometheus does not allow in a label name turned into `_`
    /// (`service.name` -> `service_name`), as Loki's own OTLP ingestion
    /// names them. Every other attribute goes to structured metadata (or
    /// the line). Keep this list short: each distinct label set is a
    /// stream of its own in Loki. Default `["service.name",
    /// "service.namespace", "deployment.environment"]`.
    #[serde(default = "default_labels")]
    pub labels: Vec<String>,
    /// Whether what is not a label (other resource attributes, the
    /// record's attributes, trace and span ids, the scope) is sent as
    /// Loki 3's structured metadata; `false` appends it to the line as
    /// logfmt `key=value` pairs instead, for Loki 2 or a Loki with
    /// structured metadata off. Default `true`.
    #[serde(default = "default_structured_metadata")]
    pub structured_metadata: bool,
    /// The tenant, sent as `X-Scope-OrgID`. Default: none (no header, as a
    /// single-tenant Loki expects).
    #[serde(default)]
    pub tenant: Option<String>,
    /// HTTP headers sent with every request, such as
    /// `{ "X-Team" = "checkout" }`. A value may instead be read when the
    /// pipeline starts from an environment variable or a file, such as
    /// `{ Authorization = { env = "LOKI_AUTHORIZATION" } }` or
    /// `{ Authorization = { file = "/run/secrets/token" } }`; one that
    /// cannot be read stops the start. Default: none.
    #[serde(default)]
    pub headers: BTreeMap<String, Sensitive>,
    /// Deprecated: write `headers = { NAME = { env = "VARIABLE" } }`
    /// instead (a warning at start says so).
    /// HTTP headers whose value is read from an environment variable when
    /// the pipeline starts, header name -> variable name, such as
    /// `{ Authorization = "LOKI_AUTHORIZATION" }`. A variable that is not
    /// set stops the start. Default: none.
    #[serde(default)]
    pub headers_from_env: BTreeMap<String, String>,
    /// Deprecated: write `headers = { NAME = { file = "PATH" } }`
    /// instead (a warning at start says so).
    /// HTTP headers whose value is the content of a file (surrounding
    /// whitespace trimmed), read when the pipeline starts, header name ->
    /// path. A file that cannot be read stops the start. Default: none.
    #[serde(default)]
    pub headers_from_file: BTreeMap<String, PathBuf>,
    /// How long one request may take, from connecting to reading the
    /// answer. Default `"30s"`.
    #[serde(
        default = "default_timeout",
        deserialize_with = "values::positive_duration"
    )]
    pub timeout: Duration,
    /// The most bytes of one request's body before compression; larger
    /// batches are cut into several requests. Default `"1MiB"` (Promtail's
    /// and Alloy's batch size), well under Loki's 4 MiB gRPC limit.
    #[serde(
        default = "default_max_request_bytes",
        deserialize_with = "values::request_size"
    )]
    pub max_request_bytes: u64,
}
}

/// How a push request is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// `logproto.PushRequest`, snappy block-compressed.
    #[default]
    Protobuf,
    /// Loki's JSON push body.
    Json,
}

/// The compression of a JSON push request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    /// As is.
    #[default]
    None,
    /// `Content-Encoding: gzip`.
    Gzip,
}

fn default_labels() -> Vec<String> {
    [
        "service.name",
        "service.namespace",
        "deployment.environment",
    ]
    .map(String::from)
    .to_vec()
}

fn default_structured_metadata() -> bool {
    true
}

fn default_timeout() -> Duration {
    Duration::from_secs(30)
}

fn default_max_request_bytes() -> u64 {
    1024 * 1024
}

/// The headers Weir sets itself: a user's value would break the protocol.
const RESERVED_HEADERS: [&str; 3] = ["content-encoding", "content-type", "content-length"];

/// The path of Loki's push API, for a URL given without one.
const PUSH_PATH: &str = "/loki/api/v1/push";

impl LokiConfig {
    /// A config pushing to `url` with every default.
    pub fn new(url: impl Into<String>) -> Self {
        LokiConfig {
            url: Sensitive::Plain(url.into()),
            encoding: Encoding::default(),
            compression: Compression::default(),
            labels: default_labels(),
            structured_metadata: default_structured_metadata(),
            tenant: None,
            headers: BTreeMap::new(),
            headers_from_env: BTreeMap::new(),
            headers_from_file: BTreeMap::new(),
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

    /// The URL requests are posted to: `url` (resolved), or `url` with
    /// `/loki/api/v1/push` when it has no path.
    pub fn push_url(url: &str) -> String {
        let after_scheme = url.split_once("://").map_or("", |(_, rest)| rest);
        match after_scheme.find('/') {
            None => format!("{url}{PUSH_PATH}"),
            Some(at) if &after_scheme[at..] == "/" => {
                format!("{}{PUSH_PATH}", url.trim_end_matches('/'))
            }
            Some(_) => url.to_string(),
        }
    }

    /// What is wrong across keys: gzip asked for protobuf, a label named
    /// twice, a header named twice or set by the protocol, an empty
    /// tenant.
    pub fn problems(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        if self.encoding == Encoding::Protobuf && self.compression != Compression::None {
            problems.push(Problem {
                key: "compression".to_string(),
                message: "protobuf pushes are always snappy-compressed; `compression` applies \
                          to `encoding = \"json\"` only"
                    .to_string(),
                help: "remove `compression`, or set `encoding = \"json\"`".to_string(),
            });
        }
        let mut seen = BTreeMap::new();
        for (i, name) in self.labels.iter().enumerate() {
            if let Some(first) = seen.insert(super::streams::label_name(name), name) {
                problems.push(Problem {
                    key: format!("labels[{i}]"),
                    message: format!(
                        "`{name}` makes the same label as `{first}` (`{}`)",
                        super::streams::label_name(name)
                    ),
                    help: "keep one of them".to_string(),
                });
            }
        }
        problems.extend(
            self.user_headers()
                .problems(&RESERVED_HEADERS, "Loki's push API"),
        );
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
    LokiConfig,
    super::LokiExporter,
    weir_core::SignalSet::only(weir_core::Signal::Logs)
);

#[cfg(test)]
mod tests {
    use super::*;

    /// Guarantees: a config with only `url` takes every documented default,
    /// and a URL without a path posts to Loki's push API.
    #[test]
    fn defaults() {
        let config: LokiConfig = toml::from_str(r#"url = "http://loki:3100""#).expect("valid");
        assert_eq!(config, LokiConfig::new("http://loki:3100"));
        assert_eq!(config.encoding, Encoding::Protobuf);
        assert_eq!(config.compression, Compression::None);
        assert_eq!(
            config.labels,
            [
                "service.name",
                "service.namespace",
                "deployment.environment"
            ]
        );
        assert!(config.structured_metadata);
        assert_eq!(config.timeout, Duration::from_secs(30));
        assert_eq!(config.max_request_bytes, 1024 * 1024);
        assert_eq!(
            LokiConfig::push_url(config.url.plain().expect("plain")),
            "http://loki:3100/loki/api/v1/push"
        );
        assert!(config.problems().is_empty());

        let slash = LokiConfig::new("https://loki:3100/");
        assert_eq!(
            LokiConfig::push_url(slash.url.plain().expect("plain")),
            "https://loki:3100/loki/api/v1/push"
        );
        let path = LokiConfig::new("http://gw/tenant-a/loki/api/v1/push");
        assert_eq!(
            LokiConfig::push_url(path.url.plain().expect("plain")),
            "http://gw/tenant-a/loki/api/v1/push"
        );
    }

    /// Guarantees: every key parses from TOML; unknown keys and bad URLs
    /// are refused.
    #[test]
    fn every_key_parses_and_unknown_keys_are_refused() {
        let config: LokiConfig = toml::from_str(
            r#"
            url = "http://loki:3100/loki/api/v1/push"
            encoding = "json"
            compression = "gzip"
            labels = ["service.name", "k8s.namespace.name"]
            structured_metadata = false
            tenant = "t1"
            headers = { "X-Team" = "a" }
            headers_from_env = { Authorization = "TOKEN" }
            headers_from_file = { "X-Key" = "/run/key" }
            timeout = "5s"
            max_request_bytes = "256KiB"
            "#,
        )
        .expect("valid config");
        assert_eq!(config.encoding, Encoding::Json);
        assert_eq!(config.compression, Compression::Gzip);
        assert!(!config.structured_metadata);
        assert_eq!(config.max_request_bytes, 256 * 1024);
        assert!(config.problems().is_empty());

        let unknown = toml::from_str::<LokiConfig>("url = \"http://l\"\nbatch_wait = \"1s\"");
        assert!(unknown.is_err());
        assert!(toml::from_str::<LokiConfig>(r#"url = "loki:3100""#).is_err());
    }

    /// Guarantees: gzip with protobuf, two attributes making one label, a
    /// protocol header and a tenant given twice are reported at their keys.
    #[test]
    fn conflicts_are_problems() {
        let mut config = LokiConfig::new("http://loki:3100");
        config.compression = Compression::Gzip;
        config.labels.push("service_name".to_string());
        config
            .headers
            .insert("Content-Type".to_string(), "text/plain".into());
        config
            .headers
            .insert("X-Scope-OrgID".to_string(), "a".into());
        config.tenant = Some("b".to_string());
        let keys: Vec<String> = config.problems().into_iter().map(|p| p.key).collect();
        assert_eq!(
            keys,
            [
                "compression",
                "labels[3]",
                "headers.Content-Type",
                "headers.X-Scope-OrgID"
            ]
        );
    }
}
