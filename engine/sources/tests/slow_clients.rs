//! Hostile clients that connect and then send slowly, stall mid-frame or
//! hold connections open: they must not keep an ordinary client from being
//! served, each gets its timeout, and open connections are capped.

mod common;

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::StreamBody;
use hyper::body::Frame;
use hyper_util::rt::{TokioExecutor, TokioIo};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use weir_sources::OtlpSourceConfig;

/// The source's limits in these tests: few request slots, so that a
/// handful of slow senders holding one each would fill them all.
fn config() -> OtlpSourceConfig {
    OtlpSourceConfig {
        max_concurrent_requests: 8,
        read_timeout: Duration::from_secs(4),
        ..OtlpSourceConfig::default()
    }
}

/// An HTTP/1 client that sends part of its headers and stalls.
async fn partial_headers(http: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(http).await.expect("connects");
    stream
        .write_all(b"POST /v1/logs HTTP/1.1\r\nHost: weir\r\nContent-Type: appl")
        .await
        .expect("writes");
    stream
}

/// An HTTP/1 client that sends its headers and a few bytes of a 1,000-byte
/// body, and stalls.
async fn partial_body(http: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(http).await.expect("connects");
    stream
        .write_all(
            b"POST /v1/logs HTTP/1.1\r\nHost: weir\r\n\
              Content-Type: application/x-protobuf\r\nContent-Length: 1000\r\n\r\n\x0a\x05",
        )
        .await
        .expect("writes");
    stream
}

/// A gRPC stream that sends its headers and the first bytes of a message,
/// and stalls; the sender keeps the stream open, the receiver gets the
/// response.
type Stalled = (
    mpsc::Sender<Result<Frame<Bytes>, std::convert::Infallible>>,
    tokio::task::JoinHandle<Option<http::Response<hyper::body::Incoming>>>,
);

/// `streams` stalled gRPC export streams on one HTTP/2 connection.
async fn stalled_grpc(grpc: SocketAddr, streams: usize) -> Vec<Stalled> {
    let tcp = TcpStream::connect(grpc).await.expect("connects");
    let (sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .expect("HTTP/2 handshake");
    tokio::spawn(conn);
    let mut stalled = Vec::new();
    for _ in 0..streams {
        let (tx, rx) = mpsc::channel(1);
        // A message of 1,000 bytes is announced; two arrive.
        tx.send(Ok(Frame::data(Bytes::from_static(&[
            0, 0, 0, 3, 232, 10, 5,
        ]))))
        .await
        .expect("queued");
        let body = StreamBody::new(tokio_stream(rx));
        let request = http::Request::post(format!(
            "http://{grpc}/opentelemetry.proto.collector.logs.v1.LogsService/Export"
        ))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(body)
        .expect("request");
        let mut sender = sender.clone();
        let response = tokio::spawn(async move {
            sender.ready().await.ok()?;
            sender.send_request(request).await.ok()
        });
        stalled.push((tx, response));
    }
    stalled
}

/// A stream of what `rx` receives.
fn tokio_stream<T: Send + 'static>(
    mut rx: mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> + Send + 'static {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// Reads what the server sends until it closes the connection (or 10 s).
async fn read_until_closed(mut stream: TcpStream) -> String {
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out)).await;
    assert!(read.is_ok(), "the server kept the connection open");
    String::from_utf8_lossy(&out).into_owned()
}

