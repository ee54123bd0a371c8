//! Requests that are small on the wire but huge once every record carries
//! its resource: refused before they are converted, with memory bounded by
//! what was received.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use weir_sources::OtlpSourceConfig;
use weir_testkit::kv;
use weir_testkit::otlp::Group;

/// Counts the bytes allocated now and the most allocated at once since the
/// last [`reset_peak`].
struct Counting;

static NOW: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// A global allocator is an unsafe trait; this one only forwards to the
// system allocator and counts.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is to the system allocator.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = NOW.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is to the system allocator.
        unsafe { System.dealloc(ptr, layout) };
        NOW.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Held by each test that measures the peak, so that no other test
/// allocates meanwhile.
static MEASURING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Starts a new peak at the current allocation; returns it.
fn reset_peak() -> usize {
    let now = NOW.load(Ordering::Relaxed);
    PEAK.store(now, Ordering::Relaxed);
    now
}

/// Posts `body` to `/v1/logs` of `http` as `content_type`; returns the
/// status, the answer's text and the most the receiver allocated meanwhile
/// beyond what it had.
async fn post_measured(
    client: &reqwest::Client,
    http: std::net::SocketAddr,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, String, usize) {
    let base = reset_peak();
    let response = client
        .post(format!("http://{http}/v1/logs"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("answered");
    let status = response.status().as_u16();
    let text = String::from_utf8_lossy(&response.bytes().await.expect("body")).into_owned();
    (status, text, PEAK.load(Ordering::Relaxed) - base)
}

/// One resource with 2,000 attributes of 100 bytes over 30,000 empty log
/// records: about 300 KB on the wire, gigabytes once every row carries the
/// resource.
fn amplifying() -> ExportLogsServiceRequest {
    let attributes = (0..2000)
        .map(|i| kv::string(format!("attr.{i:04}"), "v".repeat(100)))
        .collect();
    Group::new(vec![LogRecord::default(); 30_000])
        .resource(attributes)
        .logs()
}

/// The most the receiver may allocate beyond what it had while answering
/// the amplifying request: the body and the decoded request (a few MB),
/// far below the gigabyte its rows would take.
const PEAK_BOUND: usize = 64 << 20;

/// Scenario: a 300 KB logs request whose resource of 2,000 attributes
/// would be copied onto 30,000 records, sent over HTTP and then gRPC, then
/// an ordinary request over each.
/// Guarantees: each amplifying request is refused at once with HTTP 413 /
/// gRPC RESOURCE_EXHAUSTED naming `max_expanded_request_size`, the
/// receiver's allocations stay within 64 MiB of where they were, and the
/// ordinary requests are accepted afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_amplifying_request_is_refused_before_it_expands() {
    let _alone = MEASURING.lock().await;
    let running = common::start("amplification", OtlpSourceConfig::default()).await;
    let request = amplifying();
    let wire = request.encoded_len();
    assert!(
        wire < 400_000,
        "the request is small on the wire: {wire} bytes"
    );
    let client = reqwest::Client::new();

    let started = Instant::now();
    let (status, text, peak) = post_measured(
        &client,
        running.http,
        "application/x-protobuf",
        request.encode_to_vec(),
    )
    .await;
    assert_eq!(status, 413, "HTTP: {text}");
    assert!(text.contains("max_expanded_request_size"), "{text}");
    assert!(
        peak < PEAK_BOUND,
        "HTTP: {peak} bytes allocated at the peak"
    );
    assert!(started.elapsed() < Duration::from_secs(5));

    let mut grpc = common::grpc_logs(running.grpc).await;
    let base = reset_peak();
    let started = Instant::now();
    let refused = grpc.export(request.clone()).await.expect_err("refused");
    let peak = PEAK.load(Ordering::Relaxed) - base;
    assert_eq!(
        refused.code(),
        tonic::Code::ResourceExhausted,
        "{refused:?}"
    );
    assert!(
        refused.message().contains("max_expanded_request_size"),
        "{refused:?}"
    );
    assert!(
        peak < PEAK_BOUND,
        "gRPC: {peak} bytes allocated at the peak"
    );
    assert!(started.elapsed() < Duration::from_secs(5));

    let (status, text) = common::post_logs(&client, running.http, &common::normal_logs()).await;
    assert_eq!(status, 200, "{text}");
    grpc.export(common::normal_logs())
        .await
        .expect("an ordinary request is accepted");
}

/// Scenario: a gRPC message, and an HTTP body sent without a
/// `Content-Length`, over a `max_request_size` of 4 KiB.
/// Guarantees: both are refused while they arrive, with gRPC
/// RESOURCE_EXHAUSTED (no retry hint) / HTTP 413 naming `max_request_size`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_max_request_size_is_refused_while_it_arrives() {
    let _alone = MEASURING.lock().await;
    let config = OtlpSourceConfig {
        max_request_size: 4096,
        ..OtlpSourceConfig::default()
    };
    let running = common::start("oversize", config).await;
    let big = Group::new((0..500u64).map(|i| LogRecord {
        time_unix_nano: 1_700_000_000_000_000_000 + i,
        ..Default::default()
    }))
    .logs();
    assert!(big.encoded_len() > 4096);

    let mut grpc = common::grpc_logs(running.grpc).await;
    let refused = grpc.export(big.clone()).await.expect_err("refused");
    assert_eq!(
        refused.code(),
        tonic::Code::ResourceExhausted,
        "{refused:?}"
    );
    assert!(
        refused.message().contains("max_request_size"),
        "{refused:?}"
    );

    // HTTP/1.1 chunked: the size is known only as the body arrives.
    let mut stream = tokio::net::TcpStream::connect(running.http)
        .await
        .expect("connects");
    let mut request = b"POST /v1/logs HTTP/1.1\r\nHost: weir\r\n\
        Content-Type: application/x-protobuf\r\nTransfer-Encoding: chunked\r\n\r\n"
        .to_vec();
    for chunk in big.encode_to_vec().chunks(1000) {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    // The server may answer and close before it has read everything.
    let _ = stream.write_all(&request).await;
    let mut answer = vec![0; 4096];
    let n = stream.read(&mut answer).await.expect("answered");
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("max_request_size"), "{answer}");
}

