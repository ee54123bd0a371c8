//! OTLP protobuf messages <-> Arrow record batches, and OTLP/JSON.
//!
//! `*_to_batch` turns one OTLP export request into one record batch of the
//! signal's table ([`crate::schema`]): one row per log record, span or metric
//! data point, with the record's resource and scope copied onto its row. It
//! makes one pass over the request and fills Arrow builders directly; the
//! values that repeat (resource, scope, metric identity) enter their
//! dictionaries once per container, not once per row.
//!
//! `batch_to_*` turns rows back into a request. The trip OTLP -> Arrow ->
//! OTLP is lossless: every field of the opentelemetry-proto messages comes
//! back, up to this normalisation:
//!
//! * a resource or scope container with no record, and a metric with no data
//!   point, produce no row, so they do not come back;
//! * rows are regrouped into one `Resource*` container per run of
//!   consecutive rows with an equal resource (attributes, dropped count,
//!   entity refs, schema url), one `Scope*` per run of equal scope within it
//!   and, for metrics, one `Metric` per run of equal metric (name,
//!   description, unit, metadata, type, temporality, monotonicity). A request
//!   whose containers are not repeated comes back exactly equal.
//!
//! # Attribute values
//!
//! Each attribute list is a `Map<Utf8, Utf8>` of the values' string forms
//! (string as is; int in decimal; double in Rust's shortest round-trip form,
//! `1.5`, `1e300`, `NaN`, `inf`; bool `true`/`false`; bytes in base64;
//! array and kvlist as the OTLP/JSON text of the `AnyValue`; an empty value is
//! null) and a `*_types` column holds one type letter per entry, in order:
//! `s` string, `i` int, `d` double, `b` bool, `y` bytes, `a` array, `k`
//! kvlist, `e` empty `AnyValue`, `n` no `AnyValue`, `x` string index (of
//! OTLP profiles), each followed by `#<n>` when the entry's `key_strindex` is
//! not 0. On the way back, an entry past the end of the types string is a
//! string, and a text that does not parse as its type (a processor rewrote
//! it) comes back as a string.
//!
//! # Refused records
//!
//! A record that cannot be represented (a trace id that is not 16 bytes, a
//! span id that is not 8, a span with an all-zero trace or span id, a time
//! beyond `i64::MAX` nanoseconds) is left out and counted in
//! [`Converted::rejected`]; the rest of the request converts.
//!
//! # Layout
//!
//! `logs`, `spans` and `metrics` each hold one signal's two directions. What
//! they share: `check` (size limits, id and time checks, refused records),
//! `value_text` (attribute values as text and their type letters), `build`
//! (the OTLP -> Arrow builders) and `read` (the Arrow -> OTLP readers).
//! [`json`] is OTLP/JSON.

mod build;
mod check;
mod direct;
mod encode;
mod estimate;
pub mod json;
mod logs;
mod logs_wire;
mod metrics;
mod protobuf;
mod read;
mod spans;
mod spans_wire;
mod value_text;
mod wire;

use arrow::record_batch::RecordBatch;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

pub use check::MAX_REQUEST_BYTES;
pub use estimate::{logs_expanded_size, metrics_expanded_size, spans_expanded_size};
pub use logs_wire::LogsProto;
pub use metrics::point_count;
pub use spans_wire::{SpansProto, spans_proto_to_batch};
pub use wire::{
    WireError, decoded_size_at_most, json_decoded_size, logs_decoded_size, metrics_decoded_size,
    spans_decoded_size,
};

/// A conversion failed.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// The input does not follow OTLP.
    #[error("invalid OTLP: {0}")]
    InvalidOtlp(String),
    /// The record batch does not have the signal's schema.
    #[error("invalid {table} batch: {message}")]
    InvalidBatch {
        /// The table whose schema was expected.
        table: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The request is too large to convert in one batch; the client should
    /// send smaller requests.
    #[error("request too large: {0}")]
    TooLarge(String),
    /// A bug in Weir: the converter built an array that does not fit its own
    /// schema.
    #[error("internal error converting OTLP (this is a bug in Weir, please report it): {0}")]
    Internal(String),
}

/// The result of turning one OTLP request into rows.
#[derive(Debug)]
pub struct Converted {
    /// One row per record that was accepted.
    pub batch: RecordBatch,
    /// How many records were refused (e.g. a span whose trace id is not 16
    /// bytes); reported back to the client as `partial_success`.
    pub rejected: u64,
    /// Why the first refused record was refused.
    pub rejection: Option<String>,
}

/// Logs request -> `logs` rows.
pub fn logs_to_batch(req: &ExportLogsServiceRequest) -> Result<Converted, ConvertError> {
    logs::to_batch(req)
}

/// `logs` rows -> logs request.
pub fn batch_to_logs(batch: &RecordBatch) -> Result<ExportLogsServiceRequest, ConvertError> {
    logs::from_batch(batch)
}

/// Trace request -> `spans` rows.
pub fn spans_to_batch(req: &ExportTraceServiceRequest) -> Result<Converted, ConvertError> {
    spans::to_batch(req)
}

/// `spans` rows -> trace request.
pub fn batch_to_spans(batch: &RecordBatch) -> Result<ExportTraceServiceRequest, ConvertError> {
    spans::from_batch(batch)
}

/// `spans` rows -> the protobuf bytes of their trace request, written
/// straight from the columns: byte for byte
/// `batch_to_spans(batch)?.encode_to_vec()`, and the same errors, at a
/// fraction of its cost.
pub fn spans_to_proto(batch: &RecordBatch) -> Result<Vec<u8>, ConvertError> {
    let mut buf = Vec::new();
    encode::spans_into(batch, &mut buf)?;
    Ok(buf)
}

/// [`spans_to_proto`] appended to `buf` (left as it was on error).
pub fn spans_to_proto_into(batch: &RecordBatch, buf: &mut Vec<u8>) -> Result<(), ConvertError> {
    encode::spans_into(batch, buf)
}

/// `logs` rows -> the protobuf bytes of their logs request, written
/// straight from the columns: byte for byte
/// `batch_to_logs(batch)?.encode_to_vec()`, and the same errors.
pub fn logs_to_proto(batch: &RecordBatch) -> Result<Vec<u8>, ConvertError> {
    let mut buf = Vec::new();
    encode::logs_into(batch, &mut buf)?;
    Ok(buf)
}

/// [`logs_to_proto`] appended to `buf` (left as it was on error).
pub fn logs_to_proto_into(batch: &RecordBatch, buf: &mut Vec<u8>) -> Result<(), ConvertError> {
    encode::logs_into(batch, buf)
}

/// Metrics request -> `metrics` rows (one per data point).
pub fn metrics_to_batch(req: &ExportMetricsServiceRequest) -> Result<Converted, ConvertError> {
    metrics::to_batch(req)
}

/// `metrics` rows -> metrics request.
pub fn batch_to_metrics(batch: &RecordBatch) -> Result<ExportMetricsServiceRequest, ConvertError> {
    metrics::from_batch(batch)
}
