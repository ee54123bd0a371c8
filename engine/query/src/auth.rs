//! [`Credentials`]: who may query, as `[query.auth]` says, with the secrets
//! read from the environment and files when Weir starts. Every endpoint
//! checks against the same credentials: Postgres with SCRAM-SHA-256 over
//! the users' passwords, Flight SQL with basic authentication (answered
//! with a session token) or a bearer token, HTTP with either header.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::Arc;

use base64::Engine as _;
use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use weir_config::QueryAuthConfig;

/// The credentials of the SQL endpoints. Without any, every endpoint is
/// open (Weir allows that only on loopback addresses).
#[derive(Default)]
pub struct Credentials {
    /// User name -> password.
    users: BTreeMap<String, String>,
    /// Configured bearer tokens, as SHA-256 digests.
    tokens: Vec<[u8; 32]>,
    /// Tokens handed out by Flight SQL's handshake, as SHA-256 digests.
    sessions: Mutex<Sessions>,
}

/// Handed-out tokens, the newest [`MAX_SESSIONS`]: a client signing in
/// again and again cannot grow them without bound.
#[derive(Default)]
struct Sessions {
    tokens: HashSet<[u8; 32]>,
    order: VecDeque<[u8; 32]>,
}

/// How many handed-out tokens are remembered; the oldest is forgotten
/// first (its client signs in again).
const MAX_SESSIONS: usize = 10_000;

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .field("tokens", &self.tokens.len())
            .finish_non_exhaustive()
    }
}

/// What a request presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presented<'a> {
    /// Nothing.
    Nothing,
    /// A user and a password.
    Password(&'a str, &'a str),
    /// A bearer token.
    Token(&'a str),
}

impl Credentials {
    /// Reads the secrets `config` names; the error names the one that
    /// cannot be read and how to fix it.
    pub fn from_config(config: &QueryAuthConfig) -> Result<Arc<Self>, String> {
        let mut users = BTreeMap::new();
        for (i, user) in config.users.iter().enumerate() {
            if user.name.is_empty() {
                return Err(format!("`[query.auth] users[{i}]`: the user name is empty"));
            }
            let password = user
                .password
                .read()
                .map_err(|e| format!("`[query.auth]` password of user `{}`: {e}", user.name))?;
            if users.insert(user.name.clone(), password).is_some() {
                return Err(format!(
                    "`[query.auth] users`: user `{}` is named twice",
                    user.name
                ));
            }
        }
        let mut tokens = Vec::new();
        for (i, token) in config.tokens.iter().enumerate() {
            let token = token
                .read()
                .map_err(|e| format!("`[query.auth] tokens[{i}]`: {e}"))?;
            tokens.push(digest(&token));
        }
        Ok(Arc::new(Credentials {
            users,
            tokens,
            sessions: Mutex::new(Sessions::default()),
        }))
    }

    /// Whether any credential is required.
    pub fn required(&self) -> bool {
        !self.users.is_empty() || !self.tokens.is_empty()
    }

    /// The password of `user`, for SCRAM (which needs it to check the
    /// client's proof).
    pub fn password(&self, user: &str) -> Option<&str> {
        self.users.get(user).map(String::as_str)
    }

    /// Whether `presented` lets its bearer in: anything when no credential
    /// is configured.
    pub fn admits(&self, presented: Presented<'_>) -> bool {
        if !self.required() {
            return true;
        }
        match presented {
            Presented::Nothing => false,
            Presented::Password(user, password) => self
                .users
                .get(user)
                .is_some_and(|expected| same(expected.as_bytes(), password.as_bytes())),
            Presented::Token(token) => {
                let token = digest(token);
                self.tokens.iter().any(|t| same(t, &token))
                    || self.sessions.lock().tokens.contains(&token)
            }
        }
    }

    /// Whether the `Authorization` value `header` (Bearer or Basic) lets
    /// its bearer in: anything when no credential is configured.
    pub fn admits_header(&self, header: Option<&str>) -> bool {
        if !self.required() {
            return true;
        }
        match header.and_then(Self::parse_header) {
            Some((token, None)) => self.admits(Presented::Token(&token)),
            Some((user, Some(password))) => self.admits(Presented::Password(&user, &password)),
            None => false,
        }
    }

