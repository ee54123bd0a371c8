//! `type = "otlp"`: what a user writes for the OTLP receiver, and how it
//! is built.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use weir_config::{BuildContext, ComponentConfig, Problem, values};
use weir_core::{Built, ComponentError, SignalSet};

use super::OtlpSource;

/// `type = "otlp"`: receives OTLP logs, spans and metrics over gRPC
/// (`/opentelemetry.proto.collector.*.v1.*Service/Export`) and HTTP
/// (`POST /v1/logs`, `/v1/traces`, `/v1/metrics`, protobuf or JSON).
///
/// A request is answered only once every sink has acknowledged its data;
/// when the pipeline is full it is refused with a retryable status so that
/// clients back off instead of the engine buffering without bound.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct OtlpSourceConfig {
    /// Whether to serve OTLP/gRPC. Default `true`. At least one of `grpc`
    /// and `http` must be on.
    #[serde(default = "default_true")]
    pub grpc: bool,
    /// The `"IP:PORT"` the gRPC listener binds. Default `"127.0.0.1:4317"`;
    /// use `"0.0.0.0:4317"` to accept connections from other machines.
    #[serde(
        default = "default_grpc_address",
        deserialize_with = "values::socket_addr"
    )]
    pub grpc_address: SocketAddr,
    /// Whether to serve OTLP/HTTP. Default `true`.
    #[serde(default = "default_true")]
    pub http: bool,
    /// The `"IP:PORT"` the HTTP listener binds. Default `"127.0.0.1:4318"`.
    #[serde(
        default = "default_http_address",
        deserialize_with = "values::socket_addr"
    )]
    pub http_address: SocketAddr,
    /// The largest request accepted, in bytes after decompression: a size
    /// such as `"8MiB"` or `"4MB"`, or an integer number of bytes (1 byte to
    /// 4GiB). Default `"8MiB"`. Larger requests are refused with HTTP 413 /
    /// gRPC `RESOURCE_EXHAUSTED`.
    #[serde(
        default = "default_max_request_size",
        deserialize_with = "values::request_size"
    )]
    pub max_request_size: u64,
    /// The most memory one request may take once decoded, bounded from its
    /// bytes before decoding it, and once converted, estimated before
    /// converting it: the decoded request plus its rows, where every
    /// record carries a copy of its resource and scope attributes (and a
    /// data point its metric's metadata). A size such as `"128MiB"` or an
    /// integer number of bytes. Default `"128MiB"`; at least
    /// `max_request_size`. Larger requests are refused with HTTP 413 / gRPC
    /// `RESOURCE_EXHAUSTED`: send fewer records per request, or fewer
    /// resource attributes.
    #[serde(
        default = "default_max_expanded_request_size",
        deserialize_with = "values::byte_size"
    )]
    pub max_expanded_request_size: u64,
    /// The most memory all requests in flight may take together: bodies
    /// while they arrive, then each request's estimate (as for
    /// `max_expanded_request_size`) until it is answered. A size such as
    /// `"512MiB"`. Default `"512MiB"`; at least `max_expanded_request_size`.
    /// A request that finds no room within `queue_wait` is refused with
    /// HTTP 503 / gRPC `UNAVAILABLE` and a retry hint.
    #[serde(
        default = "default_max_in_flight_bytes",
        deserialize_with = "values::byte_size"
    )]
    pub max_in_flight_bytes: u64,
    /// How many requests may be in progress at once (1 to 1000000), counted
    /// from when a request's body has fully arrived until it is answered.
    /// Default `512`. Beyond this, requests are refused with HTTP 503 /
    /// gRPC `UNAVAILABLE` and a retry hint.
    #[serde(
        default = "default_max_concurrent_requests",
        deserialize_with = "values::concurrent_requests"
    )]
    pub max_concurrent_requests: usize,
    /// How many requests one HTTP/2 connection may have open at once, on
    /// the gRPC and on the HTTP listener (1 to 10000). Default `100`.
    #[serde(
        default = "default_max_concurrent_streams",
        deserialize_with = "max_concurrent_streams"
    )]
    pub max_concurrent_streams: u32,
    /// How many connections may be open at once on each listener: the
    /// gRPC listener and the HTTP listener have this many each (1 to
    /// 1000000). Default `4096`. At the limit a listener accepts no more
    /// until a connection closes: new clients wait in the system's backlog
    /// of pending connections (and time out there if none closes), the
    /// metric `weir_otlp_connection_limit_reached_total` counts it, and a
    /// warning says so at most once a minute. Keep it below the process's
    /// limit on open files (`ulimit -n`).
    #[serde(
        default = "default_max_connections",
        deserialize_with = "max_connections"
    )]
    pub max_connections: usize,
    /// The longest a client may take to send a request's headers (HTTP/1),
    /// and then its whole body: a duration above zero. Default `"10s"`.
    /// A client slower than this gets HTTP 408 / gRPC `DEADLINE_EXCEEDED`
    /// and its connection is closed, so slow senders cannot hold the
    /// receiver's memory or connections for long. The same time bounds
    /// a new connection's first bytes and, on HTTP/2, each frame and each
    /// header block (HEADERS and its CONTINUATION frames) once begun: a
    /// client that leaves one unfinished longer is disconnected. An HTTP/2
    /// connection idle between frames is kept open.
    #[serde(
        default = "default_read_timeout",
        deserialize_with = "values::positive_duration"
    )]
    pub read_timeout: Duration,
    /// How long a request may wait for room in the pipeline before it is
    /// refused with HTTP 503 / gRPC `UNAVAILABLE`: a duration such as
    /// `"200ms"`. Default `"200ms"`; `"0s"` refuses at once when full.
    #[serde(default = "default_queue_wait", deserialize_with = "values::duration")]
    pub queue_wait: Duration,
    /// The retry hint sent with HTTP 503 and 429 (`Retry-After`) and gRPC
    /// `UNAVAILABLE` (`RetryInfo`): a duration such as `"1s"`. Default
    /// `"1s"`.
    #[serde(default = "default_retry_after", deserialize_with = "values::duration")]
    pub retry_after: Duration,
    /// The longest wait for the sinks to acknowledge a request's data before
    /// answering with a retryable error: a duration above zero. Default
    /// `"30s"`.
    #[serde(
        default = "default_ack_timeout",
        deserialize_with = "values::positive_duration"
    )]
    pub ack_timeout: Duration,
}

