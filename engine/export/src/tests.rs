//! The shared sink around exporters, against a scripted exporter: what
//! the queue, batching, retries and acknowledgements guarantee whatever
//! the backend. The exporters themselves are tested against real backends
//! (or protocol-exact receivers) in `tests/it`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow::array::{Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use async_trait::async_trait;
use tokio::sync::{Notify, mpsc};
use weir_core::{Ack, AckStatus, AckWaiter, Batch, Input, Signal, Sink, SinkContext};

use crate::exporter::{ExportError, Exported, Exporter};
use crate::settings::{AckMode, QueueConfig, RetryConfig, SendSettings};
use crate::sink::ExportSink;

/// An exporter that answers from a script (then `Ok`), and records the
/// values of every request it took.
#[derive(Default)]
struct Scripted {
    answers: Mutex<VecDeque<Result<Exported, ExportError>>>,
    /// Each request taken: its values.
    taken: Mutex<Vec<Vec<i64>>>,
    /// Requests tried, taken or not.
    tries: Mutex<usize>,
    /// When set, every request fails as retryable.
    down: Mutex<bool>,
    changed: Notify,
}

#[async_trait]
impl Exporter for Scripted {
    async fn export(&self, _signal: Signal, rows: &RecordBatch) -> Result<Exported, ExportError> {
        *self.tries.lock().expect("lock") += 1;
        let answer = if *self.down.lock().expect("lock") {
            Err(ExportError::Retryable {
                reason: "backend down".into(),
                after: None,
            })
        } else {
            self.answers
                .lock()
                .expect("lock")
                .pop_front()
                .unwrap_or(Ok(Exported::default()))
        };
        if answer.is_ok() {
            self.taken.lock().expect("lock").push(values(rows));
        }
        self.changed.notify_waiters();
        answer
    }
}

impl Scripted {
    fn values(&self) -> Vec<i64> {
        self.taken.lock().expect("lock").concat()
    }

    /// Waits until `n` values were taken, at most 10 s.
    async fn wait_for(&self, n: usize) {
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let changed = self.changed.notified();
                if self.values().len() >= n {
                    return;
                }
                changed.await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{n} values not taken in time: {:?}", self.values()));
    }
}

fn values(rows: &RecordBatch) -> Vec<i64> {
    rows.column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .expect("an Int64 column")
        .values()
        .to_vec()
}

fn rows(values: std::ops::Range<i64>) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
    RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from_iter_values(values))])
        .expect("a valid batch")
}

fn settings() -> SendSettings {
    SendSettings {
        max_batch_records: 100,
        batch_timeout: Duration::from_millis(20),
        retry: RetryConfig {
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(50),
            max_elapsed: Duration::from_secs(60),
        },
        ..SendSettings::defaults()
    }
}

/// A running sink: its input and its task.
struct Running {
    input: mpsc::Sender<Batch>,
    task: tokio::task::JoinHandle<()>,
}

fn start(exporter: &Arc<Scripted>, settings: SendSettings) -> Running {
    let sink = ExportSink::new("out", exporter.clone(), settings, None).expect("sink");
    let (input, rx) = mpsc::channel(4);
    let task = tokio::spawn(async move {
        Box::new(sink)
            .run(SinkContext {
                name: Arc::from("out"),
                input: Input::new("out", rx),
            })
            .await
            .expect("the sink runs");
    });
    Running { input, task }
}

async fn send(r: &Running, values: std::ops::Range<i64>) -> AckWaiter {
    let (ack, waiter) = Ack::new();
    r.input
        .send(Batch::new(Signal::Metrics, rows(values), ack))
        .await
        .expect("the sink takes input");
    waiter
}

/// Guarantees: without a queue, batches reach the backend in order,
/// gathered into requests of at most `max_batch_records`, and each is
/// acknowledged only once the backend took it.
#[tokio::test]
async fn batches_are_gathered_in_order_and_acknowledged_when_taken() {
    let exporter = Arc::new(Scripted::default());
    let r = start(&exporter, settings());
    let mut waiters = Vec::new();
    for i in 0..10 {
        waiters.push(send(&r, i * 30..(i + 1) * 30).await);
    }
    for w in waiters {
        assert_eq!(w.await, AckStatus::Delivered);
    }
    assert_eq!(exporter.values(), (0..300).collect::<Vec<_>>());
    let sizes: Vec<usize> = exporter
        .taken
        .lock()
        .expect("lock")
        .iter()
        .map(Vec::len)
        .collect();
    assert!(sizes.iter().all(|n| *n <= 100), "requests of {sizes:?}");
    assert!(sizes.len() < 10, "batches were gathered: {sizes:?}");
    drop(r.input);
    r.task.await.expect("the sink stops");
}

