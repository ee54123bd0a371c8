//! What a user writes in the processor's `config = { ... }` table
//! ([`RedactConfig`], parsed from the JSON the host hands to `init`), and
//! the checked plan it resolves into ([`Plan`]). Every mistake is a
//! [`ConfigError`] naming the key to fix.

use std::collections::BTreeMap;
use std::fmt;

use regex::Regex;
use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use weir_plugin::config::parse_json;

use crate::hash::KeyedHash;
use crate::keys::{AllowKeys, Allowed, Keys};
use crate::presets::Preset;

/// The plugin's settings, as written in the pipeline file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct RedactConfig {
    /// Built-in detectors to run, by name: `email`, `credit_card`, `ipv4`,
    /// `ipv6`, `jwt`, `bearer`, `aws_access_key`, `iban`, `phone`.
    /// Default: none.
    #[serde(default)]
    pub presets: Vec<String>,
    /// Detectors of your own: `[{ name = "order_ref", regex =
    /// "ORD-[0-9]{8}" }]`, in the syntax of Rust's `regex` crate. The name
    /// labels the counter and the mask. Default: none.
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
    /// What a rule does with what it finds, unless `actions` says
    /// otherwise: `"mask"`, `"hash"` or `"drop"`. Default `"mask"`.
    #[serde(default)]
    pub action: Action,
    /// The action of single rules, by preset or rule name: `{ email =
    /// "hash", jwt = "drop" }`. Default: none, every rule uses `action`.
    #[serde(default)]
    pub actions: BTreeMap<String, Action>,
    /// Whether log bodies (column `body`) are redacted. Default `true`.
    /// Spans and metric points have no body.
    #[serde(default = "default_body")]
    pub body: bool,
    /// The record attributes to redact, by key: `["user.email",
    /// "http.request.header.authorization"]`, or `"*"` for every key of
    /// every record (`["*"]` too). Default: none.
    #[serde(default, deserialize_with = "keys")]
    pub attributes: Vec<String>,
    /// The resource attributes to redact, by key: `["host.name"]`, or
    /// `"*"` for every key. Default: none.
    #[serde(default, deserialize_with = "keys")]
    pub resource_attributes: Vec<String>,
    /// What `mask` puts in place of a finding (and `drop` in place of a
    /// whole body); `{rule}` becomes the rule's name. Default
    /// `"[REDACTED:{rule}]"`.
    #[serde(default = "default_mask")]
    pub mask: String,
    /// The secret key of the `hash` action: at least 16 characters,
    /// required when a rule hashes. Default: none.
    #[serde(default)]
    pub hash_key: Option<String>,
    /// Attribute keys never touched under `"*"` (in `attributes` or
    /// `resource_attributes`), whatever the rules find in them: exact keys
    /// (`"http.route"`), or prefixes ending in `*` (`"k8s.*"`: every key
    /// starting with `k8s.`). Default: none.
    #[serde(default)]
    pub allow_keys: Vec<String>,
}

/// One custom rule of `rules`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct RuleConfig {
    /// The rule's name: letters, digits, `_`, `-` and `.`, unique among
    /// presets and rules. Labels the counter and fills the mask's `{rule}`.
    pub name: String,
    /// What the rule finds: a regex in the syntax of Rust's `regex` crate.
    /// Every match is redacted; it must not match empty text.
    pub regex: String,
}

/// What a rule does with a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Replace the finding by the `mask` text: `[REDACTED:email]`.
    #[default]
    Mask,
    /// Replace the finding by a keyed hash of it, the same for the same
    /// value everywhere: `[HASH:email:3f1c9a0d2b7e4c55]`.
    Hash,
    /// Drop the whole attribute; a log body becomes the `mask` text.
    Drop,
}

fn default_body() -> bool {
    true
}

/// The default of `mask`.
pub const DEFAULT_MASK: &str = "[REDACTED:{rule}]";

fn default_mask() -> String {
    DEFAULT_MASK.to_string()
}

/// The shortest `hash_key`, in bytes: a short key can be found by trying.
pub const MIN_HASH_KEY: usize = 16;

/// The key that means "every attribute" in `attributes`, and that ends a
/// prefix in `allow_keys`.
const EVERY_KEY: &str = "*";

/// `attributes` as a list of keys, or one string (`"*"`) as a list of one.
fn keys<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    struct Keys;
    impl<'de> Visitor<'de> for Keys {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list of attribute keys, or \"*\" for every key")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(vec![v.to_string()])
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(key) = seq.next_element::<String>()? {
                out.push(key);
            }
            Ok(out)
        }
    }
    d.deserialize_any(Keys)
}

