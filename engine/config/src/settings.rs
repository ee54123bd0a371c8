//! The engine-wide tables: `[api]` and `[runtime]`.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
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
