//! The `hash` action's keyed hash: HMAC-SHA256 under `hash_key`, the first
//! 8 bytes of the tag as 16 lower-case hex digits.
//!
//! Keyed, so that nobody without the key can hash a guessed e-mail address
//! and find it in the data; stable, so that the same value hashes to the
//! same text in every record, batch and instance, and joins still work.
//! 64 bits keep collisions away up to billions of distinct values.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Hex digits written per hashed value.
pub const HEX_LEN: usize = 16;

/// HMAC-SHA256 with the key's inner and outer blocks computed once.
#[derive(Clone)]
pub struct KeyedHash {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for KeyedHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.write_str("KeyedHash")
    }
}

impl KeyedHash {
    /// A hash under `key` (any length; HMAC takes every key).
    pub fn new(key: &[u8]) -> Self {
        KeyedHash {
            mac: <Hmac<Sha256> as Mac>::new_from_slice(key)
                .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length")),
        }
    }

    /// Appends the hash of `value` to `out` as [`HEX_LEN`] hex digits.
    pub fn push_hex(&self, value: &[u8], out: &mut String) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut mac = self.mac.clone();
        mac.update(value);
        let tag = mac.finalize().into_bytes();
        for b in &tag[..HEX_LEN / 2] {
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(key: &[u8], value: &str) -> String {
        let mut out = String::new();
        KeyedHash::new(key).push_hex(value.as_bytes(), &mut out);
        out
    }

    /// Guarantees: the output is the HMAC-SHA256 of RFC 4231's test case 2,
    /// truncated, so that anyone can recompute a hash with the key.
    #[test]
    fn matches_rfc4231() {
        // HMAC-SHA256("Jefe", "what do ya want for nothing?") =
        // 5bdcc146bf60754e6a042426089575c7...
        assert_eq!(
            hex(b"Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e"
        );
    }

    /// Guarantees: the same value and key hash alike; another key or value
    /// hashes otherwise.
    #[test]
    fn stable_and_keyed() {
        assert_eq!(hex(b"k1", "a@b.io"), hex(b"k1", "a@b.io"));
        assert_ne!(hex(b"k1", "a@b.io"), hex(b"k2", "a@b.io"));
        assert_ne!(hex(b"k1", "a@b.io"), hex(b"k1", "c@b.io"));
    }
}
