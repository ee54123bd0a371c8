//! [`Store`]: the embedded store's public face: open, append, register
//! its tables, flush, close.
//!
//! The work is done elsewhere, on the shared `Inner` (`inner`): `recovery` opens,
//! `append` writes, `flush` moves rows to Parquet, `maintenance` compacts
//! and applies retention, `tasks` runs flush and maintenance in the
//! background.

use std::sync::{Arc, Mutex};

use arrow::record_batch::RecordBatch;
use datafusion::catalog::TableProvider;
use datafusion::prelude::SessionContext;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};
use weir_config::StoreConfig;
use weir_core::Signal;

use crate::admit::{RefusedRows, Window};
use crate::encode::conform;
use crate::error::StoreError;
use crate::inner::{Inner, blocking, lock, write};
use crate::obs;
use crate::partition::now_ns;
use crate::provider::StoreTable;
use crate::recovery::recover;
use crate::tasks::spawn_tasks;
use crate::tuning::Tuning;

/// The embedded store: a write-ahead log, rows in memory, Parquet files
/// partitioned by table and hour, compaction and retention in the
/// background, and one DataFusion table per [`Signal`]. See the crate
/// documentation.
pub struct Store {
    inner: Arc<Inner>,
    stop: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("dir", &self.inner.dir)
            .field("tables", &self.inner.location.display)
            .finish()
    }
}

impl Store {
    /// Creates `config.path`, opens the WAL at `<path>/wal`, opens the
    /// object store (`config.url`, default `<path>/tables` on local disk;
    /// `s3://bucket/prefix` with credentials from the `AWS_*` environment
    /// variables), indexes the existing Parquet files, replays the WAL
    /// records not yet in Parquet into memory, logs what replay found (a
    /// warning if it cut anything), and starts the background tasks: flush
    /// by size and age, compaction, retention.
    pub async fn open(config: &StoreConfig) -> Result<Arc<Store>, StoreError> {
        Store::open_tuned(config, Tuning::for_config(config)).await
    }

    /// [`Store::open`] with test settings.
    pub(crate) async fn open_tuned(
        config: &StoreConfig,
        tuning: Tuning,
    ) -> Result<Arc<Store>, StoreError> {
        let inner = recover(config, tuning).await?;
        let (stop, _) = watch::channel(false);
        let tasks = spawn_tasks(&inner, &stop);
        Ok(Arc::new(Store {
            inner,
            stop,
            tasks: Mutex::new(tasks),
        }))
    }

    /// Durably appends batches (one WAL group commit for the whole call),
    /// then makes them visible to queries.
    ///
    /// Rows whose time is outside what their table accepts, `[now -
    /// retention, now + max_future]` (`[store.retention]`,
    /// `[store.max_future]`), are not stored; the rest of their batch is.
    /// The answer has one entry per batch, in order: the rows refused and
    /// why, for the sender, or `None`. Refused rows are counted in
    /// `weir_store_refused_rows_total` and logged (a warning at most every
    /// ten seconds).
    ///
    /// Returns only when the WAL holds what is stored (forced to disk when
    /// `fsync = "always"`). An `Err` means nothing of this call is
    /// acknowledged: nothing was logged, or (for an I/O error during the
    /// write) what was logged is not visible and may or may not come back
    /// after a restart, so the client must retry.
    pub async fn append(
        &self,
        entries: Vec<(Signal, RecordBatch)>,
    ) -> Result<Vec<Option<RefusedRows>>, StoreError> {
        let now = now_ns();
        let mut refusals = Vec::with_capacity(entries.len());
        let mut counts = Vec::new();
        let mut conformed = Vec::with_capacity(entries.len());
        for (table, batch) in entries {
            let batch = conform(table, &batch)
                .map_err(|message| StoreError::InvalidBatch { table, message })?;
            let window = Window::of(&self.inner.config, table, now);
            let admitted = window
                .admit(batch)
                .map_err(|e| StoreError::rows("check the time of", table, e))?;
            let refusal = window.refusal(&admitted);
            if let Some(refused) = &refusal {
                counts.push((table, admitted.before, admitted.after, refused.clone()));
            }
            refusals.push(refusal);
            if admitted.batch.num_rows() > 0 {
                conformed.push((table, admitted.batch));
            }
        }
        if !conformed.is_empty() {
            self.write(conformed).await?;
        }
        // Counted once the rest is stored: a failed append is retried whole.
        for (table, before, after, refused) in counts {
            obs::refused(table, before, after);
            self.inner.refusals.log(table, &refused);
        }
        Ok(refusals)
    }

