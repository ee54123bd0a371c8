//! `weir-loadgen`: sends OTLP load and reports what happened. See `--help`.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use weir_benches::config::{Args, Output, Plan};
use weir_benches::pool::{Pool, Signal};

/// Exit status when the error ratio exceeds `--max-error-ratio`.
const EXIT_TOO_MANY_ERRORS: u8 = 2;

#[allow(clippy::print_stdout, clippy::print_stderr)]
fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("weir-loadgen: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[allow(clippy::print_stdout, clippy::print_stderr)]
fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let plan = Plan::from_args(args)?;
    let started = Instant::now();
    let pool = Pool::build(&plan.pool).context("building the request pool")?;
    let sizes: Vec<String> = Signal::ALL
        .iter()
        .filter(|s| !pool.payloads(**s).is_empty())
        .map(|s| {
            format!(
                "{} {:.1} KB",
                s.name(),
                pool.mean_wire_bytes(*s) as f64 / 1e3
            )
        })
        .collect();
    eprintln!(
        "weir-loadgen: pool of {} requests per signal ({}; {:.1} MB) built in {:.2} s",
        plan.pool.per_signal,
        sizes.join(", "),
        pool.memory_bytes() as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if let Some(threads) = plan.threads {
        runtime.worker_threads(threads.max(1));
    }
    let runtime = runtime.build().context("starting the tokio runtime")?;
    let summary = runtime.block_on(weir_benches::execute(&plan, Arc::new(pool)))?;
    match plan.output {
        Output::Text => print!("{}", summary.to_text()),
        Output::Json => println!("{}", summary.to_json()),
    }
    if summary.error_ratio > plan.max_error_ratio {
        eprintln!(
            "weir-loadgen: {:.2}% of requests failed, above --max-error-ratio {}",
            summary.error_ratio * 100.0,
            plan.max_error_ratio
        );
        return Ok(ExitCode::from(EXIT_TOO_MANY_ERRORS));
    }
    Ok(ExitCode::SUCCESS)
}