/// Scenario: 300 hostile clients connected at once (100 HTTP/1 clients
/// stalled in their headers, 100 stalled in their bodies, 100 gRPC streams
/// stalled in their messages over 4 connections) beside an ordinary client
/// sending over HTTP and gRPC, with 8 request slots.
/// Guarantees: every ordinary request is accepted promptly while the
/// hostile clients are connected (they hold no request slot); after
/// `read_timeout` a stalled HTTP body gets 408 and its connection closed, a
/// client stalled in its headers is disconnected, and a stalled gRPC stream
/// gets DEADLINE_EXCEEDED.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_senders_do_not_keep_a_normal_client_out() {
    let running = common::start("slow_clients", config()).await;
    let started = Instant::now();
    let mut headers = Vec::new();
    let mut bodies = Vec::new();
    for _ in 0..100 {
        headers.push(partial_headers(running.http).await);
        bodies.push(partial_body(running.http).await);
    }
    let mut grpc_stalled = Vec::new();
    for _ in 0..4 {
        grpc_stalled.extend(stalled_grpc(running.grpc, 25).await);
    }
    // Let the server take in what the hostile clients sent.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let client = reqwest::Client::new();
    let mut grpc = common::grpc_logs(running.grpc).await;
    for _ in 0..5 {
        let (status, text) = common::post_logs(&client, running.http, &common::normal_logs()).await;
        assert_eq!(status, 200, "HTTP beside slow senders: {text}");
        grpc.export(common::normal_logs())
            .await
            .expect("gRPC beside slow senders");
    }
    let served = started.elapsed();
    assert!(
        served < Duration::from_secs(3),
        "the ordinary client was served while the slow senders were connected ({served:?})"
    );

    let answer = read_until_closed(bodies.pop().expect("a slow body")).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("read_timeout"), "{answer}");
    let answer = read_until_closed(headers.pop().expect("slow headers")).await;
    assert!(!answer.contains("200 OK"), "{answer}");
    let (_keep_open, response) = grpc_stalled.pop().expect("a stalled stream");
    let response = tokio::time::timeout(Duration::from_secs(10), response)
        .await
        .expect("answered in time")
        .expect("task")
        .expect("a response");
    assert_eq!(
        response.headers().get("grpc-status").map(|v| v.as_bytes()),
        Some(&b"4"[..]),
        "DEADLINE_EXCEEDED: {response:?}"
    );
}

/// The recorder of this test binary's metrics, installed by the first
/// call: a test that reads metrics calls it before it starts its source,
/// which takes its metric handles at start. Each test reads its own
/// component's metrics.
fn recorder() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::set_global_recorder(recorder).expect("the only recorder of this binary");
        handle
    })
}

/// The metrics recorded so far, as `/metrics` shows them.
fn metrics_text() -> String {
    recorder().render()
}

/// The value of metric `name` with these labels (0 if not recorded yet).
fn metric(name: &str, labels: &[(&str, &str)]) -> f64 {
    metrics_text()
        .lines()
        .filter_map(|line| line.strip_prefix(name)?.strip_prefix('{'))
        .filter_map(|rest| rest.split_once("} "))
        .find(|(found, _)| {
            labels
                .iter()
                .all(|(k, v)| found.split(',').any(|l| l == format!("{k}=\"{v}\"")))
        })
        .map_or(0.0, |(_, value)| value.trim().parse().expect("a number"))
}

