//! [`ExportSink`]: the sink every external backend runs in. It takes
//! batches into its [`Queue`] (in memory, or on disk), gathers them into
//! requests (`max_batch_records`, `max_batch_bytes`, `batch_timeout`), keeps
//! up to `max_in_flight` requests out, and retries what may pass.
//!
//! ```text
//! input ──push──▶ Queue ──take──▶ export (≤ max_in_flight) ──▶ Exporter
//!                   ▲                 │ retryable: backoff + jitter, Retry-After
//!                   └──── finish ◀────┘ taken / refused for good (counted)
//! ```
//!
//! Acknowledgements: without a queue, a batch is acknowledged once the
//! backend took it; if it is still failing after `retry.max_elapsed` it is
//! failed back to its source (whose client retries). With a disk queue,
//! once it is fsynced in the queue (`ack = "queued"`) or once the backend
//! took it (`ack = "delivered"`); it is retried until the backend takes or
//! refuses it, across restarts. A batch the backend refuses for good is
//! rejected to its source and counted, never dropped silently.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};
use weir_core::{ComponentError, Sink, SinkContext};

use crate::exporter::{ExportError, Exporter};
use crate::metrics::{self, QueueGauges};
use crate::queue::{Entry, Queue};
use crate::settings::{SendSettings, backoff};

/// How long a stopping sink keeps sending what it holds before it gives
/// up (what is on disk is sent at the next start).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// How often a sink whose backend keeps failing logs it at most.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// Batches taken from the input at once, and so appended to a disk queue
/// with one fsync.
const GROUP: usize = 64;

/// An external sink: an [`Exporter`] behind the shared queue, batching
/// and retries. See the [module documentation](self).
pub struct ExportSink {
    name: Arc<str>,
    exporter: Arc<dyn Exporter>,
    settings: SendSettings,
    queue_dir: Option<PathBuf>,
}

impl ExportSink {
    /// The sink `name` sending through `exporter`. A disk queue without a
    /// `dir` goes to `queues/<name>` in `state_dir` (the store's
    /// directory); without either it is a config error.
    pub fn new(
        name: &str,
        exporter: Arc<dyn Exporter>,
        settings: SendSettings,
        state_dir: Option<&Path>,
    ) -> Result<Self, ComponentError> {
        let queue_dir = match &settings.queue {
            None => None,
            Some(q) => Some(match (&q.dir, state_dir) {
                (Some(dir), _) => dir.clone(),
                (None, Some(state)) => state.join("queues").join(name),
                (None, None) => {
                    return Err(ComponentError::config(
                        name,
                        "`queue` has no `dir` and there is no store directory to put it in: \
                         set `queue.dir`, or `[store] dir`",
                    ));
                }
            }),
        };
        Ok(ExportSink {
            name: Arc::from(name),
            exporter,
            settings,
            queue_dir,
        })
    }

    async fn open_queue(&self) -> Result<Arc<Queue>, ComponentError> {
        let gauges = QueueGauges::new(&self.name);
        let (Some(dir), Some(q)) = (&self.queue_dir, &self.settings.queue) else {
            let s = &self.settings;
            let bound = s.max_batch_bytes.saturating_mul(s.max_in_flight as u64 + 1);
            return Ok(Arc::new(Queue::memory(bound, gauges)));
        };
        let (dir, max_size, memory, ack) = (dir.clone(), q.max_size, q.max_memory, q.ack);
        let opened =
            tokio::task::spawn_blocking(move || Queue::open(&dir, max_size, memory, ack, gauges))
                .await
                .map_err(|e| ComponentError::internal(&*self.name, e.to_string()))?;
        let (queue, replayed) = opened.map_err(|e| {
            ComponentError::config(
                &*self.name,
                format!("{e}; check that the directory is writable and not used by another Weir"),
            )
        })?;
        if replayed > 0 {
            info!(component = %self.name, batches = replayed, "the disk queue holds batches from before the restart; they are sent first");
        }
        Ok(Arc::new(queue))
    }
}

