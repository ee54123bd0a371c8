//! One request to a backend over HTTP, and what its answer means: 2xx
//! taken; the statuses of [`RetryOn`] may pass (with the receiver's
//! `Retry-After`, in seconds or as an HTTP date); other 4xx and 5xx refused
//! for good, quoting the first bytes of the body; no connection or no
//! answer in time may pass. Every reason names the URL. The exporters that
//! speak HTTP (remote write, Loki, OTLP/HTTP) share it.

use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use weir_core::redact::{self, error_chain};

/// The most bytes of a refusal's body quoted in its reason.
const BODY_QUOTE_BYTES: usize = 512;

/// The most bytes of a 2xx answer's body read (an OTLP partial success is
/// a few hundred bytes): a receiver cannot make Weir buffer more.
const MAX_ANSWER_BYTES: usize = 1 << 20;

/// The HTTP client of the exporters, with the user's settings in
/// `builder`: it does not follow redirects (a 3xx is refused, so that
/// neither a body nor credentials go somewhere the pipeline does not name).
pub(crate) fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .user_agent(concat!("weir/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
}

/// The first `max` bytes of `response`'s body (more are not read).
pub(crate) async fn read_capped(
    mut response: reqwest::Response,
    max: usize,
) -> Result<Bytes, reqwest::Error> {
    let mut body = BytesMut::new();
    while body.len() < max {
        match response.chunk().await? {
            Some(chunk) => body.extend_from_slice(&chunk[..chunk.len().min(max - body.len())]),
            None => break,
        }
    }
    Ok(body.freeze())
}

/// How one request ended, when the receiver did not take it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// Worth another try, after at least this long if the receiver said.
    Retryable(String, Option<Duration>),
    /// The receiver refused the request and would refuse it again.
    Refused(String),
}

/// Which answers besides no answer at all may pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RetryOn {
    /// Every 5xx and 429 (remote write, Loki).
    ServerErrors,
    /// 429, 502, 503 and 504 only, as the OTLP/HTTP specification lists
    /// them; another 5xx is refused for good.
    Unavailable,
}

impl RetryOn {
    fn may_pass(self, status: StatusCode) -> bool {
        match self {
            RetryOn::ServerErrors => {
                status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS
            }
            RetryOn::Unavailable => matches!(status.as_u16(), 429 | 502 | 503 | 504),
        }
    }
}

/// How long the start-time check waits for a backend.
pub(crate) const PREFLIGHT_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether an error's text (its whole chain) says the TLS handshake failed
/// on the certificate: a failure no retry mends.
fn is_certificate_failure(chain: &str) -> bool {
    let lower = chain.to_ascii_lowercase();
    [
        "certificate",
        "unknownissuer",
        "notvalidforname",
        "badsignature",
    ]
    .iter()
    .any(|needle| lower.contains(needle))
}

/// The start-time check of an HTTPS backend (see
/// [`crate::Exporter::preflight`]): a `HEAD` request, whose answer, any
/// status, proves the TLS handshake.
pub(crate) async fn preflight(client: &reqwest::Client, url: &str) -> Result<(), String> {
    if !url.starts_with("https://") {
        return Ok(());
    }
    match client.head(url).timeout(PREFLIGHT_TIMEOUT).send().await {
        Ok(_) => Ok(()),
        Err(e) => judge_preflight(url, &e.without_url()),
    }
}

/// What a failed start-time check means: a certificate failure stops the
/// start (what to fix); anything else is logged and left to the retries.
pub(crate) fn judge_preflight(url: &str, error: &dyn std::error::Error) -> Result<(), String> {
    let chain = error_chain(error);
    let url = redact::url(url);
    if is_certificate_failure(&chain) {
        Err(format!(
            "the TLS handshake with {url} failed on its certificate: {chain}; trust the CA \
             that signed it with `tls.ca_file`, or fix the endpoint's host name"
        ))
    } else {
        tracing::warn!(url = %url, error = %chain, "the backend cannot be reached now; the sink will retry as it sends");
        Ok(())
    }
}

/// Posts `body` to `url` with `headers`, waiting at most `timeout`; the
/// body of a 2xx answer is returned.
pub(crate) async fn post(
    client: &reqwest::Client,
    url: &str,
    headers: &HeaderMap,
    timeout: Duration,
    body: Vec<u8>,
    retry_on: RetryOn,
) -> Result<Bytes, Failure> {
    let request = client
        .post(url)
        .headers(headers.clone())
        .timeout(timeout)
        .body(body);
    let shown = redact::url(url);
    let url = &shown;
    let response = match request.send().await {
        Ok(r) => r,
        Err(e) => {
            let e = e.without_url();
            let what = if e.is_timeout() {
                format!(
                    "no answer from {url} within {}",
                    humantime::format_duration(timeout)
                )
            } else {
                format!("cannot send to {url}")
            };
            return Err(Failure::Retryable(
                format!("{what}: {}", error_chain(&e)),
                None,
            ));
        }
    };
    let status = response.status();
    if status.is_success() {
        return read_capped(response, MAX_ANSWER_BYTES).await.map_err(|e| {
            Failure::Retryable(
                format!(
                    "{url} answered HTTP {status} but its body cannot be read: {}",
                    error_chain(&e.without_url())
                ),
                None,
            )
        });
    }
    let after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| retry_after(v, SystemTime::now()));
    let body = read_capped(response, BODY_QUOTE_BYTES)
        .await
        .unwrap_or_default();
    let quoted = String::from_utf8_lossy(&body);
    let quoted = quoted.trim();
    if retry_on.may_pass(status) {
        Err(Failure::Retryable(
            format!("{url} answered HTTP {status}: {quoted}"),
            after,
        ))
    } else {
        Err(Failure::Refused(format!(
            "{url} refused the request with HTTP {status}: {quoted}"
        )))
    }
}

/// A `Retry-After` value: a number of seconds, or an HTTP date (then the
/// time left until it from `now`, zero if it passed).
pub(crate) fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guarantees: remote write and Loki retry every 5xx and 429, OTLP only
    /// 429, 502, 503 and 504; no 4xx but 429 passes.
    #[test]
    fn which_statuses_may_pass() {
        let passes =
            |on: RetryOn, code: u16| on.may_pass(StatusCode::from_u16(code).expect("valid status"));
        for code in [429, 500, 501, 502, 503, 504] {
            assert!(passes(RetryOn::ServerErrors, code), "{code}");
        }
        for code in [429, 502, 503, 504] {
            assert!(passes(RetryOn::Unavailable, code), "{code}");
        }
        for code in [500, 501, 505] {
            assert!(!passes(RetryOn::Unavailable, code), "{code}");
        }
        for code in [400, 401, 403, 404, 413] {
            assert!(!passes(RetryOn::ServerErrors, code), "{code}");
            assert!(!passes(RetryOn::Unavailable, code), "{code}");
        }
    }

    /// Guarantees: `Retry-After` reads as seconds or as an HTTP date
    /// relative to now; garbage reads as nothing.
    #[test]
    fn retry_after_seconds_and_dates() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").expect("valid date");
        assert_eq!(retry_after("2", now), Some(Duration::from_secs(2)));
        assert_eq!(retry_after(" 120 ", now), Some(Duration::from_secs(120)));
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("soon", now), None);
    }
}
