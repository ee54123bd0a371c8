//! Tests of the store that need its insides: injected failures, test
//! tunings, metrics, concurrency, damage on disk.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
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
            // 1970 is outside the 20 years kept: refused.
            let refused = store
                .append(vec![(Signal::Logs, logs_at(1_000_000_000, 1, 1, "old"))])
                .await
                .expect("append");
            assert!(refused[0].is_some());
            store.flush().await.expect("flush");
            // Twice that later, the hours of BASE have expired.
            store
                .inner()
                .enforce_retention(BASE + 2 * crate::admit::nanos(KEEP))
                .await
                .expect("retention");
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
        "weir_store_refused_rows_total{table=logs,reason=before_retention}",
        "weir_store_errors_total{stage=flush}",
    ] {
        assert!(seen.contains(&name.to_string()), "{name} not in {seen:?}");
    }
}

/// Scenario: one batch of logs with records 1 ns after the epoch, a day
/// ago, now, and at the last instant an `i64` holds (2262), appended with
/// the default `logs` range (7 days back, 1 hour ahead).
/// Guarantees: the epoch and 2262 records are refused, without overflow
/// or panic: the answer for the batch gives their count and the range, and
/// `weir_store_refused_rows_total` counts them by reason; the other
/// records of the same batch are stored and read back by SQL, before and
/// after a flush, which writes files for their hours only.
#[test]
fn rows_outside_the_time_range_are_refused_and_the_rest_stored() {
    let recorder = Names::default();
    let counters = recorder.1.clone();
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let now = crate::partition::now_ns();
    metrics::with_local_recorder(&recorder, || {
        rt.block_on(async {
            let mut cfg = config(dir.path());
            cfg.retention = RetentionConfig::default();
            let store = Store::open_tuned(&cfg, Tuning::for_config(&cfg))
                .await
                .expect("open");
            let batch = crate::testdata::logs_batch(
                &[Some(1), Some(now - 24 * HOUR_NS), Some(now), Some(i64::MAX)],
                &[None; 4],
                &["epoch", "yesterday", "now", "2262"],
            );
            let answer = store
                .append(vec![
                    (Signal::Logs, batch),
                    (Signal::Logs, logs_at(now, 1, 2, "fine")),
                ])
                .await
                .expect("append");
            assert_eq!(answer.len(), 2);
            assert_eq!(answer[1], None, "a batch that fits is stored whole");
            let refused = answer[0].clone().expect("refused rows");
            assert_eq!(refused.rows, 2);
            for part in ["2 `logs` records", "1 before it, 1 after it", " to "] {
                assert!(refused.reason.contains(part), "{part}: {}", refused.reason);
            }
            let sql = "SELECT count(*) FROM logs";
            let services = "SELECT count(DISTINCT service_name) FROM logs \
                WHERE service_name IN ('yesterday', 'now', 'fine')";
            assert_eq!(count(&store, sql).await, 4);
            assert_eq!(count(&store, services).await, 3);
            store.flush().await.expect("flush");
            assert_eq!(count(&store, sql).await, 4);
            assert_eq!(count(&store, services).await, 3);
            // Yesterday's hour, and the current one.
            let hours = store.inner().state().table(Signal::Logs).files.len();
            assert_eq!(hours, 2);
            store.close().await.expect("close");
        });
    });
    let counters = counters.lock().expect("lock");
    for reason in ["before_retention", "after_max_future"] {
        let name = format!("weir_store_refused_rows_total{{table=logs,reason={reason}}}");
        let value = counters.get(&name).map(|c| c.load(Ordering::Relaxed));
        assert_eq!(value, Some(1), "{name} in {:?}", counters.keys());
    }
}

/// Records the names (with labels) of the metrics registered, and the
/// values of the counters.
#[derive(Default)]
struct Names(Arc<Mutex<Vec<String>>>, Arc<Mutex<Counters>>);

/// Counter values by name with labels.
type Counters = HashMap<String, Arc<AtomicU64>>;

/// A metric's name with its labels: `name{label=value,...}`.
fn key_name(key: &Key) -> String {
    let labels: Vec<String> = key
        .labels()
        .map(|l| format!("{}={}", l.key(), l.value()))
        .collect();
    if labels.is_empty() {
        key.name().to_string()
    } else {
        format!("{}{{{}}}", key.name(), labels.join(","))
    }
}

