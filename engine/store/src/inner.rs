//! [`Inner`]: the state a [`crate::Store`] shares with its background
//! tasks and its table providers, the locks over it, and the small helpers
//! every part of the store uses to take them.
//!
//! The store's jobs each add methods to `Inner` in their own module:
//! `append` (the write path), `flush` (memory to Parquet, cutting the WAL),
//! `maintenance` (compaction, retention), `recovery` (building it at open);
//! `provider` reads through it.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Instant;

use datafusion::execution::cache::cache_manager::FileMetadataCache;
use datafusion::execution::cache::default_cache::DefaultCache;
use object_store::path::Path as ObjPath;
use tokio::sync::Notify;
use tracing::warn;
use weir_config::StoreConfig;
use weir_core::Signal;

use crate::admit::RefusalLog;
use crate::checkpoint::Checkpoint;
use crate::error::StoreError;
#[cfg(any(test, feature = "fault-injection"))]
use crate::faults::Faults;
use crate::location::Location;
use crate::obs;
use crate::state::{Snapshot, State, TimeFilter};
use crate::tuning::Tuning;
use crate::wal::{Lsn, Wal};

/// The shared insides of a [`crate::Store`].
#[derive(Debug)]
pub(crate) struct Inner {
    /// Where the Parquet files live.
    pub location: Location,
    /// The store's local directory (WAL, checkpoint).
    pub dir: PathBuf,
    /// `[store]`.
    pub config: StoreConfig,
    /// The rest.
    pub tuning: Tuning,
    /// The write-ahead log. Held while appending *and* inserting into
    /// memory, so memory always holds every logged record not yet flushed.
    /// `None` once the store is closed (which releases the directory).
    pub wal: Mutex<Option<Wal>>,
    /// Memory rows and file index.
    pub state: RwLock<State>,
    /// The saved checkpoint.
    pub checkpoint: Mutex<Checkpoint>,
    /// Per table: held by its flush; holds the LSN of a failed flush, which
    /// the next attempt repeats exactly (same rows, same file names).
    pub flush_locks: [tokio::sync::Mutex<Option<Lsn>>; 4],
    /// Held by compaction and retention.
    pub maintenance: tokio::sync::Mutex<()>,
    /// Files to delete, and when.
    graveyard: Mutex<Vec<(ObjPath, Instant)>>,
    /// The LSN through which the WAL was last cut.
    pub last_cut: Mutex<Lsn>,
    /// Wakes the flusher (a table reached `flush_size`).
    pub flush_wanted: Arc<Notify>,
    /// When rows outside their table's time range were last logged.
    pub refusals: RefusalLog,
    /// Injected failures (tests only).
    #[cfg(any(test, feature = "fault-injection"))]
    pub faults: Faults,
    /// The footers of the files queries read, kept across queries (each
    /// SQL query may come with a new DataFusion session).
    pub metadata_cache: Arc<FileMetadataCache>,
}

/// `m` locked, even if a thread panicked while holding it.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `m` locked to read, even if a thread panicked while holding it.
pub(crate) fn read<T>(m: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(PoisonError::into_inner)
}

/// `m` locked to write, even if a thread panicked while holding it.
pub(crate) fn write<T>(m: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(PoisonError::into_inner)
}

/// Runs blocking work off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    what: &'static str,
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Internal(format!("the task to {what} failed: {e}")))?
}

impl Inner {
    /// The insides of a store opened on `wal`, `state` and `checkpoint`:
    /// no flush running, nothing to delete, the WAL not cut yet.
    pub(crate) fn new(
        location: Location,
        dir: PathBuf,
        config: &StoreConfig,
        tuning: Tuning,
        wal: Wal,
        state: State,
        checkpoint: Checkpoint,
    ) -> Inner {
        Inner {
            location,
            dir,
            config: config.clone(),
            wal: Mutex::new(Some(wal)),
            state: RwLock::new(state),
            checkpoint: Mutex::new(checkpoint),
            flush_locks: Default::default(),
            maintenance: tokio::sync::Mutex::new(()),
            graveyard: Mutex::new(Vec::new()),
            last_cut: Mutex::new(0),
            flush_wanted: Arc::new(Notify::new()),
            refusals: RefusalLog::default(),
            #[cfg(any(test, feature = "fault-injection"))]
            faults: Faults::default(),
            metadata_cache: Arc::new(
                DefaultCache::new(tuning.metadata_cache_bytes).with_name("weir-store footers"),
            ),
            tuning,
        }
    }

    /// What a query of `table` reads.
    pub(crate) fn snapshot(&self, table: Signal, filter: Option<TimeFilter>) -> Snapshot {
        read(&self.state).snapshot(table, filter)
    }

    /// The state, to read.
    pub(crate) fn state(&self) -> RwLockReadGuard<'_, State> {
        read(&self.state)
    }

    /// The state, to change.
    pub(crate) fn state_mut(&self) -> RwLockWriteGuard<'_, State> {
        write(&self.state)
    }

    /// The WAL epoch.
    pub(crate) fn epoch(&self) -> u64 {
        lock(&self.checkpoint).epoch
    }

    /// Schedules files removed from the index for deletion after the grace
    /// period.
    pub(crate) fn bury(&self, paths: impl IntoIterator<Item = ObjPath>) {
        let due = Instant::now() + self.tuning.deletion_grace;
        lock(&self.graveyard).extend(paths.into_iter().map(|p| (p, due)));
    }

    /// Deletes the files whose grace period is over (all of them when
    /// `all`); a failed deletion is retried later.
    pub(crate) async fn reap_graveyard(&self, all: bool) {
        let now = Instant::now();
        let due: Vec<(ObjPath, Instant)> = {
            let mut g = lock(&self.graveyard);
            let (due, keep): (Vec<_>, Vec<_>) = g.drain(..).partition(|(_, t)| all || *t <= now);
            *g = keep;
            due
        };
        for (path, when) in due {
            if let Err(e) = self.location.delete(&path).await {
                obs::error("delete");
                warn!(error = %e, "cannot delete a file the store no longer uses; retrying later");
                lock(&self.graveyard).push((path, when));
            }
        }
    }

    /// The bytes of the WAL on disk.
    #[cfg(test)]
    pub(crate) fn wal_disk_bytes(&self) -> u64 {
        lock(&self.wal).as_ref().map_or(0, Wal::disk_bytes)
    }

    /// The number of files waiting for deletion.
    #[cfg(test)]
    pub(crate) fn graveyard_len(&self) -> usize {
        lock(&self.graveyard).len()
    }
}
