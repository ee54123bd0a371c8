//! The query step: open a filled store as `weir run` does (`Store::open`,
//! then a [`SqlService`] whose sessions the store registers its tables in),
//! and time the one-hour GROUP BY cold, then warm; check the answers;
//! summarise the EXPLAIN ANALYZE metrics of the query and of the same
//! GROUP BY over every row.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Int64Type};
use arrow::record_batch::RecordBatch;
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::physical_plan::{ExecutionPlan, collect, display::DisplayableExecutionPlan};
use futures::TryStreamExt;
use weir_config::{QueryConfig, StoreConfig};
use weir_query::SqlService;
use weir_store::Store;

use crate::fill::{FillRecord, rfc3339};
use crate::{QueryArgs, QueryOptions};

/// Runs `query` for `dir` in a new process (this binary), so that the
/// store is opened fresh and nothing of the fill is left in memory.
pub fn in_child(dir: &Path, options: &QueryOptions) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("cannot find this program to run the query step")?;
    let mut command = std::process::Command::new(exe);
    command
        .arg("query")
        .arg("--dir")
        .arg(dir)
        .arg("--warm")
        .arg(options.warm.to_string())
        .arg("--full")
        .arg(options.full.to_string());
    for (flag, on) in [
        ("--drop-caches", options.drop_caches),
        ("--explain-cold", options.explain_cold),
        ("--verbose", options.verbose),
    ] {
        if on {
            command.arg(flag);
        }
    }
    let status = command.status().context("cannot start the query step")?;
    if !status.success() {
        bail!("the query step failed ({status})");
    }
    Ok(())
}

/// Runs the query step.
pub async fn run(args: &QueryArgs) -> anyhow::Result<()> {
    let record = FillRecord::load(&args.dir)?;
    let options = &args.options;
    let (lo, hi) = (
        rfc3339(record.window_start_ns),
        rfc3339(record.window_end_ns),
    );
    let filter = format!("time >= '{lo}' AND time < '{hi}'");
    let query = format!(
        "SELECT service_name, severity_text, count(*) FROM logs WHERE {filter} GROUP BY 1, 2"
    );
    let full_query = "SELECT service_name, severity_text, count(*) FROM logs GROUP BY 1, 2";
    let count_query = format!("SELECT count(*) FROM logs WHERE {filter}");
    let expected: BTreeMap<(String, String), u64> = record
        .expected
        .iter()
        .map(|(s, v, n)| ((s.clone(), v.clone()), *n))
        .collect();
    let files = parquet_files(&args.dir.join("tables").join("logs"))?;
    println!(
        "query: store {} ({} rows, {} .. {}, {} Parquet files, {:.1} MiB)",
        args.dir.display(),
        record.rows,
        rfc3339(record.start_ns),
        rfc3339(record.end_ns),
        files.0,
        files.1 as f64 / (1 << 20) as f64
    );
    println!("query: {query}");

    if options.drop_caches {
        match drop_page_cache() {
            Ok(()) => {
                println!("query: page cache dropped (sync; echo 3 > /proc/sys/vm/drop_caches)")
            }
            Err(e) => println!(
                "query: page cache NOT dropped ({e:#}): the cold run reads files the OS may still cache"
            ),
        }
    } else {
        println!(
            "query: page cache not dropped (no --drop-caches): the cold run is cold for Weir (new process, fresh store, empty footer cache), but the files may be in the OS cache"
        );
    }

    // As `weir run`: the store, then the SQL service over it.
    let t = Instant::now();
    let config = StoreConfig {
        path: args.dir.clone(),
        ..StoreConfig::default()
    };
    let store = Store::open(&config)
        .await
        .with_context(|| format!("cannot open the store in `{}`", args.dir.display()))?;
    let opened = t.elapsed();
    println!(
        "query: Store::open {} (indexes the files' footers, reads the WAL)",
        ms(opened)
    );
    let registered = store.clone();
    let service = SqlService::new(
        Arc::new(move |ctx| registered.register(ctx)),
        &QueryConfig::default(),
    );

    // Cold: the first query of the process.
    let cold = if options.explain_cold {
        let run = instrumented(&service, &query).await?;
        check_groups(&run.batches, &expected)?;
        println!(
            "cold:  {} (planning {}), instrumented",
            ms(run.total),
            ms(run.planning)
        );
        summarise("cold query", &run, files.0, options.verbose);
        run.total
    } else {
        let (batches, planning, total) = timed(&service, &query).await?;
        check_groups(&batches, &expected)?;
        println!("cold:  {} (planning {})", ms(total), ms(planning));
        total
    };

    // Warm.
    let mut warm = Vec::with_capacity(options.warm);
    let mut planning = Vec::with_capacity(options.warm);
    for _ in 0..options.warm {
        let (batches, plan, total) = timed(&service, &query).await?;
        check_groups(&batches, &expected)?;
        warm.push(total);
        planning.push(plan);
    }
    if !warm.is_empty() {
        let (min, median, max) = spread(&mut warm);
        let (_, plan_median, _) = spread(&mut planning);
        println!(
            "warm:  min {} / median {} / max {} over {} runs (median planning {})",
            ms(min),
            ms(median),
            ms(max),
            warm.len(),
            ms(plan_median)
        );
    }

    // The answer: the groups sum to the rows generated in the window, and
    // to what count(*) with the same filter says.
    let (batches, _, _) = timed(&service, &count_query).await?;
    let counted = first_i64(&batches)?;
    let want = record.expected_total();
    if counted != want {
        bail!("count(*) over the window is {counted}, but the fill generated {want} rows in it");
    }
    println!(
        "check: {} groups summing to {want} rows = rows generated in the window = count(*) with the same filter",
        expected.len()
    );

    // Where the time goes.
    let run = instrumented(&service, &query).await?;
    check_groups(&run.batches, &expected)?;
    println!(
        "explain analyze (warm): {} (planning {})",
        ms(run.total),
        ms(run.planning)
    );
    summarise("1-hour query", &run, files.0, options.verbose);

    // The same GROUP BY over every row, for comparison.
    let mut full = Vec::with_capacity(options.full);
    for _ in 0..options.full {
        let (batches, _, total) = timed(&service, full_query).await?;
        let rows = sum_counts(&batches)?.values().sum::<u64>();
        if rows != record.rows {
            bail!(
                "the full scan counted {rows} rows, but the fill generated {}",
                record.rows
            );
        }
        full.push(total);
    }
    if !full.is_empty() {
        let (min, median, max) = spread(&mut full);
        println!(
            "full scan ({} rows, no time filter): min {} / median {} / max {} over {} runs = {:.1} M rows/s",
            record.rows,
            ms(min),
            ms(median),
            ms(max),
            full.len(),
            record.rows as f64 / median.as_secs_f64() / 1e6
        );
        let run = instrumented(&service, full_query).await?;
        summarise("full scan", &run, files.0, options.verbose);
    }
    println!(
        "result: {} rows, 1-hour GROUP BY: cold {}, warm median {}",
        record.rows,
        ms(cold),
        warm.get(warm.len() / 2)
            .map_or_else(|| "-".to_owned(), |d| ms(*d))
    );
    store.close().await.context("closing the store failed")?;
    Ok(())
}

