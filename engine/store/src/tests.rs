//! Tests of the store that need its insides: injected failures, test
//! tunings, metrics, concurrency.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow::array::AsArray;
use arrow::datatypes::Int64Type;
use datafusion::prelude::SessionContext;
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use weir_config::{RetentionConfig, StoreConfig};
use weir_core::Signal;

/// A retention that keeps the tests' data from 2024 (and drops 1970's).
pub const KEEP: Duration = Duration::from_secs(20 * 365 * 24 * 3600);

use crate::partition::HOUR_NS;
use crate::testdata::logs_at;
use crate::tuning::Tuning;
use crate::{Store, StoreError};

/// 2024-03-01T10:00:00Z.
const BASE: i64 = 1_709_287_200_000_000_000;

fn config(dir: &std::path::Path) -> StoreConfig {
    StoreConfig {
        path: dir.to_path_buf(),
        flush_interval: Duration::from_secs(3600),
        compaction_interval: Duration::from_secs(3600),
        retention: RetentionConfig {
            logs: KEEP,
            spans: KEEP,
            metrics: KEEP,
            alerts: KEEP,
            ..RetentionConfig::default()
        },
        ..StoreConfig::default()
    }
}

async fn open(dir: &std::path::Path, grace: Duration) -> Arc<Store> {
    let cfg = config(dir);
    let mut tuning = Tuning::for_config(&cfg);
    tuning.deletion_grace = grace;
    Store::open_tuned(&cfg, tuning).await.expect("open")
}

async fn count(store: &Store, sql: &str) -> i64 {
    let ctx = SessionContext::new();
    store.register(&ctx).expect("register");
    let batches = ctx
        .sql(sql)
        .await
        .expect("plan")
        .collect()
        .await
        .expect("run");
    batches[0].column(0).as_primitive::<Int64Type>().value(0)
}

/// Guarantees: when the WAL write fails (disk full), `append` returns an
/// error, nothing of the call becomes visible, and later appends work.
#[tokio::test]
async fn a_failed_wal_append_acknowledges_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path(), Duration::from_secs(300)).await;
    store
        .append(vec![(Signal::Logs, logs_at(BASE, 1, 3, "a"))])
        .await
        .expect("append");
    store.inner().faults.wal.store(true, Ordering::Relaxed);
    let err = store
        .append(vec![
            (Signal::Logs, logs_at(BASE, 1, 5, "b")),
            (Signal::Logs, logs_at(BASE, 1, 5, "c")),
        ])
        .await
        .expect_err("disk full");
    assert!(err.to_string().contains("free space"), "{err}");
    assert_eq!(count(&store, "SELECT count(*) FROM logs").await, 3);
    store.inner().faults.wal.store(false, Ordering::Relaxed);
    store
        .append(vec![(Signal::Logs, logs_at(BASE, 1, 5, "d"))])
        .await
        .expect("append");
    assert_eq!(count(&store, "SELECT count(*) FROM logs").await, 8);
    store.close().await.expect("close");
}

/// Guarantees: a failing flush keeps the rows in memory (queryable) and in
/// the WAL (the WAL is not cut), counts an error, and the retry writes the
/// same files (no leftovers, no duplicates), after which the WAL is cut.
#[tokio::test]
async fn a_failed_flush_keeps_rows_and_retries_identically() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path(), Duration::from_secs(300)).await;
    store
        .append(vec![(Signal::Logs, logs_at(BASE, HOUR_NS / 2, 4, "a"))])
        .await
        .expect("append");
    let wal_before = store.inner().wal_disk_bytes();
    store.inner().faults.flush.store(true, Ordering::Relaxed);
    assert!(store.flush().await.is_err());
    assert_eq!(count(&store, "SELECT count(*) FROM logs").await, 4);
    assert_eq!(store.inner().wal_disk_bytes(), wal_before);
    // More rows arrive meanwhile: the retry still writes the first flush.
    store
        .append(vec![(Signal::Logs, logs_at(BASE, 1, 2, "b"))])
        .await
        .expect("append");
    store.inner().faults.flush.store(false, Ordering::Relaxed);
    store.flush().await.expect("flush");
    assert_eq!(count(&store, "SELECT count(*) FROM logs").await, 6);
    assert_eq!(store.inner().state().table(Signal::Logs).mem_bytes, 0);
    store.close().await.expect("close");
    let store = open(dir.path(), Duration::from_secs(300)).await;
    assert_eq!(count(&store, "SELECT count(*) FROM logs").await, 6);
    store.close().await.expect("close");
}

