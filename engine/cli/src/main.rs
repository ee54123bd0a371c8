//! `weir`: run, check and inspect Weir pipelines.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use weir_cli::Engine;
use weir_cli::telemetry::{LogFormat, init_logs};

/// mimalloc rather than glibc's malloc: Weir allocates and frees many small
/// objects per record (protobuf decoding, Arrow builders) on every core, and
/// glibc's arenas spent a third of a forwarding run's CPU on it. Built
/// without transparent huge pages (`no_thp`): with them, every page it
/// took fresh or back from a purge was a 2 MiB page the kernel zeroed on
/// first touch, 15 to 24 % of a forwarding run's CPU.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit codes, as documented in `weir --help`.
mod exit {
    pub const OK: u8 = 0;
    pub const FAILED: u8 = 1;
    // 2 is clap's own: the command line was wrong.
    pub const USAGE: u8 = 2;
    pub const BAD_CONFIG: u8 = 3;
}

const DEFAULT_PIPELINE: &str = "pipelines/default.toml";

#[derive(Parser)]
#[command(
    name = "weir",
    version,
    about = "Weir: a telemetry stream-processing engine (OTLP in, Arrow inside, sinks out)",
    after_help = "Exit codes: 0 success; 1 the engine failed at start or while running \
                  (or `weir sql`: the query failed; `weir plugin build`: the build failed; `weir test`: a test \
                  failed); \
                  2 the command line is wrong; 3 the pipeline file is invalid."
)]
struct Cli {
    /// Log format.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "WEIR_LOG_FORMAT"
    )]
    log_format: LogFormat,
    /// Log level or filter (`info`, `debug`, `weir_sources=debug`); `RUST_LOG` wins if set.
    #[arg(long, global = true, default_value = "info", env = "WEIR_LOG")]
    log_level: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a pipeline until SIGINT or SIGTERM, then drain in-flight data and stop.
    Run {
        /// The pipeline file.
        #[arg(default_value = DEFAULT_PIPELINE)]
        file: PathBuf,
    },
    /// Check a pipeline file without starting anything; print every problem with file:line.
    Validate {
        /// The pipeline file.
        file: PathBuf,
    },
    /// Run the `[[tests]]` of pipeline files against their rules; print each
    /// difference.
    ///
    /// Example: weir test pipelines/alerts/*.toml
    Test {
        /// The pipeline files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Run one SQL query against a running Weir and print the result.
    ///
    /// Example: weir sql "SELECT service_name, count(*) FROM spans GROUP BY 1"
    Sql {
        /// The query (read-only: SELECT, WITH, EXPLAIN, SHOW, DESCRIBE).
        query: String,
        /// The API server of the running Weir (`[api] address` of its pipeline).
        #[arg(long, default_value = "127.0.0.1:8888", env = "WEIR_API")]
        api: String,
        /// How to print the result: `table`, `csv` or `json`.
        #[arg(long, short = 'f', default_value = "table")]
        format: weir_query::client::OutputFormat,
    },
    /// Make and build WebAssembly plugins (see docs/plugins.md).
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Make a working plugin project from a template.
    ///
    /// Example: weir plugin new rust drop-debug && weir plugin build drop-debug
    New {
        /// The plugin's language.
        lang: weir_cli::plugin::Lang,
        /// The plugin's name: lowercase letters, digits and `-`.
        name: String,
        /// Where to make it (default: a new folder NAME here).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Rust only: depend on the SDK in this folder (the `sdk/rust`
        /// folder of a Weir source tree, to develop the SDK itself) instead
        /// of the copy of it written into the project (the default: the
        /// project then builds anywhere, without Weir's sources).
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
    /// List the first-party plugins built into Weir, with their version
    /// and config keys; a pipeline names one with `plugin = "NAME"`.
    List {
        /// Only the names, one per line.
        #[arg(long, short = 'q')]
        quiet: bool,
    },
    /// Build a plugin project into a component (`DIR/NAME.wasm`),
    /// installing the language's build tools when missing.
    Build {
        /// The project folder.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Write the component here instead.
        #[arg(long, short = 'o')]
        out: Option<PathBuf>,
    },
}

/// glibc's malloc serves what C libraries allocate (librdkafka above all:
/// every fetch response is one buffer of up to `fetch.max.bytes`). By its
/// own rules it gave a few MiB back to the kernel after each fetch and took
/// them again at the next: a Kafka source reading 800,000 spans/s took 29,000
/// page faults a second. Buffers up to 32 MiB now come from its heap, and
/// up to 128 MiB of freed memory stays there instead of going back: 1,900
/// page faults a second, 3-5 % more spans/s. What stays is at most what the
/// library had in use at its peak. Weir's own allocations are mimalloc's.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn tune_c_malloc() {
    // SAFETY: mallopt only sets glibc's parameters; it runs before any
    // thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 128 << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_c_malloc() {}

fn main() -> ExitCode {
    tune_c_malloc();
    let cli = Cli::parse();
    init_logs(cli.log_format, &cli.log_level);
    ExitCode::from(match cli.command {
        Command::Validate { file } => validate(&file),
        Command::Run { file } => run(&file),
        Command::Test { files } => test(&files),
        Command::Sql { query, api, format } => sql(&api, &query, format),
        Command::Plugin { command } => plugin(command),
    })
}

fn plugin(command: PluginCommand) -> u8 {
    use weir_cli::plugin::{PluginCommandError, build_project, new_project};
    let result = match command {
        PluginCommand::New {
            lang,
            name,
            dir,
            sdk,
        } => {
            let dir = dir.unwrap_or_else(|| PathBuf::from(&name));
            new_project(lang, &name, &dir, sdk.as_deref()).map(|files| {
                for f in &files {
                    eprintln!("  wrote {}", f.display());
                }
                eprintln!(
                    "made the {lang} plugin `{name}`; build it with `weir plugin build {}`",
                    dir.display()
                );
            })
        }
        PluginCommand::List { quiet } => {
            write_stdout(&weir_cli::plugin::list(quiet));
            Ok(())
        }
        PluginCommand::Build { dir, out } => build_project(&dir, out.as_deref()).map(|path| {
            eprintln!("built {}", path.display());
            write_stdout(&format!("{}\n", path.display()));
        }),
    };
    match result {
        Ok(()) => exit::OK,
        Err(e @ PluginCommandError::Usage(_)) => {
            eprintln!("error: {e}");
            exit::USAGE
        }
        Err(e) => {
            eprintln!("error: {e}");
            exit::FAILED
        }
    }
}

/// Writes `text` to stdout; false if it cannot (a closed pipe is fine).
fn write_stdout(text: &str) -> bool {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => true,
        // A closed pipe (`weir sql ... | head`) is not our failure.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => true,
        Err(e) => {
            eprintln!("error: cannot write to stdout: {e}");
            false
        }
    }
}

