//! Opening a store: what survived the last run brought back.
//!
//! The WAL is read (cut at any damage, each damaged segment logged and
//! counted), the Parquet files' footers read, the checkpoint chosen, the
//! index rebuilt from the footers (finishing what a crash interrupted:
//! temporary files, merged files, flushes past the checkpoint), and the
//! WAL records not yet in Parquet replayed into memory. Partitions that
//! expired while the store was down are removed before any query can see
//! them.
//!
//! # A lost checkpoint
//!
//! When the checkpoint is missing or unusable and the WAL holds records,
//! it is rebuilt from the files' metadata, so that no row already in
//! Parquet is replayed again. The rule, per table:
//!
//! * flushes of a table run one at a time, each taking every row of the
//!   table up to its `through` LSN, and a failed flush is repeated exactly:
//!   so only the newest flush (the highest `through`) can have left fewer
//!   files than it meant to write (the process stopped in the middle);
//! * that flush is complete when all the files it wrote (`weir.flush.files`)
//!   are there, or when compaction merged one of them (compaction only
//!   merges files of finished flushes; a compacted file records the highest
//!   `through` whose rows it holds);
//! * the table is in Parquet through the highest `through` of its files,
//!   leaving out the newest flush when it is not complete; a WAL record of
//!   the table at or below that LSN is not replayed;
//! * the rebuilt checkpoint takes the epoch of the newest flushed file, so
//!   an incomplete flush is then undone like any flush past the checkpoint
//!   (its files deleted, its rows replayed from the WAL).
//!
//! This holds because LSNs never repeat across the files: when the store
//! opens, the WAL's numbering is moved past every LSN the checkpoint or any
//! Parquet file names, even when the WAL directory was deleted and started
//! again from 1. (Files written by a Weir without that rule, from a WAL
//! directory that was deleted since, could be mistaken; so could files
//! without `weir.flush.files`, which count as complete.)

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
    for d in &report.damage {
        let copy = d
            .copy
            .as_ref()
            .map_or_else(|| "none".to_string(), |c| c.display().to_string());
        warn!(
            segment = %d.segment.display(),
            offset = d.offset,
            cut_bytes = d.cut_bytes,
            kept_records = d.kept_records,
            lost_records = d.lost_records,
            copy = %copy,
            why = %d.why,
            "a WAL segment is damaged: the records before the damage are replayed, the rest of the segment is cut; {} record(s) are lost as far as can be told; the segment as found is kept at {copy} for inspection (delete it when done)",
            d.lost_records
        );
    }
    obs::wal_damage(report.damage.len(), report.lost_records());
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
    let found = read_files(&location).await?;
    let checkpoint = initial_checkpoint(&saved, &records, &found);
    if saved.as_ref().ok() != Some(&Some(checkpoint)) {
        let cp = checkpoint;
        let cp_dir = dir.clone();
        blocking("save the checkpoint", move || cp.save(&cp_dir)).await?;
    }
    let mut state = State::default();
    index_files(&location, &checkpoint, &records, found, &mut state).await?;
    // A WAL cut short (damage, or a tail lost with `fsync = "never"`), or
    // deleted and started again, may number below LSNs the checkpoint or
    // the files already hold: new batches must not get those LSNs, or a
    // replay would take them as flushed.
    let covered = Signal::ALL
        .into_iter()
        .map(|t| {
            let files = state.table(t).files.values().flatten();
            let in_files = files.map(|f| f.held_through().max(f.lsn.1)).max();
            checkpoint.through(t).max(in_files.unwrap_or(0))
        })
        .max()
        .unwrap_or(0);
    if covered >= wal.next_lsn() {
        wal.skip_through(covered)?;
    }
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
/// Parquet; without one, it is rebuilt from the files (`found`, per table
/// in [`Signal::ALL`] order): see the [module documentation](self).
fn initial_checkpoint(
    saved: &Result<Option<Checkpoint>, String>,
    records: &[WalRecord],
    found: &[Vec<FileEntry>],
) -> Checkpoint {
    if records.is_empty() {
        return Checkpoint::fresh();
    }
    let why = match saved {
        Ok(Some(cp)) => return *cp,
        Ok(None) => "there is none".to_string(),
        Err(e) => e.clone(),
    };
    let cp = rebuilt_checkpoint(found);
    let through = Signal::ALL
        .into_iter()
        .map(|t| format!("{t} {}", cp.through(t)))
        .collect::<Vec<_>>()
        .join(", ");
    warn!(
        error = %why,
        %through,
        "the store's checkpoint is lost but its WAL holds records: rebuilt from the Parquet files' metadata; WAL records already in Parquet are not replayed"
    );
    cp
}

