//! A quick test that two rows hold the very same resource (or scope):
//! every column whose name starts with `resource_` (or `scope_`) has the
//! same items at both rows, compared as stored (dictionary keys, string
//! bytes, map entries as blocks). It is a sufficient condition for
//! `CommonReader::same_resource` (`same_scope`), which reads only those
//! columns; when it fails, or a column has a type it does not know, the
//! caller asks `CommonReader`, so the runs are the same either way, found
//! faster in the usual batch where consecutive rows share their resource.

use std::ops::Range;

use arrow::array::{Array, ArrayRef, AsArray, Int32Array, StringArray, UInt32Array};
use arrow::buffer::{NullBuffer, OffsetBuffer};
use arrow::datatypes::{DataType, Int32Type};
use arrow::record_batch::RecordBatch;

/// One column, typed for comparing items.
enum Col {
    /// A string column.
    Utf8(StringArray),
    /// The keys of a dictionary column: equal keys, equal values.
    Keys(Int32Array),
    /// A count.
    U32(UInt32Array),
    /// A map: its entries, and their keys and values.
    Map {
        offsets: OffsetBuffer<i32>,
        nulls: Option<NullBuffer>,
        keys: Box<Col>,
        values: Box<Col>,
    },
}

impl Col {
    /// `array` typed, or `None` for a type this test does not know.
    fn of(array: &ArrayRef) -> Option<Col> {
        match array.data_type() {
            DataType::Utf8 => Some(Col::Utf8(array.as_string::<i32>().clone())),
            DataType::UInt32 => Some(Col::U32(array.as_primitive().clone())),
            DataType::Dictionary(k, _) if **k == DataType::Int32 => {
                Some(Col::Keys(array.as_dictionary::<Int32Type>().keys().clone()))
            }
            DataType::Map(_, _) => {
                let map = array.as_map_opt()?;
                Some(Col::Map {
                    offsets: map.offsets().clone(),
                    nulls: map.nulls().cloned(),
                    keys: Box::new(Col::of(map.keys())?),
                    values: Box::new(Col::of(map.values())?),
                })
            }
            _ => None,
        }
    }

    /// Whether the items of `a` and of `b` (ranges of equal length) are
    /// pairwise identical.
    fn same(&self, a: Range<usize>, b: Range<usize>) -> bool {
        if a.len() != b.len() {
            return false;
        }
        match self {
            Col::Utf8(array) => same_strings(array, a, b),
            Col::Keys(array) => same_primitives(array, a, b),
            Col::U32(array) => same_primitives(array, a, b),
            Col::Map {
                offsets,
                nulls: None,
                keys,
                values,
            } => {
                // Without nulls, the maps of `a` and of `b` are the same
                // when each holds as many entries as its counterpart and
                // their entries, one block each, are the same.
                let (Some(oa), Some(ob)) =
                    (offsets.get(a.start..=a.end), offsets.get(b.start..=b.end))
                else {
                    return false;
                };
                let (sa, sb) = (oa[0], ob[0]);
                if !oa.iter().zip(ob).all(|(x, y)| x - sa == y - sb) {
                    return false;
                }
                let block = |o: &[i32]| -> Option<Range<usize>> {
                    Some(usize::try_from(*o.first()?).ok()?..usize::try_from(*o.last()?).ok()?)
                };
                match (block(oa), block(ob)) {
                    (Some(ea), Some(eb)) => {
                        keys.same(ea.clone(), eb.clone()) && values.same(ea, eb)
                    }
                    _ => false,
                }
            }
            Col::Map {
                offsets,
                nulls,
                keys,
                values,
            } => a.zip(b).all(|(i, j)| {
                let null = |k: usize| nulls.as_ref().is_some_and(|n| n.is_null(k));
                match (null(i), null(j)) {
                    (true, true) => true,
                    (false, false) => {
                        let entries = |k: usize| -> Option<Range<usize>> {
                            let start = usize::try_from(*offsets.get(k)?).ok()?;
                            let end = usize::try_from(*offsets.get(k + 1)?).ok()?;
                            Some(start..end)
                        };
                        match (entries(i), entries(j)) {
                            (Some(ei), Some(ej)) => {
                                keys.same(ei.clone(), ej.clone()) && values.same(ei, ej)
                            }
                            _ => false,
                        }
                    }
                    _ => false,
                }
            }),
        }
    }
}