/// A mistake in the config, with the key to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The JSON does not fit the keys and types above.
    #[error("config key `{path}`: {message}")]
    Invalid {
        /// Where: `rules[0].regex`, or `.` for the table itself.
        path: String,
        /// What serde found.
        message: String,
    },
    /// A name in `presets` that is not a preset.
    #[error("config key `presets`: there is no preset `{name}`; the presets are {known}")]
    UnknownPreset {
        /// The name given.
        name: String,
        /// Every preset's name.
        known: String,
    },
    /// A custom rule whose regex does not compile.
    #[error("config key `rules`: rule `{name}`: the regex `{regex}` does not compile: {error}")]
    BadRegex {
        /// The rule's name.
        name: String,
        /// The regex given.
        regex: String,
        /// The regex crate's words.
        error: String,
    },
    /// A custom rule whose regex matches empty text.
    #[error(
        "config key `rules`: rule `{name}`: the regex `{regex}` matches empty text, so it \
         would redact everywhere; make it match at least one character (`+` rather than `*`)"
    )]
    EmptyMatch {
        /// The rule's name.
        name: String,
        /// The regex given.
        regex: String,
    },
    /// A rule name that is empty or has other characters.
    #[error(
        "config key `rules`: the rule name `{name}` is not allowed; use letters, digits, `_`, \
         `-` and `.` (it labels the counter `weir_plugin_redacted{{rule=...}}`)"
    )]
    BadRuleName {
        /// The name given.
        name: String,
    },
    /// Two rules of one name (a rule named like an enabled preset, say).
    #[error(
        "config key `rules`: the name `{name}` is used twice (a preset in `presets` or another \
         rule); give each rule its own name"
    )]
    DuplicateRule {
        /// The name given twice.
        name: String,
    },
    /// `actions` names no enabled rule.
    #[error(
        "config key `actions`: `{name}` is not a rule of this config; name a preset of `presets` \
         or a rule of `rules`: {known}"
    )]
    UnknownActionRule {
        /// The name given.
        name: String,
        /// The rules there are.
        known: String,
    },
    /// A rule hashes and there is no key.
    #[error(
        "config key `hash_key` is required: rule `{rule}` hashes (action \"hash\"); give a secret \
         of at least {MIN_HASH_KEY} characters, e.g. the output of `openssl rand -hex 16`, \
         and keep it out of version control"
    )]
    MissingHashKey {
        /// The first rule that hashes.
        rule: String,
    },
    /// A hash key too short to be secret.
    #[error(
        "config key `hash_key`: {len} bytes is too short; give at least {MIN_HASH_KEY} \
         (e.g. the output of `openssl rand -hex 16`), or anyone can find the key by trying"
    )]
    ShortHashKey {
        /// The key's length in bytes.
        len: usize,
    },
    /// No preset and no rule.
    #[error(
        "config keys `presets` and `rules`: nothing to redact; name at least one preset \
         (presets = [\"email\"]) or rule (rules = [{{ name = \"...\", regex = \"...\" }}])"
    )]
    NoRules,
    /// Neither bodies nor attributes to look at.
    #[error(
        "config keys `body`, `attributes` and `resource_attributes`: nothing to look at; \
         leave `body` at true or name attribute keys"
    )]
    NoTargets,
    /// An empty attribute key.
    #[error("config key `{key}`: an attribute key cannot be empty")]
    EmptyKey {
        /// `attributes` or `resource_attributes`.
        key: &'static str,
    },
    /// `"*"` in a list beside other keys.
    #[error(
        "config key `{key}`: \"*\" already means every key, so `{other}` needs no listing; \
         write {key} = \"*\" alone, and name the keys to leave alone in `allow_keys`"
    )]
    EveryKeyAndOthers {
        /// `attributes` or `resource_attributes`.
        key: &'static str,
        /// The first other key listed.
        other: String,
    },
    /// A key named in `attributes` (or `resource_attributes`) that
    /// `allow_keys` also leaves alone.
    #[error(
        "config keys `{key}` and `allow_keys`: `{attribute}` is both redacted (in `{key}`) and \
         left alone (by `allow_keys` entry `{entry}`); remove it from one of them"
    )]
    NamedAndAllowed {
        /// `attributes` or `resource_attributes`.
        key: &'static str,
        /// The attribute key.
        attribute: String,
        /// The `allow_keys` entry that matches it.
        entry: String,
    },
    /// `allow_keys` without `"*"`: it would do nothing.
    #[error(
        "config key `allow_keys`: it only exempts keys from \"*\", and neither `attributes` \
         nor `resource_attributes` is \"*\"; remove `allow_keys`, or set attributes = \"*\""
    )]
    AllowWithoutEvery,
    /// An `allow_keys` entry with `*` elsewhere than at its end.
    #[error(
        "config key `allow_keys`: in `{entry}`, `*` may only end an entry, as a prefix: \
         \"k8s.*\" leaves every key starting with `k8s.` alone; other patterns are not supported"
    )]
    AllowPattern {
        /// The entry given.
        entry: String,
    },
    /// `allow_keys` entry `"*"`: every key left alone.
    #[error(
        "config key `allow_keys`: \"*\" would leave every key alone; name the keys (or \
         prefixes such as \"k8s.*\") to leave alone, or name the keys to redact in \
         `attributes` instead of \"*\""
    )]
    AllowEverything,
    /// The rules together are too large for one automaton.
    #[error("config keys `presets` and `rules`: the rules together are too large: {0}")]
    TooLarge(String),
    /// A preset that does not compile: a bug in this plugin.
    #[error("preset `{name}` does not compile ({error}); this is a bug in the redact plugin")]
    Internal {
        /// The preset.
        name: &'static str,
        /// The regex crate's words.
        error: String,
    },
}

