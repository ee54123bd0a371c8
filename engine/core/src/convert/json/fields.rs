//! Reading a parsed OTLP/JSON document by the rules of [`super`]: errors
//! that carry the path to the faulty field, the fields of an object
//! (absent and `null` alike), and scalars (64-bit integers as numbers or
//! strings, doubles with `NaN` and infinities, enums by number or name, hex
//! ids, base64 bytes).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value};

use crate::convert::ConvertError;

/// A decoding error and where it happened (the path is built on the way up).
pub(super) struct JErr {
    /// Path segments, innermost first.
    path: Vec<String>,
    message: String,
}

impl JErr {
    pub(super) fn new(message: impl Into<String>) -> Self {
        JErr {
            path: Vec::new(),
            message: message.into(),
        }
    }

    pub(super) fn into_convert(self) -> ConvertError {
        ConvertError::InvalidOtlp(self.to_string())
    }
}

impl std::fmt::Display for JErr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            return f.write_str(&self.message);
        }
        let mut path = String::new();
        for seg in self.path.iter().rev() {
            if !seg.starts_with('[') && !path.is_empty() {
                path.push('.');
            }
            path.push_str(seg);
        }
        write!(f, "at `{path}`: {}", self.message)
    }
}

pub(super) type JResult<T> = Result<T, JErr>;

/// Adds a path segment to an error on its way up.
pub(super) trait At<T> {
    fn at(self, seg: impl FnOnce() -> String) -> JResult<T>;
}

impl<T> At<T> for JResult<T> {
    fn at(self, seg: impl FnOnce() -> String) -> JResult<T> {
        self.map_err(|mut e| {
            e.path.push(seg());
            e
        })
    }
}

pub(super) type JMap = Map<String, Value>;

pub(super) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The value of `key`, or `None` when absent or null.
pub(super) fn field<'a>(m: &'a JMap, key: &str) -> Option<&'a Value> {
    m.get(key).filter(|v| !v.is_null())
}

/// Decodes the object `v` with `f`.
pub(super) fn msg<T>(v: &Value, f: impl FnOnce(&JMap) -> JResult<T>) -> JResult<T> {
    match v {
        Value::Object(m) => f(m),
        other => Err(JErr::new(format!(
            "expected an object, found {}",
            kind(other)
        ))),
    }
}

/// An optional message field.
pub(super) fn opt_msg<T>(
    m: &JMap,
    key: &str,
    f: impl FnOnce(&JMap) -> JResult<T>,
) -> JResult<Option<T>> {
    match field(m, key) {
        None => Ok(None),
        Some(v) => msg(v, f).map(Some).at(|| key.to_string()),
    }
}

/// A repeated field whose items are decoded by `f`.
pub(super) fn repeated<T>(m: &JMap, key: &str, f: impl Fn(&JMap) -> JResult<T>) -> JResult<Vec<T>> {
    repeated_values(m, key, |v| msg(v, &f))
}

pub(super) fn repeated_values<T>(
    m: &JMap,
    key: &str,
    f: impl Fn(&Value) -> JResult<T>,
) -> JResult<Vec<T>> {
    match field(m, key) {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| f(v).at(|| format!("[{i}]")))
            .collect::<JResult<Vec<T>>>()
            .at(|| key.to_string()),
        Some(other) => Err(JErr::new(format!(
            "expected an array, found {}",
            kind(other)
        )))
        .at(|| key.to_string()),
    }
}

/// A scalar field decoded by `f`, or `T::default()` when absent.
pub(super) fn scalar<T: Default>(
    m: &JMap,
    key: &str,
    f: impl FnOnce(&Value) -> JResult<T>,
) -> JResult<T> {
    match field(m, key) {
        None => Ok(T::default()),
        Some(v) => f(v).at(|| key.to_string()),
    }
}

pub(super) fn string_value(v: &Value) -> JResult<String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        other => Err(JErr::new(format!(
            "expected a string, found {}",
            kind(other)
        ))),
    }
}

