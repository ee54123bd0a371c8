//! The template syntax of alert labels and annotations.
//!
//! A template is text with actions between `{{` and `}}`, a small subset of
//! Prometheus' (Go) templates that covers what alert texts use:
//!
//! | action | renders |
//! |---|---|
//! | `{{ $labels.service_name }}` | the row's value of the label column `service_name` (empty when null) |
//! | `{{ $value }}` | the row's `value`, in its shortest exact form (`0.05`, `1200`, `NaN`) |
//! | `{{ $labels.route \| default "unknown" }}` | the label, or the quoted text when it is null or empty |
//! | `{{ $value \| printf "%.2f" }}` | the value rounded to 2 decimals (any `%.Nf`) |
//!
//! Anything else between braces is an error when the rule is validated, as
//! is a `{{` without its `}}`. `$labels` holds the label columns of the
//! query's result (before the rule's own labels are added), so a template
//! naming a label the query does not return is also a validation error.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Action { var: Var, pipe: Option<Pipe> },
}

#[derive(Debug, Clone, PartialEq)]
enum Var {
    Label(String),
    Value,
}

#[derive(Debug, Clone, PartialEq)]
enum Pipe {
    Default(String),
    Fixed(usize),
}

/// A template does not parse. `offset` is the byte offset of the faulty
/// action in the template's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at byte {offset}: {message}")]
pub struct TemplateError {
    /// Where the faulty action starts.
    pub offset: usize,
    /// What is wrong and what is accepted.
    pub message: String,
}

const ACCEPTED: &str = "accepted actions are `{{ $labels.NAME }}`, `{{ $value }}`, \
                        `{{ $labels.NAME | default \"text\" }}` and `{{ $value | printf \"%.2f\" }}`";

impl Template {
    /// Parses `text`.
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let mut parts = Vec::new();
        let mut rest = text;
        let mut offset = 0;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_string()));
            }
            let start = offset + open;
            let after = &rest[open + 2..];
            let Some(close) = after.find("}}") else {
                return Err(TemplateError {
                    offset: start,
                    message: "`{{` is not closed by `}}`".to_string(),
                });
            };
            parts.push(parse_action(&after[..close], start)?);
            let consumed = open + 2 + close + 2;
            rest = &rest[consumed..];
            offset += consumed;
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(Template { parts })
    }

    /// Whether the template is plain text, with no action.
    pub fn is_literal(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Text(_)))
    }

    /// The label names the template reads through `$labels`.
    pub fn labels_used(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Action {
                var: Var::Label(name),
                ..
            } => Some(name.as_str()),
            _ => None,
        })
    }

    /// Renders the template for one result row.
    pub fn render(&self, labels: &BTreeMap<String, String>, value: f64) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Action { var, pipe } => {
                    let shown = match var {
                        Var::Label(name) => labels.get(name).cloned().unwrap_or_default(),
                        Var::Value => match pipe {
                            Some(Pipe::Fixed(digits)) => format!("{value:.digits$}"),
                            _ => format_value(value),
                        },
                    };
                    match pipe {
                        Some(Pipe::Default(text)) if shown.is_empty() => out.push_str(text),
                        _ => out.push_str(&shown),
                    }
                }
            }
        }
        out
    }
}

/// A value in its shortest exact form: `0.05`, `1200`, `NaN`, `+Inf`.
pub fn format_value(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_string()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else {
        let mut s = String::new();
        let _ = write!(s, "{value}");
        s
    }
}

fn error(offset: usize, message: impl Into<String>) -> TemplateError {
    TemplateError {
        offset,
        message: message.into(),
    }
}

fn parse_action(inner: &str, offset: usize) -> Result<Part, TemplateError> {
    let (head, pipe) = match inner.split_once('|') {
        Some((head, pipe)) => (head.trim(), Some(pipe.trim())),
        None => (inner.trim(), None),
    };
    let var = if head == "$value" {
        Var::Value
    } else if let Some(name) = head.strip_prefix("$labels.") {
        if !is_label_name(name) {
            return Err(error(
                offset,
                format!(
                    "`{name}` is not a label name (letters, digits and `_`, not starting with a digit)"
                ),
            ));
        }
        Var::Label(name.to_string())
    } else {
        return Err(error(
            offset,
            format!("unknown action `{{{{{inner}}}}}`; {ACCEPTED}"),
        ));
    };
    let pipe = match pipe {
        None => None,
        Some(p) => Some(parse_pipe(p, &var, offset)?),
    };
    Ok(Part::Action { var, pipe })
}

