//! Drops DEBUG and lower logs and masks the digits of log bodies.
//!
//! ```toml
//! [processors.redact]
//! type = "wasm"
//! inputs = ["otlp.logs"]
//! path = "redact_rust.wasm"
//! config = { mask = "#" }   # the character digits become; default "#"
//! ```
//!
//! Severity numbers 1 to 8 are TRACE and DEBUG; 0 (unspecified) is kept.

use weir_plugin::{Batch, Error, Plugin, export_plugin};

/// The plugin: its one setting is the mask character.
pub struct Redact {
    mask: char,
}

impl Plugin for Redact {
    fn init(config: &str) -> Result<Self, Error> {
        // `{"mask":"X"}`: the one setting, found without a JSON parser.
        let mask = match config.split_once("\"mask\"") {
            None => '#',
            Some((_, rest)) => {
                let mut chars = rest.split('"').nth(1).unwrap_or_default().chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => c,
                    _ => {
                        return Err(Error::InvalidArgument(
                            "`mask` must be a one-character string".into(),
                        ));
                    }
                }
            }
        };
        Ok(Redact { mask })
    }

    fn process(&mut self, batch: &mut Batch<'_>) -> Result<(), Error> {
        batch.retain_by_ints("severity_number", |s| !matches!(s, Some(1..=8)))?;
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let mask = self.mask;
        if mask.is_ascii() {
            // One byte for one byte: rewrite the whole column in one pass.
            let mut body = batch.text("body")?;
            if body.replace_ascii(|b| b.is_ascii_digit(), mask) > 0 {
                batch.set_text("body", body)?;
            }
        } else {
            batch.map_strings("body", |body| mask_digits(body, mask))?;
        }
        Ok(())
    }
}

/// `body` with every ASCII digit replaced by `mask` (any character), or
/// `None` when it has none. Digits are single bytes that never occur inside
/// a multi-byte character, so the text between them is copied in runs.
pub fn mask_digits(body: &str, mask: char) -> Option<String> {
    let first = body.bytes().position(|b| b.is_ascii_digit())?;
    let mut out = String::with_capacity(body.len() + 8);
    out.push_str(&body[..first]);
    let mut run = first;
    for (i, b) in body.bytes().enumerate().skip(first) {
        if b.is_ascii_digit() {
            out.push_str(&body[run..i]);
            out.push(mask);
            run = i + 1;
        }
    }
    out.push_str(&body[run..]);
    Some(out)
}

export_plugin!(Redact);

#[cfg(test)]
mod tests {
    use super::*;
    use weir_plugin::harness;

    const INPUT: &str = r#"{"resourceLogs":[{"resource":{"attributes":[
        {"key":"service.name","value":{"stringValue":"cart"}}]},
      "scopeLogs":[{"logRecords":[
        {"severityNumber":5,"body":{"stringValue":"debug 1"}},
        {"severityNumber":1,"body":{"stringValue":"trace 2"}},
        {"severityNumber":9,"body":{"stringValue":"card 4111 1111"}},
        {"severityNumber":17,"body":{"stringValue":"no digits"}},
        {"body":{"stringValue":"unspecified 7"}}]}]}]}"#;

    /// Guarantees: DEBUG and TRACE records are dropped, digits are masked,
    /// everything else is untouched.
    #[test]
    fn drops_debug_and_masks_digits() {
        let out = harness::run::<Redact>("{}", INPUT).expect("runs");
        let expected = harness::logs(
            r#"{"resourceLogs":[{"resource":{"attributes":[
                {"key":"service.name","value":{"stringValue":"cart"}}]},
              "scopeLogs":[{"logRecords":[
                {"severityNumber":9,"body":{"stringValue":"card #### ####"}},
                {"severityNumber":17,"body":{"stringValue":"no digits"}},
                {"body":{"stringValue":"unspecified #"}}]}]}]}"#,
        )
        .expect("valid");
        assert_eq!(out.table, expected);
        assert!(out.emitted.is_empty());
    }

    /// Guarantees: the mask comes from the config; a bad one is refused.
    #[test]
    fn mask_is_configurable() {
        let out = harness::run::<Redact>(r#"{"mask":"*"}"#, INPUT).expect("runs");
        assert_eq!(
            out.table.strings("body").expect("body")[0].as_deref(),
            Some("card **** ****")
        );
        // A mask of more than one byte takes the per-value path.
        let out = harness::run::<Redact>(r#"{"mask":"•"}"#, INPUT).expect("runs");
        assert_eq!(
            out.table.strings("body").expect("body")[0].as_deref(),
            Some("card •••• ••••")
        );
        assert!(Redact::init(r#"{"mask":""}"#).is_err());
        assert!(Redact::init(r#"{"mask":"ab"}"#).is_err());
    }
}
