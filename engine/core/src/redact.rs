//! Text that may hold secrets, made fit for logs, error messages and metric
//! labels.
//!
//! A sink's URL can carry credentials: user information
//! (`https://user:password@host`), a token in the query, or a token that
//! is the path itself (a chat webhook). What Weir logs, returns in errors
//! and puts in labels shows a URL's scheme, host and port only.

/// `url` as logs and labels show it: the scheme, host and port; the user
/// information, path, query and fragment are left out (a path or query is
/// shown as `/…`).
pub fn url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, url),
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let more = if rest[end..].trim_start_matches('/').is_empty() {
        ""
    } else {
        "/…"
    };
    match scheme {
        Some(scheme) => format!("{scheme}://{host}{more}"),
        None => format!("{host}{more}"),
    }
}

/// The text of `error` and of every error under it, joined by `: `.
/// Errors that name the URL they were about (reqwest's) must be given
/// without it (`reqwest::Error::without_url`).
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guarantees: credentials in the user information, the path or the
    /// query never appear; scheme, host and port do.
    #[test]
    fn urls_lose_what_can_hold_a_secret() {
        assert_eq!(
            url("https://hooks.example.com/services/T000/B000/XXXXXXXX"),
            "https://hooks.example.com/…"
        );
        assert_eq!(
            url("http://admin:hunter2@alertmanager:9093/api/v2/alerts"),
            "http://alertmanager:9093/…"
        );
        assert_eq!(url("https://loki:3100?token=s3cret"), "https://loki:3100/…");
        assert_eq!(url("http://127.0.0.1:9093"), "http://127.0.0.1:9093");
        assert_eq!(url("http://127.0.0.1:9093/"), "http://127.0.0.1:9093");
        assert_eq!(url("user:pw@host:1/x"), "host:1/…");
        for shown in [
            url("https://u:hunter2@h/p?token=s3cret"),
            url("https://h/s3cret#hunter2"),
        ] {
            assert!(
                !shown.contains("hunter2") && !shown.contains("s3cret"),
                "{shown}"
            );
        }
    }
}
