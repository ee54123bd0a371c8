//! OTLP/gRPC: the three collector services on one tonic server.

use std::convert::Infallible;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf as _, Bytes};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message as _;
use tonic::body::Body;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::server::{NamedService, UnaryService};
use tonic::{Code, Request, Response, Status};
use tonic_types::{ErrorDetails, StatusExt};
use tower::Service;
use weir_core::Shutdown;

use super::grpc_admit::{AdmitLayer, Admitted};
use super::ingest::{ExportRequest, Ingest, Outcome};
use super::listener::Listener;

/// Serves the three OTLP services on `listener` until `shutdown` fires,
/// then finishes the requests in flight. Connections come from
/// [`Listener`] (`max_connections`, stalled frames timed out); each request
/// passes [`AdmitLayer`] (body received, slot taken) before it is decoded.
pub(crate) async fn serve(
    listener: Listener,
    ingest: Arc<Ingest>,
    max_concurrent_streams: u32,
    shutdown: Shutdown,
) -> Result<(), String> {
    tonic::transport::Server::builder()
        .max_concurrent_streams(max_concurrent_streams)
        .layer(AdmitLayer(ingest.clone()))
        .add_service(ExportServer::<ExportTraceServiceRequest>::new(&ingest))
        .add_service(ExportServer::<ExportLogsServiceRequest>::new(&ingest))
        .add_service(ExportServer::<ExportMetricsServiceRequest>::new(&ingest))
        .serve_with_incoming_shutdown(
            listener.into_incoming(),
            async move { shutdown.wait().await },
        )
        .await
        .map_err(|e| format!("OTLP/gRPC server failed: {e}"))
}

/// What differs between the three gRPC export services.
trait GrpcExport: ExportRequest {
    /// The service's full name.
    const SERVICE: &'static str;
    /// The path of its `Export` method.
    const PATH: &'static str;
    /// The answer of an export.
    type Response: prost::Message + Default + Send + 'static;
    /// The answer of an accepted export: `rejected` records refused, why.
    fn response(rejected: u64, message: String) -> Self::Response;
}

/// One OTLP export service. The message reaches the handler as protobuf
/// bytes, read into rows directly where the signal has a direct reader
/// ([`Ingest::ingest_protobuf`]), instead of decoded by tonic first.
struct ExportServer<R> {
    ingest: Arc<Ingest>,
    _request: PhantomData<fn() -> R>,
}

impl<R> Clone for ExportServer<R> {
    fn clone(&self) -> Self {
        ExportServer {
            ingest: self.ingest.clone(),
            _request: PhantomData,
        }
    }
}

impl<R: GrpcExport> ExportServer<R> {
    fn new(ingest: &Arc<Ingest>) -> Self {
        ExportServer {
            ingest: ingest.clone(),
            _request: PhantomData,
        }
    }
}

impl<R: GrpcExport> NamedService for ExportServer<R> {
    const NAME: &'static str = R::SERVICE;
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<R: GrpcExport> Service<http::Request<Body>> for ExportServer<R> {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<http::Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let ingest = self.ingest.clone();
        Box::pin(async move {
            if request.uri().path() != R::PATH {
                return Ok(Status::unimplemented(format!(
                    "`{}` is not a method of {}",
                    request.uri().path(),
                    R::SERVICE
                ))
                .into_http());
            }
            let max = ingest.max_request_size;
            let mut grpc = tonic::server::Grpc::new(BytesCodec::<R>(PhantomData))
                .accept_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(max);
            Ok(grpc.unary(Handler::<R>(ingest, PhantomData), request).await)
        })
    }
}

/// Answers one export whose message is protobuf bytes.
struct Handler<R>(Arc<Ingest>, PhantomData<fn() -> R>);

impl<R: GrpcExport> UnaryService<Bytes> for Handler<R> {
    type Response = R::Response;
    type Future = BoxFuture<Result<Response<R::Response>, Status>>;

