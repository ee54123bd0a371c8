//! Aggregating a pane's rows while the next ones arrive.
//!
//! A rules processor acknowledges a batch once its rows are in the group
//! (a pane's gathered rows, a buffer). Aggregating the rows of a full pane
//! into every store takes longer than taking a batch; were it done before
//! the acknowledgement, every request in flight would wait for it, and the
//! senders would send nothing meanwhile. So the group hands the stores and
//! the rows to the rules' worker threads and takes the stores back when it
//! next needs them: to aggregate the next pane (one aggregation runs at a
//! time, so the rows waiting are at most one flush's worth more), to
//! evaluate, to reload. Every reader waits for them, so results are the
//! same as aggregating in place.

use arrow::record_batch::RecordBatch;
use tokio::sync::oneshot;
use weir_core::Signal;

use super::{absorb_all, block_here, on_threads};
use crate::incremental::PaneStore;
use crate::time::UnixNanos;

/// The rows of one pane of one table.
pub(super) type PaneRows = ((Signal, UnixNanos), Vec<RecordBatch>);

/// The stores back from an aggregation, and the bytes they then hold.
pub(super) type Done = oneshot::Receiver<(Vec<PaneStore>, usize)>;

/// Aggregates `work` into `stores` on the rules' worker threads; the
/// stores come back through the returned receiver, whatever happened (a
/// panic while aggregating is caught: the stores keep what was done).
pub(super) fn spawn(mut stores: Vec<PaneStore>, work: Vec<PaneRows>, threads: usize) -> Done {
    let (tx, rx) = oneshot::channel();
    rayon::spawn(move || {
        let run = std::panic::AssertUnwindSafe(|| {
            for (pane, rows) in &work {
                absorb_spread(&mut stores, *pane, rows, threads);
            }
        });
        if std::panic::catch_unwind(run).is_err() {
            tracing::error!(
                "aggregating a pane's rows panicked (a bug in Weir); its rows are lost"
            );
        }
        let bytes = stores.iter().map(PaneStore::bytes).sum();
        // The group may be gone (a reload, a shutdown): nothing to hand back.
        let _ = tx.send((stores, bytes));
    });
    rx
}

/// Aggregates the rows of `pane` into every store of its table, the
/// stores spread over at most `threads` threads; blocks until done. On a
/// runtime's task only with two stores and threads or more (the work then
/// goes to the worker threads; one store would run on this thread's own
/// runtime, which cannot start inside another).
pub(super) fn absorb_spread(
    stores: &mut [PaneStore],
    pane: (Signal, UnixNanos),
    rows: &[RecordBatch],
    threads: usize,
) {
    let parts = stores.len().clamp(1, threads.max(1));
    if parts > 1 {
        let chunk = stores.len().div_ceil(parts);
        on_threads(stores.chunks_mut(chunk).collect(), |part| {
            block_here(absorb_all(part, pane, rows));
        });
    } else {
        block_here(absorb_all(stores, pane, rows));
    }
}
