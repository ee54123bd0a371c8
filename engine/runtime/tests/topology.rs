//! Runtime behaviour with in-code components: routing, acknowledgements,
//! backpressure and draining.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use arrow::array::{ArrayRef, Int64Array, RecordBatch};
use async_trait::async_trait;
use tokio::sync::{Mutex, Semaphore, mpsc};
use weir_core::ack::DROPPED_WITHOUT_VERDICT;
use weir_core::{
    Ack, AckStatus, AckWaiter, Batch, ComponentError, Processor, SendError, Signal, SignalSet,
    Sink, SinkContext, Source, SourceContext,
};
use weir_runtime::{Built, Node, Topology};

fn rows(n: i64) -> RecordBatch {
    let col: ArrayRef = Arc::new(Int64Array::from_iter_values(0..n));
    RecordBatch::try_from_iter([("n", col)]).expect("valid batch")
}

/// A source that sends what the test pushes through a channel and reports
/// each send's outcome and acknowledgement back.
struct ScriptedSource {
    rx: mpsc::Receiver<(Batch, Option<Duration>)>,
    results: mpsc::UnboundedSender<Result<(), String>>,
}

#[async_trait]
impl Source for ScriptedSource {
    async fn run(mut self: Box<Self>, cx: SourceContext) -> Result<(), ComponentError> {
        loop {
            tokio::select! {
                () = cx.shutdown.wait() => return Ok(()),
                next = self.rx.recv() => {
                    let Some((batch, wait)) = next else { return Ok(()) };
                    let r = match wait {
                        Some(w) => cx.output.send_within(batch, w).await,
                        None => cx.output.send(batch).await,
                    };
                    let _ = self.results.send(r.map_err(|e| match e {
                        SendError::Full(_) => "full".to_string(),
                        SendError::Closed(_) => "closed".to_string(),
                    }));
                }
            }
        }
    }
}

/// A sink that records the signal and row count of every batch, holding
/// each batch until a permit is available (a slow sink when permits are
/// scarce), and optionally failing them.
struct RecordingSink {
    seen: Seen,
    gate: Arc<Semaphore>,
    fail: bool,
}

#[async_trait]
impl Sink for RecordingSink {
    async fn run(self: Box<Self>, mut cx: SinkContext) -> Result<(), ComponentError> {
        while let Some(batch) = cx.input.recv().await {
            let permit = self.gate.acquire().await.expect("gate open");
            permit.forget();
            self.seen
                .lock()
                .await
                .push((batch.signal(), batch.num_rows()));
            if self.fail {
                batch.fail("disk full");
            } else {
                batch.deliver();
            }
        }
        Ok(())
    }
}

/// A sink that buffers every batch and writes them all once its input has
/// ended, after a permit of `flush` (a flush that may hang).
struct BufferingSink {
    flush: Arc<Semaphore>,
}

#[async_trait]
impl Sink for BufferingSink {
    async fn run(self: Box<Self>, mut cx: SinkContext) -> Result<(), ComponentError> {
        let mut buffer = Vec::new();
        while let Some(batch) = cx.input.recv().await {
            buffer.push(batch);
        }
        let permit = self.flush.acquire().await.expect("gate open");
        permit.forget();
        for batch in buffer {
            batch.deliver();
        }
        Ok(())
    }
}

/// A processor that splits each batch in two halves, and drops batches of
/// a single row.
struct Splitter {
    seen: Arc<AtomicUsize>,
}

#[async_trait]
impl Processor for Splitter {
    async fn process(&mut self, batch: Batch, out: &mut Vec<Batch>) -> Result<(), ComponentError> {
        self.seen.fetch_add(1, Ordering::SeqCst);
        let n = batch.num_rows();
        if n == 1 {
            // Filtered out on purpose: done with it.
            batch.deliver();
            return Ok(());
        }
        if n == 13 {
            // The input is dropped without a verdict; the runtime's failure,
            // which says why, is what the source hears.
            return Err(ComponentError::internal("split", "thirteen is unlucky"));
        }
        let half = n / 2;
        out.push(batch.with_data(batch.data().slice(0, half)));
        out.push(batch.with_data(batch.data().slice(half, n - half)));
        batch.deliver();
        Ok(())
    }
}

struct Harness {
    tx: mpsc::Sender<(Batch, Option<Duration>)>,
    results: mpsc::UnboundedReceiver<Result<(), String>>,
}

impl Harness {
    async fn send(
        &mut self,
        signal: Signal,
        n: i64,
        wait: Option<Duration>,
    ) -> (Result<(), String>, AckWaiter) {
        let (ack, waiter) = Ack::new();
        self.tx
            .send((Batch::new(signal, rows(n), ack), wait))
            .await
            .expect("source alive");
        (self.results.recv().await.expect("a result"), waiter)
    }
}

fn source() -> (Built, Harness) {
    let (tx, rx) = mpsc::channel(16);
    let (rtx, rrx) = mpsc::unbounded_channel();
    (
        Built::Source(Box::new(ScriptedSource { rx, results: rtx })),
        Harness { tx, results: rrx },
    )
}

