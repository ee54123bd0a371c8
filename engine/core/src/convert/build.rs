//! The builders of the OTLP -> Arrow direction: attribute maps, dictionary
//! columns whose value repeats over many rows, id, time and list columns,
//! and the resource and scope columns every table ends with.

use std::sync::Arc;

use arrow::array::{
    ArrayBuilder, ArrayRef, DictionaryArray, FixedSizeBinaryArray, Int32Builder, ListArray,
    MapArray, NullBufferBuilder, PrimitiveBuilder, StringBuilder, StringDictionaryBuilder,
    StructArray, UInt32Builder,
};
use arrow::buffer::{Buffer, NullBuffer, OffsetBuffer};
use arrow::datatypes::{DataType, Field, Fields, Int32Type, TimestampNanosecondType};
use arrow::record_batch::RecordBatch;
use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;

use super::value_text::{KvRef, append_text, append_value_text, push_type, push_type_of};
use super::{ConvertError, json};
use crate::schema::{self, col};

/// OTLP time (0 = unknown) -> timestamp column value (null = unknown).
pub(crate) fn nanos(t: u64) -> Option<i64> {
    if t == 0 { None } else { i64::try_from(t).ok() }
}

/// An empty string is null.
pub(crate) fn non_empty(s: &str) -> Option<&str> {
    if s.is_empty() { None } else { Some(s) }
}

/// A builder of a `Timestamp(Nanosecond, "+00:00")` column.
pub(crate) fn timestamp_builder(capacity: usize) -> PrimitiveBuilder<TimestampNanosecondType> {
    PrimitiveBuilder::with_capacity(capacity).with_timezone(schema::TIME_ZONE)
}

/// A bug in the converter: an array did not fit its own schema.
pub(crate) fn internal(e: impl std::fmt::Display) -> ConvertError {
    ConvertError::Internal(e.to_string())
}

fn offset(len: usize) -> i32 {
    // Bounded by `check_size`; an overflow would be caught by the array's
    // validation, never turned into a wrong offset.
    i32::try_from(len).unwrap_or(i32::MAX)
}

fn map_array(
    value_type: DataType,
    keys: ArrayRef,
    values: ArrayRef,
    offsets: Vec<i32>,
    nulls: Option<NullBuffer>,
) -> Result<MapArray, ConvertError> {
    let entries_field = schema::map_entries(value_type);
    let DataType::Struct(fields) = entries_field.data_type() else {
        return Err(internal("map entries are not a struct"));
    };
    let entries =
        StructArray::try_new(fields.clone(), vec![keys, values], None).map_err(internal)?;
    MapArray::try_new(
        entries_field,
        OffsetBuffer::new(offsets.into()),
        entries,
        nulls,
        false,
    )
    .map_err(internal)
}

/// Builds `Map<Utf8, Utf8>` attribute columns, one map per call of
/// [`AttrsBuilder::append`].
pub(crate) struct AttrsBuilder {
    keys: StringBuilder,
    values: StringBuilder,
    offsets: Vec<i32>,
}

impl AttrsBuilder {
    pub fn with_capacity(rows: usize) -> Self {
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0);
        AttrsBuilder {
            keys: StringBuilder::with_capacity(rows * 4, rows * 64),
            values: StringBuilder::with_capacity(rows * 4, rows * 64),
            offsets,
        }
    }

    /// Appends one map holding `attrs`; appends their types to `types`.
    pub fn append<'k>(
        &mut self,
        attrs: impl IntoIterator<Item = KvRef<'k>>,
        types: &mut String,
        scratch: &mut String,
    ) {
        for kv in attrs {
            self.keys.append_value(kv.key);
            append_value_text(&mut self.values, kv.value, scratch);
            push_type_of(types, kv.value, kv.key_strindex);
        }
        self.offsets.push(offset(self.keys.len()));
    }

    pub fn finish(mut self) -> Result<MapArray, ConvertError> {
        map_array(
            DataType::Utf8,
            Arc::new(self.keys.finish()),
            Arc::new(self.values.finish()),
            self.offsets,
            None,
        )
    }
}

/// Builds a record's `attributes` and `attributes_types` columns.
pub(crate) struct AttrColumns {
    map: AttrsBuilder,
    types: StringDictionaryBuilder<Int32Type>,
    types_text: String,
}

impl AttrColumns {
    pub fn with_capacity(rows: usize) -> Self {
        AttrColumns {
            map: AttrsBuilder::with_capacity(rows),
            types: StringDictionaryBuilder::with_capacity(rows, 64, 1024),
            types_text: String::new(),
        }
    }

    pub fn append(&mut self, attrs: &[KeyValue], scratch: &mut String) {
        self.append_refs(attrs.iter().map(KvRef::from), scratch);
    }

