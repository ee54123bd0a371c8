//! The three kinds of component and the channels between them.
//!
//! * A [`Source`] owns itself and runs until shutdown, sending batches into
//!   its [`Output`].
//! * A [`Processor`] is driven by the runtime, one batch at a time
//!   (`&mut self`), with an optional periodic [`Processor::tick`].
//! * A [`Sink`] owns itself and runs until its [`Input`] is closed and empty.
//!
//! Channels are bounded: a full channel makes [`Output::send`] wait, which
//! stops the upstream component, and so on back to the source, which then
//! refuses new data (OTLP answers `UNAVAILABLE` / 503). Memory stays bounded
//! by the channel capacities times the largest accepted batch.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::mpsc;

use crate::metrics::component::ComponentMetrics;
use crate::{Batch, ComponentError, Shutdown, Signal, SignalSet};

/// Why a batch could not be sent on.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Every downstream channel that wants the batch is still full after the
    /// allowed wait: the pipeline is saturated, the sender should retry later.
    #[error("the pipeline is full: downstream `{0}` has no room")]
    Full(String),
    /// A downstream component has stopped (shutdown).
    #[error("downstream `{0}` has stopped")]
    Closed(String),
}

/// One edge out of a component: the input channel of a downstream component
/// and the signals that travel along it.
#[derive(Debug, Clone)]
pub struct Edge {
    /// The downstream component's name.
    pub to: Arc<str>,
    /// The signals sent along this edge.
    pub signals: SignalSet,
    /// The downstream component's input channel.
    pub sender: mpsc::Sender<Batch>,
}

/// Where a component sends its batches: every downstream edge whose signals
/// include the batch's signal receives a clone (fan-out).
#[derive(Debug, Clone)]
pub struct Output {
    metrics: ComponentMetrics,
    edges: Vec<Edge>,
}

impl Output {
    /// An output of `component` along `edges`.
    pub fn new(component: impl Into<Arc<str>>, edges: Vec<Edge>) -> Self {
        Output {
            metrics: ComponentMetrics::new(component),
            edges,
        }
    }

    /// Whether any downstream component takes `signal`. A source may drop
    /// (and acknowledge) a signal no one consumes.
    pub fn wants(&self, signal: Signal) -> bool {
        self.edges.iter().any(|e| e.signals.contains(signal))
    }

    /// The signals some downstream component takes.
    pub fn signals(&self) -> SignalSet {
        self.edges
            .iter()
            .fold(SignalSet::NONE, |s, e| s.union(e.signals))
    }

    /// Sends `batch` to every downstream component that takes its signal,
    /// waiting as long as it takes for room (backpressure). A batch that
    /// cannot be sent is failed (its source is told to retry).
    pub async fn send(&self, batch: Batch) -> Result<(), SendError> {
        self.send_inner(batch, None).await
    }

    /// Sends `batch` like [`Output::send`] but waits at most `wait` for room
    /// in all downstream channels; returns [`SendError::Full`] otherwise and
    /// sends nothing, so that the caller can refuse the data.
    pub async fn send_within(&self, batch: Batch, wait: Duration) -> Result<(), SendError> {
        self.send_inner(batch, Some(wait)).await
    }

    async fn send_inner(&self, batch: Batch, wait: Option<Duration>) -> Result<(), SendError> {
        match self.reserve_and_send(&batch, wait).await {
            // Every copy is queued with its own clone of the ack (or no one
            // takes this signal): this one has done its part.
            Ok(()) => {
                batch.deliver();
                Ok(())
            }
            Err(e) => {
                // Not accepted downstream: the source must not believe it safe.
                batch.fail(e.to_string());
                Err(e)
            }
        }
    }

    async fn reserve_and_send(
        &self,
        batch: &Batch,
        wait: Option<Duration>,
    ) -> Result<(), SendError> {
        let signal = batch.signal();
        let targets: Vec<&Edge> = self
            .edges
            .iter()
            .filter(|e| e.signals.contains(signal))
            .collect();
        if targets.is_empty() {
            return Ok(());
        }
        let deadline = wait.map(|w| tokio::time::Instant::now() + w);
        // Reserve room everywhere first, so that a batch goes to all of its
        // destinations or to none.
        let mut permits = Vec::with_capacity(targets.len());
        for edge in &targets {
            let permit = match edge.sender.try_reserve() {
                Ok(p) => p,
                Err(mpsc::error::TrySendError::Closed(())) => {
                    return Err(SendError::Closed(edge.to.to_string()));
                }
                Err(mpsc::error::TrySendError::Full(())) => {
                    self.metrics.backpressure_events(&edge.to).increment(1);
                    let reserve = edge.sender.reserve();
                    let result = match deadline {
                        Some(d) => match tokio::time::timeout_at(d, reserve).await {
                            Ok(r) => r,
                            Err(_) => return Err(SendError::Full(edge.to.to_string())),
                        },
                        None => reserve.await,
                    };
                    result.map_err(|_| SendError::Closed(edge.to.to_string()))?
                }
            };
            permits.push((permit, *edge));
        }
        let (records, bytes) = (batch.num_rows() as u64, batch.byte_size() as u64);
        for (permit, edge) in permits {
            permit.send(batch.clone());
            let fill = edge.sender.max_capacity() - edge.sender.capacity();
            ComponentMetrics::new(edge.to.clone())
                .input_queue_batches()
                .set(fill as f64);
        }
        self.metrics.sent_records(signal).increment(records);
        self.metrics.sent_bytes(signal).increment(bytes);
        Ok(())
    }
}

