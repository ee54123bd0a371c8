//! The HTTP headers a user gives an exporter: in `headers`, each written
//! in the file or read from `{ env = .. }` or `{ file = .. }` when the
//! pipeline starts, or read from environment variables
//! (`headers_from_env`) or from files (`headers_from_file`), so secrets
//! stay out of the pipeline file. What is wrong with them across keys
//! ([`UserHeaders::problems`]), and their values ([`UserHeaders::resolve`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use weir_config::{Problem, Sensitive};
use weir_core::ComponentError;

/// The header that names the tenant of Mimir, Cortex, Loki and Tempo.
pub(crate) const TENANT_HEADER: &str = "X-Scope-OrgID";

/// The three places an exporter's headers come from, and its tenant.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UserHeaders<'a> {
    /// `headers`: name -> value, written or read from a secret.
    pub headers: &'a BTreeMap<String, Sensitive>,
    /// `headers_from_env`: name -> environment variable.
    pub from_env: &'a BTreeMap<String, String>,
    /// `headers_from_file`: name -> file.
    pub from_file: &'a BTreeMap<String, PathBuf>,
    /// `tenant`, sent as `X-Scope-OrgID`.
    pub tenant: Option<&'a str>,
}

impl UserHeaders<'_> {
    /// The deprecated keys in use: `headers_from_env` and
    /// `headers_from_file`, which `headers = { NAME = { env = .. } }` and
    /// `{ file = .. }` replace (the form every secret takes).
    pub(crate) fn deprecations(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        let forms = [
            (
                "headers_from_env",
                !self.from_env.is_empty(),
                "env = \"VARIABLE\"",
            ),
            (
                "headers_from_file",
                !self.from_file.is_empty(),
                "file = \"PATH\"",
            ),
        ];
        for (key, used, form) in forms {
            if used {
                out.push(Problem {
                    key: key.to_string(),
                    message: format!("`{key}` is deprecated"),
                    help: format!(
                        "write each header in `headers` as `NAME = {{ {form} }}`; `{key}` will be removed"
                    ),
                });
            }
        }
        out
    }

    /// What is wrong across keys: a header named twice, one of `reserved`
    /// (lower-case names the exporter sets itself for `protocol`, such as
    /// "the remote-write protocol"), `X-Scope-OrgID` given with `tenant`,
    /// an empty tenant.
    pub(crate) fn problems(&self, reserved: &[&str], protocol: &str) -> Vec<Problem> {
        let mut problems = Vec::new();
        let mut seen: BTreeMap<String, &str> = BTreeMap::new();
        let all = [
            ("headers", self.headers.keys().collect::<Vec<_>>()),
            ("headers_from_env", self.from_env.keys().collect()),
            ("headers_from_file", self.from_file.keys().collect()),
        ];
        for (key, names) in all {
            for name in names {
                let lower = name.to_ascii_lowercase();
                if reserved.contains(&lower.as_str()) {
                    problems.push(Problem {
                        key: format!("{key}.{name}"),
                        message: format!("`{name}` is set by {protocol}"),
                        help: "remove it; Weir sends it with the value the protocol requires"
                            .to_string(),
                    });
                }
                if lower == TENANT_HEADER.to_ascii_lowercase() && self.tenant.is_some() {
                    problems.push(Problem {
                        key: format!("{key}.{name}"),
                        message: "`X-Scope-OrgID` is set twice: here and by `tenant`".to_string(),
                        help: "keep one of them".to_string(),
                    });
                }
                if let Some(first) = seen.insert(lower, key) {
                    problems.push(Problem {
                        key: format!("{key}.{name}"),
                        message: format!("header `{name}` is also set in `{first}`"),
                        help: "set each header in one place".to_string(),
                    });
                }
            }
        }
        if self.tenant.is_some_and(|t| t.trim().is_empty()) {
            problems.push(Problem {
                key: "tenant".to_string(),
                message: "the tenant is empty".to_string(),
                help: "name the tenant, or remove the key to send none".to_string(),
            });
        }
        problems
    }

    /// The headers with their values: environment variables and files are
    /// read now, so a missing secret stops the start with an error for
    /// `component` naming it.
    pub(crate) fn resolve(&self, component: &str) -> Result<HeaderMap, ComponentError> {
        let mut values: BTreeMap<&str, (String, String)> = BTreeMap::new();
        for (name, value) in self.headers {
            let from = match value {
                Sensitive::Plain(_) => "`headers`".to_string(),
                Sensitive::Secret(secret) => secret.to_string(),
            };
            values.insert(
                name,
                (value.resolve(component, &format!("headers.{name}"))?, from),
            );
        }
        for (name, variable) in self.from_env {
            let value = std::env::var(variable).map_err(|_| {
                ComponentError::config(
                    component,
                    format!(
                        "`headers_from_env`: header `{name}` is read from the environment \
                         variable `{variable}`, which is not set (or not UTF-8); set it before \
                         starting Weir"
                    ),
                )
            })?;
            values.insert(name, (value, format!("environment variable `{variable}`")));
        }
        for (name, path) in self.from_file {
            let value = read_secret(path).map_err(|e| {
                ComponentError::config(
                    component,
                    format!(
                        "`headers_from_file`: header `{name}` is read from `{}`, which cannot \
                         be read: {e}",
                        path.display()
                    ),
                )
            })?;
            values.insert(name, (value, format!("file `{}`", path.display())));
        }
        if let Some(tenant) = self.tenant {
            values.insert(TENANT_HEADER, (tenant.to_string(), "`tenant`".to_string()));
        }

        let mut map = HeaderMap::new();
        for (name, (value, from)) in values {
            let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                ComponentError::config(
                    component,
                    format!("`{name}` is not a valid HTTP header name"),
                )
            })?;
            let value = HeaderValue::from_str(&value).map_err(|_| {
                ComponentError::config(
                    component,
                    format!(
                        "the value of header `{name}` (from {from}) is not a valid header value"
                    ),
                )
            })?;
            map.insert(header, value);
        }
        Ok(map)
    }
}

/// A secret in a file, without the whitespace around it.
fn read_secret(path: &Path) -> std::io::Result<String> {
    Ok(std::fs::read_to_string(path)?.trim().to_string())
}