    /// Appends one row's attributes given as [`KvRef`]s.
    pub fn append_refs<'k>(
        &mut self,
        attrs: impl IntoIterator<Item = KvRef<'k>>,
        scratch: &mut String,
    ) {
        self.types_text.clear();
        self.map.append(attrs, &mut self.types_text, scratch);
        self.types.append_value(&self.types_text);
    }

    /// The map column and the types column.
    pub fn finish(mut self) -> Result<[ArrayRef; 2], ConvertError> {
        let types = self.types.finish();
        Ok([Arc::new(self.map.finish()?), Arc::new(types)])
    }
}

/// Builds a `Utf8` column of `*_types` strings inside nested structs.
pub(crate) struct NestedAttrColumns {
    map: AttrsBuilder,
    types: StringBuilder,
    types_text: String,
}

impl NestedAttrColumns {
    pub fn with_capacity(rows: usize) -> Self {
        NestedAttrColumns {
            map: AttrsBuilder::with_capacity(rows),
            types: StringBuilder::with_capacity(rows, rows * 4),
            types_text: String::new(),
        }
    }

    pub fn append(&mut self, attrs: &[KeyValue], scratch: &mut String) {
        self.append_refs(attrs.iter().map(KvRef::from), scratch);
    }

    /// Appends one row's attributes given as [`KvRef`]s.
    pub fn append_refs<'k>(
        &mut self,
        attrs: impl IntoIterator<Item = KvRef<'k>>,
        scratch: &mut String,
    ) {
        self.types_text.clear();
        self.map.append(attrs, &mut self.types_text, scratch);
        self.types.append_value(&self.types_text);
    }

    pub fn finish(mut self) -> Result<[ArrayRef; 2], ConvertError> {
        let types = self.types.finish();
        Ok([Arc::new(self.map.finish()?), Arc::new(types)])
    }
}

/// A `Dictionary<Int32, Utf8>` column whose value is set now and then (per
/// resource, scope or metric) and repeated on every row until the next
/// change: each value enters the dictionary once, a row costs one index.
pub(crate) struct RepeatDict {
    values: StringBuilder,
    keys: Int32Builder,
    current: Option<i32>,
}

impl RepeatDict {
    pub fn with_capacity(rows: usize) -> Self {
        RepeatDict {
            values: StringBuilder::new(),
            keys: Int32Builder::with_capacity(rows),
            current: None,
        }
    }

    /// The value of the next rows (null when `None`).
    pub fn set(&mut self, value: Option<&str>) {
        self.current = value.map(|v| {
            self.values.append_value(v);
            offset(self.values.len() - 1)
        });
    }

    /// One more row with the current value.
    pub fn push(&mut self) {
        self.keys.append_option(self.current);
    }

    pub fn finish(mut self) -> Result<DictionaryArray<Int32Type>, ConvertError> {
        DictionaryArray::try_new(self.keys.finish(), Arc::new(self.values.finish()))
            .map_err(internal)
    }
}

/// Builds `Map<Utf8, Dictionary<Int32, Utf8>>` attribute columns whose
/// value repeats on many rows (resource, scope, metric metadata), with their
/// `*_types` column.
pub(crate) struct RepeatedAttrs<'a> {
    current: Option<&'a [KeyValue]>,
    /// The dictionary index of each current entry's value (None: null).
    current_values: Vec<Option<i32>>,
    keys: StringBuilder,
    value_keys: Int32Builder,
    dict_values: StringBuilder,
    offsets: Vec<i32>,
    nulls: NullBufferBuilder,
    types: RepeatDict,
    types_text: String,
}

impl<'a> RepeatedAttrs<'a> {
    pub fn with_capacity(rows: usize) -> Self {
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0);
        RepeatedAttrs {
            current: None,
            current_values: Vec::new(),
            keys: StringBuilder::with_capacity(rows * 4, rows * 32),
            value_keys: Int32Builder::with_capacity(rows * 4),
            dict_values: StringBuilder::new(),
            offsets,
            nulls: NullBufferBuilder::new(rows),
            types: RepeatDict::with_capacity(rows),
            types_text: String::new(),
        }
    }

    /// The attributes of the next rows (`None`: a null map).
    pub fn set(&mut self, attrs: Option<&'a [KeyValue]>, scratch: &mut String) {
        self.current = attrs;
        self.current_values.clear();
        self.types_text.clear();
        for kv in attrs.unwrap_or_default() {
            let present = append_text(&mut self.dict_values, kv.value.as_ref(), scratch);
            self.current_values
                .push(present.then(|| offset(self.dict_values.len() - 1)));
            push_type(&mut self.types_text, kv);
        }
        self.types
            .set(attrs.is_some().then_some(self.types_text.as_str()));
    }

    /// One more row with the current attributes.
    pub fn push(&mut self) {
        if let Some(attrs) = self.current {
            for (kv, value) in attrs.iter().zip(&self.current_values) {
                self.keys.append_value(&kv.key);
                self.value_keys.append_option(*value);
            }
        }
        self.offsets.push(offset(self.keys.len()));
        self.nulls.append(self.current.is_some());
        self.types.push();
    }

    /// The map column and its types column.
    pub fn finish(mut self) -> Result<[ArrayRef; 2], ConvertError> {
        let values = DictionaryArray::try_new(
            self.value_keys.finish(),
            Arc::new(self.dict_values.finish()),
        )
        .map_err(internal)?;
        let map = map_array(
            schema::dict_utf8_type(),
            Arc::new(self.keys.finish()),
            Arc::new(values),
            self.offsets,
            self.nulls.finish(),
        )?;
        Ok([Arc::new(map), Arc::new(self.types.finish()?)])
    }
}

