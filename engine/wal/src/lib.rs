//! The write-ahead log: every batch the store accepts (or a sink queues) is
//! written here, and forced to disk per the fsync policy, before it is
//! acknowledged; on start the log is replayed to rebuild what was in memory.
//!
//! ```text
//! append(group) ──encode (Arrow IPC)──▶ one write ──▶ one fsync ──▶ Ok(lsns) ─▶ ack
//! open() ──▶ read every segment ──▶ check every record ──▶ cut a damaged tail ─▶ records
//! remove_through(lsn) ──▶ delete segments whose records are all in Parquet
//! ```
//!
//! # Guarantees
//!
//! * When [`Wal::append`] returns `Ok` with [`FsyncPolicy::Always`], the
//!   records are on disk (`fdatasync`; the directory is synced when a
//!   segment is created). With [`FsyncPolicy::Never`] they are in the
//!   operating system's cache: they survive the process being killed, not
//!   the machine losing power.
//! * A group of batches is one write and one fsync (group commit).
//! * Log sequence numbers ([`Lsn`]) start at 1 and strictly increase, across
//!   segment rolls and restarts, including after every segment was removed
//!   (the newest segment file always stays, empty if need be, to remember
//!   where numbering stands). A failed append uses up the LSNs it would have
//!   had, so LSNs may have gaps. After damage is cut, numbering resumes past
//!   every LSN the cut bytes could have held. A tail lost whole (a power cut
//!   with `fsync = "never"`) leaves no trace, so its LSNs can come again; a
//!   caller whose checkpoint names them calls [`Wal::skip_through`].
//! * Replay never panics (a decoder panic on damaged data is caught and
//!   treated as damage) and never drops a valid record that precedes damage.
//!
//! # Format (version 1)
//!
//! The directory holds segment files `<first-lsn, 20 digits>.wal`, which sort
//! in LSN order, and a `LOCK` file that one process at a time holds (an
//! advisory lock), so two processes never write the same log. All integers
//! are little-endian.
//!
//! ```text
//! segment := header record*
//! header  := "WEIRWAL1" version:u32=1 flags:u32=0 first_lsn:u64 crc:u32 reserved:u32   (32 bytes)
//!            crc = CRC-32 of the 24 bytes before it
//! record  := len:u32 crc:u32 payload[len] zero-padding to a multiple of 8
//!            crc = CRC-32 of the 4 length bytes, then the payload
//! payload := lsn:u64 table:u8 flags:u8 reserved[6] ipc
//! ipc     := Arrow IPC stream messages ([schema] dictionary* record-batch) then the
//!            8-byte IPC end-of-stream marker
//! ```
//!
//! `table` is [`Signal::id`]. The records of a segment have consecutive LSNs
//! starting at the header's `first_lsn`. Records start, and the IPC data in
//! them start, at multiples of 8 bytes (the IPC messages are written with
//! 8-byte alignment), so replayed batches point into the segment read from
//! disk (one aligned allocation per segment) without copies. The IPC data
//! are not compressed.
//!
//! ## One Arrow IPC stream per table per segment
//!
//! Writing the schema with every record would cost its encoding each time:
//! 6.5 KiB for `spans`, 2 % of a 512-span batch (318 KiB in the log) but 20 %
//! of a 50-span one, and the store gets many small batches. Instead the
//! records of one table in one segment form one IPC stream: the first
//! record (flag `1`, "new stream") carries the schema message, the following
//! ones only their dictionary and record-batch messages. Dictionaries are
//! re-sent whenever they differ from the previous batch's (Arrow's
//! "replacement" dictionaries, never deltas), so a batch only needs the
//! records before it in its own segment. A batch whose schema differs from
//! the stream's (another schema version, a processor's extra column) starts
//! a new stream for its table, again with flag `1`. A segment never depends
//! on another one.
//!
//! # Damage, and what replay does with it
//!
//! A crash can leave the last record half written; a disk can flip bits.
//! [`Wal::open`] reads each segment up to the first record that is not valid
//! (torn frame, length running past the end of the file, checksum mismatch,
//! unexpected LSN, unknown table, IPC data that do not decode), keeps the
//! records before it, truncates the file there and reports what it cut, where
//! and why in [`ReplayReport::problem`] and [`ReplayReport::damage`]. A
//! stored length is never trusted: the whole file is read first (its size is
//! known) and a length running past it is corruption, not an allocation.
//!
//! Before a segment is cut, the whole file as it was found is copied aside,
//! durably, as `<name>.corrupt` (`<name>.corrupt.1`, `.2`, ... when an
//! earlier copy has that name: a copy is never overwritten), so the records
//! after the damage can still be inspected or salvaged; the report says
//! where. A tail of zeros (a preallocated or never-written end) is cut
//! without a copy: it holds nothing. The copies are not read again and not
//! removed: deleting them is the operator's call. The report also says how
//! many records were lost, as far as can be told: the records after the
//! damage are found again by their frames (aligned, checksummed, with an
//! LSN the segment could hold), and every LSN from the damaged record to
//! the last one found is counted ([`Damage::lost_records`]).
//!
//! Damage in one segment does not condemn the segments after it: each
//! segment stands alone (its own IPC streams, its first LSN in its header),
//! so later valid segments are kept and replayed, and the LSN gap is visible
//! in the report. Their records were acknowledged; dropping them would turn
//! a local fault into a larger loss. (Damage in a segment that is not the
//! last can only come from the disk, or from a failed write whose cleanup
//! also failed; see below.)
//!
//! Segments whose header is unusable: a file shorter than a header (its
//! creation was interrupted, e.g. zero bytes) is removed; a corrupt header
//! is renamed `<name>.corrupt` (or `.corrupt.<n>`) for inspection and
//! skipped; a header of a newer format version stops [`Wal::open`] with
//! [`WalError::UnsupportedVersion`] rather than touch a log it cannot read.
//!
//! Open changes nothing on disk until every segment was read. Then, if the
//! numbering must resume past what the surviving files show, an empty
//! segment named for the next LSN is created first; only then are tails cut
//! and files removed, so a crash in the middle of the repair loses nothing
//! more and forgets no LSN.
//!
//! # Failed writes
//!
//! When a write or fsync fails (disk full, I/O error), the append returns the
//! error (the caller fails the batches; OTLP clients retry) and the segment
//! is closed: its file is cut back to the end of the last good record and no
//! longer written; the next append starts a new segment. If the cut itself
//! fails, the partial bytes stay at the end of the closed segment, and replay
//! cuts them. Records of a failed group that did reach the disk whole may be
//! replayed (they were not acknowledged, and their sender retries: at least
//! once). After a failed fsync the file's state in the page cache is
//! unknown, which is why a new file is used rather than the same one.
//!
//! # Removal
//!
//! [`Wal::remove_through`] deletes whole segments, oldest first, whose every
//! record has an LSN at or below the one given (the caller has them durably
//! in Parquet). The segment being written goes too when it is fully covered:
//! a new, empty segment takes its place first.

