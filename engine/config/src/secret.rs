//! Settings that hold secrets: passwords, tokens, and the URLs and HTTP
//! headers that carry them (chat webhooks put their token in the URL).
//!
//! A [`Secret`] is read from the environment (`{ env = "VARIABLE" }`) or a
//! file (`{ file = "PATH" }`) when Weir starts, so it stays out of the
//! pipeline file. A [`Sensitive`] setting may also be written as a plain
//! string, for values that are secret only sometimes (a webhook URL, an
//! HTTP header). Either way, [`Sensitive::resolve`] gives the value or a
//! configuration error naming the component, the key and what to do.

use std::fmt;
use std::path::PathBuf;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use weir_core::ComponentError;

/// Where a secret is read from when Weir starts: `{ env = "VARIABLE" }` or
/// `{ file = "PATH" }` (the file's content without surrounding whitespace).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum Secret {
    /// An environment variable.
    Env(String),
    /// A file.
    File(PathBuf),
}

impl Secret {
    /// The secret's value, or what the user must fix, naming where it was
    /// looked for.
    pub fn read(&self) -> Result<String, String> {
        match self {
            Secret::Env(name) => match std::env::var(name) {
                Ok(value) if !value.is_empty() => Ok(value),
                Ok(_) => Err(format!("the environment variable `{name}` is empty")),
                Err(_) => Err(format!(
                    "the environment variable `{name}` is not set (or not UTF-8); set it before \
                     starting Weir"
                )),
            },
            Secret::File(path) => match std::fs::read_to_string(path) {
                Ok(value) if !value.trim().is_empty() => Ok(value.trim().to_string()),
                Ok(_) => Err(format!("the file `{}` is empty", path.display())),
                Err(e) => Err(format!("cannot read `{}`: {e}", path.display())),
            },
        }
    }
}

impl fmt::Display for Secret {
    /// Where the secret comes from (never its value).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Secret::Env(name) => write!(f, "the environment variable `{name}`"),
            Secret::File(path) => write!(f, "the file `{}`", path.display()),
        }
    }
}

/// A setting that may hold a secret: a plain string written in the pipeline
/// file, or a [`Secret`] read when Weir starts, such as
/// `url = { env = "SLACK_WEBHOOK_URL" }` or
/// `headers = { Authorization = { file = "/run/secrets/hook-token" } }`.
///
/// Its `Debug` form never shows a value.
#[derive(Clone, PartialEq, Eq)]
pub enum Sensitive {
    /// Written in the pipeline file.
    Plain(String),
    /// Read from the environment or a file.
    Secret(Secret),
}

impl Sensitive {
    /// The value, or what the user must fix.
    pub fn read(&self) -> Result<String, String> {
        match self {
            Sensitive::Plain(value) => Ok(value.clone()),
            Sensitive::Secret(secret) => secret.read(),
        }
    }

    /// The value of the setting `key` of `component`, or a configuration
    /// error naming both and what to do.
    pub fn resolve(&self, component: &str, key: &str) -> Result<String, ComponentError> {
        self.read()
            .map_err(|message| ComponentError::config(component, format!("`{key}`: {message}")))
    }

    /// Like [`Sensitive::resolve`], for an `http://` or `https://` URL with
    /// a host. The message of a bad URL read from a secret does not quote
    /// it, since it may hold a token.
    pub fn resolve_http_url(&self, component: &str, key: &str) -> Result<String, ComponentError> {
        let url = self.resolve(component, key)?;
        match crate::values::http_url_problem(&url) {
            None => Ok(url),
            Some(problem) => Err(ComponentError::config(
                component,
                match self {
                    Sensitive::Plain(_) => format!("`{key}`: {problem}"),
                    Sensitive::Secret(secret) => format!(
                        "`{key}`: the value of {secret} is not an http:// or https:// URL with \
                         a host; write one there, such as \"https://hooks.example.com/T0/B0\""
                    ),
                },
            )),
        }
    }

    /// The plain value, when it is written in the pipeline file.
    pub fn plain(&self) -> Option<&str> {
        match self {
            Sensitive::Plain(value) => Some(value),
            Sensitive::Secret(_) => None,
        }
    }
}

impl fmt::Debug for Sensitive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Sensitive::Plain(_) => f.write_str("Plain(\"…\")"),
            Sensitive::Secret(secret) => f.debug_tuple("Secret").field(secret).finish(),
        }
    }
}

