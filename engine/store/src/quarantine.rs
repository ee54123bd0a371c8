//! Damaged Parquet files: found when a read fails, moved aside, reported.
//!
//! When a query or a compaction fails while reading a table's files, the
//! files it was reading are checked: each is fetched whole and every column
//! of every row decoded. A file that does not decode (a corrupt data page,
//! a checksum or decompression error), or that holds another number of
//! rows than its footer says, is damaged:
//!
//! 1. it leaves the table's index in one step, so no query planned from
//!    then on reads it, and compaction no longer picks it;
//! 2. it is moved to `quarantine/<table>/date=YYYY-MM-DD/hour=HH/<name>`
//!    under the tables' root (by default `<path>/tables/quarantine/...`;
//!    `<name>.<n>` if that name is taken), where the store never reads and
//!    never deletes: it is kept for inspection or repair;
//! 3. an error names the file, what is wrong and where it went, and
//!    `weir_store_quarantined_files_total{table}` counts it;
//! 4. the query (or compaction) that met it fails with
//!    [`StoreError::Damaged`], saying so; the next one runs without it.
//!
//! Why fail that one query rather than quietly answer without the file: an
//! answer missing rows must not look like a complete one. From then on the
//! loss is known (the log, the metric) instead of hidden in a result, and
//! every later query and compaction succeeds.
//!
//! A file that cannot be fetched at all (the object store unreachable, a
//! permission) is not damaged: nothing is moved, and the original error
//! stands. Checking costs one read of the files the failed read touched;
//! it happens only after a failure.

use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;

use bytes::Bytes;
use object_store::ObjectStoreExt;
use object_store::path::Path as ObjPath;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use tracing::error;
use weir_core::Signal;

use crate::error::StoreError;
use crate::inner::Inner;
use crate::layout::FileEntry;
use crate::local;
use crate::location::Location;
use crate::obs;

/// The directory of the quarantine, under the tables' root.
pub(crate) const DIR: &str = "quarantine";

/// What checking a file found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Check {
    /// Every row decodes.
    Sound,
    /// It does not decode: why.
    Damaged(String),
    /// It could not be fetched; nothing is known about its bytes.
    Unreadable,
}

impl Inner {
    /// Checks `files` of `table` after a read of them failed, quarantines
    /// the damaged ones (see the [module documentation](self)), and returns
    /// the error to report instead of the read's, if any was damaged.
    pub(crate) async fn quarantine_damaged(
        &self,
        table: Signal,
        files: &[Arc<FileEntry>],
    ) -> Option<StoreError> {
        let mut damaged = Vec::new();
        for file in files {
            let Check::Damaged(why) = check(&self.location, file).await else {
                continue;
            };
            let name = self.location.describe(&file.path());
            let moved = self.quarantine(file).await;
            let text = match &moved {
                Ok(Some(to)) => format!("`{name}` ({why}) was moved to `{to}`"),
                Ok(None) => format!("`{name}` ({why}) was already taken out of the table"),
                Err(e) => {
                    format!("`{name}` ({why}) was taken out of the table, but not moved: {e}")
                }
            };
            damaged.push(text);
        }
        (!damaged.is_empty()).then_some(StoreError::Damaged {
            table,
            files: damaged,
        })
    }

    /// Takes a damaged file out of the index and moves it to the
    /// quarantine. `Ok(None)`: it was no longer in the index (quarantined
    /// by another reader, merged or expired meanwhile), and is left alone.
    async fn quarantine(&self, file: &FileEntry) -> Result<Option<String>, StoreError> {
        let removed = {
            let mut state = self.state_mut();
            let removed = state.remove_file(file);
            obs::files(file.table, state.table(file.table).file_count());
            removed
        };
        if !removed {
            return Ok(None);
        }
        obs::quarantined(file.table);
        let path = file.path();
        let name = self.location.describe(&path);
        match self.location.quarantine(&path).await {
            Ok(to) => {
                error!(file = %name, quarantined_to = %to, rows = file.rows,
                    "a Parquet file of the store is damaged: it no longer answers queries and was moved to quarantine; its rows are lost unless it can be repaired");
                Ok(Some(to))
            }
            Err(e) => {
                error!(file = %name, error = %e,
                    "a Parquet file of the store is damaged: it no longer answers queries, but could not be moved to quarantine (it is read again after a restart)");
                Err(e)
            }
        }
    }
}

