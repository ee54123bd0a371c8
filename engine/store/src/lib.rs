//! Weir's embedded store: the default sink, and what the SQL endpoints read.
//!
//! ```text
//!  StoreSink ──append──▶ Wal (local disk, checksummed, fsync per policy) ── ack
//!                  └───▶ in-memory rows per table (queryable at once)
//!  flush (size / age) ─▶ Parquet files <table>/date=YYYY-MM-DD/hour=HH/*.parquet
//!                        (object_store: local disk or s3), then the WAL is cut
//!  compaction ─────────▶ small files of a partition merged
//!  retention ──────────▶ whole partitions older than the table's retention deleted
//!  TableProvider ──────▶ memory + Parquet, with projection, time-filter and
//!                        limit pushdown, one per table
//! ```
//!
//! Tables: one per [`weir_core::Signal`], named as it is: `logs`, `spans`,
//! `metrics` (the schemas of [`weir_core::schema`]) and `alerts`.
//!
//! How a batch moves:
//!
//! 1. [`Store::append`] checks each batch against its table's schema,
//!    refuses the rows whose time is outside what the table accepts
//!    (`admit`: `[now - retention, now + max_future]`, reported back as
//!    [`RefusedRows`]), appends the rest to the WAL with one group commit, and, under the
//!    same lock, adds them to the table's rows in memory, tagged with their
//!    log sequence numbers (LSN). Only then does it return: the caller may
//!    acknowledge.
//! 2. The flusher (`flush`, run by `tasks`) writes a table's memory rows
//!    to Parquet when they exceed `flush_size` or the oldest waited
//!    `flush_interval`: one sort cuts them into hours (`split`), then one
//!    file per hour (`encode` says how), written
//!    durably; then the checkpoint
//!    (`checkpoint`) records that the table is in Parquet up to that LSN;
//!    then, in one step for readers, the rows leave memory and the files
//!    join the index (`state`); then the WAL is cut below the oldest row
//!    still in memory in any table.
//! 3. On restart (`recovery`), the index is rebuilt from the files' footers
//!    (`layout`), and the WAL records past each table's checkpoint are
//!    replayed into memory: a record already in Parquet is not loaded
//!    twice. A lost checkpoint is rebuilt from the files' metadata, by a
//!    rule `recovery` states, so that this still holds. A damaged WAL
//!    segment is copied aside before it is cut; the loss is logged and
//!    counted.
//! 4. Queries read memory and files through one [`StoreTable`] per table
//!    (`provider`); compaction and retention (`maintenance`) rewrite
//!    and delete files in the background. A file that does not decode when
//!    read is quarantined (`quarantine`, watched for by `guard`): the query
//!    or compaction that met it fails once, saying so; the next ones run
//!    without it.
//!
//! The store's own metrics (`weir_store_*`) are declared in [`obs`].
//!
//! `docs/store.md` describes the layout on disk and the guarantees.

/// The write-ahead log (its own crate, shared with the sinks' disk queues).
pub use weir_wal as wal;

mod admit;
mod append;
mod checkpoint;
mod encode;
mod error;
#[cfg(any(test, feature = "fault-injection"))]
mod faults;
mod flush;
mod guard;
mod inner;
mod layout;
mod local;
mod location;
mod maintenance;
pub mod obs;
mod partition;
mod provider;
mod quarantine;
mod recovery;
mod sink;
mod split;
mod state;
mod store;
mod tables;
mod tasks;
#[cfg(test)]
mod testdata;
#[cfg(test)]
mod tests;
mod tuning;

pub use admit::RefusedRows;
pub use error::StoreError;
pub use provider::StoreTable;
pub use sink::{StoreSink, StoreSinkConfig};
pub use store::Store;
