//! [`Batch`]: the unit of data that flows between components.

use arrow::record_batch::RecordBatch;

use crate::{Ack, Signal};

/// Rows of one signal as an Arrow record batch, plus the acknowledgement
/// handle of the request they came from.
///
/// A `RecordBatch` is a schema and a list of reference-counted column
/// arrays, so cloning a `Batch` (for a fan-out) copies no data. Batches are
/// immutable: a processor that changes data builds a new `RecordBatch` and
/// wraps it with [`Batch::with_data`], which keeps the acknowledgement.
///
/// A batch carries a clone of its [`Ack`], so whoever holds a batch gives it
/// a verdict when done: [`Batch::deliver`], [`Batch::fail`] or
/// [`Batch::reject`] (or takes the ack out with [`Batch::into_ack`] /
/// [`Batch::into_parts`] and gives it one later). A batch dropped
/// without one, like one still queued when the pipeline is torn down, counts
/// as failed: see [`crate::ack`].
#[derive(Debug, Clone)]
pub struct Batch {
    signal: Signal,
    data: RecordBatch,
    ack: Ack,
}

impl Batch {
    /// A batch of `signal` rows. `data` must have that signal's schema
    /// ([`crate::schema::schema_for`]).
    pub fn new(signal: Signal, data: RecordBatch, ack: Ack) -> Self {
        Batch { signal, data, ack }
    }

    /// The batch's signal.
    pub fn signal(&self) -> Signal {
        self.signal
    }

    /// The rows.
    pub fn data(&self) -> &RecordBatch {
        &self.data
    }

    /// The number of rows (records).
    pub fn num_rows(&self) -> usize {
        self.data.num_rows()
    }

    /// The memory the batch's columns occupy, in bytes.
    pub fn byte_size(&self) -> usize {
        self.data.get_array_memory_size()
    }

    /// The acknowledgement handle of this batch.
    pub fn ack(&self) -> &Ack {
        &self.ack
    }

    /// A new batch of the same signal holding `data`, sharing this batch's
    /// acknowledgement: the source hears back once both are finished.
    pub fn with_data(&self, data: RecordBatch) -> Batch {
        Batch {
            signal: self.signal,
            data,
            ack: self.ack.clone(),
        }
    }

    /// A new batch of another signal derived from this one (spans in, metric
    /// points out), sharing this batch's acknowledgement.
    pub fn derive(&self, signal: Signal, data: RecordBatch) -> Batch {
        Batch {
            signal,
            data,
            ack: self.ack.clone(),
        }
    }

    /// Splits the batch into its parts, for a holder that keeps the rows and
    /// gives the acknowledgement its verdict once it is done with them.
    pub fn into_parts(self) -> (Signal, RecordBatch, Ack) {
        (self.signal, self.data, self.ack)
    }

    /// Lets go of the rows and keeps the acknowledgement, for a holder that
    /// gives the verdict later (a sink that has encoded the rows, once its
    /// write is durable).
    pub fn into_ack(self) -> Ack {
        self.ack
    }

    /// This holder is done with the batch and did its part (the data is
    /// durable, handed to its backend, or sent on in batches that carry the
    /// acknowledgement, or its rows were dropped on purpose).
    pub fn deliver(self) {
        self.ack.deliver()
    }

    /// Gives up on the batch: the source is told to retry.
    pub fn fail(self, reason: impl Into<String>) {
        self.ack.fail(reason)
    }

    /// Refuses the batch for good: the source is told not to retry.
    pub fn reject(self, reason: impl Into<String>) {
        self.ack.reject(reason)
    }
}
