//! [`Store`]: open, append, flush, close, and the background tasks.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use arrow::record_batch::RecordBatch;
use datafusion::catalog::TableProvider;
use datafusion::execution::cache::cache_manager::FileMetadataCache;
use datafusion::execution::cache::default_cache::DefaultCache;
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use object_store::ObjectMeta;
use object_store::path::Path as ObjPath;
use parquet::arrow::async_reader::MetadataFetch;
use parquet::file::metadata::ParquetMetaDataReader;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tracing::{info, warn};
use weir_config::StoreConfig;

use crate::Table;
use crate::checkpoint::Checkpoint;
use crate::encode::{conform, encode, sorted, split_by_hour, time_range};
use crate::error::StoreError;
use crate::layout::{FileEntry, FileKind, Listed, Located, classify, flush_file_name};
use crate::location::Location;
use crate::obs;
use crate::partition::now_ns;
use crate::provider::StoreTable;
use crate::state::{MemBatch, Snapshot, State, TimeFilter};
use crate::wal::{Lsn, Wal, WalOptions, WalRecord};

/// Settings that are not part of `[store]`: fixed in production, changed
/// by tests.
#[derive(Debug, Clone)]
pub(crate) struct Tuning {
    /// How long files removed from the index (by compaction or retention)
    /// stay on disk for queries that already planned to read them.
    pub deletion_grace: Duration,
    /// The size of a WAL segment.
    pub wal_segment_size: u64,
    /// A table may hold this many times `flush_size` in memory before
    /// appends to it are refused ...
    pub backlog_factor: u64,
    /// ... and at least this many bytes.
    pub backlog_floor: u64,
    /// An hour is compacted once it ended this long ago ...
    pub cold_after: Duration,
    /// ... or as soon as it has this many small files.
    pub hot_files: usize,
    /// Footers of Parquet files most recently read, at most this many bytes.
    pub metadata_cache_bytes: usize,
    /// Where the tables live, instead of what the configuration says.
    #[cfg(test)]
    pub location: Option<Location>,
}

impl Tuning {
    pub(crate) fn for_config(config: &StoreConfig) -> Tuning {
        Tuning {
            deletion_grace: Duration::from_secs(300),
            wal_segment_size: 64 << 20,
            backlog_factor: 4,
            backlog_floor: 256 << 20,
            cold_after: (config.flush_interval * 2).max(Duration::from_secs(60)),
            hot_files: 16,
            metadata_cache_bytes: 64 << 20,
            #[cfg(test)]
            location: None,
        }
    }
}

/// Failures tests can switch on.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    /// WAL appends fail as if the disk were full.
    pub wal: AtomicBool,
    /// Parquet file writes fail as if the disk were full.
    pub flush: AtomicBool,
    /// Saving the checkpoint fails (after the flush's files are written).
    pub checkpoint: AtomicBool,
}

