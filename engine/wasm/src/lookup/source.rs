//! A lookup file's rows: `(key, value)` pairs read from CSV or JSON.
//!
//! * CSV: a header row; `key` names the key column (default: the first);
//!   each row's value is the JSON object of its other columns,
//!   `{"owner":"ana","team":"payments","tier":"1"}`, so that one lookup
//!   brings every column. Cells are trimmed; an empty cell is left out of
//!   the object.
//! * JSON: one object of key -> value (a string value as it is, any other
//!   value as its JSON text), or an array of objects with `key` naming the
//!   field that holds each one's key (the value is the object without it).

use std::path::Path;

use serde_json::{Map, Value};

use super::{Format, LookupError};

/// The rows of the file at `path`, in file order.
pub(crate) fn read(
    path: &Path,
    format: Format,
    key: Option<&str>,
) -> Result<Vec<(String, String)>, LookupError> {
    let bytes = std::fs::read(path).map_err(|error| LookupError::Read { error })?;
    match format {
        Format::Csv => csv_rows(&bytes, key),
        Format::Json => json_rows(&bytes, key),
    }
}

fn csv_rows(bytes: &[u8], key: Option<&str>) -> Result<Vec<(String, String)>, LookupError> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| LookupError::Csv {
            message: e.to_string(),
        })?
        .iter()
        .map(str::to_owned)
        .collect();
    if header.is_empty() || header.iter().all(String::is_empty) {
        return Err(LookupError::Csv {
            message: "the file is empty; the first line must name the columns".to_string(),
        });
    }
    for (i, name) in header.iter().enumerate() {
        if name.is_empty() {
            return Err(LookupError::Csv {
                message: format!("column {} of the header has no name", i + 1),
            });
        }
        if header[..i].contains(name) {
            return Err(LookupError::Csv {
                message: format!("the header names column `{name}` twice"),
            });
        }
    }
    let key_column = match key {
        None => 0,
        Some(key) => {
            header
                .iter()
                .position(|c| c == key)
                .ok_or_else(|| LookupError::NoKeyColumn {
                    key: key.to_string(),
                    columns: header.join("`, `"),
                })?
        }
    };
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| LookupError::Csv {
            message: e.to_string(),
        })?;
        let mut value = Map::new();
        for (i, cell) in record.iter().enumerate() {
            if i != key_column && !cell.is_empty() {
                value.insert(header[i].clone(), Value::String(cell.to_string()));
            }
        }
        let key = record.get(key_column).unwrap_or_default().to_string();
        rows.push((key, Value::Object(value).to_string()));
    }
    Ok(rows)
}

fn json_rows(bytes: &[u8], key: Option<&str>) -> Result<Vec<(String, String)>, LookupError> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| LookupError::Json {
        message: e.to_string(),
    })?;
    match (value, key) {
        (Value::Object(_), Some(_)) => Err(LookupError::KeyOnObject),
        (Value::Object(map), None) => Ok(map.into_iter().map(|(k, v)| (k, text(v))).collect()),
        (Value::Array(_), None) => Err(LookupError::NoKeyField),
        (Value::Array(items), Some(key)) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| {
                let element = |message: String| LookupError::Element {
                    element: i + 1,
                    message,
                };
                let Value::Object(mut object) = item else {
                    return Err(element("is not an object".to_string()));
                };
                let k = match object.remove(key) {
                    Some(Value::String(s)) => s,
                    Some(n @ Value::Number(_)) => n.to_string(),
                    Some(_) => return Err(element(format!("field `{key}` is not a string"))),
                    None => return Err(element(format!("has no field `{key}`"))),
                };
                Ok((k, Value::Object(object).to_string()))
            })
            .collect(),
        _ => Err(LookupError::JsonShape),
    }
}

/// A JSON value as a table value: a string as it is, anything else as its
/// JSON text.
fn text(value: Value) -> String {
    match value {
        Value::String(s) => s,
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv(text: &str, key: Option<&str>) -> Result<Vec<(String, String)>, LookupError> {
        csv_rows(text.as_bytes(), key)
    }

    fn json(text: &str, key: Option<&str>) -> Result<Vec<(String, String)>, LookupError> {
        json_rows(text.as_bytes(), key)
    }

    fn pairs(rows: &[(&str, &str)]) -> Vec<(String, String)> {
        rows.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Guarantees: a CSV row's value is the JSON object of its other
    /// columns (trimmed; empty cells left out; quoting as CSV has it), the
    /// key column being the first unless `key` names another.
    #[test]
    fn csv_rows_become_objects() {
        let text = "service, team, owner, tier\n\
                    checkout, payments, ana, 1\n\
                    cart,\"shop, web\", ,2\n";
        assert_eq!(
            csv(text, None).expect("reads"),
            pairs(&[
                (
                    "checkout",
                    r#"{"owner":"ana","team":"payments","tier":"1"}"#
                ),
                ("cart", r#"{"team":"shop, web","tier":"2"}"#),
            ])
        );
        assert_eq!(
            csv(text, Some("team")).expect("reads")[0],
            (
                "payments".to_string(),
                r#"{"owner":"ana","service":"checkout","tier":"1"}"#.to_string()
            )
        );
    }

    /// Guarantees: a CSV without a header, with a nameless or repeated
    /// column, a row of another width, or a `key` that names no column is
    /// refused, saying what to fix.
    #[test]
    fn csv_mistakes_are_refused() {
        let e = |text: &str, key: Option<&str>| csv(text, key).expect_err("refused").to_string();
        assert!(e("", None).contains("first line must name the columns"));
        assert!(e("a,,c\n1,2,3\n", None).contains("column 2 of the header has no name"));
        assert!(e("a,b,a\n", None).contains("names column `a` twice"));
        assert!(
            e("a,b\n1,2,3\n", None).contains("not a CSV table"),
            "{}",
            e("a,b\n1,2,3\n", None)
        );
        let missing = e("service,team\n", Some("name"));
        assert!(
            missing.contains("no column `name`") && missing.contains("`service`, `team`"),
            "{missing}"
        );
    }

    /// Guarantees: a JSON object maps keys to values (non-string values as
    /// their JSON text); an array of objects takes each one's key from the
    /// field `key` names and keeps the rest as the value.
    #[test]
    fn json_objects_and_arrays() {
        assert_eq!(
            json(r#"{"a": "x", "b": {"team": "t"}, "c": 3}"#, None).expect("reads"),
            pairs(&[("a", "x"), ("b", r#"{"team":"t"}"#), ("c", "3")])
        );
        assert_eq!(
            json(
                r#"[{"service": "checkout", "team": "payments"}, {"service": 7, "team": "x"}]"#,
                Some("service")
            )
            .expect("reads"),
            pairs(&[
                ("checkout", r#"{"team":"payments"}"#),
                ("7", r#"{"team":"x"}"#)
            ])
        );
    }

    /// Guarantees: JSON that does not parse, of another shape, an array
    /// without `key`, an object with `key`, and array elements without
    /// the key field are refused, saying what to fix.
    #[test]
    fn json_mistakes_are_refused() {
        let e = |text: &str, key: Option<&str>| json(text, key).expect_err("refused").to_string();
        assert!(e("{", None).contains("not JSON"));
        assert!(e("\"x\"", None).contains("one JSON object"));
        assert!(e("[]", None).contains("needs `key`"));
        assert!(e("{}", Some("k")).contains("leave `key` out"));
        assert!(e(r#"[{"k": "a"}, {"j": "b"}]"#, Some("k")).contains("element 2 has no field `k`"));
        assert!(e(r#"[1]"#, Some("k")).contains("element 1 is not an object"));
    }
}
