//! What the store holds, under one lock: per table, the rows still only in
//! memory and the index of its Parquet files.
//!
//! Every change readers can see happens under the write lock in one step:
//! a flush removes the rows it wrote from memory *and* adds its files; a
//! compaction swaps the files it merged for the merged one; retention
//! removes whole hours. A query takes its snapshot under the read lock, so
//! it sees every row exactly once, before or after any such step.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use arrow::record_batch::RecordBatch;
use weir_core::Signal;

use crate::encode::time_range;
use crate::layout::FileEntry;
use crate::partition::{hour_end, hour_start};
use crate::tables::index;
use crate::wal::Lsn;

/// Rows of one WAL record, in memory until a flush writes them.
#[derive(Debug)]
pub(crate) struct MemBatch {
    /// The WAL record's LSN.
    pub lsn: Lsn,
    /// The rows, with the table's schema.
    pub batch: RecordBatch,
    /// Their memory size.
    pub bytes: usize,
    /// The smallest and largest non-null event time.
    pub time: Option<(i64, i64)>,
    /// When they arrived (nanoseconds since the epoch): the hour of rows
    /// without any time.
    pub arrival_ns: i64,
    /// When they arrived, for the flush age.
    pub arrived: Instant,
}

/// One table's rows and files.
#[derive(Debug, Default)]
pub(crate) struct TableState {
    /// Rows not yet in Parquet, by increasing LSN.
    pub mem: Vec<Arc<MemBatch>>,
    /// Their total memory size.
    pub mem_bytes: usize,
    /// The Parquet files, by hour.
    pub files: BTreeMap<i64, Vec<Arc<FileEntry>>>,
    /// Consecutive failed flushes.
    pub failures: u32,
    /// No automatic flush before this instant (backoff after a failure).
    pub retry_at: Option<Instant>,
}

impl TableState {
    /// How many Parquet files the table has.
    pub fn file_count(&self) -> usize {
        self.files.values().map(Vec::len).sum()
    }
}

/// An inclusive range of event times a query asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeFilter {
    /// The first nanosecond.
    pub lo: i64,
    /// The last nanosecond.
    pub hi: i64,
}

impl TimeFilter {
    /// Whether rows whose non-null times span `range` may match (`None`:
    /// every time is null, and a null time matches no range).
    pub fn admits(&self, range: Option<(i64, i64)>) -> bool {
        range.is_some_and(|(lo, hi)| hi >= self.lo && lo <= self.hi)
    }

    /// Whether hour `hour` may hold matching rows.
    pub fn admits_hour(&self, hour: i64) -> bool {
        hour_end(hour) >= self.lo && hour_start(hour) <= self.hi
    }
}

/// What one query reads.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    /// Rows in memory.
    pub mem: Vec<RecordBatch>,
    /// Parquet files.
    pub files: Vec<Arc<FileEntry>>,
}

/// Everything, per table.
#[derive(Debug, Default)]
pub(crate) struct State {
    tables: [TableState; 4],
    /// The last LSN inserted into memory.
    pub last_lsn: Lsn,
    /// No more appends.
    pub closed: bool,
}

impl State {
    /// One table.
    pub fn table(&self, table: Signal) -> &TableState {
        &self.tables[index(table)]
    }

    /// One table, to change.
    pub fn table_mut(&mut self, table: Signal) -> &mut TableState {
        &mut self.tables[index(table)]
    }

    /// Adds the rows of WAL record `lsn` to memory.
    pub fn insert(
        &mut self,
        table: Signal,
        lsn: Lsn,
        batch: RecordBatch,
        arrival_ns: i64,
        arrived: Instant,
    ) {
        self.last_lsn = self.last_lsn.max(lsn);
        if batch.num_rows() == 0 {
            return;
        }
        let bytes = weir_wal::batch_bytes(&batch) as usize;
        let time = time_range(table, &batch);
        let t = self.table_mut(table);
        t.mem_bytes += bytes;
        t.mem.push(Arc::new(MemBatch {
            lsn,
            batch,
            bytes,
            time,
            arrival_ns,
            arrived,
        }));
    }

    /// What a query of `table` reads: memory rows and files that may hold
    /// rows in `filter` (all of them without one).
    pub fn snapshot(&self, table: Signal, filter: Option<TimeFilter>) -> Snapshot {
        let t = self.table(table);
        let mem = t
            .mem
            .iter()
            .filter(|m| filter.is_none_or(|f| f.admits(m.time)))
            .map(|m| m.batch.clone())
            .collect();
        let files = t
            .files
            .iter()
            .filter(|(hour, _)| filter.is_none_or(|f| f.admits_hour(**hour)))
            .flat_map(|(_, files)| files.iter())
            .filter(|file| filter.is_none_or(|f| f.admits(file.time)))
            .cloned()
            .collect();
        Snapshot { mem, files }
    }

    /// A flush of `table` through `through` wrote `files`: its rows leave
    /// memory and its files join the index, in one step.
    pub fn commit_flush(&mut self, table: Signal, through: Lsn, files: Vec<FileEntry>) {
        let t = self.table_mut(table);
        let keep = t.mem.partition_point(|m| m.lsn <= through);
        let gone: usize = t.mem.drain(..keep).map(|m| m.bytes).sum();
        t.mem_bytes = t.mem_bytes.saturating_sub(gone);
        for file in files {
            t.files.entry(file.hour).or_default().push(Arc::new(file));
        }
        t.failures = 0;
        t.retry_at = None;
    }

    /// Adds a file to the index (when opening).
    pub fn add_file(&mut self, file: FileEntry) {
        let t = self.table_mut(file.table);
        t.files.entry(file.hour).or_default().push(Arc::new(file));
    }

