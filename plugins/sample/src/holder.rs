//! What tail sampling asks of the host: rows moved out of the batch into
//! the instance's hold under a key (the trace id), and later sent on or
//! dropped by key. The host keeps held rows as Arrow, out of the plugin's
//! memory (`weir:plugin` 0.2); the plugin keeps only a summary per trace.
//!
//! [`Holder`] is the seam: the plugin runs on the host's hold
//! ([`crate::host`]), the native tests and the bench on a fake that keeps
//! rows in a map and counts bytes.

use weir_plugin::Error;

/// An amount of held rows, as the host's hold reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Held {
    /// Rows the call moved (held, released or discarded).
    pub rows: usize,
    /// After `hold`: the bytes the instance now holds in all. After
    /// `release` and `discard`: the bytes their rows' leaving freed (rows
    /// held by one `hold` call share their buffers, which are freed when
    /// the last of them leaves, so releasing one trace may free nothing).
    pub bytes: u64,
}

/// The host's side of tail sampling, for the batch of the current call
/// (in `process`) or for none (in `tick`).
pub trait Holder {
    /// Drops the current batch's rows where `mask` is true (they are
    /// acknowledged: handled). Returns the rows left.
    fn drop_rows(&mut self, mask: &[bool]) -> Result<usize, Error>;

    /// Moves the current batch's rows whose key is `Some` into the hold
    /// under that key; the others stay in the batch and go on. `keys` has
    /// one entry per row. Held rows are acknowledged to their senders
    /// with the batch. Returns the rows moved and the bytes held in all;
    /// refused with `limit-exceeded`, moving nothing, past the host's
    /// bound on held bytes.
    fn hold(&mut self, keys: &[Option<&str>]) -> Result<Held, Error>;

    /// Sends every row held under `keys` on, as output of the current
    /// call. Returns the rows released and the bytes freed.
    fn release(&mut self, keys: &[String]) -> Result<Held, Error>;

    /// Drops every row held under `keys`. Returns the rows dropped and the
    /// bytes freed.
    fn discard(&mut self, keys: &[String]) -> Result<Held, Error>;
}
