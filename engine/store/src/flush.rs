//! Flushing: a table's rows in memory written to Parquet (one file per
//! hour, durable), then the checkpoint, then, in one step for readers,
//! the rows leave memory and the files join the index; then the WAL is cut
//! below the oldest row still in memory. A failed flush is repeated
//! exactly (same rows, same file names) after a backoff.

use std::sync::Arc;
#[cfg(any(test, feature = "fault-injection"))]
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tracing::warn;
use weir_core::Signal;

use crate::encode::{encode, time_range};
use crate::error::StoreError;
#[cfg(any(test, feature = "fault-injection"))]
use crate::faults::injected;
use crate::inner::{Inner, blocking, lock, read, write};
use crate::layout::{FileEntry, FileKind, flush_file_name};
use crate::obs;
use crate::split::{HourRows, split_by_hour};
use crate::state::MemBatch;
use crate::tables;
use crate::wal::Lsn;

impl Inner {
    /// Flushes every table and cuts the WAL; the first error, if any.
    pub(crate) async fn flush_all(self: &Arc<Self>) -> Result<(), StoreError> {
        let mut first = None;
        for table in Signal::ALL {
            // Twice: the first flush may be the retry of a failed one, which
            // takes only the rows that one took.
            for _ in 0..2 {
                match self.flush_table(table).await {
                    Ok(true) if !read(&self.state).table(table).mem.is_empty() => {}
                    Ok(_) => break,
                    Err(e) => {
                        warn!(table = %table, error = %e, "flush failed; the rows stay in memory and in the WAL");
                        first.get_or_insert(e);
                        break;
                    }
                }
            }
        }
        self.cut_wal().await?;
        first.map_or(Ok(()), Err)
    }

    /// Flushes the tables whose memory is over `flush_size` or older than
    /// `flush_interval` (and not backing off after a failure), then cuts
    /// the WAL.
    pub(crate) async fn flush_due(self: &Arc<Self>) {
        let due: Vec<Signal> = {
            let state = read(&self.state);
            let now = Instant::now();
            Signal::ALL
                .into_iter()
                .filter(|t| {
                    let t = state.table(*t);
                    let Some(oldest) = t.mem.first() else {
                        return false;
                    };
                    t.retry_at.is_none_or(|r| now >= r)
                        && (t.mem_bytes as u64 >= self.config.flush_size
                            || now.duration_since(oldest.arrived) >= self.config.flush_interval)
                })
                .collect()
        };
        let mut flushed = false;
        for table in due {
            match self.flush_table(table).await {
                Ok(f) => flushed |= f,
                Err(e) => {
                    warn!(table = %table, error = %e, "flush failed; the rows stay in memory and in the WAL, and the flush is retried");
                }
            }
        }
        if flushed && let Err(e) = self.cut_wal().await {
            warn!(error = %e, "cutting the WAL failed; it is retried after the next flush");
        }
    }

    /// Writes the rows of `table` in memory to Parquet: one file per hour,
    /// durable, then the checkpoint, then (in one step for readers) the
    /// rows leave memory and the files join the index. `Ok(false)`: nothing
    /// to flush.
    pub(crate) async fn flush_table(self: &Arc<Self>, table: Signal) -> Result<bool, StoreError> {
        let mut pending = self.flush_locks[tables::index(table)].lock().await;
        let (through, batches) = {
            let state = read(&self.state);
            let mem = &state.table(table).mem;
            // A failed flush is repeated exactly: same rows, same files.
            let Some(through) = pending.or_else(|| mem.last().map(|m| m.lsn)) else {
                return Ok(false);
            };
            let batches: Vec<Arc<MemBatch>> =
                mem.iter().filter(|m| m.lsn <= through).cloned().collect();
            (through, batches)
        };
        if batches.is_empty() {
            *pending = None;
            return Ok(false);
        }
        *pending = Some(through);
        let started = Instant::now();
        match self.write_flush(table, through, batches).await {
            Ok(files) => {
                let mut state = write(&self.state);
                state.commit_flush(table, through, files);
                let t = state.table(table);
                obs::memory_bytes(table, t.mem_bytes);
                obs::files(table, t.file_count());
                drop(state);
                *pending = None;
                obs::flushed(table, started.elapsed());
                Ok(true)
            }
            Err(e) => {
                obs::error("flush");
                let mut state = write(&self.state);
                let t = state.table_mut(table);
                t.failures = t.failures.saturating_add(1);
                let backoff = Duration::from_secs(1 << t.failures.min(6).saturating_sub(1));
                t.retry_at = Some(Instant::now() + backoff);
                Err(e)
            }
        }
    }

