//! Templated values: text with references in braces,
//! `"{resource.service.namespace}/{resource.service.name}"`. `{{` and
//! `}}` are literal braces. A reference is anything [`Ref::parse`] takes.

use crate::refs::Ref;

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Ref(Ref),
}

/// What a rendered template does when a reference is missing in a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Missing {
    /// The row is left as it is.
    #[default]
    Skip,
    /// The reference counts as empty text.
    Empty,
}

impl Template {
    /// Parses `text`; the error says what is wrong, for a message that
    /// adds the config key.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(at) = rest.find(['{', '}']) {
            literal.push_str(&rest[..at]);
            let brace = &rest[at..];
            if brace.starts_with("{{") || brace.starts_with("}}") {
                literal.push(brace.as_bytes()[0] as char);
                rest = &brace[2..];
                continue;
            }
            if brace.starts_with('}') {
                return Err("a `}` closes nothing; write `}}` for a literal brace".to_string());
            }
            let Some(end) = brace.find('}') else {
                return Err("a `{` is never closed; write `{{` for a literal brace".to_string());
            };
            let name = brace[1..end].trim();
            if name.is_empty() || name.contains('{') {
                return Err(format!(
                    "`{}` names nothing; write a reference such as {{resource.service.name}}",
                    &brace[..=end]
                ));
            }
            if !literal.is_empty() {
                parts.push(Part::Text(std::mem::take(&mut literal)));
            }
            parts.push(Part::Ref(Ref::parse(name)?));
            rest = &brace[end + 1..];
        }
        literal.push_str(rest);
        if !literal.is_empty() || parts.is_empty() {
            parts.push(Part::Text(literal));
        }
        Ok(Template { parts })
    }

    /// A template that is just one reference (what `from_attribute`
    /// means).
    pub fn of(reference: Ref) -> Template {
        Template {
            parts: vec![Part::Ref(reference)],
        }
    }

    /// The text, when the template has no reference.
    pub fn constant(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [Part::Text(t)] => Some(t),
            _ => None,
        }
    }

    /// The references, in order.
    pub fn refs(&self) -> impl Iterator<Item = &Ref> {
        self.parts.iter().filter_map(|p| match p {
            Part::Ref(r) => Some(r),
            Part::Text(_) => None,
        })
    }

    /// The template's text for one row, where `value` gives a
    /// reference's value in that row. `None` when a reference is missing
    /// and `missing` is [`Missing::Skip`].
    pub fn render<'a>(
        &self,
        mut value: impl FnMut(&Ref) -> Option<&'a str>,
        missing: Missing,
    ) -> Option<String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Ref(r) => match (value(r), missing) {
                    (Some(v), _) => out.push_str(v),
                    (None, Missing::Empty) => {}
                    (None, Missing::Skip) => return None,
                },
            }
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::refs::Set;

    fn render(template: &str, missing: Missing) -> Option<String> {
        let t = Template::parse(template).expect("parses");
        t.render(
            |r| match r {
                Ref::Attribute(Set::Resource, k) if k == "service.name" => Some("checkout"),
                Ref::Column("name") => Some("GET /cart"),
                _ => None,
            },
            missing,
        )
    }

    /// Guarantees: references are replaced by their values, `{{`/`}}` are
    /// literal braces, a missing reference skips the row or counts as
    /// empty as asked, and text without references is a constant.
    #[test]
    fn templates_render() {
        assert_eq!(
            render("{resource.service.name}: { name }", Missing::Skip).as_deref(),
            Some("checkout: GET /cart")
        );
        assert_eq!(
            render("{{literal}} {resource.service.name}", Missing::Skip).as_deref(),
            Some("{literal} checkout")
        );
        assert_eq!(
            render("{resource.service.namespace}/x", Missing::Skip),
            None
        );
        assert_eq!(
            render(
                "{resource.service.namespace}/{resource.service.name}",
                Missing::Empty
            )
            .as_deref(),
            Some("/checkout")
        );
        assert_eq!(
            Template::parse("prod").expect("parses").constant(),
            Some("prod")
        );
        assert_eq!(Template::parse("").expect("parses").constant(), Some(""));
        assert_eq!(
            Template::parse("a{{b").expect("parses").constant(),
            Some("a{b")
        );
    }

    /// Guarantees: unbalanced braces, empty references and unknown names
    /// are refused, saying what to write.
    #[test]
    fn bad_templates_are_refused() {
        let e = |t: &str| Template::parse(t).expect_err("refused");
        assert!(e("{resource.x").contains("never closed"));
        assert!(e("a}b").contains("closes nothing"));
        assert!(e("{}").contains("names nothing"));
        assert!(e("{servce_name}").contains("neither an attribute"));
    }
}
