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
//!
//! On disk, only `max_memory` bytes of rows are kept in memory. A batch
//! pushed beyond that, or found beyond it in the log at open
//! ([`Wal::open_within`]), waits in the log only; when its turn comes,
//! [`Queue::take`] reads its segment back ([`Wal::read_back`]). A queue
//! filled during a long outage so takes its log's size on disk, not in
//! memory. Once a batch has waited on disk, every later one does too until
//! the reader caught up: batches leave in the order they came.

use std::collections::{BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use arrow::record_batch::RecordBatch;
use tokio::sync::Notify;
use tracing::warn;
use weir_core::{Ack, Signal};
use weir_wal::{FsyncPolicy, Wal, WalOptions, batch_bytes};

use crate::metrics::QueueGauges;
use crate::settings::AckMode;

/// The name of the file holding the "done through" id.
const DONE_FILE: &str = "DONE";

/// One batch taken from the queue to be sent.
#[derive(Debug)]
pub(crate) struct Entry {
    /// Its id: the WAL's LSN on disk, a counter in memory.
    pub id: u64,
    /// Its signal.
    pub signal: Signal,
    /// Its rows.
    pub rows: RecordBatch,
    /// The memory its rows take, as the queue counted it
    /// ([`weir_wal::batch_bytes`]).
    pub bytes: u64,
    /// The acknowledgement still owed to its source (none once released,
    /// or for a batch replayed from disk).
    pub ack: Option<Ack>,
}

/// One batch waiting to be taken.
#[derive(Debug)]
struct Pending {
    id: u64,
    signal: Signal,
    /// Its rows; `None` while they wait on disk only.
    rows: Option<RecordBatch>,
    /// Its records (known while the rows are on disk).
    records: usize,
    /// The memory its rows take (or took, before they were let go).
    bytes: u64,
    ack: Option<Ack>,
    /// When it was queued (replayed entries: when the queue opened).
    since: Instant,
}

/// How long a queue whose log cannot be read waits before it tries again.
const READ_RETRY: Duration = Duration::from_secs(1);

/// The disk side of a queue.
struct Disk {
    wal: Wal,
    dir: PathBuf,
    ack: AckMode,
}

struct State {
    pending: VecDeque<Pending>,
    /// Records of the pending entries (kept, not summed on each change).
    pending_records: usize,
    /// Row bytes in memory: what is pending with its rows, or out.
    held: u64,
    /// Pending entries whose rows wait on disk only.
    on_disk: usize,
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
    /// On disk: the most row bytes kept in memory, the rest waiting in the
    /// log only (in memory: no such bound, `bound` holds the pushes back).
    memory: u64,
    /// One reader of the log at a time.
    reading: tokio::sync::Mutex<()>,
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
            memory: u64::MAX,
            reading: tokio::sync::Mutex::new(()),
            disk_bytes: AtomicU64::new(0),
            changed: Notify::new(),
            gauges,
        }
    }

    /// Opens (or creates) the disk queue in `dir`, replaying what it holds
    /// above its "done through" point; `memory` bytes of rows at most are
    /// kept in memory. Blocking: call it on a blocking thread.
    pub(crate) fn open(
        dir: &Path,
        max_size: u64,
        memory: u64,
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
            // Segments small enough that the log shrinks as it drains, and
            // that one read back stays well within the memory bound.
            segment_size: (max_size / 16).min(memory / 4).clamp(256 << 10, 64 << 20),
        };
        // The log's oldest `memory` bytes come back in memory; the rest is
        // checked, let go of, and read back in its turn.
        let (wal, records, let_go, report) = Wal::open_within(opts, memory).map_err(err)?;
        if let Some(problem) = &report.problem {
            warn!(dir = %dir.display(), truncated_bytes = report.truncated_bytes, %problem,
                "the disk queue was damaged: it was cut at the damage, what precedes it is sent");
        }
        let done_through = read_done(dir);
        let now = Instant::now();
        let mut state = State::new(done_through);
        for r in records.into_iter().filter(|r| r.lsn > done_through) {
            let bytes = batch_bytes(&r.batch);
            let records = r.batch.num_rows();
            let rows = state.keeps(bytes, memory).then_some(r.batch);
            state.add(Pending {
                id: r.lsn,
                signal: r.table,
                rows,
                records,
                bytes,
                ack: None,
                since: now,
            });
        }
        for info in let_go.into_iter().filter(|i| i.lsn > done_through) {
            state.add(Pending {
                id: info.lsn,
                signal: info.table,
                rows: None,
                records: info.rows,
                bytes: info.bytes,
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
            memory,
            reading: tokio::sync::Mutex::new(()),
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
        let sizes: Vec<u64> = batches
            .iter()
            .map(|(_, rows, _)| batch_bytes(rows))
            .collect();
        let bytes = sizes.iter().sum();
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
                        (state.next_id, signal, rows, Some(ack))
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
                    .map(|((signal, rows, ack), id)| {
                        let ack = match ack_mode {
                            AckMode::Delivered => Some(ack),
                            // The batch is on disk: acknowledged here.
                            AckMode::Queued => {
                                ack.deliver();
                                None
                            }
                        };
                        (id, signal, rows, ack)
                    })
                    .collect()
            }
        };
        {
            let mut state = self.state();
            for ((id, signal, rows, ack), bytes) in entries.into_iter().zip(sizes) {
                let records = rows.num_rows();
                // On disk, rows beyond the memory bound wait in the log only.
                let rows = state.keeps(bytes, self.memory).then_some(rows);
                state.add(Pending {
                    id,
                    signal,
                    rows,
                    records,
                    bytes,
                    ack,
                    since: now,
                });
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
            let on_disk = {
                let state = self.state();
                state
                    .pending
                    .front()
                    .filter(|p| p.rows.is_none())
                    .map(|p| p.id)
            };
            if let Some(id) = on_disk {
                self.read_back(id).await;
                continue;
            }
            let wait_until = {
                let mut state = self.state();
                match state.pending.front().map(|first| first.since + linger) {
                    Some(deadline) => {
                        let (n, full) = state.gatherable(max_records, max_bytes);
                        if full || Instant::now() >= deadline || state.closed {
                            let taken = state.take_front(n);
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

    /// Reads back from the log the segment holding pending entry `id`,
    /// whose rows wait on disk only, and puts its rows in memory. Entries
    /// the log can no longer give (damaged on disk since they were
    /// written) are dropped, counted and logged; an I/O error is logged
    /// and tried again after [`READ_RETRY`].
    async fn read_back(&self, id: u64) {
        let _one = self.reading.lock().await;
        let Some(disk) = self.disk.clone() else {
            return;
        };
        let still_on_disk = {
            let state = self.state();
            state
                .pending
                .front()
                .is_some_and(|p| p.id == id && p.rows.is_none())
        };
        if !still_on_disk {
            // Another taker read it meanwhile.
            return;
        }
        let (read, dir) = tokio::task::spawn_blocking(move || {
            let disk = lock(&disk);
            (disk.wal.read_back(id), disk.dir.clone())
        })
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
        let (records, through, problem) = match read {
            Ok(Some(back)) => (back.records, back.through, back.problem),
            Ok(None) => (
                Vec::new(),
                id,
                Some(format!("no segment of the log holds batch {id}")),
            ),
            Err(e) => {
                warn!(dir = %dir.display(), error = %e,
                    "the disk queue cannot read back what it holds; trying again");
                tokio::time::sleep(READ_RETRY).await;
                return;
            }
        };
        let mut back: std::collections::HashMap<u64, RecordBatch> =
            records.into_iter().map(|r| (r.lsn, r.batch)).collect();
        let lost: Vec<Pending> = {
            let mut state = self.state();
            // Pending ids increase: the segment's entries are a run at the
            // front. Those it gave back go back in memory; the others are
            // lost.
            let run = state.pending.partition_point(|p| p.id <= through);
            let segment: Vec<Pending> = state.pending.drain(..run).collect();
            let mut lost = Vec::new();
            for mut p in segment.into_iter().rev() {
                if p.rows.is_none() {
                    state.on_disk -= 1;
                    match back.remove(&p.id) {
                        Some(rows) => {
                            p.rows = Some(rows);
                            state.held += p.bytes;
                        }
                        None => {
                            state.pending_records -= p.records;
                            lost.push(p);
                            continue;
                        }
                    }
                }
                state.pending.push_front(p);
            }
            lost
        };
        if !lost.is_empty() {
            let records: usize = lost.iter().map(|p| p.records).sum();
            let why = problem.unwrap_or_default();
            tracing::error!(dir = %dir.display(), records, problem = %why,
                "the disk queue lost batches it had acknowledged: its log was damaged on disk");
            self.gauges.lost(records as u64);
            let reason = format!("the sink's disk queue could not read it back: {why}");
            let done: Vec<(u64, u64)> = lost
                .into_iter()
                .map(|p| {
                    if let Some(ack) = p.ack {
                        ack.fail(reason.clone());
                    }
                    // Not in memory: no bytes to give back.
                    (p.id, 0)
                })
                .collect();
            // Blocking file removal on this thread: a rare path, after
            // damage on disk.
            self.finish(&done);
        }
        self.update_gauges();
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
            on_disk: 0,
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
        let Some(schema) = first.rows.as_ref().map(RecordBatch::schema) else {
            return (0, false);
        };
        let (mut n, mut records, mut bytes) = (1, first.records, first.bytes);
        for e in iter {
            // An entry on disk ends the request: it is read back first.
            let joins = e.signal == first.signal
                && e.rows.as_ref().is_some_and(|rows| rows.schema() == schema);
            let (r, b) = (records + e.records, bytes + e.bytes);
            if !joins || r > max_records || b > max_bytes {
                return (n, true);
            }
            (n, records, bytes) = (n + 1, r, b);
        }
        (n, records >= max_records || bytes >= max_bytes)
    }

    /// Whether a batch of `bytes` pushed now keeps its rows in memory under
    /// a bound of `memory` bytes: not once one waits on disk (order), and
    /// not past the bound unless nothing else is in memory.
    fn keeps(&self, bytes: u64, memory: u64) -> bool {
        self.on_disk == 0 && (self.held == 0 || self.held.saturating_add(bytes) <= memory)
    }

    /// Adds a pending entry.
    fn add(&mut self, p: Pending) {
        self.pending_records += p.records;
        if p.rows.is_some() {
            self.held += p.bytes;
        } else {
            self.on_disk += 1;
        }
        self.pending.push_back(p);
    }

    /// Takes the first `n` pending entries (their rows in memory) out.
    fn take_front(&mut self, n: usize) -> Vec<Entry> {
        let mut taken = Vec::with_capacity(n);
        while taken.len() < n {
            let Some(p) = self.pending.pop_front() else {
                break;
            };
            let Some(rows) = p.rows else {
                self.pending.push_front(p);
                break;
            };
            self.out.insert(p.id);
            self.pending_records -= p.records;
            taken.push(Entry {
                id: p.id,
                signal: p.signal,
                rows,
                bytes: p.bytes,
                ack: p.ack,
            });
        }
        taken
    }
}

fn lock(disk: &Mutex<Disk>) -> MutexGuard<'_, Disk> {
    disk.lock().unwrap_or_else(PoisonError::into_inner)
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::Int64Array;
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn rows(values: std::ops::Range<i64>) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from_iter_values(values))])
            .expect("a valid batch")
    }

    fn open(dir: &Path, memory: u64) -> (Arc<Queue>, usize) {
        let (queue, replayed) = Queue::open(
            dir,
            64 << 20,
            memory,
            AckMode::Queued,
            QueueGauges::new("q"),
        )
        .expect("open the queue");
        (Arc::new(queue), replayed)
    }

    /// Pushes `batches` batches of 1,000 values each, in order.
    async fn fill(queue: &Arc<Queue>, batches: i64) {
        for i in 0..batches {
            let (ack, _waiter) = Ack::new();
            let batch = rows(i * 1000..(i + 1) * 1000);
            queue
                .push(vec![(Signal::Metrics, batch, ack)])
                .await
                .expect("push");
        }
    }

    /// Takes everything pending, finishing each request; the values in the
    /// order taken, and the most row bytes the queue held meanwhile.
    async fn drain(queue: &Arc<Queue>) -> (Vec<i64>, u64) {
        let mut values = Vec::new();
        let mut most = queue.state().held;
        while queue.state().pending_records > 0 {
            let taken = queue
                .take(4_000, u64::MAX, Duration::ZERO)
                .await
                .expect("entries");
            most = most.max(queue.state().held);
            for e in &taken {
                let column = e.rows.column(0).as_any().downcast_ref::<Int64Array>();
                values.extend(column.expect("Int64").values().iter().copied());
            }
            let done: Vec<(u64, u64)> = taken.iter().map(|e| (e.id, e.bytes)).collect();
            queue.finish(&done);
        }
        (values, most)
    }

    /// Guarantees: a disk queue keeps at most `max_memory` bytes of rows in
    /// memory, plus one segment read back; the rest waits on disk only and
    /// is read back in its turn, so every batch leaves once, in order:
    /// while the process runs and after a restart, whose replay keeps
    /// within the bound too.
    #[tokio::test]
    async fn rows_beyond_the_memory_bound_wait_on_disk_and_leave_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let memory = 64 << 10;
        let one = batch_bytes(&rows(0..1000));
        // One segment holds at most a quarter of the bound, rounded up to
        // the smallest segment (256 KiB) plus the group that filled it.
        let bound = memory + (256 << 10) + one;
        {
            let (queue, _) = open(dir.path(), memory);
            fill(&queue, 200).await;
            let held = queue.state().held;
            assert!(held <= memory, "{held} bytes held after the pushes");
            assert!(queue.state().on_disk > 150, "{}", queue.state().on_disk);
            // Half is sent; the rest stays for the restart.
            let mut sent = Vec::new();
            while sent.len() < 100_000 {
                let taken = queue
                    .take(1_000, u64::MAX, Duration::ZERO)
                    .await
                    .expect("entries");
                assert!(queue.state().held <= bound);
                for e in &taken {
                    let column = e.rows.column(0).as_any().downcast_ref::<Int64Array>();
                    sent.extend(column.expect("Int64").values().iter().copied());
                }
                let done: Vec<(u64, u64)> = taken.iter().map(|e| (e.id, e.bytes)).collect();
                queue.finish(&done);
            }
            assert!(sent.iter().copied().eq(0..100_000), "sent out of order");
        }
        let (queue, replayed) = open(dir.path(), memory);
        assert_eq!(replayed, 100);
        assert!(queue.state().held <= memory);
        let (values, most) = drain(&queue).await;
        assert!(
            values.iter().copied().eq(100_000..200_000),
            "{} values, out of order",
            values.len()
        );
        assert!(most <= bound, "{most} bytes held, bound {bound}");
        assert_eq!(queue.state().held, 0);
    }

    /// Guarantees: when the disk damages a segment of batches waiting on
    /// disk only, those batches are dropped (and counted), the others are
    /// still sent in order, and the queue goes on.
    #[tokio::test]
    async fn a_segment_damaged_on_disk_loses_only_its_batches() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (queue, _) = open(dir.path(), 64 << 10);
        fill(&queue, 200).await;
        // Damage the last byte of every record's data in the second
        // segment... simplest: flip a byte in the middle of it.
        let mut segments: Vec<PathBuf> = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "wal"))
            .collect();
        segments.sort();
        assert!(segments.len() >= 3, "{segments:?}");
        let damaged = &segments[1];
        let mut data = std::fs::read(damaged).expect("read");
        let middle = data.len() / 2;
        data[middle] ^= 0xff;
        std::fs::write(damaged, &data).expect("write");

        let (values, _) = drain(&queue).await;
        assert!(values.len() < 200_000, "nothing was lost");
        assert!(
            values.len() > 100_000,
            "too much was lost: {}",
            values.len()
        );
        // What was sent is in order, and whole batches.
        assert!(values.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(values.len() % 1000, 0);
        assert_eq!(values.first(), Some(&0));
        assert_eq!(values.last(), Some(&199_999));
        // The queue goes on.
        fill(&queue, 1).await;
        assert!(drain(&queue).await.0.iter().copied().eq(0..1000));
    }
}
