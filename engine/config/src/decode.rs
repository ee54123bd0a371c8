//! Spanned TOML tables to typed config structs, reporting every problem.
//!
//! Serde stops at the first error it meets. To report all of them, the
//! decoder first refuses unknown keys itself (with the field list read from
//! the struct, see [`crate::introspect`]), then decodes; when serde fails on
//! a value, the error's span says which key it came from, the decoder
//! reports it, drops that key and tries again. Each retry removes a key, so
//! the loop ends; a missing required key ends it at once.

use std::ops::Range;

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeString, DeTable, DeValue, ValueDeserializer};

use crate::diagnostic::Report;
use crate::suggest::{did_you_mean, quoted_list};

/// Whose table is being decoded, for messages and key paths.
pub(crate) struct Owner {
    /// As named in messages: "source `otlp`", "`[api]`".
    pub describe: String,
    /// The dotted path of the table: "sources.otlp", "api".
    pub path: String,
    /// The table's header (or inline table), pointed at when a key is missing.
    pub span: Range<usize>,
}

impl Owner {
    /// The dotted path of `key` inside this table.
    pub(crate) fn key(&self, key: &str) -> String {
        format!("{}.{key}", self.path)
    }
}

/// Reports and removes every key of `table` that is not in `known`, with a
/// did-you-mean and the list of valid keys.
pub(crate) fn reject_unknown_keys(
    table: &mut DeTable<'_>,
    known: &[&str],
    owner: &Owner,
    report: &mut Report<'_>,
) {
    let unknown: Vec<Spanned<DeString<'_>>> = table
        .keys()
        .filter(|k| !known.contains(&k.get_ref().as_ref()))
        .cloned()
        .collect();
    for key in unknown {
        let name = key.get_ref().as_ref();
        let suggestion = did_you_mean(name, known.iter().copied());
        let valid = format!("valid fields: {}", quoted_list(known.iter().copied()));
        let help = match suggestion {
            Some(s) => format!("did you mean `{s}`? {valid}"),
            None => valid,
        };
        report
            .error(
                key.span(),
                format!("unknown field `{name}` in {}", owner.describe),
            )
            .key(owner.key(name))
            .help(help);
        table.remove(name);
    }
}

/// Decodes struct `T` from `table`, reporting every bad value. `None` when
/// anything was wrong.
pub(crate) fn decode_struct<T: DeserializeOwned>(
    table: DeTable<'_>,
    owner: &Owner,
    report: &mut Report<'_>,
) -> Option<T> {
    recover(table, owner, report, |value| {
        T::deserialize(ValueDeserializer::from(value))
    })
}

/// Decodes one value with a `deserialize_with`-style function, reporting a
/// bad value under `key`.
pub(crate) fn decode_value<'i, T>(
    key: &str,
    value: Spanned<DeValue<'i>>,
    decode: impl FnOnce(ValueDeserializer<'i>) -> Result<T, toml::de::Error>,
    owner: &Owner,
    report: &mut Report<'_>,
) -> Option<T> {
    let span = value.span();
    let actual = value.get_ref().type_str();
    match decode(ValueDeserializer::from(value)) {
        Ok(v) => Some(v),
        Err(e) => {
            bad_value(
                key,
                e.span().unwrap_or(span),
                &tidy(e.message(), actual),
                owner,
                report,
            );
            None
        }
    }
}

fn bad_value(key: &str, span: Range<usize>, label: &str, owner: &Owner, report: &mut Report<'_>) {
    report
        .error(
            span,
            format!("invalid value for `{key}` in {}", owner.describe),
        )
        .key(owner.key(key))
        .label(label);
}

