//! The `otlp` exporter against receivers started in the test on
//! 127.0.0.1: a tonic server of the three OTLP/gRPC services and an axum
//! server of OTLP/HTTP, which keep what arrives (decoded) and answer as
//! told. A receiving Weir cannot be started from this crate's tests (it
//! would depend on the CLI), so what arrives is compared with what
//! `batch_to_*` makes of the same rows.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow::record_batch::RecordBatch;
use axum::Router;
use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
    logs_service_server::{LogsService, LogsServiceServer},
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
    metrics_service_server::{MetricsService, MetricsServiceServer},
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
    trace_service_server::{TraceService, TraceServiceServer},
};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::metrics::v1::AggregationTemporality;
use prost::Message as _;
use tonic::codec::CompressionEncoding;
use tonic::metadata::MetadataMap;
use tonic::transport::server::TcpIncoming;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt as _};
use weir_core::Signal;
use weir_core::convert::{self, json};
use weir_export::otlp::{Compression, OtlpConfig, OtlpExporter, Protocol};
use weir_export::{ExportError, Exporter};
use weir_testkit::{kv, otlp};

// ---- the data ----

const T: u64 = 1_700_000_000_000_000_000;

fn spans() -> ExportTraceServiceRequest {
    otlp::Group::new([
        otlp::span(&[1; 16], &[2; 8], "GET /cart", T, T + 5_000_000),
        otlp::span(&[1; 16], &[3; 8], "SELECT", T + 1_000, T + 2_000_000),
    ])
    .service("checkout")
    .scope("tracer", "1.0")
    .spans()
}

fn logs(n: u64) -> ExportLogsServiceRequest {
    otlp::Group::new((0..n).map(|i| LogRecord {
        attributes: vec![kv::int("i", i as i64)],
        ..otlp::log(T + i, 9, &format!("record {i} {}", "x".repeat(30)))
    }))
    .service("checkout")
    .logs()
}

fn metrics() -> ExportMetricsServiceRequest {
    otlp::Group::new([
        otlp::gauge(
            "memory",
            vec![otlp::double_point(T, 10.0), otlp::double_point(T + 1, 12.0)],
        ),
        otlp::sum(
            "requests",
            vec![otlp::int_point(T, 3)],
            AggregationTemporality::Cumulative,
            true,
        ),
    ])
    .service("checkout")
    .metrics()
}

fn span_rows() -> RecordBatch {
    convert::spans_to_batch(&spans()).expect("spans").batch
}

fn log_rows(n: u64) -> RecordBatch {
    convert::logs_to_batch(&logs(n)).expect("logs").batch
}

fn metric_rows() -> RecordBatch {
    convert::metrics_to_batch(&metrics())
        .expect("metrics")
        .batch
}

// ---- the gRPC receiver ----

/// One request a receiver got.
#[derive(Debug, Clone, PartialEq)]
enum Got {
    Spans(ExportTraceServiceRequest),
    Logs(ExportLogsServiceRequest),
    Metrics(ExportMetricsServiceRequest),
}

/// A receiver's answer to a call: an error, or success with a partial
/// success of logs (rejected, message).
type Answer = Result<Option<(i64, String)>, Status>;

/// How the gRPC receiver answers.
#[derive(Clone)]
struct Receiver {
    got: Arc<Mutex<Vec<(MetadataMap, Got)>>>,
    /// An error for every call, or a partial success of logs.
    answer: Arc<dyn Fn() -> Answer + Send + Sync>,
}

impl Receiver {
    fn keep(&self, metadata: &MetadataMap, got: Got) -> Answer {
        self.got.lock().expect("lock").push((metadata.clone(), got));
        (self.answer)()
    }