/// The shared insides of a [`Store`].
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
    wal: Mutex<Option<Wal>>,
    /// Memory rows and file index.
    state: RwLock<State>,
    /// The saved checkpoint.
    checkpoint: Mutex<Checkpoint>,
    /// Per table: held by its flush; holds the LSN of a failed flush, which
    /// the next attempt repeats exactly (same rows, same file names).
    flush_locks: [tokio::sync::Mutex<Option<Lsn>>; 4],
    /// Held by compaction and retention.
    pub maintenance: tokio::sync::Mutex<()>,
    /// Files to delete, and when.
    graveyard: Mutex<Vec<(ObjPath, Instant)>>,
    /// The LSN through which the WAL was last cut.
    last_cut: Mutex<Lsn>,
    /// Wakes the flusher (a table reached `flush_size`).
    flush_wanted: Arc<Notify>,
    /// Injected failures.
    pub faults: Faults,
    /// The footers of the files queries read, kept across queries (each
    /// SQL query may come with a new DataFusion session).
    pub metadata_cache: Arc<FileMetadataCache>,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn read<T>(m: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(m: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(PoisonError::into_inner)
}

fn table_index(table: Table) -> usize {
    match table {
        Table::Logs => 0,
        Table::Spans => 1,
        Table::Metrics => 2,
        Table::Alerts => 3,
    }
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

/// The error an injected fault stands for: a full disk.
pub(crate) fn injected(what: &'static str, path: impl Into<PathBuf>) -> StoreError {
    StoreError::io(
        what,
        path,
        std::io::Error::new(std::io::ErrorKind::StorageFull, "injected failure"),
    )
}

/// The embedded store: a write-ahead log, rows in memory, Parquet files
/// partitioned by table and hour, compaction and retention in the
/// background, and one DataFusion table per [`Table`]. See the crate
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
        let dir = absolute(&config.path)?;
        #[cfg(test)]
        let location = match &tuning.location {
            Some(location) => location.clone(),
            None => Location::resolve(config.url.as_deref(), &dir)?,
        };
        #[cfg(not(test))]
        let location = Location::resolve(config.url.as_deref(), &dir)?;
        let wal_dir = dir.join("wal");
        let opts = WalOptions {
            dir: wal_dir.clone(),
            fsync: config.fsync,
            segment_size: tuning.wal_segment_size,
        };
        let (mut wal, records, report) =
            blocking("open the WAL", move || Ok(Wal::open(opts)?)).await?;
        if report.truncated_bytes > 0 || report.problem.is_some() {
            warn!(
                dir = %wal_dir.display(),
                records = report.records,
                segments = report.segments,
                truncated_bytes = report.truncated_bytes,
                problem = report.problem.as_deref().unwrap_or(""),
                "the write-ahead log was damaged: it was cut at the damage, the records before it are replayed"
            );
        } else {
            info!(dir = %wal_dir.display(), records = report.records, segments = report.segments, "write-ahead log read");
        }
        let saved = Checkpoint::load(&dir);
        let checkpoint = initial_checkpoint(&saved, &records);
        if saved.as_ref().ok() != Some(&Some(checkpoint)) {
            let cp = checkpoint;
            let cp_dir = dir.clone();
            blocking("save the checkpoint", move || cp.save(&cp_dir)).await?;
        }
        // A WAL cut short (damage, or a tail lost with `fsync = "never"`)
        // may end below LSNs the checkpoint already covers: new batches must
        // not get those LSNs, or a replay would take them as flushed.
        let covered = Table::ALL
            .into_iter()
            .map(|t| checkpoint.through(t))
            .max()
            .unwrap_or(0);
        if covered >= wal.next_lsn() {
            wal.skip_through(covered)?;
        }
        let mut state = State::default();
        index_files(&location, &checkpoint, &records, &mut state).await?;
        let arrival = now_ns();
        let now = Instant::now();
        let mut replayed = 0usize;
        for WalRecord { lsn, table, batch } in records {
            if lsn <= checkpoint.through(table) {
                state.last_lsn = state.last_lsn.max(lsn);
                continue;
            }
            let batch = conform(table, &batch).map_err(|m| {
                StoreError::rows(
                    "replay from the WAL",
                    table,
                    format!(
                        "record {lsn} does not fit the table's schema ({m}): run the Weir version that wrote it to flush the WAL"
                    ),
                )
            })?;
            replayed += 1;
            state.insert(table, lsn, batch, arrival, now);
        }
        info!(
            replayed,
            epoch = %format!("{:016x}", checkpoint.epoch),
            tables = %location.display,
            "store opened"
        );
        for table in Table::ALL {
            let t = state.table(table);
            obs::memory_bytes(table, t.mem_bytes);
            obs::files(table, t.file_count());
        }
        obs::wal_bytes(wal.disk_bytes());
        let inner = Arc::new(Inner {
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
            faults: Faults::default(),
            metadata_cache: Arc::new(
                DefaultCache::new(tuning.metadata_cache_bytes).with_name("weir-store footers"),
            ),
            tuning,
        });
        // Partitions that expired while the store was down go before any
        // query can see them.
        inner.enforce_retention(now_ns()).await?;
        inner.reap_graveyard(true).await;
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
    /// Returns only when the WAL holds them (forced to disk when `fsync =
    /// "always"`). An `Err` means nothing of this call is acknowledged:
    /// nothing was logged, or (for an I/O error during the write) what was
    /// logged is not visible and may or may not come back after a restart,
    /// so the client must retry.
    pub async fn append(&self, entries: Vec<(Table, RecordBatch)>) -> Result<(), StoreError> {
        let mut conformed = Vec::with_capacity(entries.len());
        for (table, batch) in entries {
            let batch = conform(table, &batch)
                .map_err(|message| StoreError::InvalidBatch { table, message })?;
            if batch.num_rows() > 0 {
                conformed.push((table, batch));
            }
        }
        if conformed.is_empty() {
            return Ok(());
        }
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
        for table in Table::ALL {
            ctx.register_table(table.name(), self.table_provider(table))?;
        }
        Ok(())
    }

    /// The provider of one table.
    pub fn table_provider(&self, table: Table) -> Arc<dyn TableProvider> {
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

/// `path` made absolute (from the current directory) and created.
fn absolute(path: &Path) -> Result<PathBuf, StoreError> {
    let path = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| StoreError::io("find the current directory for", path, e))?
            .join(path)
    };
    crate::local::create_dir_durably(&path)
        .map_err(|e| StoreError::io("create the store directory", &path, e))?;
    path.canonicalize()
        .map_err(|e| StoreError::io("resolve the store directory", &path, e))
}

/// The checkpoint to start from. With nothing to replay, a new epoch
/// starts (the WAL may have been recreated, its LSNs restarted). With
/// records to replay, the saved checkpoint says which are already in
/// Parquet; without one, everything is replayed.
fn initial_checkpoint(
    saved: &Result<Option<Checkpoint>, String>,
    records: &[WalRecord],
) -> Checkpoint {
    if records.is_empty() {
        return Checkpoint::fresh();
    }
    match saved {
        Ok(Some(cp)) => *cp,
        Ok(None) => {
            warn!(
                "the store has no checkpoint but its WAL holds records: all are replayed, and rows also in Parquet may appear twice"
            );
            Checkpoint::fresh()
        }
        Err(e) => {
            warn!(
                error = %e,
                "the store's checkpoint is unusable: all WAL records are replayed, and rows also in Parquet may appear twice"
            );
            Checkpoint::fresh()
        }
    }
}

/// Reads byte ranges of one object, for the Parquet footer reader.
struct Ranges<'a> {
    store: &'a dyn object_store::ObjectStore,
    path: &'a ObjPath,
}

