//! One accepted connection, as both listeners serve it: it holds one of
//! its listener's `max_connections` slots, and counts as open in
//! `weir_otlp_connections`, until it is dropped.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use ::metrics::Gauge;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tonic::transport::server::{Connected, TcpConnectInfo};

use super::metrics;

/// What the connections of one listener share.
pub(crate) struct ConnShared {
    /// The source's name, for logs.
    pub(crate) name: Arc<str>,
    /// `grpc` or `http`.
    pub(crate) protocol: &'static str,
    /// `weir_otlp_connections{component, protocol}`.
    pub(crate) open: Gauge,
}

impl ConnShared {
    pub(crate) fn new(name: Arc<str>, protocol: &'static str) -> Self {
        ConnShared {
            open: metrics::connections(&name, protocol),
            name,
            protocol,
        }
    }
}

/// An accepted TCP connection with its slot.
pub(crate) struct Conn {
    io: TcpStream,
    shared: Arc<ConnShared>,
    _slot: OwnedSemaphorePermit,
}

impl Conn {
    /// Wraps `io`, which holds `slot` until it is dropped.
    pub(crate) fn new(io: TcpStream, slot: OwnedSemaphorePermit, shared: Arc<ConnShared>) -> Self {
        shared.open.increment(1.0);
        Conn {
            io,
            shared,
            _slot: slot,
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
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
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
