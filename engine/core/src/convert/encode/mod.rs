//! `spans` and `logs` rows -> OTLP protobuf bytes, written straight from
//! the Arrow columns.
//!
//! The bytes are exactly those of `batch_to_*(batch)?.encode_to_vec()`:
//! the same resource and scope runs ([`runs`] over
//! [`CommonReader::same_resource`] / [`CommonReader::same_scope`]), the
//! fields in prost's order, proto3 defaults left out and optional messages
//! written when prost has `Some`, the same errors. What differs is the cost:
//! no `Span` or `LogRecord` struct, `String`, `Vec` or `AnyValue` per record;
//! the values are copied once, from the columns to the buffer. Resources and
//! scopes, once per run, and array or kvlist attribute values are still
//! made as prost messages and encoded by prost.
//!
//! A nested message is written in place, its length in front: [`out`]
//! reserves as many bytes as the length is likely to take and moves the
//! message when the guess was wrong, so lengths are the canonical varints
//! prost writes.
//!
//! Layout: `out` (the protobuf writer), `same` (a quick test that rows
//! share their resource or scope), `attrs` (attribute lists and values),
//! `spans` and `logs` (one record's fields).

mod attrs;
mod logs;
mod out;
mod same;
mod spans;

use std::ops::Range;

use arrow::array::{Array, AsArray, FixedSizeBinaryArray};
use arrow::record_batch::RecordBatch;

use super::ConvertError;
use super::read::{Columns, CommonReader};
use out::Out;

/// The fields of an export request and of its containers, the same for
/// every signal: `Export*ServiceRequest.resource_*`, `Resource*.resource`,
/// `.scope_*`, `.schema_url`, `Scope*.scope`, `.spans` / `.log_records`,
/// `.schema_url`.
mod field {
    pub const RESOURCES: u32 = 1;
    pub const RESOURCE: u32 = 1;
    pub const SCOPES: u32 = 2;
    pub const RESOURCE_SCHEMA_URL: u32 = 3;
    pub const SCOPE: u32 = 1;
    pub const RECORDS: u32 = 2;
    pub const SCOPE_SCHEMA_URL: u32 = 3;
}

/// The bytes a resource or scope run's length is guessed to take: three
/// for runs of 16 KiB to 2 MiB, the size of most batches.
const RUN_LENGTH_GUESS: usize = 3;

/// The columns that make one row a record: a `Span` or a `LogRecord`.
trait Records: Sized {
    /// The table of the rows.
    const TABLE: &'static str;
    /// The columns of `cols`, checked in the order (and with the errors) of
    /// `batch_to_*`.
    fn new(cols: &Columns) -> Result<Self, ConvertError>;
    /// Writes row `i` as message field `field` of its scope.
    fn write(&self, out: &mut Out<'_>, field: u32, i: usize, scratch: &mut Vec<u8>);
}

/// Appends the request the rows of `batch` make to `buf`: one
/// `Resource*` per run of rows with an equal resource, one `Scope*` per run
/// of equal scope within it, each row a record of its scope. On error
/// `buf` is left as it was.
fn write_request<R: Records>(batch: &RecordBatch, buf: &mut Vec<u8>) -> Result<(), ConvertError> {
    let cols = Columns::of_batch(batch, R::TABLE);
    let common = CommonReader::new(&cols)?;
    let records = R::new(&cols)?;
    let before = buf.len();
    let mut scratch = Vec::new();
    let mut out = Out::new(buf);
    let sharing = Sharing {
        common: &common,
        resource: same::SameRows::new(batch, "resource_"),
        scope: same::SameRows::new(batch, "scope_"),
    };
    let written = write_runs(&mut out, &sharing, 0..batch.num_rows(), |out, i| {
        records.write(out, field::RECORDS, i, &mut scratch);
    });
    if written.is_err() {
        buf.truncate(before);
    }
    written
}

/// Whether consecutive rows share their resource or scope: the quick
/// test of [`same`], then, where it cannot tell, [`CommonReader`]'s.
struct Sharing<'a> {
    common: &'a CommonReader,
    resource: same::SameRows,
    scope: same::SameRows,
}

/// Writes the resource runs of `rows`, each holding its scope runs.
fn write_runs(
    out: &mut Out<'_>,
    sharing: &Sharing<'_>,
    rows: Range<usize>,
    mut record: impl FnMut(&mut Out<'_>, usize),
) -> Result<(), ConvertError> {
    let common = sharing.common;
    for resource in same::runs(rows, &sharing.resource, |a, b| common.same_resource(a, b)) {
        let first = resource.start;
        out.message(field::RESOURCES, RUN_LENGTH_GUESS, |out| {
            if let Some(r) = common.resource(first)? {
                out.prost(field::RESOURCE, &r);
            }
            for scope in same::runs(resource, &sharing.scope, |a, b| common.same_scope(a, b)) {
                out.message(field::SCOPES, RUN_LENGTH_GUESS, |out| {
                    if let Some(s) = common.scope(scope.start) {
                        out.prost(field::SCOPE, &s);
                    }
                    let schema_url = common.scope_schema_url(scope.start);
                    for i in scope {
                        record(out, i);
                    }
                    out.string(field::SCOPE_SCHEMA_URL, &schema_url);
                });
            }
            out.string(
                field::RESOURCE_SCHEMA_URL,
                &common.resource_schema_url(first),
            );
            Ok(())
        })?;
    }
    Ok(())
}

/// Appends the trace request of `spans` rows to `buf` (see
/// [`super::spans_to_proto`]).
pub(super) fn spans_into(batch: &RecordBatch, buf: &mut Vec<u8>) -> Result<(), ConvertError> {
    write_request::<spans::SpanCols>(batch, buf)
}

/// Appends the logs request of `logs` rows to `buf` (see
/// [`super::logs_to_proto`]).
pub(super) fn logs_into(batch: &RecordBatch, buf: &mut Vec<u8>) -> Result<(), ConvertError> {
    write_request::<logs::LogCols>(batch, buf)
}

/// An id column checked as `Columns::id` checks it.
fn id_col(cols: &Columns, name: &str, width: i32) -> Result<FixedSizeBinaryArray, ConvertError> {
    cols.id(name, width)?;
    cols.get(name)?
        .as_fixed_size_binary_opt()
        .cloned()
        .ok_or_else(|| cols.error(format!("column `{name}` is not fixed-size binary")))
}

/// The id of row `i`, empty when null.
fn id(ids: &FixedSizeBinaryArray, i: usize) -> &[u8] {
    if ids.is_null(i) { &[] } else { ids.value(i) }
}