/// Guarantees: a failure that may pass is retried until the backend takes
/// the batch; a refusal for good rejects it to its source; rows a backend
/// refuses while taking the rest still count as delivered for the batch.
#[tokio::test]
async fn retryable_failures_are_retried_and_refusals_rejected() {
    let exporter = Arc::new(Scripted::default());
    exporter.answers.lock().expect("lock").extend([
        Err(ExportError::Retryable {
            reason: "503".into(),
            after: Some(Duration::from_millis(30)),
        }),
        Err(ExportError::Retryable {
            reason: "timeout".into(),
            after: None,
        }),
        Ok(Exported::default()),
        Err(ExportError::Permanent {
            reason: "400 bad labels".into(),
            records: 5,
        }),
        Ok(Exported {
            rejected: 2,
            rejection: Some("out of order".into()),
        }),
    ]);
    let r = start(
        &exporter,
        SendSettings {
            max_in_flight: 1,
            ..settings()
        },
    );
    assert_eq!(send(&r, 0..5).await.await, AckStatus::Delivered);
    assert_eq!(*exporter.tries.lock().expect("lock"), 3);
    assert_eq!(
        send(&r, 5..10).await.await,
        AckStatus::Rejected("400 bad labels".into())
    );
    assert_eq!(send(&r, 10..15).await.await, AckStatus::Delivered);
    assert_eq!(exporter.values(), [0, 1, 2, 3, 4, 10, 11, 12, 13, 14]);
    drop(r.input);
    r.task.await.expect("the sink stops");
}

/// Guarantees: without a queue, a batch still failing after
/// `retry.max_elapsed` is failed back to its source, not dropped silently.
#[tokio::test]
async fn without_a_queue_a_batch_failing_too_long_is_failed_back() {
    let exporter = Arc::new(Scripted::default());
    *exporter.down.lock().expect("lock") = true;
    let mut s = settings();
    s.retry.max_elapsed = Duration::from_millis(100);
    let r = start(&exporter, s);
    assert!(
        matches!(send(&r, 0..5).await.await, AckStatus::Failed(reason) if reason.contains("backend down"))
    );
    drop(r.input);
    r.task.await.expect("the sink stops");
}

/// Guarantees: without a queue, a backend that never answers does not make
/// the sink hold more and more: once its bound in memory is reached it takes
/// nothing more from its input (which then fills: the pipeline is held
/// back).
#[tokio::test]
async fn without_a_queue_a_stuck_backend_holds_the_pipeline_back() {
    let exporter = Arc::new(Scripted::default());
    *exporter.down.lock().expect("lock") = true;
    let mut s = settings();
    s.max_batch_bytes = 64 << 10;
    s.max_in_flight = 1;
    let r = start(&exporter, s);
    let mut taken = 0;
    loop {
        let (ack, _waiter) = Ack::new();
        let batch = Batch::new(Signal::Metrics, rows(taken..taken + 1000), ack);
        if tokio::time::timeout(Duration::from_millis(500), r.input.send(batch))
            .await
            .is_err()
        {
            break;
        }
        taken += 1000;
        assert!(taken < 1_000_000, "the sink never stopped taking batches");
    }
    // 8 KiB batches: the memory bound (max_batch_bytes x (max_in_flight +
    // 1) = 128 KiB, about 16 batches), the input channel (4) and the batch
    // in hand; never more.
    assert!(taken <= 32_000, "the sink took {taken} rows");
    r.task.abort();
}

fn queued(dir: &std::path::Path, max_size: u64, ack: AckMode) -> SendSettings {
    SendSettings {
        queue: Some(QueueConfig {
            max_size,
            // Small: most of a filled queue waits on disk only.
            max_memory: 64 << 10,
            dir: Some(dir.to_path_buf()),
            ack,
        }),
        ..settings()
    }
}

