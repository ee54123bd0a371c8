//! Batches into the pipeline, and their acknowledgements back to the
//! consumer loop: each batch is converted to rows, sent (waiting while the
//! pipeline is full), and its acknowledgement awaited; a batch a sink
//! could not take is sent again with backoff until it is taken or the
//! source stops. Only then are its messages finished.

use std::sync::Arc;
use std::time::Duration;

use arrow::record_batch::RecordBatch;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tracing::{debug, warn};
use weir_core::{Ack, AckStatus, AckWaiter, Batch, Output, Shutdown, Signal};

use super::batcher::Outgoing;
use super::offsets::Token;
use crate::metrics;

/// The first wait before a batch is sent again; it doubles up to
/// [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Messages the pipeline is done with (or that will never make rows).
#[derive(Debug)]
pub(crate) struct Finished {
    /// The messages.
    pub tokens: Vec<Token>,
    /// Their value bytes.
    pub bytes: usize,
}

/// What the delivery task needs.
#[derive(Clone)]
pub(crate) struct Deliver {
    pub name: Arc<str>,
    pub output: Output,
    pub finished: mpsc::UnboundedSender<Finished>,
    pub shutdown: Shutdown,
}

impl Deliver {
    fn finish(&self, tokens: Vec<Token>, bytes: usize) {
        // The loop is gone only when the source stops: nothing to tell.
        let _ = self.finished.send(Finished { tokens, bytes });
    }
}

/// Sends each batch of `batches` in order, until the channel closes; then
/// waits for the acknowledgements still out.
pub(crate) async fn run(mut batches: mpsc::Receiver<Outgoing>, d: Deliver) {
    let mut waiting = JoinSet::new();
    while let Some(out) = batches.recv().await {
        while waiting.try_join_next().is_some() {}
        let signal = out.request.signal();
        let converted = match out.request.convert() {
            Ok(c) => c,
            Err(e) => {
                // Not a state that passes: sending it again would fail again.
                warn!(component = %d.name, %signal, messages = out.tokens.len(), error = %e,
                    "kafka: these messages cannot be converted to rows; they are skipped");
                metrics::rejected_records(&d.name, signal).increment(out.tokens.len() as u64);
                d.finish(out.tokens, out.bytes);
                continue;
            }
        };
        if converted.rejected > 0 {
            metrics::rejected_records(&d.name, signal).increment(converted.rejected);
            debug!(component = %d.name, %signal, rejected = converted.rejected,
                reason = converted.rejection.as_deref().unwrap_or(""), "kafka: records refused");
        }
        if converted.batch.num_rows() == 0 || !d.output.wants(signal) {
            d.finish(out.tokens, out.bytes);
            continue;
        }
        let data = converted.batch;
        let (ack, waiter) = Ack::new();
        if d.output
            .send(Batch::new(signal, data.clone(), ack))
            .await
            .is_err()
        {
            return; // The pipeline stopped: the messages are read again later.
        }
        waiting.spawn(acknowledged(
            d.clone(),
            signal,
            data,
            out.tokens,
            out.bytes,
            waiter,
        ));
    }
    while waiting.join_next().await.is_some() {}
}

/// Waits for one batch's acknowledgement, sending it again while it fails.
async fn acknowledged(
    d: Deliver,
    signal: Signal,
    data: RecordBatch,
    tokens: Vec<Token>,
    bytes: usize,
    mut waiter: AckWaiter,
) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        match waiter.await {
            AckStatus::Delivered => break,
            AckStatus::Rejected(reason) => {
                // Refused for good (the data is at fault): sending it again
                // would be refused again.
                warn!(component = %d.name, %signal, rows = data.num_rows(), %reason,
                    "kafka: a sink refused these records for good; their messages are skipped");
                metrics::rejected_records(&d.name, signal).increment(data.num_rows() as u64);
                break;
            }
            AckStatus::Failed(reason) => {
                metrics::redeliveries(&d.name).increment(1);
                warn!(component = %d.name, %signal, rows = data.num_rows(), %reason,
                    retry_in = ?backoff, "kafka: a sink could not take a batch; it will be sent again");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = d.shutdown.wait() => return,
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                let (ack, next) = Ack::new();
                if d.output
                    .send(Batch::new(signal, data.clone(), ack))
                    .await
                    .is_err()
                {
                    return;
                }
                waiter = next;
            }
        }
    }
    d.finish(tokens, bytes);
}