/// The checkpoint the files `found` (per table in [`Signal::ALL`] order)
/// imply, by the rule of the [module documentation](self).
fn rebuilt_checkpoint(found: &[Vec<FileEntry>]) -> Checkpoint {
    let mut cp = Checkpoint::fresh();
    let mut newest: Option<(Lsn, u64)> = None;
    for (table, files) in Signal::ALL.into_iter().zip(found) {
        let flushes = files.iter().filter_map(|f| match f.kind {
            FileKind::Flush { through, files } => Some((through, f.epoch, files)),
            FileKind::Compacted { .. } => None,
        });
        let Some(top) = flushes.max_by_key(|(through, epoch, _)| (*through, *epoch)) else {
            // Compacted files only: every flush they hold had finished.
            let held = files.iter().map(FileEntry::held_through).max();
            cp.set(table, held.unwrap_or(0));
            continue;
        };
        let (top_through, top_epoch, top_files) = top;
        newest = newest.max(Some((top_through, top_epoch)));
        let of_top = |f: &FileEntry| {
            f.epoch == top_epoch
                && matches!(f.kind, FileKind::Flush { through, .. } if through == top_through)
        };
        let present = files.iter().filter(|f| of_top(f)).count();
        let merged = files.iter().any(|f| {
            matches!(f.kind, FileKind::Compacted { .. }) && f.held_through() >= top_through
        });
        let complete = top_files.is_none_or(|n| present >= n as usize) || merged;
        let held = files
            .iter()
            .filter(|f| complete || !of_top(f))
            .map(FileEntry::held_through)
            .max();
        cp.set(table, held.unwrap_or(0));
    }
    if let Some((_, epoch)) = newest {
        cp.epoch = epoch;
    }
    cp
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

/// Reads the index entries of every table's files from their footers
/// (per table, in [`Signal::ALL`] order), deleting the temporary files of
/// unfinished writes. A file whose footer cannot be read is left alone and
/// not queried.
async fn read_files(location: &Location) -> Result<Vec<Vec<FileEntry>>, StoreError> {
    let mut found = Vec::with_capacity(Signal::ALL.len());
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
        found.push(entries);
    }
    Ok(found)
}

/// Builds the index from the entries `found` (per table, in
/// [`Signal::ALL`] order), and finishes what a crash interrupted:
///
/// * files a compaction merged (named in the merged file's metadata) are
///   deleted;
/// * files of a flush that did not finish (this WAL epoch, an LSN past the
///   checkpoint) are deleted when the WAL still holds their rows, which
///   are replayed; otherwise they are kept.
async fn index_files(
    location: &Location,
    checkpoint: &Checkpoint,
    records: &[WalRecord],
    found: Vec<Vec<FileEntry>>,
    state: &mut State,
) -> Result<(), StoreError> {
    let in_wal: HashSet<(Signal, Lsn)> = records.iter().map(|r| (r.table, r.lsn)).collect();
    for (table, entries) in Signal::ALL.into_iter().zip(found) {
        let replaced: HashSet<(i64, String)> = entries
            .iter()
            .flat_map(|e| match &e.kind {
                FileKind::Compacted { replaces, .. } => {
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
            if let FileKind::Flush { through, .. } = e.kind
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