mod error;
mod format;
mod open;
mod replay;

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use arrow::buffer::Buffer;
use arrow::datatypes::SchemaRef;
use arrow::ipc::MetadataVersion;
use arrow::ipc::writer::{IpcWriteOptions, StreamEncoder};
use arrow::record_batch::RecordBatch;
use tracing::{debug, warn};
use weir_core::Signal;

pub use error::WalError;
/// When appended records are forced to disk (the `[store] fsync` setting).
pub use weir_config::FsyncPolicy;

use format::{FLAG_NEW_STREAM, HEADER_LEN, IPC_END};

/// A log sequence number: one per appended batch, starting at 1, strictly
/// increasing for the life of the log directory.
pub type Lsn = u64;

/// The default [`WalOptions::segment_size`]: 64 MiB.
pub const DEFAULT_SEGMENT_SIZE: u64 = 64 * 1024 * 1024;

/// The name of the lock file in the WAL directory.
const LOCK_FILE: &str = "LOCK";

/// The write buffer is released after a group larger than this.
const KEEP_BUFFER: usize = 16 * 1024 * 1024;

/// How to open a [`Wal`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalOptions {
    /// The directory of the log; created when missing. One process at a time.
    pub dir: PathBuf,
    /// When appended records are forced to disk.
    pub fsync: FsyncPolicy,
    /// A segment is closed, and the next append starts a new file, once it
    /// holds this many bytes. A group of batches is never split, so a segment
    /// can exceed it by one group. Default [`DEFAULT_SEGMENT_SIZE`].
    pub segment_size: u64,
}

