//! The fill step: synthetic log rows through `Store::append` into a fresh
//! store directory, then flushed, compacted and closed, so that the files
//! are exactly what a running Weir writes. What the query step needs to
//! check its answers goes to `querybench.json` beside the store's own files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use arrow::record_batch::RecordBatch;
use serde::{Deserialize, Serialize};
use weir_config::{FsyncPolicy, StoreConfig};
use weir_core::Signal;
use weir_store::{Store, StoreError};

use crate::FillArgs;
use crate::data::LogGenerator;

/// The file, in the store directory, that tells the query step what was
/// generated.
pub const RECORD_FILE: &str = "querybench.json";

const HOUR_NS: i64 = 3_600_000_000_000;

/// What a fill generated: enough for the query step to build its query and
/// check the answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct FillRecord {
    /// Rows generated.
    pub rows: u64,
    /// The rows' times are in `[start_ns, end_ns)`.
    pub start_ns: i64,
    /// See `start_ns`.
    pub end_ns: i64,
    /// The query window `[window_start_ns, window_end_ns)`.
    pub window_start_ns: i64,
    /// See `window_start_ns`.
    pub window_end_ns: i64,
    /// Rows in the window per service and severity text.
    pub expected: Vec<(String, String, u64)>,
}

impl FillRecord {
    /// Reads `querybench.json` of a filled store.
    pub fn load(dir: &Path) -> anyhow::Result<FillRecord> {
        let path = dir.join(RECORD_FILE);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "cannot read `{}`: is this a directory `weir-querybench fill` made?",
                path.display()
            )
        })?;
        serde_json::from_str(&text).with_context(|| format!("`{}` is damaged", path.display()))
    }

    /// Rows in the window.
    pub fn expected_total(&self) -> u64 {
        self.expected.iter().map(|(_, _, n)| n).sum()
    }
}

/// What the generator thread hands back when it is done.
struct Generated {
    in_window: BTreeMap<(String, String), u64>,
    /// Time spent making OTLP requests ...
    generate: Duration,
    /// ... and converting them to rows.
    convert: Duration,
}