/// A logs request of one record with 3,000,000 empty attributes: 6 MB on
/// the wire, two bytes per attribute, about 200 MB once decoded (a
/// `KeyValue` struct each, in a growing list).
fn decode_bomb() -> Vec<u8> {
    let mut record = Vec::with_capacity(6_000_010);
    for _ in 0..3_000_000 {
        record.extend_from_slice(&[0x32, 0x00]); // LogRecord.attributes: {}
    }
    let nest = |tag: u8, inner: Vec<u8>| {
        let mut out = vec![tag];
        let mut len = inner.len();
        while len >= 0x80 {
            out.push((len as u8) | 0x80);
            len >>= 7;
        }
        out.push(len as u8);
        out.extend_from_slice(&inner);
        out
    };
    // ExportLogsServiceRequest { resource_logs { scope_logs { log_records } } }
    nest(0x0a, nest(0x12, nest(0x12, record)))
}

/// Scenario: a 6 MB logs body of 3,000,000 empty attributes (decoded:
/// about 200 MB), over HTTP as protobuf, over gRPC plain and
/// gzip-compressed, and a JSON body of 1,500,000 empty objects; then
/// ordinary requests, the gRPC one gzip-compressed.
/// Guarantees: each is refused with HTTP 413 / gRPC RESOURCE_EXHAUSTED
/// naming `max_expanded_request_size` before it is decoded: the receiver's
/// allocations stay within 64 MiB of where they were (the body and its
/// decompression); the ordinary requests are accepted afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_amplifies_when_decoded_is_refused_before_decoding() {
    let _alone = MEASURING.lock().await;
    let running = common::start("decode-bomb", OtlpSourceConfig::default()).await;
    let body = decode_bomb();
    assert!(body.len() < 6_100_000, "{} bytes", body.len());
    let decoded = ExportLogsServiceRequest::decode(&body[..]).expect("a valid request");
    assert_eq!(
        decoded.resource_logs[0].scope_logs[0].log_records[0]
            .attributes
            .len(),
        3_000_000
    );
    drop(decoded);
    let client = reqwest::Client::new();

    let (status, text, peak) = post_measured(
        &client,
        running.http,
        "application/x-protobuf",
        body.clone(),
    )
    .await;
    assert_eq!(status, 413, "HTTP: {text}");
    assert!(text.contains("max_expanded_request_size"), "{text}");
    assert!(text.contains("decoding the request"), "{text}");
    assert!(
        peak < PEAK_BOUND,
        "HTTP: {peak} bytes allocated at the peak"
    );

    // The JSON form: `{}` objects in a record's attribute list.
    let mut json =
        b"{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"attributes\":[".to_vec();
    for i in 0..1_500_000 {
        if i > 0 {
            json.push(b',');
        }
        json.extend_from_slice(b"{}");
    }
    json.extend_from_slice(b"]}]}]}]}");
    let (status, text, peak) = post_measured(&client, running.http, "application/json", json).await;
    assert_eq!(status, 413, "JSON: {text}");
    assert!(text.contains("max_expanded_request_size"), "{text}");
    assert!(
        peak < PEAK_BOUND,
        "JSON: {peak} bytes allocated at the peak"
    );

    // gRPC sends the encoded message as it is; decode it into the client's
    // request type would itself take the 200 MB, so the frame is sent raw.
    for gzip in [false, true] {
        let base = reset_peak();
        let (code, message) = raw_grpc_logs(running.grpc, &body, gzip).await;
        let peak = PEAK.load(Ordering::Relaxed) - base;
        assert_eq!(code, "8", "gzip {gzip}: grpc-status {code}: {message}");
        assert!(
            message.contains("max_expanded_request_size"),
            "gzip {gzip}: {message}"
        );
        assert!(
            peak < PEAK_BOUND,
            "gRPC (gzip {gzip}): {peak} bytes allocated at the peak"
        );
    }

    let (status, text) = common::post_logs(&client, running.http, &common::normal_logs()).await;
    assert_eq!(status, 200, "{text}");
    let mut grpc = common::grpc_logs(running.grpc)
        .await
        .send_compressed(tonic::codec::CompressionEncoding::Gzip);
    grpc.export(common::normal_logs())
        .await
        .expect("an ordinary gzip-compressed request is accepted");
}

