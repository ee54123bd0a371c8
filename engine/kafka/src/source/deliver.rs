//! Batches into the pipeline, and their acknowledgements back to the
//! consumer loop: each batch is converted to rows, sent (waiting while the
//! pipeline is full), and its acknowledgement awaited; a batch a sink
//! could not take is sent again with backoff until it is taken or the
//! source stops. Only then are its messages finished.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use arrow::record_batch::RecordBatch;
use futures::future::{Either, Ready, ready};
use tokio::sync::mpsc;
use tokio::task::{JoinError, JoinHandle, JoinSet};
use tracing::{debug, warn};
use weir_core::convert::{ConvertError, Converted};
use weir_core::{Ack, AckStatus, AckWaiter, Batch, Output, Shutdown, Signal};

use super::batcher::{Outgoing, Request};
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
/// waits for the acknowledgements still out. Up to one conversion per core
/// runs at once, on blocking threads, so that a source reading faster than
/// one core converts is not held to one core; batches still leave in the
/// order they came. A message already converted on its decoding thread
/// ([`Request::Rows`]) takes no thread.
pub(crate) async fn run(mut batches: mpsc::Receiver<Outgoing>, d: Deliver) {
    let parallel = super::cores();
    let mut converting: VecDeque<Pending> = VecDeque::new();
    let mut waiting = JoinSet::new();
    let mut open = true;
    loop {
        let room = open && converting.len() < parallel;
        if !room && converting.is_empty() {
            break;
        }
        tokio::select! {
            biased;
            out = batches.recv(), if room => match out {
                Some(out) => converting.push_back(pending(out)),
                None => open = false,
            },
            done = async { converting.front_mut().expect("checked").await }, if !converting.is_empty() => {
                converting.pop_front();
                if !send(&d, done, &mut waiting).await {
                    return;
                }
            }
        }
    }
    while waiting.join_next().await.is_some() {}
}

/// A batch's conversion: already done, or running on a blocking thread (a
/// panic in it is an error).
type Pending = Either<Ready<Result<Converting, JoinError>>, JoinHandle<Converting>>;

/// Converts `out`, on a blocking thread unless it is rows already.
fn pending(out: Outgoing) -> Pending {
    let rows = matches!(out.request, Request::Rows(..));
    let convert = move || Converting {
        signal: out.request.signal(),
        converted: out.request.convert(),
        tokens: out.tokens,
        bytes: out.bytes,
    };
    if rows {
        Either::Left(ready(Ok(convert())))
    } else {
        Either::Right(tokio::task::spawn_blocking(convert))
    }
}

/// One batch's conversion, with the messages it was made of.
struct Converting {
    signal: Signal,
    converted: Result<Converted, ConvertError>,
    tokens: Vec<Token>,
    bytes: usize,
}

/// Sends one converted batch into the pipeline and starts waiting for its
/// acknowledgement; `false` once the pipeline has stopped (the messages are
/// read again at the next start).
async fn send(d: &Deliver, done: Result<Converting, JoinError>, waiting: &mut JoinSet<()>) -> bool {
    while waiting.try_join_next().is_some() {}
    let Ok(Converting {
        signal,
        converted,
        tokens,
        bytes,
    }) = done
    else {
        // The conversion panicked: the pipeline is going down with it.
        return false;
    };
    let converted = match converted {
        Ok(c) => c,
        Err(e) => {
            // Not a state that passes: sending it again would fail again.
            warn!(component = %d.name, %signal, messages = tokens.len(), error = %e,
                "kafka: these messages cannot be converted to rows; they are skipped");
            metrics::rejected_records(&d.name, signal).increment(tokens.len() as u64);
            d.finish(tokens, bytes);
            return true;
        }
    };
    if converted.rejected > 0 {
        metrics::rejected_records(&d.name, signal).increment(converted.rejected);
        debug!(component = %d.name, %signal, rejected = converted.rejected,
            reason = converted.rejection.as_deref().unwrap_or(""), "kafka: records refused");
    }
    if converted.batch.num_rows() == 0 || !d.output.wants(signal) {
        d.finish(tokens, bytes);
        return true;
    }
    let data = converted.batch;
    let (ack, waiter) = Ack::new();
    if d.output
        .send(Batch::new(signal, data.clone(), ack))
        .await
        .is_err()
    {
        return false;
    }
    waiting.spawn(acknowledged(d.clone(), signal, data, tokens, bytes, waiter));
    true
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