/// Builds a `FixedSizeBinary(width)` id column; an empty id is null.
pub(crate) struct IdBuilder {
    width: usize,
    bytes: Vec<u8>,
    nulls: NullBufferBuilder,
}

impl IdBuilder {
    pub fn with_capacity(width: usize, rows: usize) -> Self {
        IdBuilder {
            width,
            bytes: Vec::with_capacity(width * rows),
            nulls: NullBufferBuilder::new(rows),
        }
    }

    /// Appends `id`: null when empty (ids were checked to be `width` bytes
    /// or empty before).
    pub fn append(&mut self, id: &[u8]) {
        if id.len() == self.width {
            self.bytes.extend_from_slice(id);
            self.nulls.append_non_null();
        } else {
            self.bytes.resize(self.bytes.len() + self.width, 0);
            self.nulls.append_null();
        }
    }

    pub fn finish(mut self) -> Result<FixedSizeBinaryArray, ConvertError> {
        let len = self.nulls.len();
        FixedSizeBinaryArray::try_new_with_len(
            offset(self.width),
            Buffer::from_vec(self.bytes),
            self.nulls.finish(),
            len,
        )
        .map_err(internal)
    }
}

/// Builds a list column of structs: the caller appends each element to the
/// struct's child builders and calls [`StructList::close_row`] per row.
pub(crate) struct StructList {
    offsets: Vec<i32>,
    nulls: NullBufferBuilder,
    len: usize,
}

impl StructList {
    pub fn with_capacity(rows: usize) -> Self {
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0);
        StructList {
            offsets,
            nulls: NullBufferBuilder::new(rows),
            len: 0,
        }
    }

    /// Ends a row holding the `n` elements appended since the last one
    /// (null when `valid` is false).
    pub fn close_row(&mut self, n: usize, valid: bool) {
        self.len += n;
        self.offsets.push(offset(self.len));
        self.nulls.append(valid);
    }

    pub fn finish(
        mut self,
        fields: Fields,
        children: Vec<ArrayRef>,
    ) -> Result<ListArray, ConvertError> {
        let item = Arc::new(Field::new(
            col::LIST_ITEM,
            DataType::Struct(fields.clone()),
            false,
        ));
        let values = StructArray::try_new(fields, children, None).map_err(internal)?;
        ListArray::try_new(
            item,
            OffsetBuffer::new(self.offsets.into()),
            Arc::new(values),
            self.nulls.finish(),
        )
        .map_err(internal)
    }
}

/// Builds the columns every table ends with (resource and scope) and
/// `service_name`. The resource and scope are set when they change; each
/// row copies the current ones. Setting is lazy, so a resource or scope that
/// ends up with no row costs nothing.
pub(crate) struct CommonBuilder<'a> {
    pending_resource: Option<(Option<&'a Resource>, &'a str)>,
    pending_scope: Option<(Option<&'a InstrumentationScope>, &'a str)>,
    service_name: RepeatDict,
    resource_attributes: RepeatedAttrs<'a>,
    resource_dropped: UInt32Builder,
    resource_dropped_now: u32,
    entity_refs: RepeatDict,
    resource_schema_url: RepeatDict,
    scope_name: RepeatDict,
    scope_version: RepeatDict,
    scope_attributes: RepeatedAttrs<'a>,
    scope_dropped: UInt32Builder,
    scope_dropped_now: u32,
    scope_schema_url: RepeatDict,
    scratch: String,
}

/// The service name a resource declares (`service.name`, when a string).
fn service_name(resource: &Resource) -> Option<&str> {
    resource
        .attributes
        .iter()
        .find(|kv| kv.key == "service.name")
        .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
            any_value::Value::StringValue(s) => Some(s.as_str()),
            _ => None,
        })
}