/// Waits (at most 10 s) until `check` holds.
async fn until(what: &str, mut check: impl FnMut() -> bool) {
    let waited = tokio::time::timeout(Duration::from_secs(10), async {
        while !check() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "timed out waiting until {what}");
}

/// The HTTP/2 client preface.
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// An HTTP/2 frame header: `len` bytes of payload follow.
fn frame_header(len: u32, kind: u8, flags: u8, stream: u32) -> Vec<u8> {
    let mut h = len.to_be_bytes()[1..].to_vec();
    h.extend([kind, flags]);
    h.extend(stream.to_be_bytes());
    h
}

/// How a raw HTTP/2 client leaves its connection.
#[derive(Debug, Clone, Copy)]
enum Stall {
    /// Connects and sends nothing.
    Silent,
    /// Preface and SETTINGS, then HEADERS without END_HEADERS: the
    /// CONTINUATION never comes.
    OpenHeaderBlock,
    /// Preface and SETTINGS, then a HEADERS frame announcing 64 bytes of
    /// which 2 arrive.
    CutPayload,
    /// Preface and SETTINGS, then 5 bytes of a frame header.
    CutFrameHeader,
    /// Preface and SETTINGS, then quiet: an idle client, not a stalled one.
    AtRest,
}

/// A raw client that connects to `addr` and leaves its connection as
/// `stall` says.
async fn raw_http2(addr: SocketAddr, stall: Stall) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("connects");
    let mut bytes = PREFACE.to_vec();
    bytes.extend(frame_header(0, 0x4, 0, 0)); // SETTINGS, none changed
    // HPACK: `:method: POST`, `:scheme: http` (static table 3 and 6).
    match stall {
        Stall::Silent => bytes.clear(),
        Stall::OpenHeaderBlock => {
            bytes.extend(frame_header(2, 0x1, 0, 1));
            bytes.extend([0x83, 0x86]);
        }
        Stall::CutPayload => {
            bytes.extend(frame_header(64, 0x1, 0x4, 1));
            bytes.extend([0x83, 0x86]);
        }
        Stall::CutFrameHeader => bytes.extend(&frame_header(2, 0x1, 0x4, 1)[..5]),
        Stall::AtRest => {}
    }
    stream.write_all(&bytes).await.expect("writes");
    stream
}

/// Reads until the server closes `stream` (end of file or an error), at
/// most `within`: when that happened, or `None` if it stayed open.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> Option<Instant> {
    let mut buf = [0u8; 1024];
    let read = tokio::time::timeout(within, async {
        while let Ok(1..) = stream.read(&mut buf).await {}
    })
    .await;
    read.ok().map(|()| Instant::now())
}

/// Scenario: on the gRPC and on the HTTP port, raw HTTP/2 clients stall
/// mid-way (a HEADERS frame whose CONTINUATION never comes, a frame whose
/// payload stops, a frame header cut short, and a connection that sends
/// nothing), beside an idle HTTP/2 client and an ordinary client.
/// Guarantees: the ordinary client is served while they stall; each
/// stalled connection is closed by the server after `read_timeout` (not
/// before, and within a few seconds more) and counted in
/// `weir_otlp_stalled_connections_total`; the idle HTTP/2 connection stays
/// open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_http2_frames_are_disconnected() {
    let read_timeout = Duration::from_secs(2);
    recorder();
    let running = common::start(
        "stalled_frames",
        OtlpSourceConfig {
            read_timeout,
            ..config()
        },
    )
    .await;
    let stalls = [
        Stall::OpenHeaderBlock,
        Stall::CutPayload,
        Stall::CutFrameHeader,
        Stall::Silent,
    ];
    let mut stalled = Vec::new();
    let mut idle = Vec::new();
    for (protocol, addr) in [("grpc", running.grpc), ("http", running.http)] {
        for stall in stalls {
            let stream = raw_http2(addr, stall).await;
            stalled.push((protocol, stall, stream, Instant::now()));
        }
        idle.push((protocol, raw_http2(addr, Stall::AtRest).await));
    }
    let sent = Instant::now();

    let client = reqwest::Client::new();
    let (status, text) = common::post_logs(&client, running.http, &common::normal_logs()).await;
    assert_eq!(status, 200, "HTTP beside stalled frames: {text}");
    common::grpc_logs(running.grpc)
        .await
        .export(common::normal_logs())
        .await
        .expect("gRPC beside stalled frames");
    assert!(sent.elapsed() < read_timeout, "served at once");

    let slack = Duration::from_secs(3);
    let closes = stalled
        .iter_mut()
        .map(|(protocol, stall, stream, sent)| async move {
            let closed = closed_within(stream, read_timeout + slack).await;
            (*protocol, *stall, closed.map(|at| at - *sent))
        });
    for (protocol, stall, closed) in futures::future::join_all(closes).await {
        let Some(after) = closed else {
            panic!("{protocol}: the server kept a {stall:?} connection open");
        };
        // Measured from the client's last write; the server's clock starts
        // when it reads (or accepts), about then.
        assert!(
            after + Duration::from_millis(100) >= read_timeout,
            "{protocol}: {stall:?} closed after {after:?}, before read_timeout"
        );
        eprintln!("{protocol}: {stall:?} closed after {after:?}");
    }
    for protocol in ["grpc", "http"] {
        let stalled = metric(
            "weir_otlp_stalled_connections_total",
            &[("component", "stalled_frames"), ("protocol", protocol)],
        );
        assert_eq!(stalled, stalls.len() as f64, "{protocol}");
    }
    for (protocol, mut stream) in idle {
        let closed = closed_within(&mut stream, Duration::from_millis(200)).await;
        assert_eq!(
            closed, None,
            "{protocol}: an idle HTTP/2 connection was closed"
        );
    }
}

