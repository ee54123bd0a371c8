//! The HTTP listener's connections: HTTP/1 and HTTP/2 on one port, at
//! most `max_connections` open ([`Listener`]), a client that does not send
//! its headers within `read_timeout` is disconnected (HTTP/1; stalled
//! HTTP/2 frames are timed out by [`Conn`](super::io::Conn)), an HTTP/2
//! connection has at most `max_concurrent_streams` requests open, and on
//! shutdown the listener stops accepting while the requests in flight
//! finish.

use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tracing::debug;
use weir_core::Shutdown;

use super::listener::Listener;

/// What bounds one connection.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnLimits {
    /// The longest an HTTP/1 client may take to send a request's headers.
    pub header_read_timeout: Duration,
    /// The most requests open at once on one HTTP/2 connection.
    pub max_concurrent_streams: u32,
}

/// Serves `app` on `listener` until `shutdown` fires, then waits for the
/// open connections to finish their requests.
pub(crate) async fn serve(
    mut listener: Listener,
    app: Router,
    limits: ConnLimits,
    shutdown: Shutdown,
) -> Result<(), String> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_concurrent_streams);
    let graceful = GracefulShutdown::new();
    let stop = shutdown.wait();
    tokio::pin!(stop);
    loop {
        let (socket, peer) = tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => accepted,
        };
        let service = TowerToHyperService::new(app.clone());
        let conn = builder
            .serve_connection(TokioIo::new(socket), service)
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(error) = conn.await {
                debug!(%peer, %error, "OTLP/HTTP connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
