//! A minimal OTLP server that decodes what it receives, counts it and drops it.
//!
//! It serves OTLP/gRPC (tonic, the generated services) and OTLP/HTTP (axum,
//! protobuf or JSON, gzip accepted) on listeners the caller binds. It is the
//! far end of the load generator's own tests and of `weir-otlp-blackhole`,
//! which measures the load generator's ceiling: a server doing the least any
//! OTLP server must do (decode the request) and nothing else.
//!
//! [`SinkBehaviour`] makes it misbehave on purpose (answer UNAVAILABLE / 503
//! on every n-th request, or report rejected records in `partial_success`) so
//! tests can check how the client counts such answers.

use std::future::Future;
use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use flate2::read::GzDecoder;
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
use prost::Message;
use tokio::net::TcpListener;
use tonic::codec::CompressionEncoding;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response as GrpcResponse, Status};
use weir_testkit::otlp::{count_data_points, count_log_records, count_spans};

/// Largest request the sink accepts (64 MiB).
pub const MAX_REQUEST_BYTES: usize = 64 << 20;

/// How the sink answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SinkBehaviour {
    /// Report this many records rejected in every accepted request's `partial_success`
    /// (capped at the request's record count).
    pub rejected_per_request: u64,
    /// Answer every n-th request with gRPC UNAVAILABLE / HTTP 503 (0 = never).
    pub unavailable_every: u64,
    /// Wait this long before answering each gRPC request: a slow backend.
    pub delay: std::time::Duration,
}

/// What the sink has received.
#[derive(Debug, Default)]
pub struct SinkCounters {
    /// Requests received, refused ones included.
    pub requests: AtomicU64,
    /// Requests refused on purpose (UNAVAILABLE / 503).
    pub refused: AtomicU64,
    /// Spans accepted.
    pub spans: AtomicU64,
    /// Log records accepted.
    pub logs: AtomicU64,
    /// Metric data points accepted.
    pub data_points: AtomicU64,
    /// Request body bytes received over HTTP (as sent, before gunzip).
    pub http_bytes: AtomicU64,
}

impl SinkCounters {
    /// Spans, log records and data points accepted, together.
    pub fn records(&self) -> u64 {
        self.spans.load(Ordering::Relaxed)
            + self.logs.load(Ordering::Relaxed)
            + self.data_points.load(Ordering::Relaxed)
    }
}

/// The sink's shared state.
#[derive(Debug, Default)]
pub struct Sink {
    /// What it has received.
    pub counters: SinkCounters,
    /// How it answers.
    pub behaviour: SinkBehaviour,
}

/// What the sink decided for one request.
enum Verdict {
    Refuse,
    Accept { rejected: u64 },
}

impl Sink {
    /// A sink that answers as `behaviour` says.
    pub fn new(behaviour: SinkBehaviour) -> Arc<Self> {
        Arc::new(Self {
            counters: SinkCounters::default(),
            behaviour,
        })
    }

    /// Counts a request of `records` records into `counter` and decides the answer.
    fn admit(&self, counter: &AtomicU64, records: usize) -> Verdict {
        let n = self.counters.requests.fetch_add(1, Ordering::Relaxed) + 1;
        let every = self.behaviour.unavailable_every;
        if every > 0 && n.is_multiple_of(every) {
            self.counters.refused.fetch_add(1, Ordering::Relaxed);
            return Verdict::Refuse;
        }
        let records = records as u64;
        let rejected = self.behaviour.rejected_per_request.min(records);
        counter.fetch_add(records - rejected, Ordering::Relaxed);
        Verdict::Accept { rejected }
    }

    fn traces(&self, request: &ExportTraceServiceRequest) -> Option<ExportTraceServiceResponse> {
        match self.admit(&self.counters.spans, count_spans(request)) {
            Verdict::Refuse => None,
            Verdict::Accept { rejected } => Some(ExportTraceServiceResponse {
                partial_success: (rejected > 0).then(|| ExportTracePartialSuccess {
                    rejected_spans: i64::try_from(rejected).unwrap_or(i64::MAX),
                    error_message: "rejected on purpose by the test sink".into(),
                }),
            }),
        }
    }

    fn logs(&self, request: &ExportLogsServiceRequest) -> Option<ExportLogsServiceResponse> {
        match self.admit(&self.counters.logs, count_log_records(request)) {
            Verdict::Refuse => None,
            Verdict::Accept { rejected } => Some(ExportLogsServiceResponse {
                partial_success: (rejected > 0).then(|| ExportLogsPartialSuccess {
                    rejected_log_records: i64::try_from(rejected).unwrap_or(i64::MAX),
                    error_message: "rejected on purpose by the test sink".into(),
                }),
            }),
        }
    }

    fn metrics(
        &self,
        request: &ExportMetricsServiceRequest,
    ) -> Option<ExportMetricsServiceResponse> {
        match self.admit(&self.counters.data_points, count_data_points(request)) {
            Verdict::Refuse => None,
            Verdict::Accept { rejected } => Some(ExportMetricsServiceResponse {
                partial_success: (rejected > 0).then(|| ExportMetricsPartialSuccess {
                    rejected_data_points: i64::try_from(rejected).unwrap_or(i64::MAX),
                    error_message: "rejected on purpose by the test sink".into(),
                }),
            }),
        }
    }
}

fn refused() -> Status {
    Status::unavailable("refused on purpose by the test sink; retry later")
}

/// The gRPC face of the sink.
#[derive(Debug, Clone)]
struct GrpcSink(Arc<Sink>);

