//! Which attribute keys of a batch are redacted: the keys the config names
//! ([`Keys::Named`]), or every key the batch has ([`Keys::Every`], written
//! `"*"`) but those `allow_keys` leaves alone ([`AllowKeys`]).

use std::borrow::Cow;

/// The attribute keys of one set (record or resource) to redact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Keys {
    /// These keys, each once, in the config's order; none when empty.
    Named(Vec<String>),
    /// Every key present in a batch (`"*"`), listed per batch, except the
    /// keys of `allow_keys`.
    Every,
}

impl Keys {
    /// Whether no key is ever redacted.
    pub fn is_empty(&self) -> bool {
        matches!(self, Keys::Named(keys) if keys.is_empty())
    }

    /// The keys to redact in one batch. Named keys are returned as they
    /// are (`list` is not called, and `allow` was checked not to name
    /// them); under [`Keys::Every`], the keys `list` gives (the batch's,
    /// from `attribute-keys`) without those `allow` leaves alone.
    pub fn in_batch<E>(
        &self,
        allow: &AllowKeys,
        list: impl FnOnce() -> Result<Vec<String>, E>,
    ) -> Result<Cow<'_, [String]>, E> {
        match self {
            Keys::Named(keys) => Ok(Cow::Borrowed(keys)),
            Keys::Every => {
                let mut keys = list()?;
                if !allow.is_empty() {
                    keys.retain(|k| !allow.allows(k));
                }
                Ok(Cow::Owned(keys))
            }
        }
    }
}

/// What one `allow_keys` entry leaves alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allowed {
    /// The key written, exactly: `http.route`.
    Key(String),
    /// Every key starting with the text before a final `*`: `k8s.*` is
    /// `Prefix("k8s.")`.
    Prefix(String),
}

impl Allowed {
    /// Whether this entry leaves `key` alone.
    pub fn allows(&self, key: &str) -> bool {
        match self {
            Allowed::Key(k) => k == key,
            Allowed::Prefix(p) => key.starts_with(p.as_str()),
        }
    }
}

/// `allow_keys`: attribute keys never touched under `"*"`, whatever the
/// rules find in them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowKeys {
    entries: Vec<(String, Allowed)>,
}

impl AllowKeys {
    /// The entries as written with what each means; the config checked
    /// them (not empty, `*` only at the end, not `*` alone).
    pub fn new(entries: Vec<(String, Allowed)>) -> Self {
        AllowKeys { entries }
    }

    /// Whether there is no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry, as written, that leaves `key` alone, if any.
    pub fn entry_for(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(_, a)| a.allows(key))
            .map(|(written, _)| written.as_str())
    }

    /// Whether `key` is left alone.
    pub fn allows(&self, key: &str) -> bool {
        self.entries.iter().any(|(_, a)| a.allows(key))
    }
}
