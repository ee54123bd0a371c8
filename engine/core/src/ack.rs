//! End-to-end acknowledgements.
//!
//! A source that must answer its client only once data is safe (an OTLP
//! request, a Kafka offset) creates an [`Ack`] with [`Ack::new`], puts it on
//! the [`Batch`](crate::Batch) it emits and awaits the [`AckWaiter`].
//! Every fan-out, processor output and sink buffer holds a clone of the
//! `Ack`, and every holder gives a verdict on its clone; once the last clone
//! is gone the waiter resolves with the combined [`AckStatus`].
//!
//! * A holder that did its part calls [`Ack::deliver`] (or
//!   [`Batch::deliver`](crate::Batch::deliver)): a sink once the data is
//!   durable (or handed to its backend), a processor once its outputs (which
//!   carry their own clones) are made, a fan-out once every copy is queued,
//!   a filter that drops rows, a source that split a request into batches.
//! * A holder that could not do its part calls [`Ack::fail`] or
//!   [`Ack::reject`]; the worst outcome wins
//!   (retryable failure > permanent rejection > delivered).
//! * A holder that keeps only part of a batch, refusing some records for
//!   good (the store refuses rows outside the time range a table accepts),
//!   says so with [`Ack::refuse`] before its verdict: the source hears the
//!   count and the first reason beside the outcome ([`AckWaiter::settled`]),
//!   and an OTLP source answers them as `partial_success`.
//! * A clone dropped without a verdict counts as a retryable failure: a task
//!   aborted at shutdown, a batch still queued in a channel when the
//!   pipeline is torn down, a code path that forgot. A client is never told
//!   its data is safe because a holder vanished. The same holds for a clone
//!   dropped while its thread panics.
//!
//! [`Ack::none`] is untracked: nobody waits for it and its verdicts are
//! no-ops, so dropping it is fine.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::{future::Future, pin::Pin};

use tokio::sync::oneshot;

/// The reason given to a source when a clone of its [`Ack`] was dropped
/// without a verdict.
pub const DROPPED_WITHOUT_VERDICT: &str =
    "the data was dropped before it was delivered (a component stopped or was aborted)";

/// The reason given to a source when a clone of its [`Ack`] was dropped
/// while its thread panicked.
const PANICKED: &str = "a component panicked while holding the data";

/// The outcome of a batch once every holder of its [`Ack`] is done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AckStatus {
    /// Every sink that received the data has it durably (or delivered it).
    Delivered,
    /// Some part was refused for good (the data itself is at fault); the
    /// sender should not retry it unchanged.
    Rejected(String),
    /// Some part could not be delivered now (full disk, unreachable backend,
    /// a component that crashed or stopped); the sender should retry.
    Failed(String),
}

impl AckStatus {
    fn severity(&self) -> u8 {
        match self {
            AckStatus::Delivered => 0,
            AckStatus::Rejected(_) => 1,
            AckStatus::Failed(_) => 2,
        }
    }

    fn worst(self, other: AckStatus) -> AckStatus {
        if other.severity() > self.severity() {
            other
        } else {
            self
        }
    }
}

/// Records of a batch that holders refused one by one while they kept the
/// rest ([`Ack::refuse`]): an OTLP source reports them as
/// `partial_success`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Refused {
    /// How many records, summed over the holders that refused some.
    pub records: u64,
    /// Why the first of them was refused.
    pub reason: Option<String>,
}

/// What a source hears once every holder of its [`Ack`] is done: the
/// outcome, and the records refused one by one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    /// The worst verdict.
    pub status: AckStatus,
    /// The records refused one by one (only meaningful when `status` is
    /// [`AckStatus::Delivered`]: otherwise the whole batch is retried or
    /// refused).
    pub refused: Refused,
}

struct Shared {
    /// The worst verdict given explicitly (or by a panic).
    status: Mutex<AckStatus>,
    /// Records refused one by one by holders that kept the rest.
    refused: Mutex<Refused>,
    /// Whether some clone was dropped without a verdict. Kept apart so that
    /// an explicit failure's reason (which says what went wrong) wins over
    /// this one, which only says that a holder vanished.
    dropped: AtomicBool,
    tx: Mutex<Option<oneshot::Sender<Settled>>>,
}

