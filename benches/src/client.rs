//! Sending one ready request over OTLP/gRPC or OTLP/HTTP and classifying the answer.
//!
//! Three ways to send:
//! - [`Transport::GrpcRaw`] (the default for gRPC): tonic's gRPC client with a
//!   pass-through codec, so the pre-encoded protobuf body goes out as it is and
//!   only the response is decoded. With gzip, tonic compresses each request,
//!   which costs the generator CPU.
//! - [`Transport::GrpcTyped`]: the generated `TraceServiceClient`,
//!   `LogsServiceClient` and `MetricsServiceClient`, which encode the message
//!   on every request, as an SDK exporter does. Costs more generator CPU.
//! - [`Transport::Http`]: `reqwest` POSTs the pre-encoded (and pre-gzipped)
//!   body to `/v1/traces`, `/v1/logs` or `/v1/metrics`.
//!
//! Every answer becomes a [`Sent`] (with the records the server rejected in
//! `partial_success`) or a [`Failure`] with an [`ErrorKind`] for the report.

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use bytes::{BufMut, Bytes};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use prost::Message;
use tonic::codec::{Codec, CompressionEncoding, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};
use tonic_prost::ProstDecoder;

use crate::pool::{BodyEncoding, ExportRequest, Payload, Signal};

/// What went wrong with one request, grouped for the report.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The server answered with a gRPC status other than OK.
    Grpc(Code),
    /// The server answered with an HTTP status other than 2xx.
    Http(u16),
    /// No connection, or it broke (refused, reset, closed).
    Connection,
    /// No answer within the request timeout.
    Timeout,
    /// A success status with a body that does not decode as an export response.
    BadResponse,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::Grpc(code) => write!(f, "grpc {}", code_name(*code)),
            ErrorKind::Http(status) => write!(f, "http {status}"),
            ErrorKind::Connection => f.write_str("connection error"),
            ErrorKind::Timeout => f.write_str("timeout"),
            ErrorKind::BadResponse => f.write_str("bad response"),
        }
    }
}

/// The canonical upper-case name of a gRPC code, as in `UNAVAILABLE`.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// A request that failed.
#[derive(Debug, Clone)]
pub struct Failure {
    /// Its kind, for the report.
    pub kind: ErrorKind,
    /// The wait the server asked for (HTTP `Retry-After` in seconds), if any.
    pub retry_after: Option<Duration>,
    /// A human-readable detail (server message or transport error).
    pub detail: String,
}

impl Failure {
    fn new(kind: ErrorKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            retry_after: None,
            detail: detail.into(),
        }
    }

    /// Whether OTLP allows retrying it: gRPC UNAVAILABLE, RESOURCE_EXHAUSTED,
    /// ABORTED, DEADLINE_EXCEEDED, CANCELLED, OUT_OF_RANGE, DATA_LOSS; HTTP 429,
    /// 502, 503, 504; connection errors and timeouts.
    pub fn retryable(&self) -> bool {
        match &self.kind {
            ErrorKind::Grpc(code) => matches!(
                code,
                Code::Unavailable
                    | Code::ResourceExhausted
                    | Code::Aborted
                    | Code::DeadlineExceeded
                    | Code::Cancelled
                    | Code::OutOfRange
                    | Code::DataLoss
            ),
            ErrorKind::Http(status) => matches!(status, 429 | 502 | 503 | 504),
            ErrorKind::Connection | ErrorKind::Timeout => true,
            ErrorKind::BadResponse => false,
        }
    }
}

/// A request the server accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    /// Records the server reported as rejected in `partial_success`.
    pub rejected: u64,
}

/// Settings shared by all clients.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Where to send: `http://host:port`.
    pub endpoint: String,
    /// Give up on a request after this long.
    pub timeout: Duration,
    /// Gzip request bodies.
    pub gzip: bool,
    /// Body encoding for OTLP/HTTP.
    pub encoding: BodyEncoding,
}

/// Why a client could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The endpoint is not a valid URI.
    #[error(
        "invalid endpoint {endpoint:?}: {source}; expected a URL such as http://127.0.0.1:4317"
    )]
    InvalidEndpoint {
        /// The endpoint as given.
        endpoint: String,
        /// The parse error.
        source: tonic::transport::Error,
    },
    /// The gRPC server could not be reached.
    #[error(
        "could not connect to {endpoint}: {source:?}; is the server running and listening there?"
    )]
    Unreachable {
        /// The endpoint.
        endpoint: String,
        /// The transport error.
        source: tonic::transport::Error,
    },
    /// The HTTP client could not be built.
    #[error("could not build the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

