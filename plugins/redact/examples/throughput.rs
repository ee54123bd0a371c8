//! Times the redaction logic natively: batches of 1,024 log records, each
//! a body of 120 bytes and 5 attributes, through every preset (what
//! `process` does between reading the columns and writing them back).
//!
//! ```sh
//! cargo run --release -p redact --example throughput [mixed|clean|dirty ...] [named|every|allow ...]
//! ```
//!
//! Three inputs: `mixed` (a quarter of the bodies and one attribute in
//! every row hold PII), `clean` (none does) and `dirty` (every body
//! does). Three configs: `named` (the 5 keys listed in `attributes`),
//! `every` (`attributes = "*"`: the batch's keys, as `attribute-keys`
//! gives them, all 5 redacted) and `allow` (`"*"` with `allow_keys =
//! ["http.route", "user_agent.*"]`: 3 keys redacted). Prints records/s
//! and body bytes/s for each pair; the host's `attribute-keys` call is not
//! timed, as its column reads are not.

use std::convert::Infallible;
use std::hint::black_box;
use std::time::{Duration, Instant};

use redact::columns::{redact_text, redact_values};
use redact::{AllowKeys, Keys, RedactConfig, Redactor};
use weir_plugin::Text;

const ROWS: usize = 1024;
const BODY_BYTES: usize = 120;
const KEYS: [&str; 5] = [
    "http.route",
    "client.address",
    "user.id",
    "user_agent.original",
    "session.id",
];

/// Bodies of about 120 bytes: a clean line, or one with a finding.
fn body(row: usize, pii: bool) -> String {
    let clean = format!(
        "2024-05-01T12:{:02}:{:02}.{:03}Z INFO checkout handled order {} in {}ms status=200 path=/api/v1/cart/items",
        row % 60,
        (row * 7) % 60,
        row % 1000,
        48_000 + row,
        row % 97
    );
    if !pii {
        return fit(clean);
    }
    let finding = match row % 9 {
        0 => "for jane.doe+shop@example.com".to_string(),
        1 => "card 4111 1111 1111 1111".to_string(),
        2 => format!("from 10.{}.{}.{}", row % 256, (row / 7) % 256, row % 200),
        3 => "from 2001:db8::8a2e:370:7334".to_string(),
        4 => "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl".to_string(),
        5 => "Authorization: Basic dXNlcjpwYXNzd29yZA==".to_string(),
        6 => "key AKIAIOSFODNN7EXAMPLE".to_string(),
        7 => "iban DE89 3704 0044 0532 0130 00".to_string(),
        _ => "call +44 20 7946 0958".to_string(),
    };
    fit(format!("{finding} {clean}"))
}

/// `line` cut or padded to 120 bytes (all ASCII).
fn fit(mut line: String) -> String {
    line.truncate(BODY_BYTES);
    while line.len() < BODY_BYTES {
        line.push_str(" ok");
    }
    line.truncate(BODY_BYTES);
    line
}

/// The five attributes of a row, by key; `client.address` holds an IP
/// when `pii`.
fn attributes(rows: usize, pii: bool) -> Vec<(String, Vec<Option<String>>)> {
    KEYS.iter()
        .map(|key| {
            let values = (0..rows)
                .map(|row| {
                    Some(match *key {
                        "http.route" => "/api/v1/cart/{id}/items".to_string(),
                        "client.address" if pii => format!("192.168.{}.{}", row % 256, row % 250),
                        "client.address" => "gateway-eu-west-1".to_string(),
                        "user.id" => format!("u-{:08}", 4_800_000 + row),
                        "user_agent.original" => {
                            "Mozilla/5.0 (X11; Linux x86_64) Firefox/126.0".to_string()
                        }
                        _ => format!("{:016x}", row * 2_654_435_761),
                    })
                })
                .collect();
            (key.to_string(), values)
        })
        .collect()
}

struct Input {
    name: &'static str,
    bodies: Text,
    /// Each key with its value in every row, in first-seen order.
    attributes: Vec<(String, Vec<Option<String>>)>,
}

impl Input {
    /// What the host's `attribute-keys` gives for this batch.
    fn keys(&self) -> Vec<String> {
        self.attributes.iter().map(|(k, _)| k.clone()).collect()
    }

