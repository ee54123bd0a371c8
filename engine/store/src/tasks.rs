//! The store's background tasks: the flusher (woken when a table reaches
//! `flush_size`, and every quarter of `flush_interval` to flush by age and
//! delete files past their grace period) and maintenance (compaction every
//! `compaction_interval`, retention every `[store.retention]
//! check_interval`). Both hold the store weakly and stop with it.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::warn;

use crate::inner::Inner;
use crate::partition::now_ns;

/// Starts the flusher and the maintenance task of `inner`; they stop when
/// `stop` says so or the store is dropped.
pub(crate) fn spawn_tasks(inner: &Arc<Inner>, stop: &watch::Sender<bool>) -> Vec<JoinHandle<()>> {
    let tick =
        (inner.config.flush_interval / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
    let weak = Arc::downgrade(inner);
    let wanted = inner.flush_wanted.clone();
    let mut stop_rx = stop.subscribe();
    let flusher = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop_rx.changed() => break,
                () = wanted.notified() => {}
                () = tokio::time::sleep(tick) => {}
            }
            let Some(inner) = weak.upgrade() else { break };
            inner.flush_due().await;
            inner.reap_graveyard(false).await;
        }
    });
    let every = |d: Duration| {
        let mut i = tokio::time::interval_at(tokio::time::Instant::now() + d, d);
        i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        i
    };
    let weak = Arc::downgrade(inner);
    let mut stop_rx = stop.subscribe();
    let mut compaction = every(inner.config.compaction_interval);
    let mut retention = every(inner.config.retention.check_interval);
    let maintenance = tokio::spawn(async move {
        loop {
            let compact = tokio::select! {
                _ = stop_rx.changed() => break,
                _ = compaction.tick() => true,
                _ = retention.tick() => false,
            };
            let Some(inner) = weak.upgrade() else { break };
            let result = if compact {
                inner.compact(now_ns()).await
            } else {
                inner.enforce_retention(now_ns()).await
            };
            if let Err(e) = result {
                warn!(error = %e, "store maintenance failed; it is retried at its next interval");
            }
        }
    });
    vec![flusher, maintenance]
}
