//! The column operations behind the `batch` resource: bulk reads and writes
//! of one column or one attribute key across all rows of a record batch.
//!
//! Every function checks its arguments (column present, type fitting, list
//! as long as the batch) and answers with a [`ColumnError`] instead of
//! panicking: the arguments come from a plugin and are not trusted.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Float64Array, Int64Array, StringArray};
use arrow::buffer::{NullBuffer, OffsetBuffer};
use arrow::compute::{CastOptions, cast, cast_with_options, filter_record_batch, not};
use arrow::datatypes::DataType;
use arrow::record_batch::RecordBatch;
use arrow::row::{RowConverter, SortField};
use arrow::util::display::FormatOptions;

use crate::attributes::{AttributeColumn, read_attribute_column, write_attributes};

/// Why a column operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ColumnError {
    /// No column of this name.
    #[error("the batch has no column `{0}`")]
    NoSuchColumn(String),
    /// The column cannot be read or written as asked.
    #[error("{0}")]
    TypeMismatch(String),
    /// An argument is not acceptable (length, nulls, range).
    #[error("{0}")]
    InvalidArgument(String),
}

/// The attribute map columns a plugin may work on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttributeSet {
    /// `attributes`.
    Record,
    /// `resource_attributes`.
    Resource,
    /// `scope_attributes`.
    Scope,
}

impl AttributeSet {
    pub(crate) fn column(self) -> &'static str {
        match self {
            AttributeSet::Record => weir_core::schema::col::ATTRIBUTES,
            AttributeSet::Resource => weir_core::schema::col::RESOURCE_ATTRIBUTES,
            AttributeSet::Scope => weir_core::schema::col::SCOPE_ATTRIBUTES,
        }
    }
}

pub(crate) fn column<'a>(
    batch: &'a RecordBatch,
    name: &str,
) -> Result<(usize, &'a ArrayRef), ColumnError> {
    let index = batch
        .schema_ref()
        .index_of(name)
        .map_err(|_| ColumnError::NoSuchColumn(name.to_string()))?;
    Ok((index, batch.column(index)))
}

pub(crate) fn check_len(batch: &RecordBatch, len: usize) -> Result<(), ColumnError> {
    if len != batch.num_rows() {
        return Err(ColumnError::InvalidArgument(format!(
            "{len} values given for a batch of {} rows; give exactly one per row",
            batch.num_rows()
        )));
    }
    Ok(())
}

fn is_text(t: &DataType) -> bool {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, v) => is_text(v),
        _ => false,
    }
}

fn is_integer(t: &DataType) -> bool {
    t.is_integer() || matches!(t, DataType::Timestamp(..))
}

/// Column `name` in its text form, as one `Utf8` array.
fn text_of(batch: &RecordBatch, name: &str) -> Result<ArrayRef, ColumnError> {
    let (_, array) = column(batch, name)?;
    if let DataType::FixedSizeBinary(_) = array.data_type() {
        let ids = array.as_fixed_size_binary();
        let hex: StringArray = ids
            .iter()
            .map(|v| v.map(|b| b.iter().map(|x| format!("{x:02x}")).collect::<String>()))
            .collect();
        return Ok(Arc::new(hex));
    }
    if array.data_type().is_nested() {
        return Err(ColumnError::TypeMismatch(format!(
            "column `{name}` is {} and has no text form; read attributes with `read-attribute`",
            array.data_type()
        )));
    }
    if *array.data_type() == DataType::Utf8 {
        return Ok(array.clone());
    }
    let options = CastOptions {
        safe: false,
        format_options: FormatOptions::default(),
    };
    cast_with_options(array, &DataType::Utf8, &options)
        .map_err(|e| ColumnError::TypeMismatch(format!("column `{name}` as text: {e}")))
}

/// Every row of `name` as text.
pub fn read_strings(batch: &RecordBatch, name: &str) -> Result<Vec<Option<String>>, ColumnError> {
    let text = text_of(batch, name)?;
    Ok(text
        .as_string::<i32>()
        .iter()
        .map(|v| v.map(str::to_owned))
        .collect())
}

/// A text column in Arrow's layout, as the `text-column` record carries it:
/// the values' bytes end to end, `rows + 1` offsets, and either no null
/// flags or one per row.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TextColumn {
    /// The values' UTF-8 bytes in row order.
    pub data: Vec<u8>,
    /// Where each value starts; the last entry is where the last one ends.
    pub offsets: Vec<u32>,
    /// Empty, or true where the row is null.
    pub nulls: Vec<bool>,
}

