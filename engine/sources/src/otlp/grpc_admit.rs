//! The tower layer in front of the gRPC services: it receives a request's
//! body (bounded in time, size and in-flight memory) and takes a request
//! slot before the message is read, then decompresses the message and
//! holds the memory decoding it will take, so a request is decoded only
//! once it is admitted and its decoded size is bounded. The slot and the bytes held travel to the handler in the
//! request's extensions ([`Admitted`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::Full;
use tokio::sync::OwnedSemaphorePermit;
use tonic::body::Body;
use tower::{Layer, Service};

use super::budget::Held;
use super::grpc::status;
use super::ingest::{Ingest, Outcome};
use super::receive::{gunzip, receive};
use weir_core::Signal;
use weir_core::convert::{self, WireError};

/// A gRPC message's frame header: one compression flag byte and a 4-byte
/// length.
const FRAME_HEADER: usize = 5;

/// A request slot and the bytes the request's body holds, handed from the
/// layer to the handler once.
#[derive(Clone)]
pub(crate) struct Admitted(Arc<Mutex<Option<(OwnedSemaphorePermit, Held)>>>);

impl Admitted {
    /// The slot and bytes; `None` when already taken.
    pub(crate) fn take(&self) -> Option<(OwnedSemaphorePermit, Held)> {
        self.0.lock().ok()?.take()
    }
}

/// Admits each request before the services decode it.
#[derive(Clone)]
pub(crate) struct AdmitLayer(pub(crate) Arc<Ingest>);

impl<S> Layer<S> for AdmitLayer {
    type Service = Admit<S>;

    fn layer(&self, inner: S) -> Admit<S> {
        Admit {
            inner,
            ingest: self.0.clone(),
        }
    }
}

/// The service [`AdmitLayer`] makes.
#[derive(Clone)]
pub(crate) struct Admit<S> {
    inner: S,
    ingest: Arc<Ingest>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S> Service<http::Request<Body>> for Admit<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        // The service that was polled ready serves this request; a clone
        // takes its place for the next one.
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let ingest = self.ingest.clone();
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            let limit = ingest.max_request_size.saturating_add(FRAME_HEADER);
            let (bytes, held) = match receive(&ingest, "grpc", body, limit).await {
                Ok(received) => received,
                Err(outcome) => return Ok(status(&ingest, outcome).into_http()),
            };
            let slot = match ingest.admit("grpc") {
                Ok(slot) => slot,
                Err(outcome) => return Ok(status(&ingest, outcome).into_http()),
            };
            let (bytes, held) = match prepare(&ingest, parts.uri.path(), bytes, held).await {
                Ok(prepared) => prepared,
                Err(outcome) => return Ok(status(&ingest, outcome).into_http()),
            };
            parts
                .extensions
                .insert(Admitted(Arc::new(Mutex::new(Some((slot, held))))));
            inner
                .call(http::Request::from_parts(
                    parts,
                    Body::new(Full::new(bytes)),
                ))
                .await
        })
    }
}

/// Makes a received export ready to be read: a gzip-compressed
/// message is decompressed here (at most `max_request_size` bytes, held in
/// the budget) and framed uncompressed, and the memory decoding the
/// message takes is held ([`Ingest::hold_decoded`]) before it is read
/// (the bound of prost's decoding, which the direct reader of spans takes
/// less than). A body of another method, or whose framing is broken, goes
/// to tonic as it came, for tonic to answer.
async fn prepare(
    ingest: &Ingest,
    path: &str,
    bytes: Bytes,
    mut held: Held,
) -> Result<(Bytes, Held), Outcome> {
    type Walk = fn(&[u8]) -> Result<usize, WireError>;
    let (signal, walk): (Signal, Walk) = match path {
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export" => {
            (Signal::Spans, convert::spans_decoded_size)
        }
        "/opentelemetry.proto.collector.logs.v1.LogsService/Export" => {
            (Signal::Logs, convert::logs_decoded_size)
        }
        "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export" => {
            (Signal::Metrics, convert::metrics_decoded_size)
        }
        _ => return Ok((bytes, held)),
    };
    let Some((&flag, rest)) = bytes.split_first() else {
        return Ok((bytes, held));
    };
    let Some(declared) = rest
        .get(..4)
        .map(|n| u32::from_be_bytes([n[0], n[1], n[2], n[3]]))
    else {
        return Ok((bytes, held));
    };
    let end = (FRAME_HEADER + declared as usize).min(bytes.len());
    let (bytes, end) = match flag {
        1 => {
            let frame = inflate(ingest, &bytes[FRAME_HEADER..end], &mut held)?;
            let end = frame.len();
            (frame, end)
        }
        _ => (bytes, end),
    };
    ingest
        .hold_decoded("grpc", signal, walk(&bytes[FRAME_HEADER..end]), &mut held)
        .await?;
    Ok((bytes, held))
}

/// Decompresses a gzip message into an uncompressed gRPC frame (see
/// [`gunzip`]).
fn inflate(ingest: &Ingest, compressed: &[u8], held: &mut Held) -> Result<Bytes, Outcome> {
    let mut frame = gunzip(ingest, "grpc", compressed, FRAME_HEADER, held)?;
    let len = u32::try_from(frame.len() - FRAME_HEADER).unwrap_or(u32::MAX);
    frame[1..FRAME_HEADER].copy_from_slice(&len.to_be_bytes());
    Ok(frame.into())
}
