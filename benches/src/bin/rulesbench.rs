//! weir-rulesbench: the cost of alert rules on span ingest.
//!
//! Builds a `rules` processor with N alert rules over 5-minute windows
//! evaluated every 30 s (the mix below), and runs two phases in one
//! process (decoding on one thread; the processor spreads the rules' work
//! over the cores):
//!
//! 1. flat out: OTLP protobuf span requests decoded and converted to Arrow
//!    (what the OTLP source does per request), alone and then pushed
//!    through the rules, with event time advancing one second per `--rate`
//!    spans; prints spans/s of both, the evaluations run and their latency;
//! 2. steady: `--rate` spans/s stamped with the wall clock for
//!    `--duration`, so the rules evaluate every 30 s of real time; prints
//!    each tick's latency (p50, p99, max) and the resident memory every
//!    `--sample` (flat means bounded).
//!
//! A rule evaluation that fails is not in the latencies (a failed query
//! is quick), so failures are counted and reported per phase, and the run
//! exits non-zero if any evaluation failed.
//!
//! ```sh
//! target/release/weir-rulesbench --rules 100 --duration 10m
//! ```

// The report goes to stdout.
#![allow(clippy::print_stdout)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, SharedString, Unit};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use weir_benches::generate::{Generator, Shape};
use weir_core::{Ack, Batch, Processor, Signal};
use weir_rules::{AlertSettings, RulesProcessor};
use weir_testkit::time::now_ns;

/// The allocator `weir` runs with (see its `main.rs`), so that the figures
/// are the engine's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(about = "The cost of alert rules on span ingest (see the source's docs)")]
struct Args {
    /// Alert rules in the group.
    #[arg(long, default_value_t = 100)]
    rules: usize,
    /// Spans per second in the steady phase (and event time's pace in the
    /// flat-out phase).
    #[arg(long, default_value_t = 50_000)]
    rate: u64,
    /// Length of the flat-out phase.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    flat_out: Duration,
    /// Length of the steady phase.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// How often the steady phase samples resident memory.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    sample: Duration,
    /// Spans per request.
    #[arg(long, default_value_t = 512)]
    batch_size: usize,
    /// Distinct services.
    #[arg(long, default_value_t = 8)]
    services: usize,
    /// Print the pipeline of `--rules` rules for `weir run` (OTLP in on
    /// 127.0.0.1:14317, the API on 127.0.0.1:18888, as
    /// `benches/rules-network.sh` uses it) and exit.
    #[arg(long)]
    print_pipeline: bool,
}

/// The pipeline text of `n` alert rules of four shapes (table, filter,
/// group-by), as real rule sets are: per service among server spans, per
/// service and operation, per service and route among server spans, per
/// service and method; each with two or three aggregates (error ratio and
/// error count; p95, p99 and maximum latency; request count and total
/// time; mean and maximum latency) and thresholds varied as in the
/// bench's first mix (one aggregate per shape), so that about as many
/// alerts fire.
fn pipeline(n: usize) -> String {
    let mut text = String::from(
        "[sources.otlp]\ntype = \"otlp\"\n\n[processors.bench]\ntype = \"rules\"\n\
         inputs = [\"otlp.spans\"]\nevery = \"30s\"\nallowed_lateness = \"5s\"\nidle_timeout = \"0s\"\n\n\
         [sinks.out]\ntype = \"blackhole\"\ninputs = [\"bench\"]\n",
    );
    for k in 0..n {
        let variant = k / 4 % 3;
        let (ratio, errors) = (0.005 + k as f64 / 10_000.0, k);
        let latency = (k % 50) as f64 / 1_000.0;
        let (columns, from, value, threshold) = match k % 4 {
            0 => (
                "service_name",
                "FROM spans WHERE kind = 2 GROUP BY service_name",
                [
                    "avg(CASE WHEN status_code = 2 THEN 1.0 ELSE 0.0 END)",
                    "sum(CASE WHEN status_code = 2 THEN 1.0 ELSE 0.0 END)",
                    "avg(CASE WHEN status_code = 2 THEN 1.0 ELSE 0.0 END)",
                ][variant],
                [ratio, errors as f64, ratio][variant],
            ),
            1 => (
                "service_name, name AS operation",
                "FROM spans GROUP BY service_name, name",
                [
                    "approx_percentile_cont(duration_ns, 0.95) / 1e9",
                    "approx_percentile_cont(duration_ns, 0.99) / 1e9",
                    "max(duration_ns) / 1e9",
                ][variant],
                latency,
            ),
            2 => (
                "service_name, attributes['http.route'] AS route",
                "FROM spans WHERE kind = 2 GROUP BY service_name, attributes['http.route']",
                [
                    "CAST(count(*) AS DOUBLE)",
                    "sum(duration_ns) / 1e9",
                    "CAST(count(*) AS DOUBLE)",
                ][variant],
                [k as f64 * 10.0, k as f64 / 2.0, k as f64 * 10.0][variant],
            ),
            _ => (
                "service_name, attributes['http.request.method'] AS method",
                "FROM spans GROUP BY service_name, attributes['http.request.method']",
                [
                    "avg(duration_ns) / 1e9",
                    "max(duration_ns) / 1e9",
                    "avg(duration_ns) / 1e9",
                ][variant],
                (k % 40) as f64 / 1_000.0,
            ),
        };
        let sql = format!("SELECT {columns}, {value} AS value {from} HAVING {value} > {threshold}");
        text.push_str(&format!(
            "\n[[processors.bench.rules]]\nalert = \"rule_{k}\"\nwindow = \"5m\"\nfor = \"1m\"\n\
             labels = {{ severity = \"page\" }}\nsql = \"\"\"{sql}\"\"\"\n"
        ));
    }
    text
}