fn load(file: &std::path::Path) -> Result<weir_config::Plan, u8> {
    match weir_cli::load(file) {
        Ok(plan) => {
            for warning in &plan.warnings {
                eprintln!("{warning}");
            }
            Ok(plan)
        }
        Err(e) => {
            eprintln!("{e}");
            Err(exit::BAD_CONFIG)
        }
    }
}

fn validate(file: &std::path::Path) -> u8 {
    match load(file) {
        Ok(plan) => {
            eprintln!(
                "{}: valid ({} components)",
                file.display(),
                plan.components.len()
            );
            exit::OK
        }
        Err(code) => code,
    }
}

fn test(files: &[PathBuf]) -> u8 {
    let mut worst = exit::OK;
    let mut plans = Vec::new();
    for file in files {
        match load(file) {
            Ok(plan) => {
                if plan.tests.is_empty() {
                    eprintln!("{}: no [[tests]] to run", file.display());
                }
                plans.push((file, plan));
            }
            Err(code) => worst = worst.max(code),
        }
    }
    let Some(runtime) = small_runtime() else {
        return exit::FAILED;
    };
    for (file, plan) in plans {
        let outcomes = runtime.block_on(weir_cli::tests::run_plan_tests(&plan));
        let text = weir_rules::testing::report(&file.display().to_string(), &outcomes);
        {
            use std::io::Write as _;
            let mut stdout = std::io::stdout().lock();
            if stdout
                .write_all(text.as_bytes())
                .and_then(|()| stdout.flush())
                .is_err()
            {
                return exit::FAILED;
            }
        }
        if outcomes.iter().any(|o| !o.passed()) && worst == exit::OK {
            worst = exit::FAILED;
        }
    }
    worst
}