    fn call(&mut self, request: Request<Bytes>) -> Self::Future {
        let ingest = self.0.clone();
        Box::pin(async move {
            let Some((_slot, held)) = request
                .extensions()
                .get::<Admitted>()
                .and_then(Admitted::take)
            else {
                return Err(Status::internal(
                    "the request reached its handler without being admitted \
                     (this is a bug in Weir, please report it)",
                ));
            };
            let body = request.into_inner();
            match ingest.ingest_protobuf::<R>("grpc", &body, held).await {
                Outcome::Accepted { rejected, message } => Ok(Response::new(R::response(
                    rejected,
                    message.unwrap_or_default(),
                ))),
                other => Err(status(&ingest, other)),
            }
        })
    }
}

/// The gRPC codec of an export service: the request's message is handed
/// over as its bytes, the answer encoded by prost.
struct BytesCodec<R>(PhantomData<fn() -> R>);

impl<R: GrpcExport> Codec for BytesCodec<R> {
    type Encode = R::Response;
    type Decode = Bytes;
    type Encoder = ResponseEncoder<R>;
    type Decoder = BytesDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        ResponseEncoder(PhantomData)
    }

    fn decoder(&mut self) -> Self::Decoder {
        BytesDecoder
    }
}

struct ResponseEncoder<R>(PhantomData<fn() -> R>);

impl<R: GrpcExport> Encoder for ResponseEncoder<R> {
    type Item = R::Response;
    type Error = Status;

    fn encode(&mut self, item: R::Response, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(dst)
            .map_err(|e| Status::internal(format!("encoding the answer: {e}")))
    }
}

struct BytesDecoder;

impl Decoder for BytesDecoder {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

/// The gRPC status that answers `outcome`.
pub(crate) fn status(ingest: &Ingest, outcome: Outcome) -> Status {
    match outcome {
        Outcome::Accepted { .. } => Status::ok(""),
        Outcome::Invalid(m) => Status::invalid_argument(m),
        Outcome::TooLarge(m) => Status::resource_exhausted(m),
        Outcome::TimedOut(m) => Status::deadline_exceeded(m),
        Outcome::Unavailable(m) => Status::with_error_details(
            Code::Unavailable,
            m,
            ErrorDetails::with_retry_info(Some(ingest.retry_after)),
        ),
    }
}

fn partial<T>(rejected: u64, message: String, make: impl FnOnce(i64, String) -> T) -> Option<T> {
    (rejected > 0 || !message.is_empty())
        .then(|| make(i64::try_from(rejected).unwrap_or(i64::MAX), message))
}

impl GrpcExport for ExportTraceServiceRequest {
    const SERVICE: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
    const PATH: &'static str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
    type Response = ExportTraceServiceResponse;
    fn response(rejected: u64, message: String) -> Self::Response {
        ExportTraceServiceResponse {
            partial_success: partial(rejected, message, |rejected_spans, error_message| {
                ExportTracePartialSuccess {
                    rejected_spans,
                    error_message,
                }
            }),
        }
    }
}

impl GrpcExport for ExportLogsServiceRequest {
    const SERVICE: &'static str = "opentelemetry.proto.collector.logs.v1.LogsService";
    const PATH: &'static str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";
    type Response = ExportLogsServiceResponse;
    fn response(rejected: u64, message: String) -> Self::Response {
        ExportLogsServiceResponse {
            partial_success: partial(rejected, message, |rejected_log_records, error_message| {
                ExportLogsPartialSuccess {
                    rejected_log_records,
                    error_message,
                }
            }),
        }
    }
}

impl GrpcExport for ExportMetricsServiceRequest {
    const SERVICE: &'static str = "opentelemetry.proto.collector.metrics.v1.MetricsService";
    const PATH: &'static str = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";
    type Response = ExportMetricsServiceResponse;
    fn response(rejected: u64, message: String) -> Self::Response {
        ExportMetricsServiceResponse {
            partial_success: partial(rejected, message, |rejected_data_points, error_message| {
                ExportMetricsPartialSuccess {
                    rejected_data_points,
                    error_message,
                }
            }),
        }
    }
}
