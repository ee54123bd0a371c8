//! Attribute columns read and written in bulk, each distinct value once:
//! `read-attribute-column` and `write-attributes` of the `batch` resource.
//!
//! An attribute set is an Arrow map column (`attributes`,
//! `resource_attributes`, `scope_attributes`) beside a `*_types` column
//! that gives each entry's OTLP type (see `docs/schema.md`). A write of
//! several keys is one pass over the map: each row's entries are kept,
//! dropped or replaced in place by index, the new entries appended after
//! them, and the new map is taken from the old entries and the written
//! values in one `take` per child. No old entry is copied into a `String`,
//! and a dictionary's values keep their dictionary.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, MapArray, StringArray, StringBuilder, StructArray, UInt32Array,
};
use arrow::buffer::{NullBuffer, OffsetBuffer};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Int32Type};
use arrow::record_batch::RecordBatch;

use crate::columns::{AttributeSet, ColumnError, cast_into, check_len, column, replace_column};

/// One attribute's value in every row, each distinct value once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttributeColumn {
    /// The values (a value may appear twice; one no row uses is allowed).
    pub values: Vec<String>,
    /// One entry per row: `0` where the row has no value (a read) or is
    /// left as it is (a write), `i + 1` where its value is `values[i]`.
    pub rows: Vec<u32>,
}

impl AttributeColumn {
    /// The column of a value (or none) per row.
    pub fn from_options(values: Vec<Option<String>>) -> Self {
        let mut column = AttributeColumn {
            values: Vec::new(),
            rows: Vec::with_capacity(values.len()),
        };
        for value in values {
            match value {
                Some(v) => {
                    column.values.push(v);
                    column.rows.push(column.values.len() as u32);
                }
                None => column.rows.push(0),
            }
        }
        column
    }

    /// The value of every row, `None` where it has none.
    pub fn to_options(&self) -> Vec<Option<String>> {
        self.rows
            .iter()
            .map(|&at| {
                let at = (at as usize).checked_sub(1)?;
                self.values.get(at).cloned()
            })
            .collect()
    }
}

/// The map column of `set` and its child arrays.
struct Map<'a> {
    name: &'static str,
    index: usize,
    map: &'a MapArray,
}

impl<'a> Map<'a> {
    fn of(batch: &'a RecordBatch, set: AttributeSet) -> Result<Self, ColumnError> {
        let name = set.column();
        let (index, array) = column(batch, name)?;
        let map = array.as_map_opt().ok_or_else(|| {
            ColumnError::TypeMismatch(format!("column `{name}` is not an attribute map"))
        })?;
        Ok(Map { name, index, map })
    }

    /// The entries' keys as text.
    fn keys(&self) -> Result<ArrayRef, ColumnError> {
        text(self.map.keys(), self.name)
    }
}

fn text(array: &ArrayRef, name: &str) -> Result<ArrayRef, ColumnError> {
    if array.data_type() == &DataType::Utf8 {
        return Ok(array.clone());
    }
    cast(array, &DataType::Utf8)
        .map_err(|e| ColumnError::TypeMismatch(format!("column `{name}`: {e}")))
}

