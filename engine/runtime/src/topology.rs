//! Wiring nodes into channels, running them, and shutting them down.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tracing::{error, info, warn};
use weir_core::metrics::component::ComponentMetrics;
use weir_core::{
    Batch, ComponentError, Edge, Input, Output, Processor, Shutdown, SignalSet, Sink, SinkContext,
    Source, SourceContext,
};

use crate::{Built, Node};

/// The nodes given to [`Topology::new`] do not form a valid graph. The
/// configuration crate rejects all of these with file and line first; this
/// is the runtime's own guard.
#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    /// Two nodes share a name.
    #[error("two components are named `{0}`: names must be unique")]
    DuplicateName(String),
    /// An input names no node.
    #[error("`{node}` reads from `{input}`, which does not exist")]
    UnknownInput {
        /// The reading node.
        node: String,
        /// The missing input.
        input: String,
    },
    /// An input names a sink, which has no output.
    #[error("`{node}` reads from `{input}`, which is a sink and has no output")]
    InputIsSink {
        /// The reading node.
        node: String,
        /// The sink.
        input: String,
    },
    /// A source was given inputs.
    #[error("source `{0}` cannot have inputs")]
    SourceWithInputs(String),
}

enum Task {
    Source(Box<dyn Source>, Output),
    Processor(Box<dyn Processor>, Input, Output),
    Sink(Box<dyn Sink>, Input),
}

/// A wired graph of components, ready to start.
pub struct Topology {
    tasks: Vec<(String, Task)>,
}

impl Topology {
    /// Wires `nodes` together: one bounded channel per processor and sink,
    /// and for each source and processor an [`Output`] with one edge per
    /// reader.
    pub fn new(nodes: Vec<Node>) -> Result<Self, TopologyError> {
        let mut kinds: HashMap<String, &'static str> = HashMap::new();
        for node in &nodes {
            if kinds.insert(node.name.clone(), node.built.kind()).is_some() {
                return Err(TopologyError::DuplicateName(node.name.clone()));
            }
        }
        let mut senders = HashMap::new();
        let mut receivers = HashMap::new();
        for node in &nodes {
            if matches!(node.built, Built::Source(_)) {
                if !node.inputs.is_empty() {
                    return Err(TopologyError::SourceWithInputs(node.name.clone()));
                }
                continue;
            }
            let (tx, rx) = mpsc::channel::<Batch>(node.queue_capacity.max(1));
            senders.insert(node.name.clone(), tx);
            receivers.insert(node.name.clone(), rx);
        }
        // Edges out of each node, one per reader, signals merged when a
        // reader names the same node twice (`otlp.logs`, `otlp.spans`).
        let mut edges: HashMap<String, BTreeMap<String, SignalSet>> = HashMap::new();
        for node in &nodes {
            for (from, signals) in &node.inputs {
                match kinds.get(from) {
                    None => {
                        return Err(TopologyError::UnknownInput {
                            node: node.name.clone(),
                            input: from.clone(),
                        });
                    }
                    Some(&"sink") => {
                        return Err(TopologyError::InputIsSink {
                            node: node.name.clone(),
                            input: from.clone(),
                        });
                    }
                    Some(_) => {}
                }
                let set = edges
                    .entry(from.clone())
                    .or_default()
                    .entry(node.name.clone())
                    .or_default();
                *set = set.union(*signals);
            }
        }
        let mut output_of = |name: &str| {
            let list = edges
                .remove(name)
                .unwrap_or_default()
                .into_iter()
                .filter_map(|(to, signals)| {
                    senders.get(&to).map(|sender| Edge {
                        to: Arc::from(to.as_str()),
                        signals,
                        sender: sender.clone(),
                    })
                })
                .collect();
            Output::new(name, list)
        };
        let mut tasks = Vec::with_capacity(nodes.len());
        for node in nodes {
            let name = node.name;
            let task = match node.built {
                Built::Source(s) => Task::Source(s, output_of(&name)),
                Built::Processor(p) => {
                    let rx = receivers
                        .remove(&name)
                        .expect("a channel was made for every processor");
                    Task::Processor(p, Input::new(name.as_str(), rx), output_of(&name))
                }
                Built::Sink(s) => {
                    let rx = receivers
                        .remove(&name)
                        .expect("a channel was made for every sink");
                    Task::Sink(s, Input::new(name.as_str(), rx))
                }
            };
            tasks.push((name, task));
        }
        // Only the Outputs may hold senders now, so that a channel closes as
        // soon as every upstream task has stopped.
        drop(senders);
        Ok(Topology { tasks })
    }

    /// Spawns one task per component on the current tokio runtime.
    pub fn start(self) -> Running {
        let shutdown = Shutdown::new();
        let ready = Arc::new(AtomicBool::new(true));
        let mut set = JoinSet::new();
        let mut names = HashMap::new();
        for (name, task) in self.tasks {
            let name: Arc<str> = Arc::from(name.as_str());
            let n = name.clone();
            let fut: std::pin::Pin<Box<dyn Future<Output = Result<(), ComponentError>> + Send>> =
                match task {
                    Task::Source(source, output) => Box::pin(source.run(SourceContext {
                        name: n,
                        output,
                        shutdown: shutdown.clone(),
                    })),
                    Task::Processor(p, input, output) => {
                        Box::pin(run_processor(n, p, input, output))
                    }
                    Task::Sink(sink, input) => Box::pin(sink.run(SinkContext { name: n, input })),
                };
            ComponentMetrics::new(name.clone()).up().set(1.0);
            let id = set.spawn(fut).id();
            names.insert(id, name);
        }
        Running {
            shutdown,
            ready,
            set,
            names,
            errors: Vec::new(),
        }
    }
}

