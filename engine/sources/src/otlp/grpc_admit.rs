//! The tower layer in front of the gRPC services: it receives a request's
//! body (bounded in time, size and in-flight memory) and takes a request
//! slot before tonic decodes anything, so a request is decoded only once it
//! is admitted. The slot and the bytes held travel to the handler in the
//! request's extensions ([`Admitted`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use http_body_util::Full;
use tokio::sync::OwnedSemaphorePermit;
use tonic::body::Body;
use tower::{Layer, Service};

use super::budget::Held;
use super::grpc::status;
use super::ingest::Ingest;
use super::receive::receive;

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
