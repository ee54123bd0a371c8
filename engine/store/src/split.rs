//! A flush's rows cut into hours: the hour of every row, one sort of all
//! the rows by hour and then by the table's sort key (`encode`), and each
//! hour is the run of rows that share it in the sorted batch: a slice of
//! it, not a copy.
//!
//! The work is one sort, O(n log n) in the rows, however many hours they
//! span: a batch whose records fall in thousands of hours costs a flush
//! one sort, then one file per hour, never one pass over the rows per
//! hour.

use std::ops::Range;
use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch};
use arrow::compute::{SortColumn, concat_batches, lexsort_to_indices, take_record_batch};
use arrow::error::ArrowError;
use weir_core::Signal;

use crate::encode::{SORT_OPTIONS, partition_times, sort_key};
use crate::partition::hour_of;
use crate::state::MemBatch;
use crate::wal::Lsn;

/// The rows of one hour of a flush, sorted by the table's sort key.
#[derive(Debug)]
pub(crate) struct HourRows {
    /// The hour (since the epoch).
    pub hour: i64,
    /// Its rows: a slice of the flush's one sorted batch.
    pub rows: RecordBatch,
    /// The smallest and largest LSN of the WAL records they come from.
    pub lsn: (Lsn, Lsn),
}

/// Cuts the rows of `batches` (one flush of `table`) into hours, in
/// increasing order, each sorted by the table's sort key. A row's hour is
/// that of its time, else (logs) of its observed time, else of when its
/// batch arrived.
pub(crate) fn split_by_hour(
    table: Signal,
    batches: &[Arc<MemBatch>],
) -> Result<Vec<HourRows>, ArrowError> {
    let n: usize = batches.iter().map(|m| m.batch.num_rows()).sum();
    let mut hours = Vec::with_capacity(n);
    let mut lsns = Vec::with_capacity(n);
    for m in batches {
        let times = partition_times(table, &m.batch);
        hours.extend(
            times
                .into_iter()
                .map(|t| hour_of(t.unwrap_or(m.arrival_ns))),
        );
        lsns.extend(std::iter::repeat_n(m.lsn, m.batch.num_rows()));
    }
    let all = concat_batches(&table.schema(), batches.iter().map(|m| &m.batch))?;
    let order = sort_order(table, &all, &hours)?;
    let sorted = take_record_batch(&all, &order)?;
    drop(all);
    let order: Vec<usize> = order.values().iter().map(|&i| i as usize).collect();
    let sorted_hours: Vec<i64> = order.iter().map(|&i| hours[i]).collect();
    Ok(runs(&sorted_hours)
        .into_iter()
        .map(|(hour, range)| {
            let lsn = order[range.clone()]
                .iter()
                .map(|&i| lsns[i])
                .fold((Lsn::MAX, 0), |(lo, hi), l| (lo.min(l), hi.max(l)));
            HourRows {
                hour,
                rows: sorted.slice(range.start, range.len()),
                lsn,
            }
        })
        .collect())
}

/// The order of the rows of `batch` by hour (`hours`, one per row), then
/// by the table's sort key: one lexicographic sort. The hour is left out
/// of the key when every row has the same.
fn sort_order(
    table: Signal,
    batch: &RecordBatch,
    hours: &[i64],
) -> Result<arrow::array::UInt32Array, ArrowError> {
    let mut columns = Vec::with_capacity(4);
    if hours.windows(2).any(|w| w[0] != w[1]) {
        columns.push(SortColumn {
            values: Arc::new(Int64Array::from(hours.to_vec())),
            options: Some(SORT_OPTIONS),
        });
    }
    for name in sort_key(table) {
        let values: ArrayRef = batch
            .column_by_name(name)
            .cloned()
            .ok_or_else(|| ArrowError::SchemaError(format!("no column `{name}`")))?;
        columns.push(SortColumn {
            values,
            options: Some(SORT_OPTIONS),
        });
    }
    lexsort_to_indices(&columns, None)
}