fn default_true() -> bool {
    true
}

fn default_grpc_address() -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 4317))
}

fn default_http_address() -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 4318))
}

fn default_max_request_size() -> u64 {
    8 * 1024 * 1024
}

fn default_max_expanded_request_size() -> u64 {
    128 * 1024 * 1024
}

fn default_max_in_flight_bytes() -> u64 {
    512 * 1024 * 1024
}

fn default_max_concurrent_requests() -> usize {
    512
}

fn default_max_concurrent_streams() -> u32 {
    100
}

fn max_concurrent_streams<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let n = values::count(d, 1, 10_000)?;
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

fn default_max_connections() -> usize {
    4096
}

fn max_connections<'de, D: serde::Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    values::count(d, 1, 1_000_000)
}

fn default_read_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_queue_wait() -> Duration {
    Duration::from_millis(200)
}

fn default_retry_after() -> Duration {
    Duration::from_secs(1)
}

fn default_ack_timeout() -> Duration {
    Duration::from_secs(30)
}

impl Default for OtlpSourceConfig {
    fn default() -> Self {
        OtlpSourceConfig {
            grpc: default_true(),
            grpc_address: default_grpc_address(),
            http: default_true(),
            http_address: default_http_address(),
            max_request_size: default_max_request_size(),
            max_expanded_request_size: default_max_expanded_request_size(),
            max_in_flight_bytes: default_max_in_flight_bytes(),
            max_concurrent_requests: default_max_concurrent_requests(),
            max_concurrent_streams: default_max_concurrent_streams(),
            max_connections: default_max_connections(),
            read_timeout: default_read_timeout(),
            queue_wait: default_queue_wait(),
            retry_after: default_retry_after(),
            ack_timeout: default_ack_timeout(),
        }
    }
}

#[async_trait]
impl ComponentConfig for OtlpSourceConfig {
    fn accepts(&self) -> SignalSet {
        SignalSet::NONE
    }

    fn outputs(&self, _input: SignalSet) -> SignalSet {
        SignalSet::TELEMETRY
    }

