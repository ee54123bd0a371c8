//! What can go wrong in the store, and what to do about it.

use std::io;
use std::path::PathBuf;

use weir_core::Signal;

use crate::wal::WalError;

/// An error of the store. Each message names the file, directory or URL
/// involved and says what to do next.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The `[store]` table cannot be used as written (the user's
    /// configuration).
    #[error("invalid [store] configuration: {0}")]
    Config(String),
    /// A local file or directory could not be read or written.
    #[error("cannot {what} `{}`: {source}{}", path.display(), io_hint(source))]
    Io {
        /// What the store was doing ("write", "create the directory", ...).
        what: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The write-ahead log failed; nothing of the write that got this error
    /// was acknowledged.
    #[error("the write-ahead log failed: {0}")]
    Wal(#[from] WalError),
    /// The object store holding the Parquet tables failed.
    #[error(
        "cannot {what} `{location}` in the table store: {source} (check that the `[store] url` is reachable and writable, and its credentials)"
    )]
    ObjectStore {
        /// What the store was doing.
        what: &'static str,
        /// The object's path or the store's URL.
        location: String,
        /// The object store's error.
        #[source]
        source: object_store::Error,
    },
    /// A Parquet file could not be written or read.
    #[error("cannot {what} the Parquet file `{location}`: {source}")]
    Parquet {
        /// What the store was doing.
        what: &'static str,
        /// The file.
        location: String,
        /// Parquet's error.
        #[source]
        source: parquet::errors::ParquetError,
    },
    /// Rows could not be reorganised (sorted, split by hour) or merged.
    #[error("cannot {what} rows of the `{table}` table: {message}")]
    Rows {
        /// What the store was doing.
        what: &'static str,
        /// The table.
        table: Signal,
        /// Arrow's or DataFusion's error.
        message: String,
    },
    /// A batch handed to [`crate::Store::append`] does not have its table's
    /// schema: a bug in the component that made it.
    #[error(
        "a batch for the `{table}` table does not fit its schema: {message} (this is a bug in the component that produced it)"
    )]
    InvalidBatch {
        /// The table.
        table: Signal,
        /// What does not fit.
        message: String,
    },
    /// Too many rows of a table wait in memory because Parquet files cannot
    /// be written fast enough (or at all): new writes are refused until the
    /// flushes catch up, so that memory stays bounded.
    #[error(
        "the `{table}` table holds {held} bytes not yet written to Parquet (limit {limit}): writing Parquet files is failing or too slow, see the earlier errors; the client should retry later"
    )]
    Backlog {
        /// The table.
        table: Signal,
        /// The bytes waiting in memory.
        held: usize,
        /// The most that may wait.
        limit: usize,
    },
    /// Parquet files of a table did not decode while a query or a
    /// compaction read them: they were moved to the quarantine directory
    /// and are no longer read. The operation that found them failed; the
    /// next one runs without them.
    #[error(
        "the `{table}` table's Parquet data is damaged: {}; the query or compaction that met it failed, run it again (it runs without those rows, which are lost unless the quarantined file can be repaired)",
        files.join("; ")
    )]
    Damaged {
        /// The table.
        table: Signal,
        /// Per file: which, what is wrong, where it went.
        files: Vec<String>,
    },
    /// The store has been closed.
    #[error("the store is closed")]
    Closed,
    /// A bug in Weir.
    #[error("internal error in the store (this is a bug in Weir, please report it): {0}")]
    Internal(String),
}

impl StoreError {
    /// An [`StoreError::Io`] error.
    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        StoreError::Io {
            what,
            path: path.into(),
            source,
        }
    }

    /// An [`StoreError::ObjectStore`] error.
    pub(crate) fn object_store(
        what: &'static str,
        location: impl ToString,
        source: object_store::Error,
    ) -> Self {
        StoreError::ObjectStore {
            what,
            location: location.to_string(),
            source,
        }
    }

    /// An [`StoreError::Parquet`] error.
    pub(crate) fn parquet(
        what: &'static str,
        location: impl ToString,
        source: parquet::errors::ParquetError,
    ) -> Self {
        StoreError::Parquet {
            what,
            location: location.to_string(),
            source,
        }
    }

    /// An [`StoreError::Rows`] error.
    pub(crate) fn rows(what: &'static str, table: Signal, message: impl ToString) -> Self {
        StoreError::Rows {
            what,
            table,
            message: message.to_string(),
        }
    }
}

/// What to do about an I/O error, when the kind says it.
fn io_hint(e: &io::Error) -> &'static str {
    match e.kind() {
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => {
            " (the disk is full: free space or move `[store] path` to a larger disk)"
        }
        io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => {
            " (give Weir write access to it, or choose another `[store] path`)"
        }
        io::ErrorKind::NotADirectory | io::ErrorKind::AlreadyExists => {
            " (a file is in the way where a directory is needed: move it, or choose another `[store] path`)"
        }
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guarantees: a disk-full error names the path and tells the user to
    /// free space.
    #[test]
    fn disk_full_says_what_to_do() {
        let e = StoreError::io(
            "write",
            "/data/x.parquet",
            io::Error::new(io::ErrorKind::StorageFull, "no space left on device"),
        );
        let text = e.to_string();
        assert!(text.contains("/data/x.parquet"), "{text}");
        assert!(text.contains("free space"), "{text}");
    }
}
