//! The wiring to the host (`weir:plugin` 0.2): the [`Holder`] the tail
//! sampler runs on in Weir, and the column the host routes rows by.
//!
//! Tail sampling needs the host to hold rows ([`Batch::hold`],
//! [`hold::release`], [`hold::discard`]) and to route every span of a
//! trace to one instance ([`PARTITION_BY`], answered by
//! `Plugin::partition_by` whenever `tail` is configured). The SDK's
//! [`Held`](weir_plugin::Held) has the same two fields as the seam's
//! [`Held`]; in native tests the SDK's harness simulates the hold.

use weir_plugin::{Batch, Error, hold};

use crate::holder::{Held, Holder};

/// The column the host should route rows by so that an instance sees whole
/// traces (`Plugin::partition_by`).
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

fn held(h: weir_plugin::Held) -> Held {
    Held {
        rows: h.rows,
        bytes: h.bytes,
    }
}

impl Holder for HostHolder<'_, '_> {
    fn drop_rows(&mut self, mask: &[bool]) -> Result<usize, Error> {
        self.batch()?.drop_rows(mask)
    }

    fn hold(&mut self, keys: &[Option<&str>]) -> Result<Held, Error> {
        // The host takes owned keys.
        let keys: Vec<Option<String>> = keys.iter().map(|k| k.map(str::to_owned)).collect();
        self.batch()?.hold(&keys).map(held)
    }

    fn release(&mut self, keys: &[String]) -> Result<Held, Error> {
        hold::release(keys).map(held)
    }

    fn discard(&mut self, keys: &[String]) -> Result<Held, Error> {
        hold::discard(keys).map(held)
    }
}