impl Location {
    /// Moves the file at `path` to the quarantine (same relative path
    /// under [`DIR`], never over another file); returns where it went, as
    /// the user knows it.
    pub(crate) async fn quarantine(&self, path: &ObjPath) -> Result<String, StoreError> {
        for n in 0u32..1000 {
            let to = match n {
                0 => ObjPath::from(format!("{DIR}/{path}")),
                n => ObjPath::from(format!("{DIR}/{path}.{n}")),
            };
            match self.local_path(&to) {
                Some(dest) => {
                    let dest = dest?;
                    if dest.exists() {
                        continue;
                    }
                    let src = self.local_path(path).ok_or_else(|| {
                        StoreError::Internal("a local store with a remote path".into())
                    })??;
                    let to_name = self.describe(&to);
                    tokio::task::spawn_blocking(move || move_durably(&src, &dest))
                        .await
                        .map_err(|e| StoreError::Internal(format!("a file move failed: {e}")))??;
                    return Ok(to_name);
                }
                None => match self.store.head(&to).await {
                    Ok(_) => continue,
                    Err(object_store::Error::NotFound { .. }) => {
                        self.store.rename(path, &to).await.map_err(|e| {
                            StoreError::object_store("move to quarantine", self.describe(path), e)
                        })?;
                        return Ok(self.describe(&to));
                    }
                    Err(e) => {
                        return Err(StoreError::object_store("look up", self.describe(&to), e));
                    }
                },
            }
        }
        Err(StoreError::Internal(format!(
            "no free name in the quarantine for `{}`",
            self.describe(path)
        )))
    }
}

/// Renames `src` to `dest` (blocking), creating `dest`'s directory, and
/// syncs both directories.
fn move_durably(src: &std::path::Path, dest: &std::path::Path) -> Result<(), StoreError> {
    let io = |what, path: &std::path::Path| {
        let path = path.to_path_buf();
        move |e| StoreError::io(what, path, e)
    };
    if let Some(dir) = dest.parent() {
        local::create_dir_durably(dir).map_err(io("create the directory", dir))?;
    }
    std::fs::rename(src, dest).map_err(io("move to quarantine", src))?;
    for dir in [src.parent(), dest.parent()].into_iter().flatten() {
        local::sync_dir(dir).map_err(io("sync the directory", dir))?;
    }
    Ok(())
}

/// Fetches `file` whole and decodes every row of it.
pub(crate) async fn check(location: &Location, file: &FileEntry) -> Check {
    let fetched = match location.store.get(&file.path()).await {
        Ok(found) => found.bytes().await,
        Err(e) => Err(e),
    };
    let Ok(bytes) = fetched else {
        return Check::Unreadable;
    };
    let rows = file.rows;
    tokio::task::spawn_blocking(move || decode_all(bytes, rows))
        .await
        .unwrap_or_else(|e| Check::Damaged(format!("its check failed: {e}")))
}

/// Decodes every row of the Parquet file `bytes`, which should hold `rows`
/// (blocking). A decoder panic on damaged bytes is damage.
pub(crate) fn decode_all(bytes: Bytes, rows: u64) -> Check {
    let decoded = panic::catch_unwind(AssertUnwindSafe(|| -> Result<u64, String> {
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
            .and_then(|b| b.build())
            .map_err(|e| e.to_string())?;
        let mut n = 0u64;
        for batch in reader {
            n += batch.map_err(|e| e.to_string())?.num_rows() as u64;
        }
        Ok(n)
    }));
    match decoded {
        Ok(Ok(n)) if n == rows => Check::Sound,
        Ok(Ok(n)) => Check::Damaged(format!("it holds {n} rows where its footer says {rows}")),
        Ok(Err(e)) => Check::Damaged(format!("it does not decode: {e}")),
        Err(_) => Check::Damaged("its decoder panicked".into()),
    }
}
