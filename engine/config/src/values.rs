//! How values that are not plain TOML types are written: durations, sizes,
//! socket addresses, bounded counts, paths and URLs.
//!
//! Each function here is a serde `deserialize_with` helper. Their error
//! messages are complete sentences that say what was expected and how to
//! write it; the decoder places them under the offending value.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer};

use crate::Sensitive;

/// The largest `max_request_size` accepted: a request is held in memory
/// whole, so anything above this is a typo rather than a plan.
pub const MAX_REQUEST_SIZE_LIMIT: u64 = 4 * 1024 * 1024 * 1024;

/// Bounds for `queue_capacity` (batches).
pub const QUEUE_CAPACITY_RANGE: (u64, u64) = (1, 65_536);

/// Bounds for `max_concurrent_requests`.
pub const CONCURRENT_REQUESTS_RANGE: (u64, u64) = (1, 1_000_000);

struct DurationVisitor;

impl Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a duration string such as \"200ms\", \"30s\" or \"5m\"")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
        humantime::parse_duration(v).map_err(|e| {
            E::custom(format!(
                "`{v}` is not a duration ({e}); write a number and a unit, \
                 such as \"200ms\", \"30s\" or \"5m\""
            ))
        })
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
        Err(E::custom(format!(
            "a duration needs a unit: write \"{v}s\" for {v} seconds or \"{v}ms\" for milliseconds"
        )))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
        Err(E::custom(format!(
            "a duration needs a unit: write \"{v}s\" for {v} seconds or \"{v}ms\" for milliseconds"
        )))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Duration, E> {
        Err(E::custom(format!(
            "a duration needs a unit: write it as a string such as \"{v}s\""
        )))
    }
}

/// A duration written as a human string: `"200ms"`, `"30s"`, `"5m"`,
/// `"1h 30m"`. Zero (`"0s"`) is allowed.
pub fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    d.deserialize_any(DurationVisitor)
}

/// Like [`duration`], but zero is refused.
pub fn positive_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let value = d.deserialize_any(DurationVisitor)?;
    if value.is_zero() {
        return Err(de::Error::custom(
            "must be longer than zero, such as \"1s\"",
        ));
    }
    Ok(value)
}

/// An optional [`positive_duration`]; absent means `None`.
pub fn optional_positive_duration<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Duration>, D::Error> {
    positive_duration(d).map(Some)
}

struct SizeVisitor;

impl Visitor<'_> for SizeVisitor {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a size such as \"8MiB\", \"4MB\" or a number of bytes")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
        v.trim()
            .parse::<bytesize::ByteSize>()
            .map(|b| b.0)
            .map_err(|_| {
                E::custom(format!(
                    "`{v}` is not a size: write a number and a unit such as \
                     \"8MiB\", \"512KiB\" or \"4MB\", or a plain number of bytes"
                ))
            })
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
        u64::try_from(v).map_err(|_| E::custom(format!("a size cannot be negative ({v})")))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
        Ok(v)
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<u64, E> {
        Err(E::custom(format!(
            "{v} bytes is far more than the limit of 4GiB"
        )))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<u64, E> {
        Err(E::custom(format!(
            "{v} bytes is far more than the limit of 4GiB"
        )))
    }
}

/// The most bytes a single OTLP request may carry: a human size string
/// (`"8MiB"`, `"4MB"`) or a plain integer number of bytes, from 1 byte to
/// 4GiB.
pub fn request_size<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let bytes = d.deserialize_any(SizeVisitor)?;
    if bytes == 0 {
        return Err(de::Error::custom(
            "must be at least 1 byte; the default is \"8MiB\"",
        ));
    }
    if bytes > MAX_REQUEST_SIZE_LIMIT {
        return Err(de::Error::custom(format!(
            "{bytes} bytes is more than the limit of 4GiB; requests are held in memory whole"
        )));
    }
    Ok(bytes)
}

/// Any positive size: a human size string (`"64MiB"`) or a plain integer
/// number of bytes.
pub fn byte_size<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let bytes = d.deserialize_any(SizeVisitor)?;
    if bytes == 0 {
        return Err(de::Error::custom("must be at least 1 byte"));
    }
    Ok(bytes)
}

/// An optional positive size, as [`byte_size`].
pub fn optional_byte_size<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    byte_size(d).map(Some)
}