/// Every row of `name` as text, in one [`TextColumn`].
pub fn read_text(batch: &RecordBatch, name: &str) -> Result<TextColumn, ColumnError> {
    let text = text_of(batch, name)?;
    let strings = text.as_string::<i32>();
    let offsets = strings.value_offsets();
    let (first, last) = (offsets[0], offsets[offsets.len() - 1]);
    let base = usize::try_from(first).unwrap_or(0);
    let end = usize::try_from(last).unwrap_or(0);
    let data = strings.value_data()[base..end].to_vec();
    let offsets = offsets
        .iter()
        .map(|o| u32::try_from(o - first).unwrap_or(u32::MAX))
        .collect();
    let nulls = match strings.nulls() {
        Some(n) if n.null_count() > 0 => n.iter().map(|valid| !valid).collect(),
        _ => Vec::new(),
    };
    Ok(TextColumn {
        data,
        offsets,
        nulls,
    })
}

/// The text column `name`, refused if it is not one.
fn text_column(batch: &RecordBatch, name: &str) -> Result<usize, ColumnError> {
    let (index, array) = column(batch, name)?;
    if !is_text(array.data_type()) {
        return Err(ColumnError::TypeMismatch(format!(
            "column `{name}` is {}, not a text column",
            array.data_type()
        )));
    }
    Ok(index)
}

/// Puts new `Utf8` values in place of text column `index`, cast to its
/// type (a dictionary, say) when it has another.
fn put_text(
    batch: &RecordBatch,
    index: usize,
    name: &str,
    values: StringArray,
) -> Result<RecordBatch, ColumnError> {
    let to = batch.schema_ref().field(index).data_type().clone();
    let values: ArrayRef = Arc::new(values);
    let values = if *values.data_type() == to {
        values
    } else {
        cast_into(&values, name, &to)?
    };
    replace_column(batch, index, values)
}

/// Replaces a text column from a [`TextColumn`], checking everything the
/// plugin could have got wrong.
pub fn write_text(
    batch: &RecordBatch,
    name: &str,
    values: TextColumn,
) -> Result<RecordBatch, ColumnError> {
    let index = text_column(batch, name)?;
    let TextColumn {
        data,
        offsets,
        nulls,
    } = values;
    if offsets.is_empty() {
        return Err(ColumnError::InvalidArgument(
            "a text column needs num-rows + 1 offsets; none were given".into(),
        ));
    }
    check_len(batch, offsets.len() - 1)?;
    if !nulls.is_empty() {
        check_len(batch, nulls.len())?;
    }
    if offsets.windows(2).any(|w| w[1] < w[0]) {
        return Err(ColumnError::InvalidArgument(
            "text column offsets must never decrease".into(),
        ));
    }
    let last = offsets[offsets.len() - 1];
    if usize::try_from(last).map_or(true, |l| l > data.len()) || last > i32::MAX as u32 {
        return Err(ColumnError::InvalidArgument(format!(
            "the last text column offset is {last}, past the {} bytes of data",
            data.len()
        )));
    }
    let offsets = OffsetBuffer::new(offsets.into_iter().map(|o| o as i32).collect());
    let nulls = (!nulls.is_empty()).then(|| NullBuffer::from_iter(nulls.iter().map(|n| !n)));
    let values = StringArray::try_new(offsets, data.into(), nulls).map_err(|e| {
        ColumnError::InvalidArgument(format!("the new values of column `{name}`: {e}"))
    })?;
    put_text(batch, index, name, values)
}

/// Every row of an integer or time column as `i64`.
pub fn read_ints(batch: &RecordBatch, name: &str) -> Result<Vec<Option<i64>>, ColumnError> {
    let (_, array) = column(batch, name)?;
    if !is_integer(array.data_type()) {
        return Err(ColumnError::TypeMismatch(format!(
            "column `{name}` is {}, not an integer or time column",
            array.data_type()
        )));
    }
    let ints = cast(array, &DataType::Int64)
        .map_err(|e| ColumnError::TypeMismatch(format!("column `{name}` as integers: {e}")))?;
    Ok(ints
        .as_primitive::<arrow::datatypes::Int64Type>()
        .iter()
        .collect())
}

