//! End-to-end acknowledgements.
//!
//! A source that must answer its client only once data is safe (an OTLP
//! request, a Kafka offset) creates an [`Ack`] with [`Ack::new`], puts it on
//! the [`Batch`](crate::Batch) it emits and awaits the [`AckWaiter`].
//! Every fan-out, processor output and sink buffer holds a clone of the
//! `Ack`; when the last clone is dropped the waiter resolves with the
//! combined [`AckStatus`].
//!
//! * A holder that finishes normally simply drops its clone: a sink once the
//!   data is durable (or handed to its backend), a processor once its outputs
//!   (which carry their own clones) are sent on, a filter that drops rows.
//! * A holder that could not do its part calls [`Ack::fail`] or
//!   [`Ack::reject`] before dropping; the worst outcome wins
//!   (retryable failure > permanent rejection > delivered).
//! * A clone dropped while its thread panics counts as a retryable failure,
//!   so a crashing component never lets a client believe its data is safe.

use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::{future::Future, pin::Pin};

use tokio::sync::oneshot;

/// The outcome of a batch once every holder of its [`Ack`] is done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AckStatus {
    /// Every sink that received the data has it durably (or delivered it).
    Delivered,
    /// Some part was refused for good (the data itself is at fault); the
    /// sender should not retry it unchanged.
    Rejected(String),
    /// Some part could not be delivered now (full disk, unreachable backend,
    /// a component that crashed); the sender should retry.
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

struct Shared {
    status: Mutex<AckStatus>,
    tx: Mutex<Option<oneshot::Sender<AckStatus>>>,
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
        let status = std::mem::replace(
            self.status.get_mut().unwrap_or_else(|e| e.into_inner()),
            AckStatus::Delivered,
        );
        if let Some(tx) = self.tx.get_mut().unwrap_or_else(|e| e.into_inner()).take() {
            // The waiter may have gone (client disconnected): nothing to tell.
            let _ = tx.send(status);
        }
    }
}

/// One holder's share of a batch's acknowledgement. Clone it for every
/// additional holder; drop it when done. See the [module docs](self).
#[derive(Default)]
pub struct Ack {
    shared: Option<Arc<Shared>>,
}

impl Ack {
    /// A new acknowledgement and the waiter that resolves once every clone of
    /// it has been dropped.
    pub fn new() -> (Ack, AckWaiter) {
        let (tx, rx) = oneshot::channel();
        let shared = Arc::new(Shared {
            status: Mutex::new(AckStatus::Delivered),
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
    pub fn none() -> Ack {
        Ack { shared: None }
    }

    /// Whether a source waits on this acknowledgement.
    pub fn is_tracked(&self) -> bool {
        self.shared.is_some()
    }

    /// Record that this holder could not do its part now; the source will
    /// be told to retry.
    pub fn fail(self, reason: impl Into<String>) {
        if let Some(shared) = &self.shared {
            shared.record(AckStatus::Failed(reason.into()));
        }
    }

    /// Record that this holder refuses the data for good (it is malformed
    /// or against policy); the source will be told not to retry.
    pub fn reject(self, reason: impl Into<String>) {
        if let Some(shared) = &self.shared {
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
        if let (true, Some(shared)) = (std::thread::panicking(), &self.shared) {
            shared.record(AckStatus::Failed(
                "a component panicked while holding the data".into(),
            ));
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
/// has been dropped.
#[derive(Debug)]
pub struct AckWaiter {
    rx: oneshot::Receiver<AckStatus>,
}

impl Future for AckWaiter {
    type Output = AckStatus;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<AckStatus> {
        Pin::new(&mut self.rx)
            .poll(cx)
            .map(|r| r.unwrap_or_else(|_| AckStatus::Failed("acknowledgement was lost".into())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guarantees: the waiter resolves only after the last clone is gone.
    #[tokio::test]
    async fn resolves_after_last_clone() {
        let (ack, mut waiter) = Ack::new();
        let a2 = ack.clone();
        drop(ack);
        assert!(futures_poll_once(&mut waiter).is_none());
        drop(a2);
        assert_eq!(waiter.await, AckStatus::Delivered);
    }

    /// Guarantees: the worst outcome of all holders wins.
    #[tokio::test]
    async fn worst_outcome_wins() {
        let (ack, waiter) = Ack::new();
        let (a2, a3) = (ack.clone(), ack.clone());
        a2.reject("bad");
        a3.fail("disk full");
        drop(ack);
        assert_eq!(waiter.await, AckStatus::Failed("disk full".into()));

        let (ack, waiter) = Ack::new();
        ack.clone().reject("bad");
        drop(ack);
        assert_eq!(waiter.await, AckStatus::Rejected("bad".into()));
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
        drop(ack);
        assert!(matches!(waiter.await, AckStatus::Failed(_)));
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
