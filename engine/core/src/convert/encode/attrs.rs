//! Attribute lists written as `KeyValue` messages straight from a map
//! column and its `*_types` column: the scalar values (string, bool, int,
//! double, bytes, string index) are written from their text without an
//! `AnyValue`; arrays and kvlists, rarer, go through
//! [`value_from_text`] and prost.

use std::ops::Range;

use arrow::array::{Array, ArrayRef, AsArray, StringArray};
use arrow::buffer::{NullBuffer, OffsetBuffer};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::super::ConvertError;
use super::super::read::{Columns, StrCol};
use super::super::value_text::{TypeLetters, letter, value_from_text};
use super::out::{Out, varint_len};

/// The fields of `KeyValue`.
mod kv {
    pub const KEY: u32 = 1;
    pub const VALUE: u32 = 2;
    pub const KEY_STRINDEX: u32 = 3;
}

/// The fields of `AnyValue`'s `value` oneof.
mod any {
    pub const STRING: u32 = 1;
    pub const BOOL: u32 = 2;
    pub const INT: u32 = 3;
    pub const DOUBLE: u32 = 4;
    pub const BYTES: u32 = 7;
    pub const STRINDEX: u32 = 8;
}

/// The keys or values of a map: plain `Utf8` read directly (the usual
/// case, and the hottest loop), any other string type through [`StrCol`].
enum Text {
    /// A `Utf8` column.
    Utf8(StringArray),
    /// A dictionary, or a string type cast to `Utf8`.
    Other(StrCol),
}

impl Text {
    fn new(array: &ArrayRef) -> Result<Self, String> {
        match array.as_string_opt::<i32>() {
            Some(strings) => Ok(Text::Utf8(strings.clone())),
            None => StrCol::new(array).map(Text::Other),
        }
    }

    /// Item `i`, `None` when null (as [`StrCol::get`]).
    #[inline]
    fn get(&self, i: usize) -> Option<&str> {
        match self {
            Text::Utf8(strings) => {
                (i < strings.len() && strings.is_valid(i)).then(|| strings.value(i))
            }
            Text::Other(col) => col.get(i),
        }
    }
}

/// An attribute map column (`Map<string, string>`) and its types column.
pub(super) struct AttrCol {
    offsets: OffsetBuffer<i32>,
    nulls: Option<NullBuffer>,
    keys: Text,
    values: Text,
    types: StrCol,
}

impl AttrCol {
    /// The map column `name` of `cols` and its types column `types`,
    /// checked as the readers of `batch_to_*` check them (same errors).
    pub fn new(cols: &Columns, name: &str, types: &str) -> Result<Self, ConvertError> {
        // The checks and the error messages of the request path.
        cols.map(name)?;
        let map = cols
            .get(name)?
            .as_map_opt()
            .ok_or_else(|| cols.error(format!("column `{name}` is not a map")))?;
        let keys =
            Text::new(map.keys()).map_err(|e| cols.error(format!("column `{name}`: {e}")))?;
        let values =
            Text::new(map.values()).map_err(|e| cols.error(format!("column `{name}`: {e}")))?;
        Ok(AttrCol {
            offsets: map.offsets().clone(),
            nulls: map.nulls().cloned(),
            keys,
            values,
            types: cols.string(types)?,
        })
    }

    /// The entries of row `i`; `None` when the map is null.
    fn entries(&self, i: usize) -> Option<Range<usize>> {
        if self.nulls.as_ref().is_some_and(|n| n.is_null(i)) {
            return None;
        }
        let start = usize::try_from(self.offsets[i]).ok()?;
        let end = usize::try_from(self.offsets[i + 1]).ok()?;
        Some(start..end)
    }

    /// Writes the attributes of row `i` as repeated `KeyValue` field
    /// `field` (nothing when the map is null or empty).
    pub fn write(&self, out: &mut Out<'_>, field: u32, i: usize, scratch: &mut Vec<u8>) {
        let Some(entries) = self.entries(i) else {
            return;
        };
        let mut letters = TypeLetters::new(self.types.get(i));
        for e in entries {
            let (type_letter, key_strindex) = letters.next_entry();
            out.message(field, 1, |out| {
                out.string(kv::KEY, self.keys.get(e).unwrap_or_default());
                write_value(out, kv::VALUE, type_letter, self.values.get(e), scratch);
                out.int32(kv::KEY_STRINDEX, key_strindex);
            });
        }
    }
}

/// Writes the `AnyValue` a `(type letter, text)` pair stands for as
/// message field `field`, exactly as prost writes what [`value_from_text`]
/// returns: nothing for an absent value, an empty message for an empty or
/// null one, a string for a text that does not parse as its type.
pub(super) fn write_value(
    out: &mut Out<'_>,
    field: u32,
    type_letter: u8,
    text: Option<&str>,
    scratch: &mut Vec<u8>,
) {
    if type_letter == letter::ABSENT {
        return;
    }
    let Some(text) = text else {
        out.header(field, 0);
        return;
    };
    match type_letter {
        letter::EMPTY => out.header(field, 0),
        letter::BOOL => match text {
            "true" => varint_value(out, field, any::BOOL, 1),
            "false" => varint_value(out, field, any::BOOL, 0),
            _ => string_value(out, field, text),
        },
        letter::INT => match text.parse::<i64>() {
            Ok(v) => varint_value(out, field, any::INT, v as u64),
            Err(_) => string_value(out, field, text),
        },
        letter::DOUBLE => match text.parse::<f64>() {
            Ok(v) => {
                out.header(field, 9);
                out.always_double(any::DOUBLE, v);
            }
            Err(_) => string_value(out, field, text),
        },
        letter::BYTES => {
            scratch.clear();
            match BASE64.decode_vec(text, scratch) {
                Ok(()) => {
                    out.header(field, delimited_len(scratch.len()));
                    out.always_bytes(any::BYTES, scratch);
                }
                Err(_) => string_value(out, field, text),
            }
        }
        letter::STRINDEX => match text.parse::<i32>() {
            Ok(v) => varint_value(out, field, any::STRINDEX, i64::from(v) as u64),
            Err(_) => string_value(out, field, text),
        },
        letter::ARRAY | letter::KVLIST => {
            if let Some(value) = value_from_text(type_letter, Some(text)) {
                out.prost(field, &value);
            }
        }
        _ => string_value(out, field, text),
    }
}

/// The bytes of a one-byte key, a length and `len` bytes.
fn delimited_len(len: usize) -> usize {
    1 + varint_len(len as u64) + len
}

/// An `AnyValue` holding a string.
fn string_value(out: &mut Out<'_>, field: u32, text: &str) {
    out.header(field, delimited_len(text.len()));
    out.always_bytes(any::STRING, text.as_bytes());
}

/// An `AnyValue` holding a varint member `member`.
fn varint_value(out: &mut Out<'_>, field: u32, member: u32, value: u64) {
    out.header(field, 1 + varint_len(value));
    out.always_varint(member, value);
}
