//! The three ways a key finds its row: [`Index::Exact`] (a hash map),
//! [`Index::Prefix`] (the longest key that starts the looked-up text) and
//! [`Index::Cidr`] (the most specific network holding an IP address).
//!
//! Each is built once per load of a file and only read afterwards, so
//! lookups take no lock: the host swaps a whole new index in on reload.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{LookupError, MatchMode};

/// One table's rows, indexed for its match mode. Values are held once;
/// the maps point at them by position.
#[derive(Debug, Clone)]
pub(crate) enum Index {
    /// The key as written.
    Exact(HashMap<Box<str>, u32>, Values),
    /// Every key, and the lengths (in bytes) of keys present, longest
    /// first: a lookup tries each length that falls on a character
    /// boundary of the text, so it costs one hash probe per distinct key
    /// length at most.
    Prefix {
        keys: HashMap<Box<str>, u32>,
        lengths: Vec<usize>,
        values: Values,
    },
    /// Per address family, one map of masked addresses per prefix length,
    /// tried from the longest length present.
    Cidr {
        v4: Networks<u32>,
        v6: Networks<u128>,
        values: Values,
    },
}

/// The values of a table's rows, in file order.
pub(crate) type Values = Vec<Box<str>>;

/// The networks of one address family: for each prefix length present
/// (longest first), the network addresses of that length.
#[derive(Debug, Clone, Default)]
pub(crate) struct Networks<A> {
    by_length: Vec<(u8, HashMap<A, u32>)>,
}

/// An address of one family as an integer.
pub(crate) trait Bits: Copy + Eq + std::hash::Hash {
    /// The address with only its first `len` bits kept.
    fn mask(self, len: u8) -> Self;
}

impl Bits for u32 {
    fn mask(self, len: u8) -> Self {
        if len == 0 {
            0
        } else {
            self & (u32::MAX << (32 - u32::from(len)))
        }
    }
}

impl Bits for u128 {
    fn mask(self, len: u8) -> Self {
        if len == 0 {
            0
        } else {
            self & (u128::MAX << (128 - u32::from(len)))
        }
    }
}

impl<A: Bits> Networks<A> {
    /// Adds network `addr/len`; `false` if it is there already.
    fn insert(&mut self, addr: A, len: u8, row: u32) -> bool {
        let at = match self.by_length.binary_search_by(|(l, _)| len.cmp(l)) {
            Ok(i) => i,
            Err(i) => {
                self.by_length.insert(i, (len, HashMap::new()));
                i
            }
        };
        let map = &mut self.by_length[at].1;
        if map.contains_key(&addr) {
            return false;
        }
        map.insert(addr, row);
        true
    }

    /// The row of the most specific network holding `addr`.
    fn find(&self, addr: A) -> Option<u32> {
        self.by_length
            .iter()
            .find_map(|(len, map)| map.get(&addr.mask(*len)).copied())
    }
}

/// A network key: `10.0.0.0/8`, `2001:db8::/32`, or one address.
enum Network {
    V4(u32, u8),
    V6(u128, u8),
}

/// Parses a key of a `cidr` table.
fn network(key: &str) -> Result<Network, String> {
    let (addr, len) = match key.split_once('/') {
        Some((addr, len)) => (addr, Some(len)),
        None => (key, None),
    };
    let addr: IpAddr = addr.parse().map_err(|_| {
        format!("`{key}` is not a network: write an address and a prefix length, such as `10.0.0.0/8` or `2001:db8::/32`, or one address")
    })?;
    let width = if addr.is_ipv4() { 32 } else { 128 };
    let len = match len {
        None => width,
        Some(len) => match len.parse::<u8>() {
            Ok(n) if n <= width => n,
            _ => {
                return Err(format!(
                    "`{key}`: the prefix length must be a number from 0 to {width}"
                ));
            }
        },
    };
    let net = match addr {
        IpAddr::V4(a) => Network::V4(u32::from(a), len),
        IpAddr::V6(a) => Network::V6(u128::from(a), len),
    };
    let host_bits = match net {
        Network::V4(a, l) => a != a.mask(l),
        Network::V6(a, l) => a != a.mask(l),
    };
    if host_bits {
        let masked = match net {
            Network::V4(a, l) => format!("{}/{l}", Ipv4Addr::from(a.mask(l))),
            Network::V6(a, l) => format!("{}/{l}", Ipv6Addr::from(a.mask(l))),
        };
        return Err(format!(
            "`{key}` has bits set past its prefix length; did you mean `{masked}`?"
        ));
    }
    Ok(net)
}