impl MetadataFetch for Ranges<'_> {
    fn fetch(
        &mut self,
        range: std::ops::Range<u64>,
    ) -> futures::future::BoxFuture<'_, parquet::errors::Result<bytes::Bytes>> {
        Box::pin(async move {
            object_store::ObjectStoreExt::get_range(self.store, self.path, range)
                .await
                .map_err(|e| parquet::errors::ParquetError::External(Box::new(e)))
        })
    }
}

/// Reads the index entry of one file from its footer.
async fn read_entry(
    location: &Location,
    loc: Located,
    meta: ObjectMeta,
) -> Result<FileEntry, String> {
    let fetch = Ranges {
        store: location.store.as_ref(),
        path: &meta.location,
    };
    let md = ParquetMetaDataReader::new()
        .load_and_finish(fetch, meta.size)
        .await
        .map_err(|e| format!("cannot read its footer: {e}"))?;
    let fm = md.file_metadata();
    let rows = u64::try_from(fm.num_rows()).unwrap_or(0);
    FileEntry::from_footer(&loc, meta.size, rows, fm.key_value_metadata())
}

/// Builds the index from the files' footers, and finishes what a crash
/// interrupted:
///
/// * temporary files of unfinished writes are deleted;
/// * files a compaction merged (named in the merged file's metadata) are
///   deleted;
/// * files of a flush that did not finish (this WAL epoch, an LSN past the
///   checkpoint) are deleted when the WAL still holds their rows, which
///   are replayed; otherwise they are kept.
async fn index_files(
    location: &Location,
    checkpoint: &Checkpoint,
    records: &[WalRecord],
    state: &mut State,
) -> Result<(), StoreError> {
    let in_wal: HashSet<(Table, Lsn)> = records.iter().map(|r| (r.table, r.lsn)).collect();
    for table in Table::ALL {
        let mut data = Vec::new();
        for meta in location.list(table).await? {
            match classify(&meta.location) {
                Listed::Temporary => {
                    if let Err(e) = location.delete(&meta.location).await {
                        warn!(error = %e, "cannot delete a temporary file");
                    }
                }
                Listed::Other => {}
                Listed::Data(loc) => data.push((loc, meta)),
            }
        }
        let read: Vec<(String, Result<FileEntry, String>)> = futures::stream::iter(data)
            .map(|(loc, meta)| async move {
                let name = location.describe(&meta.location);
                (name, read_entry(location, loc, meta).await)
            })
            .buffer_unordered(16)
            .collect()
            .await;
        let mut entries = Vec::with_capacity(read.len());
        for (name, entry) in read {
            match entry {
                Ok(e) => entries.push(e),
                Err(e) => {
                    obs::error("open");
                    warn!(file = %name, error = %e, "a Parquet file of the store cannot be used: it is left alone and not queried");
                }
            }
        }
        let replaced: HashSet<(i64, String)> = entries
            .iter()
            .flat_map(|e| match &e.kind {
                FileKind::Compacted { replaces } => {
                    replaces.iter().map(|n| (e.hour, n.clone())).collect()
                }
                FileKind::Flush { .. } => Vec::new(),
            })
            .collect();
        for e in entries {
            let path = e.path();
            if replaced.contains(&(e.hour, e.name.clone())) {
                info!(file = %location.describe(&path), "deleting a file that compaction merged into another before a restart");
                if let Err(err) = location.delete(&path).await {
                    warn!(error = %err, "cannot delete a merged file");
                }
                continue;
            }
            if let FileKind::Flush { through } = e.kind
                && e.epoch == checkpoint.epoch
                && through > checkpoint.through(table)
            {
                if in_wal.contains(&(table, through)) {
                    info!(file = %location.describe(&path), "deleting a file of a flush that did not finish: its rows are replayed from the WAL");
                    location.delete(&path).await?;
                    continue;
                }
                warn!(file = %location.describe(&path), "a flush did not finish and the WAL no longer holds its rows: keeping its file; some of its rows may appear twice");
            }
            state.add_file(e);
        }
    }
    Ok(())
}