impl WalOptions {
    /// Options for a log in `dir`, with the default fsync policy (`always`)
    /// and segment size.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        WalOptions {
            dir: dir.into(),
            fsync: FsyncPolicy::default(),
            segment_size: DEFAULT_SEGMENT_SIZE,
        }
    }
}

/// One batch read back from the log.
#[derive(Debug, Clone, PartialEq)]
pub struct WalRecord {
    /// The LSN it was given when appended.
    pub lsn: Lsn,
    /// Its table.
    pub table: Signal,
    /// The batch, as appended.
    pub batch: RecordBatch,
}

/// A record [`Wal::open_within`] read and checked, then let go of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordInfo {
    /// Its LSN.
    pub lsn: Lsn,
    /// Its table.
    pub table: Signal,
    /// The rows of its batch.
    pub rows: usize,
    /// The bytes its batch's arrays took.
    pub bytes: u64,
}

impl RecordInfo {
    fn of(r: &WalRecord) -> Self {
        RecordInfo {
            lsn: r.lsn,
            table: r.table,
            rows: r.batch.num_rows(),
            bytes: batch_bytes(&r.batch),
        }
    }
}

/// The bytes of `batch`'s own rows: its arrays' slices. A batch replayed
/// or read back from the log points into the buffer of its whole segment
/// (and a slice of a batch into the whole batch's buffers), which
/// `get_array_memory_size` would count.
pub fn batch_bytes(batch: &RecordBatch) -> u64 {
    batch
        .columns()
        .iter()
        .map(|c| {
            c.to_data()
                .get_slice_memory_size()
                .unwrap_or_else(|_| c.get_array_memory_size())
        })
        .sum::<usize>() as u64
}

/// The records of one segment read again by [`Wal::read_back`].
#[derive(Debug, Clone, PartialEq)]
pub struct ReadBack {
    /// Its records, in LSN order, up to any damage.
    pub records: Vec<WalRecord>,
    /// The LSN of the segment's last record: what it held runs through
    /// this one, whether or not it could be read.
    pub through: Lsn,
    /// Damage found in it: which file, where and why. The records from
    /// there through [`ReadBack::through`] could not be read.
    pub problem: Option<String>,
}

/// What [`Wal::open`] found in the log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// Records replayed.
    pub records: usize,
    /// Segment files in the log after replay.
    pub segments: usize,
    /// Bytes cut from the log: damaged tails truncated, unusable segment
    /// files removed or set aside.
    pub truncated_bytes: u64,
    /// What was cut and where (file, offset, why), one sentence per damaged
    /// file joined by "; ". `None` when the log was intact.
    pub problem: Option<String>,
    /// Each damaged segment found, in LSN order: the same as `problem`, as
    /// fields (for the owner's log lines and metrics).
    pub damage: Vec<Damage>,
}

impl ReplayReport {
    /// Records lost to damage, as far as can be told (see
    /// [`Damage::lost_records`]).
    pub fn lost_records(&self) -> u64 {
        self.damage.iter().map(|d| d.lost_records).sum()
    }
}

/// One damaged segment [`Wal::open`] found, cut or set aside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// The segment file.
    pub segment: PathBuf,
    /// Where the damage starts: the byte offset of the first record that is
    /// not valid (0 when the header itself is unusable).
    pub offset: u64,
    /// Bytes cut from the log there (the rest of the file).
    pub cut_bytes: u64,
    /// Valid records kept before the damage.
    pub kept_records: usize,
    /// Records lost, as far as can be told: the damaged one and every
    /// record found intact after it in the same segment (a segment's
    /// records are read in order, so they cannot be kept). 0 when the cut
    /// bytes tell nothing (all zeros) or hold no record of this segment.
    pub lost_records: u64,
    /// Why the bytes there are not a valid record.
    pub why: String,
    /// Where the segment, as it was found, was copied (damage in its
    /// records, before the cut) or moved (an unusable header):
    /// `<name>.corrupt`, or `<name>.corrupt.<n>` when earlier copies exist.
    /// `None` when nothing worth keeping was cut (a tail of zeros).
    pub copy: Option<PathBuf>,
}