fn recover<'i, T>(
    mut table: DeTable<'i>,
    owner: &Owner,
    report: &mut Report<'_>,
    build: impl Fn(Spanned<DeValue<'i>>) -> Result<T, toml::de::Error>,
) -> Option<T> {
    let mut dropped: Vec<String> = Vec::new();
    // Each failed round drops one key, so this bound is never the reason to stop.
    for _ in 0..=table.len() {
        let value = Spanned::new(owner.span.clone(), DeValue::Table(table.clone()));
        let error = match build(value) {
            Ok(v) => return dropped.is_empty().then_some(v),
            Err(e) => e,
        };
        let span = error.span();
        let culprit = span.as_ref().and_then(|s| {
            table.iter().find_map(|(k, v)| {
                let (ks, vs) = (k.span(), v.span());
                let on_key = s.start >= ks.start && s.end <= ks.end;
                let in_value = s.start >= vs.start && s.end <= vs.end;
                (on_key || in_value)
                    .then(|| (k.get_ref().to_string(), on_key, v.get_ref().type_str()))
            })
        });
        match culprit {
            Some((key, false, actual)) => {
                let span = span.unwrap_or_else(|| owner.span.clone());
                let label = tidy(error.message(), actual);
                bad_value(&key, span, &label, owner, report);
                table.remove(key.as_str());
                dropped.push(key);
            }
            Some((key, true, _)) => {
                let span = span.unwrap_or_else(|| owner.span.clone());
                report
                    .error(span, format!("invalid field `{key}` in {}", owner.describe))
                    .key(owner.key(&key))
                    .label(tidy(error.message(), "key"));
                table.remove(key.as_str());
                dropped.push(key);
            }
            None => {
                match missing_field(error.message()) {
                    // Its value was bad and already reported.
                    Some(field) if dropped.iter().any(|d| d == field) => {}
                    Some(field) => {
                        report
                            .error(
                                owner.span.clone(),
                                format!("{} is missing `{field}`", owner.describe),
                            )
                            .key(owner.key(field))
                            .label(format!("`{field}` is required here"))
                            .help(format!("add a `{field}` key to this table"));
                    }
                    None => {
                        report
                            .error(
                                span.unwrap_or_else(|| owner.span.clone()),
                                format!("invalid {}", owner.describe),
                            )
                            .key(owner.path.clone())
                            .label(tidy(error.message(), "table"));
                    }
                }
                return None;
            }
        }
    }
    None
}

fn missing_field(message: &str) -> Option<&str> {
    message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.strip_suffix('`'))
}

/// Rewrites serde's wording for users: "invalid type: string \"x\", expected
/// a boolean" becomes "expected a boolean, found string \"x\"". `actual` is
/// the TOML type of the value (serde calls tables and date-times both
/// "map", and arrays "sequence").
pub(crate) fn tidy(message: &str, actual: &str) -> String {
    let expected_words = |expected: &str| match expected {
        "usize" | "u64" | "u32" | "u16" | "u8" => "a non-negative integer".to_string(),
        "i64" | "i32" => "an integer".to_string(),
        "a sequence" => "a list".to_string(),
        "a map" => "a table".to_string(),
        other => other.to_string(),
    };
    let found_words = |found: &str| match found {
        "map" | "sequence" => actual.to_string(),
        other => other.to_string(),
    };
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = message.strip_prefix(prefix)
            && let Some((found, expected)) = rest.rsplit_once(", expected ")
        {
            return format!(
                "expected {}, found {}",
                expected_words(expected),
                found_words(found)
            );
        }
    }
    message.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guarantees: serde's type errors are reworded expected-first, and
    /// other messages pass through untouched.
    #[test]
    fn tidies_serde_messages() {
        assert_eq!(
            tidy("invalid type: string \"yes\", expected a boolean", "string"),
            "expected a boolean, found string \"yes\""
        );
        assert_eq!(
            tidy("invalid value: integer `-1`, expected usize", "integer"),
            "expected a non-negative integer, found integer `-1`"
        );
        assert_eq!(
            tidy("invalid type: map, expected a duration", "datetime"),
            "expected a duration, found datetime"
        );
        assert_eq!(tidy("something else", "string"), "something else");
    }
}