#[async_trait]
impl Sink for ExportSink {
    async fn run(self: Box<Self>, mut cx: SinkContext) -> Result<(), ComponentError> {
        let queue = self.open_queue().await?;
        let (stop_tx, stop) = watch::channel(false);
        let sender = Sender {
            name: self.name.clone(),
            exporter: self.exporter.clone(),
            settings: self.settings.clone(),
            queue: queue.clone(),
            on_disk: self.queue_dir.is_some(),
            stop,
            warned: Arc::new(Mutex::new(None)),
        };
        // Aborted if this task is (the pipeline stopping hard): nothing is
        // left sending behind a stopped sink.
        let mut sending = JoinSet::new();
        sending.spawn(sender.run());
        let mut batches = Vec::with_capacity(GROUP);
        while cx.input.recv_many(&mut batches, GROUP).await.is_some() {
            let group = batches.drain(..).map(|b| b.into_parts()).collect();
            if let Err(e) = queue.push(group).await {
                warn!(component = %self.name, error = %e, "a batch could not be queued; it is failed back to its source");
            }
        }
        // The input is closed: send what is held for a while, then stop.
        queue.close();
        let drain = tokio::spawn(async move {
            tokio::time::sleep(DRAIN_TIMEOUT).await;
            let _ = stop_tx.send(true);
        });
        while sending.join_next().await.is_some() {}
        drain.abort();
        queue.abandon("the sink stopped before the backend took it");
        if queue.len() > 0 {
            let what = if self.queue_dir.is_some() {
                "they stay in the disk queue and are sent at the next start"
            } else {
                "they were failed back to their sources"
            };
            warn!(component = %self.name, batches = queue.len(), "stopping before every batch reached the backend; {what}");
        }
        Ok(())
    }
}

/// The sending side of one sink.
#[derive(Clone)]
struct Sender {
    name: Arc<str>,
    exporter: Arc<dyn Exporter>,
    settings: SendSettings,
    queue: Arc<Queue>,
    on_disk: bool,
    /// Set when a stopping sink gives up sending.
    stop: watch::Receiver<bool>,
    /// When a failure was last logged at `warn`.
    warned: Arc<Mutex<Option<Instant>>>,
}

/// What became of one request's entries.
enum Outcome {
    /// The backend took them (maybe refusing some records, counted).
    Sent,
    /// The backend refused them for good.
    Refused(String),
    /// Still failing after `max_elapsed` (no queue): back to the sources.
    Expired(String),
    /// The sink is stopping: left as they are.
    Stopped,
}

impl Sender {
    async fn run(self) {
        let permits = Arc::new(Semaphore::new(self.settings.max_in_flight));
        let mut requests = JoinSet::new();
        loop {
            let Ok(permit) = permits.clone().acquire_owned().await else {
                break;
            };
            let s = &self.settings;
            let mut stop = self.stop.clone();
            let taken = tokio::select! {
                taken = self.queue.take(s.max_batch_records, s.max_batch_bytes, s.batch_timeout) => taken,
                _ = stop.wait_for(|s| *s) => None,
            };
            let Some(entries) = taken else { break };
            let this = self.clone();
            requests.spawn(async move {
                this.request(entries).await;
                drop(permit);
            });
            while requests.try_join_next().is_some() {}
        }
        while requests.join_next().await.is_some() {}
    }

