//! Failures tests can switch on: a full disk under the WAL, under the
//! Parquet files, or under the checkpoint.
//!
//! Compiled only into the crate's unit tests and into builds with the
//! `fault-injection` feature: a release build has none of it.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use crate::error::StoreError;

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

/// The error an injected fault stands for: a full disk.
pub(crate) fn injected(what: &'static str, path: impl Into<PathBuf>) -> StoreError {
    StoreError::io(
        what,
        path,
        std::io::Error::new(std::io::ErrorKind::StorageFull, "injected failure"),
    )
}