/// Opens `connections` HTTP/2 connections to a gRPC endpoint.
pub async fn connect_grpc(
    options: &ClientOptions,
    connections: usize,
) -> Result<Vec<Channel>, ConnectError> {
    let endpoint = Endpoint::from_shared(options.endpoint.clone())
        .map_err(|source| ConnectError::InvalidEndpoint {
            endpoint: options.endpoint.clone(),
            source,
        })?
        .timeout(options.timeout)
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .initial_connection_window_size(8 << 20)
        .initial_stream_window_size(2 << 20);
    let mut channels = Vec::with_capacity(connections);
    for _ in 0..connections.max(1) {
        let channel = endpoint
            .connect()
            .await
            .map_err(|source| ConnectError::Unreachable {
                endpoint: options.endpoint.clone(),
                source,
            })?;
        channels.push(channel);
    }
    Ok(channels)
}

/// Builds the HTTP client, keeping up to `connections` idle keep-alive connections.
pub fn http_client(
    options: &ClientOptions,
    connections: usize,
) -> Result<reqwest::Client, ConnectError> {
    Ok(reqwest::Client::builder()
        .timeout(options.timeout)
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .pool_max_idle_per_host(connections.max(1))
        .build()?)
}

/// One worker's means of sending.
#[derive(Debug, Clone)]
#[expect(
    clippy::large_enum_variant,
    reason = "one transport per worker, made once: its size does not matter"
)]
pub enum Transport {
    /// gRPC with pre-encoded bodies.
    GrpcRaw(tonic::client::Grpc<Channel>),
    /// gRPC with the generated typed clients (encodes per request).
    GrpcTyped {
        /// Traces client.
        traces: TraceServiceClient<Channel>,
        /// Logs client.
        logs: LogsServiceClient<Channel>,
        /// Metrics client.
        metrics: MetricsServiceClient<Channel>,
    },
    /// OTLP/HTTP.
    Http {
        /// The shared HTTP client.
        client: reqwest::Client,
        /// `http://host:port` without a trailing slash.
        base: String,
        /// Body encoding.
        encoding: BodyEncoding,
        /// Whether bodies are gzipped.
        gzip: bool,
    },
}

impl Transport {
    /// A raw gRPC transport over `channel`.
    pub fn grpc_raw(channel: Channel, gzip: bool) -> Self {
        let mut grpc = tonic::client::Grpc::new(channel)
            .max_decoding_message_size(16 << 20)
            .max_encoding_message_size(usize::MAX);
        if gzip {
            grpc = grpc.send_compressed(CompressionEncoding::Gzip);
        }
        Transport::GrpcRaw(grpc)
    }

    /// A typed gRPC transport over `channel`.
    pub fn grpc_typed(channel: Channel, gzip: bool) -> Self {
        let mut traces =
            TraceServiceClient::new(channel.clone()).max_encoding_message_size(usize::MAX);
        let mut logs =
            LogsServiceClient::new(channel.clone()).max_encoding_message_size(usize::MAX);
        let mut metrics = MetricsServiceClient::new(channel).max_encoding_message_size(usize::MAX);
        if gzip {
            traces = traces.send_compressed(CompressionEncoding::Gzip);
            logs = logs.send_compressed(CompressionEncoding::Gzip);
            metrics = metrics.send_compressed(CompressionEncoding::Gzip);
        }
        Transport::GrpcTyped {
            traces,
            logs,
            metrics,
        }
    }

    /// An OTLP/HTTP transport.
    pub fn http(client: reqwest::Client, options: &ClientOptions) -> Self {
        Transport::Http {
            client,
            base: options.endpoint.trim_end_matches('/').to_owned(),
            encoding: options.encoding,
            gzip: options.gzip,
        }
    }

