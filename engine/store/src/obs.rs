//! The store's metrics (`weir_store_*`), declared once, and the functions
//! the store records them with.

use std::time::Duration;

use metrics::Unit;
use weir_core::Signal;
use weir_core::metrics::{CounterDef, GaugeDef, HistogramDef};

const WAL_BYTES: GaugeDef<0> = GaugeDef {
    name: "weir_store_wal_bytes",
    help: "Bytes of the write-ahead log on disk.",
    unit: Some(Unit::Bytes),
    labels: [],
};

const WAL_WRITTEN_BYTES: CounterDef<0> = CounterDef {
    name: "weir_store_wal_written_bytes_total",
    help: "Bytes written to the write-ahead log.",
    unit: Some(Unit::Bytes),
    labels: [],
};

const WAL_WRITTEN_RECORDS: CounterDef<0> = CounterDef {
    name: "weir_store_wal_written_records_total",
    help: "Records written to the write-ahead log (one per batch appended).",
    unit: Some(Unit::Count),
    labels: [],
};

const WAL_FSYNC_SECONDS: HistogramDef<0> = HistogramDef {
    name: "weir_store_wal_fsync_seconds",
    help: "How long one fsync of the write-ahead log took.",
    unit: Some(Unit::Seconds),
    labels: [],
};

const WAL_DAMAGED_SEGMENTS: CounterDef<0> = CounterDef {
    name: "weir_store_wal_damaged_segments_total",
    help: "Segments of the write-ahead log found damaged when the store opened: cut at the damage, or set aside; each is copied aside as <segment>.corrupt first.",
    unit: Some(Unit::Count),
    labels: [],
};

const WAL_LOST_RECORDS: CounterDef<0> = CounterDef {
    name: "weir_store_wal_lost_records_total",
    help: "Records (acknowledged batches) of the write-ahead log lost to damage found when the store opened, as far as can be told.",
    unit: Some(Unit::Count),
    labels: [],
};

const QUARANTINED_FILES: CounterDef<1> = CounterDef {
    name: "weir_store_quarantined_files_total",
    help: "Parquet files of a table found damaged when read, moved to the quarantine directory and no longer queried; their rows are lost.",
    unit: Some(Unit::Count),
    labels: ["table"],
};

const MEMORY_BYTES: GaugeDef<1> = GaugeDef {
    name: "weir_store_memory_bytes",
    help: "Bytes of a table's rows waiting in memory for the next flush.",
    unit: Some(Unit::Bytes),
    labels: ["table"],
};

const FILES: GaugeDef<1> = GaugeDef {
    name: "weir_store_files",
    help: "Parquet files of a table.",
    unit: Some(Unit::Count),
    labels: ["table"],
};

const FLUSHES: CounterDef<1> = CounterDef {
    name: "weir_store_flushes_total",
    help: "Flushes of a table's rows to Parquet that succeeded.",
    unit: Some(Unit::Count),
    labels: ["table"],
};

const FLUSH_SECONDS: HistogramDef<0> = HistogramDef {
    name: "weir_store_flush_seconds",
    help: "How long one successful flush of a table took.",
    unit: Some(Unit::Seconds),
    labels: [],
};

const COMPACTIONS: CounterDef<0> = CounterDef {
    name: "weir_store_compactions_total",
    help: "Compactions that merged small files.",
    unit: Some(Unit::Count),
    labels: [],
};

const RETENTION_DELETED_PARTITIONS: CounterDef<1> = CounterDef {
    name: "weir_store_retention_deleted_partitions_total",
    help: "Hourly partitions of a table deleted by retention.",
    unit: Some(Unit::Count),
    labels: ["table"],
};

const REFUSED_ROWS: CounterDef<2> = CounterDef {
    name: "weir_store_refused_rows_total",
    help: "Rows of a table the store refused when they were appended because their time is outside the range the table accepts, by reason (before_retention: older than now minus [store.retention]; after_max_future: later than now plus [store.max_future]); the senders were told (OTLP partial_success).",
    unit: Some(Unit::Count),
    labels: ["table", "reason"],
};

