//! OTLP/JSON: the JSON encoding of OTLP requests, as the OTLP specification
//! defines it ("JSON Protobuf Encoding").
//!
//! The rules, on decode and encode:
//!
//! * keys are the lowerCamelCase field names; unknown keys are ignored, and
//!   so is `null` (it means "not set");
//! * trace and span ids are hex strings (any case on decode, lower case on
//!   encode), not base64;
//! * enums are integers; on decode their names (`"SPAN_KIND_SERVER"`) are
//!   accepted too;
//! * 64-bit integers are decimal strings; on decode JSON numbers are
//!   accepted too (and for 32-bit integers, strings too);
//! * doubles are numbers, or `"NaN"`, `"Infinity"`, `"-Infinity"`;
//! * `bytesValue` is base64;
//! * fields left at their default are omitted on encode, except members of
//!   a `oneof` and `optional` fields, which are written whenever set (an
//!   `AnyValue` holding `""` is `{"stringValue":""}`), and messages that are
//!   present but empty, which are written as `{}` (a span with an empty
//!   status keeps it).
//!
//! This module does not use `opentelemetry-proto`'s serde derives: they
//! write non-finite doubles as `null` (which then fails to decode), read
//! `"NaN"` only in summary quantiles, reject objects that omit fields such as
//! `KeyValue.key` or `ArrayValue.values`, and accept no enum names.
//!
//! `encode` writes the text straight from the messages; `decode` parses it
//! with `serde_json` and reads each message out of the parsed document, with
//! the field and scalar readers of `fields`.

mod decode;
mod encode;
mod fields;

pub use decode::{decode_logs, decode_metrics, decode_spans};
pub(crate) use decode::{parse_any_value, parse_entity_refs};
pub use encode::{encode_logs, encode_metrics, encode_spans};
pub(crate) use encode::{write_any_value_to, write_entity_refs_to};
