//! What a sink holds between taking a batch and its backend taking it: in
//! memory only, or also on disk ([`crate::settings::QueueConfig`]).
//!
//! ```text
//! push(batches) ──[disk: one WAL append, one fsync]──▶ pending ──take()──▶ out ──finish()──▶ gone
//!                  └─ ack "queued": acknowledged here                          └─ ack "delivered": here
//! ```
//!
//! Each batch gets an id (its LSN on disk). The ids finished form a
//! contiguous "done through" point: on disk, the WAL segments wholly below
//! it are removed, and it is written to the `DONE` file beside them (no
//! fsync: losing it only means some batches are sent again). On open, the
//! log is replayed and what is above the point is pending again, so a
//! restart (a `kill -9` included) loses nothing that was acknowledged.
//!
//! The queue is bounded: [`Queue::push`] waits while it is full (on disk:
//! `max_size` bytes of log; in memory: the bytes of rows held), which
//! holds the pipeline back. A batch larger than the bound on its own is
//! taken when the queue is empty, so that it never blocks forever.

use std::collections::{BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use arrow::record_batch::RecordBatch;
use tokio::sync::Notify;
use tracing::warn;
use weir_core::{Ack, Signal};
use weir_wal::{FsyncPolicy, Wal, WalOptions};

use crate::metrics::QueueGauges;
use crate::settings::AckMode;

/// The name of the file holding the "done through" id.
const DONE_FILE: &str = "DONE";

/// One batch in the queue.
#[derive(Debug)]
pub(crate) struct Entry {
    /// Its id: the WAL's LSN on disk, a counter in memory.
    pub id: u64,
    /// Its signal.
    pub signal: Signal,
    /// Its rows.
    pub rows: RecordBatch,
    /// The acknowledgement still owed to its source (none once released,
    /// or for a batch replayed from disk).
    pub ack: Option<Ack>,
    /// When it was queued (replayed entries: when the queue opened).
    pub since: Instant,
}

/// The disk side of a queue.
struct Disk {
    wal: Wal,
    dir: PathBuf,
    ack: AckMode,
}

struct State {
    pending: VecDeque<Entry>,
    /// Records of the pending entries (kept, not summed on each change).
    pending_records: usize,
    /// Row bytes of what is pending or out.
    held: u64,
    /// The next id in memory mode.
    next_id: u64,
    /// Ids taken and not finished, and ids finished above `done_through`.
    out: BTreeSet<u64>,
    finished: BTreeSet<u64>,
    /// Every id up to this one is finished.
    done_through: u64,
    /// No more pushes come.
    closed: bool,
}

/// A sink's queue. See the [module documentation](self).
pub(crate) struct Queue {
    state: Mutex<State>,
    /// The WAL, if on disk; its own lock, taken on blocking threads.
    disk: Option<Arc<Mutex<Disk>>>,
    /// In memory: the most row bytes held; on disk: the most log bytes.
    bound: u64,
    /// On disk: the log's bytes, as of the last write or removal.
    disk_bytes: AtomicU64,
    /// Woken when entries are added, space is freed, or the queue closes.
    changed: Notify,
    gauges: QueueGauges,
}

/// Why a batch could not be queued.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The disk queue could not be opened, written or trimmed.
    #[error("disk queue in {dir}: {source}")]
    Disk {
        /// The queue's directory.
        dir: PathBuf,
        /// What failed.
        source: weir_wal::WalError,
    },
}

impl Queue {
    /// A queue in memory, holding at most `bound` bytes of rows.
    pub(crate) fn memory(bound: u64, gauges: QueueGauges) -> Self {
        Queue {
            state: Mutex::new(State::new(0)),
            disk: None,
            bound,
            disk_bytes: AtomicU64::new(0),
            changed: Notify::new(),
            gauges,
        }
    }

