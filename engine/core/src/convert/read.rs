//! The readers of the Arrow -> OTLP direction: a batch's columns looked up
//! by name with their types checked, typed views of string, id, map and
//! list columns, the runs of rows that share a container, and the resource
//! and scope read back.

use std::ops::Range;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, FixedSizeBinaryArray, Int32Array, ListArray, MapArray,
    PrimitiveArray, StringArray,
};
use arrow::buffer::{NullBuffer, OffsetBuffer};
use arrow::datatypes::{
    ArrowPrimitiveType, DataType, Fields, Int32Type, TimeUnit, TimestampNanosecondType,
};
use arrow::record_batch::RecordBatch;
use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;

use super::value_text::{TypeLetters, value_from_text};
use super::{ConvertError, json};
use crate::schema::col;

/// Timestamp column value -> OTLP time.
pub(crate) fn unix_nanos(t: Option<i64>) -> u64 {
    t.and_then(|t| u64::try_from(t).ok()).unwrap_or(0)
}

/// The columns of a batch (or of the structs of a list column), looked up
/// by name with their types checked.
pub(crate) struct Columns {
    fields: Fields,
    arrays: Vec<ArrayRef>,
    /// The table, for error messages.
    pub table: &'static str,
    /// The list column these are the struct fields of (`events.`), or "".
    prefix: String,
}

impl Columns {
    pub fn of_batch(batch: &RecordBatch, table: &'static str) -> Self {
        Columns {
            fields: batch.schema().fields().clone(),
            arrays: batch.columns().to_vec(),
            table,
            prefix: String::new(),
        }
    }

    pub fn error(&self, message: String) -> ConvertError {
        ConvertError::InvalidBatch {
            table: self.table,
            message,
        }
    }

    pub fn get(&self, name: &str) -> Result<&ArrayRef, ConvertError> {
        self.fields
            .find(name)
            .and_then(|(i, _)| self.arrays.get(i))
            .ok_or_else(|| {
                self.error(format!(
                    "column `{}{name}` is missing; batches must keep every column of the \
                     `{}` schema (see docs/schema.md)",
                    self.prefix, self.table
                ))
            })
    }

    fn wrong_type(&self, name: &str, expected: &str, found: &DataType) -> ConvertError {
        self.error(format!(
            "column `{}{name}` has type {found}, expected {expected}",
            self.prefix
        ))
    }

    pub fn primitive<T: ArrowPrimitiveType>(
        &self,
        name: &str,
    ) -> Result<PrimitiveArray<T>, ConvertError> {
        let array = self.get(name)?;
        array
            .as_primitive_opt::<T>()
            .cloned()
            .ok_or_else(|| self.wrong_type(name, &T::DATA_TYPE.to_string(), array.data_type()))
    }

    pub fn timestamp(
        &self,
        name: &str,
    ) -> Result<PrimitiveArray<TimestampNanosecondType>, ConvertError> {
        let array = self.get(name)?;
        match array.data_type() {
            DataType::Timestamp(TimeUnit::Nanosecond, _) => {
                Ok(array.as_primitive::<TimestampNanosecondType>().clone())
            }
            other => Err(self.wrong_type(name, "Timestamp(Nanosecond)", other)),
        }
    }

    pub fn boolean(&self, name: &str) -> Result<BooleanArray, ConvertError> {
        let array = self.get(name)?;
        array
            .as_boolean_opt()
            .cloned()
            .ok_or_else(|| self.wrong_type(name, "Boolean", array.data_type()))
    }

    pub fn id(&self, name: &str, width: i32) -> Result<IdCol, ConvertError> {
        IdCol::new(self.get(name)?, width)
            .map_err(|found| self.wrong_type(name, &format!("FixedSizeBinary({width})"), &found))
    }

    pub fn string(&self, name: &str) -> Result<StrCol, ConvertError> {
        StrCol::new(self.get(name)?)
            .map_err(|e| self.error(format!("column `{}{name}`: {e}", self.prefix)))
    }

    pub fn map(&self, name: &str) -> Result<MapCol, ConvertError> {
        MapCol::new(self.get(name)?)
            .map_err(|e| self.error(format!("column `{}{name}`: {e}", self.prefix)))
    }

    /// A list column of primitives.
    pub fn primitive_list<T: ArrowPrimitiveType>(
        &self,
        name: &str,
    ) -> Result<PrimitiveList<T>, ConvertError> {
        let array = self.get(name)?;
        let list = array
            .as_list_opt::<i32>()
            .ok_or_else(|| self.wrong_type(name, "List", array.data_type()))?;
        let values = list
            .values()
            .as_primitive_opt::<T>()
            .cloned()
            .ok_or_else(|| {
                self.wrong_type(name, &format!("List<{}>", T::DATA_TYPE), array.data_type())
            })?;
        Ok(PrimitiveList {
            list: list.clone(),
            values,
        })
    }