/// Every row of a numeric column as `f64`.
pub fn read_floats(batch: &RecordBatch, name: &str) -> Result<Vec<Option<f64>>, ColumnError> {
    let (_, array) = column(batch, name)?;
    if !(array.data_type().is_floating() || array.data_type().is_integer()) {
        return Err(ColumnError::TypeMismatch(format!(
            "column `{name}` is {}, not a numeric column",
            array.data_type()
        )));
    }
    let floats = cast(array, &DataType::Float64)
        .map_err(|e| ColumnError::TypeMismatch(format!("column `{name}` as doubles: {e}")))?;
    Ok(floats
        .as_primitive::<arrow::datatypes::Float64Type>()
        .iter()
        .collect())
}

pub(crate) fn replace_column(
    batch: &RecordBatch,
    index: usize,
    values: ArrayRef,
) -> Result<RecordBatch, ColumnError> {
    let name = batch.schema_ref().field(index).name().clone();
    if !batch.schema_ref().field(index).is_nullable() && values.null_count() > 0 {
        return Err(ColumnError::InvalidArgument(format!(
            "column `{name}` cannot hold nulls; give a value for every row"
        )));
    }
    let mut columns = batch.columns().to_vec();
    columns[index] = values;
    RecordBatch::try_new(batch.schema(), columns)
        .map_err(|e| ColumnError::InvalidArgument(format!("column `{name}`: {e}")))
}

pub(crate) fn cast_into(
    values: &ArrayRef,
    name: &str,
    to: &DataType,
) -> Result<ArrayRef, ColumnError> {
    let options = CastOptions {
        safe: false,
        format_options: FormatOptions::default(),
    };
    cast_with_options(values, to, &options).map_err(|e| {
        ColumnError::InvalidArgument(format!("a value does not fit column `{name}`: {e}"))
    })
}

/// Replaces a text column.
pub fn write_strings(
    batch: &RecordBatch,
    name: &str,
    values: Vec<Option<String>>,
) -> Result<RecordBatch, ColumnError> {
    let index = text_column(batch, name)?;
    check_len(batch, values.len())?;
    put_text(batch, index, name, StringArray::from(values))
}

/// Replaces an integer or time column.
pub fn write_ints(
    batch: &RecordBatch,
    name: &str,
    values: Vec<Option<i64>>,
) -> Result<RecordBatch, ColumnError> {
    let (index, array) = column(batch, name)?;
    if !is_integer(array.data_type()) {
        return Err(ColumnError::TypeMismatch(format!(
            "column `{name}` is {}, not an integer or time column",
            array.data_type()
        )));
    }
    check_len(batch, values.len())?;
    let values: ArrayRef = Arc::new(Int64Array::from(values));
    let values = cast_into(&values, name, array.data_type())?;
    replace_column(batch, index, values)
}

/// Replaces a floating-point column.
pub fn write_floats(
    batch: &RecordBatch,
    name: &str,
    values: Vec<Option<f64>>,
) -> Result<RecordBatch, ColumnError> {
    let (index, array) = column(batch, name)?;
    if !array.data_type().is_floating() {
        return Err(ColumnError::TypeMismatch(format!(
            "column `{name}` is {}, not a floating-point column",
            array.data_type()
        )));
    }
    check_len(batch, values.len())?;
    let values: ArrayRef = Arc::new(Float64Array::from(values));
    let values = cast_into(&values, name, array.data_type())?;
    replace_column(batch, index, values)
}

/// Drops the rows where `mask` is true.
pub fn drop_rows(batch: &RecordBatch, mask: Vec<bool>) -> Result<RecordBatch, ColumnError> {
    check_len(batch, mask.len())?;
    let keep =
        not(&BooleanArray::from(mask)).map_err(|e| ColumnError::InvalidArgument(e.to_string()))?;
    filter_record_batch(batch, &keep).map_err(|e| ColumnError::InvalidArgument(e.to_string()))
}

/// The first value of attribute `key` in every row.
pub fn read_attribute(
    batch: &RecordBatch,
    set: AttributeSet,
    key: &str,
) -> Result<Vec<Option<String>>, ColumnError> {
    Ok(read_attribute_column(batch, set, key)?.to_options())
}

