//! OTLP: [`OtlpExporter`] sends `spans`, `logs` and `metrics` rows to an
//! OpenTelemetry Collector, Tempo, Jaeger or anything else taking OTLP,
//! over gRPC ([`grpc`]) or HTTP ([`http`], protobuf or JSON).
//!
//! Spans and logs sent as protobuf (gRPC, or HTTP with
//! `http/protobuf`) are first encoded straight from the rows
//! (`weir_core::convert::*_to_proto`); when those bytes fit
//! `max_request_bytes` they go as they are, as one request. Otherwise,
//! and for JSON and metrics, a batch goes out in three steps:
//!
//! 1. the rows become one export request (`weir_core::convert::batch_to_*`,
//!    the same as the `file` sink writes);
//! 2. [`split`]: the request is cut into requests of at most
//!    `max_request_bytes` of protobuf, each record under its own resource
//!    and scope (a metric and its points stay whole; one too large alone
//!    is counted in [`Exported::rejected`]);
//! 3. each is sent, compressed as asked (gzip, zstd), with the user's
//!    headers. The answer is read as the OTLP specification says: gRPC
//!    `UNAVAILABLE`, `CANCELLED`, `ABORTED`, `DEADLINE_EXCEEDED`,
//!    `OUT_OF_RANGE`, `DATA_LOSS`, and `RESOURCE_EXHAUSTED` with a
//!    `RetryInfo`, and HTTP 429, 502, 503 and 504 may pass (after the
//!    receiver's `RetryInfo` / `Retry-After`): the export ends with
//!    [`ExportError::Retryable`] and the sink sends the whole batch again
//!    (requests taken before then arrive twice). Any other error refuses
//!    that request's records for good, and the others still go. A
//!    `partial_success` counts its rejected records in
//!    [`Exported::rejected`] with the receiver's message.
//!
//! `alerts` rows have no OTLP form and are refused. The tests
//! (`tests/it/otlp.rs`) run a tonic server of the three OTLP services and
//! an axum server of OTLP/HTTP, decoding what arrives and comparing it
//! with what `batch_to_*` makes.

mod codec;
pub mod config;
mod grpc;
mod http;
mod split;

use std::future::Future;

use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse, logs_service_client::LogsServiceClient,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
    metrics_service_client::MetricsServiceClient,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse, trace_service_client::TraceServiceClient,
};
use tonic::codec::CompressionEncoding;
use tonic::transport::Channel;
use weir_core::convert::{self, ConvertError, json};
use weir_core::{ComponentError, Signal};

use crate::exporter::{ExportError, Exported, Exporter, Tally};
use crate::http::Failure;
use split::Request;

pub use config::{Compression, OtlpConfig, Protocol, TlsConfig};

/// Sends rows with OTLP over gRPC or HTTP.
#[derive(Debug)]
pub struct OtlpExporter {
    /// The endpoint as logs and errors show it: scheme, host and port.
    endpoint: String,
    transport: Transport,
    max_request_bytes: usize,
}

/// How requests travel.
#[derive(Debug)]
enum Transport {
    Grpc(Box<grpc::Grpc>),
    Http(http::Http),
}

impl OtlpExporter {
    /// The exporter of component `component` configured by `config`: the
    /// headers are resolved and the CA file read now, so a missing secret
    /// stops the start. The gRPC connection is made at the first export.
    pub fn new(component: &str, config: &OtlpConfig) -> Result<Self, ComponentError> {
        let endpoint = config.endpoint.resolve_http_url(component, "endpoint")?;
        let shown = weir_core::redact::url(&endpoint);
        if config.tls.ca_file.is_some() && !endpoint.starts_with("https://") {
            return Err(ComponentError::config(
                component,
                format!(
                    "`tls.ca_file`: `{shown}` does not use TLS; write the endpoint with \
                     https://, or remove `tls`"
                ),
            ));
        }
        let headers = config.user_headers().resolve(component)?;
        let ca = match &config.tls.ca_file {
            Some(path) => Some(std::fs::read(path).map_err(|e| {
                ComponentError::config(
                    component,
                    format!("`tls.ca_file`: cannot read `{}`: {e}", path.display()),
                )
            })?),
            None => None,
        };
        let transport = match config.protocol {
            Protocol::Grpc => Transport::Grpc(Box::new(grpc::Grpc::new(
                component, config, &endpoint, headers, ca,
            )?)),
            Protocol::HttpProtobuf | Protocol::HttpJson => {
                Transport::Http(http::Http::new(component, config, &endpoint, headers, ca)?)
            }
        };
        Ok(OtlpExporter {
            endpoint: shown,
            transport,
            max_request_bytes: usize::try_from(config.max_request_bytes).unwrap_or(usize::MAX),
        })
    }