    /// Sends one request and classifies the answer.
    pub async fn send(&mut self, payload: &Payload) -> Result<Sent, Failure> {
        match self {
            Transport::GrpcRaw(grpc) => send_grpc_raw(grpc, payload).await,
            Transport::GrpcTyped {
                traces,
                logs,
                metrics,
            } => {
                let Some(message) = payload.message.as_deref() else {
                    return Err(Failure::new(
                        ErrorKind::BadResponse,
                        "typed gRPC needs the pool built with messages kept (internal error)",
                    ));
                };
                match message {
                    ExportRequest::Spans(m) => traces
                        .export(m.clone())
                        .await
                        .map(|r| rejected_spans(r.get_ref()))
                        .map_err(grpc_failure),
                    ExportRequest::Logs(m) => logs
                        .export(m.clone())
                        .await
                        .map(|r| rejected_logs(r.get_ref()))
                        .map_err(grpc_failure),
                    ExportRequest::Metrics(m) => metrics
                        .export(m.clone())
                        .await
                        .map(|r| rejected_points(r.get_ref()))
                        .map_err(grpc_failure),
                }
                .map(|rejected| Sent { rejected })
            }
            Transport::Http {
                client,
                base,
                encoding,
                gzip,
            } => send_http(client, base, *encoding, *gzip, payload).await,
        }
    }
}

fn rejected_spans(r: &ExportTraceServiceResponse) -> u64 {
    r.partial_success
        .as_ref()
        .map_or(0, |p| u64::try_from(p.rejected_spans).unwrap_or(0))
}

fn rejected_logs(r: &ExportLogsServiceResponse) -> u64 {
    r.partial_success
        .as_ref()
        .map_or(0, |p| u64::try_from(p.rejected_log_records).unwrap_or(0))
}

fn rejected_points(r: &ExportMetricsServiceResponse) -> u64 {
    r.partial_success
        .as_ref()
        .map_or(0, |p| u64::try_from(p.rejected_data_points).unwrap_or(0))
}

async fn send_grpc_raw(
    grpc: &mut tonic::client::Grpc<Channel>,
    payload: &Payload,
) -> Result<Sent, Failure> {
    grpc.ready()
        .await
        .map_err(|e| Failure::new(ErrorKind::Connection, e.to_string()))?;
    let path = PathAndQuery::from_static(payload.signal.grpc_path());
    let body = tonic::Request::new(payload.body.clone());
    let rejected = match payload.signal {
        Signal::Spans => grpc
            .unary(
                body,
                path,
                PreEncoded::<ExportTraceServiceResponse>::default(),
            )
            .await
            .map(|r| rejected_spans(r.get_ref())),
        Signal::Logs => grpc
            .unary(
                body,
                path,
                PreEncoded::<ExportLogsServiceResponse>::default(),
            )
            .await
            .map(|r| rejected_logs(r.get_ref())),
        Signal::Metrics => grpc
            .unary(
                body,
                path,
                PreEncoded::<ExportMetricsServiceResponse>::default(),
            )
            .await
            .map(|r| rejected_points(r.get_ref())),
    }
    .map_err(grpc_failure)?;
    Ok(Sent { rejected })
}

/// Classifies a gRPC status. Statuses tonic makes up on the client side
/// (connect errors, broken connections, timeouts) carry no response headers,
/// which tells them apart from statuses a server sent.
fn grpc_failure(status: Status) -> Failure {
    let local = status.metadata().is_empty();
    let kind = match status.code() {
        Code::Cancelled if local && status.message().contains("Timeout expired") => {
            ErrorKind::Timeout
        }
        Code::Unavailable | Code::Unknown | Code::Internal | Code::Cancelled if local => {
            ErrorKind::Connection
        }
        code => ErrorKind::Grpc(code),
    };
    Failure::new(
        kind,
        format!("{}: {}", code_name(status.code()), status.message()),
    )
}

async fn send_http(
    client: &reqwest::Client,
    base: &str,
    encoding: BodyEncoding,
    gzip: bool,
    payload: &Payload,
) -> Result<Sent, Failure> {
    let content_type = match encoding {
        BodyEncoding::Protobuf => "application/x-protobuf",
        BodyEncoding::Json => "application/json",
    };
    let mut request = client
        .post(format!("{base}{}", payload.signal.http_path()))
        .header(reqwest::header::CONTENT_TYPE, content_type)
        .body(payload.wire.clone());
    if gzip {
        request = request.header(reqwest::header::CONTENT_ENCODING, "gzip");
    }
    let response = request.send().await.map_err(http_transport_failure)?;
    let status = response.status();
    if !status.is_success() {
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let detail = response.text().await.unwrap_or_default();
        let mut failure = Failure::new(ErrorKind::Http(status.as_u16()), truncate(&detail, 200));
        failure.retry_after = retry_after;
        return Err(failure);
    }
    let json = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let body = response.bytes().await.map_err(http_transport_failure)?;
    let rejected = decode_http_response(payload.signal, &body, json)
        .map_err(|detail| Failure::new(ErrorKind::BadResponse, detail))?;
    Ok(Sent { rejected })
}