impl<'a> CommonBuilder<'a> {
    pub fn with_capacity(rows: usize) -> Self {
        CommonBuilder {
            pending_resource: Some((None, "")),
            pending_scope: Some((None, "")),
            service_name: RepeatDict::with_capacity(rows),
            resource_attributes: RepeatedAttrs::with_capacity(rows),
            resource_dropped: UInt32Builder::with_capacity(rows),
            resource_dropped_now: 0,
            entity_refs: RepeatDict::with_capacity(rows),
            resource_schema_url: RepeatDict::with_capacity(rows),
            scope_name: RepeatDict::with_capacity(rows),
            scope_version: RepeatDict::with_capacity(rows),
            scope_attributes: RepeatedAttrs::with_capacity(rows),
            scope_dropped: UInt32Builder::with_capacity(rows),
            scope_dropped_now: 0,
            scope_schema_url: RepeatDict::with_capacity(rows),
            scratch: String::new(),
        }
    }

    /// The resource (and its container's schema url) of the next rows.
    pub fn set_resource(&mut self, resource: Option<&'a Resource>, schema_url: &'a str) {
        self.pending_resource = Some((resource, schema_url));
    }

    /// The scope (and its container's schema url) of the next rows.
    pub fn set_scope(&mut self, scope: Option<&'a InstrumentationScope>, schema_url: &'a str) {
        self.pending_scope = Some((scope, schema_url));
    }

    fn apply_resource(&mut self, resource: Option<&'a Resource>, schema_url: &str) {
        self.service_name.set(resource.and_then(service_name));
        self.resource_attributes
            .set(resource.map(|r| r.attributes.as_slice()), &mut self.scratch);
        self.resource_dropped_now = resource.map_or(0, |r| r.dropped_attributes_count);
        let refs = resource
            .map(|r| r.entity_refs.as_slice())
            .unwrap_or_default();
        if refs.is_empty() {
            self.entity_refs.set(None);
        } else {
            self.scratch.clear();
            json::write_entity_refs_to(&mut self.scratch, refs);
            self.entity_refs.set(Some(&self.scratch));
        }
        self.resource_schema_url.set(non_empty(schema_url));
    }

    fn apply_scope(&mut self, scope: Option<&'a InstrumentationScope>, schema_url: &str) {
        self.scope_name.set(scope.and_then(|s| non_empty(&s.name)));
        self.scope_version
            .set(scope.and_then(|s| non_empty(&s.version)));
        self.scope_attributes
            .set(scope.map(|s| s.attributes.as_slice()), &mut self.scratch);
        self.scope_dropped_now = scope.map_or(0, |s| s.dropped_attributes_count);
        self.scope_schema_url.set(non_empty(schema_url));
    }

    /// One more row with the current resource and scope.
    pub fn push_row(&mut self) {
        if let Some((resource, url)) = self.pending_resource.take() {
            self.apply_resource(resource, url);
        }
        if let Some((scope, url)) = self.pending_scope.take() {
            self.apply_scope(scope, url);
        }
        self.service_name.push();
        self.resource_attributes.push();
        self.resource_dropped
            .append_value(self.resource_dropped_now);
        self.entity_refs.push();
        self.resource_schema_url.push();
        self.scope_name.push();
        self.scope_version.push();
        self.scope_attributes.push();
        self.scope_dropped.append_value(self.scope_dropped_now);
        self.scope_schema_url.push();
    }

    /// `service_name`, and the resource and scope columns in schema order.
    pub fn finish(mut self) -> Result<(ArrayRef, Vec<ArrayRef>), ConvertError> {
        let [res_attrs, res_types] = self.resource_attributes.finish()?;
        let [scope_attrs, scope_types] = self.scope_attributes.finish()?;
        let block: Vec<ArrayRef> = vec![
            res_attrs,
            res_types,
            Arc::new(self.resource_dropped.finish()),
            Arc::new(self.entity_refs.finish()?),
            Arc::new(self.resource_schema_url.finish()?),
            Arc::new(self.scope_name.finish()?),
            Arc::new(self.scope_version.finish()?),
            scope_attrs,
            scope_types,
            Arc::new(self.scope_dropped.finish()),
            Arc::new(self.scope_schema_url.finish()?),
        ];
        Ok((Arc::new(self.service_name.finish()?), block))
    }
}

/// Assembles a batch of `schema` from its columns.
pub(crate) fn make_batch(
    schema: arrow::datatypes::SchemaRef,
    columns: Vec<ArrayRef>,
) -> Result<RecordBatch, ConvertError> {
    RecordBatch::try_new(schema, columns).map_err(internal)
}