impl Names {
    fn note(&self, key: &Key) {
        let name = key_name(key);
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
        let mut counters = self.1.lock().expect("lock");
        Counter::from_arc(counters.entry(key_name(key)).or_default().clone())
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

/// Keeps the value of every counter, by name with labels.
#[derive(Default)]
struct Counts(Mutex<HashMap<String, Arc<AtomicU64>>>);

impl Counts {
    /// The value of counter `name` (with its labels), 0 if never counted.
    fn get(&self, name: &str) -> u64 {
        let counters = self.0.lock().expect("lock");
        counters.get(name).map_or(0, |c| c.load(Ordering::Relaxed))
    }
}

impl Recorder for Counts {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let mut counters = self.0.lock().expect("lock");
        Counter::from_arc(counters.entry(key_name(key)).or_default().clone())
    }
    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }
    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

/// Opens the store in `dir` again after a crash: waits for the dropped
/// store's background tasks to let go of the WAL.
async fn reopen(dir: &std::path::Path) -> Arc<Store> {
    for _ in 0..200 {
        let cfg = config(dir);
        match Store::open_tuned(&cfg, Tuning::for_config(&cfg)).await {
            Ok(store) => return store,
            Err(StoreError::Wal(_)) => tokio::time::sleep(Duration::from_millis(20)).await,
            Err(e) => panic!("{e}"),
        }
    }
    panic!("the WAL stayed locked");
}

/// The Parquet files of the tables, in name order (flushes by LSN).
fn parquet_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = walk(&dir.join("tables"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .filter(|p| !p.starts_with(dir.join("tables").join("quarantine")))
        .collect();
    files.sort_by_key(|p| p.file_name().map(|n| n.to_os_string()));
    files
}

/// Scenario: five acknowledged batches in the WAL, the process stops
/// without a flush, and a bit flips in the middle of the third record.
/// Guarantees: the store opens with the two records before the damage
/// queryable; the damaged segment was copied aside byte for byte before it
/// was cut; `weir_store_wal_lost_records_total` says 3 records were lost
/// (the damaged one and the two after it) and
/// `weir_store_wal_damaged_segments_total` counts the segment.
#[test]
fn a_damaged_wal_segment_is_reported_and_counted() {
    let recorder = Counts::default();
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    metrics::with_local_recorder(&recorder, || {
        rt.block_on(async {
            let store = open(dir.path(), Duration::from_secs(300)).await;
            for i in 0..5 {
                store
                    .append(vec![(Signal::Logs, logs_at(BASE + i, 1, 3, "a"))])
                    .await
                    .expect("append");
            }
            drop(store);
            let wal = dir.path().join("wal");
            let mut segments: Vec<_> = walk(&wal)
                .into_iter()
                .filter(|p| p.extension().is_some_and(|e| e == "wal"))
                .collect();
            segments.sort();
            let segment = segments.first().expect("a segment").clone();
            let mut data = std::fs::read(&segment).expect("read");
            let (start, end) = record_spans(&data)[2];
            data[(start + end) / 2] ^= 0x01;
            std::fs::write(&segment, &data).expect("write");

            let store = reopen(dir.path()).await;
            assert_eq!(count(&store, "SELECT count(*) FROM logs").await, 6);
            let mut copy = segment.clone().into_os_string();
            copy.push(".corrupt");
            assert_eq!(std::fs::read(&copy).expect("the copy"), data);
            store.close().await.expect("close");
        });
    });
    assert_eq!(recorder.get("weir_store_wal_lost_records_total"), 3);
    assert_eq!(recorder.get("weir_store_wal_damaged_segments_total"), 1);
}

/// Where each record of the WAL segment `data` starts and ends.
fn record_spans(data: &[u8]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut at = 32;
    while at + 8 <= data.len() {
        let len = u32::from_le_bytes(data[at..at + 4].try_into().expect("4 bytes")) as usize;
        let end = at + 8 + len;
        let end = end + (8 - end % 8) % 8;
        spans.push((at, end));
        at = end;
    }
    spans
}

/// Scenario: a flush of rows in three hours whose WAL records are still in
/// the log (the WAL is cut separately, and the process stops first), more
/// rows only in the WAL, then the checkpoint deleted; later the same with
/// a checkpoint that does not pass its checksum.
/// Guarantees: reopening rebuilds the checkpoint from the Parquet files,
/// replays only the records they lack, and every row is counted exactly
/// once, then and after a flush and a clean restart.
#[tokio::test]
async fn a_lost_checkpoint_replays_only_what_parquet_lacks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let checkpoint = dir.path().join(crate::checkpoint::FILE_NAME);
    let mut store = open(dir.path(), Duration::from_secs(300)).await;
    let mut expected = 0;
    for (round, damage) in [(0, false), (1, true)] {
        let at = BASE + round * 4 * HOUR_NS;
        store
            .append(vec![(Signal::Logs, logs_at(at, HOUR_NS / 2, 6, "a"))])
            .await
            .expect("append");
        assert!(
            store
                .inner()
                .flush_table(Signal::Logs)
                .await
                .expect("flush")
        );
        store
            .append(vec![(Signal::Logs, logs_at(at, 1, 4, "b"))])
            .await
            .expect("append");
        expected += 10;
        assert_eq!(count(&store, "SELECT count(*) FROM logs").await, expected);
        drop(store);
        if damage {
            let text = std::fs::read_to_string(&checkpoint).expect("read");
            std::fs::write(&checkpoint, text.replace("logs ", "logs 1")).expect("damage");
        } else {
            std::fs::remove_file(&checkpoint).expect("delete the checkpoint");
        }
        let reopened = reopen(dir.path()).await;
        assert_eq!(
            count(&reopened, "SELECT count(*) FROM logs").await,
            expected,
            "round {round}: every row once after the checkpoint was lost"
        );
        reopened.flush().await.expect("flush");
        assert_eq!(
            count(&reopened, "SELECT count(*) FROM logs").await,
            expected
        );
        reopened.close().await.expect("close");
        drop(reopened);
        store = reopen(dir.path()).await;
        assert_eq!(count(&store, "SELECT count(*) FROM logs").await, expected);
    }
    store.close().await.expect("close");
}

/// Scenario: a flush of rows in three hours stopped after writing two of
/// its three files (the process died), and the checkpoint is lost too.
/// Guarantees: the rebuilt checkpoint does not count that flush: its two
/// files are deleted and its rows replayed from the WAL, each once.
#[tokio::test]
async fn a_lost_checkpoint_undoes_a_flush_that_did_not_finish() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path(), Duration::from_secs(300)).await;
    store
        .append(vec![(Signal::Logs, logs_at(BASE, 1, 5, "a"))])
        .await
        .expect("append");
    store.flush().await.expect("flush");
    store
        .append(vec![(Signal::Logs, logs_at(BASE, HOUR_NS / 2, 6, "b"))])
        .await
        .expect("append");
    assert!(
        store
            .inner()
            .flush_table(Signal::Logs)
            .await
            .expect("flush")
    );
    drop(store);
    let files = parquet_files(dir.path());
    assert_eq!(files.len(), 4, "{files:?}");
    // The flush's third file never reached the disk.
    std::fs::remove_file(&files[3]).expect("remove");
    std::fs::remove_file(dir.path().join(crate::checkpoint::FILE_NAME)).expect("remove");
    let store = reopen(dir.path()).await;
    assert_eq!(count(&store, "SELECT count(*) FROM logs").await, 11);
    assert_eq!(
        parquet_files(dir.path()).len(),
        1,
        "the unfinished flush's files are gone"
    );
    store.flush().await.expect("flush");
    assert_eq!(count(&store, "SELECT count(*) FROM logs").await, 11);
    store.close().await.expect("close");
}