/// A component's input: the receiving end of its bounded channel.
#[derive(Debug)]
pub struct Input {
    metrics: ComponentMetrics,
    receiver: mpsc::Receiver<Batch>,
}

impl Input {
    /// The input of `component`, reading from `receiver`.
    pub fn new(component: impl Into<Arc<str>>, receiver: mpsc::Receiver<Batch>) -> Self {
        Input {
            metrics: ComponentMetrics::new(component),
            receiver,
        }
    }

    /// The next batch, or `None` once every upstream has stopped and the
    /// channel is empty.
    pub async fn recv(&mut self) -> Option<Batch> {
        let batch = self.receiver.recv().await?;
        self.count(&batch);
        Some(batch)
    }

    /// Up to `limit` batches at once (at least one), or `None` at the end.
    /// For sinks that write in groups.
    pub async fn recv_many(&mut self, out: &mut Vec<Batch>, limit: usize) -> Option<usize> {
        let start = out.len();
        let n = self.receiver.recv_many(out, limit.max(1)).await;
        if n == 0 {
            return None;
        }
        for b in &out[start..] {
            self.count_received(b);
        }
        self.gauge();
        Some(n)
    }

    fn count(&self, batch: &Batch) {
        self.count_received(batch);
        self.gauge();
    }

    fn count_received(&self, batch: &Batch) {
        let signal = batch.signal();
        self.metrics
            .received_records(signal)
            .increment(batch.num_rows() as u64);
        self.metrics
            .received_bytes(signal)
            .increment(batch.byte_size() as u64);
    }

    fn gauge(&self) {
        self.metrics
            .input_queue_batches()
            .set(self.receiver.len() as f64);
    }
}

/// What a running source is given.
#[derive(Debug)]
pub struct SourceContext {
    /// The source's name in the pipeline file.
    pub name: Arc<str>,
    /// Where to send batches.
    pub output: Output,
    /// Fires when the source must stop taking new data.
    pub shutdown: Shutdown,
}

/// What a running sink is given.
#[derive(Debug)]
pub struct SinkContext {
    /// The sink's name in the pipeline file.
    pub name: Arc<str>,
    /// The batches to write; closed once every upstream has stopped.
    pub input: Input,
}

/// A component that brings data into Weir (OTLP receiver, Kafka consumer).
#[async_trait]
pub trait Source: Send {
    /// Runs until `cx.shutdown` fires, then stops taking new data, finishes
    /// what it has in hand and returns.
    async fn run(self: Box<Self>, cx: SourceContext) -> Result<(), ComponentError>;
}

/// A component that transforms batches (filter, enrich, redact, a plugin).
///
/// The runtime calls [`Processor::process`] for each input batch and sends
/// what it pushes into `out` downstream. Outputs should be made with
/// [`Batch::with_data`] or [`Batch::derive`] so that they carry the input's
/// acknowledgement; the input itself is then given a verdict like any held
/// batch: [`Batch::deliver`] once the outputs are made or the rows are held
/// (or dropped on purpose), [`Batch::fail`] / [`Batch::reject`] otherwise.
/// An input dropped without a verdict fails its source's request.
#[async_trait]
pub trait Processor: Send {
    /// Processes one batch. On error the input batch is failed (the source
    /// is told to retry) and the runtime counts the error and goes on.
    async fn process(&mut self, batch: Batch, out: &mut Vec<Batch>) -> Result<(), ComponentError>;

    /// How often [`Processor::tick`] should run, if at all.
    fn tick_interval(&self) -> Option<Duration> {
        None
    }

    /// Called every [`Processor::tick_interval`] for time-based output.
    async fn tick(&mut self, _out: &mut Vec<Batch>) -> Result<(), ComponentError> {
        Ok(())
    }

    /// Called once the input has ended, to flush what the processor holds.
    async fn close(&mut self, _out: &mut Vec<Batch>) -> Result<(), ComponentError> {
        Ok(())
    }
}

/// A component that takes data out of Weir (the store, a file, a backend).
///
/// A sink calls [`Batch::deliver`] on each batch (or on its acknowledgement)
/// once the data is durable or accepted by the backend, and [`Batch::fail`]
/// or [`Batch::reject`] when it cannot write. A batch it drops without a
/// verdict, as when its task is aborted at shutdown, fails its source's
/// request.
#[async_trait]
pub trait Sink: Send {
    /// Runs until the input is closed and empty, then flushes and returns.
    async fn run(self: Box<Self>, cx: SinkContext) -> Result<(), ComponentError>;
}

/// A component ready to run: what building a component's config yields and
/// the runtime spawns.
pub enum Built {
    /// A source: brings data in.
    Source(Box<dyn Source>),
    /// A processor: transforms batches.
    Processor(Box<dyn Processor>),
    /// A sink: takes data out.
    Sink(Box<dyn Sink>),
}

impl Built {
    /// `source`, `processor` or `sink`.
    pub fn kind(&self) -> &'static str {
        match self {
            Built::Source(_) => "source",
            Built::Processor(_) => "processor",
            Built::Sink(_) => "sink",
        }
    }
}