/// The address a looked-up value names, IPv4-mapped IPv6 addresses
/// (`::ffff:10.1.2.3`) as IPv4. `None` when it is not an address.
fn address(text: &str) -> Option<IpAddr> {
    match text.parse::<IpAddr>().ok()? {
        IpAddr::V6(a) => Some(a.to_ipv4_mapped().map_or(IpAddr::V6(a), IpAddr::V4)),
        v4 => Some(v4),
    }
}

impl Index {
    /// Indexes `rows` (key, value) for `mode`. A key given twice, or a
    /// `cidr` key that is not a network, is refused with its row number
    /// (counted from 1 in the order of the file).
    pub(crate) fn build(
        mode: MatchMode,
        rows: Vec<(String, String)>,
    ) -> Result<Index, LookupError> {
        let mut values = Vec::with_capacity(rows.len());
        let duplicate = |key: String, row: usize| LookupError::DuplicateKey { key, row: row + 1 };
        match mode {
            MatchMode::Exact | MatchMode::Prefix => {
                let mut keys = HashMap::with_capacity(rows.len());
                for (key, value) in rows {
                    let row = row_number(values.len())?;
                    if keys.contains_key(key.as_str()) {
                        return Err(duplicate(key, values.len()));
                    }
                    keys.insert(key.into_boxed_str(), row);
                    values.push(value.into_boxed_str());
                }
                if mode == MatchMode::Exact {
                    return Ok(Index::Exact(keys, values));
                }
                let mut lengths: Vec<usize> = keys.keys().map(|k| k.len()).collect();
                lengths.sort_unstable_by(|a, b| b.cmp(a));
                lengths.dedup();
                Ok(Index::Prefix {
                    keys,
                    lengths,
                    values,
                })
            }
            MatchMode::Cidr => {
                let (mut v4, mut v6) = (Networks::default(), Networks::default());
                for (n, (key, value)) in rows.into_iter().enumerate() {
                    let row = row_number(values.len())?;
                    let fresh =
                        match network(key.trim()).map_err(|message| LookupError::BadNetwork {
                            row: n + 1,
                            message,
                        })? {
                            Network::V4(a, l) => v4.insert(a, l, row),
                            Network::V6(a, l) => v6.insert(a, l, row),
                        };
                    if !fresh {
                        return Err(duplicate(key, n));
                    }
                    values.push(value.into_boxed_str());
                }
                Ok(Index::Cidr { v4, v6, values })
            }
        }
    }

    /// The value of `key`, if a row matches it.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        let (row, values) = match self {
            Index::Exact(keys, values) => (keys.get(key).copied(), values),
            Index::Prefix {
                keys,
                lengths,
                values,
            } => {
                let row = lengths
                    .iter()
                    .filter(|len| **len <= key.len() && key.is_char_boundary(**len))
                    .find_map(|len| keys.get(&key[..*len]).copied());
                (row, values)
            }
            Index::Cidr { v4, v6, values } => {
                let row = match address(key) {
                    Some(IpAddr::V4(a)) => v4.find(u32::from(a)),
                    Some(IpAddr::V6(a)) => v6.find(u128::from(a)),
                    None => None,
                };
                (row, values)
            }
        };
        row.and_then(|r| values.get(r as usize)).map(|v| &**v)
    }

    /// The number of rows.
    pub(crate) fn len(&self) -> usize {
        match self {
            Index::Exact(_, values) | Index::Prefix { values, .. } | Index::Cidr { values, .. } => {
                values.len()
            }
        }
    }
}