/// The write-ahead log of the store. See the [module documentation](self).
///
/// Blocking: every method does file I/O on the calling thread; from async
/// code, call it on a blocking thread.
pub struct Wal {
    dir: PathBuf,
    fsync: FsyncPolicy,
    segment_size: u64,
    ipc_options: IpcWriteOptions,
    /// The LSN the next appended batch gets.
    next_lsn: Lsn,
    /// Segments no longer written, oldest first.
    closed: VecDeque<Closed>,
    /// The segment being written, if one is open.
    active: Option<Active>,
    /// The bytes of the group being written, kept between appends.
    buf: Vec<u8>,
    /// Holds the directory's lock while the log is open.
    _lock: File,
    /// Test hook: the next write stops after this many bytes, failing with
    /// "storage full".
    #[cfg(test)]
    fail_write_after: Option<usize>,
    /// Told of each write and fsync, for the owner's metrics.
    observer: Option<Observer>,
}

/// What a [`Wal`] tells its observer (see [`Wal::set_observer`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalEvent {
    /// A group of `records` was written in `bytes`.
    Written {
        /// Bytes written.
        bytes: u64,
        /// Records in the group.
        records: u64,
    },
    /// A segment was forced to disk; it took this long.
    Fsynced(std::time::Duration),
}

/// A function told of each [`WalEvent`].
pub type Observer = Box<dyn Fn(WalEvent) + Send + Sync>;

/// The byte that names `table` in a record (see the format above).
pub(crate) fn table_id(table: Signal) -> u8 {
    match table {
        Signal::Logs => 1,
        Signal::Spans => 2,
        Signal::Metrics => 3,
        Signal::Alerts => 4,
    }
}

/// The table a record's byte names, if any.
pub(crate) fn table_of(id: u8) -> Option<Signal> {
    Signal::ALL.into_iter().find(|t| table_id(*t) == id)
}

#[cfg(test)]
mod table_ids {
    use super::*;

    /// Guarantees: each table's id leads back to it, and 0 is no table.
    #[test]
    fn ids_lead_back_to_their_table() {
        for t in Signal::ALL {
            assert_eq!(table_of(table_id(t)), Some(t));
        }
        assert_eq!(table_of(0), None);
    }
}

/// A segment that is no longer written.
#[derive(Debug)]
struct Closed {
    path: PathBuf,
    /// LSN of its first record (it may have none), from its header.
    first_lsn: Lsn,
    /// LSN of its last record; `None` when it has none.
    last_lsn: Option<Lsn>,
    /// Bytes on disk.
    size: u64,
}

/// The segment being written.
struct Active {
    file: File,
    path: PathBuf,
    /// LSN of its first record (it may have none yet).
    first_lsn: Lsn,
    /// LSN of its last record; `None` when it has none.
    last_lsn: Option<Lsn>,
    /// Bytes of the header and the records written whole.
    size: u64,
    /// The IPC stream of each table in this segment.
    streams: HashMap<Signal, Stream>,
}

/// The Arrow IPC stream of one table in the active segment.
struct Stream {
    schema: SchemaRef,
    encoder: StreamEncoder,
}

impl Wal {
    /// Opens the log in `opts.dir` (creating the directory if missing),
    /// reads and checks every segment, cuts what is damaged (see the
    /// [module documentation](self)), and returns the log ready to append,
    /// every live record in LSN order (for the caller to rebuild its memory),
    /// and a report of what was found.
    ///
    /// Damage is reported, not returned as an error; errors are I/O failures,
    /// a directory locked by another process, or a segment written by a newer
    /// version.
    pub fn open(opts: WalOptions) -> Result<(Wal, Vec<WalRecord>, ReplayReport), WalError> {
        let (wal, records, _, report) = Wal::open_within(opts, u64::MAX)?;
        Ok((wal, records, report))
    }