/// Guarantees: while flushes move rows from memory to Parquet, every query
/// counts each acknowledged row exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_are_seen_once_while_they_move() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path(), Duration::from_secs(300)).await;
    let mut expected = 0i64;
    for round in 0..25 {
        store
            .append(vec![(Signal::Logs, logs_at(BASE + round, 1000, 40, "a"))])
            .await
            .expect("append");
        expected += 40;
        let flusher = {
            let store = store.clone();
            tokio::spawn(async move { store.flush().await })
        };
        for _ in 0..3 {
            assert_eq!(count(&store, "SELECT count(*) FROM logs").await, expected);
        }
        flusher.await.expect("join").expect("flush");
        assert_eq!(count(&store, "SELECT count(*) FROM logs").await, expected);
    }
    store.close().await.expect("close");
}

/// Guarantees: files replaced by compaction are deleted once the grace
/// period is over, and not before.
#[tokio::test]
async fn merged_files_are_deleted_after_the_grace_period() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path(), Duration::ZERO).await;
    for i in 0..3 {
        store
            .append(vec![(Signal::Logs, logs_at(BASE + i, 1, 10, "a"))])
            .await
            .expect("append");
        store.flush().await.expect("flush");
    }
    store.compact_now().await.expect("compact");
    assert_eq!(store.inner().graveyard_len(), 3);
    store.inner().reap_graveyard(false).await;
    assert_eq!(store.inner().graveyard_len(), 0);
    let files = walk(&dir.path().join("tables"));
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(count(&store, "SELECT count(*) FROM logs").await, 30);
    store.close().await.expect("close");

    let store = open(dir.path(), Duration::from_secs(300)).await;
    for i in 0..2 {
        store
            .append(vec![(Signal::Logs, logs_at(BASE + i, 1, 10, "b"))])
            .await
            .expect("append");
        store.flush().await.expect("flush");
    }
    store.compact_now().await.expect("compact");
    store.inner().reap_graveyard(false).await;
    assert_eq!(
        store.inner().graveyard_len(),
        3,
        "still in their grace period"
    );
    store.close().await.expect("close");
}

/// Guarantees: a table whose rows cannot be flushed refuses appends once
/// its memory passes the limit, with an error saying why, instead of
/// growing without bound.
#[tokio::test]
async fn memory_is_bounded_when_flushes_fail() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path());
    let mut tuning = Tuning::for_config(&cfg);
    tuning.backlog_floor = 1;
    tuning.backlog_factor = 0;
    let store = Store::open_tuned(&cfg, tuning).await.expect("open");
    store
        .append(vec![(Signal::Logs, logs_at(BASE, 1, 10, "a"))])
        .await
        .expect("append");
    let err = store
        .append(vec![(Signal::Logs, logs_at(BASE, 1, 10, "a"))])
        .await
        .expect_err("backlog");
    assert!(matches!(err, StoreError::Backlog { .. }), "{err}");
    // Other tables are not held back.
    let spans = arrow::record_batch::RecordBatch::new_empty(Signal::Spans.schema());
    store
        .append(vec![(Signal::Spans, spans)])
        .await
        .expect("append");
    store.flush().await.expect("flush");
    store
        .append(vec![(Signal::Logs, logs_at(BASE, 1, 10, "a"))])
        .await
        .expect("append after the flush");
    store.close().await.expect("close");
}

/// Guarantees: the store reports its metrics under the documented names.
#[test]
fn metrics_are_reported() {
    let recorder = Names::default();
    let seen = recorder.0.clone();
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    metrics::with_local_recorder(&recorder, || {
        rt.block_on(async {
            let store = open(dir.path(), Duration::ZERO).await;
            for i in 0..2 {
                store
                    .append(vec![(Signal::Logs, logs_at(BASE + i, 1, 10, "a"))])
                    .await
                    .expect("append");
                store.flush().await.expect("flush");
            }
            store.compact_now().await.expect("compact");
            store
                .append(vec![(Signal::Logs, logs_at(1_000_000_000, 1, 1, "old"))])
                .await
                .expect("append");
            store.flush().await.expect("flush");
            store.enforce_retention_now().await.expect("retention");
            store.inner().faults.flush.store(true, Ordering::Relaxed);
            store
                .append(vec![(Signal::Logs, logs_at(BASE, 1, 1, "a"))])
                .await
                .expect("append");
            assert!(store.flush().await.is_err());
            store.inner().faults.flush.store(false, Ordering::Relaxed);
            store.close().await.expect("close");
        });
    });
    let seen = seen.lock().expect("lock").clone();
    for name in [
        "weir_store_wal_bytes",
        "weir_store_memory_bytes{table=logs}",
        "weir_store_files{table=logs}",
        "weir_store_flushes_total{table=logs}",
        "weir_store_flush_seconds",
        "weir_store_compactions_total",
        "weir_store_retention_deleted_partitions_total{table=logs}",
        "weir_store_errors_total{stage=flush}",
    ] {
        assert!(seen.contains(&name.to_string()), "{name} not in {seen:?}");
    }
}