fn spawn_tasks(inner: &Arc<Inner>, stop: &watch::Sender<bool>) -> Vec<JoinHandle<()>> {
    let tick =
        (inner.config.flush_interval / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
    let weak = Arc::downgrade(inner);
    let wanted = inner.flush_wanted.clone();
    let mut stop_rx = stop.subscribe();
    let flusher = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop_rx.changed() => break,
                () = wanted.notified() => {}
                () = tokio::time::sleep(tick) => {}
            }
            let Some(inner) = weak.upgrade() else { break };
            inner.flush_due().await;
            inner.reap_graveyard(false).await;
        }
    });
    let every = |d: Duration| {
        let mut i = tokio::time::interval_at(tokio::time::Instant::now() + d, d);
        i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        i
    };
    let weak = Arc::downgrade(inner);
    let mut stop_rx = stop.subscribe();
    let mut compaction = every(inner.config.compaction_interval);
    let mut retention = every(inner.config.retention.check_interval);
    let maintenance = tokio::spawn(async move {
        loop {
            let compact = tokio::select! {
                _ = stop_rx.changed() => break,
                _ = compaction.tick() => true,
                _ = retention.tick() => false,
            };
            let Some(inner) = weak.upgrade() else { break };
            let result = if compact {
                inner.compact(now_ns()).await
            } else {
                inner.enforce_retention(now_ns()).await
            };
            if let Err(e) = result {
                warn!(error = %e, "store maintenance failed; it is retried at its next interval");
            }
        }
    });
    vec![flusher, maintenance]
}

