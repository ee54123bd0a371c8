//! The store end to end, through DataFusion SQL: rows in memory, in
//! Parquet, across restarts, compaction and retention, on local disk and
//! at a `file://` URL.

use std::fs;
use std::sync::Arc;

use arrow::array::{
    Array, AsArray, Float64Array, MapBuilder, RecordBatch, StringBuilder, StringDictionaryBuilder,
    TimestampNanosecondArray,
};
use arrow::datatypes::Int32Type;
use parquet::file::reader::FileReader;
use parquet::file::serialized_reader::SerializedFileReader;
use weir_core::Signal;
use weir_store::{Store, StoreError};

use crate::common::*;

/// Scenario: batches appended, queried before and after a flush.
/// Guarantees: rows are visible at once, and neither lost nor doubled when
/// they move to Parquet; the file lands in `<table>/date=/hour=` with its
/// metadata.
#[tokio::test]
async fn appended_rows_are_visible_at_once_and_once_after_flush() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&config(dir.path())).await;
    store
        .append(logs_entry(log_batch(100, BASE, 1_000_000, "cart")))
        .await
        .expect("append");
    let sql = "SELECT count(*) FROM logs";
    assert_eq!(count(&store, sql).await, 100);
    store.flush().await.expect("flush");
    assert_eq!(count(&store, sql).await, 100);
    store
        .append(logs_entry(log_batch(10, BASE, 1, "cart")))
        .await
        .expect("append");
    assert_eq!(count(&store, sql).await, 110);

    let files = parquet_files(&dir.path().join("tables"));
    assert_eq!(files.len(), 1, "{files:?}");
    let rel = files[0]
        .strip_prefix(dir.path().join("tables"))
        .expect("under tables")
        .to_string_lossy()
        .to_string();
    assert!(rel.starts_with("logs/date=2024-03-01/hour=10/"), "{rel}");
    let reader = SerializedFileReader::new(fs::File::open(&files[0]).expect("open")).expect("read");
    let kv: std::collections::HashMap<String, String> = reader
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .expect("metadata")
        .iter()
        .map(|e| (e.key.clone(), e.value.clone().unwrap_or_default()))
        .collect();
    assert_eq!(kv["weir.table"], "logs");
    assert_eq!(kv["weir.schema.version"], weir_core::schema::SCHEMA_VERSION);
    assert_eq!(kv["weir.time.min"], BASE.to_string());
    assert_eq!(kv["weir.time.max"], (BASE + 99_000_000).to_string());
    assert_eq!(kv["weir.lsn.min"], "1");
    assert_eq!(kv["weir.lsn.max"], "1");
    let rg = reader.metadata().row_group(0);
    assert!(rg.column(0).statistics().is_some(), "row-group statistics");
    assert!(rg.sorting_columns().is_some(), "sort order recorded");
    store.close().await.expect("close");
}

/// Scenario: some rows flushed, some only in the WAL, then the process
/// stops without closing (a crash), and starts again; then a clean close
/// and a third start.
/// Guarantees: every acknowledged row is there exactly once: records
/// already in Parquet are not replayed into memory again.
#[tokio::test]
async fn restart_replays_only_what_is_not_in_parquet() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path());
    let store = open(&cfg).await;
    for i in 0..3 {
        store
            .append(logs_entry(log_batch(10, BASE + i * HOUR, 1, "a")))
            .await
            .expect("append");
    }
    store.flush().await.expect("flush");
    store
        .append(logs_entry(log_batch(7, BASE, 1, "b")))
        .await
        .expect("append");
    drop(store);

    let store = open(&cfg).await;
    assert_eq!(count(&store, "SELECT count(*) FROM logs").await, 37);
    assert_eq!(
        count(&store, "SELECT count(*) FROM logs WHERE service_name = 'b'").await,
        7
    );
    store.close().await.expect("close");
    drop(store);

    let store = open(&cfg).await;
    assert_eq!(count(&store, "SELECT count(*) FROM logs").await, 37);
    let err = {
        store.close().await.expect("close");
        store
            .append(logs_entry(log_batch(1, BASE, 1, "c")))
            .await
            .expect_err("closed")
    };
    assert!(matches!(err, StoreError::Closed), "{err}");
}