fn processor(n: usize) -> anyhow::Result<RulesProcessor> {
    let plan =
        weir_cli::parse_str(&pipeline(n), "rulesbench.toml").map_err(|e| anyhow::anyhow!("{e}"))?;
    let Some(config) = plan
        .component("bench")
        .and_then(|c| c.config_as::<weir_rules::RulesConfig>())
    else {
        anyhow::bail!("the bench pipeline has no rules processor");
    };
    RulesProcessor::new("bench", config, &AlertSettings::default()).context("the rules")
}

/// Pre-encoded span requests, as a client sends them.
fn requests(args: &Args) -> Vec<Vec<u8>> {
    let shape = Shape {
        batch_size: args.batch_size,
        services: args.services,
        ..Shape::default()
    };
    let mut g = Generator::new(shape, 7);
    (0..64).map(|_| g.spans().encode_to_vec()).collect()
}

/// Decodes `body`, stamps its spans from `start` on, `step` ns apart, and
/// converts it: the OTLP source's work per request, plus the re-stamping.
fn convert(body: &[u8], start: u64, step: u64) -> anyhow::Result<(arrow::array::RecordBatch, u64)> {
    let mut request = ExportTraceServiceRequest::decode(body)?;
    let mut t = start;
    for rs in &mut request.resource_spans {
        for ss in &mut rs.scope_spans {
            for span in &mut ss.spans {
                let duration = span
                    .end_time_unix_nano
                    .saturating_sub(span.start_time_unix_nano);
                span.start_time_unix_nano = t;
                span.end_time_unix_nano = t + duration;
                t += step;
            }
        }
    }
    let converted = weir_core::convert::spans_to_batch(&request)?;
    Ok((converted.batch, t))
}

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

/// The rules' evaluations as the processor counts them
/// (`weir_rule_evaluations_total`, `weir_rule_evaluation_failures_total`),
/// summed over the rules; every other metric is dropped.
#[derive(Debug, Clone, Default)]
struct Evaluations {
    ok: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
}

impl metrics::Recorder for Evaluations {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        match key.name() {
            "weir_rule_evaluations_total" => Counter::from_arc(self.ok.clone()),
            "weir_rule_evaluation_failures_total" => Counter::from_arc(self.failed.clone()),
            _ => Counter::noop(),
        }
    }

    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }

    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

/// The evaluations of one phase, and why the first failed one failed.
#[derive(Debug, Default)]
struct Tally {
    ok: u64,
    failed: u64,
    first_error: Option<String>,
}

