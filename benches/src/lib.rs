//! Weir's load-generation tools: `weir-loadgen`, which sends OTLP at a set rate
//! or flat out and reports what happened, and `weir-otlp-blackhole`, an OTLP
//! server that decodes and drops what it gets (to measure the generator itself).
//!
//! How a run flows:
//! 1. [`config`]: the command line ([`config::Args`]) is checked and resolved
//!    into a [`config::Plan`].
//! 2. [`pool`]: before any timing, [`generate`] makes the requests of the
//!    asked shape and the pool encodes them (protobuf or OTLP/JSON, gzip).
//! 3. [`execute`]: connects ([`client`]), runs an optional warm-up phase, then
//!    the measured phase ([`run`]): workers pace themselves with [`rate`],
//!    send bodies from the pool and count outcomes.
//! 4. [`report`]: the totals become a [`report::Summary`], printed as text
//!    or JSON.
//!
//! [`sink`] is the server side used by the tests and by `weir-otlp-blackhole`.

pub mod client;
pub mod config;
pub mod generate;
pub mod pool;
pub mod rate;
pub mod report;
pub mod run;
pub mod sink;

use std::sync::Arc;

use crate::client::{ConnectError, Transport};
use crate::config::{GrpcClient, Plan, Protocol};
use crate::pool::{Pool, PoolOptions};
use crate::report::{Summary, process_cpu_time};
use crate::run::{LivePool, RunError, run_phase};

/// Why a run could not complete.
#[derive(Debug, thiserror::Error)]
pub enum LoadgenError {
    /// Connecting to the endpoint failed.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// A phase failed.
    #[error(transparent)]
    Run(#[from] RunError),
}

/// Connects as `plan` says and makes one transport per in-flight request.
pub async fn transports(plan: &Plan) -> Result<Vec<Transport>, ConnectError> {
    let n = plan.phase.concurrency.max(1);
    match plan.protocol {
        Protocol::Grpc => {
            let channels = client::connect_grpc(&plan.client, plan.connections.min(n)).await?;
            Ok((0..n)
                .map(|i| {
                    let channel = channels[i % channels.len()].clone();
                    match plan.grpc_client {
                        GrpcClient::Raw => Transport::grpc_raw(channel, plan.client.gzip),
                        GrpcClient::Typed => Transport::grpc_typed(channel, plan.client.gzip),
                    }
                })
                .collect())
        }
        Protocol::Http => {
            let http = client::http_client(&plan.client, n)?;
            Ok((0..n)
                .map(|_| Transport::http(http.clone(), &plan.client))
                .collect())
        }
    }
}

/// Runs `plan` with the ready `pool`: connect, warm up, measure, summarise.
pub async fn execute(plan: &Plan, pool: Arc<Pool>) -> Result<Summary, LoadgenError> {
    let transports = transports(plan).await?;
    let pool = Arc::new(LivePool::new(pool));
    let _restamp = plan
        .live_time
        .then(|| Restamp::start(plan.pool.clone(), pool.clone()));
    if let Some(warmup) = &plan.warmup {
        run_phase(&transports, pool.clone(), warmup).await?;
    }
    let cpu_before = process_cpu_time();
    let (totals, elapsed) = run_phase(&transports, pool, &plan.phase).await?;
    let cpu = process_cpu_time()
        .zip(cpu_before)
        .map(|(after, before)| after.saturating_sub(before));
    Ok(Summary::new(plan, &totals, elapsed, cpu))
}

/// `--live-time`: a thread that builds the pool again every second (the
/// same records, stamped from the clock) and swaps it in, until dropped.
struct Restamp {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Restamp {
    fn start(options: PoolOptions, pool: Arc<LivePool>) -> Restamp {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let options = options;
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(std::time::Duration::from_secs(1));
                // The same seed: the same services, operations and
                // attribute values (a real fleet's vocabulary does not
                // change every second), only stamped anew.
                if let Ok(fresh) = Pool::build(&options) {
                    pool.replace(fresh);
                }
            }
        });
        Restamp {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Restamp {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::atomic::Ordering;

    use clap::Parser;
    use tokio::net::TcpListener;
    use tokio::sync::oneshot;

    use super::*;
    use crate::config::Args;
    use crate::sink::{Sink, SinkBehaviour, serve_grpc, serve_http};

    /// A sink serving gRPC and HTTP on free loopback ports until dropped.
    struct TestSink {
        sink: Arc<Sink>,
        grpc: SocketAddr,
        http: SocketAddr,
        _stop: Vec<oneshot::Sender<()>>,
    }

    async fn start_sink(behaviour: SinkBehaviour) -> TestSink {
        let sink = Sink::new(behaviour);
        let grpc = TcpListener::bind("127.0.0.1:0").await.expect("bind grpc");
        let http = TcpListener::bind("127.0.0.1:0").await.expect("bind http");
        let (grpc_addr, http_addr) = (
            grpc.local_addr().expect("grpc addr"),
            http.local_addr().expect("http addr"),
        );
        let (tx1, rx1) = oneshot::channel::<()>();
        let (tx2, rx2) = oneshot::channel::<()>();
        tokio::spawn(serve_grpc(grpc, sink.clone(), async move {
            let _ = rx1.await;
        }));
        tokio::spawn(serve_http(http, sink.clone(), async move {
            let _ = rx2.await;
        }));
        TestSink {
            sink,
            grpc: grpc_addr,
            http: http_addr,
            _stop: vec![tx1, tx2],
        }
    }

    async fn run_args(args: &[&str]) -> Result<Summary, LoadgenError> {
        let args =
            Args::try_parse_from(std::iter::once("weir-loadgen").chain(args.iter().copied()))
                .expect("arguments parse");
        let plan = Plan::from_args(&args).expect("valid plan");
        let pool = Pool::build(&plan.pool).expect("pool builds");
        execute(&plan, Arc::new(pool)).await
    }

    fn url(addr: SocketAddr) -> String {
        format!("http://{addr}")
    }

    /// Raw gRPC, mixed signals: every request arrives, and the server counts exactly the records the report claims.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn grpc_raw_mix_delivers_what_it_reports() {
        let s = start_sink(SinkBehaviour::default()).await;
        let endpoint = url(s.grpc);
        let summary = run_args(&[
            "--endpoint",
            &endpoint,
            "--signal",
            "mix",
            "--mix",
            "2,1,1",
            "--requests",
            "40",
            "--batch-size",
            "50",
            "--concurrency",
            "4",
            "--connections",
            "2",
            "--pool-size",
            "3",
        ])
        .await
        .expect("run completes");
        let c = &s.sink.counters;
        assert_eq!(c.requests.load(Ordering::Relaxed), 40);
        assert_eq!(summary.requests_ok, 40);
        assert_eq!(summary.records_ok, 40 * 50);
        assert_eq!(c.records(), summary.records_ok);
        assert_eq!(c.spans.load(Ordering::Relaxed), 20 * 50);
        assert_eq!(c.logs.load(Ordering::Relaxed), 10 * 50);
        assert_eq!(c.data_points.load(Ordering::Relaxed), 10 * 50);
        assert_eq!(summary.records_by_signal["spans"], 20 * 50);
        assert!(summary.errors.is_empty());
        assert!(summary.latency_ms.p50 > 0.0);
        assert!(summary.wire_mb_per_sec > 0.0);
    }

    /// The typed gRPC clients with gzip deliver the same counts.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn grpc_typed_gzip_delivers_what_it_reports() {
        let s = start_sink(SinkBehaviour::default()).await;
        let endpoint = url(s.grpc);
        let summary = run_args(&[
            "--endpoint",
            &endpoint,
            "--grpc-client",
            "typed",
            "--gzip",
            "--signal",
            "metrics",
            "--requests",
            "12",
            "--batch-size",
            "30",
            "--concurrency",
            "3",
            "--pool-size",
            "2",
        ])
        .await
        .expect("run completes");
        assert_eq!(summary.requests_ok, 12);
        assert_eq!(s.sink.counters.data_points.load(Ordering::Relaxed), 12 * 30);
        assert!(summary.gzip);
    }

