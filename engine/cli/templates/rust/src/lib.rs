//! `{{name}}`: a Weir processor plugin.
//!
//! Build it with `weir plugin build` (or `cargo build --release --target
//! wasm32-wasip2`) and add it to a pipeline:
//!
//! ```toml
//! [processors.{{ident}}]
//! type = "wasm"
//! inputs = ["otlp"]
//! path = "{{name}}/{{name}}.wasm"
//! config = { tag = "{{name}}" }
//! ```

use weir_plugin::{AttributeSet, Batch, Error, Plugin, export_plugin};

/// The plugin's state, made by `init` from the pipeline's `config` table.
pub struct {{Type}} {
    tag: String,
}

impl Plugin for {{Type}} {
    /// `config` is the `config` table of the pipeline as JSON text.
    fn init(config: &str) -> Result<Self, Error> {
        // `{"tag":"..."}`: the one setting, found without a JSON parser.
        let tag = match config.split_once("\"tag\"") {
            None => "{{name}}".to_string(),
            Some((_, rest)) => rest.split('"').nth(1).unwrap_or_default().to_string(),
        };
        if tag.is_empty() {
            return Err(Error::InvalidArgument("`tag` must not be empty".into()));
        }
        Ok({{Type}} { tag })
    }

    /// Called for every batch: logs, spans or metric points.
    fn process(&mut self, batch: &mut Batch<'_>) -> Result<(), Error> {
        // Drop rows by a column's value, for example TRACE logs:
        //   batch.retain_by_ints("severity_number", |s| !matches!(s, Some(1..=4)))?;
        // Rewrite a text column:
        //   batch.map_strings("body", |body| body.contains("secret").then(|| "***".into()))?;
        batch.set_attribute_all(AttributeSet::Record, "processed_by", &self.tag)
    }
}

export_plugin!({{Type}});

#[cfg(test)]
mod tests {
    use super::*;
    use weir_plugin::harness;

    /// Guarantees: every record is tagged with the configured tag.
    #[test]
    fn tags_every_record() {
        let input = r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[
            {"severityNumber":9,"body":{"stringValue":"hello"}}]}]}]}"#;
        let out = harness::run::<{{Type}}>(r#"{"tag":"t1"}"#, input).expect("runs");
        assert_eq!(
            out.table.strings("body").expect("body"),
            [Some("hello".to_string())]
        );
        assert!(harness::run::<{{Type}}>(r#"{"tag":""}"#, input).is_err());
    }
}
