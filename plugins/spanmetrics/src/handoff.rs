//! How the counts of every instance reach the one that emits them.
//!
//! The host runs several instances of a plugin side by side (`instances`,
//! one per core by default) and cuts a batch of 2,048 spans or more
//! across them. One instance, the *emitter*, emits the series, so it must
//! see what the others counted. The host ticks every instance (one after
//! the other, in the same order each time); the first to tick claims the
//! role in the key `spanmetrics/emitter` (its id and the time of its last
//! tick) and keeps it while it ticks; the others' ticks do nothing. When
//! the emitter has not ticked for one and a half intervals (it was
//! replaced after a failure, or the plugin reloaded), the next instance
//! to tick takes over ([`Handoff::claim`]). The others hand their counts
//! over through the host's `state`, which all instances of a component
//! share:
//!
//! - At `init` an instance takes the next number from the key
//!   `spanmetrics/instances` as its id and writes its acknowledgement key
//!   `spanmetrics/ack/<id>` (8 bytes, so that later writes to it never
//!   grow the store).
//! - An instance that has not ticked counts into its own *pending* table
//!   and, after each batch, writes the whole table, with a sequence
//!   number, to `spanmetrics/blob/<id>` ([`crate::wire`]).
//! - At each tick the emitter reads every instance's blob, adds it to its
//!   own counts, empties the blob and writes its sequence number to the
//!   instance's acknowledgement key.
//! - Before its next batch an instance reads its acknowledgement: when it
//!   names the blob it last wrote, the emitter has those counts, and the
//!   instance takes them out of its pending table (all of it, unless a
//!   write failed since; then exactly what that blob held).
//!
//! This relies on the host never running `tick` while a `process` runs
//! (the processor's `process` and `tick` both take it exclusively), and on
//! instances being started one after the other (an id taken twice would
//! mix two instances' counts). An instance's counts not yet written when
//! it is replaced (after a failure) are lost; written ones are not.

use weir_plugin::Error;
use weir_plugin::services::{self, Level};

use crate::series::SeriesTable;
use crate::wire;

/// The shared key-value store: the host's `state`, or a map in tests.
pub trait Store {
    /// The value of `key`, if any.
    fn get(&self, key: &str) -> Option<Vec<u8>>;
    /// Stores `value` under `key`.
    fn set(&self, key: &str, value: &[u8]) -> Result<(), Error>;
}

/// The host's `state` interface.
#[derive(Debug, Clone, Copy, Default)]
pub struct HostStore;

impl Store for HostStore {
    fn get(&self, key: &str) -> Option<Vec<u8>> {
        services::state_get(key)
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), Error> {
        services::state_set(key, value)
    }
}

/// The key holding the number of instances started so far.
pub const INSTANCES_KEY: &str = "spanmetrics/instances";

/// The key naming the emitter: its id and the time (nanoseconds since the
/// epoch) of its last tick, 8 bytes each.
pub const EMITTER_KEY: &str = "spanmetrics/emitter";

fn blob_key(id: u64) -> String {
    format!("spanmetrics/blob/{id}")
}

fn ack_key(id: u64) -> String {
    format!("spanmetrics/ack/{id}")
}

fn read_u64(bytes: Option<Vec<u8>>) -> Option<u64> {
    Some(u64::from_le_bytes(bytes?.as_slice().try_into().ok()?))
}

/// What the emitter took in at a tick.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Collected {
    /// Blobs added to the emitter's counts.
    pub blobs: u64,
    /// Spans of those blobs counted in the overflow series, because their
    /// series did not fit in the emitter's table.
    pub overflowed: u64,
    /// Blobs thrown away: written under another config (before a reload)
    /// or damaged.
    pub discarded: u64,
}

/// One instance's side of the hand-over.
#[derive(Debug)]
pub struct Handoff<S> {
    store: S,
    id: u64,
    fingerprint: u64,
    /// The sequence number of the last blob written.
    seq: u64,
    /// Whether the store holds blob `seq`, not yet taken by the emitter.
    in_store: bool,
    /// Whether the pending table holds counts that blob `seq` lacks (a
    /// write failed since).
    unwritten: bool,
    /// Blob `seq`'s bytes while it is in the store.
    sent: Vec<u8>,
    scratch: Vec<u8>,
}

impl<S: Store> Handoff<S> {
    /// Joins the instances of a component: takes an id, and readies its
    /// acknowledgement key. `fingerprint` is the plan's (instances hand
    /// counts on only under the same config).
    pub fn join(store: S, fingerprint: u64) -> Self {
        let id = read_u64(store.get(INSTANCES_KEY)).unwrap_or(0);
        let joined = store
            .set(INSTANCES_KEY, &(id + 1).to_le_bytes())
            .and_then(|()| store.set(&ack_key(id), &0u64.to_le_bytes()));
        if let Err(e) = joined {
            services::log(
                Level::Error,
                &format!(
                    "spanmetrics: instance {id} could not register in the plugin's state \
                     ({e:?}); spans it counts before it first emits may be lost"
                ),
            );
        }
        Handoff {
            store,
            id,
            fingerprint,
            seq: 0,
            in_store: false,
            unwritten: false,
            sent: Vec::new(),
            scratch: Vec::new(),
        }
    }