    /// Sends `request` cut to the size limit, request by request.
    async fn send<R: Export>(&self, request: R) -> Result<Exported, ExportError> {
        let split = split::split(request, self.max_request_bytes);
        let too_large = (split.too_large > 0).then(|| {
            format!(
                "{}: a record is larger than max_request_bytes ({} bytes) on its own",
                self.endpoint, self.max_request_bytes
            )
        });
        let mut tally = Tally::new(split.too_large, too_large);
        for (request, rows) in split.requests {
            let sent = match &self.transport {
                Transport::Grpc(grpc) => grpc.send(request).await,
                Transport::Http(http) => http.send(request).await,
            };
            count(&mut tally, sent, rows)?;
        }
        tally.finish()
    }

    /// Sends `rows` as one request of `R` encoded straight from the rows
    /// by `encode`, when requests go as protobuf and the bytes fit
    /// `max_request_bytes`; `None` when they must go through [`Self::send`]
    /// instead (JSON, no rows, or too large for one request).
    async fn send_direct<R: Export>(
        &self,
        rows: &RecordBatch,
        encode: fn(&RecordBatch) -> Result<Vec<u8>, ConvertError>,
    ) -> Result<Option<Exported>, ExportError> {
        let protobuf = match &self.transport {
            Transport::Grpc(_) => true,
            Transport::Http(http) => http.protobuf(),
        };
        if !protobuf || rows.num_rows() == 0 {
            return Ok(None);
        }
        let body = encode(rows).map_err(|e| self.unreadable(rows, e))?;
        if body.len() > self.max_request_bytes {
            return Ok(None);
        }
        let sent = match &self.transport {
            Transport::Grpc(grpc) => grpc.send_encoded::<R>(body.into()).await,
            Transport::Http(http) => http.send_encoded::<R>(body).await,
        };
        let mut tally = Tally::new(0, None);
        count(&mut tally, sent, rows.num_rows() as u64)?;
        tally.finish().map(Some)
    }

    /// The error of rows that cannot be read as the signal's rows.
    fn unreadable(&self, rows: &RecordBatch, e: ConvertError) -> ExportError {
        ExportError::Permanent {
            reason: format!("{}: the rows cannot be read: {e}", self.endpoint),
            records: rows.num_rows() as u64,
        }
    }
}

/// Counts what became of one request of `rows` records in `tally`; a
/// failure that may pass ends the export.
fn count(
    tally: &mut Tally,
    sent: Result<Option<(u64, String)>, Failure>,
    rows: u64,
) -> Result<(), ExportError> {
    match sent {
        Ok(partial) => {
            tally.taken();
            if let Some((count, message)) = partial {
                tally.reject(count, || message);
            }
            Ok(())
        }
        Err(Failure::Retryable(reason, after)) => Err(ExportError::Retryable { reason, after }),
        Err(Failure::Refused(reason)) => {
            tally.refused(rows, reason);
            Ok(())
        }
    }
}

#[async_trait]
impl Exporter for OtlpExporter {
    async fn export(&self, signal: Signal, rows: &RecordBatch) -> Result<Exported, ExportError> {
        let unreadable = |e: ConvertError| self.unreadable(rows, e);
        match signal {
            Signal::Spans => {
                let direct =
                    self.send_direct::<ExportTraceServiceRequest>(rows, convert::spans_to_proto);
                if let Some(exported) = direct.await? {
                    return Ok(exported);
                }
                self.send(convert::batch_to_spans(rows).map_err(unreadable)?)
                    .await
            }
            Signal::Logs => {
                let direct =
                    self.send_direct::<ExportLogsServiceRequest>(rows, convert::logs_to_proto);
                if let Some(exported) = direct.await? {
                    return Ok(exported);
                }
                self.send(convert::batch_to_logs(rows).map_err(unreadable)?)
                    .await
            }
            Signal::Metrics => {
                self.send(convert::batch_to_metrics(rows).map_err(unreadable)?)
                    .await
            }
            Signal::Alerts => Err(ExportError::Permanent {
                reason: format!(
                    "{}: OTLP has no form for alert events; send them to an `alertmanager` or \
                     `webhook` sink",
                    self.endpoint
                ),
                records: rows.num_rows() as u64,
            }),
        }
    }

    async fn preflight(&self) -> Result<(), String> {
        match &self.transport {
            Transport::Grpc(grpc) => grpc.preflight().await,
            Transport::Http(http) => http.preflight().await,
        }
    }
}

