//! `weir-otlp-blackhole`: an OTLP server (gRPC and HTTP) that decodes every
//! request, counts its records and drops them. Point `weir-loadgen` at it to
//! measure the load generator's own ceiling on a machine.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use tokio::net::TcpListener;
use weir_benches::sink::{Sink, SinkBehaviour, serve_grpc, serve_http};

/// An OTLP server that decodes, counts and drops everything it receives.
///
/// Runs until interrupted (Ctrl-C / SIGTERM), then prints what it received.
#[derive(Debug, Parser)]
#[command(name = "weir-otlp-blackhole", version)]
struct Args {
    /// OTLP/gRPC listen address.
    #[arg(long, default_value = "127.0.0.1:4317")]
    grpc: SocketAddr,
    /// OTLP/HTTP listen address.
    #[arg(long, default_value = "127.0.0.1:4318")]
    http: SocketAddr,
    /// Print received records/s every second.
    #[arg(long)]
    progress: bool,
    /// Tokio worker threads [default: number of CPUs].
    #[arg(long)]
    threads: Option<usize>,
    /// Milliseconds to wait before answering each gRPC request: a slow
    /// backend (`benches/overload.sh`).
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
}

#[allow(clippy::print_stderr)]
fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if let Some(threads) = args.threads {
        runtime.worker_threads(threads.max(1));
    }
    let runtime = runtime.build().context("starting the tokio runtime")?;
    runtime.block_on(serve(args))
}

#[allow(clippy::print_stderr)]
async fn serve(args: Args) -> anyhow::Result<()> {
    let sink = Sink::new(SinkBehaviour {
        delay: Duration::from_millis(args.delay_ms),
        ..SinkBehaviour::default()
    });
    let grpc = TcpListener::bind(args.grpc)
        .await
        .with_context(|| format!("binding the gRPC address {}; is it in use?", args.grpc))?;
    let http = TcpListener::bind(args.http)
        .await
        .with_context(|| format!("binding the HTTP address {}; is it in use?", args.http))?;
    eprintln!(
        "weir-otlp-blackhole: OTLP/gRPC on {}, OTLP/HTTP on {}",
        grpc.local_addr()?,
        http.local_addr()?
    );
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let grpc_task = tokio::spawn(serve_grpc(grpc, sink.clone(), stopped(stop_rx.clone())));
    let http_task = tokio::spawn(serve_http(http, sink.clone(), stopped(stop_rx.clone())));
    let started = Instant::now();
    if args.progress {
        let sink = sink.clone();
        tokio::spawn(async move {
            let mut last = 0;
            let mut ticker = tokio::time::interval(Duration::from_secs(1));
            ticker.tick().await;
            loop {
                ticker.tick().await;
                let now = sink.counters.records();
                eprintln!(
                    "[{:>4}s] {:>12} records/s",
                    started.elapsed().as_secs(),
                    now - last
                );
                last = now;
            }
        });
    }
    shutdown_signal().await;
    let _ = stop_tx.send(true);
    grpc_task.await?.context("the gRPC server failed")?;
    http_task.await?.context("the HTTP server failed")?;
    let c = &sink.counters;
    eprintln!(
        "weir-otlp-blackhole: {} requests, {} spans, {} log records, {} data points in {:.1} s",
        c.requests.load(Ordering::Relaxed),
        c.spans.load(Ordering::Relaxed),
        c.logs.load(Ordering::Relaxed),
        c.data_points.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