    /// The files of a flush of `batches` through `through`: built, written
    /// durably, and the checkpoint saved.
    async fn write_flush(
        self: &Arc<Self>,
        table: Signal,
        through: Lsn,
        batches: Vec<Arc<MemBatch>>,
    ) -> Result<Vec<FileEntry>, StoreError> {
        let epoch = self.epoch();
        let built = blocking("encode Parquet", move || {
            build_flush_files(table, &batches, through, epoch)
        })
        .await?;
        let mut entries = Vec::with_capacity(built.len());
        for (entry, bytes) in built {
            let path = entry.path();
            #[cfg(any(test, feature = "fault-injection"))]
            if self.faults.flush.load(Ordering::Relaxed) {
                return Err(injected("write", self.location.describe(&path)));
            }
            self.location.put(&path, bytes).await?;
            entries.push(entry);
        }
        #[cfg(any(test, feature = "fault-injection"))]
        if self.faults.checkpoint.load(Ordering::Relaxed) {
            return Err(injected("save the checkpoint in", &self.dir));
        }
        let inner = self.clone();
        blocking("save the checkpoint", move || {
            let mut cp = lock(&inner.checkpoint);
            let mut next = *cp;
            next.set(table, through.max(next.through(table)));
            next.save(&inner.dir)
                .inspect_err(|_| obs::error("checkpoint"))?;
            *cp = next;
            Ok(())
        })
        .await?;
        Ok(entries)
    }

    /// Drops the WAL records that every table has in Parquet.
    pub(crate) async fn cut_wal(self: &Arc<Self>) -> Result<(), StoreError> {
        let cut = read(&self.state).wal_cut();
        if cut <= *lock(&self.last_cut) {
            return Ok(());
        }
        let inner = self.clone();
        let bytes = blocking("cut the WAL", move || {
            let mut wal = lock(&inner.wal);
            let Some(wal) = wal.as_mut() else {
                return Err(StoreError::Closed);
            };
            wal.remove_through(cut).inspect_err(|_| obs::error("wal"))?;
            let mut last = lock(&inner.last_cut);
            *last = (*last).max(cut);
            Ok(wal.disk_bytes())
        })
        .await?;
        obs::wal_bytes(bytes);
        Ok(())
    }
}

/// Cuts a flush's rows into hours, each sorted (one sort for them all,
/// `split`), and encodes one file per hour (blocking).
fn build_flush_files(
    table: Signal,
    batches: &[Arc<MemBatch>],
    through: Lsn,
    epoch: u64,
) -> Result<Vec<(FileEntry, Vec<u8>)>, StoreError> {
    let hours =
        split_by_hour(table, batches).map_err(|e| StoreError::rows("split by hour", table, e))?;
    let files = u32::try_from(hours.len()).ok();
    let mut out = Vec::with_capacity(hours.len());
    for HourRows { hour, rows, lsn } in hours {
        let mut entry = FileEntry {
            table,
            hour,
            name: flush_file_name(through, epoch),
            size: 0,
            rows: rows.num_rows() as u64,
            time: time_range(table, &rows),
            lsn,
            epoch,
            kind: FileKind::Flush { through, files },
        };
        let bytes = encode(table, &rows, entry.key_values())
            .map_err(|e| StoreError::parquet("encode", entry.path(), e))?;
        entry.size = bytes.len() as u64;
        out.push((entry, bytes));
    }
    Ok(out)
}