    /// What the host's `read-attribute` gives for `key`.
    fn values(&self, key: &str) -> &[Option<String>] {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map_or(&[], |(_, v)| v)
    }
}

/// A config, compiled: the rules and the record attribute keys.
struct Setup {
    name: &'static str,
    redactor: Redactor,
    attributes: Keys,
    allow_keys: AllowKeys,
}

fn setup(name: &'static str, keys: &str) -> Setup {
    let config = format!(
        r#"{{"presets": ["email", "credit_card", "ipv4", "ipv6", "jwt", "bearer",
            "aws_access_key", "iban", "phone"], {keys}}}"#
    );
    let plan = RedactConfig::parse(&config)
        .and_then(RedactConfig::resolve)
        .unwrap_or_else(|e| panic!("{e}"));
    Setup {
        name,
        redactor: Redactor::new(plan.rules, plan.hash).unwrap_or_else(|e| panic!("{e}")),
        attributes: plan.attributes,
        allow_keys: plan.allow_keys,
    }
}

fn input(name: &'static str, pii_every: Option<usize>, ip_attribute: bool) -> Input {
    let bodies: Vec<String> = (0..ROWS)
        .map(|row| body(row, pii_every.is_some_and(|n| row % n == 0)))
        .collect();
    Input {
        name,
        bodies: bodies.iter().map(|b| Some(b.as_str())).collect(),
        attributes: attributes(ROWS, ip_attribute),
    }
}

/// One batch's work; returns how many values changed.
fn batch(setup: &mut Setup, input: &Input) -> usize {
    let redactor = &mut setup.redactor;
    let mut changed = usize::from(redact_text(redactor, &input.bodies).is_some());
    let keys = setup
        .attributes
        .in_batch(&setup.allow_keys, || Ok::<_, Infallible>(input.keys()));
    let Ok(keys) = keys;
    for key in keys.iter() {
        changed += usize::from(redact_values(redactor, input.values(key)).is_some());
    }
    redactor.take_counts();
    changed
}

/// Whether `name`, one of `all`, is picked by the arguments `only`: when
/// none of them is one of `all`, every one is.
fn picked(only: &[String], all: &[&str], name: &str) -> bool {
    only.iter().any(|o| o == name) || !only.iter().any(|o| all.contains(&o.as_str()))
}

fn main() {
    let mut setups = [
        setup(
            "named",
            r#""attributes": ["http.route", "client.address", "user.id", "user_agent.original",
                "session.id"]"#,
        ),
        setup("every", r#""attributes": "*""#),
        setup(
            "allow",
            r#""attributes": "*", "allow_keys": ["http.route", "user_agent.*"]"#,
        ),
    ];
    let inputs = [
        input("mixed", Some(4), true),
        input("clean", None, false),
        input("dirty", Some(1), true),
    ];
    let only: Vec<String> = std::env::args().skip(1).collect();
    let setup_names: Vec<&str> = setups.iter().map(|s| s.name).collect();
    let input_names: Vec<&str> = inputs.iter().map(|i| i.name).collect();
    for input in inputs
        .iter()
        .filter(|i| picked(&only, &input_names, i.name))
    {
        for setup in setups
            .iter_mut()
            .filter(|s| picked(&only, &setup_names, s.name))
        {
            let body_bytes = input.bodies.as_bytes().len();
            // Warm the lazy DFA's cache, as a running instance has.
            for _ in 0..20 {
                black_box(batch(setup, input));
            }
            let started = Instant::now();
            let mut batches = 0u32;
            while started.elapsed() < Duration::from_secs(2) {
                black_box(batch(setup, input));
                batches += 1;
            }
            let secs = started.elapsed().as_secs_f64();
            let records = f64::from(batches) * ROWS as f64 / secs;
            #[allow(clippy::print_stdout)]
            {
                println!(
                    "{:<6} {:<6} {:>9.0} records/s  {:>6.1} MB/s of bodies  ({} batches of {ROWS} rows, {:.0} body bytes/row, 5 attributes)",
                    input.name,
                    setup.name,
                    records,
                    f64::from(batches) * body_bytes as f64 / secs / 1e6,
                    batches,
                    body_bytes as f64 / ROWS as f64
                );
            }
        }
    }
}
