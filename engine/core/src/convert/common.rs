//! What the three signals share: attribute maps and their type letters, the
//! resource and scope columns, id and time columns, rejections, and the
//! readers used on the way back.

use std::fmt::Write as _;
use std::ops::Range;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, DictionaryArray, FixedSizeBinaryArray, Int32Array,
    Int32Builder, ListArray, MapArray, PrimitiveArray, PrimitiveBuilder, StringArray,
    StringBuilder, StringDictionaryBuilder, StructArray, UInt32Builder,
};
use arrow::array::{ArrayBuilder, NullBufferBuilder};
use arrow::buffer::{Buffer, NullBuffer, OffsetBuffer};
use arrow::datatypes::{
    ArrowPrimitiveType, DataType, Field, Fields, Int32Type, TimeUnit, TimestampNanosecondType,
};
use arrow::record_batch::RecordBatch;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;

use super::{ConvertError, json};
use crate::schema::{self, col};

/// The letters of the `*_types` columns: one per attribute, in map order.
pub(crate) mod letter {
    /// `string_value`.
    pub const STRING: u8 = b's';
    /// `bool_value`.
    pub const BOOL: u8 = b'b';
    /// `int_value`.
    pub const INT: u8 = b'i';
    /// `double_value`.
    pub const DOUBLE: u8 = b'd';
    /// `bytes_value`.
    pub const BYTES: u8 = b'y';
    /// `array_value`.
    pub const ARRAY: u8 = b'a';
    /// `kvlist_value`.
    pub const KVLIST: u8 = b'k';
    /// An `AnyValue` with no value set.
    pub const EMPTY: u8 = b'e';
    /// A `KeyValue` without an `AnyValue` at all.
    pub const ABSENT: u8 = b'n';
    /// `string_value_strindex` (profiles' string table).
    pub const STRINDEX: u8 = b'x';
    /// Follows a letter when the entry's `key_strindex` is not 0.
    pub const KEY_STRINDEX: u8 = b'#';
}

/// The largest OTLP request (protobuf bytes) converted in one go. A string
/// column holds at most 2 GiB; the string forms of attribute values take at
/// most about ten times the bytes of their protobuf encoding.
pub const MAX_REQUEST_BYTES: usize = 128 << 20;

/// The most bytes the denormalised resource and scope attribute keys may
/// take in one batch.
const MAX_REPEATED_BYTES: usize = 1 << 30;

/// Refuses requests whose batch would overflow Arrow's 32-bit offsets.
/// `repeated` is the bytes of resource and scope attribute keys times the
/// rows they are copied to.
pub(crate) fn check_size(encoded_len: usize, repeated: usize) -> Result<(), ConvertError> {
    if encoded_len > MAX_REQUEST_BYTES {
        return Err(ConvertError::TooLarge(format!(
            "the request is {encoded_len} bytes of OTLP protobuf; at most {MAX_REQUEST_BYTES} \
             are converted at once: send smaller requests (lower the exporter's batch size)"
        )));
    }
    if repeated > MAX_REPEATED_BYTES {
        return Err(ConvertError::TooLarge(format!(
            "the resource and scope attribute keys of this request, copied onto each of its \
             records, would take {repeated} bytes (at most {MAX_REPEATED_BYTES}): send fewer \
             records per request"
        )));
    }
    Ok(())
}

/// The bytes of the keys of `attrs`.
pub(crate) fn key_bytes(attrs: &[KeyValue]) -> usize {
    attrs.iter().map(|kv| kv.key.len()).sum()
}

/// The records refused so far.
#[derive(Debug, Default)]
pub(crate) struct Rejections {
    pub count: u64,
    pub first: Option<String>,
}

impl Rejections {
    /// Counts one refused record; keeps the reason when it is the first.
    pub fn add(&mut self, location: impl FnOnce() -> String, why: String) {
        self.count += 1;
        if self.first.is_none() {
            self.first = Some(format!("{}: {why}", location()));
        }
    }
}

/// Checks that a time fits the `Timestamp(Nanosecond)` columns.
pub(crate) fn check_time(what: &str, nanos: u64) -> Result<(), String> {
    if nanos > i64::MAX as u64 {
        return Err(format!(
            "{what} is {nanos}, after the year 2262 (above i64::MAX nanoseconds): \
             send nanoseconds since the Unix epoch"
        ));
    }
    Ok(())
}

/// Checks an id: `width` bytes, or empty when `optional`.
pub(crate) fn check_id(what: &str, id: &[u8], width: usize, optional: bool) -> Result<(), String> {
    if id.len() == width || (optional && id.is_empty()) {
        return Ok(());
    }
    let allowed = if optional {
        format!("{width} bytes or empty")
    } else {
        format!("{width} bytes")
    };
    Err(format!(
        "{what} has {} bytes, it must be {allowed}",
        id.len()
    ))
}

