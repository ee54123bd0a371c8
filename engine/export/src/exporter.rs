//! [`Exporter`]: what a backend implements to receive Weir's rows.
//!
//! An exporter turns one batch of rows of one signal into the requests its
//! backend takes (cutting them so that none exceeds the backend's limit),
//! sends them, and reads the answers. It does not retry: the sink around it
//! retries what may pass ([`ExportError::Retryable`]), with backoff, jitter
//! and the backend's own `Retry-After` / `RetryInfo`, and drops and counts
//! what cannot ([`ExportError::Permanent`]).

use std::time::Duration;

use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use weir_core::Signal;

/// What the backend made of one batch it took.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exported {
    /// Records the backend refused for good while taking the rest (OTLP's
    /// `partial_success`, samples a remote-write receiver rejected): they
    /// are counted as dropped, with [`Exported::rejection`] logged.
    pub rejected: u64,
    /// The backend's reason, when `rejected > 0`.
    pub rejection: Option<String>,
}

/// What the requests of one export came to, request by request: records
/// dropped before or while sending (with the first reason), records the
/// backend refused (with its first refusal), and whether any request was
/// taken. The exporters that cut a batch into several requests use it.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    rejected: u64,
    rejection: Option<String>,
    refused: u64,
    refusal: Option<String>,
    sent_any: bool,
}

impl Tally {
    /// A tally starting with `rejected` records dropped for `rejection`.
    pub(crate) fn new(rejected: u64, rejection: Option<String>) -> Self {
        Tally {
            rejected,
            rejection,
            ..Tally::default()
        }
    }

    /// `records` more dropped, for `reason` if none was given yet.
    pub(crate) fn reject(&mut self, records: u64, reason: impl FnOnce() -> String) {
        self.rejected += records;
        self.rejection.get_or_insert_with(reason);
    }

    /// A request the backend took.
    pub(crate) fn taken(&mut self) {
        self.sent_any = true;
    }

    /// A request of `records` the backend refused for good.
    pub(crate) fn refused(&mut self, records: u64, reason: String) {
        self.refused += records;
        self.refusal.get_or_insert(reason);
    }

    /// The export's outcome: refused for good when the backend took no
    /// request and refused one; else taken, with the refused records
    /// counted among the rejected ones.
    pub(crate) fn finish(self) -> Result<Exported, ExportError> {
        let Tally {
            mut rejected,
            mut rejection,
            refused,
            refusal,
            sent_any,
        } = self;
        if let Some(reason) = refusal {
            if !sent_any {
                return Err(ExportError::Permanent {
                    reason,
                    records: refused + rejected,
                });
            }
            rejected += refused;
            rejection.get_or_insert(reason);
        }
        Ok(Exported {
            rejected,
            rejection,
        })
    }
}

/// Why a batch did not reach its backend.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExportError {
    /// A failure that may pass: no connection, a timeout, gRPC
    /// `UNAVAILABLE` / `RESOURCE_EXHAUSTED`, HTTP 408, 429, 502, 503, 504
    /// (and other 5xx where the protocol says so). Sent again later.
    #[error("{reason}")]
    Retryable {
        /// What happened, naming the backend's URL.
        reason: String,
        /// How long the backend asked to wait (`Retry-After`,
        /// `RetryInfo`), if it did.
        after: Option<Duration>,
    },
    /// The backend refused the data and would refuse it again (HTTP 400,
    /// 401, 403, 404, 413, gRPC `INVALID_ARGUMENT`...): dropped, counted
    /// and logged with the reason.
    #[error("{reason}")]
    Permanent {
        /// The backend's answer, naming its URL.
        reason: String,
        /// The records refused.
        records: u64,
    },
}

impl ExportError {
    /// Whether sending the same rows again may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, ExportError::Retryable { .. })
    }
}

/// A backend Weir sends rows to.
#[async_trait]
pub trait Exporter: Send + Sync + 'static {
    /// Sends `rows` (of `signal`, in Weir's Arrow schema for it) to the
    /// backend: `Ok` once the backend has taken them (some may have been
    /// refused, see [`Exported`]). The same rows may be passed again after
    /// a [`ExportError::Retryable`] error; a request the backend answered
    /// before the error may then arrive twice (at least once).
    async fn export(&self, signal: Signal, rows: &RecordBatch) -> Result<Exported, ExportError>;

    /// Checks once, when the sink starts, what cannot heal by waiting: a
    /// backend whose TLS certificate does not verify. `Err` (what to fix)
    /// stops the start; a backend that is down or unreachable is not an
    /// error here (it is logged, and the sink retries as it sends).
    async fn preflight(&self) -> Result<(), String> {
        Ok(())
    }
}
