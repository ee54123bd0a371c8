//! The OTLP receiver: gRPC and HTTP in front of one shared ingest path.
//!
//! ```text
//! gRPC  TraceService/export ─┐ receive body, ┌ decode ┐                    ┌─▶ Output::send_within
//! HTTP  POST /v1/traces ─────┼▶ take a slot ─┤        ├▶ Ingest::ingest ──┤        (503 / UNAVAILABLE if full)
//!       (proto | json, gzip) ┘               └ (gzip) ┘  estimate, hold,  └─▶ await Ack ─▶ response
//!                                                        convert to Arrow
//! ```
//! A connection is bounded before any request: each listener holds at
//! most `max_connections` open ([`listener`]; at the limit it stops
//! accepting until one closes), and [`io`] closes a connection whose
//! client leaves its first bytes, an HTTP/2 frame or a header block
//! unfinished for `read_timeout` ([`frames`] follows the frames in the
//! bytes read), which hyper and h2 would wait for without limit.
//!
//! A request is bounded at every step by what was received: [`receive`]
//! reads a body within `read_timeout` and `max_request_size`, holding its
//! bytes in the in-flight [`budget`] as they arrive; only then does it take
//! one of `max_concurrent_requests` slots and get decoded (for gRPC in
//! [`grpc_admit`], a layer in front of tonic). A protobuf trace or logs
//! request is read into rows straight from its bytes
//! (`weir_core::convert::SpansProto`, `LogsProto`, see
//! [`ingest::Ingest::ingest_protobuf`]); metrics are decoded by prost
//! first. [`ingest`] estimates the
//! request's size once converted, refuses it over
//! `max_expanded_request_size`, and holds that many bytes until it is
//! answered. [`grpc`] and [`http`] only translate requests and outcomes;
//! [`conn`] serves the HTTP listener's connections (HTTP/1 header timeout,
//! HTTP/2 stream cap, graceful shutdown); [`metrics`] declares what the
//! source counts.

mod budget;
mod config;
mod conn;
mod frames;
mod grpc;
mod grpc_admit;
mod http;
mod ingest;
mod io;
mod listener;
pub mod metrics;
mod receive;

use std::net::SocketAddr;
use std::sync::Arc;

use async_trait::async_trait;
use tokio::net::TcpListener;
use weir_core::{ComponentError, Source, SourceContext};

pub use config::OtlpSourceConfig;
pub use ingest::Outcome;

/// A bound OTLP receiver, ready to run.
pub struct OtlpSource {
    name: String,
    config: OtlpSourceConfig,
    grpc: Option<TcpListener>,
    http: Option<TcpListener>,
}

impl OtlpSource {
    /// Binds the configured listeners now, so that an address in use is an
    /// error at start-up rather than later.
    pub async fn bind(name: &str, config: OtlpSourceConfig) -> Result<Self, ComponentError> {
        let bind = |addr: SocketAddr, what: &'static str| {
            let name = name.to_string();
            async move {
                TcpListener::bind(addr).await.map_err(|e| {
                    ComponentError::config(
                        name,
                        format!(
                            "cannot listen for OTLP/{what} on {addr}: {e}; \
                             choose a free address with `{}_address`",
                            what.to_lowercase()
                        ),
                    )
                })
            }
        };
        let grpc = match config.grpc {
            true => Some(bind(config.grpc_address, "gRPC").await?),
            false => None,
        };
        let http = match config.http {
            true => Some(bind(config.http_address, "HTTP").await?),
            false => None,
        };
        Ok(OtlpSource {
            name: name.to_string(),
            config,
            grpc,
            http,
        })
    }

    /// The address the gRPC listener is bound to, if enabled.
    pub fn grpc_addr(&self) -> Option<SocketAddr> {
        self.grpc.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The address the HTTP listener is bound to, if enabled.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().and_then(|l| l.local_addr().ok())
    }
}

#[async_trait]
impl Source for OtlpSource {
    async fn run(self: Box<Self>, cx: SourceContext) -> Result<(), ComponentError> {
        let ingest = Arc::new(ingest::Ingest::new(
            cx.name.clone(),
            cx.output,
            &self.config,
        ));
        let (max_connections, read_timeout) =
            (self.config.max_connections, self.config.read_timeout);
        let name = cx.name.clone();
        let listener = |tcp, protocol| {
            listener::Listener::new(tcp, name.clone(), protocol, max_connections, read_timeout)
        };
        let mut servers = tokio::task::JoinSet::new();
        if let Some(tcp) = self.grpc {
            servers.spawn(grpc::serve(
                listener(tcp, "grpc"),
                ingest.clone(),
                self.config.max_concurrent_streams,
                cx.shutdown.clone(),
            ));
        }
        if let Some(tcp) = self.http {
            let limits = conn::ConnLimits {
                header_read_timeout: self.config.read_timeout,
                max_concurrent_streams: self.config.max_concurrent_streams,
            };
            servers.spawn(http::serve(
                listener(tcp, "http"),
                ingest.clone(),
                limits,
                cx.shutdown.clone(),
            ));
        }
        let mut result = Ok(());
        while let Some(done) = servers.join_next().await {
            let outcome = match done {
                Ok(r) => r,
                Err(e) => Err(format!("server task ended: {e}")),
            };
            if let Err(message) = outcome {
                // One transport failing stops the other too: the source is down.
                cx.shutdown.trigger();
                result = Err(ComponentError::internal(self.name.clone(), message));
            }
        }
        result
    }
}