/// Scenario: rows in three hours, flushed, queried with time filters.
/// Guarantees: the answers are exact, and the scan only lists the files
/// of the hours the filter admits, with the filter as Parquet predicate.
#[tokio::test]
async fn time_filters_prune_files_and_stay_exact() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&config(dir.path())).await;
    for h in 0..3 {
        store
            .append(logs_entry(log_batch(
                60,
                BASE + h * HOUR,
                60_000_000_000,
                "a",
            )))
            .await
            .expect("append");
    }
    store.flush().await.expect("flush");
    // Fresh rows in memory too, in hour 1.
    store
        .append(logs_entry(log_batch(5, BASE + HOUR + 1, 1, "m")))
        .await
        .expect("append");

    let (lo, hi) = (BASE + HOUR, BASE + 2 * HOUR);
    let sql = format!(
        "SELECT count(*) FROM logs WHERE time >= {} AND time < {}",
        ts(lo),
        ts(hi)
    );
    assert_eq!(count(&store, &sql).await, 65);
    let p = plan(&store, &sql).await;
    assert_eq!(p.matches(".parquet").count(), 1, "{p}");
    assert!(p.contains("hour=11"), "{p}");
    assert!(p.contains("predicate="), "{p}");

    let sql = format!(
        "SELECT count(*) FROM logs WHERE time BETWEEN {} AND {}",
        ts(BASE + 30 * 60_000_000_000),
        ts(BASE + 30 * 60_000_000_000)
    );
    assert_eq!(count(&store, &sql).await, 1);
    let sql = "SELECT count(*) FROM logs WHERE time > '2024-03-01T11:59:00Z'";
    assert_eq!(count(&store, sql).await, 60);
    let sql = "SELECT count(*) FROM logs WHERE time < '2000-01-01T00:00:00Z'";
    assert_eq!(count(&store, sql).await, 0);
    assert_eq!(plan(&store, sql).await.matches(".parquet").count(), 0);
    store.close().await.expect("close");
}

/// Scenario: projection and limit over memory and Parquet.
/// Guarantees: only the projected columns are read, a limit returns that
/// many rows, and stops reading files once enough rows are planned.
#[tokio::test]
async fn projection_and_limit_are_pushed_down() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&config(dir.path())).await;
    for h in 0..4 {
        store
            .append(logs_entry(log_batch(50, BASE + h * HOUR, 1, "a")))
            .await
            .expect("append");
        store.flush().await.expect("flush");
    }
    store
        .append(logs_entry(log_batch(50, BASE, 1, "m")))
        .await
        .expect("append");
    let batches = query(&store, "SELECT body FROM logs LIMIT 7").await;
    assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 7);
    assert_eq!(batches[0].num_columns(), 1);
    let p = plan(&store, "SELECT body FROM logs LIMIT 7").await;
    assert!(p.contains("fetch=7"), "{p}");
    assert_eq!(p.matches(".parquet").count(), 0, "memory holds enough: {p}");
    let p = plan(&store, "SELECT body FROM logs LIMIT 60").await;
    assert_eq!(p.matches(".parquet").count(), 1, "one file is enough: {p}");
    assert!(p.contains("projection=[body]"), "{p}");
    let batches = query(&store, "SELECT body FROM logs LIMIT 60").await;
    assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 60);
    store.close().await.expect("close");
}