impl Inner {
    /// Refuses an append to a table whose memory is over its limit.
    fn check_backlog(&self, entries: &[(Table, RecordBatch)]) -> Result<(), StoreError> {
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
    fn append_blocking(
        &self,
        entries: Vec<(Table, RecordBatch)>,
    ) -> Result<(u64, Vec<(Table, usize)>), StoreError> {
        let mut wal = lock(&self.wal);
        let Some(wal) = wal.as_mut().filter(|_| !read(&self.state).closed) else {
            return Err(StoreError::Closed);
        };
        if self.faults.wal.load(Ordering::Relaxed) {
            obs::error("wal");
            return Err(injected("append to the WAL in", self.dir.join("wal")));
        }
        let refs: Vec<(Table, &RecordBatch)> = entries.iter().map(|(t, b)| (*t, b)).collect();
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
        let mut touched: Vec<Table> = Vec::with_capacity(4);
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

    /// What a query of `table` reads.
    pub(crate) fn snapshot(&self, table: Table, filter: Option<TimeFilter>) -> Snapshot {
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

    /// Flushes every table and cuts the WAL; the first error, if any.
    pub(crate) async fn flush_all(self: &Arc<Self>) -> Result<(), StoreError> {
        let mut first = None;
        for table in Table::ALL {
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
    async fn flush_due(self: &Arc<Self>) {
        let due: Vec<Table> = {
            let state = read(&self.state);
            let now = Instant::now();
            Table::ALL
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
    pub(crate) async fn flush_table(self: &Arc<Self>, table: Table) -> Result<bool, StoreError> {
        let mut pending = self.flush_locks[table_index(table)].lock().await;
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
        table: Table,
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
            if self.faults.flush.load(Ordering::Relaxed) {
                return Err(injected("write", self.location.describe(&path)));
            }
            self.location.put(&path, bytes).await?;
            entries.push(entry);
        }
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

/// Splits a flush's rows by hour, sorts each hour and encodes it
/// (blocking).
fn build_flush_files(
    table: Table,
    batches: &[Arc<MemBatch>],
    through: Lsn,
    epoch: u64,
) -> Result<Vec<(FileEntry, Vec<u8>)>, StoreError> {
    let mut hours: BTreeMap<i64, (Vec<RecordBatch>, Lsn, Lsn)> = BTreeMap::new();
    for m in batches {
        let parts = split_by_hour(table, &m.batch, m.arrival_ns)
            .map_err(|e| StoreError::rows("split by hour", table, e))?;
        for (hour, part) in parts {
            let e = hours.entry(hour).or_insert((Vec::new(), Lsn::MAX, 0));
            e.0.push(part);
            e.1 = e.1.min(m.lsn);
            e.2 = e.2.max(m.lsn);
        }
    }
    let mut out = Vec::with_capacity(hours.len());
    for (hour, (parts, lsn_min, lsn_max)) in hours {
        let rows = sorted(table, &parts).map_err(|e| StoreError::rows("sort", table, e))?;
        let mut entry = FileEntry {
            table,
            hour,
            name: flush_file_name(through, epoch),
            size: 0,
            rows: rows.num_rows() as u64,
            time: time_range(table, &rows),
            lsn: (lsn_min, lsn_max),
            epoch,
            kind: FileKind::Flush { through },
        };
        let bytes = encode(table, &rows, entry.key_values())
            .map_err(|e| StoreError::parquet("encode", entry.path(), e))?;
        entry.size = bytes.len() as u64;
        out.push((entry, bytes));
    }
    Ok(out)
}