/// Checks an id that must be present and not all zero (OTLP calls both
/// invalid for spans).
pub(crate) fn check_required_id(what: &str, id: &[u8], width: usize) -> Result<(), String> {
    check_id(what, id, width, false)?;
    if id.iter().all(|b| *b == 0) {
        return Err(format!(
            "{what} is all zeroes, which OTLP defines as invalid"
        ));
    }
    Ok(())
}

/// OTLP time (0 = unknown) -> timestamp column value (null = unknown).
pub(crate) fn nanos(t: u64) -> Option<i64> {
    if t == 0 { None } else { i64::try_from(t).ok() }
}

/// Timestamp column value -> OTLP time.
pub(crate) fn unix_nanos(t: Option<i64>) -> u64 {
    t.and_then(|t| u64::try_from(t).ok()).unwrap_or(0)
}

/// An empty string is null.
pub(crate) fn non_empty(s: &str) -> Option<&str> {
    if s.is_empty() { None } else { Some(s) }
}

/// A builder of a `Timestamp(Nanosecond, "+00:00")` column.
pub(crate) fn timestamp_builder(capacity: usize) -> PrimitiveBuilder<TimestampNanosecondType> {
    PrimitiveBuilder::with_capacity(capacity).with_timezone(schema::TIME_ZONE)
}

/// A bug in this module: an array did not fit its own schema.
pub(crate) fn internal(e: impl std::fmt::Display) -> ConvertError {
    ConvertError::Internal(e.to_string())
}

// ---------------------------------------------------------------------------
// Attribute values as text.

/// The type letter of one value.
fn value_letter(value: Option<&AnyValue>) -> u8 {
    use any_value::Value as V;
    match value.map(|v| &v.value) {
        None => letter::ABSENT,
        Some(None) => letter::EMPTY,
        Some(Some(V::StringValue(_))) => letter::STRING,
        Some(Some(V::BoolValue(_))) => letter::BOOL,
        Some(Some(V::IntValue(_))) => letter::INT,
        Some(Some(V::DoubleValue(_))) => letter::DOUBLE,
        Some(Some(V::BytesValue(_))) => letter::BYTES,
        Some(Some(V::ArrayValue(_))) => letter::ARRAY,
        Some(Some(V::KvlistValue(_))) => letter::KVLIST,
        Some(Some(V::StringValueStrindex(_))) => letter::STRINDEX,
    }
}

/// Appends the type of `kv` to a `*_types` string.
fn push_type(types: &mut String, kv: &KeyValue) {
    types.push(char::from(value_letter(kv.value.as_ref())));
    if kv.key_strindex != 0 {
        types.push(char::from(letter::KEY_STRINDEX));
        // Writing to a String cannot fail.
        let _ = write!(types, "{}", kv.key_strindex);
    }
}

/// The type of a lone value (a log body): its letter, or null when absent.
pub(crate) fn body_type(value: Option<&AnyValue>) -> Option<&'static str> {
    match value_letter(value) {
        letter::ABSENT => None,
        letter::EMPTY => Some("e"),
        letter::STRING => Some("s"),
        letter::BOOL => Some("b"),
        letter::INT => Some("i"),
        letter::DOUBLE => Some("d"),
        letter::BYTES => Some("y"),
        letter::ARRAY => Some("a"),
        letter::KVLIST => Some("k"),
        _ => Some("x"),
    }
}

/// Appends the string form of `value` to `out` as one value: null for an
/// empty or absent value. Returns whether the value is not null.
pub(crate) fn append_text(
    out: &mut StringBuilder,
    value: Option<&AnyValue>,
    scratch: &mut String,
) -> bool {
    use any_value::Value as V;
    let Some(v) = value.and_then(|v| v.value.as_ref()) else {
        out.append_null();
        return false;
    };
    match v {
        V::StringValue(s) => out.append_value(s),
        V::BoolValue(b) => out.append_value(if *b { "true" } else { "false" }),
        V::IntValue(i) => {
            // Writing to a builder cannot fail.
            let _ = write!(out, "{i}");
            out.append_value("");
        }
        V::DoubleValue(d) => {
            // Shortest text that parses back to the same double; an
            // exponent for extreme magnitudes. Cannot fail.
            let _ = write!(out, "{d:?}");
            out.append_value("");
        }
        V::StringValueStrindex(i) => {
            // Cannot fail.
            let _ = write!(out, "{i}");
            out.append_value("");
        }
        V::BytesValue(b) => {
            scratch.clear();
            BASE64.encode_string(b, scratch);
            out.append_value(&*scratch);
        }
        V::ArrayValue(_) | V::KvlistValue(_) => {
            scratch.clear();
            if let Some(any) = value {
                json::write_any_value_to(scratch, any);
            }
            out.append_value(&*scratch);
        }
    }
    true
}