impl Evaluations {
    /// The evaluations counted so far: (succeeded, failed).
    fn counts(&self) -> (u64, u64) {
        (
            self.ok.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }

    /// Counts what `p` evaluated since `since` (a reading of
    /// [`Evaluations::counts`]) into `tally`, with the error of a rule
    /// whose last evaluation failed if none is kept yet.
    fn tally(&self, since: (u64, u64), p: &RulesProcessor, tally: &mut Tally) {
        let (ok, failed) = self.counts();
        tally.ok += ok - since.0;
        tally.failed += failed - since.1;
        if failed > since.1 && tally.first_error.is_none() {
            // The error names its rule.
            tally.first_error = p
                .group()
                .rules()
                .iter()
                .find_map(|r| r.last_run()?.error.clone());
        }
    }
}

fn report_evaluations(what: &str, tally: &Tally) {
    println!(
        "{what}: {} rule evaluations, {} failed{}",
        tally.ok + tally.failed,
        tally.failed,
        tally
            .first_error
            .as_ref()
            .map(|e| format!(" (the first: {e})"))
            .unwrap_or_default()
    );
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn report_ticks(what: &str, ticks: &mut [f64]) {
    ticks.sort_by(f64::total_cmp);
    println!(
        "{what}: {} ticks, latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        ticks.len(),
        percentile(ticks, 0.5) * 1e3,
        percentile(ticks, 0.99) * 1e3,
        ticks.last().copied().unwrap_or(f64::NAN) * 1e3
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.print_pipeline {
        let otlp = "[sources.otlp]\ntype = \"otlp\"\n";
        print!(
            "[api]\naddress = \"127.0.0.1:18888\"\n\n{}",
            pipeline(args.rules).replacen(
                otlp,
                &format!(
                    "{otlp}grpc_address = \"127.0.0.1:14317\"\nhttp_address = \"127.0.0.1:14318\"\n"
                ),
                1
            )
        );
        return Ok(());
    }
    let evaluations = Evaluations::default();
    metrics::set_global_recorder(evaluations.clone())
        .map_err(|_| anyhow::anyhow!("a metrics recorder is already installed"))?;
    let bodies = requests(&args);
    let step = 1_000_000_000 / args.rate.max(1);
    println!(
        "{} alert rules (5m windows, every 30s), {} spans per request, {} services",
        args.rules, args.batch_size, args.services
    );

    // Phase 1a: decode + convert alone.
    let mut t = now_ns() - 3_600_000_000_000;
    let (mut spans, started) = (0u64, Instant::now());
    let mut i = 0;
    while started.elapsed() < args.flat_out / 2 {
        let (batch, next) = convert(&bodies[i % bodies.len()], t, step)?;
        spans += batch.num_rows() as u64;
        t = next;
        i += 1;
        std::hint::black_box(batch);
    }
    let base_rate = spans as f64 / started.elapsed().as_secs_f64();
    println!("flat out, decode + convert only: {base_rate:.0} spans/s");

    // Phase 1b: the same, then through the rules.
    let mut p = processor(args.rules)?;
    let mut out = Vec::new();
    let (mut spans, started) = (0u64, Instant::now());
    let mut ticks = Vec::new();
    let mut last_eval = None;
    let mut flat_out = Tally::default();
    while started.elapsed() < args.flat_out / 2 {
        let (batch, next) = convert(&bodies[i % bodies.len()], t, step)?;
        spans += batch.num_rows() as u64;
        t = next;
        i += 1;
        let (since, call) = (evaluations.counts(), Instant::now());
        p.process(Batch::new(Signal::Spans, batch, Ack::none()), &mut out)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        if p.group().last_evaluation() != last_eval {
            last_eval = p.group().last_evaluation();
            ticks.push(call.elapsed().as_secs_f64());
        }
        evaluations.tally(since, &p, &mut flat_out);
        out.clear();
    }
    let rules_rate = spans as f64 / started.elapsed().as_secs_f64();
    println!(
        "flat out, decode + convert + {} rules: {rules_rate:.0} spans/s ({:.0}% of the rate without)",
        args.rules,
        100.0 * rules_rate / base_rate
    );
    report_ticks("flat out", &mut ticks);
    report_evaluations("flat out", &flat_out);
    let incremental = p
        .group()
        .rules()
        .iter()
        .filter(|r| r.is_incremental())
        .count();
    println!(
        "{incremental} of {} rules evaluated pane by pane, in {} distinct aggregations",
        args.rules,
        p.group().aggregations()
    );
    drop(p);

    // Phase 2: steady rate, wall-clock event time.
    let mut p = processor(args.rules)?;
    let started = Instant::now();
    let (mut sent, mut ticks, mut last_eval) = (0u64, Vec::new(), None);
    let mut pushes = Vec::new();
    let mut next_sample = Duration::ZERO;
    let mut steady = Tally::default();
    println!("steady: {} spans/s for {:?}", args.rate, args.duration);
    while started.elapsed() < args.duration {
        let due = sent * 1_000_000_000 / args.rate;
        let elapsed = started.elapsed();
        if (elapsed.as_nanos() as u64) < due {
            tokio::time::sleep(Duration::from_nanos(due - elapsed.as_nanos() as u64)).await;
        }
        if started.elapsed() >= next_sample {
            let stats = p.group().buffer_stats();
            let rows: usize = stats.iter().map(|(_, s)| s.rows).sum();
            let panes = p.group().pane_bytes();
            println!(
                "  {:>5.0} s: RSS {:.1} MiB, buffered rows {rows}, pane states {:.1} MiB",
                started.elapsed().as_secs_f64(),
                rss_mib(),
                panes as f64 / (1024.0 * 1024.0)
            );
            next_sample += args.sample;
        }
        let (batch, _) = convert(&bodies[i % bodies.len()], now_ns(), 1)?;
        i += 1;
        sent += batch.num_rows() as u64;
        let (since, call) = (evaluations.counts(), Instant::now());
        p.process(Batch::new(Signal::Spans, batch, Ack::none()), &mut out)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        if p.group().last_evaluation() != last_eval {
            last_eval = p.group().last_evaluation();
            ticks.push(call.elapsed().as_secs_f64());
        } else {
            pushes.push(call.elapsed().as_secs_f64());
        }
        evaluations.tally(since, &p, &mut steady);
        out.clear();
    }
    println!("  end: RSS {:.1} MiB", rss_mib());
    report_ticks("steady", &mut ticks);
    pushes.sort_by(f64::total_cmp);
    println!(
        "steady, the other {} batches (some aggregate a pane's rows): p50 {:.2} ms, p99 {:.1} ms, max {:.1} ms",
        pushes.len(),
        percentile(&pushes, 0.5) * 1e3,
        percentile(&pushes, 0.99) * 1e3,
        pushes.last().copied().unwrap_or(f64::NAN) * 1e3
    );
    report_evaluations("steady", &steady);
    let failed = flat_out.failed + steady.failed;
    if failed > 0 {
        anyhow::bail!(
            "{failed} rule evaluations failed: the latencies above leave them out, so they \
             do not measure the rules"
        );
    }
    Ok(())
}
