//! `weir-querybench`: how fast the embedded store answers a one-hour
//! GROUP BY over many log rows, cold and warm, and where the time goes.
//!
//! ```text
//!  fill:  LogGenerator ──OTLP──▶ logs_to_batch ──▶ Store::append (WAL, memory)
//!           (own thread)                           flush ──▶ Parquet per hour
//!                                                  compact_now, close
//!         + querybench.json (rows, span, query window, expected counts)
//!  query: (a new process) Store::open ──▶ SqlService (as `weir run`) ──▶
//!         cold query, warm queries, count(*) check, EXPLAIN ANALYZE summary,
//!         the same GROUP BY over every row
//!  run:   fill, then `query` in a child process
//!  protocols: (a filled store) the one-hour GROUP BY and a full scan over
//!         HTTP JSON, HTTP Arrow IPC, Postgres and Flight SQL
//! ```
//!
//! `benches/README.md` says how to run it and what it measures.

// The report goes to stdout.
#![allow(clippy::print_stdout)]

#[path = "querybench/data.rs"]
mod data;
#[path = "querybench/fill.rs"]
mod fill;
#[path = "querybench/protocols.rs"]
mod protocols;
#[path = "querybench/query.rs"]
mod query;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// The allocator `weir` runs with (see its `main.rs`), so that the figures
/// are the engine's: every endpoint here is served as `weir run` serves it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Fills a Weir store with synthetic log rows, then times a one-hour
/// `GROUP BY service_name, severity_text` over it, cold and warm.
#[derive(Debug, Parser)]
#[command(name = "weir-querybench", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate log rows into a fresh store directory (flushed, compacted,
    /// closed), and record what the query step needs in `querybench.json`.
    Fill(FillArgs),
    /// Open a filled store as `weir run` does and time the queries.
    Query(QueryArgs),
    /// The one-hour GROUP BY and a full scan through every SQL endpoint
    /// (HTTP JSON, HTTP Arrow IPC, Postgres, Flight SQL) of a filled store.
    Protocols(ProtocolsArgs),
    /// `fill`, then `query` in a new process.
    Run {
        #[command(flatten)]
        fill: FillArgs,
        #[command(flatten)]
        query: QueryOptions,
    },
}

/// Options of the fill step.
#[derive(Debug, Clone, Args)]
pub struct FillArgs {
    /// The store directory; must not exist yet. Default: a new directory
    /// under the system's temporary directory.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Log rows to generate.
    #[arg(long, default_value_t = 10_000_000)]
    rows: u64,
    /// The rows' times are spread uniformly over this many hours, ending now.
    #[arg(long, default_value_t = 24)]
    hours: u32,
    /// Rows per OTLP request, and so per `Store::append`.
    #[arg(long, default_value_t = 8192)]
    batch_size: usize,
    /// The query window (one hour) starts this long before the end of the
    /// data, e.g. "90m": an hour that is not aligned to the hourly
    /// partitions, as `time > now() - INTERVAL '1 hour'` never is.
    #[arg(long, default_value = "90m", value_parser = humantime::parse_duration)]
    window_from_end: Duration,
    /// `[store] fsync` of the fill: "always" (Weir's default) or "never".
    #[arg(long, default_value = "always", value_parser = fill::parse_fsync)]
    fsync: weir_config::FsyncPolicy,
    /// The generator's seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// Options of the query step.
#[derive(Debug, Clone, Args)]
pub struct QueryOptions {
    /// Warm repetitions of the query.
    #[arg(long, default_value_t = 10)]
    warm: usize,
    /// Repetitions of the full-scan comparison query.
    #[arg(long, default_value_t = 3)]
    full: usize,
    /// Drop the operating system's page cache before opening the store
    /// (`sync; echo 3 > /proc/sys/vm/drop_caches`; needs root). The report
    /// says whether it worked.
    #[arg(long)]
    drop_caches: bool,
    /// Run the cold query instrumented (its physical plan executed directly
    /// in the SQL service's session, as EXPLAIN ANALYZE does), to see where
    /// a cold query's time goes; by default it runs through
    /// `SqlService::execute` like an HTTP query.
    #[arg(long)]
    explain_cold: bool,
    /// Print the whole EXPLAIN ANALYZE plans, not only their summaries.
    #[arg(long)]
    verbose: bool,
}

/// Arguments of the query step.
#[derive(Debug, Clone, Args)]
pub struct QueryArgs {
    /// The store directory a `fill` made.
    #[arg(long)]
    dir: PathBuf,
    #[command(flatten)]
    options: QueryOptions,
}

/// Arguments of the protocols step.
#[derive(Debug, Clone, Args)]
pub struct ProtocolsArgs {
    /// The store directory a `fill` made.
    #[arg(long)]
    dir: PathBuf,
    /// Repetitions of each query on each endpoint (the median is reported).
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Only these endpoints (comma-separated: in-process, json, arrow,
    /// postgres, flight), e.g. to profile one. Default: all.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// The HTTP/2 frame size the Flight SQL client asks the server for, in
    /// bytes (16384 to 16777215). Default: HTTP/2's 16 KiB, which the gRPC
    /// libraries under the ADBC driver and pyarrow keep.
    #[arg(long)]
    flight_frame_bytes: Option<u32>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("weir-querybench: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Fill(args) => runtime.block_on(fill::run(&args)).map(|_| ()),
        Command::Query(args) => runtime.block_on(query::run(&args)),
        Command::Protocols(args) => runtime.block_on(protocols::run(&args)),
        Command::Run { fill, query } => runtime
            .block_on(fill::run(&fill))
            .and_then(|dir| query::in_child(&dir, &query)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("weir-querybench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