impl From<ConfigError> for weir_plugin::Error {
    fn from(e: ConfigError) -> Self {
        match e {
            ConfigError::Internal { .. } => weir_plugin::Error::Failed(e.to_string()),
            _ => weir_plugin::Error::InvalidArgument(e.to_string()),
        }
    }
}

/// One rule, checked and compiled.
#[derive(Debug, Clone)]
pub struct RuleSpec {
    /// The preset's or rule's name.
    pub name: String,
    /// Finds candidates.
    pub regex: Regex,
    /// The preset that checks a candidate; custom rules take every match.
    pub preset: Option<Preset>,
    /// What happens to a finding.
    pub action: Action,
    /// The `mask` text with the name filled in.
    pub mask: String,
}

/// The config, checked: what [`crate::Redact`] runs.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The presets in [`Preset::ALL`]'s order, then the custom rules in
    /// the config's order; earlier ones win a tie.
    pub rules: Vec<RuleSpec>,
    /// Whether log bodies are redacted.
    pub body: bool,
    /// The record attribute keys to redact.
    pub attributes: Keys,
    /// The resource attribute keys to redact.
    pub resource_attributes: Keys,
    /// The keys `"*"` leaves alone.
    pub allow_keys: AllowKeys,
    /// The `hash` action's key, when a rule hashes.
    pub hash: Option<KeyedHash>,
}

impl RedactConfig {
    /// Parses the JSON text `init` receives.
    pub fn parse(json: &str) -> Result<Self, ConfigError> {
        parse_json(json).map_err(|e| ConfigError::Invalid {
            path: e.path,
            message: e.message,
        })
    }