/// Reads the rejected count from an OTLP/HTTP success body (empty means none).
fn decode_http_response(signal: Signal, body: &[u8], json: bool) -> Result<u64, String> {
    if body.is_empty() {
        return Ok(0);
    }
    fn read<R: Message + Default + serde::de::DeserializeOwned>(
        body: &[u8],
        json: bool,
    ) -> Result<R, String> {
        if json {
            serde_json::from_slice(body).map_err(|e| format!("response is not OTLP/JSON: {e}"))
        } else {
            R::decode(body).map_err(|e| format!("response is not OTLP protobuf: {e}"))
        }
    }
    Ok(match signal {
        Signal::Spans => rejected_spans(&read(body, json)?),
        Signal::Logs => rejected_logs(&read(body, json)?),
        Signal::Metrics => rejected_points(&read(body, json)?),
    })
}

fn http_transport_failure(e: reqwest::Error) -> Failure {
    let kind = if e.is_timeout() {
        ErrorKind::Timeout
    } else {
        ErrorKind::Connection
    };
    let mut detail = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        detail.push_str(": ");
        detail.push_str(&s.to_string());
        source = s.source();
    }
    Failure::new(kind, detail)
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_owned(),
    }
}

/// A gRPC codec whose requests are already-encoded protobuf bytes and whose
/// responses decode as `R`.
#[derive(Debug)]
pub struct PreEncoded<R>(PhantomData<fn() -> R>);

impl<R> Default for PreEncoded<R> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

/// Writes pre-encoded bytes as they are.
#[derive(Debug, Default, Clone, Copy)]
pub struct BytesEncoder;

impl Encoder for BytesEncoder {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl<R: Message + Default + Send + 'static> Codec for PreEncoded<R> {
    type Encode = Bytes;
    type Decode = R;
    type Encoder = BytesEncoder;
    type Decoder = ProstDecoder<R>;

    fn encoder(&mut self) -> BytesEncoder {
        BytesEncoder
    }

    fn decoder(&mut self) -> ProstDecoder<R> {
        ProstDecoder::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// HTTP failures that OTLP says to retry are retryable; client errors are not.
    #[test]
    fn retryable_follows_the_otlp_spec() {
        let f = |kind| Failure::new(kind, "");
        assert!(f(ErrorKind::Http(503)).retryable());
        assert!(f(ErrorKind::Http(429)).retryable());
        assert!(!f(ErrorKind::Http(400)).retryable());
        assert!(f(ErrorKind::Grpc(Code::Unavailable)).retryable());
        assert!(!f(ErrorKind::Grpc(Code::InvalidArgument)).retryable());
        assert!(f(ErrorKind::Connection).retryable());
        assert!(!f(ErrorKind::BadResponse).retryable());
    }

    /// Error kinds print as the report shows them.
    #[test]
    fn error_kinds_print_readably() {
        assert_eq!(
            ErrorKind::Grpc(Code::Unavailable).to_string(),
            "grpc UNAVAILABLE"
        );
        assert_eq!(ErrorKind::Http(503).to_string(), "http 503");
        assert_eq!(ErrorKind::Connection.to_string(), "connection error");
    }

    /// An empty success body means nothing rejected; a partial_success body is read in both encodings.
    #[test]
    fn http_success_bodies_yield_rejected_counts() {
        assert_eq!(decode_http_response(Signal::Spans, b"", false), Ok(0));
        let response = ExportLogsServiceResponse {
            partial_success: Some(
                opentelemetry_proto::tonic::collector::logs::v1::ExportLogsPartialSuccess {
                    rejected_log_records: 7,
                    error_message: "too old".into(),
                },
            ),
        };
        let proto = response.encode_to_vec();
        assert_eq!(decode_http_response(Signal::Logs, &proto, false), Ok(7));
        let json = serde_json::to_vec(&response).expect("serialises");
        assert_eq!(decode_http_response(Signal::Logs, &json, true), Ok(7));
        assert!(decode_http_response(Signal::Logs, b"{not json", true).is_err());
    }
}
