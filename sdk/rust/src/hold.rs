//! Rows the host keeps for this instance across calls (`weir:plugin`'s
//! `hold` interface): telemetry a plugin waits on (the spans of a trace
//! until its sampling decision, say) stays in the host, as Arrow, out of
//! the plugin's memory.
//!
//! [`Batch::hold`](crate::Batch::hold) moves rows out of the batch under
//! keys of the plugin's choosing; [`release`] sends every row of some keys
//! on, as output of the current call (during `process` with the input's
//! acknowledgement, during `tick` belonging to no request), with every
//! column as it was held; [`discard`] drops them; [`holding`] says how
//! much the instance holds.
//!
//! Held rows were acknowledged when they were held. When the instance is
//! replaced (after a failure, or when it holds most of its memory), or
//! the plugin is reloaded or stopped, everything it holds is released
//! undecided, never lost; a crash of Weir loses it. What all instances of
//! a plugin hold together is bounded by the pipeline's `max_held_bytes`.
//! With [`Plugin::partition_by`](crate::Plugin::partition_by) every row of
//! one key meets the same instance, and so the same hold.
//!
//! In native tests (the [`harness`](crate::harness)) the hold is
//! simulated by the session, with bytes estimated.

use crate::Error;

/// An amount of held rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Held {
    /// A number of rows.
    pub rows: usize,
    /// Bytes of Arrow buffers. The rows one `hold` call moves share their
    /// buffers, which count until the last of them leaves the hold;
    /// [`release`] and [`discard`] report the bytes freed.
    pub bytes: u64,
}

impl From<crate::bindings::weir::plugin::hold::Held> for Held {
    fn from(h: crate::bindings::weir::plugin::hold::Held) -> Self {
        Held {
            rows: h.rows as usize,
            bytes: h.bytes,
        }
    }
}

/// Sends on every row held under each of `keys`, key after key, each
/// key's rows in the order they were held, as output of the current call.
/// Unknown keys are ignored. Returns the rows released and the bytes
/// freed.
pub fn release(keys: &[String]) -> Result<Held, Error> {
    #[cfg(target_family = "wasm")]
    {
        crate::bindings::weir::plugin::hold::release(keys).map(Held::from)
    }
    #[cfg(not(target_family = "wasm"))]
    {
        Ok(crate::native::with_hold(|h| h.release(keys)))
    }
}

/// Drops every row held under each of `keys`. Unknown keys are ignored.
/// Returns the rows dropped and the bytes freed.
pub fn discard(keys: &[String]) -> Result<Held, Error> {
    #[cfg(target_family = "wasm")]
    {
        crate::bindings::weir::plugin::hold::discard(keys).map(Held::from)
    }
    #[cfg(not(target_family = "wasm"))]
    {
        Ok(crate::native::with_hold(|h| h.discard(keys)))
    }
}

/// What this instance holds now.
pub fn holding() -> Held {
    #[cfg(target_family = "wasm")]
    {
        Held::from(crate::bindings::weir::plugin::hold::holding())
    }
    #[cfg(not(target_family = "wasm"))]
    {
        crate::native::with_hold(|h| h.holding())
    }
}
