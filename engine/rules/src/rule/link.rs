//! The link from an alert back to its rule (Prometheus' `generatorURL`).

/// The link from an alert back to its rule: `<external_url>/rules/<name>`
/// (the name percent-encoded as a path segment: every byte but letters,
/// digits and `-._~:` as `%XX`, so that the API reads the name back whole).
pub fn generator_url(external_url: &str, rule: &str) -> String {
    use std::fmt::Write as _;
    let mut name = String::with_capacity(rule.len());
    for b in rule.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:".contains(&b) {
            name.push(char::from(b));
        } else {
            let _ = write!(name, "%{b:02X}");
        }
    }
    format!("{}/rules/{name}", external_url.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guarantees: the rule's name is percent-encoded as one path segment
    /// after the external URL, whose trailing `/` is not doubled.
    #[test]
    fn generator_url_escapes_the_name() {
        assert_eq!(
            generator_url("", "High rate/5m é"),
            "/rules/High%20rate%2F5m%20%C3%A9"
        );
        assert_eq!(
            generator_url("http://weir:8080/", "a:b"),
            "http://weir:8080/rules/a:b"
        );
    }
}