    /// Removes `file` from the index (a damaged file, quarantined).
    /// `false` if it is no longer there.
    pub fn remove_file(&mut self, file: &FileEntry) -> bool {
        let t = self.table_mut(file.table);
        let Some(files) = t.files.get_mut(&file.hour) else {
            return false;
        };
        let before = files.len();
        files.retain(|f| f.name != file.name);
        let removed = files.len() < before;
        if files.is_empty() {
            t.files.remove(&file.hour);
        }
        removed
    }

    /// Swaps the files of `hour` named `replaced` for `merged`, in one
    /// step. Returns `false`, changing nothing, if one of them is no longer
    /// in the index.
    pub fn replace_files(&mut self, merged: FileEntry, replaced: &[String]) -> bool {
        let t = self.table_mut(merged.table);
        let Some(files) = t.files.get_mut(&merged.hour) else {
            return false;
        };
        if !replaced.iter().all(|n| files.iter().any(|f| &f.name == n)) {
            return false;
        }
        files.retain(|f| !replaced.contains(&f.name));
        files.push(Arc::new(merged));
        true
    }

    /// Removes the hours of `table` for which `expired` holds, returning
    /// their files.
    pub fn remove_hours(
        &mut self,
        table: Signal,
        expired: impl Fn(i64) -> bool,
    ) -> Vec<(i64, Vec<Arc<FileEntry>>)> {
        let t = self.table_mut(table);
        let hours: Vec<i64> = t.files.keys().copied().filter(|h| expired(*h)).collect();
        hours
            .into_iter()
            .filter_map(|h| t.files.remove(&h).map(|f| (h, f)))
            .collect()
    }

    /// The highest LSN the WAL may drop: every record up to it is in
    /// Parquet and in the saved checkpoint. That is just below the lowest
    /// LSN still in memory in any table, or everything when memory is
    /// empty (memory always holds every record not flushed, see
    /// [`crate::Store::append`]).
    pub fn wal_cut(&self) -> Lsn {
        self.tables
            .iter()
            .filter_map(|t| t.mem.first().map(|m| m.lsn.saturating_sub(1)))
            .min()
            .unwrap_or(self.last_lsn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::FileKind;
    use crate::partition::HOUR_NS;
    use crate::testdata::logs_at;

    fn file(table: Signal, hour: i64, name: &str, time: Option<(i64, i64)>) -> FileEntry {
        FileEntry {
            table,
            hour,
            name: name.into(),
            size: 1,
            rows: 1,
            time,
            lsn: (1, 1),
            epoch: 1,
            kind: FileKind::Flush {
                through: 1,
                files: Some(1),
            },
        }
    }

    /// Guarantees: the WAL may be cut only below the oldest row still in
    /// memory in any table, and fully once memory is empty.
    #[test]
    fn wal_cut_stays_below_memory() {
        let mut s = State::default();
        let now = Instant::now();
        s.insert(Signal::Logs, 3, logs_at(0, 1, 2, "a"), 0, now);
        s.insert(
            Signal::Spans,
            4,
            RecordBatch::new_empty(Signal::Spans.schema()),
            0,
            now,
        );
        s.insert(Signal::Logs, 5, logs_at(0, 1, 2, "a"), 0, now);
        assert_eq!(s.wal_cut(), 2);
        s.commit_flush(Signal::Logs, 3, vec![]);
        assert_eq!(s.wal_cut(), 4);
        s.commit_flush(Signal::Logs, 5, vec![]);
        assert_eq!(s.wal_cut(), 5);
        assert_eq!(s.table(Signal::Logs).mem_bytes, 0);
    }

    /// Guarantees: a snapshot with a time filter skips memory batches,
    /// hours and files outside it (and files without times), and keeps
    /// those that overlap.
    #[test]
    fn snapshots_prune_by_time() {
        let mut s = State::default();
        let now = Instant::now();
        s.insert(Signal::Logs, 1, logs_at(10, 1, 3, "a"), 0, now);
        s.insert(Signal::Logs, 2, logs_at(HOUR_NS * 5, 1, 3, "a"), 0, now);
        s.add_file(file(Signal::Logs, 0, "a", Some((0, 100))));
        s.add_file(file(Signal::Logs, 0, "b", Some((200, 300))));
        s.add_file(file(Signal::Logs, 0, "c", None));
        s.add_file(file(Signal::Logs, 5, "d", Some((HOUR_NS * 5, HOUR_NS * 5))));
        let all = s.snapshot(Signal::Logs, None);
        assert_eq!((all.mem.len(), all.files.len()), (2, 4));
        let some = s.snapshot(Signal::Logs, Some(TimeFilter { lo: 5, hi: 150 }));
        assert_eq!(some.mem.len(), 1);
        assert_eq!(
            some.files
                .iter()
                .map(|f| f.name.as_str())
                .collect::<Vec<_>>(),
            vec!["a"]
        );
    }

    /// Guarantees: a compaction swap is all or nothing.
    #[test]
    fn replace_is_atomic() {
        let mut s = State::default();
        s.add_file(file(Signal::Logs, 0, "a", Some((0, 1))));
        s.add_file(file(Signal::Logs, 0, "b", Some((0, 1))));
        let merged = file(Signal::Logs, 0, "m", Some((0, 1)));
        assert!(!s.replace_files(merged.clone(), &["a".into(), "zzz".into()]));
        assert_eq!(s.table(Signal::Logs).file_count(), 2);
        assert!(s.replace_files(merged, &["a".into(), "b".into()]));
        let names: Vec<_> = s.table(Signal::Logs).files[&0]
            .iter()
            .map(|f| f.name.clone())
            .collect();
        assert_eq!(names, vec!["m"]);
    }
}