/// What a recording sink has seen: signal and row count per batch.
type Seen = Arc<Mutex<Vec<(Signal, usize)>>>;

fn sink(fail: bool, permits: usize) -> (Built, Seen, Arc<Semaphore>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let gate = Arc::new(Semaphore::new(permits));
    (
        Built::Sink(Box::new(RecordingSink {
            seen: seen.clone(),
            gate: gate.clone(),
            fail,
        })),
        seen,
        gate,
    )
}

fn node(name: &str, built: Built, inputs: &[(&str, SignalSet)]) -> Node {
    Node {
        name: name.into(),
        built,
        inputs: inputs.iter().map(|(n, s)| (n.to_string(), *s)).collect(),
        queue_capacity: 2,
    }
}

/// Scenario: one source fans out to two sinks, one of which only takes logs.
/// Guarantees: each sink gets exactly its signals; the source's ack resolves
/// Delivered only after every sink that received the batch is done.
#[tokio::test]
async fn fan_out_routes_by_signal_and_acks_after_all_sinks() {
    let (src, mut h) = source();
    let (all, all_seen, _) = sink(false, 1000);
    let (logs, logs_seen, _) = sink(false, 1000);
    let running = Topology::new(vec![
        node("src", src, &[]),
        node("all", all, &[("src", SignalSet::ALL)]),
        node("logs", logs, &[("src", SignalSet::only(Signal::Logs))]),
    ])
    .expect("valid graph")
    .start();

    let (r, w) = h.send(Signal::Logs, 5, None).await;
    r.expect("sent");
    assert_eq!(w.await, AckStatus::Delivered);
    let (r, w) = h.send(Signal::Spans, 7, None).await;
    r.expect("sent");
    assert_eq!(w.await, AckStatus::Delivered);

    assert_eq!(
        *all_seen.lock().await,
        vec![(Signal::Logs, 5), (Signal::Spans, 7)]
    );
    assert_eq!(*logs_seen.lock().await, vec![(Signal::Logs, 5)]);
    assert!(running.drain(Duration::from_secs(5)).await.is_clean());
}

/// Scenario: two sources feed one processor that splits batches, into a sink.
/// Guarantees: fan-in works; split outputs are acknowledged together; a
/// dropped batch is acknowledged; a processor error fails that batch only.
#[tokio::test]
async fn fan_in_through_processor_with_split_drop_and_error() {
    let (a, mut ha) = source();
    let (b, mut hb) = source();
    let (out, seen, _) = sink(false, 1000);
    let calls = Arc::new(AtomicUsize::new(0));
    let running = Topology::new(vec![
        node("a", a, &[]),
        node("b", b, &[]),
        node(
            "split",
            Built::Processor(Box::new(Splitter {
                seen: calls.clone(),
            })),
            &[("a", SignalSet::ALL), ("b", SignalSet::ALL)],
        ),
        node("out", out, &[("split", SignalSet::ALL)]),
    ])
    .expect("valid graph")
    .start();

    let (r, w) = ha.send(Signal::Metrics, 10, None).await;
    r.expect("sent");
    assert_eq!(w.await, AckStatus::Delivered);
    let (r, w) = hb.send(Signal::Metrics, 1, None).await;
    r.expect("sent");
    assert_eq!(
        w.await,
        AckStatus::Delivered,
        "a dropped batch is acknowledged"
    );
    let (r, w) = hb.send(Signal::Metrics, 13, None).await;
    r.expect("sent");
    assert!(matches!(w.await, AckStatus::Failed(m) if m.contains("unlucky")));

    assert_eq!(
        *seen.lock().await,
        vec![(Signal::Metrics, 5), (Signal::Metrics, 5)]
    );
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert!(running.drain(Duration::from_secs(5)).await.is_clean());
}

/// Scenario: a sink fails to write.
/// Guarantees: the source is told to retry (Failed), not Delivered.
#[tokio::test]
async fn sink_failure_reaches_the_source() {
    let (src, mut h) = source();
    let (bad, _, _) = sink(true, 1000);
    let (good, _, _) = sink(false, 1000);
    let running = Topology::new(vec![
        node("src", src, &[]),
        node("bad", bad, &[("src", SignalSet::ALL)]),
        node("good", good, &[("src", SignalSet::ALL)]),
    ])
    .expect("valid graph")
    .start();
    let (r, w) = h.send(Signal::Logs, 3, None).await;
    r.expect("sent");
    assert_eq!(w.await, AckStatus::Failed("disk full".into()));
    assert!(running.drain(Duration::from_secs(5)).await.is_clean());
}

