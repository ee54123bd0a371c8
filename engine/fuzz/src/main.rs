//! weir-fuzz: runs Weir's fuzz targets on inputs mutated from their
//! corpus, and keeps every input that makes one panic.
//!
//! ```sh
//! weir-fuzz run [TARGET ...] [--seconds 60] [--seed N] [--findings findings/]
//! weir-fuzz seed        # (re)writes the binary seeds: otlp_proto and wal_replay, from otlp_json
//! ```
//!
//! Each target runs for `--seconds`; the report gives its executions,
//! executions per second and findings. A finding is written to
//! `findings/<target>/panic-<hash>` with the panic message beside it
//! (`.txt`); once fixed, move it to `engine/fuzz/corpus/<target>/` so the
//! corpus test keeps it fixed.

// The report goes to stdout.
#![allow(clippy::print_stdout)]

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use prost::Message;
use weir_core::convert::{self, json};
use weir_fuzz::mutate::{Rng, mutate};
use weir_fuzz::targets::unframe_segment;
use weir_fuzz::{Runner, Target, corpus_dir, corpus_files, shipped_corpus};

#[derive(Parser)]
#[command(about = "Runs Weir's fuzz targets (see the source's docs)")]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Fuzz the targets named (all when none is).
    Run {
        /// Targets: otlp_proto, otlp_json, pipeline_toml, wal_replay, sql.
        targets: Vec<String>,
        /// How long each target runs.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        /// The mutator's seed (default: from the clock).
        #[arg(long)]
        seed: Option<u64>,
        /// Where findings go.
        #[arg(long, default_value = "findings")]
        findings: PathBuf,
        /// The corpus (default: the one in the source).
        #[arg(long)]
        corpus: Option<PathBuf>,
    },
    /// Writes the binary seeds (otlp_proto, wal_replay) from the
    /// otlp_json corpus.
    Seed {
        /// The corpus (default: the one in the source).
        #[arg(long)]
        corpus: Option<PathBuf>,
    },
}

fn main() -> anyhow::Result<()> {
    match Args::parse().command {
        Command::Run {
            targets,
            seconds,
            seed,
            findings,
            corpus,
        } => {
            let targets = if targets.is_empty() {
                Target::ALL.to_vec()
            } else {
                targets
                    .iter()
                    .map(|t| Target::from_name(t).with_context(|| format!("no target `{t}`")))
                    .collect::<anyhow::Result<_>>()?
            };
            let corpus = corpus.unwrap_or_else(shipped_corpus);
            let seed = seed.unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
            });
            // Panics are the findings: keep their messages off the report.
            std::panic::set_hook(Box::new(|_| {}));
            let runner = Runner::new()?;
            println!("seed {seed}");
            println!(
                "{:<14} {:>10} {:>10} {:>9}",
                "target", "execs", "execs/s", "findings"
            );
            for target in targets {
                fuzz(
                    &runner,
                    target,
                    &corpus,
                    &findings,
                    Duration::from_secs(seconds),
                    seed,
                )?;
            }
            Ok(())
        }
        Command::Seed { corpus } => seed(&corpus.unwrap_or_else(shipped_corpus)),
    }
}