pub(super) fn bool_value(v: &Value) -> JResult<bool> {
    match v {
        Value::Bool(b) => Ok(*b),
        other => Err(JErr::new(format!(
            "expected true or false, found {}",
            kind(other)
        ))),
    }
}

/// An integer given as a JSON number or as a decimal string.
fn integer<T: TryFrom<i128> + std::str::FromStr>(v: &Value, what: &str) -> JResult<T> {
    let out_of_range = || JErr::new(format!("{v} is not a valid {what}"));
    match v {
        Value::Number(n) => {
            let wide: i128 = if let Some(u) = n.as_u64() {
                u.into()
            } else if let Some(i) = n.as_i64() {
                i.into()
            } else {
                // A number written with a fraction or an exponent: accept it
                // when it is a whole number that a double holds exactly.
                match n.as_f64() {
                    Some(f) if f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_992.0 => f as i128,
                    _ => return Err(out_of_range()),
                }
            };
            T::try_from(wide).map_err(|_| out_of_range())
        }
        Value::String(s) => s.trim().parse::<T>().map_err(|_| out_of_range()),
        other => Err(JErr::new(format!(
            "expected a {what} (a number or a decimal string), found {}",
            kind(other)
        ))),
    }
}

pub(super) fn u64_value(v: &Value) -> JResult<u64> {
    integer(v, "64-bit unsigned integer")
}

pub(super) fn i64_value(v: &Value) -> JResult<i64> {
    integer(v, "64-bit integer")
}

pub(super) fn u32_value(v: &Value) -> JResult<u32> {
    integer(v, "32-bit unsigned integer")
}

pub(super) fn i32_value(v: &Value) -> JResult<i32> {
    integer(v, "32-bit integer")
}

pub(super) fn f64_value(v: &Value) -> JResult<f64> {
    match v {
        Value::Number(n) => n
            .as_f64()
            .ok_or_else(|| JErr::new(format!("{n} is not a valid double"))),
        Value::String(s) => match s.as_str() {
            "NaN" => Ok(f64::NAN),
            "Infinity" => Ok(f64::INFINITY),
            "-Infinity" => Ok(f64::NEG_INFINITY),
            other => other.trim().parse::<f64>().map_err(|_| {
                JErr::new(format!(
                    "\"{other}\" is not a double (expected a number, \"NaN\", \"Infinity\" or \"-Infinity\")"
                ))
            }),
        },
        other => Err(JErr::new(format!("expected a double, found {}", kind(other)))),
    }
}

/// An enum given as an integer or by its name.
pub(super) fn enum_value(v: &Value, from_name: fn(&str) -> Option<i32>) -> JResult<i32> {
    if let Value::String(s) = v
        && let Some(i) = from_name(s)
    {
        return Ok(i);
    }
    i32_value(v).map_err(|_| {
        JErr::new(format!(
            "{v} is neither an enum number nor a known enum name"
        ))
    })
}

/// A trace or span id in hex.
pub(super) fn hex_value(v: &Value) -> JResult<Vec<u8>> {
    let s = match v {
        Value::String(s) => s.as_str(),
        other => {
            return Err(JErr::new(format!(
                "expected a hex string, found {}",
                kind(other)
            )));
        }
    };
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let bytes = s.as_bytes();
    if bytes.len() % 2 != 0 {
        return Err(JErr::new(format!(
            "\"{s}\" is not hex: it has an odd number of digits"
        )));
    }
    bytes
        .chunks_exact(2)
        .map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?))
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(|| JErr::new(format!("\"{s}\" is not a hex string")))
}

pub(super) fn base64_value(v: &Value) -> JResult<Vec<u8>> {
    let s = string_value(v)?;
    BASE64
        .decode(s.trim())
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(s.trim()))
        .map_err(|e| JErr::new(format!("not valid base64: {e}")))
}