    /// Checks everything and compiles the rules.
    pub fn resolve(self) -> Result<Plan, ConfigError> {
        let attributes = attribute_keys("attributes", self.attributes)?;
        let resource_attributes = attribute_keys("resource_attributes", self.resource_attributes)?;
        if !self.body && attributes.is_empty() && resource_attributes.is_empty() {
            return Err(ConfigError::NoTargets);
        }
        let allow_keys = allow_keys(self.allow_keys, &attributes, &resource_attributes)?;

        let mut presets = Vec::new();
        for name in &self.presets {
            let preset = Preset::from_name(name).ok_or_else(|| ConfigError::UnknownPreset {
                name: name.clone(),
                known: Preset::names(),
            })?;
            if !presets.contains(&preset) {
                presets.push(preset);
            }
        }
        let mut named: Vec<(String, Regex, Option<Preset>)> = Vec::new();
        for preset in Preset::ALL.into_iter().filter(|p| presets.contains(p)) {
            let regex = Regex::new(&preset.pattern()).map_err(|e| ConfigError::Internal {
                name: preset.name(),
                error: e.to_string(),
            })?;
            named.push((preset.name().to_string(), regex, Some(preset)));
        }
        for rule in self.rules {
            let ok_name = !rule.name.is_empty()
                && rule
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
            if !ok_name {
                return Err(ConfigError::BadRuleName { name: rule.name });
            }
            if named.iter().any(|(n, _, _)| *n == rule.name) {
                return Err(ConfigError::DuplicateRule { name: rule.name });
            }
            let regex = Regex::new(&rule.regex).map_err(|e| ConfigError::BadRegex {
                name: rule.name.clone(),
                regex: rule.regex.clone(),
                error: regex_error(&e),
            })?;
            if regex.is_match("") {
                return Err(ConfigError::EmptyMatch {
                    name: rule.name,
                    regex: rule.regex,
                });
            }
            named.push((rule.name, regex, None));
        }
        if named.is_empty() {
            return Err(ConfigError::NoRules);
        }
        if let Some(name) = self
            .actions
            .keys()
            .find(|k| !named.iter().any(|(n, _, _)| n == *k))
        {
            let known: Vec<&str> = named.iter().map(|(n, _, _)| n.as_str()).collect();
            return Err(ConfigError::UnknownActionRule {
                name: name.clone(),
                known: known.join(", "),
            });
        }

        let rules: Vec<RuleSpec> = named
            .into_iter()
            .map(|(name, regex, preset)| RuleSpec {
                action: self.actions.get(&name).copied().unwrap_or(self.action),
                mask: self.mask.replace("{rule}", &name),
                name,
                regex,
                preset,
            })
            .collect();
        let hash = match (
            rules.iter().find(|r| r.action == Action::Hash),
            self.hash_key,
        ) {
            (None, _) => None,
            (Some(rule), None) => {
                return Err(ConfigError::MissingHashKey {
                    rule: rule.name.clone(),
                });
            }
            (Some(_), Some(key)) if key.len() < MIN_HASH_KEY => {
                return Err(ConfigError::ShortHashKey { len: key.len() });
            }
            (Some(_), Some(key)) => Some(KeyedHash::new(key.as_bytes())),
        };
        Ok(Plan {
            rules,
            body: self.body,
            attributes,
            resource_attributes,
            allow_keys,
            hash,
        })
    }
}

/// The keys of `attributes` or `resource_attributes`: `"*"` (alone), or
/// the keys listed, each once.
fn attribute_keys(key: &'static str, given: Vec<String>) -> Result<Keys, ConfigError> {
    if given.iter().any(|k| k == EVERY_KEY) {
        return match given.into_iter().find(|k| k != EVERY_KEY) {
            Some(other) => Err(ConfigError::EveryKeyAndOthers { key, other }),
            None => Ok(Keys::Every),
        };
    }
    let mut out: Vec<String> = Vec::with_capacity(given.len());
    for k in given {
        if k.is_empty() {
            return Err(ConfigError::EmptyKey { key });
        }
        if !out.contains(&k) {
            out.push(k);
        }
    }
    Ok(Keys::Named(out))
}

/// The entries of `allow_keys`, checked: each an exact key or a prefix
/// ending in `*`, naming no key listed in `attributes` or
/// `resource_attributes`, and given only when one of them is `"*"`.
fn allow_keys(
    given: Vec<String>,
    attributes: &Keys,
    resource_attributes: &Keys,
) -> Result<AllowKeys, ConfigError> {
    let mut entries: Vec<(String, Allowed)> = Vec::with_capacity(given.len());
    for entry in given {
        let allowed = match entry.strip_suffix(EVERY_KEY) {
            _ if entry.is_empty() => return Err(ConfigError::EmptyKey { key: "allow_keys" }),
            Some("") => return Err(ConfigError::AllowEverything),
            Some(prefix) if !prefix.contains(EVERY_KEY) => Allowed::Prefix(prefix.to_string()),
            None if !entry.contains(EVERY_KEY) => Allowed::Key(entry.clone()),
            _ => return Err(ConfigError::AllowPattern { entry }),
        };
        if !entries.iter().any(|(e, _)| *e == entry) {
            entries.push((entry, allowed));
        }
    }
    let allow = AllowKeys::new(entries);
    for (key, keys) in [
        ("attributes", attributes),
        ("resource_attributes", resource_attributes),
    ] {
        let Keys::Named(named) = keys else { continue };
        for attribute in named {
            if let Some(entry) = allow.entry_for(attribute) {
                return Err(ConfigError::NamedAndAllowed {
                    key,
                    attribute: attribute.clone(),
                    entry: entry.to_string(),
                });
            }
        }
    }
    let every = [attributes, resource_attributes]
        .iter()
        .any(|k| matches!(k, Keys::Every));
    if !allow.is_empty() && !every {
        return Err(ConfigError::AllowWithoutEvery);
    }
    Ok(allow)
}

/// The regex crate's message on one line: a syntax error's last line
/// (`error: unclosed group`) rather than its drawing of the pattern.
fn regex_error(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .map_or_else(|| text.replace('\n', " "), str::to_owned)
}