    /// [`Wal::open`] for an owner that keeps only part of its log in
    /// memory (a sink's queue): the batches of the oldest segments are
    /// returned up to `keep` bytes of segments; every later record is read
    /// and checked all the same, then let go of, and described by a
    /// [`RecordInfo`] (LSN order, after the records returned), to be read
    /// back with [`Wal::read_back`] when needed. Memory then holds about
    /// `keep` bytes and one segment, whatever the log's size.
    pub fn open_within(
        opts: WalOptions,
        keep: u64,
    ) -> Result<(Wal, Vec<WalRecord>, Vec<RecordInfo>, ReplayReport), WalError> {
        let WalOptions {
            dir,
            fsync,
            segment_size,
        } = opts;
        fs::create_dir_all(&dir).map_err(|e| WalError::io("create WAL directory", &dir, e))?;
        let lock = lock_dir(&dir)?;

        let recovered = open::recover(&dir, segment_size, keep)?;
        let records = recovered.records;
        let let_go = recovered.let_go;
        let report = recovered.report;
        let wal = Wal {
            dir,
            fsync,
            segment_size,
            ipc_options: IpcWriteOptions::try_new(format::ALIGN, false, MetadataVersion::V5)
                .expect("8-byte alignment with IPC metadata V5 is a valid combination"),
            next_lsn: recovered.next_lsn,
            closed: recovered.closed,
            active: recovered.active,
            buf: Vec::new(),
            _lock: lock,
            #[cfg(test)]
            fail_write_after: None,
            observer: None,
        };
        debug!(dir = %wal.dir.display(), records = report.records, segments = report.segments,
            next_lsn = wal.next_lsn, "WAL replayed");
        Ok((wal, records, let_go, report))
    }

    /// Tells `observer` of every write and fsync from now on (the owner's
    /// metrics: the store's `weir_store_wal_*`, a sink queue's own).
    pub fn set_observer(&mut self, observer: Observer) {
        self.observer = Some(observer);
    }

    fn observe(&self, event: WalEvent) {
        if let Some(o) = &self.observer {
            o(event);
        }
    }

    /// Appends `entries` as consecutive records and returns the LSN of each,
    /// in order.
    ///
    /// The group is one write and, with [`FsyncPolicy::Always`], one fsync:
    /// when this returns `Ok`, every record of the group is durable per the
    /// policy. On error none of them is acknowledged; the log stays
    /// consistent (see the [module documentation](self)) and the next append
    /// may succeed. Blocking I/O: call it on a blocking thread.
    pub fn append(&mut self, entries: &[(Signal, &RecordBatch)]) -> Result<Vec<Lsn>, WalError> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let first = self.next_lsn;
        let end = u64::try_from(entries.len())
            .ok()
            .and_then(|n| first.checked_add(n))
            .filter(|end| *end < u64::MAX)
            .ok_or_else(|| WalError::LsnExhausted {
                dir: self.dir.clone(),
            })?;

        let mut active = match self.active.take() {
            // A segment without records is never closed for its size: its
            // successor would have its name.
            Some(active) if active.size < self.segment_size || active.last_lsn.is_none() => active,
            Some(full) => {
                self.close(full);
                self.create_segment()?
            }
            None => self.create_segment()?,
        };

        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        if let Err(e) = encode_group(&mut active, &mut buf, first, entries, &self.ipc_options) {
            // Nothing was written, but the encoders may believe otherwise:
            // the next record of each table starts a new stream.
            active.streams.clear();
            self.active = Some(active);
            self.keep_buffer(buf);
            return Err(e);
        }

