//! The `loki` exporter against a test double of Loki's push endpoint: an
//! axum server on 127.0.0.1 that decodes each request with the exporter's
//! own copy of Loki's `push.proto` messages (or as Loki's push JSON) and
//! answers as Loki may. No Loki server runs here: it is not packaged for
//! Debian, and the double checks the wire format field by field instead.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow::record_batch::RecordBatch;
use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, KeyValueList, any_value};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use prost::Message as _;
use weir_core::Signal;
use weir_export::loki::proto::PushRequest;
use weir_export::loki::{Compression, Encoding, LokiConfig, LokiExporter};
use weir_export::{ExportError, Exporter};
use weir_testkit::{kv, otlp};

/// What the receiver got: each request's headers and body.
type Received = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

/// A push endpoint answering every request with `status`, `Retry-After`
/// and `body`; returns its base URL (no path) and what it receives.
async fn receiver(
    status: StatusCode,
    retry_after: Option<&'static str>,
    body: &'static str,
) -> (String, Received) {
    let received: Received = Arc::default();
    let kept = received.clone();
    let app = Router::new().route(
        "/loki/api/v1/push",
        post(move |headers: HeaderMap, bytes: Bytes| {
            let kept = kept.clone();
            async move {
                kept.lock().expect("lock").push((headers, bytes));
                let mut answer = axum::http::Response::builder().status(status);
                if let Some(after) = retry_after {
                    answer = answer.header("Retry-After", after);
                }
                answer.body(axum::body::Body::from(body)).expect("response")
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, received)
}

/// One entry as Loki stores it: (labels, ns, line, structured metadata).
type Pushed = (String, u64, String, Vec<(String, String)>);

/// The entries of a protobuf push body, checking its framing (snappy
/// block format, protobuf content type, no content encoding).
fn decode_protobuf(headers: &HeaderMap, body: &[u8]) -> Vec<Pushed> {
    assert_eq!(headers["content-type"], "application/x-protobuf");
    assert!(headers.get("content-encoding").is_none());
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .expect("snappy block format");
    let request = PushRequest::decode(&raw[..]).expect("a logproto.PushRequest");
    let mut out = Vec::new();
    for stream in request.streams {
        assert_eq!(stream.hash, 0);
        for e in stream.entries {
            let metadata = e
                .structured_metadata
                .into_iter()
                .map(|p| (p.name, p.value))
                .collect();
            let ns = e.timestamp.expect("a timestamp").unix_nanos();
            out.push((stream.labels.clone(), ns, e.line, metadata));
        }
    }
    out
}

/// The entries of a JSON push body (gunzipped when so encoded), with
/// labels written as the protobuf form writes them.
fn decode_json(headers: &HeaderMap, body: &[u8]) -> Vec<Pushed> {
    assert_eq!(headers["content-type"], "application/json");
    let mut raw = Vec::new();
    if headers.get("content-encoding").is_some_and(|v| v == "gzip") {
        flate2::read::GzDecoder::new(body)
            .read_to_end(&mut raw)
            .expect("gzip");
    } else {
        raw = body.to_vec();
    }
    let request: serde_json::Value = serde_json::from_slice(&raw).expect("JSON");
    let mut out = Vec::new();
    for stream in request["streams"].as_array().expect("streams") {
        let labels: Vec<String> = stream["stream"]
            .as_object()
            .expect("stream labels")
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let labels = format!("{{{}}}", labels.join(", "));
        for value in stream["values"].as_array().expect("values") {
            let ns = value[0].as_str().expect("ns as a string");
            let metadata = value
                .get(2)
                .and_then(|m| m.as_object())
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().expect("text").to_string()))
                        .collect()
                })
                .unwrap_or_default();
            out.push((
                labels.clone(),
                ns.parse().expect("ns"),
                value[1].as_str().expect("line").to_string(),
                metadata,
            ));
        }
    }
    out
}

/// Every entry the receiver got, in the order it got them.
fn entries(received: &Received) -> Vec<Pushed> {
    received
        .lock()
        .expect("lock")
        .iter()
        .flat_map(|(headers, body)| {
            if headers["content-type"] == "application/json" {
                decode_json(headers, body)
            } else {
                decode_protobuf(headers, body)
            }
        })
        .collect()
}

const T: u64 = 1_700_000_000_123_456_789;

fn string(key: &str, value: &str) -> KeyValue {
    kv::string(key, value)
}