    async fn build(&self, cx: &mut BuildContext<'_>) -> Result<Built, ComponentError> {
        let source = OtlpSource::bind(cx.name(), self.clone()).await?;
        if let Some(addr) = source.grpc_addr() {
            cx.listening("grpc", addr);
        }
        if let Some(addr) = source.http_addr() {
            cx.listening("http", addr);
        }
        Ok(Built::Source(Box::new(source)))
    }

    fn problems(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        if !self.grpc && !self.http {
            problems.push(Problem {
                key: "http".into(),
                message: "both OTLP listeners are turned off (`grpc = false`, `http = false`)"
                    .to_string(),
                help: "turn on at least one of `grpc` and `http`, or remove the source".to_string(),
            });
        }
        // Port 0 asks the system for a free port: two such binds never clash.
        if self.grpc
            && self.http
            && self.grpc_address == self.http_address
            && self.grpc_address.port() != 0
        {
            problems.push(Problem {
                key: "http_address".into(),
                message: format!(
                    "the gRPC and HTTP listeners both want {}",
                    self.grpc_address
                ),
                help: "give `grpc_address` and `http_address` different ports \
                       (OTLP's usual ones are 4317 for gRPC and 4318 for HTTP)"
                    .to_string(),
            });
        }
        if self.max_expanded_request_size < self.max_request_size {
            problems.push(Problem {
                key: "max_expanded_request_size".into(),
                message: format!(
                    "`max_expanded_request_size` ({} bytes) is less than `max_request_size` \
                     ({} bytes), so the largest requests would always be refused",
                    self.max_expanded_request_size, self.max_request_size
                ),
                help: "raise `max_expanded_request_size` (default \"128MiB\") or lower \
                       `max_request_size`"
                    .to_string(),
            });
        }
        if self.max_in_flight_bytes < self.max_expanded_request_size {
            problems.push(Problem {
                key: "max_in_flight_bytes".into(),
                message: format!(
                    "`max_in_flight_bytes` ({} bytes) is less than `max_expanded_request_size` \
                     ({} bytes): requests that size could never be held",
                    self.max_in_flight_bytes, self.max_expanded_request_size
                ),
                help: "raise `max_in_flight_bytes` (default \"512MiB\") or lower \
                       `max_expanded_request_size`"
                    .to_string(),
            });
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guarantees: the defaults are the documented ones and contradict nothing.
    #[test]
    fn defaults_are_sound() {
        let c = OtlpSourceConfig::default();
        assert_eq!(c.grpc_address.to_string(), "127.0.0.1:4317");
        assert_eq!(c.http_address.to_string(), "127.0.0.1:4318");
        assert_eq!(c.max_request_size, 8 << 20);
        assert_eq!(c.max_expanded_request_size, 128 << 20);
        assert_eq!(c.max_in_flight_bytes, 512 << 20);
        assert_eq!(c.max_concurrent_streams, 100);
        assert_eq!(c.max_connections, 4096);
        assert_eq!(c.read_timeout, Duration::from_secs(10));
        assert!(c.problems().is_empty());
    }

    /// Guarantees: turning both listeners off, or binding both to one
    /// address, is reported.
    #[test]
    fn contradictions_are_problems() {
        let off = OtlpSourceConfig {
            grpc: false,
            http: false,
            ..OtlpSourceConfig::default()
        };
        assert_eq!(off.problems().len(), 1);
        let clash = OtlpSourceConfig {
            http_address: default_grpc_address(),
            ..OtlpSourceConfig::default()
        };
        assert_eq!(clash.problems()[0].key, "http_address");
    }

    /// Guarantees: limits that contradict each other (a request allowed on
    /// the wire that could never be converted or held) are reported at the
    /// key to change.
    #[test]
    fn memory_limits_must_nest() {
        let expanded = OtlpSourceConfig {
            max_expanded_request_size: 1 << 20,
            ..OtlpSourceConfig::default()
        };
        assert_eq!(expanded.problems()[0].key, "max_expanded_request_size");
        let in_flight = OtlpSourceConfig {
            max_in_flight_bytes: 64 << 20,
            ..OtlpSourceConfig::default()
        };
        assert_eq!(in_flight.problems()[0].key, "max_in_flight_bytes");
    }
}