/// A single-threaded runtime for the short commands; `None` (reported)
/// when it cannot start.
fn small_runtime() -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => Some(r),
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            None
        }
    }
}

fn sql(api: &str, query: &str, format: weir_query::client::OutputFormat) -> u8 {
    let Some(runtime) = small_runtime() else {
        return exit::FAILED;
    };
    match runtime.block_on(weir_query::client::query(api, query, format)) {
        Ok(text) => {
            use std::io::Write as _;
            let mut stdout = std::io::stdout().lock();
            match stdout
                .write_all(text.as_bytes())
                .and_then(|()| stdout.flush())
            {
                Ok(()) => exit::OK,
                // A closed pipe (`weir sql ... | head`) is not the query's fault.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => exit::OK,
                Err(e) => {
                    eprintln!("error: cannot write the result: {e}");
                    exit::FAILED
                }
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            exit::FAILED
        }
    }
}

fn run(file: &std::path::Path) -> u8 {
    let plan = match load(file) {
        Ok(p) => p,
        Err(code) => return code,
    };
    weir_core::memory::install(plan.runtime.memory_limit, plan.runtime.spike_limit());
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all().thread_name("weir");
    if plan.runtime.worker_threads > 0 {
        builder.worker_threads(plan.runtime.worker_threads);
    }
    let runtime = match builder.build() {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            return exit::FAILED;
        }
    };
    runtime.block_on(async {
        let started = match Engine::start(&plan).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("cannot start {}: {e:#}", file.display());
                return exit::FAILED;
            }
        };
        tracing::info!(pipeline = %file.display(), "weir is running");
        reload_on_hangup(file.to_path_buf(), started.reloader());
        let report = started.run_until(stop_signal()).await;
        if report.is_clean() {
            tracing::info!("stopped cleanly");
            exit::OK
        } else {
            for (component, reason) in &report.errors {
                tracing::error!(%component, %reason, "component failed");
            }
            if !report.timed_out.is_empty() {
                tracing::error!(components = ?report.timed_out, "did not finish draining within `shutdown_timeout`");
            }
            exit::FAILED
        }
    })
}

/// On each SIGHUP, reads `file` again and applies what changed (see
/// `weir_cli::reload`); a file that does not validate changes nothing.
fn reload_on_hangup(file: std::path::PathBuf, reloader: weir_cli::reload::Reloader) {
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hangup) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP; a changed pipeline needs a restart");
            return;
        };
        while hangup.recv().await.is_some() {
            let plan = match weir_cli::load(&file) {
                Ok(plan) => plan,
                Err(e) => {
                    weir_cli::metrics::pipeline_reloads("invalid").increment(1);
                    tracing::error!(pipeline = %file.display(), "the changed pipeline is invalid; nothing changed: {e}");
                    continue;
                }
            };
            let outcome = reloader.reload(&plan);
            weir_cli::metrics::pipeline_reloads("applied").increment(1);
            for what in &outcome.needs_restart {
                tracing::warn!(pipeline = %file.display(), "{what}");
            }
            tracing::info!(pipeline = %file.display(), applied = ?outcome.applied, "pipeline reloaded");
        }
    });
    #[cfg(not(unix))]
    let _ = (file, reloader);
}

/// Resolves on the first SIGINT or SIGTERM. A second signal exits at once.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tokio::spawn(async move {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            tracing::warn!("second signal: exiting without draining");
            std::process::exit(exit::FAILED as i32);
        });
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