/// Sends `message` as one gRPC logs export over HTTP/2 (gzip-compressed
/// if asked) and returns the `grpc-status` and `grpc-message`.
async fn raw_grpc_logs(grpc: std::net::SocketAddr, message: &[u8], gzip: bool) -> (String, String) {
    use http_body_util::{BodyExt, Full};
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use std::io::Write;

    let payload = match gzip {
        false => message.to_vec(),
        true => {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            encoder.write_all(message).expect("compresses");
            encoder.finish().expect("compresses")
        }
    };
    let mut frame = vec![u8::from(gzip)];
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    frame.extend_from_slice(&payload);
    let stream = tokio::net::TcpStream::connect(grpc)
        .await
        .expect("connects");
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("HTTP/2 handshake");
    tokio::spawn(conn);
    let mut request = http::Request::builder()
        .method("POST")
        .uri(format!(
            "http://{grpc}/opentelemetry.proto.collector.logs.v1.LogsService/Export"
        ))
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    if gzip {
        request = request.header("grpc-encoding", "gzip");
    }
    let request = request
        .body(Full::new(bytes::Bytes::from(frame)))
        .expect("request");
    let response = sender.send_request(request).await.expect("answered");
    let headers = response.headers().clone();
    let collected = response.into_body().collect().await.expect("body");
    let trailers = collected.trailers().cloned().unwrap_or_default();
    let get = |name: &str| {
        trailers
            .get(name)
            .or_else(|| headers.get(name))
            .and_then(|v| v.to_str().ok())
            .map(percent_decode)
            .unwrap_or_default()
    };
    (get("grpc-status"), get("grpc-message"))
}

/// Decodes a `grpc-message`'s percent-encoding.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(b) = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
