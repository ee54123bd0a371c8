//! What can go wrong in the write-ahead log.

use std::io;
use std::path::PathBuf;

use arrow::error::ArrowError;
use weir_core::Signal;

/// A write-ahead log operation failed.
///
/// Damage found in the log while opening it is not an error: it is cut and
/// described in [`super::ReplayReport::problem`]. Errors are what stops the
/// log from working: the disk refusing a read or a write, another process
/// holding the directory, a log written by a newer Weir, or a batch that
/// cannot be encoded.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// The operating system refused an operation on a WAL file.
    #[error(
        "could not {action} '{path}': {source}; check that the WAL directory is on a writable \
         disk with free space (`[store] dir` in the pipeline file)",
        path = path.display()
    )]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done, e.g. "write to WAL segment".
        action: &'static str,
        /// The operating system's error.
        source: io::Error,
    },
    /// Another process (or another `Wal` in this one) has the directory open.
    #[error(
        "the WAL directory '{path}' is in use by another Weir process; stop it, or give this one \
         another `[store] dir`",
        path = dir.display()
    )]
    Locked {
        /// The WAL directory.
        dir: PathBuf,
    },
    /// A segment was written by a newer version of Weir.
    #[error(
        "WAL segment '{path}' has format version {version}, newer than the {supported} this Weir \
         reads; run the Weir version that wrote it (it replays the log and flushes it to Parquet), \
         or move the directory away",
        path = path.display()
    )]
    UnsupportedVersion {
        /// The segment.
        path: PathBuf,
        /// The version in its header.
        version: u32,
        /// The version this code reads.
        supported: u32,
    },
    /// A batch could not be encoded as Arrow IPC; nothing of its group was
    /// written.
    #[error(
        "could not encode a batch of table `{table}` for the WAL: {source}; nothing of this write \
         was logged (this is a bug in Weir or in the component that built the batch, please \
         report it)"
    )]
    Encode {
        /// The batch's table.
        table: Signal,
        /// Arrow's error.
        source: ArrowError,
    },
    /// One batch is larger than a WAL record can hold.
    #[error(
        "a batch of table `{table}` takes {bytes} bytes in the WAL, more than a record holds \
         (4 GiB); send smaller batches"
    )]
    RecordTooLarge {
        /// The batch's table.
        table: Signal,
        /// Its encoded size.
        bytes: usize,
    },
    /// Every log sequence number has been used.
    #[error(
        "the WAL in '{path}' ran out of log sequence numbers; flush the store and move the WAL \
         directory away",
        path = dir.display()
    )]
    LsnExhausted {
        /// The WAL directory.
        dir: PathBuf,
    },
}

impl WalError {
    /// An I/O error on `path` while doing `action`.
    pub(super) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        WalError::Io {
            path: path.into(),
            action,
            source,
        }
    }
}