    /// Opens (or creates) the disk queue in `dir`, replaying what it holds
    /// above its "done through" point. Blocking: call it on a blocking
    /// thread.
    pub(crate) fn open(
        dir: &Path,
        max_size: u64,
        ack: AckMode,
        gauges: QueueGauges,
    ) -> Result<(Self, usize), QueueError> {
        let err = |source| QueueError::Disk {
            dir: dir.to_path_buf(),
            source,
        };
        let opts = WalOptions {
            dir: dir.to_path_buf(),
            fsync: FsyncPolicy::Always,
            // Segments small enough that the log shrinks as it drains.
            segment_size: (max_size / 16).clamp(256 << 10, 64 << 20),
        };
        let (wal, records, report) = Wal::open(opts).map_err(err)?;
        if let Some(problem) = &report.problem {
            warn!(dir = %dir.display(), truncated_bytes = report.truncated_bytes, %problem,
                "the disk queue was damaged: it was cut at the damage, what precedes it is sent");
        }
        let done_through = read_done(dir);
        let now = Instant::now();
        let mut state = State::new(done_through);
        for r in records.into_iter().filter(|r| r.lsn > done_through) {
            state.held += rows_bytes(&r.batch);
            state.pending_records += r.batch.num_rows();
            state.pending.push_back(Entry {
                id: r.lsn,
                signal: r.table,
                rows: r.batch,
                ack: None,
                since: now,
            });
        }
        // Ids below the first replayed one are gone: done.
        if let Some(first) = state.pending.front() {
            state.done_through = state.done_through.max(first.id - 1);
        } else {
            state.done_through = state.done_through.max(wal.next_lsn().saturating_sub(1));
        }
        let replayed = state.pending.len();
        let disk_bytes = AtomicU64::new(wal.disk_bytes());
        let queue = Queue {
            state: Mutex::new(state),
            disk: Some(Arc::new(Mutex::new(Disk {
                wal,
                dir: dir.to_path_buf(),
                ack,
            }))),
            bound: max_size,
            disk_bytes,
            changed: Notify::new(),
            gauges,
        };
        queue.update_gauges();
        Ok((queue, replayed))
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether a batch of `bytes` fits now.
    fn has_room(&self, bytes: u64) -> bool {
        let state = self.state();
        if state.pending.is_empty() && state.out.is_empty() {
            return true;
        }
        let used = match &self.disk {
            Some(_) => self.disk_bytes.load(Ordering::Relaxed),
            None => state.held,
        };
        used + bytes <= self.bound
    }

    /// Adds `batches`, waiting while the queue is full. On disk they are
    /// one append and one fsync; with `ack = "queued"` their
    /// acknowledgements are released once that returns. On a write error
    /// they are failed back to their sources, and the error returned.
    pub(crate) async fn push(
        self: &Arc<Self>,
        batches: Vec<(Signal, RecordBatch, Ack)>,
    ) -> Result<(), QueueError> {
        let bytes: u64 = batches.iter().map(|(_, rows, _)| rows_bytes(rows)).sum();
        loop {
            let changed = self.changed.notified();
            if self.has_room(bytes) {
                break;
            }
            changed.await;
        }
        let now = Instant::now();
        let entries = match &self.disk {
            None => {
                let mut state = self.state();
                batches
                    .into_iter()
                    .map(|(signal, rows, ack)| {
                        state.next_id += 1;
                        Entry {
                            id: state.next_id,
                            signal,
                            rows,
                            ack: Some(ack),
                            since: now,
                        }
                    })
                    .collect::<Vec<_>>()
            }
            Some(disk) => {
                let disk = disk.clone();
                let (batches, appended) = tokio::task::spawn_blocking(move || {
                    let mut disk = lock(&disk);
                    let refs: Vec<(Signal, &RecordBatch)> =
                        batches.iter().map(|(s, rows, _)| (*s, rows)).collect();
                    let appended = disk.wal.append(&refs);
                    let size = disk.wal.disk_bytes();
                    let appended = appended
                        .map(|lsns| (lsns, disk.ack, size))
                        .map_err(|source| QueueError::Disk {
                            dir: disk.dir.clone(),
                            source,
                        });
                    (batches, appended)
                })
                .await
                .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
                let (lsns, ack_mode) = match appended {
                    Ok((lsns, ack_mode, size)) => {
                        self.disk_bytes.store(size, Ordering::Relaxed);
                        (lsns, ack_mode)
                    }
                    Err(e) => {
                        for (_, _, ack) in batches {
                            ack.fail(format!("the sink's queue cannot take it: {e}"));
                        }
                        return Err(e);
                    }
                };
                batches
                    .into_iter()
                    .zip(lsns)
                    .map(|((signal, rows, ack), id)| Entry {
                        id,
                        signal,
                        rows,
                        ack: match ack_mode {
                            AckMode::Delivered => Some(ack),
                            // The batch is on disk: acknowledged here.
                            AckMode::Queued => {
                                ack.deliver();
                                None
                            }
                        },
                        since: now,
                    })
                    .collect()
            }
        };
        {
            let mut state = self.state();
            for e in entries {
                state.held += rows_bytes(&e.rows);
                state.pending_records += e.rows.num_rows();
                state.pending.push_back(e);
            }
        }
        self.update_gauges();
        self.changed.notify_waiters();
        Ok(())
    }

    /// Takes the next entries for one request: consecutive entries of one
    /// signal and schema, up to `max_records` records and `max_bytes` row
    /// bytes (at least one entry), waiting up to `linger` from the oldest
    /// one's arrival for more. Waits while the queue is empty; `None` once
    /// it is closed and empty.
    pub(crate) async fn take(
        &self,
        max_records: usize,
        max_bytes: u64,
        linger: Duration,
    ) -> Option<Vec<Entry>> {
        loop {
            let changed = self.changed.notified();
            let wait_until = {
                let mut state = self.state();
                match state.pending.front().map(|first| first.since + linger) {
                    Some(deadline) => {
                        let (n, full) = state.gatherable(max_records, max_bytes);
                        if full || Instant::now() >= deadline || state.closed {
                            let taken: Vec<Entry> = state.pending.drain(..n).collect();
                            for e in &taken {
                                state.out.insert(e.id);
                                state.pending_records -= e.rows.num_rows();
                            }
                            drop(state);
                            self.update_gauges();
                            return Some(taken);
                        }
                        Some(deadline)
                    }
                    None if state.closed => return None,
                    None => None,
                }
            };
            match wait_until {
                Some(deadline) => {
                    tokio::select! {
                        _ = changed => {}
                        _ = tokio::time::sleep_until(deadline.into()) => {}
                    }
                }
                None => changed.await,
            }
        }
    }

    /// Marks entries finished (sent, or dropped for good): their ids move
    /// the "done through" point, and on disk what is wholly below it is
    /// removed. Blocking on disk: call it on a blocking thread.
    pub(crate) fn finish(&self, entries: &[(u64, u64)]) {
        let done_through = {
            let mut state = self.state();
            for &(id, bytes) in entries {
                state.out.remove(&id);
                state.finished.insert(id);
                state.held = state.held.saturating_sub(bytes);
            }
            let before = state.done_through;
            loop {
                let next = state.done_through + 1;
                if !state.finished.remove(&next) {
                    break;
                }
                state.done_through = next;
            }
            (state.done_through > before).then_some(state.done_through)
        };
        if let (Some(through), Some(disk)) = (done_through, &self.disk) {
            let mut disk = lock(disk);
            if let Err(e) = disk.wal.remove_through(through) {
                warn!(dir = %disk.dir.display(), error = %e, "the disk queue could not remove what was sent; it is kept");
            }
            write_done(&disk.dir, through);
            self.disk_bytes
                .store(disk.wal.disk_bytes(), Ordering::Relaxed);
        }
        self.update_gauges();
        self.changed.notify_waiters();
    }

    /// No more pushes: [`Queue::take`] hands out what is left, then `None`.
    pub(crate) fn close(&self) {
        self.state().closed = true;
        self.changed.notify_waiters();
    }

    /// Fails the acknowledgements still owed by what is pending (a stopping
    /// sink gave up sending): their sources learn they were not delivered.
    /// On disk the entries stay in the log and are sent at the next start.
    pub(crate) fn abandon(&self, reason: &str) {
        let mut state = self.state();
        for e in &mut state.pending {
            if let Some(ack) = e.ack.take() {
                ack.fail(reason);
            }
        }
    }

    /// Entries pending or out.
    pub(crate) fn len(&self) -> usize {
        let state = self.state();
        state.pending.len() + state.out.len()
    }

    fn update_gauges(&self) {
        let (records, held, oldest) = {
            let state = self.state();
            let oldest = state.pending.front().map(|e| e.since.elapsed());
            (state.pending_records, state.held, oldest)
        };
        let bytes = match &self.disk {
            Some(_) => self.disk_bytes.load(Ordering::Relaxed),
            None => held,
        };
        self.gauges.set(bytes, records, oldest.unwrap_or_default());
    }
}

impl State {
    fn new(done_through: u64) -> Self {
        State {
            pending: VecDeque::new(),
            pending_records: 0,
            held: 0,
            next_id: 0,
            out: BTreeSet::new(),
            finished: BTreeSet::new(),
            done_through,
            closed: false,
        }
    }

