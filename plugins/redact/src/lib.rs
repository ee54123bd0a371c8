//! `redact`: finds personal data and secrets in logs, spans and metric
//! points and masks, hashes or drops them before they are stored or sent.
//!
//! ```toml
//! [processors.redact]
//! type = "wasm"
//! inputs = ["otlp"]
//! # cargo build --release --target wasm32-wasip2 -p redact (in plugins/)
//! path = "redact.wasm"
//! # Never "pass": a batch the plugin fails on would go on unredacted.
//! on_error = "fail"
//!
//! # The plugin's `config` table: what `config = { ... }` holds, one key a line.
//! [processors.redact.config]
//! # Built-in detectors, all nine here; README.md says what each finds.
//! presets = ["email", "credit_card", "ipv4", "ipv6", "jwt", "bearer",
//!            "aws_access_key", "iban", "phone"]
//! # Detectors of your own, in Rust `regex` syntax.
//! rules = [{ name = "order_ref", regex = "ORD-[0-9]{8}" }]
//! # What a finding becomes: "mask" (the default), "hash" or "drop" ...
//! action = "mask"
//! # ... and per rule.
//! actions = { email = "hash", jwt = "drop" }
//! # The HMAC key of "hash": a secret of 16 characters or more.
//! hash_key = "3b9f0c7e5a1d4e2f8c6b0a9d7e5f3c1a"
//! # What "mask" writes; {rule} is the rule's name. The default.
//! mask = "[REDACTED:{rule}]"
//! # Log bodies are redacted (the default) ...
//! body = true
//! # ... and these attributes of every signal ("*": every key) ...
//! attributes = ["user.email", "http.request.header.authorization"]
//! resource_attributes = ["host.name"]
//! # ... but never these, under "*" (a final `*` makes a prefix).
//! # allow_keys = ["http.route", "k8s.*"]
//! ```
//!
//! How a batch goes through: [`Redact`]'s `process` reads `body` (logs only)
//! as one [`Text`] and each attribute key to redact as one list (the keys
//! named, or under `"*"` the batch's `attribute-keys` less `allow_keys`), runs
//! every value through the [`Redactor`] (one DFA pass over all rules tells
//! which may match; their regexes and checks find the matches), and writes
//! back each column or key at most once, only when something changed.
//! The counts per rule go to the `redacted` counter once per batch
//! ([`counters`]).
//!
//! The modules: [`config`] (what the user writes, checked into a
//! [`Plan`]), [`keys`] (which attribute keys), [`presets`] and [`checks`]
//! (the built-in detectors),
//! [`redactor`] (one string), [`columns`] (one column), [`hash`] (the keyed
//! hash), [`counters`] (the metric).

pub mod checks;
pub mod columns;
pub mod config;
pub mod counters;
pub mod hash;
pub mod keys;
pub mod presets;
pub mod redactor;

#[cfg(test)]
mod tests;

use weir_plugin::{AttributeSet, Batch, Error, Plugin, Signal, Text, export_plugin};

pub use config::{Action, ConfigError, Plan, RedactConfig};
pub use keys::{AllowKeys, Keys};
pub use redactor::{Outcome, Redactor};

/// The plugin: the compiled rules and where to apply them.
#[derive(Debug)]
pub struct Redact {
    redactor: Redactor,
    body: bool,
    attributes: Keys,
    resource_attributes: Keys,
    allow_keys: AllowKeys,
}

impl Redact {
    /// The plugin for a checked [`Plan`].
    pub fn new(plan: Plan) -> Result<Self, ConfigError> {
        Ok(Redact {
            redactor: Redactor::new(plan.rules, plan.hash)?,
            body: plan.body,
            attributes: plan.attributes,
            resource_attributes: plan.resource_attributes,
            allow_keys: plan.allow_keys,
        })
    }

    /// The plugin for the config's JSON text.
    pub fn from_json(config: &str) -> Result<Self, ConfigError> {
        Redact::new(RedactConfig::parse(config)?.resolve()?)
    }
}

impl Plugin for Redact {
    fn init(config: &str) -> Result<Self, Error> {
        Ok(Redact::from_json(config)?)
    }

    fn process(&mut self, batch: &mut Batch<'_>) -> Result<(), Error> {
        // Counts of a batch that failed half-way are not reported.
        self.redactor.take_counts();
        if batch.num_rows() == 0 {
            return Ok(());
        }
        if self.body && batch.signal() == Signal::Logs {
            redact_text(&mut self.redactor, batch, "body")?;
        }
        for (set, keys) in [
            (AttributeSet::Record, &self.attributes),
            (AttributeSet::Resource, &self.resource_attributes),
        ] {
            let keys = keys.in_batch(&self.allow_keys, || batch.attribute_keys(set))?;
            for key in keys.iter() {
                redact_attribute(&mut self.redactor, batch, set, key)?;
            }
        }
        let counts = self.redactor.take_counts();
        let names = self.redactor.rules().iter().map(|r| r.name.as_str());
        counters::report(names.zip(counts));
        Ok(())
    }
}

/// Redacts the text column `name` in place, writing it only if it changed.
fn redact_text(redactor: &mut Redactor, batch: &mut Batch<'_>, name: &str) -> Result<(), Error> {
    let column: Text = batch.text(name)?;
    match columns::redact_text(redactor, &column) {
        Some(new) => batch.set_text(name, new),
        None => Ok(()),
    }
}

/// Redacts attribute `key` of `set` in place, with one `set-attribute` at
/// most. A key a `drop` rule matched in some rows is removed from every
/// row and set again in the others (the contract removes a key from all
/// rows at once); there it moves to the end of the row's attributes and
/// becomes a string.
fn redact_attribute(
    redactor: &mut Redactor,
    batch: &mut Batch<'_>,
    set: AttributeSet,
    key: &str,
) -> Result<(), Error> {
    let values = batch.attribute(set, key)?;
    let Some(edit) = columns::redact_values(redactor, &values) else {
        return Ok(());
    };
    if !edit.drops() {
        return batch.set_attribute(set, key, &edit.rewritten);
    }
    batch.remove_attribute(set, key)?;
    let kept = edit.restored(&values);
    if kept.iter().any(Option::is_some) {
        batch.set_attribute(set, key, &kept)?;
    }
    Ok(())
}

export_plugin!(Redact);