#[async_trait::async_trait]
impl TraceService for GrpcSink {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<GrpcResponse<ExportTraceServiceResponse>, Status> {
        if !self.0.behaviour.delay.is_zero() {
            tokio::time::sleep(self.0.behaviour.delay).await;
        }
        self.0
            .traces(request.get_ref())
            .map(GrpcResponse::new)
            .ok_or_else(refused)
    }
}

#[async_trait::async_trait]
impl LogsService for GrpcSink {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<GrpcResponse<ExportLogsServiceResponse>, Status> {
        if !self.0.behaviour.delay.is_zero() {
            tokio::time::sleep(self.0.behaviour.delay).await;
        }
        self.0
            .logs(request.get_ref())
            .map(GrpcResponse::new)
            .ok_or_else(refused)
    }
}

#[async_trait::async_trait]
impl MetricsService for GrpcSink {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<GrpcResponse<ExportMetricsServiceResponse>, Status> {
        if !self.0.behaviour.delay.is_zero() {
            tokio::time::sleep(self.0.behaviour.delay).await;
        }
        self.0
            .metrics(request.get_ref())
            .map(GrpcResponse::new)
            .ok_or_else(refused)
    }
}

/// Serves OTLP/gRPC on `listener` until `shutdown` completes.
pub async fn serve_grpc(
    listener: TcpListener,
    sink: Arc<Sink>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let svc = GrpcSink(sink);
    tonic::transport::Server::builder()
        .initial_connection_window_size(8 << 20)
        .initial_stream_window_size(2 << 20)
        .add_service(
            TraceServiceServer::new(svc.clone())
                .accept_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(MAX_REQUEST_BYTES),
        )
        .add_service(
            LogsServiceServer::new(svc.clone())
                .accept_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(MAX_REQUEST_BYTES),
        )
        .add_service(
            MetricsServiceServer::new(svc)
                .accept_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(MAX_REQUEST_BYTES),
        )
        .serve_with_incoming_shutdown(
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        )
        .await
}

/// Serves OTLP/HTTP on `listener` until `shutdown` completes.
pub async fn serve_http(
    listener: TcpListener,
    sink: Arc<Sink>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = Router::new()
        .route("/v1/traces", post(http_traces))
        .route("/v1/logs", post(http_logs))
        .route("/v1/metrics", post(http_metrics))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        .with_state(sink);
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Whether the request body is OTLP/JSON (else protobuf).
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// A request the sink cannot read: answered 400 with the reason.
struct BadRequest(String);

impl IntoResponse for BadRequest {
    fn into_response(self) -> Response {
        (StatusCode::BAD_REQUEST, self.0).into_response()
    }
}

/// The request body, gunzipped when `Content-Encoding: gzip`.
fn read_body(headers: &HeaderMap, body: Bytes) -> Result<Bytes, BadRequest> {
    let gzip = headers
        .get(header::CONTENT_ENCODING)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
    if !gzip {
        return Ok(body);
    }
    let mut out = Vec::with_capacity(body.len() * 4);
    GzDecoder::new(&body[..])
        .take(MAX_REQUEST_BYTES as u64)
        .read_to_end(&mut out)
        .map_err(|e| BadRequest(format!("bad gzip body: {e}")))?;
    Ok(Bytes::from(out))
}

fn decode<M: Message + Default + serde::de::DeserializeOwned>(
    json: bool,
    body: &[u8],
) -> Result<M, BadRequest> {
    let result = if json {
        serde_json::from_slice(body).map_err(|e| e.to_string())
    } else {
        M::decode(body).map_err(|e| e.to_string())
    };
    result.map_err(|e| BadRequest(format!("undecodable OTLP body: {e}")))
}

fn encode<M: Message + serde::Serialize>(json: bool, message: &M) -> Response {
    let (content_type, body) = if json {
        (
            "application/json",
            serde_json::to_vec(message).unwrap_or_default(),
        )
    } else {
        ("application/x-protobuf", message.encode_to_vec())
    };
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

fn http_refused() -> Response {
    let mut response = (
        StatusCode::SERVICE_UNAVAILABLE,
        "refused on purpose by the test sink",
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

async fn http_traces(State(sink): State<Arc<Sink>>, headers: HeaderMap, body: Bytes) -> Response {
    sink.counters
        .http_bytes
        .fetch_add(body.len() as u64, Ordering::Relaxed);
    let json = is_json(&headers);
    let request: ExportTraceServiceRequest =
        match read_body(&headers, body).and_then(|b| decode(json, &b)) {
            Ok(r) => r,
            Err(bad) => return bad.into_response(),
        };
    sink.traces(&request)
        .map_or_else(http_refused, |r| encode(json, &r))
}

async fn http_logs(State(sink): State<Arc<Sink>>, headers: HeaderMap, body: Bytes) -> Response {
    sink.counters
        .http_bytes
        .fetch_add(body.len() as u64, Ordering::Relaxed);
    let json = is_json(&headers);
    let request: ExportLogsServiceRequest =
        match read_body(&headers, body).and_then(|b| decode(json, &b)) {
            Ok(r) => r,
            Err(bad) => return bad.into_response(),
        };
    sink.logs(&request)
        .map_or_else(http_refused, |r| encode(json, &r))
}

async fn http_metrics(State(sink): State<Arc<Sink>>, headers: HeaderMap, body: Bytes) -> Response {
    sink.counters
        .http_bytes
        .fetch_add(body.len() as u64, Ordering::Relaxed);
    let json = is_json(&headers);
    let request: ExportMetricsServiceRequest =
        match read_body(&headers, body).and_then(|b| decode(json, &b)) {
            Ok(r) => r,
            Err(bad) => return bad.into_response(),
        };
    sink.metrics(&request)
        .map_or_else(http_refused, |r| encode(json, &r))
}