    /// How many pending entries one request takes, and whether that is a
    /// full request (a limit reached, or the next entry cannot join).
    fn gatherable(&self, max_records: usize, max_bytes: u64) -> (usize, bool) {
        let mut iter = self.pending.iter();
        let Some(first) = iter.next() else {
            return (0, false);
        };
        let (mut n, mut records, mut bytes) = (1, first.rows.num_rows(), rows_bytes(&first.rows));
        for e in iter {
            let joins = e.signal == first.signal && e.rows.schema() == first.rows.schema();
            let (r, b) = (records + e.rows.num_rows(), bytes + rows_bytes(&e.rows));
            if !joins || r > max_records || b > max_bytes {
                return (n, true);
            }
            (n, records, bytes) = (n + 1, r, b);
        }
        (n, records >= max_records || bytes >= max_bytes)
    }
}

fn lock(disk: &Mutex<Disk>) -> MutexGuard<'_, Disk> {
    disk.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The bytes a batch's rows take in memory.
pub(crate) fn rows_bytes(rows: &RecordBatch) -> u64 {
    rows.get_array_memory_size() as u64
}

fn read_done(dir: &Path) -> u64 {
    std::fs::read_to_string(dir.join(DONE_FILE))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

fn write_done(dir: &Path, through: u64) {
    let tmp = dir.join(format!("{DONE_FILE}.tmp"));
    let result = std::fs::write(&tmp, format!("{through}\n"))
        .and_then(|()| std::fs::rename(&tmp, dir.join(DONE_FILE)));
    if let Err(e) = result {
        warn!(dir = %dir.display(), error = %e, "the disk queue could not record what was sent; after a restart some batches are sent again");
    }
}
