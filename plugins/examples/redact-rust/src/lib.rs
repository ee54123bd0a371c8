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
        batch.map_strings("body", |body| {
            body.contains(|c: char| c.is_ascii_digit()).then(|| {
                body.chars()
                    .map(|c| if c.is_ascii_digit() { mask } else { c })
                    .collect()
            })
        })?;
        Ok(())
    }
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
        assert!(Redact::init(r#"{"mask":""}"#).is_err());
        assert!(Redact::init(r#"{"mask":"ab"}"#).is_err());
    }
}