        let written = buf.len() as u64;
        match self.write_group(&mut active.file, &buf) {
            Ok(()) => {
                active.size += written;
                active.last_lsn = Some(end - 1);
                self.next_lsn = end;
                if active.size >= self.segment_size {
                    self.close(active);
                } else {
                    self.active = Some(active);
                }
                self.observe(WalEvent::Written {
                    bytes: written,
                    records: end - first,
                });
                self.keep_buffer(buf);
                Ok((first..end).collect())
            }
            Err((action, source)) => {
                let error = WalError::io(action, &active.path, source);
                debug!(%error, "WAL write failed; the segment is closed and the next append starts a new one");
                // Some of these LSNs may be on disk whole if the cut below
                // fails: never hand them out again.
                self.next_lsn = end;
                self.abandon(active);
                self.keep_buffer(buf);
                Err(error)
            }
        }
    }

    /// Deletes the segments, oldest first, whose records all have an LSN at
    /// or below `lsn`: the caller holds them durably elsewhere (Parquet).
    ///
    /// The segment being written is removed too when fully covered, after a
    /// new empty one took its place. On error, some segments may already be
    /// gone; the log stays consistent.
    pub fn remove_through(&mut self, lsn: Lsn) -> Result<(), WalError> {
        let covered = |last_lsn: Option<Lsn>| last_lsn.is_none_or(|last| last <= lsn);
        if let Some(active) = self.active.take() {
            if active.last_lsn.is_some() && covered(active.last_lsn) {
                self.close(active);
            } else {
                self.active = Some(active);
            }
        }
        // The newest segment file remembers where numbering stands; before
        // every file goes, an empty segment at the next LSN takes its place.
        if self.active.is_none() && self.closed.iter().all(|c| covered(c.last_lsn)) {
            if self.closed.is_empty() {
                return Ok(());
            }
            self.active = Some(self.create_segment()?);
        }
        let mut removed = false;
        let mut result = Ok(());
        while let Some(oldest) = self.closed.front() {
            if !covered(oldest.last_lsn) {
                break;
            }
            match fs::remove_file(&oldest.path) {
                Ok(()) => removed = true,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    result = Err(WalError::io("remove WAL segment", &oldest.path, e));
                    break;
                }
            }
            self.closed.pop_front();
        }
        if removed && self.fsync == FsyncPolicy::Always {
            let synced = sync_dir(&self.dir);
            result = result.and(synced);
        }
        result
    }

    /// Makes every LSN handed out from now on greater than `lsn`.
    ///
    /// For a caller whose own records name LSNs the log no longer has: a
    /// tail lost with `fsync = "never"` and a power cut, or cut for damage,
    /// may have held LSNs that the caller's checkpoint already covers; they
    /// must not be given to new batches. The new numbering is kept on disk
    /// (a new, empty segment). Does nothing when `lsn` is below
    /// [`Wal::next_lsn`].
    pub fn skip_through(&mut self, lsn: Lsn) -> Result<(), WalError> {
        let Some(next) = lsn.checked_add(1).filter(|next| *next < u64::MAX) else {
            return Err(WalError::LsnExhausted {
                dir: self.dir.clone(),
            });
        };
        if next <= self.next_lsn {
            return Ok(());
        }
        if let Some(active) = self.active.take() {
            self.close(active);
        }
        self.next_lsn = next;
        self.active = Some(self.create_segment()?);
        Ok(())
    }

    /// Reads again, from disk, the records of the segment that holds
    /// `lsn`: for an owner that keeps only part of its log in memory (a
    /// sink's queue) and let go of the batches [`Wal::open`] or its caller
    /// had. The segment is read whole (one read, one allocation; its
    /// batches point into it), so the records returned are those of one
    /// segment, at most about `segment_size` bytes.
    ///
    /// `Ok(None)` when no segment holds `lsn` (it was removed, or never
    /// written). Damage found on the way (the disk changed the file after
    /// it was written) is not an error: the records before it are returned
    /// and [`ReadBack::problem`] says what was found. Blocking I/O.
    pub fn read_back(&self, lsn: Lsn) -> Result<Option<ReadBack>, WalError> {
        let holds = |first: Lsn, last: Option<Lsn>| first <= lsn && last.is_some_and(|l| lsn <= l);
        let found = self
            .closed
            .iter()
            .find(|c| holds(c.first_lsn, c.last_lsn))
            .map(|c| (&c.path, c.first_lsn, c.last_lsn, c.size))
            .or_else(|| {
                self.active
                    .as_ref()
                    .filter(|a| holds(a.first_lsn, a.last_lsn))
                    .map(|a| (&a.path, a.first_lsn, a.last_lsn, a.size))
            });
        let Some((path, first_lsn, Some(last_lsn), size)) = found else {
            return Ok(None);
        };
        let mut file = File::open(path)
            .map_err(|e| WalError::io("open WAL segment to read it back", path, e))?;
        let data = open::read_all(&mut file, size, path)?;
        let (records, problem) = match replay::scan(&data, first_lsn) {
            Ok(scan) => (
                scan.records,
                scan.problem
                    .map(|why| format!("'{}' {why}", path.display())),
            ),
            Err(e) => {
                let why = match e {
                    format::HeaderError::Torn(n) => format!("a torn header ({n} bytes)"),
                    format::HeaderError::Corrupt(why) => why,
                    format::HeaderError::Version(v) => format!("format version {v}"),
                };
                let problem = format!("'{}': its header is unusable: {why}", path.display());
                (Vec::new(), Some(problem))
            }
        };
        Ok(Some(ReadBack {
            records,
            through: last_lsn,
            problem,
        }))
    }

    /// Bytes the log's segment files take on disk.
    pub fn disk_bytes(&self) -> u64 {
        self.closed.iter().map(|c| c.size).sum::<u64>() + self.active.as_ref().map_or(0, |a| a.size)
    }

    /// The LSN the next appended batch will get.
    pub fn next_lsn(&self) -> Lsn {
        self.next_lsn
    }

    /// The log's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Creates the segment for LSN `next_lsn`, synced per the policy.
    fn create_segment(&self) -> Result<Active, WalError> {
        create_segment(&self.dir, self.next_lsn, self.fsync == FsyncPolicy::Always)
    }

    /// Writes a group, and syncs it per the policy.
    fn write_group(
        &mut self,
        file: &mut File,
        bytes: &[u8],
    ) -> Result<(), (&'static str, io::Error)> {
        const WRITE: &str = "write to WAL segment";
        #[cfg(test)]
        if let Some(after) = self.fail_write_after.take() {
            file.write_all(&bytes[..after.min(bytes.len())])
                .map_err(|e| (WRITE, e))?;
            return Err((WRITE, io::Error::from(io::ErrorKind::StorageFull)));
        }
        file.write_all(bytes).map_err(|e| (WRITE, e))?;
        if self.fsync == FsyncPolicy::Always {
            let started = Instant::now();
            file.sync_data().map_err(|e| ("fsync WAL segment", e))?;
            self.observe(WalEvent::Fsynced(started.elapsed()));
        }
        Ok(())
    }

    /// Closes the segment after a failed write: cuts it back to its last
    /// good record if it can, and writes no more to it.
    fn abandon(&mut self, active: Active) {
        let Active {
            file,
            path,
            first_lsn,
            last_lsn,
            size,
            ..
        } = active;
        let cut = file.set_len(size).and_then(|()| file.sync_all());
        let size = match cut {
            Ok(()) => size,
            Err(e) => {
                warn!(path = %path.display(), error = %e,
                    "could not cut a failed write off a WAL segment; the next open cuts it");
                file.metadata().map_or(size, |m| m.len())
            }
        };
        self.closed.push_back(Closed {
            path,
            first_lsn,
            last_lsn,
            size,
        });
    }

    /// Closes the active segment: no more writes to it.
    fn close(&mut self, active: Active) {
        self.closed.push_back(Closed {
            path: active.path,
            first_lsn: active.first_lsn,
            last_lsn: active.last_lsn,
            size: active.size,
        });
    }

    /// Keeps the write buffer for the next append, unless it grew huge.
    fn keep_buffer(&mut self, mut buf: Vec<u8>) {
        if buf.capacity() > KEEP_BUFFER {
            buf = Vec::new();
        }
        self.buf = buf;
    }

    /// Test hook: the next write stops after `bytes` bytes and fails with
    /// "storage full".
    #[cfg(test)]
    fn fail_next_write_after(&mut self, bytes: usize) {
        self.fail_write_after = Some(bytes);
    }
}