/// Runs the fill; returns the store directory.
pub async fn run(args: &FillArgs) -> anyhow::Result<PathBuf> {
    if args.rows == 0 || args.hours == 0 || args.batch_size == 0 {
        bail!("--rows, --hours and --batch-size must be above zero");
    }
    let dir = match &args.dir {
        Some(dir) => dir.clone(),
        None => default_dir(args.rows)?,
    };
    if dir.exists()
        && std::fs::read_dir(&dir)
            .with_context(|| format!("cannot read `{}`", dir.display()))?
            .next()
            .is_some()
    {
        bail!(
            "`{}` is not empty: give --dir a new directory (a fill starts from an empty store)",
            dir.display()
        );
    }
    let end_ns =
        i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs())? * 1_000_000_000;
    let start_ns = end_ns - i64::from(args.hours) * HOUR_NS;
    let window_start_ns = end_ns - i64::try_from(args.window_from_end.as_nanos())?;
    let window_end_ns = window_start_ns + HOUR_NS;
    if window_start_ns < start_ns || window_end_ns > end_ns {
        bail!(
            "--window-from-end {} puts the one-hour query window outside the {} hours of data: use at least 1h and at most {}h",
            humantime::format_duration(args.window_from_end),
            args.hours,
            args.hours
        );
    }

    let config = StoreConfig {
        path: dir.clone(),
        fsync: args.fsync,
        ..StoreConfig::default()
    };
    println!(
        "fill: {} log rows over {} h ending {}, {} rows per append, fsync {:?}, into {}",
        args.rows,
        args.hours,
        humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_nanos(end_ns as u64)),
        args.batch_size,
        args.fsync,
        dir.display()
    );
    let store = Store::open(&config)
        .await
        .with_context(|| format!("cannot open a store in `{}`", dir.display()))?;

    // The generator runs on its own thread, a few batches ahead.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<RecordBatch>(4);
    let mut generator = LogGenerator::new(
        args.rows,
        start_ns,
        end_ns,
        args.batch_size,
        (window_start_ns, window_end_ns),
        args.seed,
    );
    let producer = std::thread::Builder::new()
        .name("querybench-generator".into())
        .spawn(move || -> anyhow::Result<Generated> {
            let mut generate = Duration::ZERO;
            let mut convert = Duration::ZERO;
            loop {
                let t = Instant::now();
                let Some(request) = generator.next_request() else {
                    break;
                };
                let t1 = Instant::now();
                let converted = weir_core::convert::logs_to_batch(&request)?;
                let t2 = Instant::now();
                generate += t1 - t;
                convert += t2 - t1;
                if converted.rejected > 0 {
                    bail!(
                        "the converter refused {} generated records: {}",
                        converted.rejected,
                        converted.rejection.unwrap_or_default()
                    );
                }
                drop(request);
                if tx.blocking_send(converted.batch).is_err() {
                    break;
                }
            }
            Ok(Generated {
                in_window: generator.in_window().clone(),
                generate,
                convert,
            })
        })?;

    let started = Instant::now();
    let mut appended = 0u64;
    let mut backlog_waits = 0u64;
    let mut backlog_time = Duration::ZERO;
    let mut next_progress = Instant::now() + Duration::from_secs(10);
    while let Some(batch) = rx.recv().await {
        let rows = batch.num_rows() as u64;
        loop {
            match store.append(vec![(Signal::Logs, batch.clone())]).await {
                Ok(refused) => {
                    // Rows older than the `logs` retention (7 days) are
                    // not stored: the fill would not hold what it says.
                    if let Some(r) = refused.into_iter().flatten().next() {
                        bail!("{}; use at most --hours 168", r.reason);
                    }
                    break;
                }
                // The flushes are behind: wait as a source would, then retry.
                Err(StoreError::Backlog { .. }) => {
                    backlog_waits += 1;
                    let t = Instant::now();
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    backlog_time += t.elapsed();
                }
                Err(e) => return Err(e).context("Store::append failed"),
            }
        }
        appended += rows;
        if Instant::now() >= next_progress {
            next_progress += Duration::from_secs(10);
            let secs = started.elapsed().as_secs_f64();
            eprintln!(
                "  {appended} rows appended in {secs:.0} s ({:.0} rows/s)",
                appended as f64 / secs
            );
        }
    }
    let generated = producer
        .join()
        .map_err(|_| anyhow::anyhow!("the generator thread panicked"))??;
    let appending = started.elapsed();
    if appended != args.rows {
        bail!("appended {appended} rows, expected {}", args.rows);
    }

    let t = Instant::now();
    store.flush().await.context("the final flush failed")?;
    let flush = t.elapsed();
    let t = Instant::now();
    store.compact_now().await.context("compaction failed")?;
    let compact = t.elapsed();
    let t = Instant::now();
    store.close().await.context("closing the store failed")?;
    let close = t.elapsed();
    drop(store);
    let total = started.elapsed();

    let tables = disk_usage(&dir.join("tables").join("logs"))?;
    let wal = disk_usage(&dir.join("wal"))?;
    let record = FillRecord {
        rows: args.rows,
        start_ns,
        end_ns,
        window_start_ns,
        window_end_ns,
        expected: generated
            .in_window
            .into_iter()
            .map(|((s, v), n)| (s, v, n))
            .collect(),
    };
    std::fs::write(
        dir.join(RECORD_FILE),
        serde_json::to_string_pretty(&record)?,
    )
    .with_context(|| format!("cannot write `{}`", dir.join(RECORD_FILE).display()))?;

    let rate = |d: Duration| args.rows as f64 / d.as_secs_f64();
    println!(
        "fill: appended {} rows in {:.1} s ({:.0} rows/s; generator thread: {:.1} s making OTLP, {:.1} s converting; appends waited {:.1} s for flushes in {} waits)",
        args.rows,
        appending.as_secs_f64(),
        rate(appending),
        generated.generate.as_secs_f64(),
        generated.convert.as_secs_f64(),
        backlog_time.as_secs_f64(),
        backlog_waits
    );
    println!(
        "fill: final flush {:.1} s, compaction {:.1} s, close {:.1} s; total {:.1} s = {:.0} rows/s end to end",
        flush.as_secs_f64(),
        compact.as_secs_f64(),
        close.as_secs_f64(),
        total.as_secs_f64(),
        rate(total)
    );
    println!(
        "fill: logs on disk: {} Parquet files in {} hourly partitions, {:.1} MiB, {:.1} bytes/row; WAL left: {:.1} MiB",
        tables.files,
        tables.dirs.saturating_sub(tables.date_dirs + 1),
        tables.bytes as f64 / (1 << 20) as f64,
        tables.bytes as f64 / args.rows as f64,
        wal.bytes as f64 / (1 << 20) as f64
    );
    println!(
        "fill: query window {} .. {}: {} rows",
        rfc3339(window_start_ns),
        rfc3339(window_end_ns),
        record.expected_total()
    );
    Ok(dir)
}

/// `[store] fsync` as a command-line value.
pub fn parse_fsync(s: &str) -> Result<FsyncPolicy, String> {
    match s {
        "always" => Ok(FsyncPolicy::Always),
        "never" => Ok(FsyncPolicy::Never),
        other => Err(format!("`{other}`: use \"always\" or \"never\"")),
    }
}

/// A nanosecond timestamp as RFC 3339 (UTC, seconds).
pub fn rfc3339(ns: i64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_nanos(ns.max(0) as u64))
        .to_string()
}

/// A new directory beside the benchmark's binary (in Cargo's target
/// directory), or under the system's temporary directory.
fn default_dir(rows: u64) -> anyhow::Result<PathBuf> {
    let stamp = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let base = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().and_then(Path::parent).map(Path::to_path_buf))
        .unwrap_or_else(std::env::temp_dir);
    Ok(base.join("querybench").join(format!("logs-{rows}-{stamp}")))
}

/// Files, directories and bytes under a directory.
#[derive(Debug, Default)]
struct Usage {
    files: u64,
    bytes: u64,
    dirs: u64,
    date_dirs: u64,
}

fn disk_usage(dir: &Path) -> anyhow::Result<Usage> {
    let mut usage = Usage::default();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        if !d.exists() {
            continue;
        }
        usage.dirs += 1;
        if d.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("date="))
        {
            usage.date_dirs += 1;
        }
        for entry in
            std::fs::read_dir(&d).with_context(|| format!("cannot read `{}`", d.display()))?
        {
            let entry = entry?;
            let meta = entry.metadata()?;
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                usage.files += 1;
                usage.bytes += meta.len();
            }
        }
    }
    Ok(usage)
}