impl From<String> for Sensitive {
    fn from(value: String) -> Self {
        Sensitive::Plain(value)
    }
}

impl From<&str> for Sensitive {
    fn from(value: &str) -> Self {
        Sensitive::Plain(value.to_string())
    }
}

impl From<Secret> for Sensitive {
    fn from(secret: Secret) -> Self {
        Sensitive::Secret(secret)
    }
}

struct SensitiveVisitor;

impl<'de> Visitor<'de> for SensitiveVisitor {
    type Value = Sensitive;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, { env = \"VARIABLE\" } or { file = \"PATH\" }")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Sensitive, E> {
        Ok(Sensitive::Plain(v.to_string()))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Sensitive, A::Error> {
        const FORMS: &[&str] = &["env", "file"];
        let Some(key) = map.next_key::<String>()? else {
            return Err(de::Error::custom(
                "the table is empty: write { env = \"VARIABLE\" } or { file = \"PATH\" }",
            ));
        };
        let secret = match key.as_str() {
            "env" => Secret::Env(map.next_value()?),
            "file" => Secret::File(map.next_value()?),
            other => return Err(de::Error::unknown_variant(other, FORMS)),
        };
        if let Some(extra) = map.next_key::<String>()? {
            return Err(de::Error::custom(format!(
                "`{extra}` is given besides `{key}`: a secret comes from one place, \
                 {{ env = \"VARIABLE\" }} or {{ file = \"PATH\" }}"
            )));
        }
        Ok(Sensitive::Secret(secret))
    }
}

impl<'de> Deserialize<'de> for Sensitive {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SensitiveVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Holder {
        value: Sensitive,
    }

    fn parse(toml: &str) -> Result<Sensitive, String> {
        toml::from_str::<Holder>(toml)
            .map(|h| h.value)
            .map_err(|e| e.to_string())
    }

    /// Guarantees: a sensitive setting is a plain string, `{ env = .. }` or
    /// `{ file = .. }`; any other key or shape is refused with the forms
    /// it accepts.
    #[test]
    fn three_forms_and_nothing_else() {
        assert_eq!(parse(r#"value = "x""#), Ok(Sensitive::Plain("x".into())));
        assert_eq!(
            parse(r#"value = { env = "TOKEN" }"#),
            Ok(Sensitive::Secret(Secret::Env("TOKEN".into())))
        );
        assert_eq!(
            parse(r#"value = { file = "/run/token" }"#),
            Ok(Sensitive::Secret(Secret::File("/run/token".into())))
        );
        let typo = parse(r#"value = { envv = "TOKEN" }"#).expect_err("unknown key");
        assert!(
            typo.contains("unknown variant `envv`, expected `env` or `file`"),
            "{typo}"
        );
        let both = parse(r#"value = { env = "A", file = "B" }"#).expect_err("two places");
        assert!(both.contains("`file` is given besides `env`"), "{both}");
        assert!(parse("value = {}").is_err());
        let number = parse("value = 3").expect_err("not a string");
        assert!(number.contains("{ env = \"VARIABLE\" }"), "{number}");
    }

    /// Guarantees: values are read from the environment and from files
    /// (trimmed); a missing variable is a configuration error naming the
    /// component, the key and the variable, saying to set it; `Debug` never
    /// shows a plain value.
    #[test]
    fn resolves_or_says_what_to_set() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("token");
        std::fs::write(&path, "s3cret\n").expect("write");
        let from_file = Sensitive::Secret(Secret::File(path));
        assert_eq!(from_file.resolve("hook", "url").expect("read"), "s3cret");
        assert_eq!(
            Sensitive::from("plain")
                .resolve("hook", "url")
                .expect("plain"),
            "plain"
        );

        let missing = Sensitive::Secret(Secret::Env("WEIR_TEST_SECRET_NEVER_SET".into()));
        let err = missing
            .resolve("hook", "headers.Authorization")
            .expect_err("not set")
            .to_string();
        assert_eq!(
            err,
            "configuration of `hook`: `headers.Authorization`: the environment variable \
             `WEIR_TEST_SECRET_NEVER_SET` is not set (or not UTF-8); set it before starting Weir"
        );
        assert_eq!(format!("{:?}", Sensitive::from("hunter2")), "Plain(\"…\")");
    }
}