/// The value a `(type letter, text)` pair stands for. A text that no longer
/// parses as its type (a processor rewrote it) comes back as a string; a
/// null text of any type but `n` comes back as an empty value.
pub(crate) fn value_from_text(type_letter: u8, text: Option<&str>) -> Option<AnyValue> {
    use any_value::Value as V;
    if type_letter == letter::ABSENT {
        return None;
    }
    let Some(text) = text else {
        return Some(AnyValue { value: None });
    };
    let parsed = match type_letter {
        letter::EMPTY => return Some(AnyValue { value: None }),
        letter::BOOL => match text {
            "true" => Some(V::BoolValue(true)),
            "false" => Some(V::BoolValue(false)),
            _ => None,
        },
        letter::INT => text.parse().ok().map(V::IntValue),
        letter::DOUBLE => text.parse().ok().map(V::DoubleValue),
        letter::BYTES => BASE64.decode(text).ok().map(V::BytesValue),
        letter::STRINDEX => text.parse().ok().map(V::StringValueStrindex),
        letter::ARRAY | letter::KVLIST => json::parse_any_value(text)
            .ok()
            .and_then(|v| v.value)
            .filter(|v| {
                matches!(
                    (type_letter, v),
                    (letter::ARRAY, V::ArrayValue(_)) | (letter::KVLIST, V::KvlistValue(_))
                )
            }),
        _ => None,
    };
    Some(AnyValue {
        value: Some(parsed.unwrap_or_else(|| V::StringValue(text.to_string()))),
    })
}

/// Walks a `*_types` string: one `(letter, key_strindex)` per entry. Past
/// its end (a processor added entries) every entry is a string.
pub(crate) struct TypeLetters<'a> {
    rest: &'a [u8],
}

impl<'a> TypeLetters<'a> {
    pub fn new(types: Option<&'a str>) -> Self {
        TypeLetters {
            rest: types.unwrap_or("").as_bytes(),
        }
    }

    pub fn next_entry(&mut self) -> (u8, i32) {
        let Some((&first, rest)) = self.rest.split_first() else {
            return (letter::STRING, 0);
        };
        self.rest = rest;
        let mut key_strindex = 0;
        if let Some((&letter::KEY_STRINDEX, rest)) = self.rest.split_first() {
            let end = rest
                .iter()
                .position(|c| !(c.is_ascii_digit() || *c == b'-'))
                .unwrap_or(rest.len());
            key_strindex = std::str::from_utf8(&rest[..end])
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            self.rest = &rest[end..];
        }
        (first, key_strindex)
    }
}

// ---------------------------------------------------------------------------
// Builders.

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
    pub fn append(&mut self, attrs: &[KeyValue], types: &mut String, scratch: &mut String) {
        for kv in attrs {
            self.keys.append_value(&kv.key);
            append_text(&mut self.values, kv.value.as_ref(), scratch);
            push_type(types, kv);
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

// ---------------------------------------------------------------------------
// Readers (batch -> OTLP).

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

    /// Guarantees: a value a processor rewrote so that it no longer parses
    /// as its recorded type comes back as a string, and entries beyond the
    /// types string are strings.
    #[test]
    fn lenient_on_rewritten_values() {
        use any_value::Value as V;
        assert_eq!(
            value_from_text(letter::INT, Some("not a number")),
            Some(AnyValue {
                value: Some(V::StringValue("not a number".into()))
            })
        );
        let mut letters = TypeLetters::new(Some("i"));
        assert_eq!(letters.next_entry(), (letter::INT, 0));
        assert_eq!(letters.next_entry(), (letter::STRING, 0));
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

#[cfg(test)]
mod deep_tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::common::v1::ArrayValue;
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use prost::Message;

    /// Guarantees: an attribute nested as deep as protobuf decoding allows
    /// survives the trip through its JSON text form.
    #[test]
    fn deeply_nested_values_survive() {
        let mut value = AnyValue {
            value: Some(any_value::Value::IntValue(1)),
        };
        let mut depth = 0;
        loop {
            let deeper = AnyValue {
                value: Some(any_value::Value::ArrayValue(ArrayValue {
                    values: vec![value.clone()],
                })),
            };
            let req = ExportLogsServiceRequest {
                resource_logs: vec![ResourceLogs {
                    scope_logs: vec![ScopeLogs {
                        log_records: vec![LogRecord {
                            body: Some(deeper.clone()),
                            ..Default::default()
                        }],
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
            };
            // Stop at the deepest request protobuf still decodes.
            if ExportLogsServiceRequest::decode(req.encode_to_vec().as_slice()).is_err() {
                break;
            }
            value = deeper;
            depth += 1;
        }
        assert!(depth > 40, "protobuf allowed only {depth} levels");
        let mut out = StringBuilder::new();
        let mut scratch = String::new();
        append_text(&mut out, Some(&value), &mut scratch);
        let text = out.finish();
        assert_eq!(
            value_from_text(letter::ARRAY, Some(text.value(0))),
            Some(value)
        );
    }
}