    /// This instance's id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// At this instance's tick at `now`: whether it is the emitter. It is
    /// when no instance has claimed the role, when it holds it, or when
    /// the holder has not ticked for more than one and a half `interval`s
    /// (nanoseconds); then it claims the role (or renews it) with `now`.
    pub fn claim(&self, now: u64, interval: u64) -> bool {
        let lease = self.store.get(EMITTER_KEY).and_then(|bytes| {
            let id = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
            let at = u64::from_le_bytes(bytes.get(8..16)?.try_into().ok()?);
            Some((id, at))
        });
        let mine = match lease {
            None => true,
            Some((id, _)) if id == self.id => true,
            Some((_, at)) => now.saturating_sub(at) > interval.saturating_add(interval / 2),
        };
        if mine {
            let mut lease = [0u8; 16];
            lease[..8].copy_from_slice(&self.id.to_le_bytes());
            lease[8..].copy_from_slice(&now.to_le_bytes());
            // Renewing never grows the store; a first claim refused (the
            // state is full) is tried again at the next tick.
            if self.store.set(EMITTER_KEY, &lease).is_err() {
                services::log(
                    Level::Warn,
                    &format!(
                        "spanmetrics: instance {} could not claim the emitter role in the \
                         plugin's state; it emits anyway",
                        self.id
                    ),
                );
            }
        }
        mine
    }

    /// Before a batch of an instance that has not ticked: takes out of
    /// `pending` what the emitter has taken since the last batch.
    pub fn before_batch(&mut self, pending: &mut SeriesTable) {
        if !self.in_store || read_u64(self.store.get(&ack_key(self.id))) != Some(self.seq) {
            return;
        }
        if self.unwritten {
            wire::decode(&self.sent, |key, calls, sum, buckets| {
                pending.subtract(key, calls, sum, buckets);
            });
            pending.drop_empty();
        } else {
            pending.clear();
        }
        self.in_store = false;
        self.sent.clear();
    }

    /// After a batch that counted spans, in an instance that has not
    /// ticked: writes `pending` for the emitter to take. A refused write
    /// (the state is full) is returned, and the counts go with the next
    /// write that succeeds.
    pub fn after_batch(&mut self, pending: &SeriesTable) -> Result<(), Error> {
        self.unwritten = true;
        wire::encode(&mut self.scratch, self.fingerprint, self.seq + 1, pending);
        self.store.set(&blob_key(self.id), &self.scratch)?;
        self.seq += 1;
        std::mem::swap(&mut self.sent, &mut self.scratch);
        self.in_store = true;
        self.unwritten = false;
        Ok(())
    }

    /// At the emitter's tick: adds every other instance's blob to
    /// `master` and acknowledges it. The emitter's own blob (written
    /// before its first tick) is only emptied: its pending table, which
    /// holds all of it, is added by the caller.
    pub fn collect(&mut self, master: &mut SeriesTable) -> Collected {
        let mut out = Collected::default();
        if self.in_store {
            // Emptying a value never grows the store, so it cannot fail.
            let _ = self.store.set(&blob_key(self.id), &[]);
            self.in_store = false;
            self.unwritten = false;
            self.sent.clear();
        }
        let instances = read_u64(self.store.get(INSTANCES_KEY)).unwrap_or(0);
        for id in (0..instances).filter(|id| *id != self.id) {
            let Some(bytes) = self.store.get(&blob_key(id)) else {
                continue;
            };
            if bytes.is_empty() {
                continue;
            }
            let header = wire::header(&bytes);
            let fits = header
                .is_some_and(|h| h.fingerprint == self.fingerprint && h.width == master.width());
            let taken = fits
                && wire::decode(&bytes, |key, calls, sum, buckets| {
                    if master.add(key, calls, sum, buckets).overflowed {
                        out.overflowed += calls;
                    }
                })
                .is_some();
            if taken {
                out.blobs += 1;
            } else {
                out.discarded += 1;
                services::log(
                    Level::Warn,
                    &format!(
                        "spanmetrics: the counts of instance {id} were written under another \
                         config (before a reload) or are damaged, and are left out"
                    ),
                );
            }
            let _ = self.store.set(&blob_key(id), &[]);
            if let Some(h) = header {
                let _ = self.store.set(&ack_key(id), &h.seq.to_le_bytes());
            }
        }
        out
    }
}
