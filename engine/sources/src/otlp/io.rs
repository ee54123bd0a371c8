//! One accepted connection, as both listeners serve it: it holds one of
//! its listener's `max_connections` slots until it is dropped, and it ends
//! with [`io::ErrorKind::TimedOut`] when the client leaves something
//! unfinished for `read_timeout`: its first bytes (the HTTP/2 preface or an
//! HTTP/1 request), an HTTP/2 frame whose bytes stopped arriving, or a
//! header block whose CONTINUATION never comes ([`Frames`]). hyper and h2
//! would wait for those without limit, each holding a buffer.
//!
//! An HTTP/2 connection at rest between frames is never timed out: gRPC
//! clients keep theirs open between exports. An HTTP/1 connection is left
//! to hyper's `header_read_timeout` once its first bytes arrived.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use ::metrics::{Counter, Gauge};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{Instant, Sleep};
use tonic::transport::server::{Connected, TcpConnectInfo};
use tracing::debug;

use super::frames::Frames;
use super::metrics;

/// What the connections of one listener share.
pub(crate) struct ConnShared {
    /// The source's name, for logs.
    pub(crate) name: Arc<str>,
    /// `grpc` or `http`.
    pub(crate) protocol: &'static str,
    /// The longest a client may leave a frame, a header block or its
    /// first bytes unfinished.
    pub(crate) read_timeout: Duration,
    /// `weir_otlp_connections{component, protocol}`.
    pub(crate) open: Gauge,
    /// `weir_otlp_stalled_connections_total{component, protocol}`.
    pub(crate) stalled: Counter,
}

impl ConnShared {
    pub(crate) fn new(name: Arc<str>, protocol: &'static str, read_timeout: Duration) -> Self {
        ConnShared {
            open: metrics::connections(&name, protocol),
            stalled: metrics::stalled_connections(&name, protocol),
            name,
            protocol,
            read_timeout,
        }
    }
}

/// An accepted TCP connection with its slot and its stall timeout.
pub(crate) struct Conn {
    io: TcpStream,
    peer: SocketAddr,
    shared: Arc<ConnShared>,
    frames: Frames,
    /// When the unfinished thing the client is in the middle of times out;
    /// `None` at rest.
    deadline: Option<Instant>,
    /// Wakes the connection at `deadline` when no byte comes; made the
    /// first time it is needed, then reset.
    sleep: Option<Pin<Box<Sleep>>>,
    timed_out: bool,
    _slot: OwnedSemaphorePermit,
}

impl Conn {
    /// Wraps `io`, which holds `slot` until it is dropped. Its first bytes
    /// are due within `read_timeout` from now.
    pub(crate) fn new(
        io: TcpStream,
        peer: SocketAddr,
        slot: OwnedSemaphorePermit,
        shared: Arc<ConnShared>,
    ) -> Self {
        shared.open.increment(1.0);
        Conn {
            io,
            peer,
            deadline: Some(Instant::now() + shared.read_timeout),
            shared,
            frames: Frames::default(),
            sleep: None,
            timed_out: false,
            _slot: slot,
        }
    }

    /// Follows the bytes just read: the deadline starts when the client
    /// begins something unfinished and is cleared when it is at rest.
    fn track(&mut self, read: &[u8]) {
        let rested = self.frames.feed(read);
        if self.frames.at_rest() {
            self.deadline = None;
        } else if rested || self.deadline.is_none() {
            self.deadline = Some(Instant::now() + self.shared.read_timeout);
        }
    }

    /// The error that ends a connection past its deadline; counted once.
    fn timeout(&mut self) -> io::Error {
        if !self.timed_out {
            self.timed_out = true;
            self.shared.stalled.increment(1);
            debug!(
                component = %self.shared.name,
                protocol = self.shared.protocol,
                peer = %self.peer,
                "closing an OTLP connection that left its first bytes, an HTTP/2 frame \
                 or a header block unfinished for `read_timeout`"
            );
        }
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "the client left a request unfinished for longer than `read_timeout` ({}s)",
                self.shared.read_timeout.as_secs_f64()
            ),
        )
    }

    /// With no byte to read and something unfinished due at `at`: wakes
    /// the task at `at`, or times out if it has passed.
    fn poll_deadline(&mut self, cx: &mut Context<'_>, at: Instant) -> Poll<io::Error> {
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
        // Deadlines only move later; the timer is reset only when it fires
        // early, so a connection streaming frames does not touch it per read.
        if sleep.deadline() > at {
            sleep.as_mut().reset(at);
        }
        loop {
            ready!(sleep.as_mut().poll(cx));
            if sleep.deadline() >= at {
                return Poll::Ready(self.timeout());
            }
            sleep.as_mut().reset(at);
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.shared.open.decrement(1.0);
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.timed_out {
            return Poll::Ready(Err(this.timeout()));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let read = &buf.filled()[before..];
                if !read.is_empty() {
                    this.track(read);
                    if this.deadline.is_some_and(|at| Instant::now() >= at) {
                        return Poll::Ready(Err(this.timeout()));
                    }
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => match this.deadline {
                None => Poll::Pending,
                Some(at) => this.poll_deadline(cx, at).map(Err),
            },
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

impl Connected for Conn {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.io.connect_info()
    }
}