/// Scenario: five flushes into one past hour, then compaction, then a
/// restart.
/// Guarantees: the hour ends with one file holding every row, sorted;
/// queries see each row once before, during and after; the merged files
/// stay on disk through the grace period and are gone after a restart.
#[tokio::test]
async fn compaction_merges_small_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path());
    let store = open(&cfg).await;
    for i in 0..5 {
        let service = ["e", "d", "c", "b", "a"][i as usize];
        store
            .append(logs_entry(log_batch(20, BASE + i, 1000, service)))
            .await
            .expect("append");
        store.flush().await.expect("flush");
    }
    let tables = dir.path().join("tables");
    assert_eq!(parquet_files(&tables).len(), 5);
    let sql = "SELECT count(*) FROM logs";
    assert_eq!(count(&store, sql).await, 100);
    store.compact_now().await.expect("compact");
    assert_eq!(count(&store, sql).await, 100);
    let p = plan(&store, sql).await;
    assert_eq!(p.matches(".parquet").count(), 1, "{p}");
    // The merged files are kept for queries planned before the swap.
    assert_eq!(parquet_files(&tables).len(), 6);
    let names = query(&store, "SELECT service_name FROM logs").await;
    let first = names[0].column(0);
    let dict = first.as_dictionary::<Int32Type>();
    let values = dict.values().as_string::<i32>();
    assert_eq!(
        values.value(dict.keys().value(0) as usize),
        "a",
        "sorted by service"
    );
    // A crash before the grace period ends: the next start deletes them.
    drop(store);
    let store = open(&cfg).await;
    assert_eq!(parquet_files(&tables).len(), 1);
    assert_eq!(count(&store, sql).await, 100);
    store.close().await.expect("close");
}

/// Scenario: logs of 10 days ago and of an hour ago, spans of 2 days ago,
/// stored while the retention is long; the store reopened with the
/// default retention (logs 7 days, spans 24 hours).
/// Guarantees: whole expired partitions go, the rest stays, and they do
/// not come back after a restart.
#[tokio::test]
async fn retention_deletes_expired_partitions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&config(dir.path())).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos() as i64;
    let day = 24 * HOUR;
    store
        .append(logs_entry(log_batch(10, now - 10 * day, 1, "old")))
        .await
        .expect("append");
    store
        .append(logs_entry(log_batch(10, now - HOUR, 1, "new")))
        .await
        .expect("append");
    let mut rng = Rng::new(7);
    let spans = weir_core::convert::spans_to_batch(&spans(&mut rng, 1, 8, now - 2 * day, 1))
        .expect("spans")
        .batch;
    store
        .append(vec![(Signal::Spans, spans)])
        .await
        .expect("append");
    store.flush().await.expect("flush");
    assert_eq!(count(&store, "SELECT count(*) FROM logs").await, 20);
    assert_eq!(count(&store, "SELECT count(*) FROM spans").await, 8);
    store.close().await.expect("close");
    drop(store);

    let mut cfg = config(dir.path());
    cfg.retention = weir_config::RetentionConfig::default();
    let store = open(&cfg).await;
    store.enforce_retention_now().await.expect("retention");
    assert_eq!(count(&store, "SELECT count(*) FROM logs").await, 10);
    assert_eq!(count(&store, "SELECT count(*) FROM spans").await, 0);
    let recent = "SELECT count(*) FROM logs WHERE time > now() - INTERVAL '2 hours'";
    assert_eq!(count(&store, recent).await, 10);
    drop(store);
    let store = open(&cfg).await;
    assert_eq!(count(&store, "SELECT count(*) FROM logs").await, 10);
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM logs WHERE service_name = 'old'"
        )
        .await,
        0
    );
    assert_eq!(parquet_files(&dir.path().join("tables")).len(), 1);
    store.close().await.expect("close");
}

/// Scenario: one batch of 4,000 log records, two per hour over 2,000
/// consecutive hours (about twelve weeks, all within the retention),
/// flushed.
/// Guarantees: the flush completes and writes exactly one file per hour,
/// in its hour's directory; every record is read back, before and after
/// a restart, and a one-hour filter finds that hour's two.
#[tokio::test]
async fn a_batch_over_thousands_of_hours_flushes_one_file_per_hour() {
    const HOURS: i64 = 2_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&config(dir.path())).await;
    let refused = store
        .append(logs_entry(log_batch(
            2 * HOURS as usize,
            BASE,
            HOUR / 2,
            "wide",
        )))
        .await
        .expect("append");
    assert_eq!(refused, vec![None]);
    store.flush().await.expect("flush");
    let files = parquet_files(&dir.path().join("tables"));
    assert_eq!(files.len(), HOURS as usize);
    let dirs: std::collections::BTreeSet<_> = files.iter().filter_map(|f| f.parent()).collect();
    assert_eq!(dirs.len(), HOURS as usize, "one file per hour directory");
    let all = "SELECT count(*) FROM logs";
    assert_eq!(count(&store, all).await, 2 * HOURS);
    let hour = BASE + 1_234 * HOUR;
    let one = format!(
        "SELECT count(*) FROM logs WHERE time >= {} AND time < {}",
        ts(hour),
        ts(hour + HOUR)
    );
    assert_eq!(count(&store, &one).await, 2);
    store.close().await.expect("close");
    drop(store);
    let store = open(&config(dir.path())).await;
    assert_eq!(count(&store, all).await, 2 * HOURS);
    store.close().await.expect("close");
}