impl Shared {
    fn record(&self, status: AckStatus) {
        let mut current = self.status.lock().unwrap_or_else(|e| e.into_inner());
        let previous = std::mem::replace(&mut *current, AckStatus::Delivered);
        *current = previous.worst(status);
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        let mut status = std::mem::replace(
            self.status.get_mut().unwrap_or_else(|e| e.into_inner()),
            AckStatus::Delivered,
        );
        if *self.dropped.get_mut() {
            status = status.worst(AckStatus::Failed(DROPPED_WITHOUT_VERDICT.into()));
        }
        let refused = std::mem::take(self.refused.get_mut().unwrap_or_else(|e| e.into_inner()));
        if let Some(tx) = self.tx.get_mut().unwrap_or_else(|e| e.into_inner()).take() {
            // The waiter may have gone (client disconnected): nothing to tell.
            let _ = tx.send(Settled { status, refused });
        }
    }
}

/// One holder's share of a batch's acknowledgement. Clone it for every
/// additional holder; give each clone a verdict ([`Ack::deliver`],
/// [`Ack::fail`], [`Ack::reject`]) when done. A tracked clone dropped without
/// one counts as failed. See the [module docs](self).
#[derive(Default)]
#[must_use = "give the acknowledgement a verdict (deliver, fail or reject); dropping it fails it"]
pub struct Ack {
    shared: Option<Arc<Shared>>,
}

impl Ack {
    /// A new acknowledgement and the waiter that resolves once every clone of
    /// it has been given a verdict (or dropped).
    pub fn new() -> (Ack, AckWaiter) {
        let (tx, rx) = oneshot::channel();
        let shared = Arc::new(Shared {
            status: Mutex::new(AckStatus::Delivered),
            refused: Mutex::new(Refused::default()),
            dropped: AtomicBool::new(false),
            tx: Mutex::new(Some(tx)),
        });
        (
            Ack {
                shared: Some(shared),
            },
            AckWaiter { rx },
        )
    }

    /// An acknowledgement nobody waits for (data generated inside Weir, tests).
    /// It needs no verdict.
    pub fn none() -> Ack {
        Ack { shared: None }
    }

    /// Whether a source waits on this acknowledgement.
    pub fn is_tracked(&self) -> bool {
        self.shared.is_some()
    }

    /// Record that this holder did its part: the data is durable, handed to
    /// its backend, or passed on in clones of this acknowledgement.
    pub fn deliver(mut self) {
        self.shared.take();
    }

    /// Record that this holder could not do its part now; the source will
    /// be told to retry.
    pub fn fail(mut self, reason: impl Into<String>) {
        if let Some(shared) = self.shared.take() {
            shared.record(AckStatus::Failed(reason.into()));
        }
    }

    /// Record that this holder refused `records` records of the batch for
    /// good, and why, while it keeps the rest (it still gives its verdict
    /// afterwards). The counts of every holder add up; the first reason is
    /// kept. Nothing happens for zero records or an untracked
    /// acknowledgement.
    pub fn refuse(&self, records: u64, reason: impl Into<String>) {
        let Some(shared) = self.shared.as_ref().filter(|_| records > 0) else {
            return;
        };
        let mut refused = shared.refused.lock().unwrap_or_else(|e| e.into_inner());
        refused.records = refused.records.saturating_add(records);
        refused.reason.get_or_insert_with(|| reason.into());
    }

    /// Record that this holder refuses the data for good (it is malformed
    /// or against policy); the source will be told not to retry.
    pub fn reject(mut self, reason: impl Into<String>) {
        if let Some(shared) = self.shared.take() {
            shared.record(AckStatus::Rejected(reason.into()));
        }
    }
}