/// Scenario: a sink that does not make progress while the source keeps sending.
/// Guarantees: the queue stays bounded (capacity 2 + one batch in the sink's
/// hands), after which `send_within` reports Full and the batch is failed,
/// not queued; once the sink moves again everything accepted is delivered.
#[tokio::test]
async fn slow_sink_pushes_back_to_the_source() {
    let (src, mut h) = source();
    let (slow, seen, gate) = sink(false, 0);
    let running = Topology::new(vec![
        node("src", src, &[]),
        node("slow", slow, &[("src", SignalSet::ALL)]),
    ])
    .expect("valid graph")
    .start();

    let mut accepted = Vec::new();
    let mut refused = 0;
    for _ in 0..10 {
        let (r, w) = h
            .send(Signal::Spans, 4, Some(Duration::from_millis(50)))
            .await;
        match r {
            Ok(()) => accepted.push(w),
            Err(e) => {
                assert_eq!(e, "full");
                assert!(
                    matches!(w.await, AckStatus::Failed(_)),
                    "refused data is not acknowledged"
                );
                refused += 1;
            }
        }
    }
    assert_eq!(
        accepted.len(),
        3,
        "channel capacity 2 plus the batch the sink holds"
    );
    assert_eq!(refused, 7);
    gate.add_permits(100);
    for w in accepted {
        assert_eq!(w.await, AckStatus::Delivered);
    }
    assert_eq!(seen.lock().await.len(), 3);
    assert!(running.drain(Duration::from_secs(5)).await.is_clean());
}

/// Scenario: shutdown while batches wait in channels behind a slow sink.
/// Guarantees: draining delivers every accepted batch before the topology ends.
#[tokio::test]
async fn shutdown_drains_in_flight_batches() {
    let (src, mut h) = source();
    let (slow, seen, gate) = sink(false, 0);
    let running = Topology::new(vec![
        node("src", src, &[]),
        node("slow", slow, &[("src", SignalSet::ALL)]),
    ])
    .expect("valid graph")
    .start();
    let mut waiters = Vec::new();
    for _ in 0..3 {
        let (r, w) = h
            .send(Signal::Logs, 2, Some(Duration::from_millis(50)))
            .await;
        r.expect("room for three");
        waiters.push(w);
    }
    let g = gate.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        g.add_permits(10);
    });
    let report = running.drain(Duration::from_secs(5)).await;
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(seen.lock().await.len(), 3);
    for w in waiters {
        assert_eq!(w.await, AckStatus::Delivered);
    }
}

/// Scenario: a sink buffers batches and flushes them once its input ends;
/// at shutdown the flush either completes or hangs past the timeout.
/// Guarantees: buffered data is Delivered only once the sink writes it; a
/// sink aborted while holding it tells the source to retry (Failed, saying
/// the data was dropped), never Delivered.
#[tokio::test]
async fn aborted_sink_fails_the_batches_it_holds() {
    for flushes in [true, false] {
        let (src, mut h) = source();
        let flush = Arc::new(Semaphore::new(usize::from(flushes)));
        let running = Topology::new(vec![
            node("src", src, &[]),
            node(
                "buffer",
                Built::Sink(Box::new(BufferingSink { flush })),
                &[("src", SignalSet::ALL)],
            ),
        ])
        .expect("valid graph")
        .start();
        let mut waiters = Vec::new();
        for _ in 0..2 {
            let (r, w) = h.send(Signal::Logs, 3, None).await;
            r.expect("sent");
            waiters.push(w);
        }
        let report = running.drain(Duration::from_millis(200)).await;
        if flushes {
            assert!(report.is_clean(), "{report:?}");
        } else {
            assert_eq!(report.timed_out, vec!["buffer".to_string()]);
        }
        for w in waiters {
            let status = w.await;
            if flushes {
                assert_eq!(status, AckStatus::Delivered);
            } else {
                assert_eq!(status, AckStatus::Failed(DROPPED_WITHOUT_VERDICT.into()));
            }
        }
    }
}

/// Scenario: a stuck sink holds one batch in hand and two more wait in its
/// channel when the shutdown timeout passes and the topology is torn down.
/// Guarantees: every one of them, queued or in hand, resolves Failed (the
/// source retries), none Delivered.
#[tokio::test]
async fn batches_queued_at_teardown_fail() {
    let (src, mut h) = source();
    let (stuck, seen, _gate) = sink(false, 0);
    let running = Topology::new(vec![
        node("src", src, &[]),
        node("stuck", stuck, &[("src", SignalSet::ALL)]),
    ])
    .expect("valid graph")
    .start();
    let mut waiters = Vec::new();
    for _ in 0..3 {
        let (r, w) = h
            .send(Signal::Spans, 2, Some(Duration::from_millis(50)))
            .await;
        r.expect("room for three");
        waiters.push(w);
    }
    let report = running.drain(Duration::from_millis(100)).await;
    assert_eq!(report.timed_out, vec!["stuck".to_string()]);
    for w in waiters {
        assert_eq!(w.await, AckStatus::Failed(DROPPED_WITHOUT_VERDICT.into()));
    }
    assert!(seen.lock().await.is_empty(), "nothing was written");
}

/// Guarantees: graphs the configuration should have rejected are refused.
#[test]
fn invalid_graphs_are_refused() {
    let (src, _h) = source();
    let (s, _, _) = sink(false, 1);
    let err = Topology::new(vec![
        node("src", src, &[]),
        node("s", s, &[("nope", SignalSet::ALL)]),
    ]);
    assert!(matches!(
        err,
        Err(weir_runtime::TopologyError::UnknownInput { .. })
    ));
}