    fn got(&self) -> Vec<(MetadataMap, Got)> {
        self.got.lock().expect("lock").clone()
    }
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, Status> {
        let metadata = request.metadata().clone();
        self.keep(&metadata, Got::Spans(request.into_inner()))?;
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl LogsService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, Status> {
        let metadata = request.metadata().clone();
        let partial = self.keep(&metadata, Got::Logs(request.into_inner()))?;
        Ok(tonic::Response::new(ExportLogsServiceResponse {
            partial_success: partial.map(|(rejected, message)| ExportLogsPartialSuccess {
                rejected_log_records: rejected,
                error_message: message,
            }),
        }))
    }
}

#[tonic::async_trait]
impl MetricsService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, Status> {
        let metadata = request.metadata().clone();
        self.keep(&metadata, Got::Metrics(request.into_inner()))?;
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

/// A gRPC receiver of the three services on 127.0.0.1, taking gzip and
/// zstd; returns its endpoint.
async fn grpc_receiver(answer: impl Fn() -> Answer + Send + Sync + 'static) -> (String, Receiver) {
    let receiver = Receiver {
        got: Arc::default(),
        answer: Arc::new(answer),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("address"));
    let incoming = TcpIncoming::from(listener);
    let encodings = [CompressionEncoding::Gzip, CompressionEncoding::Zstd];
    let mut traces = TraceServiceServer::new(receiver.clone());
    let mut logs = LogsServiceServer::new(receiver.clone());
    let mut metrics = MetricsServiceServer::new(receiver.clone());
    for encoding in encodings {
        traces = traces.accept_compressed(encoding);
        logs = logs.accept_compressed(encoding);
        metrics = metrics.accept_compressed(encoding);
    }
    let server = tonic::transport::Server::builder()
        .add_service(traces)
        .add_service(logs)
        .add_service(metrics);
    tokio::spawn(server.serve_with_incoming(incoming));
    (endpoint, receiver)
}

fn ok() -> Answer {
    Ok(None)
}

// ---- the HTTP receiver ----

/// What the HTTP receiver got: path, headers, body as sent.
type HttpGot = Arc<Mutex<Vec<(String, HeaderMap, Bytes)>>>;

/// An OTLP/HTTP receiver on 127.0.0.1 answering every request with
/// `status`, `Retry-After` and `body`; returns its base URL.
async fn http_receiver(
    status: StatusCode,
    retry_after: Option<&'static str>,
    body: Vec<u8>,
) -> (String, HttpGot) {
    let got: HttpGot = Arc::default();
    let kept = got.clone();
    let app = Router::new().route(
        "/v1/{signal}",
        post(
            move |Path(signal): Path<String>, headers: HeaderMap, bytes: Bytes| {
                let kept = kept.clone();
                let body = body.clone();
                async move {
                    kept.lock()
                        .expect("lock")
                        .push((format!("/v1/{signal}"), headers, bytes));
                    let mut answer = axum::http::Response::builder().status(status);
                    if let Some(after) = retry_after {
                        answer = answer.header("Retry-After", after);
                    }
                    answer.body(axum::body::Body::from(body)).expect("response")
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, got)
}

/// A body as sent, decompressed as its `Content-Encoding` says.
fn decompressed(headers: &HeaderMap, body: &[u8]) -> Vec<u8> {
    use std::io::Read as _;
    match headers.get("content-encoding").map(|v| v.as_bytes()) {
        None => body.to_vec(),
        Some(b"gzip") => {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(body)
                .read_to_end(&mut out)
                .expect("gzip");
            out
        }
        Some(b"zstd") => zstd::decode_all(body).expect("zstd"),
        Some(other) => panic!("unexpected encoding {other:?}"),
    }
}

// ---- the tests ----

/// Guarantees: over gRPC with gzip, each signal arrives as exactly the
/// request `batch_to_*` makes of the rows, with the headers given inline,
/// from the environment and from a file, and the tenant, as metadata.
#[tokio::test]
async fn grpc_every_signal_arrives_exactly_with_headers() {
    let (endpoint, receiver) = grpc_receiver(ok).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let secret = dir.path().join("token");
    std::fs::write(&secret, "Bearer from-file\n").expect("write secret");
    let mut config = OtlpConfig {
        compression: Compression::Gzip,
        tenant: Some("team-a".to_string()),
        ..OtlpConfig::new(&endpoint)
    };
    config
        .headers
        .insert("x-team".to_string(), "checkout".into());
    config
        .headers_from_env
        .insert("x-path".to_string(), "PATH".to_string());
    config
        .headers_from_file
        .insert("authorization".to_string(), secret);
    let exporter = OtlpExporter::new("otlp", &config).expect("exporter");
    for (signal, rows) in [
        (Signal::Spans, span_rows()),
        (Signal::Logs, log_rows(3)),
        (Signal::Metrics, metric_rows()),
    ] {
        let exported = exporter.export(signal, &rows).await.expect("taken");
        assert_eq!(exported.rejected, 0);
    }
    let got = receiver.got();
    let want = [
        Got::Spans(convert::batch_to_spans(&span_rows()).expect("spans")),
        Got::Logs(convert::batch_to_logs(&log_rows(3)).expect("logs")),
        Got::Metrics(convert::batch_to_metrics(&metric_rows()).expect("metrics")),
    ];
    assert_eq!(got.iter().map(|(_, g)| g.clone()).collect::<Vec<_>>(), want);
    let path = std::env::var("PATH").expect("PATH is set");
    for (metadata, _) in &got {
        let get = |name: &str| metadata.get(name).and_then(|v| v.to_str().ok());
        assert_eq!(get("grpc-encoding"), Some("gzip"));
        assert_eq!(get("x-team"), Some("checkout"));
        assert_eq!(get("x-path"), Some(path.as_str()));
        assert_eq!(get("authorization"), Some("Bearer from-file"));
        assert_eq!(get("x-scope-orgid"), Some("team-a"));
        assert!(get("user-agent").is_some_and(|v| v.starts_with("weir/")));
    }
}

/// Guarantees: over HTTP each signal goes to its path and arrives as
/// exactly the request `batch_to_*` makes: protobuf with gzip, JSON with
/// zstd.
#[tokio::test]
async fn http_every_signal_arrives_exactly_as_protobuf_and_json() {
    for (protocol, compression) in [
        (Protocol::HttpProtobuf, Compression::Gzip),
        (Protocol::HttpJson, Compression::Zstd),
    ] {
        let (url, got) = http_receiver(StatusCode::OK, None, Vec::new()).await;
        let config = OtlpConfig {
            protocol,
            compression,
            ..OtlpConfig::new(&url)
        };
        let exporter = OtlpExporter::new("otlp", &config).expect("exporter");
        exporter
            .export(Signal::Spans, &span_rows())
            .await
            .expect("spans taken");
        exporter
            .export(Signal::Logs, &log_rows(3))
            .await
            .expect("logs taken");
        exporter
            .export(Signal::Metrics, &metric_rows())
            .await
            .expect("metrics taken");
        let got = got.lock().expect("lock").clone();
        let paths: Vec<&str> = got.iter().map(|(p, _, _)| p.as_str()).collect();
        assert_eq!(paths, ["/v1/traces", "/v1/logs", "/v1/metrics"]);
        let json = protocol == Protocol::HttpJson;
        let bodies: Vec<Vec<u8>> = got
            .iter()
            .map(|(_, headers, body)| {
                let content_type = if json {
                    "application/json"
                } else {
                    "application/x-protobuf"
                };
                assert_eq!(headers["content-type"], content_type);
                decompressed(headers, body)
            })
            .collect();
        let spans = convert::batch_to_spans(&span_rows()).expect("spans");
        let logs = convert::batch_to_logs(&log_rows(3)).expect("logs");
        let metrics = convert::batch_to_metrics(&metric_rows()).expect("metrics");
        if json {
            assert_eq!(json::decode_spans(&bodies[0]).expect("spans"), spans);
            assert_eq!(json::decode_logs(&bodies[1]).expect("logs"), logs);
            assert_eq!(json::decode_metrics(&bodies[2]).expect("metrics"), metrics);
        } else {
            assert_eq!(
                ExportTraceServiceRequest::decode(&bodies[0][..]).expect("spans"),
                spans
            );
            assert_eq!(
                ExportLogsServiceRequest::decode(&bodies[1][..]).expect("logs"),
                logs
            );
            assert_eq!(
                ExportMetricsServiceRequest::decode(&bodies[2][..]).expect("metrics"),
                metrics
            );
        }
    }
}

/// Guarantees: a batch larger than `max_request_bytes` arrives in several
/// requests, none over the limit, together holding every record once in
/// order; zstd compression is taken by the receiver.
#[tokio::test]
async fn grpc_requests_are_cut_under_max_request_bytes() {
    let (endpoint, receiver) = grpc_receiver(ok).await;
    let limit = 2000;
    let config = OtlpConfig {
        max_request_bytes: limit,
        compression: Compression::Zstd,
        ..OtlpConfig::new(&endpoint)
    };
    let exporter = OtlpExporter::new("otlp", &config).expect("exporter");
    let rows = log_rows(200);
    let exported = exporter.export(Signal::Logs, &rows).await.expect("taken");
    assert_eq!(exported.rejected, 0);
    let got = receiver.got();
    assert!(got.len() >= 5, "{} requests", got.len());
    let mut records = Vec::new();
    for (metadata, request) in got {
        assert_eq!(metadata.get("grpc-encoding").expect("encoding"), "zstd");
        let Got::Logs(request) = request else {
            panic!("not logs");
        };
        assert!(request.encoded_len() as u64 <= limit);
        for r in request.resource_logs {
            for s in r.scope_logs {
                records.extend(s.log_records);
            }
        }
    }
    let whole = convert::batch_to_logs(&rows).expect("logs");
    let want: Vec<LogRecord> = otlp::log_records_of([&whole]).cloned().collect();
    assert_eq!(records, want);
}

/// Guarantees: spans whose request takes exactly `max_request_bytes` go
/// as one request holding the bytes prost makes of `batch_to_spans`; with
/// a limit one byte smaller they are cut into requests within it, which
/// together hold every span once, in order.
#[tokio::test]
async fn spans_go_whole_up_to_the_limit_and_cut_over_it() {
    let whole = convert::batch_to_spans(&span_rows()).expect("spans");
    let size = whole.encoded_len() as u64;
    for (limit, requests) in [(size, 1), (size - 1, 2)] {
        let (url, got) = http_receiver(StatusCode::OK, None, Vec::new()).await;
        let config = OtlpConfig {
            protocol: Protocol::HttpProtobuf,
            max_request_bytes: limit,
            ..OtlpConfig::new(&url)
        };
        let exporter = OtlpExporter::new("otlp", &config).expect("exporter");
        let exported = exporter
            .export(Signal::Spans, &span_rows())
            .await
            .expect("taken");
        assert_eq!(exported.rejected, 0);
        let got = got.lock().expect("lock").clone();
        assert_eq!(got.len(), requests, "limit {limit}");
        let mut spans = Vec::new();
        for (_, headers, body) in &got {
            let body = decompressed(headers, body);
            assert!(body.len() as u64 <= limit);
            if requests == 1 {
                assert_eq!(body, whole.encode_to_vec());
            }
            let request = ExportTraceServiceRequest::decode(&body[..]).expect("spans");
            spans.extend(
                request
                    .resource_spans
                    .into_iter()
                    .flat_map(|r| r.scope_spans)
                    .flat_map(|s| s.spans),
            );
        }
        let want: Vec<_> = whole
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| s.spans.clone())
            .collect();
        assert_eq!(spans, want);
    }
}

/// Guarantees: `UNAVAILABLE` with a `RetryInfo` is retryable after the
/// receiver's delay; `RESOURCE_EXHAUSTED` without one and
/// `INVALID_ARGUMENT` are permanent, counting every record and naming the
/// endpoint.
#[tokio::test]
async fn grpc_statuses_follow_the_retry_rules() {
    let (endpoint, _) = grpc_receiver(|| {
        Err(Status::with_error_details(
            Code::Unavailable,
            "draining",
            ErrorDetails::with_retry_info(Some(Duration::from_secs(3))),
        ))
    })
    .await;
    let exporter = OtlpExporter::new("otlp", &OtlpConfig::new(&endpoint)).expect("exporter");
    let error = exporter
        .export(Signal::Spans, &span_rows())
        .await
        .expect_err("unavailable");
    let ExportError::Retryable { reason, after } = &error else {
        panic!("not retryable: {error:?}");
    };
    assert_eq!(*after, Some(Duration::from_secs(3)));
    assert!(
        reason.contains(&endpoint) && reason.contains("draining"),
        "{reason}"
    );

    for code in [Code::InvalidArgument, Code::ResourceExhausted] {
        let (endpoint, _) = grpc_receiver(move || Err(Status::new(code, "bad data"))).await;
        let exporter = OtlpExporter::new("otlp", &OtlpConfig::new(&endpoint)).expect("exporter");
        let error = exporter
            .export(Signal::Logs, &log_rows(4))
            .await
            .expect_err("refused");
        let ExportError::Permanent { reason, records } = &error else {
            panic!("{code:?} not permanent: {error:?}");
        };
        assert_eq!(*records, 4);
        assert!(
            reason.contains(&endpoint) && reason.contains("bad data"),
            "{reason}"
        );
    }
}

/// Guarantees: a receiver nobody listens at is retryable.
#[tokio::test]
async fn grpc_unreachable_receiver_is_retryable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let exporter = OtlpExporter::new("otlp", &OtlpConfig::new(&endpoint)).expect("exporter");
    let error = exporter
        .export(Signal::Metrics, &metric_rows())
        .await
        .expect_err("unreachable");
    assert!(error.is_retryable(), "{error:?}");
    assert!(error.to_string().contains(&endpoint), "{error}");
}

/// Guarantees: HTTP 503 with `Retry-After` is retryable after it; 400 and
/// 500 are permanent with the receiver's reason.
#[tokio::test]
async fn http_statuses_follow_the_retry_rules() {
    let (url, _) =
        http_receiver(StatusCode::SERVICE_UNAVAILABLE, Some("7"), b"busy".to_vec()).await;
    let config = OtlpConfig {
        protocol: Protocol::HttpProtobuf,
        ..OtlpConfig::new(&url)
    };
    let exporter = OtlpExporter::new("otlp", &config).expect("exporter");
    let error = exporter
        .export(Signal::Logs, &log_rows(2))
        .await
        .expect_err("unavailable");
    let ExportError::Retryable { after, .. } = &error else {
        panic!("not retryable: {error:?}");
    };
    assert_eq!(*after, Some(Duration::from_secs(7)));

    for status in [StatusCode::BAD_REQUEST, StatusCode::INTERNAL_SERVER_ERROR] {
        let (url, _) = http_receiver(status, None, b"unknown field".to_vec()).await;
        let config = OtlpConfig {
            protocol: Protocol::HttpProtobuf,
            ..OtlpConfig::new(&url)
        };
        let exporter = OtlpExporter::new("otlp", &config).expect("exporter");
        let error = exporter
            .export(Signal::Logs, &log_rows(2))
            .await
            .expect_err("refused");
        let ExportError::Permanent { reason, records } = &error else {
            panic!("{status} not permanent: {error:?}");
        };
        assert_eq!(*records, 2);
        assert!(
            reason.contains(status.as_str()) && reason.contains("unknown field"),
            "{reason}"
        );
    }
}

/// Guarantees: a `partial_success` is counted in `Exported.rejected` with
/// the receiver's message, over gRPC and over HTTP (protobuf and JSON).
#[tokio::test]
async fn partial_success_is_counted() {
    let (endpoint, _) = grpc_receiver(|| Ok(Some((2, "too old".to_string())))).await;
    let exporter = OtlpExporter::new("otlp", &OtlpConfig::new(&endpoint)).expect("exporter");
    let exported = exporter
        .export(Signal::Logs, &log_rows(5))
        .await
        .expect("taken");
    assert_eq!(exported.rejected, 2);
    assert_eq!(exported.rejection.as_deref(), Some("too old"));

    let protobuf = ExportLogsServiceResponse {
        partial_success: Some(ExportLogsPartialSuccess {
            rejected_log_records: 1,
            error_message: "bad record".to_string(),
        }),
    }
    .encode_to_vec();
    let json = br#"{"partialSuccess":{"rejectedLogRecords":"3","errorMessage":"bad json"}}"#;
    for (protocol, body, rejected, message) in [
        (Protocol::HttpProtobuf, protobuf, 1, "bad record"),
        (Protocol::HttpJson, json.to_vec(), 3, "bad json"),
    ] {
        let (url, _) = http_receiver(StatusCode::OK, None, body).await;
        let config = OtlpConfig {
            protocol,
            ..OtlpConfig::new(&url)
        };
        let exporter = OtlpExporter::new("otlp", &config).expect("exporter");
        let exported = exporter
            .export(Signal::Logs, &log_rows(5))
            .await
            .expect("taken");
        assert_eq!(exported.rejected, rejected);
        assert_eq!(exported.rejection.as_deref(), Some(message));
    }
}

/// A CA and a certificate it signed for `localhost`: (CA PEM, server
/// certificate PEM, server key PEM).
fn private_ca() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("CA key"))
        .expect("CA certificate");
    let key = KeyPair::generate().expect("server key");
    let server = CertificateParams::new(vec!["localhost".to_string()])
        .expect("server params")
        .signed_by(&key, &ca)
        .expect("server certificate");
    (ca.pem(), server.pem(), key.serialize_pem())
}

/// Guarantees: over gRPC with TLS, a receiver whose certificate a private
/// CA signed is trusted with `tls.ca_file`, and the rows arrive; without
/// it the handshake fails and the export is retryable.
#[tokio::test]
async fn grpc_over_tls_trusts_the_ca_file() {
    let (ca, cert, key) = private_ca();
    let receiver = Receiver {
        got: Arc::default(),
        answer: Arc::new(ok),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("address").port();
    let server = tonic::transport::Server::builder()
        .tls_config(
            tonic::transport::ServerTlsConfig::new()
                .identity(tonic::transport::Identity::from_pem(cert, key)),
        )
        .expect("server TLS")
        .add_service(TraceServiceServer::new(receiver.clone()));
    tokio::spawn(server.serve_with_incoming(TcpIncoming::from(listener)));

    let dir = tempfile::tempdir().expect("temp dir");
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca).expect("write CA");
    let endpoint = format!("https://localhost:{port}");
    let mut config = OtlpConfig::new(&endpoint);
    config.tls.ca_file = Some(ca_file);
    assert!(config.problems().is_empty());
    let exporter = OtlpExporter::new("otlp", &config).expect("exporter");
    exporter
        .preflight()
        .await
        .expect("the start-time check passes");
    exporter
        .export(Signal::Spans, &span_rows())
        .await
        .expect("taken over TLS");
    let want = Got::Spans(convert::batch_to_spans(&span_rows()).expect("spans"));
    assert_eq!(
        receiver
            .got()
            .into_iter()
            .map(|(_, g)| g)
            .collect::<Vec<_>>(),
        [want]
    );

    let untrusting = OtlpExporter::new("otlp", &OtlpConfig::new(&endpoint)).expect("exporter");
    let refused = untrusting
        .preflight()
        .await
        .expect_err("an unknown CA stops the start");
    assert!(
        refused.contains("certificate") && refused.contains("tls.ca_file"),
        "{refused}"
    );
    let error = untrusting
        .export(Signal::Spans, &span_rows())
        .await
        .expect_err("unknown CA");
    assert!(error.is_retryable(), "{error:?}");
    assert_eq!(receiver.got().len(), 1);
}

/// Guarantees: over HTTPS (a real TLS server: `openssl s_server`), the
/// start-time check refuses a certificate the sink cannot verify, saying
/// to set `tls.ca_file`, and passes once the CA is trusted; a backend
/// that is down is not refused (the sink retries it).
#[tokio::test]
async fn https_certificate_failures_stop_the_start() {
    let (ca, cert, key) = private_ca();
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, pem) in [("ca.pem", &ca), ("cert.pem", &cert), ("key.pem", &key)] {
        std::fs::write(dir.path().join(name), pem).expect("write PEM");
    }
    let port = weir_testkit::backends::free_port();
    let mut server = std::process::Command::new("openssl")
        .args(["s_server", "-quiet", "-www", "-accept"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("-cert")
        .arg(dir.path().join("cert.pem"))
        .arg("-key")
        .arg(dir.path().join("key.pem"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("openssl s_server starts");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "s_server did not listen"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let endpoint = format!("https://localhost:{port}");
    let mut config = OtlpConfig::new(&endpoint);
    config.protocol = Protocol::HttpProtobuf;
    let untrusting = OtlpExporter::new("otlp", &config).expect("exporter");
    let refused = untrusting.preflight().await.expect_err("an unknown CA");
    assert!(
        refused.contains("certificate") && refused.contains("tls.ca_file"),
        "{refused}"
    );
    config.tls.ca_file = Some(dir.path().join("ca.pem"));
    let trusting = OtlpExporter::new("otlp", &config).expect("exporter");
    trusting.preflight().await.expect("the CA is trusted");
    let _ = server.kill();
    let _ = server.wait();
    let down = OtlpExporter::new("otlp", &config).expect("exporter");
    down.preflight()
        .await
        .expect("a backend that is down is not refused");
}
