//! Rows -> Parquet: the instant each row is partitioned by, the sort order
//! of a file, and the writer settings. (`split` cuts a flush's rows into
//! hours and sorts them.)
//!
//! # Sort order
//!
//! Rows of a file are sorted by `service_name` first, then by the table's
//! event time (metrics: `service_name`, `metric_name`, `time`; alerts:
//! `rule`, `time`). A file holds one hour, so time pruning between files
//! is done by the hourly directories and the time range each file records;
//! inside a file, putting the service first makes the rows of one service
//! (and so of one resource) contiguous, which is what makes dictionary and
//! run-length encoding cheap on the denormalised resource and scope
//! columns, and gives each row group a narrow `service_name` range for
//! `WHERE service_name = ..`; within a service the time stays sorted, so
//! row groups and pages still prune on time. Nulls sort first.
//!
//! # Writer settings
//!
//! Measured on realistic data (`tests/store_size.rs`), in order of effect:
//!
//! * data pages of format 1: their repetition and definition levels are
//!   compressed with the values. The denormalised attribute maps are mostly
//!   levels (a dozen entries per row), which format 2 leaves uncompressed:
//!   format 1 makes the resource attributes almost free instead of 5 bytes
//!   a row;
//! * zstd level 9 (a few percent smaller than level 3; flushes run in the
//!   background);
//! * dictionary encoding (the default) except for columns whose values are
//!   mostly unique (ids, log bodies), where the dictionary indices would be
//!   pure overhead, and `DELTA_BINARY_PACKED` without dictionary for times
//!   and durations;
//! * statistics per page, so the page index (column and offset indexes) is
//!   written, and the sort order recorded as each row group's
//!   `sorting_columns`.

use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::SortOptions;
use arrow::datatypes::{DataType, TimestampNanosecondType};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::metadata::{KeyValue, SortingColumn};
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterVersion};
use parquet::schema::types::ColumnPath;
use weir_core::Signal;

/// zstd level of the Parquet files.
const ZSTD_LEVEL: i32 = 9;

/// Most rows in one row group.
const ROW_GROUP_ROWS: usize = 128 * 1024;

/// The options every sort of the store uses: ascending, nulls first.
pub(crate) const SORT_OPTIONS: SortOptions = SortOptions {
    descending: false,
    nulls_first: true,
};

/// The columns a table's files are sorted by, in order.
pub(crate) fn sort_key(table: Signal) -> &'static [&'static str] {
    match table {
        Signal::Logs => &["service_name", "time"],
        Signal::Spans => &["service_name", "start_time"],
        Signal::Metrics => &["service_name", "metric_name", "time"],
        Signal::Alerts => &["rule", "time"],
    }
}

/// The integer columns of a table whose values are close to their
/// neighbours' (times, durations): delta encoding, no dictionary.
fn delta_columns(table: Signal) -> &'static [&'static str] {
    match table {
        Signal::Logs => &["time", "observed_time"],
        Signal::Spans => &["start_time", "end_time", "duration_ns"],
        Signal::Metrics => &["time", "start_time"],
        Signal::Alerts => &["time", "starts_at", "ends_at"],
    }
}

/// The columns of a table whose values are mostly unique (ids, free
/// text): a dictionary would only add its indices; zstd finds what repeats.
fn plain_columns(table: Signal) -> &'static [&'static str] {
    match table {
        Signal::Logs => &["trace_id", "span_id", "body"],
        Signal::Spans => &["trace_id", "span_id", "parent_span_id"],
        Signal::Metrics | Signal::Alerts => &[],
    }
}

/// The column partitioning rows when the time column is null, if any: a
/// log record without `time` goes by when it was observed.
fn fallback_time_column(table: Signal) -> Option<&'static str> {
    match table {
        Signal::Logs => Some("observed_time"),
        _ => None,
    }
}