    /// A list column of structs: the list, and the columns of its structs.
    pub fn struct_list(&self, name: &str) -> Result<(ListArray, Columns), ConvertError> {
        let array = self.get(name)?;
        let list = array
            .as_list_opt::<i32>()
            .ok_or_else(|| self.wrong_type(name, "List<Struct>", array.data_type()))?;
        let items = list
            .values()
            .as_struct_opt()
            .ok_or_else(|| self.wrong_type(name, "List<Struct>", array.data_type()))?;
        Ok((
            list.clone(),
            Columns {
                fields: items.fields().clone(),
                arrays: items.columns().to_vec(),
                table: self.table,
                prefix: format!("{}{name}.", self.prefix),
            },
        ))
    }
}

/// The range of list items of row `i` (`None` when the list is null).
pub(crate) fn list_range(list: &ListArray, i: usize) -> Option<Range<usize>> {
    if list.is_null(i) {
        return None;
    }
    let offsets = list.value_offsets();
    let start = usize::try_from(offsets[i]).ok()?;
    let end = usize::try_from(offsets[i + 1]).ok()?;
    Some(start..end)
}

/// A list column of primitive values.
pub(crate) struct PrimitiveList<T: ArrowPrimitiveType> {
    list: ListArray,
    values: PrimitiveArray<T>,
}

impl<T: ArrowPrimitiveType> PrimitiveList<T> {
    /// The values of row `i` (`None` when the list is null; a null item
    /// reads as the type's default).
    pub fn get(&self, i: usize) -> Option<Vec<T::Native>> {
        let range = list_range(&self.list, i)?;
        Some(
            range
                .map(|j| opt(&self.values, j).unwrap_or_default())
                .collect(),
        )
    }
}

/// A string column: `Utf8`, or `Dictionary<Int32, Utf8>`; other string
/// types are cast to `Utf8` first.
pub(crate) struct StrCol {
    keys: Option<Int32Array>,
    values: StringArray,
}

impl StrCol {
    pub fn new(array: &ArrayRef) -> Result<Self, String> {
        match array.data_type() {
            DataType::Utf8 => Ok(StrCol {
                keys: None,
                values: array.as_string::<i32>().clone(),
            }),
            DataType::Dictionary(k, v) if **k == DataType::Int32 && **v == DataType::Utf8 => {
                let dict = array.as_dictionary::<Int32Type>();
                Ok(StrCol {
                    keys: Some(dict.keys().clone()),
                    values: dict.values().as_string::<i32>().clone(),
                })
            }
            other => {
                let cast = arrow::compute::cast(array, &DataType::Utf8)
                    .map_err(|_| format!("has type {other}, expected a string type"))?;
                Ok(StrCol {
                    keys: None,
                    values: cast.as_string::<i32>().clone(),
                })
            }
        }
    }

    pub fn get(&self, i: usize) -> Option<&str> {
        let i = match &self.keys {
            None => i,
            Some(keys) => {
                if keys.is_null(i) {
                    return None;
                }
                usize::try_from(keys.value(i)).ok()?
            }
        };
        if i >= self.values.len() || self.values.is_null(i) {
            return None;
        }
        Some(self.values.value(i))
    }

    /// The value, `""` when null.
    pub fn text(&self, i: usize) -> String {
        self.get(i).unwrap_or_default().to_string()
    }
}

/// A `FixedSizeBinary` id column.
pub(crate) struct IdCol {
    array: FixedSizeBinaryArray,
}

impl IdCol {
    fn new(array: &ArrayRef, width: i32) -> Result<Self, DataType> {
        match array.as_fixed_size_binary_opt() {
            Some(a) if a.value_length() == width => Ok(IdCol { array: a.clone() }),
            _ => Err(array.data_type().clone()),
        }
    }

    /// The id, empty when null.
    pub fn get(&self, i: usize) -> Vec<u8> {
        if self.array.is_null(i) {
            Vec::new()
        } else {
            self.array.value(i).to_vec()
        }
    }
}

/// An attribute map column (`Map<string, string>`).
pub(crate) struct MapCol {
    offsets: OffsetBuffer<i32>,
    nulls: Option<NullBuffer>,
    keys: StrCol,
    values: StrCol,
}

impl MapCol {
    pub fn new(array: &ArrayRef) -> Result<Self, String> {
        let map = array
            .as_map_opt()
            .ok_or_else(|| format!("has type {}, expected a Map", array.data_type()))?;
        Self::from_map(map)
    }

    pub fn from_map(map: &MapArray) -> Result<Self, String> {
        Ok(MapCol {
            offsets: map.offsets().clone(),
            nulls: map.nulls().cloned(),
            keys: StrCol::new(map.keys()).map_err(|e| format!("map keys {e}"))?,
            values: StrCol::new(map.values()).map_err(|e| format!("map values {e}"))?,
        })
    }