/// One query through the service, as the HTTP endpoint runs it: the
/// batches, the planning time and the total.
async fn timed(
    service: &SqlService,
    sql: &str,
) -> anyhow::Result<(Vec<RecordBatch>, Duration, Duration)> {
    let t = Instant::now();
    let stream = service
        .execute(sql)
        .await
        .with_context(|| format!("query failed: {sql}"))?;
    let planning = t.elapsed();
    let batches: Vec<RecordBatch> = stream
        .try_collect()
        .await
        .with_context(|| format!("query failed: {sql}"))?;
    Ok((batches, planning, t.elapsed()))
}

/// A query run instrumented, as EXPLAIN ANALYZE runs it.
struct Instrumented {
    batches: Vec<RecordBatch>,
    plan: Arc<dyn ExecutionPlan>,
    planning: Duration,
    total: Duration,
}

/// Plans `sql` in a session of the service (same configuration, tables and
/// functions as `execute`) and runs the physical plan, keeping its metrics.
async fn instrumented(service: &SqlService, sql: &str) -> anyhow::Result<Instrumented> {
    let t = Instant::now();
    let ctx = service.context()?;
    let plan = ctx.sql(sql).await?.create_physical_plan().await?;
    let planning = t.elapsed();
    let batches = collect(plan.clone(), ctx.task_ctx()).await?;
    Ok(Instrumented {
        batches,
        plan,
        planning,
        total: t.elapsed(),
    })
}

/// Metrics worth reading, per operator.
const SCAN_METRICS: [&str; 10] = [
    "files_ranges_pruned_statistics",
    "row_groups_pruned_statistics",
    "page_index_rows_pruned",
    "bytes_scanned",
    "metadata_load_time",
    "page_index_eval_time",
    "time_elapsed_opening",
    "time_elapsed_scanning_total",
    "time_elapsed_processing",
    "elapsed_compute",
];

/// Prints, per operator, its output rows and compute time, and for the
/// Parquet scan the files it read (after the store's own pruning by hour
/// and file time range), the row groups and pages pruned by statistics,
/// the bytes read and where its time went. Times of a scan add up over its
/// partitions (threads).
fn summarise(title: &str, run: &Instrumented, files_in_store: u64, verbose: bool) {
    println!("  where the time goes ({title}, {}):", ms(run.total));
    walk(run.plan.as_ref(), 2, files_in_store);
    if verbose {
        println!(
            "  EXPLAIN ANALYZE:\n{}",
            DisplayableExecutionPlan::with_metrics(run.plan.as_ref()).indent(true)
        );
    }
}