/// The nanosecond timestamps of column `name`, if it has that type.
fn timestamps<'a>(
    batch: &'a RecordBatch,
    name: &str,
) -> Option<&'a arrow::array::PrimitiveArray<TimestampNanosecondType>> {
    let col = batch.column_by_name(name)?;
    match col.data_type() {
        DataType::Timestamp(arrow::datatypes::TimeUnit::Nanosecond, _) => {
            Some(col.as_primitive::<TimestampNanosecondType>())
        }
        _ => None,
    }
}

/// The smallest and largest non-null event time of `batch`.
pub(crate) fn time_range(table: Signal, batch: &RecordBatch) -> Option<(i64, i64)> {
    let times = timestamps(batch, table.time_column())?;
    Some((arrow::compute::min(times)?, arrow::compute::max(times)?))
}

/// The instant each row is partitioned by: its event time, else (logs)
/// its observed time; `None` when it has neither (it then goes by when it
/// arrived).
pub(crate) fn partition_times(table: Signal, batch: &RecordBatch) -> Vec<Option<i64>> {
    let time = timestamps(batch, table.time_column());
    let fallback = fallback_time_column(table).and_then(|c| timestamps(batch, c));
    (0..batch.num_rows())
        .map(|i| {
            time.filter(|t| t.is_valid(i))
                .map(|t| t.value(i))
                .or_else(|| fallback.filter(|t| t.is_valid(i)).map(|t| t.value(i)))
        })
        .collect()
}

/// Bounds of every instant a row of `batch` may be partitioned by (the
/// range of the time column together with that of the fallback column),
/// found with two min / max kernels; `None` when every such time is null.
pub(crate) fn partition_time_bounds(table: Signal, batch: &RecordBatch) -> Option<(i64, i64)> {
    let fallback = fallback_time_column(table)
        .and_then(|c| timestamps(batch, c))
        .and_then(|t| Some((arrow::compute::min(t)?, arrow::compute::max(t)?)));
    match (time_range(table, batch), fallback) {
        (Some((a, b)), Some((c, d))) => Some((a.min(c), b.max(d))),
        (a, b) => a.or(b),
    }
}

/// How many Parquet leaf columns an Arrow type makes.
fn leaves(t: &DataType) -> usize {
    match t {
        DataType::Struct(fields) => fields.iter().map(|f| leaves(f.data_type())).sum(),
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            leaves(f.data_type())
        }
        DataType::Map(f, _) => leaves(f.data_type()),
        _ => 1,
    }
}

/// The Parquet writer settings of a table's files, with `kv` as key-value
/// metadata.
pub(crate) fn writer_properties(table: Signal, kv: Vec<KeyValue>) -> WriterProperties {
    let schema = table.schema();
    let mut leaf_index = Vec::with_capacity(schema.fields().len());
    let mut next = 0usize;
    for f in schema.fields() {
        leaf_index.push((f.name().as_str(), next));
        next += leaves(f.data_type());
    }
    let sorting: Vec<SortingColumn> = sort_key(table)
        .iter()
        .filter_map(|name| {
            let (_, idx) = leaf_index.iter().find(|(n, _)| n == name)?;
            Some(SortingColumn {
                column_idx: i32::try_from(*idx).ok()?,
                descending: SORT_OPTIONS.descending,
                nulls_first: SORT_OPTIONS.nulls_first,
            })
        })
        .collect();
    let zstd = ZstdLevel::try_new(ZSTD_LEVEL).unwrap_or_default();
    let mut props = WriterProperties::builder()
        // Format 1 data pages compress repetition and definition levels.
        .set_writer_version(WriterVersion::PARQUET_1_0)
        .set_compression(Compression::ZSTD(zstd))
        .set_dictionary_enabled(true)
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_sorting_columns(Some(sorting))
        .set_key_value_metadata(Some(kv));
    for col in delta_columns(table) {
        let path = ColumnPath::from(*col);
        props = props
            .set_column_dictionary_enabled(path.clone(), false)
            .set_column_encoding(path, Encoding::DELTA_BINARY_PACKED);
    }
    for col in plain_columns(table) {
        props = props.set_column_dictionary_enabled(ColumnPath::from(*col), false);
    }
    props.build()
}

