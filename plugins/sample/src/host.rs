//! **The wiring to the host's hold: the one module that changes when the
//! SDK of `weir:plugin` 0.2 is merged.**
//!
//! Tail sampling needs the host to hold rows (`Batch::hold`, `release`,
//! `discard`) and to route every span of a trace to one instance
//! (`Plugin::partition_by`). The SDK of `weir:plugin` 0.1.0 this crate
//! builds against has neither, so [`HOLD_AVAILABLE`] is `false`: `init`
//! refuses a `tail` table with a message saying so, and head sampling
//! works alone. The tail sampler itself ([`crate::tail`]) is complete and
//! tested natively through the [`Holder`] seam.
//!
//! With 0.2 this module becomes (names as in the SDK draft on the
//! `wit02` branch): `HOLD_AVAILABLE = true`; `hold` calls
//! `batch.hold(&keys)` (the draft takes `&[Option<String>]`, so the keys
//! are made owned here), `release` / `discard` call
//! `weir_plugin::hold::{release, discard}`, each turning the SDK's `Held`
//! (the same two fields) into [`Held`]; `Sample` answers
//! `Plugin::partition_by` with `Some(PARTITION_BY)`; the native tests add
//! one run through the harness's session on spans.

use weir_plugin::{Batch, Error};

use crate::holder::{Held, Holder};

/// Whether the SDK offers the host's hold.
pub const HOLD_AVAILABLE: bool = false;

/// The column the host should route rows by so that an instance sees whole
/// traces (0.2's `partition_by`).
pub const PARTITION_BY: &str = "trace_id";

/// The host's side of tail sampling for one call: with the call's batch in
/// `process`, without one in `tick`.
pub struct HostHolder<'b, 'a> {
    batch: Option<&'b mut Batch<'a>>,
}

impl<'b, 'a> HostHolder<'b, 'a> {
    /// For `process`, on its batch.
    pub fn new(batch: &'b mut Batch<'a>) -> Self {
        HostHolder { batch: Some(batch) }
    }

    /// For `tick`, which has no batch.
    pub fn without_batch() -> Self {
        HostHolder { batch: None }
    }

    fn batch(&mut self) -> Result<&mut Batch<'a>, Error> {
        self.batch
            .as_deref_mut()
            .ok_or_else(|| Error::Failed("sample: no batch in this call".into()))
    }
}

fn unavailable() -> Error {
    Error::Failed(
        "sample: tail sampling needs the host's hold (weir:plugin 0.2), which this build does \
         not have"
            .into(),
    )
}

impl Holder for HostHolder<'_, '_> {
    fn drop_rows(&mut self, mask: &[bool]) -> Result<usize, Error> {
        self.batch()?.drop_rows(mask)
    }

    fn hold(&mut self, _keys: &[Option<&str>]) -> Result<Held, Error> {
        Err(unavailable())
    }

    fn release(&mut self, _keys: &[String]) -> Result<Held, Error> {
        Err(unavailable())
    }

    fn discard(&mut self, _keys: &[String]) -> Result<Held, Error> {
        Err(unavailable())
    }
}