fn walk(plan: &dyn ExecutionPlan, depth: usize, files_in_store: u64) {
    let pad = "  ".repeat(depth);
    let metrics = plan.metrics().map(|m| m.aggregate_by_name());
    let rows = metrics
        .as_ref()
        .and_then(|m| m.output_rows())
        .map_or_else(String::new, |r| format!(" rows={r}"));
    let compute = metrics
        .as_ref()
        .and_then(|m| m.elapsed_compute())
        .filter(|ns| *ns > 0)
        .map_or_else(String::new, |ns| {
            format!(" compute={}", ms(Duration::from_nanos(ns as u64)))
        });
    println!("{pad}{}{rows}{compute}", plan.name());
    let any: &dyn std::any::Any = plan;
    if let Some(scan) = any.downcast_ref::<DataSourceExec>().and_then(|d| {
        let source: &dyn std::any::Any = d.data_source().as_ref();
        source.downcast_ref::<FileScanConfig>()
    }) {
        // A large file may be read as several ranges: count each once.
        let files: BTreeMap<String, u64> = scan
            .file_groups
            .iter()
            .flat_map(|g| g.files())
            .map(|f| (f.object_meta.location.to_string(), f.object_meta.size))
            .collect();
        let bytes: u64 = files.values().sum();
        println!(
            "{pad}  files read {} of {files_in_store} ({:.1} MiB) in {} partitions; the store skipped {} by hour and time range",
            files.len(),
            bytes as f64 / (1 << 20) as f64,
            scan.file_groups.len(),
            files_in_store.saturating_sub(files.len() as u64)
        );
        if let Some(m) = &metrics {
            let mut shown: Vec<String> = Vec::new();
            for name in SCAN_METRICS {
                if name == "elapsed_compute" {
                    continue;
                }
                if let Some(metric) = m.iter().find(|x| x.value().name() == name) {
                    shown.push(format!("{name}={}", metric.value()));
                }
            }
            for chunk in shown.chunks(3) {
                println!("{pad}  {}", chunk.join(", "));
            }
        }
    }
    for child in plan.children() {
        walk(child.as_ref(), depth + 1, files_in_store);
    }
}

/// `(service, severity) -> count` of a GROUP BY answer.
fn sum_counts(batches: &[RecordBatch]) -> anyhow::Result<BTreeMap<(String, String), u64>> {
    let mut out = BTreeMap::new();
    for b in batches {
        if b.num_columns() != 3 {
            bail!("expected 3 columns, got {}", b.num_columns());
        }
        let service = arrow::compute::cast(b.column(0), &DataType::Utf8)?;
        let severity = arrow::compute::cast(b.column(1), &DataType::Utf8)?;
        let count = arrow::compute::cast(b.column(2), &DataType::Int64)?;
        let (service, severity, count) = (
            service.as_string::<i32>(),
            severity.as_string::<i32>(),
            count.as_primitive::<Int64Type>(),
        );
        for i in 0..b.num_rows() {
            let key = (
                if service.is_valid(i) {
                    service.value(i).to_owned()
                } else {
                    String::new()
                },
                if severity.is_valid(i) {
                    severity.value(i).to_owned()
                } else {
                    String::new()
                },
            );
            *out.entry(key).or_insert(0) += u64::try_from(count.value(i))?;
        }
    }
    Ok(out)
}

/// Checks a GROUP BY answer against the counts the fill made.
fn check_groups(
    batches: &[RecordBatch],
    expected: &BTreeMap<(String, String), u64>,
) -> anyhow::Result<()> {
    let got = sum_counts(batches)?;
    if &got != expected {
        let total: u64 = got.values().sum();
        let want: u64 = expected.values().sum();
        bail!(
            "wrong answer: {} groups summing to {total}, expected {} groups summing to {want}",
            got.len(),
            expected.len()
        );
    }
    Ok(())
}

/// The single integer of a `SELECT count(*)`.
fn first_i64(batches: &[RecordBatch]) -> anyhow::Result<u64> {
    let b = batches
        .iter()
        .find(|b| b.num_rows() > 0)
        .context("count(*) returned no row")?;
    let v = arrow::compute::cast(b.column(0), &DataType::Int64)?;
    Ok(u64::try_from(v.as_primitive::<Int64Type>().value(0))?)
}

/// Min, median, max.
fn spread(values: &mut [Duration]) -> (Duration, Duration, Duration) {
    values.sort();
    (
        values[0],
        values[values.len() / 2],
        values[values.len() - 1],
    )
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// `sync`, then drop the page cache, dentries and inodes.
fn drop_page_cache() -> anyhow::Result<()> {
    let status = std::process::Command::new("sync")
        .status()
        .context("cannot run `sync`")?;
    if !status.success() {
        bail!("`sync` failed ({status})");
    }
    std::fs::write("/proc/sys/vm/drop_caches", "3")
        .context("cannot write /proc/sys/vm/drop_caches (needs root, and a writable /proc/sys)")
}

/// Parquet files and their bytes under `dir`.
fn parquet_files(dir: &Path) -> anyhow::Result<(u64, u64)> {
    let mut files = 0;
    let mut bytes = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in
            std::fs::read_dir(&d).with_context(|| format!("cannot read `{}`", d.display()))?
        {
            let entry = entry?;
            let meta = entry.metadata()?;
            if meta.is_dir() {
                stack.push(entry.path());
            } else if entry.file_name().to_string_lossy().ends_with(".parquet") {
                files += 1;
                bytes += meta.len();
            }
        }
    }
    Ok((files, bytes))
}