struct CountVisitor {
    min: u64,
    max: u64,
}

impl Visitor<'_> for CountVisitor {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an integer from {} to {}", self.min, self.max)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<usize, E> {
        match u64::try_from(v) {
            Ok(v) => self.visit_u64(v),
            Err(_) => Err(self.out_of_range(v)),
        }
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<usize, E> {
        if v < self.min || v > self.max {
            return Err(self.out_of_range(v));
        }
        usize::try_from(v).map_err(|_| self.out_of_range(v))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<usize, E> {
        Err(self.out_of_range(v))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<usize, E> {
        Err(self.out_of_range(v))
    }
}

impl CountVisitor {
    fn out_of_range<E: de::Error>(&self, v: impl fmt::Display) -> E {
        E::custom(format!(
            "must be an integer from {} to {}, not {v}",
            self.min, self.max
        ))
    }
}

/// A channel capacity in batches, from 1 to 65536.
pub fn queue_capacity<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    let (min, max) = QUEUE_CAPACITY_RANGE;
    d.deserialize_any(CountVisitor { min, max })
}

/// A count of requests in flight at once, from 1 to 1000000.
pub fn concurrent_requests<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    let (min, max) = CONCURRENT_REQUESTS_RANGE;
    d.deserialize_any(CountVisitor { min, max })
}

/// A whole number from `min` to `max`, for a component's own bounded
/// counts: `fn batch(d) -> Result<usize, _> { values::count(d, 1, 10_000) }`.
pub fn count<'de, D: Deserializer<'de>>(d: D, min: u64, max: u64) -> Result<usize, D::Error> {
    d.deserialize_any(CountVisitor { min, max })
}

struct AddressVisitor;

impl Visitor<'_> for AddressVisitor {
    type Value = SocketAddr;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an address string such as \"127.0.0.1:4317\"")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<SocketAddr, E> {
        if let Ok(addr) = v.parse::<SocketAddr>() {
            return Ok(addr);
        }
        let hint = match v.rsplit_once(':') {
            None => "add a port, such as \"0.0.0.0:4317\"".to_string(),
            Some((_, port)) if port.parse::<u16>().is_err() => {
                format!("`{port}` is not a port number (0 to 65535)")
            }
            Some((host, _)) if host.parse::<std::net::IpAddr>().is_err() => {
                let ip = if host == "localhost" {
                    "127.0.0.1"
                } else {
                    "0.0.0.0 (all interfaces)"
                };
                format!(
                    "host names are not resolved here: use an IP address such as {ip}; \
                     IPv6 goes in brackets, as in \"[::1]:4317\""
                )
            }
            Some(_) => "IPv6 addresses go in brackets, as in \"[::1]:4317\"".to_string(),
        };
        Err(E::custom(format!(
            "`{v}` is not an IP:PORT address: {hint}"
        )))
    }
}

/// A socket address written `"IP:PORT"`, such as `"0.0.0.0:4317"` or
/// `"[::1]:4317"`.
pub fn socket_addr<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    d.deserialize_any(AddressVisitor)
}

/// Why `v` is not an `http://` or `https://` URL with a host, if it is not.
pub fn http_url_problem(v: &str) -> Option<String> {
    let rest = v
        .strip_prefix("http://")
        .or_else(|| v.strip_prefix("https://"));
    let Some(rest) = rest else {
        return Some(format!(
            "`{v}` is not an HTTP URL: write one starting with http:// or https://, \
             such as \"http://alertmanager:9093\""
        ));
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() || host.starts_with(':') || v.chars().any(char::is_whitespace) {
        return Some(format!(
            "`{v}` has no host or holds spaces: write one such as \"http://alertmanager:9093\""
        ));
    }
    None
}

struct UrlVisitor;

impl Visitor<'_> for UrlVisitor {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an http:// or https:// URL string")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        match http_url_problem(v) {
            Some(problem) => Err(E::custom(problem)),
            None => Ok(v.to_string()),
        }
    }
}

/// An `http://` or `https://` URL with a host.
pub fn http_url<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    d.deserialize_any(UrlVisitor)
}