impl fmt::Debug for Wal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wal")
            .field("dir", &self.dir)
            .field("fsync", &self.fsync)
            .field("segment_size", &self.segment_size)
            .field("next_lsn", &self.next_lsn)
            .field(
                "segments",
                &(self.closed.len() + usize::from(self.active.is_some())),
            )
            .field("disk_bytes", &self.disk_bytes())
            .finish_non_exhaustive()
    }
}

/// Encodes `entries` as records with LSNs from `first` into `buf`.
fn encode_group(
    active: &mut Active,
    buf: &mut Vec<u8>,
    first: Lsn,
    entries: &[(Signal, &RecordBatch)],
    options: &IpcWriteOptions,
) -> Result<(), WalError> {
    for (lsn, &(table, batch)) in (first..).zip(entries) {
        let encode_error = |source| WalError::Encode { table, source };
        let schema = batch.schema();
        let (stream, flags) = match active.streams.entry(table) {
            Entry::Occupied(entry) if same_schema(&entry.get().schema, &schema) => {
                (entry.into_mut(), 0)
            }
            Entry::Occupied(mut entry) => {
                entry.insert(Stream::new(schema, options).map_err(encode_error)?);
                (entry.into_mut(), FLAG_NEW_STREAM)
            }
            Entry::Vacant(entry) => (
                entry.insert(Stream::new(schema, options).map_err(encode_error)?),
                FLAG_NEW_STREAM,
            ),
        };
        let buffers = stream.encoder.encode(batch).map_err(encode_error)?;
        let mut parts: Vec<&[u8]> = buffers.iter().map(Buffer::as_slice).collect();
        parts.push(&IPC_END);
        format::push_record(buf, lsn, table_id(table), flags, &parts)
            .map_err(|format::TooLarge(bytes)| WalError::RecordTooLarge { table, bytes })?;
    }
    Ok(())
}

