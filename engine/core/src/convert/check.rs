//! Which requests and records can be converted: the size limits that keep
//! a batch within Arrow's 32-bit offsets, the checks of ids and times that
//! refuse a record, and the tally of refused records.

use opentelemetry_proto::tonic::common::v1::KeyValue;

use super::ConvertError;

/// The largest OTLP request (protobuf bytes) converted in one go. A string
/// column holds at most 2 GiB; the string forms of attribute values take at
/// most about ten times the bytes of their protobuf encoding.
pub const MAX_REQUEST_BYTES: usize = 128 << 20;

/// The most bytes the denormalised resource and scope attribute keys may
/// take in one batch.
const MAX_REPEATED_BYTES: usize = 1 << 30;

/// Refuses requests whose batch would overflow Arrow's 32-bit offsets.
/// `repeated` is the bytes of resource and scope attribute keys times the
/// rows they are copied to.
pub(crate) fn check_size(encoded_len: usize, repeated: usize) -> Result<(), ConvertError> {
    if encoded_len > MAX_REQUEST_BYTES {
        return Err(ConvertError::TooLarge(format!(
            "the request is {encoded_len} bytes of OTLP protobuf; at most {MAX_REQUEST_BYTES} \
             are converted at once: send smaller requests (lower the exporter's batch size)"
        )));
    }
    if repeated > MAX_REPEATED_BYTES {
        return Err(ConvertError::TooLarge(format!(
            "the resource and scope attribute keys of this request, copied onto each of its \
             records, would take {repeated} bytes (at most {MAX_REPEATED_BYTES}): send fewer \
             records per request"
        )));
    }
    Ok(())
}

/// The bytes of the keys of `attrs`.
pub(crate) fn key_bytes(attrs: &[KeyValue]) -> usize {
    attrs.iter().map(|kv| kv.key.len()).sum()
}

/// The records refused so far.
#[derive(Debug, Default)]
pub(crate) struct Rejections {
    pub count: u64,
    pub first: Option<String>,
}

impl Rejections {
    /// Counts one refused record; keeps the reason when it is the first.
    pub fn add(&mut self, location: impl FnOnce() -> String, why: String) {
        self.count += 1;
        if self.first.is_none() {
            self.first = Some(format!("{}: {why}", location()));
        }
    }
}

/// Checks that a time fits the `Timestamp(Nanosecond)` columns.
pub(crate) fn check_time(what: &str, nanos: u64) -> Result<(), String> {
    if nanos > i64::MAX as u64 {
        return Err(format!(
            "{what} is {nanos}, after the year 2262 (above i64::MAX nanoseconds): \
             send nanoseconds since the Unix epoch"
        ));
    }
    Ok(())
}

/// Checks an id: `width` bytes, or empty when `optional`.
pub(crate) fn check_id(what: &str, id: &[u8], width: usize, optional: bool) -> Result<(), String> {
    if id.len() == width || (optional && id.is_empty()) {
        return Ok(());
    }
    let allowed = if optional {
        format!("{width} bytes or empty")
    } else {
        format!("{width} bytes")
    };
    Err(format!(
        "{what} has {} bytes, it must be {allowed}",
        id.len()
    ))
}

/// Checks an id that must be present and not all zero (OTLP calls both
/// invalid for spans).
pub(crate) fn check_required_id(what: &str, id: &[u8], width: usize) -> Result<(), String> {
    check_id(what, id, width, false)?;
    if id.iter().all(|b| *b == 0) {
        return Err(format!(
            "{what} is all zeroes, which OTLP defines as invalid"
        ));
    }
    Ok(())
}