/// Whether two runs of a primitive column hold the same items (nulls at
/// the same places).
fn same_primitives<T>(
    array: &arrow::array::PrimitiveArray<T>,
    a: Range<usize>,
    b: Range<usize>,
) -> bool
where
    T: arrow::datatypes::ArrowPrimitiveType,
{
    if array.null_count() == 0 {
        let values = array.values();
        return match (values.get(a), values.get(b)) {
            (Some(x), Some(y)) => x == y,
            _ => false,
        };
    }
    a.zip(b)
        .all(|(i, j)| match (array.is_valid(i), array.is_valid(j)) {
            (true, true) => array.value(i) == array.value(j),
            (false, false) => true,
            _ => false,
        })
}

/// Whether two runs of a string column hold the same items: without
/// nulls, the same lengths and one block of the same bytes.
fn same_strings(array: &StringArray, a: Range<usize>, b: Range<usize>) -> bool {
    if array.null_count() != 0 {
        return a
            .zip(b)
            .all(|(i, j)| match (array.is_valid(i), array.is_valid(j)) {
                (true, true) => array.value(i) == array.value(j),
                (false, false) => true,
                _ => false,
            });
    }
    let offsets = array.value_offsets();
    let (Some(oa), Some(ob)) = (offsets.get(a.start..=a.end), offsets.get(b.start..=b.end)) else {
        return false;
    };
    let (sa, sb) = (oa[0], ob[0]);
    if !oa.iter().zip(ob).all(|(x, y)| x - sa == y - sb) {
        return false;
    }
    let bytes = array.value_data();
    let block = |o: &[i32]| -> Option<&[u8]> {
        let start = usize::try_from(*o.first()?).ok()?;
        let end = usize::try_from(*o.last()?).ok()?;
        bytes.get(start..end)
    };
    match (block(oa), block(ob)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// The columns of a batch whose names start with a prefix.
pub(super) struct SameRows {
    /// `None` when a column has a type the test does not know: it then
    /// never says two rows are the same.
    cols: Option<Vec<Col>>,
}

impl SameRows {
    /// The columns of `batch` named `prefix...`.
    pub fn new(batch: &RecordBatch, prefix: &str) -> Self {
        let schema = batch.schema();
        let cols = schema
            .fields()
            .iter()
            .zip(batch.columns())
            .filter(|(f, _)| f.name().starts_with(prefix))
            .map(|(_, c)| Col::of(c))
            .collect::<Option<Vec<_>>>()
            .filter(|cols| !cols.is_empty());
        SameRows { cols }
    }

    /// Whether rows `a` and `b` hold identical items in every column (the
    /// tests' row-by-row reference for [`SameRows::same_run`]).
    #[cfg(test)]
    pub fn same(&self, a: usize, b: usize) -> bool {
        self.cols
            .as_ref()
            .is_some_and(|cols| cols.iter().all(|c| c.same(a..a + 1, b..b + 1)))
    }

    /// Whether the rows of `rows` hold identical items in every column:
    /// each row the same as the one before it, compared for all of them
    /// at once (the block of rows but the first against the block of rows
    /// but the last).
    pub fn same_run(&self, rows: Range<usize>) -> bool {
        if rows.len() < 2 {
            return true;
        }
        let (later, earlier) = (rows.start + 1..rows.end, rows.start..rows.end - 1);
        self.cols
            .as_ref()
            .is_some_and(|cols| cols.iter().all(|c| c.same(later.clone(), earlier.clone())))
    }
}

/// The runs of `range` whose consecutive rows are `same` (as
/// `read::runs`), found with `quick`, a test that rows are the same that
/// may miss some (never says so wrongly), over growing blocks of rows: a
/// run of `n` identical rows costs about `log n` block comparisons
/// instead of `n` row comparisons. `same`, the exact test, decides
/// wherever `quick` does not tell (it is not asked again there).
pub(super) fn runs(
    range: Range<usize>,
    quick: &SameRows,
    same: impl Fn(usize, usize) -> bool,
) -> impl Iterator<Item = Range<usize>> {
    let end = range.end;
    let mut start = range.start;
    std::iter::from_fn(move || {
        if start >= end {
            return None;
        }
        let mut stop = start + 1;
        let mut step = 1;
        while stop < end {
            let next = (stop + step).min(end);
            if quick.same_run(stop - 1..next) {
                stop = next;
                step *= 2;
            } else if step > 1 {
                step = 1;
            } else if same(stop - 1, stop) {
                stop += 1;
            } else {
                break;
            }
        }
        let run = start..stop;
        start = stop;
        Some(run)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::spans_to_batch;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

    fn resource(service: &str, spans: u8) -> ResourceSpans {
        let span = |i: u8| Span {
            trace_id: vec![i + 1; 16],
            span_id: vec![i + 1; 8],
            ..Default::default()
        };
        ResourceSpans {
            resource: Some(Resource {
                attributes: vec![KeyValue {
                    key: "service.name".into(),
                    value: Some(AnyValue {
                        value: Some(any_value::Value::StringValue(service.into())),
                    }),
                    key_strindex: 0,
                }],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans: (0..spans).map(span).collect(),
                ..Default::default()
            }],
            schema_url: String::new(),
        }
    }

    /// Guarantees: the runs found over growing blocks of rows are the
    /// runs found row by row, also where the quick test cannot tell
    /// (equal resources from different containers, which only the exact
    /// test finds the same).
    #[test]
    fn runs_over_blocks_are_the_runs_row_by_row() {
        let groups = [
            ("a", 3),
            ("a", 2),
            ("b", 1),
            ("a", 9),
            ("c", 2),
            ("c", 1),
            ("a", 17),
            ("b", 1),
        ];
        let req = ExportTraceServiceRequest {
            resource_spans: groups.iter().map(|(s, n)| resource(s, *n)).collect(),
        };
        let batch = spans_to_batch(&req).expect("converts").batch;
        let names = arrow::compute::cast(
            batch.column_by_name("service_name").expect("column"),
            &DataType::Utf8,
        )
        .expect("cast");
        let names = names.as_string::<i32>().clone();
        let exact = |a: usize, b: usize| names.value(a) == names.value(b);
        let quick = SameRows::new(&batch, "resource_");
        let n = batch.num_rows();
        for start in [0, 1, 4, 7] {
            let blocks: Vec<_> = runs(start..n, &quick, exact).collect();
            let rows: Vec<_> =
                crate::convert::read::runs(start..n, |a, b| quick.same(a, b) || exact(a, b))
                    .collect();
            assert_eq!(blocks, rows, "from row {start}");
        }
        assert_eq!(
            runs(0..n, &quick, exact).count(),
            6,
            "a, b, a, c, a, b: equal neighbours merge"
        );
    }

    /// Guarantees: rows of one resource are the same, rows of another
    /// (a value of another length, or the same length) are not, and a
    /// column of an unknown type makes the test say "not known to be the
    /// same" for every pair.
    #[test]
    fn same_only_for_identical_rows() {
        let req = ExportTraceServiceRequest {
            resource_spans: vec![resource("a", 2), resource("bb", 1), resource("cc", 1)],
        };
        let batch = spans_to_batch(&req).expect("converts").batch;
        let same = SameRows::new(&batch, "resource_");
        assert!(same.same(0, 1));
        assert!(!same.same(1, 2));
        assert!(!same.same(2, 3));
        assert!(same.same(3, 3));
        let schema = batch.schema();
        let mut columns = batch.columns().to_vec();
        let at = schema
            .index_of("resource_dropped_attributes_count")
            .expect("column");
        columns[at] = std::sync::Arc::new(arrow::array::Int64Array::from(vec![0i64; 4]));
        let fields: Vec<_> = schema
            .fields()
            .iter()
            .zip(&columns)
            .map(|(f, c)| {
                arrow::datatypes::Field::new(f.name(), c.data_type().clone(), f.is_nullable())
            })
            .collect();
        let odd = RecordBatch::try_new(
            std::sync::Arc::new(arrow::datatypes::Schema::new(fields)),
            columns,
        )
        .expect("a batch");
        assert!(!SameRows::new(&odd, "resource_").same(0, 1));
    }
}
