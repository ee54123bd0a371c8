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

/// Starts a new peak at the current allocation; returns it.
fn reset_peak() -> usize {
    let now = NOW.load(Ordering::Relaxed);
    PEAK.store(now, Ordering::Relaxed);
    now
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
    let running = common::start("amplification", OtlpSourceConfig::default()).await;
    let request = amplifying();
    let wire = request.encoded_len();
    assert!(
        wire < 400_000,
        "the request is small on the wire: {wire} bytes"
    );
    let client = reqwest::Client::new();

    let body = request.encode_to_vec();
    let base = reset_peak();
    let started = Instant::now();
    let response = client
        .post(format!("http://{}/v1/logs", running.http))
        .header("content-type", "application/x-protobuf")
        .body(body)
        .send()
        .await
        .expect("answered");
    let status = response.status().as_u16();
    let text = String::from_utf8_lossy(&response.bytes().await.expect("body")).into_owned();
    let peak = PEAK.load(Ordering::Relaxed) - base;
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