/// Overwrites the middle of the `body` column's data in the Parquet file at
/// `path`: its data pages, not the footer. Returns the damaged file.
fn damage_data_page(path: &std::path::Path) -> Vec<u8> {
    let mut data = std::fs::read(path).expect("read");
    let reader = parquet::file::serialized_reader::SerializedFileReader::new(bytes::Bytes::from(
        data.clone(),
    ))
    .expect("a valid footer");
    let md = parquet::file::reader::FileReader::metadata(&reader);
    let body = md
        .row_group(0)
        .columns()
        .iter()
        .find(|c| c.column_path().string() == "body")
        .expect("a body column");
    let (start, len) = body.byte_range();
    let (start, len) = (start as usize, len as usize);
    assert!(len > 256, "a data page worth damaging: {len} bytes");
    data[start + len / 4..start + 3 * len / 4].fill(0xa5);
    std::fs::write(path, &data).expect("write");
    data
}

/// Runs `sql` and counts the rows it returns, or says why it failed.
async fn rows(store: &Store, sql: &str) -> Result<usize, String> {
    let ctx = SessionContext::new();
    store.register(&ctx).expect("register");
    let batches = ctx
        .sql(sql)
        .await
        .map_err(|e| e.to_string())?
        .collect()
        .await
        .map_err(|e| e.to_string())?;
    Ok(batches.iter().map(|b| b.num_rows()).sum())
}