    /// UNAVAILABLE answers are counted by code, partial_success rejections are counted, and the error ratio follows.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn grpc_errors_and_partial_success_are_counted() {
        let s = start_sink(SinkBehaviour {
            rejected_per_request: 3,
            unavailable_every: 4,
            ..SinkBehaviour::default()
        })
        .await;
        let endpoint = url(s.grpc);
        let summary = run_args(&[
            "--endpoint",
            &endpoint,
            "--requests",
            "40",
            "--batch-size",
            "10",
            "--concurrency",
            "1",
            "--pool-size",
            "2",
        ])
        .await
        .expect("run completes");
        let refused = s.sink.counters.refused.load(Ordering::Relaxed);
        assert_eq!(refused, 10);
        assert_eq!(summary.requests_failed, 10);
        assert_eq!(summary.requests_ok, 30);
        assert_eq!(summary.errors["grpc UNAVAILABLE"].count, 10);
        assert!(
            summary.errors["grpc UNAVAILABLE"]
                .example
                .contains("refused on purpose")
        );
        assert_eq!(summary.records_rejected, 30 * 3);
        assert_eq!(summary.records_ok, 30 * 7);
        assert_eq!(summary.records_failed, 10 * 10);
        assert_eq!(
            s.sink.counters.spans.load(Ordering::Relaxed),
            summary.records_ok
        );
        assert!((summary.error_ratio - 0.25).abs() < 1e-9);
    }

    /// With --retry, refused requests are retried until accepted; every failed attempt is still reported.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn retry_turns_unavailable_into_success() {
        let s = start_sink(SinkBehaviour {
            rejected_per_request: 0,
            unavailable_every: 3,
            ..SinkBehaviour::default()
        })
        .await;
        let endpoint = url(s.grpc);
        let summary = run_args(&[
            "--endpoint",
            &endpoint,
            "--requests",
            "12",
            "--batch-size",
            "5",
            "--concurrency",
            "1",
            "--retry",
            "3",
            "--pool-size",
            "1",
        ])
        .await
        .expect("run completes");
        assert_eq!(summary.requests_ok, 12);
        assert_eq!(summary.requests_failed, 0);
        // Attempts 3, 6, 9, 12 and 15 are refused; 17 attempts make 12 successes.
        assert_eq!(summary.retries, 5);
        assert_eq!(summary.attempts, 17);
        assert_eq!(summary.errors["grpc UNAVAILABLE"].count, 5);
        assert_eq!(s.sink.counters.spans.load(Ordering::Relaxed), 12 * 5);
    }

    /// OTLP/HTTP with gzipped protobuf, then with OTLP/JSON: counts match, and 503s are reported by status.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn http_protobuf_gzip_and_json_deliver_and_count_503() {
        let s = start_sink(SinkBehaviour {
            rejected_per_request: 1,
            unavailable_every: 5,
            ..SinkBehaviour::default()
        })
        .await;
        let endpoint = url(s.http);
        let summary = run_args(&[
            "--protocol",
            "http",
            "--endpoint",
            &endpoint,
            "--gzip",
            "--signal",
            "logs",
            "--requests",
            "20",
            "--batch-size",
            "8",
            "--concurrency",
            "1",
            "--pool-size",
            "2",
        ])
        .await
        .expect("run completes");
        assert_eq!(summary.requests_ok, 16);
        assert_eq!(summary.errors["http 503"].count, 4);
        assert_eq!(summary.records_rejected, 16);
        assert_eq!(
            s.sink.counters.logs.load(Ordering::Relaxed),
            summary.records_ok
        );
        assert!(
            summary.wire_mb_per_sec < summary.payload_mb_per_sec,
            "gzip shrinks the wire bytes"
        );
        let wire = s.sink.counters.http_bytes.load(Ordering::Relaxed);
        assert!(wire > 0);

        let json = run_args(&[
            "--protocol",
            "http",
            "--json",
            "--endpoint",
            &endpoint,
            "--signal",
            "spans",
            "--requests",
            "4",
            "--batch-size",
            "8",
            "--concurrency",
            "1",
            "--pool-size",
            "2",
        ])
        .await
        .expect("run completes");
        // Requests 21..24 of the sink: the 25th would be refused, so all 4 pass.
        assert_eq!(json.requests_ok, 4);
        assert_eq!(json.records_rejected, 4);
        assert_eq!(s.sink.counters.spans.load(Ordering::Relaxed), 4 * 7);
    }

    /// Nobody listening: HTTP requests fail as connection errors; gRPC refuses to start with a clear message.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unreachable_endpoints_are_reported() {
        let closed = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = closed.local_addr().expect("addr");
        drop(closed);
        let endpoint = url(addr);
        let summary = run_args(&[
            "--protocol",
            "http",
            "--endpoint",
            &endpoint,
            "--requests",
            "3",
            "--concurrency",
            "1",
            "--batch-size",
            "4",
            "--pool-size",
            "1",
        ])
        .await
        .expect("run completes");
        assert_eq!(summary.requests_failed, 3);
        assert_eq!(summary.errors["connection error"].count, 3);
        assert!((summary.error_ratio - 1.0).abs() < 1e-9);

        let err = run_args(&[
            "--endpoint",
            &endpoint,
            "--requests",
            "1",
            "--pool-size",
            "1",
        ])
        .await
        .expect_err("gRPC connect fails");
        let message = err.to_string();
        assert!(message.contains("could not connect"), "{message}");
        assert!(message.contains(&endpoint), "{message}");
    }

    /// A rate limit holds the run to about the asked records/s (never well above it).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rate_limit_caps_throughput() {
        let s = start_sink(SinkBehaviour::default()).await;
        let endpoint = url(s.grpc);
        let summary = run_args(&[
            "--endpoint",
            &endpoint,
            "--rate",
            "2000",
            "--batch-size",
            "100",
            "--duration",
            "1s",
            "--concurrency",
            "4",
            "--pool-size",
            "2",
        ])
        .await
        .expect("run completes");
        // 2000 records/s for 1 s plus the 100 ms catch-up allowance: at most 2200 records booked.
        assert!(
            summary.records_ok <= 2_200,
            "{} records",
            summary.records_ok
        );
        assert!(
            summary.records_ok >= 1_000,
            "{} records",
            summary.records_ok
        );
        assert_eq!(summary.target_rate, Some(2_000.0));
    }
}