/// Scenario: the tables at a `file://` URL outside `path`.
/// Guarantees: the Parquet files go there, the WAL stays under `path`,
/// and queries and restarts work the same.
#[tokio::test]
async fn tables_at_a_file_url_elsewhere() {
    let dir = tempfile::tempdir().expect("tempdir");
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let url = url::Url::from_directory_path(elsewhere.path().join("lake")).expect("url");
    let mut cfg = config(&dir.path().join("state"));
    cfg.url = Some(url.to_string());
    let store = open(&cfg).await;
    store
        .append(logs_entry(log_batch(30, BASE, 1, "a")))
        .await
        .expect("append");
    store.flush().await.expect("flush");
    assert_eq!(parquet_files(&elsewhere.path().join("lake")).len(), 1);
    assert!(parquet_files(&dir.path().join("state")).is_empty());
    assert!(dir.path().join("state/wal").is_dir());
    store.close().await.expect("close");
    drop(store);
    let store = open(&cfg).await;
    assert_eq!(count(&store, "SELECT count(*) FROM logs").await, 30);
    store.close().await.expect("close");
}

/// Scenario: the tables' directory becomes unwritable (a file stands where
/// the `logs` directory must go), then is repaired.
/// Guarantees: the flush fails with an error naming the place, the rows
/// stay queryable from memory and in the WAL (a crash loses nothing), and
/// a later flush writes them.
#[tokio::test]
async fn failed_flushes_keep_rows_and_are_retried() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path());
    let store = open(&cfg).await;
    let blocker = dir.path().join("tables/logs");
    fs::write(&blocker, b"not a directory").expect("write");
    store
        .append(logs_entry(log_batch(25, BASE, 1, "a")))
        .await
        .expect("append");
    let err = store.flush().await.expect_err("flush must fail");
    assert!(err.to_string().contains("logs"), "{err}");
    assert_eq!(count(&store, "SELECT count(*) FROM logs").await, 25);
    // A crash now: the WAL still has the rows.
    drop(store);
    let store = open(&cfg).await;
    assert_eq!(count(&store, "SELECT count(*) FROM logs").await, 25);
    assert!(store.flush().await.is_err());
    fs::remove_file(&blocker).expect("remove");
    store.flush().await.expect("flush after repair");
    assert_eq!(parquet_files(&dir.path().join("tables")).len(), 1);
    assert_eq!(count(&store, "SELECT count(*) FROM logs").await, 25);
    store.close().await.expect("close");
}

/// Scenario: `[store] path` is a file.
/// Guarantees: opening fails with an error that names it and says what to
/// do; nothing panics.
#[tokio::test]
async fn a_file_in_place_of_the_directory_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("store");
    fs::write(&file, b"x").expect("write");
    let err = Store::open(&config(&file)).await.expect_err("must fail");
    let text = err.to_string();
    assert!(text.contains("store"), "{text}");
    assert!(text.contains("choose another"), "{text}");
}