/// Encodes sorted rows as one Parquet file in memory.
pub(crate) fn encode(
    table: Signal,
    batch: &RecordBatch,
    kv: Vec<KeyValue>,
) -> Result<Vec<u8>, ParquetError> {
    let props = writer_properties(table, kv);
    // The batch may be a slice of a larger one (an hour of a flush): its
    // own rows' bytes, not those of the buffers it points into.
    let bytes = weir_wal::batch_bytes(batch) as usize;
    let mut out = Vec::with_capacity(bytes / 8);
    let mut writer = ArrowWriter::try_new(&mut out, table.schema(), Some(props))?;
    writer.write(batch)?;
    writer.close()?;
    Ok(out)
}

/// Re-labels `batch` with `table`'s schema, checking that its columns fit.
pub(crate) fn conform(table: Signal, batch: &RecordBatch) -> Result<RecordBatch, String> {
    let schema = table.schema();
    if Arc::ptr_eq(&batch.schema(), &schema) {
        return Ok(batch.clone());
    }
    let theirs = batch.schema();
    if theirs.fields().len() != schema.fields().len() {
        return Err(format!(
            "it has {} columns, the table {}",
            theirs.fields().len(),
            schema.fields().len()
        ));
    }
    for (a, b) in theirs.fields().iter().zip(schema.fields()) {
        if a.name() != b.name() || !a.data_type().equals_datatype(b.data_type()) {
            return Err(format!(
                "column `{}` of type {} where the table has `{}` of type {}",
                a.name(),
                a.data_type(),
                b.name(),
                b.data_type()
            ));
        }
    }
    RecordBatch::try_new(schema, batch.columns().to_vec()).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int64Array;

    /// A logs-shaped batch with only the columns this module looks at is
    /// not a valid logs batch, so these tests use a real conversion.
    fn logs(times: &[Option<i64>], observed: &[Option<i64>], services: &[&str]) -> RecordBatch {
        crate::testdata::logs_batch(times, observed, services)
    }

    /// Guarantees: a row is partitioned by its time, else its observed
    /// time, else by nothing; the bounds cover both columns.
    #[test]
    fn rows_partition_by_time_then_observed_time() {
        let h = crate::partition::HOUR_NS;
        let b = logs(
            &[Some(h + 1), None, None, Some(3 * h)],
            &[Some(1), Some(2 * h + 5), None, Some(1)],
            &["a", "b", "c", "d"],
        );
        assert_eq!(
            partition_times(Signal::Logs, &b),
            vec![Some(h + 1), Some(2 * h + 5), None, Some(3 * h)]
        );
        assert_eq!(time_range(Signal::Logs, &b), Some((h + 1, 3 * h)));
        assert_eq!(partition_time_bounds(Signal::Logs, &b), Some((1, 3 * h)));
        let none = logs(&[None], &[None], &["a"]);
        assert_eq!(partition_time_bounds(Signal::Logs, &none), None);
    }

    /// Guarantees: a batch with a column of the wrong type is refused with
    /// the column's name; an unrelated schema is refused.
    #[test]
    fn conform_checks_types() {
        let ok = logs(&[Some(1)], &[None], &["a"]);
        assert!(conform(Signal::Logs, &ok).is_ok());
        assert!(conform(Signal::Spans, &ok).is_err());
        let mut cols = ok.columns().to_vec();
        cols[0] = Arc::new(Int64Array::from(vec![1]));
        let mut fields: Vec<_> = ok.schema().fields().iter().cloned().collect();
        fields[0] = Arc::new(arrow::datatypes::Field::new("time", DataType::Int64, true));
        let bad = RecordBatch::try_new(Arc::new(arrow::datatypes::Schema::new(fields)), cols)
            .expect("batch");
        let err = conform(Signal::Logs, &bad).expect_err("bad type");
        assert!(err.contains("`time`"), "{err}");
    }
}