/// The runs of equal values of `sorted` (sorted), each with its range of
/// positions: one pass.
fn runs(sorted: &[i64]) -> Vec<(i64, Range<usize>)> {
    let mut out: Vec<(i64, Range<usize>)> = Vec::new();
    for (i, &h) in sorted.iter().enumerate() {
        match out.last_mut() {
            Some((last, range)) if *last == h => range.end = i + 1,
            _ => out.push((h, i..i + 1)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use arrow::array::AsArray;
    use arrow::datatypes::TimestampNanosecondType;

    use super::*;
    use crate::encode::encode;
    use crate::partition::HOUR_NS;
    use crate::testdata::logs_batch;

    fn mem(lsn: Lsn, batch: RecordBatch, arrival_ns: i64) -> Arc<MemBatch> {
        Arc::new(MemBatch {
            lsn,
            bytes: 0,
            time: None,
            arrival_ns,
            arrived: Instant::now(),
            batch,
        })
    }

    fn times(b: &RecordBatch) -> Vec<i64> {
        b.column_by_name("time")
            .expect("time")
            .as_primitive::<TimestampNanosecondType>()
            .values()
            .to_vec()
    }

    /// Guarantees: rows go to the hour of their time, else of their
    /// observed time, else of their batch's arrival; hours come in order
    /// with the LSNs of their rows, and no row is lost or duplicated.
    #[test]
    fn rows_split_by_hour_with_fallbacks() {
        let h = HOUR_NS;
        let a = logs_batch(
            &[Some(3 * h), None, None],
            &[Some(0), Some(2 * h + 5), None],
            &["a", "b", "c"],
        );
        let b = logs_batch(&[Some(h + 1), Some(3 * h + 1)], &[None, None], &["d", "e"]);
        let parts = split_by_hour(Signal::Logs, &[mem(4, a, 7 * h), mem(9, b, 0)]).expect("split");
        let got: Vec<(i64, usize, (Lsn, Lsn))> = parts
            .iter()
            .map(|p| (p.hour, p.rows.num_rows(), p.lsn))
            .collect();
        assert_eq!(
            got,
            vec![
                (1, 1, (9, 9)),
                (2, 1, (4, 4)),
                (3, 2, (4, 9)),
                (7, 1, (4, 4))
            ]
        );
    }

    /// Guarantees: within an hour, rows are in (service_name, time) order
    /// with null services first, and the encoded file declares that order.
    #[test]
    fn sorts_by_service_then_time() {
        let b = logs_batch(
            &[Some(5), Some(1), Some(3), Some(2)],
            &[None; 4],
            &["b", "a", "b", ""],
        );
        let parts = split_by_hour(Signal::Logs, &[mem(1, b, 0)]).expect("split");
        assert_eq!(parts.len(), 1);
        let s = &parts[0].rows;
        assert_eq!(times(s), vec![2, 1, 3, 5]);
        let bytes = encode(Signal::Logs, s, vec![]).expect("encode");
        let reader =
            parquet::file::serialized_reader::SerializedFileReader::new(bytes::Bytes::from(bytes))
                .expect("read");
        let md = parquet::file::reader::FileReader::metadata(&reader);
        let sorting = md.row_group(0).sorting_columns().expect("sorting").clone();
        // logs: time(0) observed_time(1) service_name(2)
        assert_eq!(
            sorting.iter().map(|s| s.column_idx).collect::<Vec<_>>(),
            vec![2, 0]
        );
    }

    /// Guarantees: a flush whose rows fall in 5,000 distinct hours, given
    /// in shuffled order across several batches, comes out as 5,000 hours
    /// in order, each with its rows sorted; and every hour is a slice of
    /// one sorted batch (its rows sit in the same buffer, one after the
    /// other): the rows were sorted once and cut, not filtered once per
    /// hour.
    #[test]
    fn thousands_of_hours_are_one_sort_then_slices() {
        const HOURS: i64 = 5_000;
        let base = 1_709_287_200_000_000_000;
        // Two rows per hour, services in reverse, hours in a scrambled order.
        let mut rows: Vec<(i64, String)> = (0..HOURS)
            .flat_map(|h| {
                let at = base + ((h * 7_919) % HOURS) * HOUR_NS;
                [(at + 10, format!("s{h:05}")), (at, format!("r{h:05}"))]
            })
            .collect();
        rows.reverse();
        let batches: Vec<Arc<MemBatch>> = rows
            .chunks(1_000)
            .enumerate()
            .map(|(i, chunk)| {
                let t: Vec<Option<i64>> = chunk.iter().map(|(t, _)| Some(*t)).collect();
                let s: Vec<&str> = chunk.iter().map(|(_, s)| s.as_str()).collect();
                mem(i as Lsn + 1, logs_batch(&t, &vec![None; t.len()], &s), 0)
            })
            .collect();
        let parts = split_by_hour(Signal::Logs, &batches).expect("split");
        assert_eq!(parts.len(), HOURS as usize);
        let first_hour = hour_of(base);
        let mut next_row = 0usize;
        let origin = parts[0]
            .rows
            .column_by_name("time")
            .expect("time")
            .as_primitive::<TimestampNanosecondType>()
            .values()
            .as_ptr() as usize;
        for (i, p) in parts.iter().enumerate() {
            assert_eq!(p.hour, first_hour + i as i64);
            assert_eq!(p.rows.num_rows(), 2);
            let t = times(&p.rows);
            // Sorted by service: "r..." (at the hour) before "s..." (+10 ns).
            assert_eq!(t[1] - t[0], 10, "hour {i}: {t:?}");
            let col = p.rows.column_by_name("time").expect("time");
            let at = col
                .as_primitive::<TimestampNanosecondType>()
                .values()
                .as_ptr() as usize;
            assert_eq!(
                at - origin,
                next_row * size_of::<i64>(),
                "hour {i} is not a slice of the one sorted batch"
            );
            next_row += p.rows.num_rows();
        }
        assert_eq!(next_row, rows.len());
    }

    /// Guarantees: runs are found in one pass, with their exact ranges.
    #[test]
    fn runs_of_sorted_hours() {
        assert_eq!(runs(&[]), vec![]);
        assert_eq!(
            runs(&[1, 1, 2, 5, 5, 5]),
            vec![(1, 0..2), (2, 2..3), (5, 3..6)]
        );
    }
}