impl Stream {
    fn new(
        schema: SchemaRef,
        options: &IpcWriteOptions,
    ) -> Result<Stream, arrow::error::ArrowError> {
        let encoder = StreamEncoder::try_new_with_options(&schema, options.clone())?;
        Ok(Stream { schema, encoder })
    }
}

fn same_schema(a: &SchemaRef, b: &SchemaRef) -> bool {
    std::sync::Arc::ptr_eq(a, b) || a == b
}

/// Creates the segment for `first_lsn` in `dir` and writes its header;
/// with `sync`, makes it durable (the file and its directory entry).
fn create_segment(dir: &Path, first_lsn: Lsn, sync: bool) -> Result<Active, WalError> {
    let path = dir.join(format::segment_name(first_lsn));
    // No other process writes here (the lock), and no segment with this
    // name holds records: a file left at this name is debris.
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .map_err(|e| WalError::io("create WAL segment", &path, e))?;
    let header = format::encode_header(first_lsn);
    let written = file
        .write_all(&header)
        .and_then(|()| if sync { file.sync_data() } else { Ok(()) });
    if let Err(e) = written {
        drop(file);
        if let Err(remove) = fs::remove_file(&path) {
            warn!(path = %path.display(), error = %remove,
                "could not remove a WAL segment whose header could not be written; the next open removes it");
        }
        return Err(WalError::io("write the header of WAL segment", &path, e));
    }
    if sync {
        sync_dir(dir)?;
    }
    Ok(Active {
        file,
        path,
        first_lsn,
        last_lsn: None,
        size: HEADER_LEN as u64,
        streams: HashMap::new(),
    })
}

/// Takes the directory's lock, so one process at a time writes the log.
fn lock_dir(dir: &Path) -> Result<File, WalError> {
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| WalError::io("create the WAL lock file", &path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(WalError::Locked {
            dir: dir.to_path_buf(),
        }),
        Err(TryLockError::Error(e)) => Err(WalError::io("lock the WAL lock file", &path, e)),
    }
}

/// Makes file creations and removals in `dir` durable.
fn sync_dir(dir: &Path) -> Result<(), WalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| WalError::io("sync WAL directory", dir, e))
}

#[cfg(test)]
mod tests;