    /// The entries of row `i`; `None` when the map is null.
    pub fn entries(&self, i: usize) -> Option<Range<usize>> {
        if self.nulls.as_ref().is_some_and(|n| n.is_null(i)) {
            return None;
        }
        let start = usize::try_from(self.offsets[i]).ok()?;
        let end = usize::try_from(self.offsets[i + 1]).ok()?;
        Some(start..end)
    }

    /// Whether rows `a` and `b` hold the same entries.
    pub fn same(&self, a: usize, b: usize) -> bool {
        match (self.entries(a), self.entries(b)) {
            (None, None) => true,
            (Some(ra), Some(rb)) => {
                ra.len() == rb.len()
                    && ra.zip(rb).all(|(x, y)| {
                        self.keys.get(x) == self.keys.get(y)
                            && self.values.get(x) == self.values.get(y)
                    })
            }
            _ => false,
        }
    }

    /// The attributes of row `i`, typed by `types`; `None` when null.
    pub fn attributes(&self, i: usize, types: Option<&str>) -> Option<Vec<KeyValue>> {
        let entries = self.entries(i)?;
        let mut letters = TypeLetters::new(types);
        Some(
            entries
                .map(|e| {
                    let (type_letter, key_strindex) = letters.next_entry();
                    KeyValue {
                        key: self.keys.text(e),
                        value: value_from_text(type_letter, self.values.get(e)),
                        key_strindex,
                    }
                })
                .collect(),
        )
    }
}

/// The runs of consecutive indexes of `range` for which `same(previous,
/// next)` holds.
pub(crate) fn runs(
    range: Range<usize>,
    same: impl Fn(usize, usize) -> bool,
) -> impl Iterator<Item = Range<usize>> {
    let end = range.end;
    let mut start = range.start;
    std::iter::from_fn(move || {
        if start >= end {
            return None;
        }
        let mut stop = start + 1;
        while stop < end && same(stop - 1, stop) {
            stop += 1;
        }
        let run = start..stop;
        start = stop;
        Some(run)
    })
}

/// Reads the resource and scope columns back.
pub(crate) struct CommonReader {
    table: &'static str,
    resource_attributes: MapCol,
    resource_types: StrCol,
    resource_dropped: arrow::array::UInt32Array,
    entity_refs: StrCol,
    resource_schema_url: StrCol,
    scope_name: StrCol,
    scope_version: StrCol,
    scope_attributes: MapCol,
    scope_types: StrCol,
    scope_dropped: arrow::array::UInt32Array,
    scope_schema_url: StrCol,
}

impl CommonReader {
    pub fn new(cols: &Columns) -> Result<Self, ConvertError> {
        use arrow::datatypes::UInt32Type;
        Ok(CommonReader {
            table: cols.table,
            resource_attributes: cols.map(col::RESOURCE_ATTRIBUTES)?,
            resource_types: cols.string(col::RESOURCE_ATTRIBUTES_TYPES)?,
            resource_dropped: cols
                .primitive::<UInt32Type>(col::RESOURCE_DROPPED_ATTRIBUTES_COUNT)?,
            entity_refs: cols.string(col::RESOURCE_ENTITY_REFS)?,
            resource_schema_url: cols.string(col::RESOURCE_SCHEMA_URL)?,
            scope_name: cols.string(col::SCOPE_NAME)?,
            scope_version: cols.string(col::SCOPE_VERSION)?,
            scope_attributes: cols.map(col::SCOPE_ATTRIBUTES)?,
            scope_types: cols.string(col::SCOPE_ATTRIBUTES_TYPES)?,
            scope_dropped: cols.primitive::<UInt32Type>(col::SCOPE_DROPPED_ATTRIBUTES_COUNT)?,
            scope_schema_url: cols.string(col::SCOPE_SCHEMA_URL)?,
        })
    }

    /// Whether rows `a` and `b` have the same resource (and resource schema
    /// url).
    pub fn same_resource(&self, a: usize, b: usize) -> bool {
        self.resource_attributes.same(a, b)
            && self.resource_types.get(a) == self.resource_types.get(b)
            && self.resource_dropped.value(a) == self.resource_dropped.value(b)
            && self.entity_refs.get(a) == self.entity_refs.get(b)
            && self.resource_schema_url.get(a) == self.resource_schema_url.get(b)
    }

    /// Whether rows `a` and `b` have the same scope (and scope schema url).
    pub fn same_scope(&self, a: usize, b: usize) -> bool {
        self.scope_attributes.same(a, b)
            && self.scope_types.get(a) == self.scope_types.get(b)
            && self.scope_dropped.value(a) == self.scope_dropped.value(b)
            && self.scope_name.get(a) == self.scope_name.get(b)
            && self.scope_version.get(a) == self.scope_version.get(b)
            && self.scope_schema_url.get(a) == self.scope_schema_url.get(b)
    }

