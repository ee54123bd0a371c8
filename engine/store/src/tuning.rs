//! [`Tuning`]: the store's settings that are not part of `[store]`, fixed
//! in production and changed by tests.

use std::time::Duration;

use weir_config::StoreConfig;

#[cfg(test)]
use crate::location::Location;

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