/// Attribute `key` of every row (its first entry), each distinct value
/// once.
pub fn read_attribute_column(
    batch: &RecordBatch,
    set: AttributeSet,
    key: &str,
) -> Result<AttributeColumn, ColumnError> {
    let map = Map::of(batch, set)?;
    let keys = map.keys()?;
    let keys = keys.as_string::<i32>();
    let offsets = map.map.value_offsets();
    let mut out = AttributeColumn {
        values: Vec::new(),
        rows: Vec::with_capacity(map.map.len()),
    };
    // The entry holding the key in each row, if any.
    let entries = (0..map.map.len()).map(|row| {
        if !map.map.is_valid(row) {
            return None;
        }
        (offsets[row] as usize..offsets[row + 1] as usize)
            .find(|&j| keys.is_valid(j) && keys.value(j) == key)
    });
    let values = map.map.values();
    if let Some(dict) = values.as_dictionary_opt::<Int32Type>() {
        // Each dictionary value once, by its dictionary key.
        let words = text(dict.values(), map.name)?;
        let words = words.as_string::<i32>();
        let codes = dict.keys();
        let mut seen: HashMap<i32, u32> = HashMap::new();
        let mut last: Option<(i32, u32)> = None;
        for entry in entries {
            let code = entry.filter(|&j| codes.is_valid(j)).map(|j| codes.value(j));
            let Some(code) = code.filter(|&c| words.is_valid(c as usize)) else {
                out.rows.push(0);
                continue;
            };
            let at = match last {
                Some((c, at)) if c == code => at,
                _ => *seen.entry(code).or_insert_with(|| {
                    out.values.push(words.value(code as usize).to_string());
                    out.values.len() as u32
                }),
            };
            last = Some((code, at));
            out.rows.push(at);
        }
    } else {
        let words = text(values, map.name)?;
        let words = words.as_string::<i32>();
        let mut seen: HashMap<&str, u32> = HashMap::new();
        let mut last: Option<(&str, u32)> = None;
        for entry in entries {
            let Some(word) = entry.filter(|&j| words.is_valid(j)).map(|j| words.value(j)) else {
                out.rows.push(0);
                continue;
            };
            let at = match last {
                Some((w, at)) if w == word => at,
                _ => *seen.entry(word).or_insert_with(|| {
                    out.values.push(word.to_string());
                    out.values.len() as u32
                }),
            };
            last = Some((word, at));
            out.rows.push(at);
        }
    }
    Ok(out)
}

/// The OTLP type tokens of a row's `*_types` value, one per entry in
/// order (`s`, `i`, `d`, `b`, `a`, `k`, `y`, each maybe followed by
/// `#` and digits). Entries past the last token are strings.
pub(crate) struct TypeTokens<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> TypeTokens<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        TypeTokens { text, at: 0 }
    }
}

impl<'a> Iterator for TypeTokens<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let bytes = self.text.as_bytes();
        if self.at >= bytes.len() {
            return None;
        }
        let start = self.at;
        let mut i = start + 1;
        if i < bytes.len() && bytes[i] == b'#' {
            i += 1;
            while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'-') {
                i += 1;
            }
        }
        self.at = i;
        // Tokens are ASCII: `i` falls between characters unless the text
        // is not a types string at all.
        self.text.get(start..i)
    }
}

/// What a write does to the entries of one key.
#[derive(Clone, Copy)]
enum Action {
    Remove,
    /// Replace (or append) with the values of write `n`.
    Write(usize),
}