/// Two services, records out of time order, each severity form, a map
/// body, ids and attributes.
fn logs() -> ExportLogsServiceRequest {
    let checkout = otlp::Group::new([
        LogRecord {
            severity_text: "WARN".to_string(),
            trace_id: vec![0x11; 16],
            span_id: vec![0x22; 8],
            attributes: vec![string("http.route", "/cart"), kv::int("attempt", 2)],
            ..otlp::log(T + 2, 13, "retrying payment")
        },
        otlp::log(T, 9, "started"),
        LogRecord {
            body: Some(AnyValue {
                value: Some(any_value::Value::KvlistValue(KeyValueList {
                    values: vec![kv::int("items", 3)],
                })),
            }),
            ..otlp::log(T + 1, 9, "")
        },
    ])
    .resource(vec![
        string("service.name", "checkout"),
        string("deployment.environment", "prod"),
        string("host.name", "node-1"),
    ])
    .scope("shop", "1.2");
    let worker = otlp::Group::new([LogRecord {
        observed_time_unix_nano: T + 5,
        ..otlp::log(0, 17, "queue full")
    }])
    .service("worker");
    otlp::logs_request([checkout, worker])
}

fn rows(request: &ExportLogsServiceRequest) -> RecordBatch {
    weir_core::convert::logs_to_batch(request)
        .expect("converts")
        .batch
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// What Loki should store for [`logs`].
fn expected() -> Vec<Pushed> {
    let checkout_info = r#"{deployment_environment="prod", level="info", service_name="checkout"}"#;
    let checkout_warn = r#"{deployment_environment="prod", level="warn", service_name="checkout"}"#;
    let base = [
        ("host_name", "node-1"),
        ("scope_name", "shop"),
        ("scope_version", "1.2"),
    ];
    let mut warn = base.to_vec();
    warn.extend([
        ("http_route", "/cart"),
        ("attempt", "2"),
        ("trace_id", "11111111111111111111111111111111"),
        ("span_id", "2222222222222222"),
    ]);
    vec![
        (
            checkout_info.to_string(),
            T,
            "started".to_string(),
            pairs(&base),
        ),
        (
            checkout_info.to_string(),
            T + 1,
            r#"{"items":3}"#.to_string(),
            pairs(&base),
        ),
        (
            checkout_warn.to_string(),
            T + 2,
            "retrying payment".to_string(),
            pairs(&warn),
        ),
        (
            r#"{level="error", service_name="worker"}"#.to_string(),
            T + 5,
            "queue full".to_string(),
            Vec::new(),
        ),
    ]
}

/// Guarantees: a protobuf push carries the chosen resource attributes and
/// the level as labels, the body as the line, exact nanosecond times (the
/// observed time when there is no time), everything else as structured
/// metadata, entries in time order per stream, in a snappy block body with
/// the tenant header.
#[tokio::test]
async fn protobuf_push_carries_labels_lines_times_and_metadata() {
    let (url, received) = receiver(StatusCode::NO_CONTENT, None, "").await;
    let config = LokiConfig {
        tenant: Some("team-a".to_string()),
        ..LokiConfig::new(&url)
    };
    let exporter = LokiExporter::new("loki", &config).expect("exporter");
    let exported = exporter
        .export(Signal::Logs, &rows(&logs()))
        .await
        .expect("taken");
    assert_eq!(exported.rejected, 0);
    {
        let received = received.lock().expect("lock");
        assert_eq!(received.len(), 1);
        assert_eq!(received[0].0["x-scope-orgid"], "team-a");
    }
    assert_eq!(entries(&received), expected());
}

/// Guarantees: the JSON form, gzipped, carries exactly what the protobuf
/// form carries (metadata being a JSON object, in name order).
#[tokio::test]
async fn gzipped_json_push_carries_the_same() {
    let (url, received) = receiver(StatusCode::NO_CONTENT, None, "").await;
    let config = LokiConfig {
        encoding: Encoding::Json,
        compression: Compression::Gzip,
        ..LokiConfig::new(&url)
    };
    let exporter = LokiExporter::new("loki", &config).expect("exporter");
    exporter
        .export(Signal::Logs, &rows(&logs()))
        .await
        .expect("taken");
    assert_eq!(
        received.lock().expect("lock")[0].0["content-encoding"],
        "gzip"
    );
    let mut want = expected();
    for (_, _, _, metadata) in &mut want {
        metadata.sort();
    }
    assert_eq!(entries(&received), want);
}

/// Guarantees: with `structured_metadata = false` what is not a label
/// follows the line as logfmt pairs, and no metadata is sent.
#[tokio::test]
async fn without_structured_metadata_pairs_follow_the_line() {
    let (url, received) = receiver(StatusCode::NO_CONTENT, None, "").await;
    let config = LokiConfig {
        structured_metadata: false,
        ..LokiConfig::new(&url)
    };
    let exporter = LokiExporter::new("loki", &config).expect("exporter");
    exporter
        .export(Signal::Logs, &rows(&logs()))
        .await
        .expect("taken");
    let got = entries(&received);
    assert!(got.iter().all(|(_, _, _, metadata)| metadata.is_empty()));
    assert_eq!(
        got[2].2,
        "retrying payment host_name=node-1 scope_name=shop scope_version=1.2 \
         http_route=/cart attempt=2 trace_id=11111111111111111111111111111111 \
         span_id=2222222222222222"
    );
    assert_eq!(got[3].2, "queue full");
}

/// Guarantees: a batch larger than `max_request_bytes` goes out in several
/// requests, none over the limit before snappy, holding every entry once
/// and each stream's entries in time order.
#[tokio::test]
async fn large_batches_are_cut_in_order() {
    let (url, received) = receiver(StatusCode::NO_CONTENT, None, "").await;
    let records = (0..200u64).rev().map(|i| {
        let level = if i % 2 == 0 { 9 } else { 17 };
        otlp::log(T + i, level, &format!("line number {i} {}", "x".repeat(40)))
    });
    let request = otlp::Group::new(records).service("bulk").logs();
    let limit = 2000;
    let config = LokiConfig {
        max_request_bytes: limit,
        ..LokiConfig::new(&url)
    };
    let exporter = LokiExporter::new("loki", &config).expect("exporter");
    let exported = exporter
        .export(Signal::Logs, &rows(&request))
        .await
        .expect("taken");
    assert_eq!(exported.rejected, 0);
    let bodies = received.lock().expect("lock").clone();
    assert!(bodies.len() >= 5, "{} requests", bodies.len());
    for (_, body) in &bodies {
        let raw = snap::raw::Decoder::new()
            .decompress_vec(body)
            .expect("snappy");
        assert!(raw.len() as u64 <= limit, "{} bytes", raw.len());
    }
    let got = entries(&received);
    assert_eq!(got.len(), 200);
    let mut by_stream: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for (labels, ns, _, _) in got {
        by_stream.entry(labels).or_default().push(ns);
    }
    assert_eq!(by_stream.len(), 2);
    for times in by_stream.values() {
        assert_eq!(times.len(), 100);
        assert!(times.windows(2).all(|w| w[0] < w[1]), "in order");
    }
}

/// Guarantees: a record with no time at all is not sent but counted with
/// its reason, and a batch of another signal is refused for good.
#[tokio::test]
async fn records_without_time_are_counted_and_other_signals_refused() {
    let (url, received) = receiver(StatusCode::NO_CONTENT, None, "").await;
    let exporter = LokiExporter::new("loki", &LokiConfig::new(&url)).expect("exporter");
    let request = otlp::Group::new([otlp::log(0, 9, "when?"), otlp::log(T, 9, "now")])
        .service("api")
        .logs();
    let exported = exporter
        .export(Signal::Logs, &rows(&request))
        .await
        .expect("taken");
    assert_eq!(exported.rejected, 1);
    assert!(
        exported
            .rejection
            .as_deref()
            .is_some_and(|r| r.contains("time")),
        "{exported:?}"
    );
    assert_eq!(entries(&received).len(), 1);

    let error = exporter
        .export(Signal::Spans, &rows(&request))
        .await
        .expect_err("not logs");
    let ExportError::Permanent { reason, records } = error else {
        panic!("not permanent: {error:?}");
    };
    assert!(
        reason.contains("logs") && reason.contains("spans"),
        "{reason}"
    );
    assert_eq!(records, 2);
}

/// Guarantees: Loki's 400 (entries too old or out of order) is permanent,
/// carrying Loki's reason and the URL, counting every record.
#[tokio::test]
async fn bad_request_is_permanent_with_lokis_reason() {
    let reason_text = "entry for stream '{service_name=\"checkout\"}' has timestamp too old";
    let (url, _) = receiver(StatusCode::BAD_REQUEST, None, reason_text).await;
    let exporter = LokiExporter::new("loki", &LokiConfig::new(&url)).expect("exporter");
    let error = exporter
        .export(Signal::Logs, &rows(&logs()))
        .await
        .expect_err("refused");
    let ExportError::Permanent { reason, records } = &error else {
        panic!("not permanent: {error:?}");
    };
    assert!(
        reason.contains("400")
            && reason.contains(reason_text)
            && reason.contains(&weir_core::redact::url(&url)),
        "{reason}"
    );
    assert_eq!(*records, 4);
}

/// Guarantees: 429 with `Retry-After` is retryable after what Loki asks.
#[tokio::test]
async fn rate_limited_is_retryable_after_what_loki_asks() {
    let (url, _) = receiver(
        StatusCode::TOO_MANY_REQUESTS,
        Some("3"),
        "ingestion rate limit exceeded",
    )
    .await;
    let exporter = LokiExporter::new("loki", &LokiConfig::new(&url)).expect("exporter");
    let error = exporter
        .export(Signal::Logs, &rows(&logs()))
        .await
        .expect_err("rate limited");
    let ExportError::Retryable { reason, after } = &error else {
        panic!("not retryable: {error:?}");
    };
    assert_eq!(*after, Some(Duration::from_secs(3)));
    assert!(
        reason.contains("429") && reason.contains("rate limit"),
        "{reason}"
    );
}