/// Records the names (with labels) of the metrics registered.
#[derive(Default)]
struct Names(Arc<Mutex<Vec<String>>>);

impl Names {
    fn note(&self, key: &Key) {
        let labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        let name = if labels.is_empty() {
            key.name().to_string()
        } else {
            format!("{}{{{}}}", key.name(), labels.join(","))
        };
        let mut seen = self.0.lock().expect("lock");
        if !seen.contains(&name) {
            seen.push(name);
        }
    }
}

impl Recorder for Names {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        self.note(key);
        Counter::noop()
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        self.note(key);
        Gauge::noop()
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        self.note(key);
        Histogram::noop()
    }
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = entry.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Guarantees: with the tables in an object store that is not local disk
/// (the S3 path: whole-object puts, a multipart writer for compaction,
/// listing and footers read over the store), rows flush, compact, survive
/// a restart and are queried exactly once.
#[tokio::test]
async fn tables_in_a_remote_object_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path());
    let location = crate::location::Location::in_memory();
    let tuned = || {
        let mut t = Tuning::for_config(&cfg);
        t.location = Some(location.clone());
        t.deletion_grace = Duration::ZERO;
        t
    };
    let store = Store::open_tuned(&cfg, tuned()).await.expect("open");
    for i in 0..3 {
        store
            .append(vec![(Signal::Logs, logs_at(BASE + i, 7, 10, "a"))])
            .await
            .expect("append");
        store.flush().await.expect("flush");
    }
    store
        .append(vec![(Signal::Logs, logs_at(BASE + HOUR_NS, 7, 4, "b"))])
        .await
        .expect("append");
    assert_eq!(count(&store, "SELECT count(*) FROM logs").await, 34);
    store.compact_now().await.expect("compact");
    assert_eq!(store.inner().state().table(Signal::Logs).file_count(), 1);
    assert_eq!(count(&store, "SELECT count(*) FROM logs").await, 34);
    store.close().await.expect("close");
    let listed = location.list(Signal::Logs).await.expect("list");
    assert_eq!(listed.len(), 2, "the merged file and the last flush's");
    let store = Store::open_tuned(&cfg, tuned()).await.expect("reopen");
    assert_eq!(count(&store, "SELECT count(*) FROM logs").await, 34);
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM logs WHERE time >= '2024-03-01T11:00:00Z'"
        )
        .await,
        4
    );
    store.close().await.expect("close");
}

/// Guarantees: a flush that wrote its files but stopped before its
/// checkpoint (a crash between the two) is undone at the next start: its
/// files are deleted, its rows come back once, from the WAL.
#[tokio::test]
async fn a_flush_interrupted_before_its_checkpoint_is_undone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path(), Duration::from_secs(300)).await;
    store
        .append(vec![(Signal::Logs, logs_at(BASE, 1, 5, "a"))])
        .await
        .expect("append");
    store.flush().await.expect("flush");
    store
        .append(vec![(
            Signal::Logs,
            logs_at(BASE + 2 * HOUR_NS, HOUR_NS / 4, 8, "b"),
        )])
        .await
        .expect("append");
    store
        .inner()
        .faults
        .checkpoint
        .store(true, Ordering::Relaxed);
    assert!(store.flush().await.is_err());
    // Two hours were written, neither made it into the checkpoint.
    assert_eq!(walk(&dir.path().join("tables")).len(), 3);
    drop(store);
    let store = loop {
        let cfg = config(dir.path());
        match Store::open_tuned(&cfg, Tuning::for_config(&cfg)).await {
            Ok(store) => break store,
            Err(StoreError::Wal(_)) => tokio::time::sleep(Duration::from_millis(20)).await,
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(walk(&dir.path().join("tables")).len(), 1);
    assert_eq!(count(&store, "SELECT count(*) FROM logs").await, 13);
    store.flush().await.expect("flush");
    assert_eq!(count(&store, "SELECT count(*) FROM logs").await, 13);
    store.close().await.expect("close");
}