/// The distinct keys of attribute set `set` in any row of the batch, each
/// once, in the order they are first seen (row by row, entries in order).
pub fn attribute_keys(batch: &RecordBatch, set: AttributeSet) -> Result<Vec<String>, ColumnError> {
    let name = set.column();
    let (_, array) = column(batch, name)?;
    let Some(map) = array.as_map_opt() else {
        return Err(ColumnError::TypeMismatch(format!(
            "column `{name}` is not an attribute map"
        )));
    };
    let offsets = map.value_offsets();
    let (start, end) = (offsets[0] as usize, offsets[offsets.len() - 1] as usize);
    // Only the entries of this batch's rows (it may be a slice).
    let keys = cast(&map.keys().slice(start, end - start), &DataType::Utf8)
        .map_err(|e| ColumnError::TypeMismatch(format!("column `{name}`: {e}")))?;
    let keys = keys.as_string::<i32>();
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for row in 0..map.len() {
        if !map.is_valid(row) {
            continue;
        }
        let (from, to) = (
            offsets[row] as usize - start,
            offsets[row + 1] as usize - start,
        );
        for j in from..to {
            if keys.is_valid(j) && seen.insert(keys.value(j)) {
                out.push(keys.value(j).to_string());
            }
        }
    }
    Ok(out)
}

/// Which of `parts` parts each row goes to: a hash of its value of column
/// `name` modulo `parts`, the same for the same value in any batch (of
/// this process). Text columns are hashed by their text, identifiers
/// (`trace_id`) by their bytes, other columns (dictionaries, numbers,
/// attribute maps) by Arrow's row encoding of the value; null is one
/// value of its own.
pub fn partitions(
    batch: &RecordBatch,
    name: &str,
    parts: usize,
) -> Result<Vec<usize>, ColumnError> {
    let (_, array) = column(batch, name)?;
    match array.data_type() {
        DataType::FixedSizeBinary(_) => {
            let ids = array.as_fixed_size_binary();
            Ok(ids.iter().map(|v| part_of(v, parts)).collect())
        }
        DataType::Binary => {
            let ids = array.as_binary::<i32>();
            Ok(ids.iter().map(|v| part_of(v, parts)).collect())
        }
        DataType::Utf8 => {
            let text = array.as_string::<i32>();
            Ok(text
                .iter()
                .map(|v| part_of(v.map(str::as_bytes), parts))
                .collect())
        }
        other => {
            // Any other type (dictionaries, numbers, maps) by Arrow's row
            // encoding of the value, which depends on the value alone.
            let refused = |e: arrow::error::ArrowError| {
                ColumnError::TypeMismatch(format!("column `{name}` cannot be partitioned by: {e}"))
            };
            let converter =
                RowConverter::new(vec![SortField::new(other.clone())]).map_err(refused)?;
            let rows = converter
                .convert_columns(std::slice::from_ref(array))
                .map_err(refused)?;
            Ok((0..rows.num_rows())
                .map(|i| {
                    let value = array.is_valid(i).then(|| rows.row(i));
                    part_of(value.as_ref().map(|r| r.as_ref()), parts)
                })
                .collect())
        }
    }
}

/// The part of [`partitions`] that null goes to: where every row of a
/// batch without the column goes.
pub fn null_partition(parts: usize) -> usize {
    part_of(None, parts)
}

fn part_of(value: Option<&[u8]>, parts: usize) -> usize {
    use std::hash::{DefaultHasher, Hash, Hasher};
    // `DefaultHasher::new` has fixed keys: the same value, the same part,
    // for the life of the process.
    let mut h = DefaultHasher::new();
    value.hash(&mut h);
    (h.finish() % parts.max(1) as u64) as usize
}