/// Changes several attributes of `set` in one pass: every key of
/// `remove` leaves every row, then each of `writes` sets its key in the
/// rows its column gives a value for, replacing the row's first entry of
/// the key in place (and dropping further ones) or appending one. Written
/// values are strings.
pub fn write_attributes(
    batch: &RecordBatch,
    set: AttributeSet,
    remove: &[String],
    writes: Vec<(String, AttributeColumn)>,
) -> Result<RecordBatch, ColumnError> {
    let mut actions: Vec<(&str, Action)> = Vec::with_capacity(remove.len() + writes.len());
    for key in remove {
        if key.is_empty() {
            return Err(ColumnError::InvalidArgument(
                "an attribute key cannot be empty".to_string(),
            ));
        }
        if !actions.iter().any(|(k, _)| k == key) {
            actions.push((key, Action::Remove));
        }
    }
    for (n, (key, column)) in writes.iter().enumerate() {
        if key.is_empty() {
            return Err(ColumnError::InvalidArgument(
                "an attribute key cannot be empty".to_string(),
            ));
        }
        if writes[..n].iter().any(|(k, _)| k == key) {
            return Err(ColumnError::InvalidArgument(format!(
                "attribute `{key}` is written twice in one call; give it once"
            )));
        }
        check_len(batch, column.rows.len())?;
        let count = column.values.len();
        if let Some(bad) = column.rows.iter().find(|&&i| i as usize > count) {
            return Err(ColumnError::InvalidArgument(format!(
                "attribute `{key}`: row index {bad} is past the {count} values given \
                 (0 leaves a row as it is, i + 1 means values[i])"
            )));
        }
        // A key both removed and written: removed, then appended.
        if !actions.iter().any(|(k, _)| k == key) {
            actions.push((key, Action::Write(n)));
        }
    }
    if actions.is_empty() {
        return Ok(batch.clone());
    }
    let map = Map::of(batch, set)?;
    let name = map.name;
    let DataType::Map(entries_field, sorted) = map.map.data_type() else {
        return Err(ColumnError::TypeMismatch(format!(
            "column `{name}` is not an attribute map"
        )));
    };
    let DataType::Struct(fields) = entries_field.data_type() else {
        return Err(ColumnError::TypeMismatch(format!(
            "column `{name}` has unexpected entries"
        )));
    };
    let old_keys = map.map.keys();
    let old_values = map.map.values();
    let key_text = map.keys()?;
    let key_text = key_text.as_string::<i32>();
    let types_name = format!("{name}_types");
    let types_index = batch.schema_ref().index_of(&types_name).ok();
    let types_text = types_index
        .map(|i| text(batch.column(i), &types_name))
        .transpose()?;
    let types = types_text.as_ref().map(|t| t.as_string::<i32>());

    let too_many =
        || ColumnError::InvalidArgument("the attributes would exceed 4 G entries".to_string());
    let old_len = u32::try_from(old_keys.len()).map_err(|_| too_many())?;
    // Where each write's values start after the old entries' values.
    let mut first_value = Vec::with_capacity(writes.len());
    let mut added_values: u64 = 0;
    for (_, column) in &writes {
        first_value.push(u32::try_from(u64::from(old_len) + added_values).map_err(|_| too_many())?);
        added_values += column.values.len() as u64;
    }
    u32::try_from(u64::from(old_len) + added_values).map_err(|_| too_many())?;

    let offsets = map.map.value_offsets();
    let rows = map.map.len();
    let mut take_keys: Vec<u32> = Vec::with_capacity(old_keys.len() + rows);
    let mut take_values: Vec<u32> = Vec::with_capacity(old_keys.len() + rows);
    let mut new_offsets: Vec<i32> = Vec::with_capacity(rows + 1);
    new_offsets.push(0);
    let mut new_types = StringBuilder::new();
    let mut row_types_out = String::new();
    let mut valid: Vec<bool> = Vec::with_capacity(rows);
    let mut placed = vec![false; writes.len()];
    for row in 0..rows {
        let value_of = |n: usize| match writes[n].1.rows[row] {
            0 => None,
            i => Some(first_value[n] + i - 1),
        };
        let row_types = types.and_then(|t| t.is_valid(row).then(|| t.value(row)));
        let mut tokens = TypeTokens::new(row_types.unwrap_or(""));
        row_types_out.clear();
        placed.fill(false);
        let row_valid = map.map.is_valid(row);
        if row_valid {
            for j in offsets[row] as usize..offsets[row + 1] as usize {
                let token = tokens.next();
                let action = match key_text.is_valid(j) {
                    true => {
                        let k = key_text.value(j);
                        actions.iter().find(|(a, _)| *a == k).map(|(_, a)| *a)
                    }
                    false => None,
                };
                match action {
                    Some(Action::Remove) => continue,
                    Some(Action::Write(n)) => {
                        if let Some(v) = value_of(n) {
                            if !placed[n] {
                                placed[n] = true;
                                take_keys.push(old_len + n as u32);
                                take_values.push(v);
                                if token.is_some() {
                                    row_types_out.push('s');
                                }
                            }
                            continue;
                        }
                    }
                    None => {}
                }
                take_keys.push(j as u32);
                take_values.push(j as u32);
                if let Some(t) = token {
                    row_types_out.push_str(t);
                }
            }
        }
        let mut appended = false;
        for (n, &done) in placed.iter().enumerate() {
            if let (Some(v), false) = (value_of(n), done) {
                take_keys.push(old_len + n as u32);
                take_values.push(v);
                appended = true;
            }
        }
        let now_valid = row_valid || appended;
        valid.push(now_valid);
        if now_valid && (row_types.is_some() || !row_valid) {
            new_types.append_value(&row_types_out);
        } else {
            new_types.append_null();
        }
        new_offsets.push(i32::try_from(take_keys.len()).map_err(|_| {
            ColumnError::InvalidArgument("the attributes would exceed 2 GiB".to_string())
        })?);
    }

    let entry = |old: &ArrayRef, added: ArrayRef, to: &DataType, take: Vec<u32>| {
        let added = cast_into(&added, name, to)?;
        let all = arrow::compute::concat(&[old.as_ref(), added.as_ref()])
            .map_err(|e| ColumnError::InvalidArgument(format!("column `{name}`: {e}")))?;
        arrow::compute::take(&all, &UInt32Array::from(take), None)
            .map_err(|e| ColumnError::InvalidArgument(format!("column `{name}`: {e}")))
    };
    let keys_array = entry(
        old_keys,
        Arc::new(StringArray::from_iter_values(writes.iter().map(|(k, _)| k))),
        fields[0].data_type(),
        take_keys,
    )?;
    let values_array = entry(
        old_values,
        Arc::new(
            writes
                .iter()
                .flat_map(|(_, c)| c.values.iter().map(Some))
                .collect::<StringArray>(),
        ),
        fields[1].data_type(),
        take_values,
    )?;
    let entries = StructArray::try_new(fields.clone(), vec![keys_array, values_array], None)
        .map_err(|e| ColumnError::InvalidArgument(format!("column `{name}`: {e}")))?;
    let nulls = match valid.iter().all(|v| *v) {
        true => None,
        false => Some(NullBuffer::from(valid)),
    };
    let new_map = MapArray::try_new(
        entries_field.clone(),
        OffsetBuffer::new(new_offsets.into()),
        entries,
        nulls,
        *sorted,
    )
    .map_err(|e| ColumnError::InvalidArgument(format!("column `{name}`: {e}")))?;
    let mut out = replace_column(batch, map.index, Arc::new(new_map))?;
    if let Some(types_index) = types_index {
        let types_array: ArrayRef = Arc::new(new_types.finish());
        let to = batch.schema_ref().field(types_index).data_type().clone();
        let types_array = cast_into(&types_array, &types_name, &to)?;
        out = replace_column(&out, types_index, types_array)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::columns::read_attribute;
    use weir_core::convert::{batch_to_logs, json, logs_to_batch};

    fn logs() -> RecordBatch {
        let req = json::decode_logs(
            br#"{"resourceLogs":[
              {"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"cart"}}]},
               "scopeLogs":[{"logRecords":[
                {"timeUnixNano":"1000","body":{"stringValue":"a"},
                 "attributes":[{"key":"n","value":{"intValue":"7"}},{"key":"k","value":{"stringValue":"a"}}]},
                {"timeUnixNano":"2000","body":{"stringValue":"b"}}]}]},
              {"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"shop"}},
                                         {"key":"port","value":{"intValue":"80"}}]},
               "scopeLogs":[{"logRecords":[
                {"timeUnixNano":"3000","body":{"stringValue":"c"},
                 "attributes":[{"key":"k","value":{"stringValue":"a"}},{"key":"d","value":{"doubleValue":1.5}}]}]}]}]}"#,
        )
        .expect("valid OTLP/JSON");
        logs_to_batch(&req).expect("converts").batch
    }

    fn column(values: &[&str], rows: &[u32]) -> AttributeColumn {
        AttributeColumn {
            values: values.iter().map(|v| v.to_string()).collect(),
            rows: rows.to_vec(),
        }
    }

    fn otlp_json(batch: &RecordBatch) -> String {
        let back = batch_to_logs(batch).expect("converts back");
        String::from_utf8(json::encode_logs(&back).expect("encodes")).expect("utf8")
    }

    /// Guarantees: a read gives each distinct value once and every row its
    /// index (0 where the row lacks the key), from dictionary values
    /// (resource) and plain ones (record) alike, also for a slice.
    #[test]
    fn reads_each_distinct_value_once() {
        let b = logs();
        assert_eq!(
            read_attribute_column(&b, AttributeSet::Resource, "service.name").expect("read"),
            column(&["cart", "shop"], &[1, 1, 2])
        );
        assert_eq!(
            read_attribute_column(&b, AttributeSet::Record, "k").expect("read"),
            column(&["a"], &[1, 0, 1])
        );
        assert_eq!(
            read_attribute_column(&b, AttributeSet::Resource, "port").expect("typed"),
            column(&["80"], &[0, 0, 1])
        );
        assert_eq!(
            read_attribute_column(&b.slice(1, 2), AttributeSet::Record, "k").expect("slice"),
            column(&["a"], &[0, 1])
        );
        assert_eq!(
            read_attribute_column(&b, AttributeSet::Scope, "k").expect("none"),
            column(&[], &[0, 0, 0])
        );
    }

    /// Guarantees: one call removes keys and writes several keys, written
    /// values replace the key in place and keep the neighbours' OTLP types,
    /// rows given 0 keep what they had, and a key both removed and written
    /// is moved to its new values.
    #[test]
    fn one_call_writes_and_removes_several_keys() {
        let b = logs();
        let b = write_attributes(
            &b,
            AttributeSet::Record,
            &["n".to_string(), "d".to_string()],
            vec![
                ("k".to_string(), column(&["x", "y"], &[1, 0, 2])),
                ("team".to_string(), column(&["pay"], &[1, 1, 0])),
                ("d".to_string(), column(&["again"], &[0, 0, 1])),
            ],
        )
        .expect("write");
        let read = |key| read_attribute(&b, AttributeSet::Record, key).expect("read");
        assert_eq!(read("n"), [None, None, None]);
        assert_eq!(read("k"), [Some("x".into()), None, Some("y".into())]);
        assert_eq!(read("team"), [Some("pay".into()), Some("pay".into()), None]);
        assert_eq!(read("d"), [None, None, Some("again".into())]);
        let text = otlp_json(&b);
        assert!(
            text.contains(r#""attributes":[{"key":"k","value":{"stringValue":"x"}},{"key":"team","value":{"stringValue":"pay"}}]"#),
            "{text}"
        );
        assert!(
            text.contains(r#""attributes":[{"key":"k","value":{"stringValue":"y"}},{"key":"d","value":{"stringValue":"again"}}]"#),
            "{text}"
        );

        let b = write_attributes(
            &b,
            AttributeSet::Resource,
            &[],
            vec![("service.name".to_string(), column(&["web"], &[0, 0, 1]))],
        )
        .expect("resource");
        let text = otlp_json(&b);
        assert!(
            text.contains(r#"[{"key":"service.name","value":{"stringValue":"web"}},{"key":"port","value":{"intValue":"80"}}]"#),
            "{text}"
        );
        assert!(text.contains(r#""stringValue":"cart""#), "{text}");
    }

    /// Guarantees: what a plugin gives is checked, never trusted: an index
    /// past the values, a column of the wrong length, an empty key and a
    /// key written twice are refused with what to do.
    #[test]
    fn bad_writes_are_refused() {
        let b = logs();
        let refused = |writes: Vec<(String, AttributeColumn)>| match write_attributes(
            &b,
            AttributeSet::Record,
            &[],
            writes,
        ) {
            Err(ColumnError::InvalidArgument(m)) => m,
            other => panic!("expected a refusal, got {other:?}"),
        };
        assert!(
            refused(vec![("k".into(), column(&["x"], &[2, 0, 0]))]).contains("past the 1 values")
        );
        assert!(refused(vec![("k".into(), column(&["x"], &[1]))]).contains("exactly one per row"));
        assert!(refused(vec![(String::new(), column(&[], &[0, 0, 0]))]).contains("empty"));
        assert!(
            refused(vec![
                ("k".into(), column(&[], &[0, 0, 0])),
                ("k".into(), column(&[], &[0, 0, 0]))
            ])
            .contains("twice")
        );
    }

    /// Guarantees: the types tokenizer splits each entry's type, with the
    /// digits that follow a `#`.
    #[test]
    fn type_tokens_split_entries() {
        assert_eq!(
            TypeTokens::new("s#3ia#-2d").collect::<Vec<_>>(),
            ["s#3", "i", "a#-2", "d"]
        );
    }
}
