//! Reading a plugin's config: the JSON text [`Plugin::init`] receives into
//! the plugin's own settings type ([`parse_json`], feature `config`, on by
//! default), and the durations and sizes such settings hold
//! ([`duration_ns`], [`byte_size`]).
//!
//! ```
//! # #[cfg(feature = "config")] {
//! use weir_plugin::config::{duration_ns, parse_json};
//!
//! #[derive(Debug, serde::Deserialize)]
//! struct Settings {
//!     interval: String,
//! }
//!
//! let settings: Settings = parse_json(r#"{"interval":"1m30s"}"#).expect("valid");
//! assert_eq!(duration_ns(&settings.interval), Ok(90_000_000_000));
//!
//! let err = parse_json::<Settings>(r#"{"interval":15}"#).expect_err("a number");
//! assert_eq!(err.path, "interval");
//! assert_eq!(
//!     err.to_string(),
//!     "config key `interval`: invalid type: integer `15`, expected a string"
//! );
//! # }
//! ```
//!
//! [`Plugin::init`]: crate::Plugin::init

pub use crate::units::{byte_size, duration_ns};

#[cfg(feature = "config")]
pub use json::{ConfigPathError, parse_json};

#[cfg(feature = "config")]
mod json {
    use std::fmt;

    use serde::de::DeserializeOwned;

    /// A config that does not fit the settings type: where, and what is
    /// wrong. Shown as ``config key `path`: message``.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ConfigPathError {
        /// The key path of the value at fault, as written in the pipeline
        /// file's `config` table: `tail.policies[1].threshold`; `.` when
        /// the config as a whole is at fault.
        pub path: String,
        /// What is wrong, as serde says it (``unknown field `colour`,
        /// expected one of ...``), without a position in the JSON text:
        /// the host made that text, so a line and column in it would point
        /// nowhere in the user's file.
        pub message: String,
    }

    impl fmt::Display for ConfigPathError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "config key `{}`: {}", self.path, self.message)
        }
    }

    impl std::error::Error for ConfigPathError {}

    /// Parses the JSON text [`Plugin::init`](crate::Plugin::init) receives
    /// into `T`.
    ///
    /// # Errors
    ///
    /// A [`ConfigPathError`] naming the key path of the first value that
    /// does not fit `T` (a wrong type, an unknown field with
    /// `deny_unknown_fields`, a missing field) and what is wrong with it.
    pub fn parse_json<T: DeserializeOwned>(json: &str) -> Result<T, ConfigPathError> {
        let mut de = serde_json::Deserializer::from_str(json);
        serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            let message = e.into_inner().to_string();
            let message = match message.rsplit_once(" at line ") {
                Some((m, _)) => m.to_string(),
                None => message,
            };
            ConfigPathError { path, message }
        })
    }
}

#[cfg(all(test, feature = "config"))]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;

    use super::parse_json;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Settings {
        name: String,
        #[serde(default)]
        rules: Vec<Rule>,
        #[serde(default)]
        limits: BTreeMap<String, u32>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)] // read by serde only: its type is what is tested
    struct Rule {
        regex: String,
    }

    /// Guarantees: a config that fits parses into the settings type.
    #[test]
    fn parses_a_config_that_fits() {
        let s: Settings =
            parse_json(r#"{"name":"a","rules":[{"regex":"x"}],"limits":{"b":2}}"#).expect("fits");
        assert_eq!(s.name, "a");
        assert_eq!(s.rules.len(), 1);
        assert_eq!(s.limits["b"], 2);
    }

    /// Guarantees: an error names the key path of the value at fault,
    /// through lists and maps, and says what is wrong without serde_json's
    /// position in the host's JSON text.
    #[test]
    fn an_error_names_the_key_and_no_position() {
        let at = |json: &str| parse_json::<Settings>(json).expect_err(json);

        let e = at(r#"{"name":"a","rules":[{"regex":"x"},{"regex":7}]}"#);
        assert_eq!(e.path, "rules[1].regex");
        assert_eq!(e.message, "invalid type: integer `7`, expected a string");
        assert_eq!(
            e.to_string(),
            "config key `rules[1].regex`: invalid type: integer `7`, expected a string"
        );

        let e = at(r#"{"name":"a","limits":{"b":-1}}"#);
        assert_eq!(e.path, "limits.b");

        let e = at(r#"{"name":"a","colour":"red"}"#);
        assert_eq!(e.path, "colour");
        assert!(e.message.starts_with("unknown field `colour`"), "{e}");

        for json in [r#"{"rules":[]}"#, r#"{"name":"a""#, "[1]"] {
            let e = at(json);
            assert!(!e.message.contains(" at line "), "{json}: {e}");
        }
        assert_eq!(at(r#"{"rules":[]}"#).message, "missing field `name`");
    }
}
