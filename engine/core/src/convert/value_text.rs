//! Attribute values as text: the string form of each `AnyValue` and the
//! type letters of the `*_types` columns that let it be read back (see
//! "Attribute values" in [`super`]).

use std::fmt::Write as _;

use arrow::array::StringBuilder;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};

use super::json;

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

/// One attribute value, borrowed from a decoded `AnyValue` or read straight
/// from protobuf bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ValueRef<'a> {
    /// A `KeyValue` without an `AnyValue`.
    Absent,
    /// An `AnyValue` with no value set.
    Empty,
    Str(&'a str),
    Bool(bool),
    Int(i64),
    Double(f64),
    Bytes(&'a [u8]),
    /// `string_value_strindex`.
    Strindex(i32),
    /// An array or kvlist: the whole `AnyValue` holding it.
    Nested(&'a AnyValue),
}

impl<'a> ValueRef<'a> {
    /// The value of a decoded `AnyValue`.
    pub fn of(value: Option<&'a AnyValue>) -> Self {
        use any_value::Value as V;
        let Some(any) = value else {
            return ValueRef::Absent;
        };
        match &any.value {
            None => ValueRef::Empty,
            Some(V::StringValue(s)) => ValueRef::Str(s),
            Some(V::BoolValue(b)) => ValueRef::Bool(*b),
            Some(V::IntValue(i)) => ValueRef::Int(*i),
            Some(V::DoubleValue(d)) => ValueRef::Double(*d),
            Some(V::BytesValue(b)) => ValueRef::Bytes(b),
            Some(V::StringValueStrindex(i)) => ValueRef::Strindex(*i),
            Some(V::ArrayValue(_) | V::KvlistValue(_)) => ValueRef::Nested(any),
        }
    }

    /// The type letter of the value.
    fn letter(self) -> u8 {
        use any_value::Value as V;
        match self {
            ValueRef::Absent => letter::ABSENT,
            ValueRef::Empty => letter::EMPTY,
            ValueRef::Str(_) => letter::STRING,
            ValueRef::Bool(_) => letter::BOOL,
            ValueRef::Int(_) => letter::INT,
            ValueRef::Double(_) => letter::DOUBLE,
            ValueRef::Bytes(_) => letter::BYTES,
            ValueRef::Strindex(_) => letter::STRINDEX,
            ValueRef::Nested(any) => match any.value {
                Some(V::KvlistValue(_)) => letter::KVLIST,
                _ => letter::ARRAY,
            },
        }
    }
}

/// One attribute entry: key, value and `key_strindex`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KvRef<'a> {
    pub key: &'a str,
    pub value: ValueRef<'a>,
    pub key_strindex: i32,
}

impl<'a> From<&'a KeyValue> for KvRef<'a> {
    fn from(kv: &'a KeyValue) -> Self {
        KvRef {
            key: &kv.key,
            value: ValueRef::of(kv.value.as_ref()),
            key_strindex: kv.key_strindex,
        }
    }
}

/// Appends the type of `kv` to a `*_types` string.
pub(crate) fn push_type(types: &mut String, kv: &KeyValue) {
    push_type_of(types, ValueRef::of(kv.value.as_ref()), kv.key_strindex);
}

/// Appends the type of a value and its entry's `key_strindex` to a
/// `*_types` string.
pub(crate) fn push_type_of(types: &mut String, value: ValueRef<'_>, key_strindex: i32) {
    types.push(char::from(value.letter()));
    if key_strindex != 0 {
        types.push(char::from(letter::KEY_STRINDEX));
        // Writing to a String cannot fail.
        let _ = write!(types, "{key_strindex}");
    }
}

impl ValueRef<'_> {
    /// The type of a lone value (a log body): its letter, or null when
    /// absent.
    pub(crate) fn type_name(self) -> Option<&'static str> {
        match self.letter() {
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
}

/// Appends the string form of `value` to `out` as one value: null for an
/// empty or absent value. Returns whether the value is not null.
pub(crate) fn append_text(
    out: &mut StringBuilder,
    value: Option<&AnyValue>,
    scratch: &mut String,
) -> bool {
    append_value_text(out, ValueRef::of(value), scratch)
}

/// [`append_text`] of a [`ValueRef`].
pub(crate) fn append_value_text(
    out: &mut StringBuilder,
    value: ValueRef<'_>,
    scratch: &mut String,
) -> bool {
    match value {
        ValueRef::Absent | ValueRef::Empty => {
            out.append_null();
            return false;
        }
        ValueRef::Str(s) => out.append_value(s),
        ValueRef::Bool(b) => out.append_value(if b { "true" } else { "false" }),
        ValueRef::Int(i) => {
            // Writing to a builder cannot fail.
            let _ = write!(out, "{i}");
            out.append_value("");
        }
        ValueRef::Double(d) => {
            // Shortest text that parses back to the same double; an
            // exponent for extreme magnitudes. Cannot fail.
            let _ = write!(out, "{d:?}");
            out.append_value("");
        }
        ValueRef::Strindex(i) => {
            // Cannot fail.
            let _ = write!(out, "{i}");
            out.append_value("");
        }
        ValueRef::Bytes(b) => {
            scratch.clear();
            BASE64.encode_string(b, scratch);
            out.append_value(&*scratch);
        }
        ValueRef::Nested(any) => {
            scratch.clear();
            json::write_any_value_to(scratch, any);
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

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::common::v1::ArrayValue;
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use prost::Message;

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