const ERRORS: CounterDef<1> = CounterDef {
    name: "weir_store_errors_total",
    help: "Failures of the store, by stage (wal, backlog, flush, checkpoint, compaction, delete, open).",
    unit: Some(Unit::Count),
    labels: ["stage"],
};

/// Gives the recorder the help text of the store's metrics.
pub fn describe() {
    WAL_BYTES.describe();
    WAL_WRITTEN_BYTES.describe();
    WAL_WRITTEN_RECORDS.describe();
    WAL_FSYNC_SECONDS.describe();
    WAL_DAMAGED_SEGMENTS.describe();
    WAL_LOST_RECORDS.describe();
    QUARANTINED_FILES.describe();
    MEMORY_BYTES.describe();
    FILES.describe();
    FLUSHES.describe();
    FLUSH_SECONDS.describe();
    COMPACTIONS.describe();
    RETENTION_DELETED_PARTITIONS.describe();
    REFUSED_ROWS.describe();
    ERRORS.describe();
}

/// Bytes of the write-ahead log on disk.
pub(crate) fn wal_bytes(bytes: u64) {
    WAL_BYTES.with([]).set(bytes as f64);
}

/// A group written to the WAL, or an fsync of it.
pub(crate) fn wal_event(event: weir_wal::WalEvent) {
    match event {
        weir_wal::WalEvent::Written { bytes, records } => {
            WAL_WRITTEN_BYTES.with([]).increment(bytes);
            WAL_WRITTEN_RECORDS.with([]).increment(records);
        }
        weir_wal::WalEvent::Fsynced(took) => {
            WAL_FSYNC_SECONDS.with([]).record(took.as_secs_f64());
        }
    }
}

/// Opening the WAL found `segments` damaged segments, which lost
/// `records` records.
pub(crate) fn wal_damage(segments: usize, records: u64) {
    WAL_DAMAGED_SEGMENTS.with([]).increment(segments as u64);
    WAL_LOST_RECORDS.with([]).increment(records);
}

/// A damaged Parquet file of a table was quarantined.
pub(crate) fn quarantined(table: Signal) {
    QUARANTINED_FILES.with([table.as_str().into()]).increment(1);
}

/// Bytes of a table's rows waiting in memory.
pub(crate) fn memory_bytes(table: Signal, bytes: usize) {
    MEMORY_BYTES.with([table.as_str().into()]).set(bytes as f64);
}

/// Parquet files of a table.
pub(crate) fn files(table: Signal, count: usize) {
    FILES.with([table.as_str().into()]).set(count as f64);
}

/// A flush of a table succeeded in `took`.
pub(crate) fn flushed(table: Signal, took: Duration) {
    FLUSHES.with([table.as_str().into()]).increment(1);
    FLUSH_SECONDS.with([]).record(took.as_secs_f64());
}

/// A compaction merged files.
pub(crate) fn compacted() {
    COMPACTIONS.with([]).increment(1);
}

/// Retention deleted `n` hourly partitions of a table.
pub(crate) fn retention_deleted(table: Signal, n: usize) {
    RETENTION_DELETED_PARTITIONS
        .with([table.as_str().into()])
        .increment(n as u64);
}

/// `before` rows of a table older than its retention, and `after` later
/// than its `max_future`, were refused.
pub(crate) fn refused(table: Signal, before: u64, after: u64) {
    for (reason, n) in [("before_retention", before), ("after_max_future", after)] {
        if n > 0 {
            REFUSED_ROWS
                .with([table.as_str().into(), reason.into()])
                .increment(n);
        }
    }
}

/// Something failed at `stage`.
pub(crate) fn error(stage: &'static str) {
    ERRORS.with([stage.into()]).increment(1);
}
