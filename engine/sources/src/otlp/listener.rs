//! Accepting connections, at most `max_connections` open at once on one
//! listener: at the limit the listener stops accepting until a connection
//! closes, so new clients wait in the kernel's backlog instead of taking
//! memory and descriptors. Each connection comes as a [`Conn`] holding its
//! slot; a failed `accept` (out of file descriptors, say) pauses the loop
//! briefly instead of spinning or ending the server.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ::metrics::Counter;
use futures::Stream;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tracing::{debug, warn};

use super::io::{Conn, ConnShared};
use super::metrics;

/// How long to pause after `accept` fails before trying again.
const ACCEPT_PAUSE: Duration = Duration::from_millis(50);
/// The least time between two warnings that the limit was reached.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// A bound listener and the slots of its connections.
pub(crate) struct Listener {
    tcp: TcpListener,
    slots: Arc<Semaphore>,
    max_connections: usize,
    shared: Arc<ConnShared>,
    limit_reached: Counter,
    last_warning: Option<Instant>,
}

impl Listener {
    /// `tcp` of the source `name`, serving `protocol` (`grpc` or `http`).
    pub(crate) fn new(
        tcp: TcpListener,
        name: Arc<str>,
        protocol: &'static str,
        max_connections: usize,
        read_timeout: Duration,
    ) -> Self {
        let max_connections = max_connections.clamp(1, Semaphore::MAX_PERMITS);
        Listener {
            tcp,
            slots: Arc::new(Semaphore::new(max_connections)),
            max_connections,
            limit_reached: metrics::connection_limit_reached(&name, protocol),
            shared: Arc::new(ConnShared::new(name, protocol, read_timeout)),
            last_warning: None,
        }
    }

    /// The next connection, once fewer than `max_connections` are open.
    /// Cancel-safe: dropped while waiting, it neither takes a slot nor
    /// loses a connection.
    pub(crate) async fn accept(&mut self) -> (Conn, SocketAddr) {
        let slot = match self.slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                self.limit_reached();
                self.slots
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("a listener's connection slots are never closed")
            }
        };
        loop {
            match self.tcp.accept().await {
                Ok((socket, peer)) => {
                    // Requests and answers are small writes that must not wait
                    // for Nagle's algorithm (tonic's own listener does the same).
                    if let Err(error) = socket.set_nodelay(true) {
                        debug!(%error, "could not set TCP_NODELAY on an OTLP connection");
                    }
                    return (Conn::new(socket, peer, slot, self.shared.clone()), peer);
                }
                Err(error) => {
                    warn!(
                        component = %self.shared.name,
                        protocol = self.shared.protocol,
                        %error,
                        "accepting an OTLP connection failed; retrying shortly"
                    );
                    tokio::time::sleep(ACCEPT_PAUSE).await;
                }
            }
        }
    }

    /// Counts that every slot is taken, and says so at most once a minute.
    fn limit_reached(&mut self) {
        self.limit_reached.increment(1);
        let now = Instant::now();
        if self
            .last_warning
            .is_some_and(|last| now.duration_since(last) < WARN_EVERY)
        {
            return;
        }
        self.last_warning = Some(now);
        warn!(
            component = %self.shared.name,
            protocol = self.shared.protocol,
            max_connections = self.max_connections,
            "the OTLP source `{}` holds `max_connections` ({}) open {} connections and \
             accepts no more until one closes; new clients wait. If these are legitimate \
             clients, raise `max_connections`",
            self.shared.name,
            self.max_connections,
            self.shared.protocol,
        );
    }

    /// The connections as a stream, for tonic. It never yields an error:
    /// failures to accept are retried here.
    pub(crate) fn into_incoming(self) -> impl Stream<Item = Result<Conn, Infallible>> {
        futures::stream::unfold(self, |mut listener| async move {
            let (conn, _) = listener.accept().await;
            Some((Ok(conn), listener))
        })
    }
}
