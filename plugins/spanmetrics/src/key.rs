//! Series keys: everything that tells one series from another, packed in
//! a few bytes so that a span's series is found with one hash lookup and
//! no allocation.
//!
//! A key is a tag byte, then the resource (each `resource_attributes`
//! value, then `service.name`), then the dimensions the plan keeps: the
//! span name, kind and status code, then each extra dimension. Text is
//! written as its length (4 bytes) and its bytes; a value that may be
//! missing has a presence byte first. The resource comes first, so the
//! keys of one resource are neighbours in sorted order. [`Labels`] reads
//! a key back when the metrics are emitted.

use crate::config::Plan;

/// The first byte of a span's series key.
const SERIES: u8 = 0;

/// The key of the one overflow series.
pub const OVERFLOW: &[u8] = &[1];

/// The kind stored for a kind number OTLP does not define: every such
/// span shares one series, as they share one name (`""`).
const UNKNOWN: i32 = -1;

/// The connector's name of a span kind (`traceutil.SpanKindStr`).
pub fn kind_name(kind: i32) -> &'static str {
    match kind {
        0 => "SPAN_KIND_UNSPECIFIED",
        1 => "SPAN_KIND_INTERNAL",
        2 => "SPAN_KIND_SERVER",
        3 => "SPAN_KIND_CLIENT",
        4 => "SPAN_KIND_PRODUCER",
        5 => "SPAN_KIND_CONSUMER",
        _ => "",
    }
}

/// The connector's name of a status code (`traceutil.StatusCodeStr`).
pub fn status_name(code: i32) -> &'static str {
    match code {
        0 => "STATUS_CODE_UNSET",
        1 => "STATUS_CODE_OK",
        2 => "STATUS_CODE_ERROR",
        _ => "",
    }
}

/// A kind column value as stored: a missing kind is unspecified (0).
pub fn kind_of(value: Option<i64>) -> i32 {
    match value.unwrap_or(0) {
        k @ 0..=5 => k as i32,
        _ => UNKNOWN,
    }
}

/// A status column value as stored: a span without a status is unset.
pub fn status_of(value: Option<i64>) -> i32 {
    match value.unwrap_or(0) {
        c @ 0..=2 => c as i32,
        _ => UNKNOWN,
    }
}

/// Writes one span's key into a reused buffer.
#[derive(Debug, Default)]
pub struct KeyWriter {
    buf: Vec<u8>,
}

impl KeyWriter {
    /// Starts a new key.
    pub fn start(&mut self) {
        self.buf.clear();
        self.buf.push(SERIES);
    }

    /// Appends text that is always there.
    pub fn text(&mut self, value: &str) {
        self.buf
            .extend_from_slice(&(value.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(value.as_bytes());
    }

    /// Appends text that may be missing.
    pub fn maybe(&mut self, value: Option<&str>) {
        match value {
            None => self.buf.push(0),
            Some(v) => {
                self.buf.push(1);
                self.text(v);
            }
        }
    }

    /// Appends a kind or status as [`kind_of`] / [`status_of`] give it.
    pub fn code(&mut self, value: i32) {
        self.buf.extend_from_slice(&value.to_le_bytes());
    }

    /// The key so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }
}

/// A series key read back: what goes on the resource and the data point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Labels<'a> {
    /// The bytes of the key that make the resource: keys with equal
    /// bytes here share a resource.
    pub resource_key: &'a [u8],
    /// Each `resource_attributes` value, `None` where the span's resource
    /// lacked it.
    pub resource: Vec<Option<&'a str>>,
    /// `service.name`.
    pub service: &'a str,
    /// `span.name`, unless excluded.
    pub span_name: Option<&'a str>,
    /// `span.kind`'s name, unless excluded.
    pub span_kind: Option<&'static str>,
    /// `status.code`'s name, unless excluded.
    pub status_code: Option<&'static str>,
    /// Each extra dimension's value, `None` where it is left out.
    pub dimensions: Vec<Option<&'a str>>,
}

/// Reads a key written for `plan`; `None` for the overflow key or a key
/// that does not fit the plan.
pub fn labels<'a>(plan: &Plan, key: &'a [u8]) -> Option<Labels<'a>> {
    let mut r = Reader { key, at: 0 };
    if r.byte()? != SERIES {
        return None;
    }
    let resource = plan
        .resource_attributes
        .iter()
        .map(|_| r.maybe())
        .collect::<Option<Vec<_>>>()?;
    let service = r.text()?;
    let resource_key = &key[..r.at];
    let d = plan.defaults;
    let span_name = if d.span_name { Some(r.text()?) } else { None };
    let span_kind = if d.span_kind {
        Some(kind_name(r.code()?))
    } else {
        None
    };
    let status_code = if d.status_code {
        Some(status_name(r.code()?))
    } else {
        None
    };
    let dimensions = plan
        .dimensions
        .iter()
        .map(|_| r.maybe())
        .collect::<Option<Vec<_>>>()?;
    (r.at == key.len()).then_some(Labels {
        resource_key,
        resource,
        service,
        span_name,
        span_kind,
        status_code,
        dimensions,
    })
}