/// A URL that may hold a secret ([`Sensitive`]): written in the file it
/// must be an `http://` or `https://` URL with a host, as for
/// [`http_url`]; read from the environment or a file it is checked when
/// read ([`Sensitive::resolve_http_url`]).
pub fn sensitive_http_url<'de, D: Deserializer<'de>>(d: D) -> Result<Sensitive, D::Error> {
    let value = Sensitive::deserialize(d)?;
    if let Some(problem) = value.plain().and_then(http_url_problem) {
        return Err(de::Error::custom(problem));
    }
    Ok(value)
}

/// An optional [`duration`]; absent means `None`.
pub fn optional_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    duration(d).map(Some)
}

/// An optional [`http_url`]; absent means `None`.
pub fn optional_http_url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    http_url(d).map(Some)
}

struct PathVisitor;

impl Visitor<'_> for PathVisitor {
    type Value = PathBuf;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a file path string")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<PathBuf, E> {
        if v.trim().is_empty() {
            return Err(E::custom(
                "a path cannot be empty; write one such as \"telemetry.jsonl\"",
            ));
        }
        Ok(PathBuf::from(v))
    }
}

/// A non-empty file path.
pub fn path<'de, D: Deserializer<'de>>(d: D) -> Result<PathBuf, D::Error> {
    d.deserialize_any(PathVisitor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::IntoDeserializer;
    use serde::de::value::Error;

    fn de<'a>(v: impl IntoDeserializer<'a, Error>) -> impl Deserializer<'a, Error = Error> {
        v.into_deserializer()
    }

    /// Guarantees: durations parse from human strings and integers are
    /// refused with a hint that shows the string to write.
    #[test]
    fn durations() {
        assert_eq!(duration(de("200ms")), Ok(Duration::from_millis(200)));
        assert_eq!(duration(de("0s")), Ok(Duration::ZERO));
        let err = duration(de(30i64)).expect_err("integers need a unit");
        assert!(err.to_string().contains("\"30s\""), "{err}");
        let err = duration(de("5 parsecs")).expect_err("parsecs is not a unit");
        assert!(
            err.to_string().contains("`5 parsecs` is not a duration"),
            "{err}"
        );
        assert!(positive_duration(de("0s")).is_err());
    }

    /// Guarantees: sizes accept IEC and SI units and plain bytes, and refuse
    /// zero, negatives, garbage and absurd sizes.
    #[test]
    fn sizes() {
        assert_eq!(request_size(de("8MiB")), Ok(8 * 1024 * 1024));
        assert_eq!(request_size(de("4MB")), Ok(4_000_000));
        assert_eq!(request_size(de(1024i64)), Ok(1024));
        assert!(request_size(de(0i64)).is_err());
        assert!(request_size(de(-5i64)).is_err());
        assert!(request_size(de("lots")).is_err());
        assert!(request_size(de("5GiB")).is_err());
    }

    /// Guarantees: counts outside their bounds are refused, naming the bounds.
    #[test]
    fn counts() {
        assert_eq!(queue_capacity(de(32i64)), Ok(32));
        let err = queue_capacity(de(0i64)).expect_err("zero capacity");
        assert!(err.to_string().contains("from 1 to 65536, not 0"), "{err}");
        assert!(queue_capacity(de(65_537i64)).is_err());
        let err = queue_capacity(de(u128::MAX)).expect_err("huge");
        assert!(err.to_string().contains("from 1 to 65536"), "{err}");
        assert!(concurrent_requests(de(-1i64)).is_err());
    }

    /// Guarantees: addresses parse; host names and missing ports get a hint.
    #[test]
    fn addresses() {
        assert!(socket_addr(de("0.0.0.0:4317")).is_ok());
        assert!(socket_addr(de("[::1]:4317")).is_ok());
        let err = socket_addr(de("localhost:4317")).expect_err("host names are refused");
        assert!(err.to_string().contains("127.0.0.1"), "{err}");
        let err = socket_addr(de("nope")).expect_err("no port");
        assert!(err.to_string().contains("add a port"), "{err}");
        let err = socket_addr(de("1.2.3.4:http")).expect_err("bad port");
        assert!(err.to_string().contains("not a port number"), "{err}");
    }

    /// Guarantees: empty paths are refused.
    #[test]
    fn paths() {
        assert_eq!(path(de("a.jsonl")), Ok(PathBuf::from("a.jsonl")));
        assert!(path(de("")).is_err());
    }
}