    /// A fresh token for a signed-in client (Flight SQL's handshake): 32
    /// random bytes, base64.
    pub fn new_session(&self) -> String {
        // rand's thread generator is a CSPRNG seeded by the system.
        let bytes: [u8; 32] = rand::random();
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        if self.required() {
            let mut sessions = self.sessions.lock();
            let key = digest(&token);
            sessions.tokens.insert(key);
            sessions.order.push_back(key);
            while sessions.order.len() > MAX_SESSIONS {
                if let Some(old) = sessions.order.pop_front() {
                    sessions.tokens.remove(&old);
                }
            }
        }
        token
    }

    /// Reads an HTTP `Authorization` header's value.
    pub fn parse_header(value: &str) -> Option<(String, Option<String>)> {
        let (scheme, rest) = value.trim().split_once(' ')?;
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("bearer") {
            return Some((rest.to_string(), None));
        }
        if scheme.eq_ignore_ascii_case("basic") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(rest)
                .ok()?;
            let decoded = String::from_utf8(decoded).ok()?;
            let (user, password) = decoded.split_once(':')?;
            return Some((user.to_string(), Some(password.to_string())));
        }
        None
    }
}

fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Compares without stopping at the first difference.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_config::{QueryUser, Secret};

    fn credentials() -> Arc<Credentials> {
        let dir = tempfile::tempdir().expect("tempdir");
        let token = dir.path().join("token");
        std::fs::write(&token, "s3cret-token\n").expect("write");
        let password = dir.path().join("password");
        std::fs::write(&password, "hunter2").expect("write");
        Credentials::from_config(&QueryAuthConfig {
            users: vec![QueryUser {
                name: "grafana".into(),
                password: Secret::File(password),
            }],
            tokens: vec![Secret::File(token)],
        })
        .expect("credentials")
    }

    /// Passwords and tokens are checked exactly; a handed-out session token
    /// is accepted like a configured one.
    #[test]
    fn only_the_right_secrets_are_admitted() {
        let c = credentials();
        assert!(c.required());
        assert!(c.admits(Presented::Password("grafana", "hunter2")));
        assert!(!c.admits(Presented::Password("grafana", "hunter3")));
        assert!(!c.admits(Presented::Password("admin", "hunter2")));
        assert!(c.admits(Presented::Token("s3cret-token")));
        assert!(!c.admits(Presented::Token("s3cret-toke")));
        assert!(!c.admits(Presented::Nothing));
        let session = c.new_session();
        assert!(c.admits(Presented::Token(&session)));
        assert_ne!(session, c.new_session(), "sessions are random");
    }

    /// Without credentials everyone is admitted.
    #[test]
    fn no_credentials_means_open() {
        let c = Credentials::default();
        assert!(c.admits(Presented::Nothing));
    }

    /// A secret that cannot be read stops the start, naming it.
    #[test]
    fn missing_secrets_are_named() {
        let error = Credentials::from_config(&QueryAuthConfig {
            users: vec![QueryUser {
                name: "grafana".into(),
                password: Secret::Env("WEIR_TEST_NOT_SET_ANYWHERE".into()),
            }],
            tokens: vec![],
        })
        .expect_err("missing variable");
        assert!(error.contains("WEIR_TEST_NOT_SET_ANYWHERE"), "{error}");
        assert!(error.contains("grafana"), "{error}");
    }

    /// Both HTTP schemes are read.
    #[test]
    fn authorization_headers_are_read() {
        assert_eq!(
            Credentials::parse_header("Bearer abc"),
            Some(("abc".into(), None))
        );
        assert_eq!(
            Credentials::parse_header("Basic Z3JhZmFuYTpodW50ZXIy"),
            Some(("grafana".into(), Some("hunter2".into())))
        );
        assert_eq!(Credentials::parse_header("Digest x"), None);
    }
}
