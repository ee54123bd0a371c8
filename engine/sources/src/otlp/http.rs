//! OTLP/HTTP: `POST /v1/traces`, `/v1/logs`, `/v1/metrics` with protobuf or
//! JSON bodies, optionally gzip-compressed, answered as the specification
//! says (200 with `partial_success`, 400, 413, 415, 503 with `Retry-After`).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use weir_core::Shutdown;

use super::conn::{self, ConnLimits};
use super::ingest::{ExportRequest, Ingest, Outcome};
use super::listener::Listener;
use super::receive::{self, too_large};

/// Serves OTLP/HTTP on `listener` until `shutdown` fires, then finishes the
/// requests in flight.
pub(crate) async fn serve(
    listener: Listener,
    ingest: Arc<Ingest>,
    limits: ConnLimits,
    shutdown: Shutdown,
) -> Result<(), String> {
    conn::serve(listener, router(ingest), limits, shutdown).await
}

fn router(ingest: Arc<Ingest>) -> Router {
    Router::new()
        .route("/v1/traces", post(export::<ExportTraceServiceRequest>))
        .route("/v1/logs", post(export::<ExportLogsServiceRequest>))
        .route("/v1/metrics", post(export::<ExportMetricsServiceRequest>))
        .with_state(ingest)
}

/// The body encodings OTLP/HTTP allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Protobuf,
    Json,
}

impl Format {
    fn content_type(self) -> &'static str {
        match self {
            Format::Protobuf => "application/x-protobuf",
            Format::Json => "application/json",
        }
    }
}

/// `google.rpc.Status`, the body of every OTLP/HTTP error response.
#[derive(Clone, PartialEq, Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

/// Answers one export: the body is received (bounded in time, size and
/// in-flight memory) before the request takes a slot, and decoded only
/// once it has one and the memory decoding takes is held.
async fn export<R: ExportRequest + PartialSuccess>(
    State(ingest): State<Arc<Ingest>>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let format = match content_type(&parts.headers) {
        Ok(f) => f,
        Err(message) => {
            ingest.count_request("http", "unsupported_media_type");
            return error(
                Format::Json,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                message,
                None,
            );
        }
    };
    let gzip = match gzipped(&parts.headers) {
        Ok(gzip) => gzip,
        Err(message) => {
            ingest.count_request("http", "unsupported_media_type");
            return error(format, StatusCode::UNSUPPORTED_MEDIA_TYPE, message, None);
        }
    };
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > ingest.max_request_size as u64) {
        ingest.count_request("http", "too_large");
        return respond::<R>(&ingest, format, too_large(&ingest));
    }
    let (body, mut held) =
        match receive::receive(&ingest, "http", body, ingest.max_request_size).await {
            Ok(received) => received,
            Err(outcome) => return respond::<R>(&ingest, format, outcome),
        };
    let _permit = match ingest.admit("http") {
        Ok(p) => p,
        Err(outcome) => return respond::<R>(&ingest, format, outcome),
    };
    let body = match gzip {
        false => body,
        true => match receive::gunzip(&ingest, "http", &body, 0, &mut held) {
            Ok(b) => Bytes::from(b),
            Err(outcome) => return respond::<R>(&ingest, format, outcome),
        },
    };
    let bound = match format {
        Format::Protobuf => R::decoded_size(&body),
        Format::Json => Ok(weir_core::convert::json_decoded_size(&body)),
    };
    if let Err(outcome) = ingest
        .hold_decoded("http", R::SIGNAL, bound, &mut held)
        .await
    {
        return respond::<R>(&ingest, format, outcome);
    }
    if format == Format::Protobuf {
        let outcome = ingest.ingest_protobuf::<R>("http", &body, held).await;
        return respond::<R>(&ingest, format, outcome);
    }
    let request = match R::decode_json(&body) {
        Ok(r) => r,
        Err(e) => {
            ingest.count_request("http", "invalid");
            let message = format!(
                "the body is not a valid OTLP {} JSON request: {e}",
                R::SIGNAL
            );
            return error(format, StatusCode::BAD_REQUEST, message, None);
        }
    };
    let wire = body.len();
    drop(body);
    let outcome = ingest.ingest("http", &request, wire, held).await;
    respond::<R>(&ingest, format, outcome)
}

fn content_type(headers: &HeaderMap) -> Result<Format, String> {
    let raw = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = raw
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/x-protobuf" | "application/protobuf" => Ok(Format::Protobuf),
        "application/json" => Ok(Format::Json),
        _ => Err(format!(
            "unsupported Content-Type `{raw}`: OTLP/HTTP takes `application/x-protobuf` or `application/json`"
        )),
    }
}

