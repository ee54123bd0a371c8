//! The store's metrics, through the `metrics` facade.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `weir_store_wal_bytes` | gauge | |
//! | `weir_store_memory_bytes` | gauge | `table` |
//! | `weir_store_files` | gauge | `table` |
//! | `weir_store_flushes_total` | counter | `table` |
//! | `weir_store_flush_seconds` | histogram | |
//! | `weir_store_compactions_total` | counter | |
//! | `weir_store_retention_deleted_partitions_total` | counter | `table` |
//! | `weir_store_errors_total` | counter | `stage`: `wal`, `flush`, `checkpoint`, `compaction`, `retention`, `delete`, `open` |

use std::time::Duration;

use weir_core::Signal;

/// Bytes of the write-ahead log on disk.
pub(crate) fn wal_bytes(bytes: u64) {
    metrics::gauge!("weir_store_wal_bytes").set(bytes as f64);
}

/// Bytes of a table's rows waiting in memory.
pub(crate) fn memory_bytes(table: Signal, bytes: usize) {
    metrics::gauge!("weir_store_memory_bytes", "table" => table.as_str()).set(bytes as f64);
}

/// Parquet files of a table.
pub(crate) fn files(table: Signal, count: usize) {
    metrics::gauge!("weir_store_files", "table" => table.as_str()).set(count as f64);
}

/// A flush of a table succeeded in `took`.
pub(crate) fn flushed(table: Signal, took: Duration) {
    metrics::counter!("weir_store_flushes_total", "table" => table.as_str()).increment(1);
    metrics::histogram!("weir_store_flush_seconds").record(took.as_secs_f64());
}

/// A compaction merged files.
pub(crate) fn compacted() {
    metrics::counter!("weir_store_compactions_total").increment(1);
}

/// Retention deleted `n` hourly partitions of a table.
pub(crate) fn retention_deleted(table: Signal, n: usize) {
    metrics::counter!("weir_store_retention_deleted_partitions_total", "table" => table.as_str())
        .increment(n as u64);
}

/// Something failed at `stage`.
pub(crate) fn error(stage: &'static str) {
    metrics::counter!("weir_store_errors_total", "stage" => stage).increment(1);
}
