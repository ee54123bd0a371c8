//! OTLP/gRPC: the three collector services on one tonic server.

use std::sync::Arc;

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tonic::codec::CompressionEncoding;
use tonic::{Code, Request, Response, Status};
use tonic_types::{ErrorDetails, StatusExt};
use weir_core::Shutdown;

use super::grpc_admit::{AdmitLayer, Admitted};
use super::ingest::{ExportRequest, Ingest, Outcome};
use super::listener::Listener;

/// Serves the three OTLP services on `listener` until `shutdown` fires,
/// then finishes the requests in flight. Connections come from
/// [`Listener`] (`max_connections`, stalled frames timed out); each request
/// passes [`AdmitLayer`] (body received, slot taken) before tonic decodes
/// it.
pub(crate) async fn serve(
    listener: Listener,
    ingest: Arc<Ingest>,
    max_concurrent_streams: u32,
    shutdown: Shutdown,
) -> Result<(), String> {
    let max = ingest.max_request_size;
    let svc = Grpc(ingest.clone());
    tonic::transport::Server::builder()
        .max_concurrent_streams(max_concurrent_streams)
        .layer(AdmitLayer(ingest))
        .add_service(
            TraceServiceServer::new(svc.clone())
                .accept_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(max),
        )
        .add_service(
            LogsServiceServer::new(svc.clone())
                .accept_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(max),
        )
        .add_service(
            MetricsServiceServer::new(svc)
                .accept_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(max),
        )
        .serve_with_incoming_shutdown(
            listener.into_incoming(),
            async move { shutdown.wait().await },
        )
        .await
        .map_err(|e| format!("OTLP/gRPC server failed: {e}"))
}

#[derive(Clone)]
struct Grpc(Arc<Ingest>);

impl Grpc {
    async fn export<R: ExportRequest>(&self, request: Request<R>) -> Result<(u64, String), Status> {
        let ingest = &self.0;
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
        let request = request.into_inner();
        let wire = request.encoded_len();
        match ingest.ingest("grpc", &request, wire, held).await {
            Outcome::Accepted { rejected, message } => Ok((rejected, message.unwrap_or_default())),
            other => Err(status(ingest, other)),
        }
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

#[tonic::async_trait]
impl TraceService for Grpc {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let (rejected, message) = Grpc::export(self, request).await?;
        Ok(Response::new(ExportTraceServiceResponse {
            partial_success: partial(rejected, message, |rejected_spans, error_message| {
                ExportTracePartialSuccess {
                    rejected_spans,
                    error_message,
                }
            }),
        }))
    }
}

#[tonic::async_trait]
impl LogsService for Grpc {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        let (rejected, message) = Grpc::export(self, request).await?;
        Ok(Response::new(ExportLogsServiceResponse {
            partial_success: partial(rejected, message, |rejected_log_records, error_message| {
                ExportLogsPartialSuccess {
                    rejected_log_records,
                    error_message,
                }
            }),
        }))
    }
}

#[tonic::async_trait]
impl MetricsService for Grpc {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        let (rejected, message) = Grpc::export(self, request).await?;
        Ok(Response::new(ExportMetricsServiceResponse {
            partial_success: partial(rejected, message, |rejected_data_points, error_message| {
                ExportMetricsPartialSuccess {
                    rejected_data_points,
                    error_message,
                }
            }),
        }))
    }
}