/// Whether the body is gzip-compressed (`Content-Encoding`).
fn gzipped(headers: &HeaderMap) -> Result<bool, String> {
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity")
        .trim()
        .to_ascii_lowercase();
    match encoding.as_str() {
        "" | "identity" => Ok(false),
        "gzip" | "x-gzip" => Ok(true),
        other => Err(format!(
            "unsupported Content-Encoding `{other}`: use `gzip` or none"
        )),
    }
}

fn respond<R: PartialSuccess>(ingest: &Ingest, format: Format, outcome: Outcome) -> Response {
    match outcome {
        Outcome::Accepted { rejected, message } => {
            let body = match format {
                Format::Protobuf => R::response_protobuf(rejected, message.unwrap_or_default()),
                Format::Json => R::response_json(rejected, message.unwrap_or_default()),
            };
            ([(header::CONTENT_TYPE, format.content_type())], body).into_response()
        }
        Outcome::Invalid(m) => error(format, StatusCode::BAD_REQUEST, m, None),
        Outcome::TooLarge(m) => error(format, StatusCode::PAYLOAD_TOO_LARGE, m, None),
        Outcome::TimedOut(m) => {
            let mut response = error(format, StatusCode::REQUEST_TIMEOUT, m, None);
            // What is left of the body will not be read: end the connection.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            response
        }
        Outcome::Unavailable(m) => error(
            format,
            StatusCode::SERVICE_UNAVAILABLE,
            m,
            Some(ingest.retry_after.as_secs_f64().ceil().max(1.0) as u64),
        ),
    }
}

fn error(
    format: Format,
    status: StatusCode,
    message: String,
    retry_after: Option<u64>,
) -> Response {
    // google.rpc.Code numbers for the HTTP statuses used here.
    let code = match status {
        StatusCode::BAD_REQUEST => 3,
        StatusCode::REQUEST_TIMEOUT => 4,
        StatusCode::PAYLOAD_TOO_LARGE => 8,
        StatusCode::SERVICE_UNAVAILABLE => 14,
        _ => 2,
    };
    let body = match format {
        Format::Protobuf => RpcStatus {
            code,
            message: message.clone(),
        }
        .encode_to_vec(),
        Format::Json => serde_json::json!({ "code": code, "message": message })
            .to_string()
            .into_bytes(),
    };
    let mut response = (
        status,
        [(header::CONTENT_TYPE, format.content_type())],
        body,
    )
        .into_response();
    if let Some(secs) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

/// The success response of each signal, with its `partial_success`.
trait PartialSuccess {
    fn response_protobuf(rejected: u64, message: String) -> Vec<u8>;
    fn response_json(rejected: u64, message: String) -> Vec<u8>;
}

fn partial_json(field: &str, rejected: u64, message: String) -> Vec<u8> {
    if rejected == 0 && message.is_empty() {
        return b"{}".to_vec();
    }
    // OTLP/JSON writes 64-bit integers as strings.
    serde_json::json!({ "partialSuccess": { field: rejected.to_string(), "errorMessage": message } })
        .to_string()
        .into_bytes()
}

fn count(rejected: u64) -> i64 {
    i64::try_from(rejected).unwrap_or(i64::MAX)
}

impl PartialSuccess for ExportTraceServiceRequest {
    fn response_protobuf(rejected: u64, error_message: String) -> Vec<u8> {
        ExportTraceServiceResponse {
            partial_success: (rejected > 0 || !error_message.is_empty()).then(|| {
                ExportTracePartialSuccess {
                    rejected_spans: count(rejected),
                    error_message,
                }
            }),
        }
        .encode_to_vec()
    }
    fn response_json(rejected: u64, message: String) -> Vec<u8> {
        partial_json("rejectedSpans", rejected, message)
    }
}

impl PartialSuccess for ExportLogsServiceRequest {
    fn response_protobuf(rejected: u64, error_message: String) -> Vec<u8> {
        ExportLogsServiceResponse {
            partial_success: (rejected > 0 || !error_message.is_empty()).then(|| {
                ExportLogsPartialSuccess {
                    rejected_log_records: count(rejected),
                    error_message,
                }
            }),
        }
        .encode_to_vec()
    }
    fn response_json(rejected: u64, message: String) -> Vec<u8> {
        partial_json("rejectedLogRecords", rejected, message)
    }
}

impl PartialSuccess for ExportMetricsServiceRequest {
    fn response_protobuf(rejected: u64, error_message: String) -> Vec<u8> {
        ExportMetricsServiceResponse {
            partial_success: (rejected > 0 || !error_message.is_empty()).then(|| {
                ExportMetricsPartialSuccess {
                    rejected_data_points: count(rejected),
                    error_message,
                }
            }),
        }
        .encode_to_vec()
    }
    fn response_json(rejected: u64, message: String) -> Vec<u8> {
        partial_json("rejectedDataPoints", rejected, message)
    }
}