async fn run_processor(
    name: Arc<str>,
    mut p: Box<dyn Processor>,
    mut input: Input,
    output: Output,
) -> Result<(), ComponentError> {
    let metrics = ComponentMetrics::new(name.clone());
    let mut out = Vec::new();
    let mut ticker = p.tick_interval().map(|every| {
        let mut t = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        t
    });
    loop {
        let tick = async {
            match ticker.as_mut() {
                Some(t) => {
                    t.tick().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            next = input.recv() => {
                let Some(batch) = next else { break };
                let ack = batch.ack().clone();
                match p.process(batch, &mut out).await {
                    // The outputs carry their own clones and are sent below.
                    Ok(()) => ack.deliver(),
                    Err(e) => {
                        metrics.errors("process").increment(1);
                        warn!(component = %name, error = %e, "processing a batch failed; the source is told to retry");
                        let reason = e.to_string();
                        for partial in out.drain(..) {
                            partial.fail(reason.clone());
                        }
                        ack.fail(reason);
                    }
                }
            }
            () = tick => {
                if let Err(e) = p.tick(&mut out).await {
                    metrics.errors("tick").increment(1);
                    warn!(component = %name, error = %e, "tick failed");
                }
            }
        }
        send_all(&name, &metrics, &output, &mut out).await;
    }
    if let Err(e) = p.close(&mut out).await {
        metrics.errors("close").increment(1);
        warn!(component = %name, error = %e, "closing failed");
    }
    send_all(&name, &metrics, &output, &mut out).await;
    Ok(())
}

async fn send_all(name: &str, metrics: &ComponentMetrics, output: &Output, out: &mut Vec<Batch>) {
    for batch in out.drain(..) {
        if let Err(e) = output.send(batch).await {
            metrics.errors("send").increment(1);
            warn!(component = %name, error = %e, "could not send a batch downstream");
        }
    }
}

/// How the topology ended.
#[derive(Debug, Default)]
pub struct ExitReport {
    /// Components that failed or panicked, with the reason.
    pub errors: Vec<(String, String)>,
    /// Components still running when the shutdown timeout passed (aborted).
    pub timed_out: Vec<String>,
}

impl ExitReport {
    /// Whether every component stopped cleanly.
    pub fn is_clean(&self) -> bool {
        self.errors.is_empty() && self.timed_out.is_empty()
    }
}

/// A started topology.
pub struct Running {
    shutdown: Shutdown,
    ready: Arc<AtomicBool>,
    set: JoinSet<Result<(), ComponentError>>,
    names: HashMap<tokio::task::Id, Arc<str>>,
    errors: Vec<(String, String)>,
}

impl Running {
    /// The signal that stops the sources; [`Running::run_until`] fires it.
    pub fn shutdown_signal(&self) -> Shutdown {
        self.shutdown.clone()
    }

    /// A flag that is true while every component runs and no shutdown has
    /// begun (for `/readyz`).
    pub fn readiness(&self) -> Arc<AtomicBool> {
        self.ready.clone()
    }

    /// Runs until `stop` resolves (a signal) or a component fails, then
    /// shuts down gracefully: sources stop, everything in flight drains.
    /// Components still running after `timeout` are aborted.
    pub async fn run_until(
        mut self,
        stop: impl Future<Output = ()>,
        timeout: Duration,
    ) -> ExitReport {
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => {
                    info!("shutting down: sources stop taking data, in-flight data drains");
                    break;
                }
                done = self.set.join_next_with_id() => {
                    let Some(done) = done else { return ExitReport::default() };
                    let stopped_early = self.record(done);
                    if stopped_early {
                        error!("a component stopped unexpectedly; shutting the pipeline down");
                        break;
                    }
                }
            }
        }
        self.drain(timeout).await
    }

    /// Fires the shutdown signal and waits up to `timeout` for every
    /// component to finish.
    pub async fn drain(mut self, timeout: Duration) -> ExitReport {
        self.ready.store(false, Ordering::SeqCst);
        self.shutdown.trigger();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.set.join_next_with_id()).await {
                Ok(Some(done)) => {
                    self.record(done);
                }
                Ok(None) => break,
                Err(_) => {
                    let timed_out: Vec<String> =
                        self.names.values().map(|n| n.to_string()).collect();
                    warn!(components = ?timed_out, "shutdown timeout passed; aborting the rest");
                    self.set.abort_all();
                    return ExitReport {
                        errors: self.errors,
                        timed_out,
                    };
                }
            }
        }
        ExitReport {
            errors: self.errors,
            timed_out: Vec::new(),
        }
    }

    /// Records a finished task; true when it stopped on its own before any
    /// shutdown (an error, a panic, or a source that gave up).
    fn record(
        &mut self,
        done: Result<(tokio::task::Id, Result<(), ComponentError>), tokio::task::JoinError>,
    ) -> bool {
        let (id, outcome) = match done {
            Ok((id, r)) => (id, r.map_err(|e| e.to_string())),
            Err(e) => (
                e.id(),
                Err(if e.is_panic() {
                    "panicked (this is a bug in Weir, please report it)".to_string()
                } else {
                    "was cancelled".to_string()
                }),
            ),
        };
        let name = self
            .names
            .remove(&id)
            .map(|n| n.to_string())
            .unwrap_or_default();
        let metrics = ComponentMetrics::new(name.as_str());
        metrics.up().set(0.0);
        let early = !self.shutdown.is_triggered();
        match outcome {
            Ok(()) if early => {
                info!(component = %name, "component finished");
            }
            Ok(()) => {}
            Err(reason) => {
                error!(component = %name, error = %reason, "component failed");
                metrics.errors("run").increment(1);
                self.errors.push((name, reason));
            }
        }
        if early {
            self.ready.store(false, Ordering::SeqCst);
        }
        early
    }
}
