//! The write path under [`crate::Store::append`]: the backlog check, then
//! one WAL group commit and the rows' insertion into memory, under one
//! lock.

#[cfg(any(test, feature = "fault-injection"))]
use std::sync::atomic::Ordering;
use std::time::Instant;

use arrow::record_batch::RecordBatch;
use weir_core::Signal;

use crate::error::StoreError;
#[cfg(any(test, feature = "fault-injection"))]
use crate::faults::injected;
use crate::inner::{Inner, lock, read, write};
use crate::obs;
use crate::partition::now_ns;

impl Inner {
    /// Refuses an append to a table whose memory is over its limit.
    pub(crate) fn check_backlog(
        &self,
        entries: &[(Signal, RecordBatch)],
    ) -> Result<(), StoreError> {
        let limit = self
            .config
            .flush_size
            .saturating_mul(self.tuning.backlog_factor)
            .max(self.tuning.backlog_floor);
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let state = read(&self.state);
        for (table, _) in entries {
            let held = state.table(*table).mem_bytes;
            if held > limit {
                obs::error("backlog");
                return Err(StoreError::Backlog {
                    table: *table,
                    held,
                    limit,
                });
            }
        }
        Ok(())
    }

    /// Logs `entries` with one WAL append and inserts them into memory
    /// under the same lock (blocking). Returns the WAL's size and the
    /// memory held by each table written.
    pub(crate) fn append_blocking(
        &self,
        entries: Vec<(Signal, RecordBatch)>,
    ) -> Result<(u64, Vec<(Signal, usize)>), StoreError> {
        let mut wal = lock(&self.wal);
        let Some(wal) = wal.as_mut().filter(|_| !read(&self.state).closed) else {
            return Err(StoreError::Closed);
        };
        #[cfg(any(test, feature = "fault-injection"))]
        if self.faults.wal.load(Ordering::Relaxed) {
            obs::error("wal");
            return Err(injected("append to the WAL in", self.dir.join("wal")));
        }
        let refs: Vec<(Signal, &RecordBatch)> = entries.iter().map(|(t, b)| (*t, b)).collect();
        let lsns = wal.append(&refs).inspect_err(|_| obs::error("wal"))?;
        if lsns.len() != entries.len() {
            return Err(StoreError::Internal(format!(
                "the WAL returned {} LSNs for {} batches",
                lsns.len(),
                entries.len()
            )));
        }
        let arrival = now_ns();
        let now = Instant::now();
        let mut state = write(&self.state);
        let mut touched: Vec<Signal> = Vec::with_capacity(4);
        for ((table, batch), lsn) in entries.into_iter().zip(lsns) {
            state.insert(table, lsn, batch, arrival, now);
            if !touched.contains(&table) {
                touched.push(table);
            }
        }
        let held = touched
            .into_iter()
            .map(|t| (t, state.table(t).mem_bytes))
            .collect();
        Ok((wal.disk_bytes(), held))
    }
}
