//! Attributes: OTLP `KeyValue`s of each value type, and reading a value
//! back out of a list of attributes.
//!
//! ```
//! use weir_testkit::kv;
//!
//! let attributes = vec![kv::string("http.route", "/api"), kv::int("i", 7)];
//! assert_eq!(kv::get_str(&attributes, "http.route"), Some("/api"));
//! assert_eq!(kv::get_int(&attributes, "i"), Some(7));
//! assert_eq!(kv::get_int(&attributes, "http.route"), None);
//! ```

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};

/// An `AnyValue` holding `value`.
pub fn any(value: Value) -> AnyValue {
    AnyValue { value: Some(value) }
}

/// A string `AnyValue` (a log body, say).
pub fn text(value: impl Into<String>) -> AnyValue {
    any(Value::StringValue(value.into()))
}

/// Attribute `key` holding `value`, of any type.
pub fn kv(key: impl Into<String>, value: Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(any(value)),
        ..Default::default()
    }
}

/// A string attribute.
pub fn string(key: impl Into<String>, value: impl Into<String>) -> KeyValue {
    kv(key, Value::StringValue(value.into()))
}

/// An int attribute.
pub fn int(key: impl Into<String>, value: i64) -> KeyValue {
    kv(key, Value::IntValue(value))
}

/// A double attribute.
pub fn double(key: impl Into<String>, value: f64) -> KeyValue {
    kv(key, Value::DoubleValue(value))
}

/// A bool attribute.
pub fn boolean(key: impl Into<String>, value: bool) -> KeyValue {
    kv(key, Value::BoolValue(value))
}

/// The value of the first attribute named `key`, if there is one and it
/// has a value.
pub fn get<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a Value> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
}

/// The text of attribute `key`, if it is a string.
pub fn get_str<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a str> {
    match get(attributes, key)? {
        Value::StringValue(s) => Some(s),
        _ => None,
    }
}

/// The number of attribute `key`, if it is an int.
pub fn get_int(attributes: &[KeyValue], key: &str) -> Option<i64> {
    match get(attributes, key)? {
        Value::IntValue(i) => Some(*i),
        _ => None,
    }
}

/// The text `value` holds, if it is a string (a log body, say).
pub fn as_str(value: &AnyValue) -> Option<&str> {
    match value.value.as_ref()? {
        Value::StringValue(s) => Some(s),
        _ => None,
    }
}

/// The name of `value`'s type, as OTLP/JSON spells the key that holds it
/// without `Value` (`string`, `int`, `double`, `bool`, `array`, `kvlist`,
/// `bytes`, `strindex`).
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::StringValue(_) => "string",
        Value::IntValue(_) => "int",
        Value::DoubleValue(_) => "double",
        Value::BoolValue(_) => "bool",
        Value::ArrayValue(_) => "array",
        Value::KvlistValue(_) => "kvlist",
        Value::BytesValue(_) => "bytes",
        Value::StringValueStrindex(_) => "strindex",
    }
}
