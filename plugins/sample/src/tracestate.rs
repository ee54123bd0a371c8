//! The OpenTelemetry entry (`ot=...`) of a W3C `tracestate`: its `th`
//! (rejection threshold) and `rv` (explicit randomness) sub-keys, read and
//! rewritten without disturbing the other vendors' entries or other `ot`
//! sub-keys.
//!
//! A tracestate is `key=value` entries separated by commas (with optional
//! spaces and tabs); the `ot` value is `key:value` sub-keys separated by
//! semicolons: `ot=th:c;rv:9b8233f7e3a151,vendor=x`.

use crate::threshold::{ParseError, Randomness, Threshold};

/// The sampling fields of a span's tracestate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OtSampling {
    /// `th`, the threshold an earlier sampler applied.
    pub threshold: Option<Threshold>,
    /// `rv`, the explicit randomness.
    pub randomness: Option<Randomness>,
}

/// The `ot` entry's value, if the tracestate has one.
fn ot_value(tracestate: &str) -> Option<&str> {
    tracestate.split(',').find_map(|entry| {
        entry
            .trim_matches([' ', '\t'])
            .strip_prefix("ot=")
            .map(|v| v.trim_matches([' ', '\t']))
    })
}

/// Reads `th` and `rv` from a tracestate. A tracestate without an `ot`
/// entry, or an `ot` entry without them, gives `None`s; a `th` or `rv`
/// that is malformed is an error (the item's sampling state cannot be
/// trusted).
pub fn parse(tracestate: &str) -> Result<OtSampling, ParseError> {
    let mut out = OtSampling::default();
    let Some(ot) = ot_value(tracestate) else {
        return Ok(out);
    };
    for field in ot.split(';') {
        if let Some(th) = field.strip_prefix("th:") {
            out.threshold = Some(Threshold::parse(th)?);
        } else if let Some(rv) = field.strip_prefix("rv:") {
            out.randomness = Some(Randomness::parse(rv)?);
        }
    }
    Ok(out)
}

/// `tracestate` (or an empty one) with the `ot` entry's `th` set to
/// `threshold`: the `ot` entry comes first (W3C: an updated entry moves to
/// the front), with `th` first in it and its other sub-keys (`rv` ...) in
/// their order; the other entries follow unchanged.
pub fn with_threshold(tracestate: Option<&str>, threshold: Threshold) -> String {
    let mut out = String::with_capacity(tracestate.map_or(0, str::len) + 24);
    out.push_str("ot=th:");
    out.push_str(&threshold.to_string());
    let Some(tracestate) = tracestate else {
        return out;
    };
    if let Some(ot) = ot_value(tracestate) {
        for field in ot
            .split(';')
            .filter(|f| !f.is_empty() && !f.starts_with("th:"))
        {
            out.push(';');
            out.push_str(field);
        }
    }
    for entry in tracestate.split(',') {
        let entry = entry.trim_matches([' ', '\t']);
        if entry.is_empty() || entry.starts_with("ot=") {
            continue;
        }
        out.push(',');
        out.push_str(entry);
    }
    out
}