/// Scenario: batches of every table, and a batch with a foreign schema.
/// Guarantees: all four tables take rows and answer SQL; a batch that does
/// not fit its table is refused before anything is written.
#[tokio::test]
async fn every_table_takes_rows_and_bad_batches_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&config(dir.path())).await;
    let mut rng = Rng::new(3);
    let spans = weir_core::convert::spans_to_batch(&spans(&mut rng, 2, 40, BASE, 1000))
        .expect("spans")
        .batch;
    let points = weir_core::convert::metrics_to_batch(&metrics(&mut rng, 2, 30, BASE))
        .expect("metrics")
        .batch;
    let n_points = points.num_rows() as i64;
    store
        .append(vec![
            (Signal::Spans, spans),
            (Signal::Metrics, points),
            (Signal::Alerts, alert(BASE, "HighErrorRate", "firing")),
        ])
        .await
        .expect("append");
    store.flush().await.expect("flush");
    assert_eq!(count(&store, "SELECT count(*) FROM spans").await, 40);
    assert_eq!(
        count(&store, "SELECT count(*) FROM metrics").await,
        n_points
    );
    assert_eq!(
        count(&store, "SELECT count(*) FROM alerts WHERE state = 'firing'").await,
        1
    );
    let bad = log_batch(3, BASE, 1, "a");
    let err = store
        .append(vec![(Signal::Spans, bad)])
        .await
        .expect_err("logs rows are not spans");
    assert!(matches!(err, StoreError::InvalidBatch { .. }), "{err}");
    assert_eq!(count(&store, "SELECT count(*) FROM spans").await, 40);
    store.close().await.expect("close");
}

/// Scenario: a short `flush_interval` and no explicit flush.
/// Guarantees: the background flusher writes Parquet by itself.
#[tokio::test]
async fn rows_are_flushed_by_age_in_the_background() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(dir.path());
    cfg.flush_interval = std::time::Duration::from_millis(100);
    let store = open(&cfg).await;
    store
        .append(logs_entry(log_batch(5, BASE, 1, "a")))
        .await
        .expect("append");
    let tables = dir.path().join("tables");
    for _ in 0..200 {
        if !parquet_files(&tables).is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(parquet_files(&tables).len(), 1);
    assert_eq!(count(&store, "SELECT count(*) FROM logs").await, 5);
    store.close().await.expect("close");
}

/// One alert event of the `alerts` table.
fn alert(time: i64, rule: &str, state: &str) -> RecordBatch {
    let schema = Signal::Alerts.schema();
    let ts = |v: Option<i64>| {
        Arc::new(
            TimestampNanosecondArray::from(vec![v]).with_timezone(weir_core::schema::TIME_ZONE),
        ) as Arc<dyn Array>
    };
    let dict = |v: &str| {
        let mut b = StringDictionaryBuilder::<Int32Type>::new();
        b.append_value(v);
        Arc::new(b.finish()) as Arc<dyn Array>
    };
    let map = |k: &str, v: &str| {
        let mut b = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
        b.keys().append_value(k);
        b.values().append_value(v);
        b.append(true).expect("map");
        Arc::new(b.finish()) as Arc<dyn Array>
    };
    RecordBatch::try_new(
        schema,
        vec![
            ts(Some(time)),
            dict(rule),
            dict(state),
            dict("transition"),
            map("service", "cart"),
            map("summary", "errors above 5%"),
            Arc::new(Float64Array::from(vec![0.07])),
            ts(Some(time)),
            ts(None),
            Arc::new(arrow::array::StringArray::from(vec!["fp1"])),
            Arc::new(arrow::array::StringArray::from(vec![None::<&str>])),
        ],
    )
    .expect("alert")
}

/// Scenario: one hour of 60 000 rows of six services in one file, queried
/// for one service.
/// Guarantees: the filter reaches the Parquet reader, which skips pages by
/// their statistics (the page index written with the file, the rows sorted
/// by service), and the answer stays exact.
#[tokio::test]
async fn pages_are_pruned_inside_a_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&config(dir.path())).await;
    for (i, service) in ["a", "b", "c", "d", "e", "f"].iter().enumerate() {
        store
            .append(logs_entry(log_batch(
                10_000,
                BASE + i as i64,
                300_000_000,
                service,
            )))
            .await
            .expect("append");
    }
    store.flush().await.expect("flush");
    let sql = "SELECT count(*) FROM logs WHERE service_name = 'c'";
    assert_eq!(count(&store, sql).await, 10_000);
    let analyzed = query(&store, &format!("EXPLAIN ANALYZE {sql}")).await;
    let text = arrow::util::pretty::pretty_format_batches(&analyzed)
        .expect("format")
        .to_string();
    // Three pages of 20 000 rows; only the one of service `c` is read.
    assert!(
        text.contains("page_index_pages_pruned=3 total → 1 matched"),
        "{text}"
    );
    store.close().await.expect("close");
}