    /// Appends conformed, non-empty batches to the WAL, then to memory.
    async fn write(&self, conformed: Vec<(Signal, RecordBatch)>) -> Result<(), StoreError> {
        self.inner.check_backlog(&conformed)?;
        let inner = self.inner.clone();
        let (wal_bytes, held) = blocking("append to the WAL", move || {
            inner.append_blocking(conformed)
        })
        .await?;
        obs::wal_bytes(wal_bytes);
        let mut wake = false;
        for (table, bytes) in held {
            obs::memory_bytes(table, bytes);
            wake |= bytes as u64 >= self.inner.config.flush_size;
        }
        if wake {
            self.inner.flush_wanted.notify_one();
        }
        Ok(())
    }

    /// Registers the store's object store and one table provider per table
    /// (`logs`, `spans`, `metrics`, `alerts`) in `ctx`.
    pub fn register(&self, ctx: &SessionContext) -> datafusion::error::Result<()> {
        let location = &self.inner.location;
        ctx.runtime_env()
            .register_object_store(location.url.as_ref(), location.store.clone());
        for table in Signal::ALL {
            ctx.register_table(table.as_str(), self.table_provider(table))?;
        }
        Ok(())
    }

    /// The provider of one table.
    pub fn table_provider(&self, table: Signal) -> Arc<dyn TableProvider> {
        Arc::new(StoreTable::new(table, self.inner.clone()))
    }

    /// Forces a flush of every table now (tests, benchmarks); returns when
    /// the Parquet files are durable and the WAL is cut.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.inner.flush_all().await
    }

    /// Runs compaction once now (tests), as the background task does every
    /// `compaction_interval`.
    pub async fn compact_now(&self) -> Result<(), StoreError> {
        self.inner.compact(now_ns()).await
    }

    /// Runs retention once now (tests), as the background task does every
    /// `[store.retention] check_interval`.
    pub async fn enforce_retention_now(&self) -> Result<(), StoreError> {
        self.inner.enforce_retention(now_ns()).await
    }

    /// Flushes everything in memory to Parquet and stops the background
    /// tasks (graceful shutdown), then releases the WAL directory, so that
    /// another store may open it. Appends after this fail with
    /// [`StoreError::Closed`]; queries still work. If the flush fails, the
    /// error is returned and the rows stay in the WAL: they come back at the
    /// next start.
    pub async fn close(&self) -> Result<(), StoreError> {
        let _ = self.stop.send(true);
        let tasks: Vec<JoinHandle<()>> = std::mem::take(&mut *lock(&self.tasks));
        for task in tasks {
            if let Err(e) = task.await {
                warn!(error = %e, "a background task of the store failed");
            }
        }
        let inner = self.inner.clone();
        blocking("close the store", move || {
            let _wal = lock(&inner.wal);
            write(&inner.state).closed = true;
            Ok(())
        })
        .await?;
        let flushed = self.inner.flush_all().await;
        self.inner.reap_graveyard(true).await;
        // Releases the WAL directory: another store may open it now.
        let inner = self.inner.clone();
        blocking("close the WAL", move || {
            drop(lock(&inner.wal).take());
            Ok(())
        })
        .await?;
        match &flushed {
            Ok(()) => info!(dir = %self.inner.dir.display(), "store closed"),
            Err(e) => {
                warn!(dir = %self.inner.dir.display(), error = %e, "store closed; rows that could not be flushed are in the WAL and come back at the next start")
            }
        }
        flushed
    }

    /// The insides, for unit tests.
    #[cfg(test)]
    pub(crate) fn inner(&self) -> &Arc<Inner> {
        &self.inner
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}