/// What differs between the three signals' export calls.
pub(crate) trait Export: Request + Send + 'static {
    /// The answer of the export call.
    type Response: prost::Message + Default + Send + 'static;
    /// The OTLP/HTTP path: `/v1/traces`, `/v1/logs` or `/v1/metrics`.
    const PATH: &'static str;
    /// The gRPC service (`opentelemetry.proto.collector.trace.v1.TraceService`).
    const GRPC_SERVICE: &'static str;
    /// The gRPC path of its `Export` method.
    const GRPC_PATH: &'static str;
    /// The name of `partial_success`' count in OTLP/JSON.
    const REJECTED_JSON: &'static str;
    /// The request in OTLP/JSON.
    fn json(&self) -> Result<Vec<u8>, ConvertError>;
    /// `partial_success`: the records refused, and why.
    fn partial_success(response: &Self::Response) -> Option<(u64, String)>;
    /// The gRPC export call over `channel`.
    fn call(
        channel: Channel,
        compression: Option<CompressionEncoding>,
        request: tonic::Request<Self>,
    ) -> impl Future<Output = Result<tonic::Response<Self::Response>, tonic::Status>> + Send;
}

/// `partial_success` as the rejected count and message, when any was
/// rejected.
fn partial(rejected: i64, message: &str) -> Option<(u64, String)> {
    let rejected = u64::try_from(rejected).unwrap_or(0);
    (rejected > 0).then(|| (rejected, message.to_string()))
}

impl Export for ExportTraceServiceRequest {
    type Response = ExportTraceServiceResponse;
    const PATH: &'static str = "/v1/traces";
    const GRPC_SERVICE: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
    const GRPC_PATH: &'static str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
    const REJECTED_JSON: &'static str = "rejectedSpans";
    fn json(&self) -> Result<Vec<u8>, ConvertError> {
        json::encode_spans(self)
    }
    fn partial_success(response: &Self::Response) -> Option<(u64, String)> {
        let p = response.partial_success.as_ref()?;
        partial(p.rejected_spans, &p.error_message)
    }
    async fn call(
        channel: Channel,
        compression: Option<CompressionEncoding>,
        request: tonic::Request<Self>,
    ) -> Result<tonic::Response<Self::Response>, tonic::Status> {
        let mut client = TraceServiceClient::new(channel)
            .accept_compressed(CompressionEncoding::Gzip)
            .accept_compressed(CompressionEncoding::Zstd);
        if let Some(encoding) = compression {
            client = client.send_compressed(encoding);
        }
        client.export(request).await
    }
}

impl Export for ExportLogsServiceRequest {
    type Response = ExportLogsServiceResponse;
    const PATH: &'static str = "/v1/logs";
    const GRPC_SERVICE: &'static str = "opentelemetry.proto.collector.logs.v1.LogsService";
    const GRPC_PATH: &'static str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";
    const REJECTED_JSON: &'static str = "rejectedLogRecords";
    fn json(&self) -> Result<Vec<u8>, ConvertError> {
        json::encode_logs(self)
    }
    fn partial_success(response: &Self::Response) -> Option<(u64, String)> {
        let p = response.partial_success.as_ref()?;
        partial(p.rejected_log_records, &p.error_message)
    }
    async fn call(
        channel: Channel,
        compression: Option<CompressionEncoding>,
        request: tonic::Request<Self>,
    ) -> Result<tonic::Response<Self::Response>, tonic::Status> {
        let mut client = LogsServiceClient::new(channel)
            .accept_compressed(CompressionEncoding::Gzip)
            .accept_compressed(CompressionEncoding::Zstd);
        if let Some(encoding) = compression {
            client = client.send_compressed(encoding);
        }
        client.export(request).await
    }
}

impl Export for ExportMetricsServiceRequest {
    type Response = ExportMetricsServiceResponse;
    const PATH: &'static str = "/v1/metrics";
    const GRPC_SERVICE: &'static str = "opentelemetry.proto.collector.metrics.v1.MetricsService";
    const GRPC_PATH: &'static str =
        "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";
    const REJECTED_JSON: &'static str = "rejectedDataPoints";
    fn json(&self) -> Result<Vec<u8>, ConvertError> {
        json::encode_metrics(self)
    }
    fn partial_success(response: &Self::Response) -> Option<(u64, String)> {
        let p = response.partial_success.as_ref()?;
        partial(p.rejected_data_points, &p.error_message)
    }
    async fn call(
        channel: Channel,
        compression: Option<CompressionEncoding>,
        request: tonic::Request<Self>,
    ) -> Result<tonic::Response<Self::Response>, tonic::Status> {
        let mut client = MetricsServiceClient::new(channel)
            .accept_compressed(CompressionEncoding::Gzip)
            .accept_compressed(CompressionEncoding::Zstd);
        if let Some(encoding) = compression {
            client = client.send_compressed(encoding);
        }
        client.export(request).await
    }
}
