//! Opening a store: what survived the last run brought back.
//!
//! The WAL is read (cut at any damage), the checkpoint chosen, the index
//! of Parquet files rebuilt from their footers (finishing what a crash
//! interrupted: temporary files, merged files, flushes past the
//! checkpoint), and the WAL records not yet in Parquet replayed into
//! memory. Partitions that expired while the store was down are removed
//! before any query can see them.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use object_store::ObjectMeta;
use object_store::path::Path as ObjPath;
use parquet::arrow::async_reader::MetadataFetch;
use parquet::file::metadata::ParquetMetaDataReader;
use tracing::{info, warn};
use weir_config::StoreConfig;
use weir_core::Signal;

use crate::checkpoint::Checkpoint;
use crate::encode::conform;
use crate::error::StoreError;
use crate::inner::{Inner, blocking};
use crate::layout::{FileEntry, FileKind, Listed, Located, classify};
use crate::location::Location;
use crate::obs;
use crate::partition::now_ns;
use crate::state::State;
use crate::tuning::Tuning;
use crate::wal::{Lsn, Wal, WalOptions, WalRecord};

/// Opens the WAL and the tables of `config`, rebuilds the index, replays
/// what is not yet in Parquet and applies retention: the insides of a
/// store ready to run (its background tasks not started).
pub(crate) async fn recover(
    config: &StoreConfig,
    tuning: Tuning,
) -> Result<Arc<Inner>, StoreError> {
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
    let (mut wal, records, report) = blocking("open the WAL", move || Ok(Wal::open(opts)?)).await?;
    wal.set_observer(Box::new(crate::obs::wal_event));
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
    let covered = Signal::ALL
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
    for table in Signal::ALL {
        let t = state.table(table);
        obs::memory_bytes(table, t.mem_bytes);
        obs::files(table, t.file_count());
    }
    obs::wal_bytes(wal.disk_bytes());
    let inner = Arc::new(Inner::new(
        location, dir, config, tuning, wal, state, checkpoint,
    ));
    // Partitions that expired while the store was down go before any
    // query can see them.
    inner.enforce_retention(now_ns()).await?;
    inner.reap_graveyard(true).await;
    Ok(inner)
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
    let in_wal: HashSet<(Signal, Lsn)> = records.iter().map(|r| (r.table, r.lsn)).collect();
    for table in Signal::ALL {
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