/// Guarantees: with a disk queue, batches are acknowledged once queued
/// while the backend is down; when the queue is full the sink takes
/// nothing more (its input fills: the pipeline is held back); once the
/// backend is back, every queued batch arrives, once (requests out at
/// once may land in any order).
#[tokio::test]
async fn a_full_disk_queue_holds_the_pipeline_back_and_drains_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let exporter = Arc::new(Scripted::default());
    *exporter.down.lock().expect("lock") = true;
    let r = start(&exporter, queued(dir.path(), 1 << 20, AckMode::Queued));
    // 1,000-row batches of about 8 KiB on disk: the queue holds ~120.
    let mut sent = 0i64;
    let full = loop {
        let (ack, waiter) = Ack::new();
        let batch = Batch::new(Signal::Metrics, rows(sent..sent + 1000), ack);
        match tokio::time::timeout(Duration::from_secs(2), r.input.send(batch)).await {
            Ok(sent_ok) => sent_ok.expect("the sink takes input"),
            Err(_) => break sent,
        }
        sent += 1000;
        // Acknowledged while the backend is down: it is on disk.
        if sent <= 50_000 {
            assert_eq!(waiter.await, AckStatus::Delivered);
        }
        assert!(sent < 1_000_000, "the queue never filled");
    };
    assert!(full >= 50_000, "the queue took only {full} rows");
    assert!(exporter.values().is_empty());
    *exporter.down.lock().expect("lock") = false;
    exporter.wait_for(full as usize).await;
    let mut got = exporter.values();
    got.sort_unstable();
    assert_eq!(got.len(), full as usize, "some rows arrived twice");
    assert!(got.iter().copied().eq(0..full), "some rows are missing");
    drop(r.input);
    r.task.await.expect("the sink stops");
}

/// Guarantees: what a disk queue acknowledged survives the sink being
/// stopped without a chance to send it (as a crash would), and is sent
/// after the restart; what was sent before is not sent again.
#[tokio::test]
async fn a_restart_sends_what_the_queue_held_and_only_that() {
    let dir = tempfile::tempdir().expect("tempdir");
    let exporter = Arc::new(Scripted::default());
    let r = start(&exporter, queued(dir.path(), 64 << 20, AckMode::Queued));
    assert_eq!(send(&r, 0..10).await.await, AckStatus::Delivered);
    exporter.wait_for(10).await;
    *exporter.down.lock().expect("lock") = true;
    for i in 1..5 {
        assert_eq!(
            send(&r, i * 10..(i + 1) * 10).await.await,
            AckStatus::Delivered
        );
    }
    // Gone without sending: the task is aborted, as a kill would end it.
    r.task.abort();
    let _ = r.task.await;
    drop(r.input);
    // Let the runtime drop the aborted sending task, which holds the queue.
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }

    let after = Arc::new(Scripted::default());
    let r = start(&after, queued(dir.path(), 64 << 20, AckMode::Queued));
    after.wait_for(40).await;
    assert_eq!(after.values(), (10..50).collect::<Vec<_>>());
    drop(r.input);
    r.task.await.expect("the sink stops");
}

/// Guarantees: with `ack = "delivered"`, a queued batch is acknowledged
/// only once the backend took it.
#[tokio::test]
async fn ack_delivered_waits_for_the_backend() {
    let dir = tempfile::tempdir().expect("tempdir");
    let exporter = Arc::new(Scripted::default());
    *exporter.down.lock().expect("lock") = true;
    let r = start(&exporter, queued(dir.path(), 64 << 20, AckMode::Delivered));
    let mut waiter = send(&r, 0..10).await;
    assert!(
        tokio::time::timeout(Duration::from_millis(300), &mut waiter)
            .await
            .is_err(),
        "acknowledged before the backend took it"
    );
    *exporter.down.lock().expect("lock") = false;
    assert_eq!(waiter.await, AckStatus::Delivered);
    assert_eq!(exporter.values(), (0..10).collect::<Vec<_>>());
    drop(r.input);
    r.task.await.expect("the sink stops");
}