fn parse_pipe(pipe: &str, var: &Var, offset: usize) -> Result<Pipe, TemplateError> {
    let (func, arg) = pipe.split_once(char::is_whitespace).unwrap_or((pipe, ""));
    let arg = arg.trim();
    let quoted = arg
        .strip_prefix('"')
        .and_then(|a| a.strip_suffix('"'))
        .filter(|a| !a.contains('"'))
        .ok_or_else(|| {
            error(
                offset,
                format!("`{func}` takes one argument in double quotes, got `{arg}`"),
            )
        });
    match func {
        "default" => Ok(Pipe::Default(quoted?.to_string())),
        "printf" => {
            if *var != Var::Value {
                return Err(error(offset, "`printf` formats `$value` only"));
            }
            let spec = quoted?;
            spec.strip_prefix("%.")
                .and_then(|s| s.strip_suffix('f'))
                .and_then(|d| d.parse::<usize>().ok())
                .filter(|d| *d <= 17)
                .map(Pipe::Fixed)
                .ok_or_else(|| {
                    error(
                        offset,
                        format!("`printf` accepts `\"%.Nf\"` (N from 0 to 17), got `\"{spec}\"`"),
                    )
                })
        }
        other => Err(error(
            offset,
            format!("unknown function `{other}`; {ACCEPTED}"),
        )),
    }
}

/// Whether `name` is a label name: `[a-zA-Z_][a-zA-Z0-9_]*`, as Prometheus
/// and Alertmanager require.
pub fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Guarantees: labels and the value are substituted, text around them
    /// kept as is, and `labels_used` lists what the template reads.
    #[test]
    fn renders_labels_and_value() {
        let t = Template::parse("{{ $labels.service }} error rate is {{$value}} (> 5%)").unwrap();
        assert_eq!(
            t.render(&labels(&[("service", "cart")]), 0.125),
            "cart error rate is 0.125 (> 5%)"
        );
        assert_eq!(t.labels_used().collect::<Vec<_>>(), ["service"]);
        assert!(!t.is_literal());
        assert!(Template::parse("plain }} text").unwrap().is_literal());
        assert_eq!(format_value(f64::NAN), "NaN");
        assert_eq!(format_value(f64::INFINITY), "+Inf");
        assert_eq!(format_value(1200.0), "1200");
    }

    /// Guarantees: `default` replaces a missing or empty label, `printf`
    /// rounds the value.
    #[test]
    fn pipes_default_and_printf() {
        let t = Template::parse(
            r#"{{ $labels.route | default "any route" }}: {{ $value | printf "%.2f" }}"#,
        )
        .unwrap();
        assert_eq!(t.render(&labels(&[]), 0.123456), "any route: 0.12");
        assert_eq!(t.render(&labels(&[("route", "/cart")]), 2.0), "/cart: 2.00");
    }

    /// Guarantees: syntax errors are found at parse time with the offset of
    /// the faulty action and a message that lists what is accepted.
    #[test]
    fn rejects_bad_syntax_with_clear_messages() {
        let cases = [
            ("x {{ $labels.a", "not closed"),
            ("{{ .Labels.a }}", "accepted actions"),
            ("{{ $labels.a-b }}", "not a label name"),
            ("{{ $labels.a | upper }}", "unknown function `upper`"),
            ("{{ $labels.a | default x }}", "double quotes"),
            ("{{ $labels.a | printf \"%.2f\" }}", "`$value` only"),
            ("{{ $value | printf \"%d\" }}", "%.Nf"),
        ];
        for (text, expected) in cases {
            let err = Template::parse(text).unwrap_err();
            assert!(err.message.contains(expected), "{text}: {err}");
        }
        assert_eq!(Template::parse("ab {{ $nope }}").unwrap_err().offset, 3);
    }

    /// Guarantees: label names follow Prometheus' rule.
    #[test]
    fn label_names() {
        assert!(is_label_name("service_name"));
        assert!(is_label_name("_x1"));
        assert!(!is_label_name("1x"));
        assert!(!is_label_name("count(*)"));
        assert!(!is_label_name(""));
    }
}