    /// Sends one request's entries until it is settled, then finishes them.
    async fn request(&self, entries: Vec<Entry>) {
        let signal = entries[0].signal;
        let rows = match merge(&entries) {
            Ok(rows) => rows,
            Err(e) => {
                // Entries of one schema always concatenate; never stall on it.
                self.settle(
                    entries,
                    Outcome::Refused(format!("cannot merge batches: {e}")),
                )
                .await;
                return;
            }
        };
        let started = Instant::now();
        let mut attempt = 0u32;
        let outcome = loop {
            match self.exporter.export(signal, &rows).await {
                Ok(exported) => {
                    metrics::requests(&self.name, "sent").increment(1);
                    let taken =
                        rows.num_rows() as u64 - exported.rejected.min(rows.num_rows() as u64);
                    metrics::sent(&self.name, signal).increment(taken);
                    if exported.rejected > 0 {
                        metrics::dropped(&self.name, "partial").increment(exported.rejected);
                        warn!(component = %self.name, %signal, records = exported.rejected,
                            reason = exported.rejection.as_deref().unwrap_or(""),
                            "the backend refused some records for good; they are dropped");
                    }
                    *self.warned.lock().unwrap_or_else(PoisonError::into_inner) = None;
                    break Outcome::Sent;
                }
                Err(ExportError::Permanent { reason, .. }) => {
                    metrics::requests(&self.name, "refused").increment(1);
                    metrics::dropped(&self.name, "refused").increment(rows.num_rows() as u64);
                    warn!(component = %self.name, %signal, records = rows.num_rows(), %reason,
                        "the backend refused these records for good; they are dropped");
                    break Outcome::Refused(reason);
                }
                Err(ExportError::Retryable { reason, after }) => {
                    metrics::requests(&self.name, "retried").increment(1);
                    attempt += 1;
                    if !self.on_disk && started.elapsed() >= self.settings.retry.max_elapsed {
                        metrics::dropped(&self.name, "expired").increment(rows.num_rows() as u64);
                        warn!(component = %self.name, %signal, records = rows.num_rows(), %reason,
                            "the backend kept failing for retry.max_elapsed; the records are failed back to their sources");
                        break Outcome::Expired(reason);
                    }
                    let wait = backoff(&self.settings.retry, attempt, after, jitter());
                    self.log_retry(&reason, wait);
                    let mut stop = self.stop.clone();
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = stop.wait_for(|s| *s) => break Outcome::Stopped,
                    }
                }
            }
        };
        self.settle(entries, outcome).await;
    }

    /// Logs a failure that will be retried: at `warn` once per
    /// [`WARN_EVERY`] across the sink's requests, else at `debug`.
    fn log_retry(&self, reason: &str, wait: Duration) {
        let now = Instant::now();
        let mut warned = self.warned.lock().unwrap_or_else(PoisonError::into_inner);
        if warned.is_none_or(|at| now.duration_since(at) >= WARN_EVERY) {
            *warned = Some(now);
            warn!(component = %self.name, error = %reason, retry_in = ?wait,
                "the backend did not take a request; it will be sent again");
        } else {
            debug!(component = %self.name, error = %reason, retry_in = ?wait, "retrying");
        }
    }

    /// Answers the entries' acknowledgements per `outcome` and removes
    /// them from the queue (all but stopped ones).
    async fn settle(&self, entries: Vec<Entry>, outcome: Outcome) {
        let mut done = Vec::with_capacity(entries.len());
        for e in entries {
            done.push((e.id, e.bytes));
            let Some(ack) = e.ack else { continue };
            match &outcome {
                Outcome::Sent => ack.deliver(),
                Outcome::Refused(reason) => ack.reject(reason.clone()),
                Outcome::Expired(reason) => ack.fail(reason.clone()),
                Outcome::Stopped => ack.fail("the sink stopped before the backend took it"),
            }
        }
        if matches!(outcome, Outcome::Stopped) {
            return;
        }
        let queue = self.queue.clone();
        if self.on_disk {
            let _ = tokio::task::spawn_blocking(move || queue.finish(&done)).await;
        } else {
            queue.finish(&done);
        }
    }
}

/// The rows of consecutive entries of one signal and schema, as one batch.
fn merge(entries: &[Entry]) -> Result<RecordBatch, arrow::error::ArrowError> {
    if let [one] = entries {
        return Ok(one.rows.clone());
    }
    let schema = entries[0].rows.schema();
    arrow::compute::concat_batches(&schema, entries.iter().map(|e| &e.rows))
}

/// A number in `[0, 1)` for backoff jitter.
fn jitter() -> f64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u64(0);
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}