impl Clone for Ack {
    fn clone(&self) -> Self {
        Ack {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for Ack {
    fn drop(&mut self) {
        // Still holding the share: no verdict was given.
        let Some(shared) = &self.shared else { return };
        if std::thread::panicking() {
            shared.record(AckStatus::Failed(PANICKED.into()));
        } else {
            shared.dropped.store(true, Ordering::Relaxed);
        }
    }
}

impl std::fmt::Debug for Ack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ack")
            .field("tracked", &self.is_tracked())
            .finish()
    }
}

/// Resolves to the combined [`AckStatus`] once every clone of its [`Ack`]
/// has been given a verdict (or dropped); [`AckWaiter::settled`] adds the
/// records refused one by one.
#[derive(Debug)]
pub struct AckWaiter {
    rx: oneshot::Receiver<Settled>,
}

impl AckWaiter {
    /// The combined outcome and the records holders refused one by one
    /// ([`Ack::refuse`]), once every clone has its verdict.
    pub async fn settled(self) -> Settled {
        self.rx.await.unwrap_or_else(|_| lost())
    }
}

/// What a waiter hears when the acknowledgement vanished without a word.
fn lost() -> Settled {
    Settled {
        status: AckStatus::Failed("acknowledgement was lost".into()),
        refused: Refused::default(),
    }
}

impl Future for AckWaiter {
    type Output = AckStatus;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<AckStatus> {
        Pin::new(&mut self.rx)
            .poll(cx)
            .map(|r| r.unwrap_or_else(|_| lost()).status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guarantees: the waiter resolves only after the last clone has its
    /// verdict, and Delivered when every holder delivered.
    #[tokio::test]
    async fn delivered_by_all_resolves_after_last_clone() {
        let (ack, mut waiter) = Ack::new();
        let a2 = ack.clone();
        ack.deliver();
        assert!(futures_poll_once(&mut waiter).is_none());
        a2.deliver();
        assert_eq!(waiter.await, AckStatus::Delivered);
    }

    /// Guarantees: a clone dropped without a verdict (an aborted task, a
    /// forgotten path) fails the batch with a reason that says so, even when
    /// every other holder delivered.
    #[tokio::test]
    async fn dropped_without_verdict_fails() {
        let (ack, mut waiter) = Ack::new();
        let forgotten = ack.clone();
        ack.deliver();
        assert!(futures_poll_once(&mut waiter).is_none());
        drop(forgotten);
        assert_eq!(
            waiter.await,
            AckStatus::Failed(DROPPED_WITHOUT_VERDICT.into())
        );

        let (ack, waiter) = Ack::new();
        drop(ack);
        assert_eq!(
            waiter.await,
            AckStatus::Failed(DROPPED_WITHOUT_VERDICT.into())
        );
    }

    /// Guarantees: the worst outcome of all holders wins; a silent drop is a
    /// retryable failure, worse than a rejection, but an explicit failure
    /// keeps its own reason.
    #[tokio::test]
    async fn worst_outcome_wins() {
        let (ack, waiter) = Ack::new();
        let (a2, a3) = (ack.clone(), ack.clone());
        a2.reject("bad");
        a3.fail("disk full");
        ack.deliver();
        assert_eq!(waiter.await, AckStatus::Failed("disk full".into()));

        let (ack, waiter) = Ack::new();
        ack.clone().reject("bad");
        ack.deliver();
        assert_eq!(waiter.await, AckStatus::Rejected("bad".into()));

        let (ack, waiter) = Ack::new();
        ack.clone().reject("bad");
        drop(ack);
        assert_eq!(
            waiter.await,
            AckStatus::Failed(DROPPED_WITHOUT_VERDICT.into())
        );

        let (ack, waiter) = Ack::new();
        drop(ack.clone());
        ack.fail("disk full");
        assert_eq!(waiter.await, AckStatus::Failed("disk full".into()));
    }

    /// Guarantees: an untracked acknowledgement needs no verdict: dropping
    /// it, delivering or failing it does nothing and does not panic.
    #[test]
    fn untracked_needs_nothing() {
        let ack = Ack::none();
        assert!(!ack.is_tracked());
        let copy = ack.clone();
        drop(ack);
        copy.clone().fail("ignored");
        copy.clone().reject("ignored");
        copy.deliver();
        drop(Ack::default());
    }

    /// Guarantees: a holder dropped during a panic fails the batch.
    #[tokio::test]
    async fn panic_fails() {
        let (ack, waiter) = Ack::new();
        let held = ack.clone();
        let r = std::thread::spawn(move || {
            let _held = held;
            panic!("boom");
        })
        .join();
        assert!(r.is_err());
        ack.deliver();
        assert_eq!(waiter.await, AckStatus::Failed(PANICKED.into()));
    }

    /// Guarantees: records refused one by one by several holders add up,
    /// the first reason is kept, and the outcome stays the worst verdict;
    /// zero records and untracked acknowledgements record nothing.
    #[tokio::test]
    async fn refused_records_add_up_beside_the_verdict() {
        let (ack, waiter) = Ack::new();
        let other = ack.clone();
        ack.refuse(2, "too old");
        other.refuse(3, "too new");
        other.refuse(0, "nothing");
        ack.deliver();
        other.deliver();
        assert_eq!(
            waiter.settled().await,
            Settled {
                status: AckStatus::Delivered,
                refused: Refused {
                    records: 5,
                    reason: Some("too old".into()),
                },
            }
        );

        let (ack, waiter) = Ack::new();
        ack.refuse(0, "nothing");
        ack.clone().fail("disk full");
        ack.deliver();
        let settled = waiter.settled().await;
        assert_eq!(settled.status, AckStatus::Failed("disk full".into()));
        assert_eq!(settled.refused, Refused::default());

        Ack::none().refuse(7, "ignored");
    }

    fn futures_poll_once(w: &mut AckWaiter) -> Option<AckStatus> {
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        match Pin::new(w).poll(&mut cx) {
            Poll::Ready(s) => Some(s),
            Poll::Pending => None,
        }
    }
}