/// A row's position as the maps hold it.
fn row_number(n: usize) -> Result<u32, LookupError> {
    u32::try_from(n).map_err(|_| LookupError::TooLarge)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(mode: MatchMode, rows: &[(&str, &str)]) -> Index {
        Index::build(
            mode,
            rows.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
        .expect("the rows index")
    }

    /// Guarantees: `exact` finds a key only as written.
    #[test]
    fn exact_matches_whole_keys_only() {
        let i = index(MatchMode::Exact, &[("checkout", "a"), ("cart", "b")]);
        assert_eq!(i.get("checkout"), Some("a"));
        assert_eq!(i.get("cart"), Some("b"));
        assert_eq!(i.get("check"), None);
        assert_eq!(i.get("Checkout"), None);
        assert_eq!(i.get(""), None);
    }

    /// Guarantees: `prefix` gives the longest key the text starts with,
    /// an empty key matches everything the others miss, and a key that
    /// would cut a character in two never matches.
    #[test]
    fn prefix_takes_the_longest() {
        let i = index(
            MatchMode::Prefix,
            &[
                ("/api/", "api"),
                ("/api/v2/", "v2"),
                ("/", "root"),
                ("é", "e"),
            ],
        );
        assert_eq!(i.get("/api/v2/cart"), Some("v2"));
        assert_eq!(i.get("/api/v1/cart"), Some("api"));
        assert_eq!(i.get("/api/"), Some("api"));
        assert_eq!(i.get("/health"), Some("root"));
        assert_eq!(i.get("health"), None);
        assert_eq!(i.get("été"), Some("e"));
        let fallback = index(MatchMode::Prefix, &[("", "any"), ("db-", "db")]);
        assert_eq!(fallback.get("db-1"), Some("db"));
        assert_eq!(fallback.get("web-1"), Some("any"));
    }

    /// Guarantees: `cidr` gives the most specific network holding an
    /// address, for IPv4, IPv6 and IPv4-mapped IPv6; single addresses are
    /// /32 or /128; a value that is not an address finds nothing.
    #[test]
    fn cidr_takes_the_most_specific_network() {
        let i = index(
            MatchMode::Cidr,
            &[
                ("10.0.0.0/8", "corp"),
                ("10.1.0.0/16", "eu"),
                ("10.1.2.3", "gateway"),
                ("0.0.0.0/0", "internet"),
                ("2001:db8::/32", "doc"),
                ("2001:db8:1::/48", "doc-eu"),
            ],
        );
        assert_eq!(i.get("10.9.9.9"), Some("corp"));
        assert_eq!(i.get("10.1.200.1"), Some("eu"));
        assert_eq!(i.get("10.1.2.3"), Some("gateway"));
        assert_eq!(i.get("192.0.2.1"), Some("internet"));
        assert_eq!(i.get("::ffff:10.1.2.4"), Some("eu"));
        assert_eq!(i.get("2001:db8:1::5"), Some("doc-eu"));
        assert_eq!(i.get("2001:db8:2::5"), Some("doc"));
        assert_eq!(i.get("2001:db9::1"), None);
        assert_eq!(i.get("not an address"), None);
        assert_eq!(i.get("10.1.2.3:8080"), None);
        assert_eq!(i.get(""), None);
    }

    /// Guarantees: a `cidr` key that is not a network, has a prefix
    /// length out of range or bits past it is refused with its row and a
    /// suggestion.
    #[test]
    fn cidr_refuses_bad_networks() {
        let error = |key: &str| {
            Index::build(
                MatchMode::Cidr,
                vec![
                    ("10.0.0.0/8".to_string(), "ok".to_string()),
                    (key.to_string(), "x".to_string()),
                ],
            )
            .expect_err("refused")
            .to_string()
        };
        assert!(
            error("10.0.0/8").contains("row 2: `10.0.0/8` is not a network"),
            "{}",
            error("10.0.0/8")
        );
        assert!(error("10.0.0.0/33").contains("from 0 to 32"));
        assert!(error("2001:db8::/129").contains("from 0 to 128"));
        assert!(error("10.1.0.0/8").contains("did you mean `10.0.0.0/8`?"));
    }

    /// Guarantees: a key given twice is refused (in `cidr`, the same
    /// network written twice).
    #[test]
    fn duplicate_keys_are_refused() {
        for (mode, a, b) in [
            (MatchMode::Exact, "x", "x"),
            (MatchMode::Prefix, "x", "x"),
            (MatchMode::Cidr, "10.0.0.1", "10.0.0.1/32"),
        ] {
            let e = Index::build(mode, vec![(a.into(), "1".into()), (b.into(), "2".into())])
                .expect_err("refused");
            assert!(e.to_string().contains("more than once"), "{e}");
        }
    }
}