/// Sets (where `values[i]` is some) or, with `values = None`, removes
/// attribute `key` in every row. A replaced entry becomes a string; further
/// entries of the same key are removed.
pub fn update_attribute(
    batch: &RecordBatch,
    set: AttributeSet,
    key: &str,
    values: Option<Vec<Option<String>>>,
) -> Result<RecordBatch, ColumnError> {
    let key = key.to_string();
    match values {
        Some(values) => write_attributes(
            batch,
            set,
            &[],
            vec![(key, AttributeColumn::from_options(values))],
        ),
        None => write_attributes(batch, set, &[key], Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_core::convert::{batch_to_logs, json, logs_to_batch};

    fn logs() -> RecordBatch {
        let req = json::decode_logs(
            br#"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"cart"}}]},
              "scopeLogs":[{"logRecords":[
                {"timeUnixNano":"1000","severityNumber":5,"body":{"stringValue":"user 42 in"},
                 "attributes":[{"key":"n","value":{"intValue":"7"}},{"key":"k","value":{"stringValue":"a"}}]},
                {"timeUnixNano":"2000","severityNumber":9,"body":{"stringValue":"ok"}}]}]}]}"#,
        )
        .expect("valid OTLP/JSON");
        logs_to_batch(&req).expect("converts").batch
    }

    fn text(data: &str, offsets: &[u32], nulls: &[bool]) -> TextColumn {
        TextColumn {
            data: data.as_bytes().to_vec(),
            offsets: offsets.to_vec(),
            nulls: nulls.to_vec(),
        }
    }

    /// Guarantees: `read-text` gives the values end to end with offsets
    /// from 0, also for a slice of a batch, and null flags only when a
    /// value is null; `write-text` puts them back, into a dictionary
    /// column too.
    #[test]
    fn text_columns_round_trip() {
        let b = logs();
        assert_eq!(
            read_text(&b, "body").expect("body"),
            text("user 42 inok", &[0, 10, 12], &[])
        );
        assert_eq!(
            read_text(&b.slice(1, 1), "body").expect("slice"),
            text("ok", &[0, 2], &[])
        );
        let written =
            write_text(&b, "body", text("ab", &[0, 2, 2], &[false, true])).expect("write");
        assert_eq!(
            read_strings(&written, "body").expect("body"),
            [Some("ab".to_string()), None]
        );
        assert_eq!(
            read_text(&written, "body").expect("nulls"),
            text("ab", &[0, 2, 2], &[false, true])
        );
        // `service_name` is a dictionary column: the text is cast back.
        let written =
            write_text(&b, "service_name", text("ab", &[0, 1, 2], &[])).expect("dictionary");
        assert_eq!(
            read_strings(&written, "service_name").expect("names"),
            [Some("a".to_string()), Some("b".to_string())]
        );
        assert_eq!(written.schema(), b.schema());
    }

    /// Guarantees: every way a plugin can get a text column wrong is
    /// refused with a message, and nothing panics.
    #[test]
    fn bad_text_columns_are_refused() {
        let b = logs();
        let refused = |t: TextColumn| write_text(&b, "body", t).expect_err("refused").to_string();
        assert!(refused(text("ab", &[], &[])).contains("offsets"));
        assert!(refused(text("ab", &[0, 2], &[])).contains("1 values given"));
        assert!(refused(text("ab", &[0, 2, 1], &[])).contains("never decrease"));
        assert!(refused(text("ab", &[0, 1, 3], &[])).contains("past the 2 bytes"));
        assert!(refused(text("ab", &[0, 1, 2], &[true])).contains("1 values given"));
        // `é` is two bytes: an offset of 1 splits it.
        assert!(refused(text("éa", &[0, 1, 3], &[])).contains("body"));
        let not_utf8 = TextColumn {
            data: vec![0xff, b'a'],
            offsets: vec![0, 1, 2],
            nulls: vec![],
        };
        assert!(refused(not_utf8).contains("body"));
        let refused = write_text(&b, "severity_number", text("ab", &[0, 1, 2], &[]));
        assert!(matches!(refused, Err(ColumnError::TypeMismatch(_))));
        assert!(matches!(
            read_text(&b, "attributes"),
            Err(ColumnError::TypeMismatch(_))
        ));
    }

    /// Guarantees: text, integer and attribute reads return one value per
    /// row, with nulls where a row has none.
    #[test]
    fn reads_columns_and_attributes() {
        let b = logs();
        assert_eq!(
            read_strings(&b, "body").expect("body"),
            [Some("user 42 in".to_string()), Some("ok".to_string())]
        );
        assert_eq!(
            read_ints(&b, "severity_number").expect("ints"),
            [Some(5), Some(9)]
        );
        assert_eq!(
            read_ints(&b, "time").expect("time"),
            [Some(1000), Some(2000)]
        );
        assert_eq!(
            read_attribute(&b, AttributeSet::Record, "n").expect("attr"),
            [Some("7".to_string()), None]
        );
        assert_eq!(
            read_strings(&b, "service_name").expect("dictionary column"),
            [Some("cart".to_string()), Some("cart".to_string())]
        );
        assert!(matches!(
            read_strings(&b, "nope"),
            Err(ColumnError::NoSuchColumn(_))
        ));
        assert!(matches!(
            read_ints(&b, "body"),
            Err(ColumnError::TypeMismatch(_))
        ));
    }

    /// Guarantees: writes keep the schema, refuse wrong lengths and nulls in
    /// non-null columns, and attribute edits survive the way back to OTLP
    /// with the types of untouched entries intact.
    #[test]
    fn writes_and_attribute_edits_round_trip() {
        let b = logs();
        let b = write_strings(&b, "body", vec![Some("x".into()), None]).expect("write");
        assert_eq!(
            read_strings(&b, "body").expect("body"),
            [Some("x".into()), None]
        );
        assert!(matches!(
            write_strings(&b, "body", vec![None]),
            Err(ColumnError::InvalidArgument(_))
        ));
        assert!(matches!(
            write_ints(&b, "severity_number", vec![None, Some(1)]),
            Err(ColumnError::InvalidArgument(_))
        ));
        assert!(matches!(
            write_ints(&b, "severity_number", vec![Some(1 << 40), Some(1)]),
            Err(ColumnError::InvalidArgument(_))
        ));
        let b = update_attribute(
            &b,
            AttributeSet::Record,
            "k",
            Some(vec![Some("b".into()), Some("c".into())]),
        )
        .expect("set");
        let b = update_attribute(
            &b,
            AttributeSet::Resource,
            "env",
            Some(vec![None, Some("prod".into())]),
        )
        .expect("set resource");
        assert_eq!(
            read_attribute(&b, AttributeSet::Record, "k").expect("attr"),
            [Some("b".into()), Some("c".into())]
        );
        let b = update_attribute(&b, AttributeSet::Record, "n", None).expect("remove");
        assert_eq!(
            read_attribute(&b, AttributeSet::Record, "n").expect("attr"),
            [None, None]
        );
        let back = batch_to_logs(&b).expect("converts back");
        let text = String::from_utf8(json::encode_logs(&back).expect("encodes")).expect("utf8");
        assert!(
            text.contains(r#"{"key":"k","value":{"stringValue":"b"}}"#),
            "{text}"
        );
        assert!(
            text.contains(r#"{"key":"env","value":{"stringValue":"prod"}}"#),
            "{text}"
        );
        assert!(!text.contains(r#""key":"n""#), "{text}");
        let b = drop_rows(&b, vec![true, false]).expect("drop");
        assert_eq!(b.num_rows(), 1);
        assert_eq!(read_ints(&b, "severity_number").expect("ints"), [Some(9)]);
    }

    /// Guarantees: `attribute-keys` lists each key once in first-seen
    /// order, and only the keys of the rows of a slice.
    #[test]
    fn attribute_keys_in_first_seen_order() {
        let b = logs();
        let b = update_attribute(
            &b,
            AttributeSet::Record,
            "z",
            Some(vec![None, Some("1".into())]),
        )
        .expect("set");
        let b = update_attribute(
            &b,
            AttributeSet::Record,
            "n",
            Some(vec![None, Some("2".into())]),
        )
        .expect("set");
        assert_eq!(
            attribute_keys(&b, AttributeSet::Record).expect("keys"),
            ["n", "k", "z"]
        );
        assert_eq!(
            attribute_keys(&b.slice(1, 1), AttributeSet::Record).expect("slice"),
            ["z", "n"]
        );
        assert_eq!(
            attribute_keys(&b, AttributeSet::Resource).expect("resource"),
            ["service.name"]
        );
        assert!(matches!(
            attribute_keys(&b, AttributeSet::Scope),
            Ok(keys) if keys.is_empty()
        ));
    }

    /// Guarantees: rows with the same value go to the same part, in every
    /// batch; every part index is below the number of parts.
    #[test]
    fn partitions_follow_the_value() {
        let b = logs();
        let parts = partitions(&b, "service_name", 4).expect("parts");
        assert_eq!(parts[0], parts[1]);
        assert!(parts.iter().all(|p| *p < 4));
        let attrs = partitions(&b, "attributes", 5).expect("a map column");
        assert_eq!(attrs, partitions(&b, "attributes", 5).expect("again"));
        let bodies = partitions(&b, "body", 7).expect("parts");
        assert_eq!(bodies, partitions(&b, "body", 7).expect("again"));
        assert_eq!(
            partitions(&b.slice(1, 1), "body", 7).expect("slice"),
            [bodies[1]]
        );
        assert!(matches!(
            partitions(&b, "nope", 2),
            Err(ColumnError::NoSuchColumn(_))
        ));
    }

    /// Guarantees: an int attribute keeps its type when a neighbour is
    /// removed (the types string shifts with the entries).
    #[test]
    fn removing_shifts_types() {
        let b = logs();
        let b = update_attribute(&b, AttributeSet::Record, "k", None).expect("remove");
        let back = batch_to_logs(&b).expect("converts back");
        let text = String::from_utf8(json::encode_logs(&back).expect("encodes")).expect("utf8");
        assert!(
            text.contains(r#"{"key":"n","value":{"intValue":"7"}}"#),
            "{text}"
        );
    }
}