/// An idle HTTP/2 connection to `addr` (handshake done, no request); it
/// closes when the task is aborted.
async fn idle_http2(addr: SocketAddr) -> tokio::task::JoinHandle<()> {
    let tcp = TcpStream::connect(addr).await.expect("connects");
    let (sender, conn) =
        hyper::client::conn::http2::handshake::<_, _, http_body_util::Empty<Bytes>>(
            TokioExecutor::new(),
            TokioIo::new(tcp),
        )
        .await
        .expect("HTTP/2 handshake");
    tokio::spawn(async move {
        let _sender = sender;
        let _ = conn.await;
    })
}

/// Scenario: `max_connections = 4`; on each listener four idle HTTP/2
/// connections are open when a fifth client sends an export.
/// Guarantees: the fifth is not served while the four are open (the
/// listener waits, `weir_otlp_connections` shows 4 and
/// `weir_otlp_connection_limit_reached_total` counts it); once one of the
/// four closes it is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_connections_holds_the_next_client_until_one_closes() {
    recorder();
    let running = common::start(
        "limits",
        OtlpSourceConfig {
            max_connections: 4,
            read_timeout: Duration::from_secs(30),
            ..config()
        },
    )
    .await;
    for (protocol, addr) in [("grpc", running.grpc), ("http", running.http)] {
        let labels = [("component", "limits"), ("protocol", protocol)];
        let mut open = Vec::new();
        for _ in 0..4 {
            open.push(idle_http2(addr).await);
        }
        until(&format!("{protocol}: 4 connections open"), || {
            metric("weir_otlp_connections", &labels) == 4.0
        })
        .await;

        let mut fifth = match protocol {
            "grpc" => tokio::spawn(async move {
                let mut grpc = common::grpc_logs(addr).await;
                grpc.export(common::normal_logs())
                    .await
                    .expect("gRPC once a connection closed");
            }),
            _ => tokio::spawn(async move {
                let client = reqwest::Client::new();
                let (status, text) = common::post_logs(&client, addr, &common::normal_logs()).await;
                assert_eq!(status, 200, "HTTP once a connection closed: {text}");
            }),
        };
        until(&format!("{protocol}: the limit is reached"), || {
            metric("weir_otlp_connection_limit_reached_total", &labels) >= 1.0
        })
        .await;
        let waited = tokio::time::timeout(Duration::from_millis(500), &mut fifth).await;
        assert!(waited.is_err(), "{protocol}: served beyond max_connections");
        assert_eq!(metric("weir_otlp_connections", &labels), 4.0);

        let closed = Instant::now();
        open.pop().expect("an idle connection").abort();
        tokio::time::timeout(Duration::from_secs(10), fifth)
            .await
            .expect("served once a connection closed")
            .expect("the export succeeds");
        eprintln!(
            "{protocol}: served {:?} after a connection closed",
            closed.elapsed()
        );
        assert!(metric("weir_otlp_connections", &labels) <= 4.0);
        for conn in open {
            conn.abort();
        }
    }
}