    /// The resource of row `i` (`None` when its attributes are null).
    pub fn resource(&self, i: usize) -> Result<Option<Resource>, ConvertError> {
        let Some(attributes) = self
            .resource_attributes
            .attributes(i, self.resource_types.get(i))
        else {
            return Ok(None);
        };
        let entity_refs = match self.entity_refs.get(i) {
            None => Vec::new(),
            Some(text) => {
                json::parse_entity_refs(text).map_err(|e| ConvertError::InvalidBatch {
                    table: self.table,
                    message: format!("row {i}: column `{}`: {e}", col::RESOURCE_ENTITY_REFS),
                })?
            }
        };
        Ok(Some(Resource {
            attributes,
            dropped_attributes_count: self.resource_dropped.value(i),
            entity_refs,
        }))
    }

    pub fn resource_schema_url(&self, i: usize) -> String {
        self.resource_schema_url.text(i)
    }

    /// The scope of row `i` (`None` when its attributes are null).
    pub fn scope(&self, i: usize) -> Option<InstrumentationScope> {
        let attributes = self
            .scope_attributes
            .attributes(i, self.scope_types.get(i))?;
        Some(InstrumentationScope {
            name: self.scope_name.text(i),
            version: self.scope_version.text(i),
            attributes,
            dropped_attributes_count: self.scope_dropped.value(i),
        })
    }

    pub fn scope_schema_url(&self, i: usize) -> String {
        self.scope_schema_url.text(i)
    }
}

/// Option of a nullable primitive value.
pub(crate) fn opt<T: ArrowPrimitiveType>(array: &PrimitiveArray<T>, i: usize) -> Option<T::Native> {
    if array.is_null(i) {
        None
    } else {
        Some(array.value(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::build::AttrColumns;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value};

    fn kv(key: &str, value: Option<any_value::Value>, key_strindex: i32) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: value.map(|v| AnyValue { value: Some(v) }),
            key_strindex,
        }
    }

    /// Guarantees: every kind of attribute value survives the trip through
    /// its string form and type letters, including key string indexes.
    #[test]
    fn attribute_text_round_trip() {
        use any_value::Value as V;
        let attrs = vec![
            kv("s", Some(V::StringValue("x".into())), 0),
            kv("b", Some(V::BoolValue(false)), 0),
            kv("i", Some(V::IntValue(i64::MIN)), 7),
            kv("d", Some(V::DoubleValue(1e300)), 0),
            kv("d2", Some(V::DoubleValue(-0.0)), 0),
            kv("y", Some(V::BytesValue(vec![0, 255, 3])), -3),
            kv(
                "a",
                Some(V::ArrayValue(
                    opentelemetry_proto::tonic::common::v1::ArrayValue {
                        values: vec![AnyValue {
                            value: Some(V::DoubleValue(f64::INFINITY)),
                        }],
                    },
                )),
                0,
            ),
            kv("x", Some(V::StringValueStrindex(12)), 0),
            kv("n", None, 0),
            KeyValue {
                key: "e".into(),
                value: Some(AnyValue { value: None }),
                key_strindex: 0,
            },
        ];
        let mut b = AttrColumns::with_capacity(1);
        let mut scratch = String::new();
        b.append(&attrs, &mut scratch);
        let [map, types] = b.finish().expect("builds");
        let map = MapCol::new(&map).expect("a map");
        let types = StrCol::new(&types).expect("strings");
        assert_eq!(types.get(0), Some("sbi#7ddy#-3axne"));
        let back = map.attributes(0, types.get(0)).expect("not null");
        assert_eq!(back.len(), attrs.len());
        for (a, b) in attrs.iter().zip(&back) {
            assert_eq!(a.key, b.key);
            assert_eq!(a.key_strindex, b.key_strindex);
            match (&a.value, &b.value) {
                (
                    Some(AnyValue {
                        value: Some(V::DoubleValue(x)),
                    }),
                    Some(AnyValue {
                        value: Some(V::DoubleValue(y)),
                    }),
                ) => {
                    assert_eq!(x.to_bits(), y.to_bits());
                }
                _ => assert_eq!(a.value, b.value),
            }
        }
    }

    /// Guarantees: `runs` splits a range where consecutive items differ.
    #[test]
    fn runs_split_on_change() {
        let v = [1, 1, 2, 2, 2, 1];
        let got: Vec<_> = runs(0..v.len(), |a, b| v[a] == v[b]).collect();
        assert_eq!(got, vec![0..2, 2..5, 5..6]);
        assert_eq!(runs(3..3, |_, _| true).count(), 0);
    }
}