fn fuzz(
    runner: &Runner,
    target: Target,
    corpus: &Path,
    findings: &Path,
    time: Duration,
    seed: u64,
) -> anyhow::Result<()> {
    let mut inputs: Vec<Vec<u8>> = corpus_files(corpus, target)
        .with_context(|| format!("reading the corpus of {}", target.name()))?
        .iter()
        .map(std::fs::read)
        .collect::<Result<_, _>>()?;
    if inputs.is_empty() {
        bail!("the corpus of {} is empty", target.name());
    }
    let mut rng = Rng::new(seed ^ target.name().len() as u64);
    let started = Instant::now();
    let (mut execs, mut found) = (0u64, 0u64);
    while started.elapsed() < time {
        let base = &inputs[rng.below(inputs.len())];
        let other = &inputs[rng.below(inputs.len())];
        let input = mutate(&mut rng, base, other, target.tokens());
        execs += 1;
        let outcome = catch_unwind(AssertUnwindSafe(|| runner.run(target, &input)));
        if let Err(panic) = outcome {
            found += 1;
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "a panic without a message".to_string());
            save(findings, target, &input, &message)?;
        }
        // Inputs that parse keep the search near valid input; a few are
        // kept (without coverage feedback there is no better signal).
        if inputs.len() < 256 && rng.below(64) == 0 {
            inputs.push(input);
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{:<14} {:>10} {:>10.0} {:>9}",
        target.name(),
        execs,
        execs as f64 / secs,
        found
    );
    Ok(())
}

fn save(findings: &Path, target: Target, input: &[u8], message: &str) -> anyhow::Result<()> {
    let dir = findings.join(target.name());
    std::fs::create_dir_all(&dir)?;
    let mut hasher = DefaultHasher::new();
    input.hash(&mut hasher);
    let name = format!("panic-{:016x}", hasher.finish());
    std::fs::write(dir.join(&name), input)?;
    std::fs::write(dir.join(format!("{name}.txt")), message)?;
    println!(
        "  {}: {message} ({})",
        target.name(),
        dir.join(name).display()
    );
    Ok(())
}

/// The binary seeds from the JSON ones: each request as protobuf (with
/// the same signal byte), and as the write-ahead-log segments that
/// appending its rows makes, raw and framed.
fn seed(corpus: &Path) -> anyhow::Result<()> {
    let proto_dir = corpus_dir(corpus, Target::OtlpProto);
    let wal_dir = corpus_dir(corpus, Target::WalReplay);
    std::fs::create_dir_all(&proto_dir)?;
    std::fs::create_dir_all(&wal_dir)?;
    let mut batches = Vec::new();
    for path in corpus_files(corpus, Target::OtlpJson)? {
        let data = std::fs::read(&path)?;
        let Some((&pick, body)) = data.split_first() else {
            continue;
        };
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("seed")
            .to_string();
        let (proto, batch, signal) = match pick % 3 {
            0 => {
                let r = json::decode_logs(body)?;
                let b = convert::logs_to_batch(&r)?.batch;
                (r.encode_to_vec(), b, weir_core::Signal::Logs)
            }
            1 => {
                let r = json::decode_spans(body)?;
                let b = convert::spans_to_batch(&r)?.batch;
                (r.encode_to_vec(), b, weir_core::Signal::Spans)
            }
            _ => {
                let r = json::decode_metrics(body)?;
                let b = convert::metrics_to_batch(&r)?.batch;
                (r.encode_to_vec(), b, weir_core::Signal::Metrics)
            }
        };
        let mut out = vec![pick % 3];
        out.extend_from_slice(&proto);
        std::fs::write(proto_dir.join(format!("{stem}.pb")), out)?;
        batches.push((signal, batch));
    }
    let dir = tempfile::tempdir()?;
    {
        let (mut wal, _, _) = weir_wal::Wal::open(weir_wal::WalOptions::new(dir.path()))?;
        let entries: Vec<_> = batches.iter().map(|(s, b)| (*s, b)).collect();
        wal.append(&entries)?;
        wal.append(&entries[..1])?;
    }
    let segment = std::fs::read_dir(dir.path())?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "wal"))
        .context("the log wrote no segment")?;
    let bytes = std::fs::read(segment)?;
    let mut raw = vec![0u8];
    raw.extend_from_slice(&bytes);
    std::fs::write(wal_dir.join("segment.raw"), raw)?;
    let mut framed = vec![1u8];
    framed.extend_from_slice(&unframe_segment(&bytes));
    std::fs::write(wal_dir.join("segment.framed"), framed)?;
    println!("seeds written under {}", corpus.display());
    Ok(())
}