/// Where the quarantine keeps the table file at `file`.
fn quarantined(dir: &std::path::Path, file: &std::path::Path) -> std::path::PathBuf {
    let tables = dir.join("tables");
    let relative = file.strip_prefix(&tables).expect("a table file");
    tables.join(crate::quarantine::DIR).join(relative)
}

/// Scenario: two flushed files of `logs`; the data pages of the first are
/// overwritten in the middle (the footer intact); queries that read every
/// column, then a restart.
/// Guarantees: the first query fails with an error naming the file, saying
/// it is damaged and where it went; the file is in
/// `tables/quarantine/<same path>`, byte for byte, and out of the table;
/// every later query succeeds with the other file's rows, also after a
/// restart; `weir_store_quarantined_files_total{table=logs}` counts it.
#[test]
fn a_damaged_parquet_file_is_quarantined_and_queries_go_on() {
    let recorder = Counts::default();
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    metrics::with_local_recorder(&recorder, || {
        rt.block_on(async {
            let store = open(dir.path(), Duration::from_secs(300)).await;
            for (i, n) in [(0, 3000), (1, 10)] {
                store
                    .append(vec![(Signal::Logs, logs_at(BASE + i, 1000, n, "a"))])
                    .await
                    .expect("append");
                store.flush().await.expect("flush");
            }
            let files = parquet_files(dir.path());
            assert_eq!(files.len(), 2, "{files:?}");
            let damaged = damage_data_page(&files[0]);
            let name = files[0].file_name().expect("name").to_string_lossy();

            let err = rows(&store, "SELECT * FROM logs")
                .await
                .expect_err("the damaged file fails the query that meets it");
            assert!(err.contains("damaged"), "{err}");
            assert!(err.contains(name.as_ref()), "{err}");
            let aside = quarantined(dir.path(), &files[0]);
            assert!(err.contains(&aside.display().to_string()), "{err}");
            assert_eq!(std::fs::read(&aside).expect("quarantined"), damaged);
            assert!(!files[0].exists());
            assert_eq!(store.inner().state().table(Signal::Logs).file_count(), 1);

            assert_eq!(rows(&store, "SELECT * FROM logs").await, Ok(10));
            assert_eq!(rows(&store, "SELECT body FROM logs").await, Ok(10));
            store.close().await.expect("close");
            drop(store);
            let store = reopen(dir.path()).await;
            assert_eq!(rows(&store, "SELECT * FROM logs").await, Ok(10));
            assert!(aside.exists());
            store.close().await.expect("close");
        });
    });
    assert_eq!(
        recorder.get("weir_store_quarantined_files_total{table=logs}"),
        1
    );
}

/// Scenario: three small files in one past hour, the data pages of the
/// first overwritten; compaction runs twice.
/// Guarantees: the first round fails with [`StoreError::Damaged`] naming
/// the file, which goes to quarantine; the second round merges the two
/// others into one file; queries count their rows once.
#[tokio::test]
async fn compaction_quarantines_a_damaged_file_and_goes_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path(), Duration::ZERO).await;
    for (i, n) in [(0, 3000), (1, 10), (2, 20)] {
        store
            .append(vec![(Signal::Logs, logs_at(BASE + i, 1000, n, "a"))])
            .await
            .expect("append");
        store.flush().await.expect("flush");
    }
    let files = parquet_files(dir.path());
    assert_eq!(files.len(), 3, "{files:?}");
    damage_data_page(&files[0]);
    let err = store.compact_now().await.expect_err("the damaged file");
    assert!(matches!(err, StoreError::Damaged { .. }), "{err}");
    let name = files[0].file_name().expect("name").to_string_lossy();
    assert!(err.to_string().contains(name.as_ref()), "{err}");
    assert!(quarantined(dir.path(), &files[0]).exists());
    store.compact_now().await.expect("the next round");
    assert_eq!(store.inner().state().table(Signal::Logs).file_count(), 1);
    assert_eq!(rows(&store, "SELECT * FROM logs").await, Ok(30));
    store.close().await.expect("close");
}