struct Reader<'a> {
    key: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let out = self.key.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(out)
    }

    fn byte(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn code(&mut self) -> Option<i32> {
        let b = self.take(4)?;
        Some(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn text(&mut self) -> Option<&'a str> {
        let len = self.code()? as u32 as usize;
        std::str::from_utf8(self.take(len)?).ok()
    }

    fn maybe(&mut self) -> Option<Option<&'a str>> {
        match self.byte()? {
            0 => Some(None),
            1 => self.text().map(Some),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guarantees: a key reads back to the values it was written from,
    /// and the resource part is the key's prefix.
    #[test]
    fn keys_read_back() {
        let plan = Plan::from_json(
            r#"{"resource_attributes": ["deployment.environment.name"],
                "dimensions": [{"name": "http.method"}, {"name": "http.route"}]}"#,
        )
        .expect("plan");
        let mut w = KeyWriter::default();
        w.start();
        w.maybe(Some("prod"));
        w.text("checkout");
        w.text("GET /cart");
        w.code(kind_of(Some(2)));
        w.code(status_of(None));
        w.maybe(Some("GET"));
        w.maybe(None);
        let key = w.as_bytes().to_vec();
        let l = labels(&plan, &key).expect("labels");
        assert_eq!(l.resource, [Some("prod")]);
        assert_eq!(l.service, "checkout");
        assert_eq!(l.span_name, Some("GET /cart"));
        assert_eq!(l.span_kind, Some("SPAN_KIND_SERVER"));
        assert_eq!(l.status_code, Some("STATUS_CODE_UNSET"));
        assert_eq!(l.dimensions, [Some("GET"), None]);
        assert!(key.starts_with(l.resource_key));
        assert_eq!(labels(&plan, OVERFLOW), None);
        assert_eq!(labels(&plan, &key[..key.len() - 1]), None);
    }

    /// Guarantees: kinds and statuses are named as the connector names
    /// them, and unknown numbers share one series named `""`.
    #[test]
    fn kinds_and_statuses_are_named_like_the_connector() {
        let kinds: Vec<&str> = (0..=5).map(|k| kind_name(kind_of(Some(k)))).collect();
        assert_eq!(
            kinds,
            [
                "SPAN_KIND_UNSPECIFIED",
                "SPAN_KIND_INTERNAL",
                "SPAN_KIND_SERVER",
                "SPAN_KIND_CLIENT",
                "SPAN_KIND_PRODUCER",
                "SPAN_KIND_CONSUMER"
            ]
        );
        assert_eq!(kind_of(None), 0);
        assert_eq!(kind_of(Some(9)), kind_of(Some(-3)));
        assert_eq!(kind_name(kind_of(Some(9))), "");
        let statuses: Vec<&str> = (0..=2).map(|c| status_name(status_of(Some(c)))).collect();
        assert_eq!(
            statuses,
            ["STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR"]
        );
        assert_eq!(status_name(status_of(None)), "STATUS_CODE_UNSET");
        assert_eq!(status_name(status_of(Some(7))), "");
    }
}
