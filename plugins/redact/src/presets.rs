//! The built-in detectors: for each kind of PII a regex that finds
//! candidates and a check (in [`crate::checks`]) that keeps the real ones.
//!
//! The regexes are ASCII-only (`(?-u:\b)` is an ASCII word boundary), so
//! that all of them run together in one lazy DFA over any text, and bounded
//! where a candidate could otherwise run on (digit groups, IPv6 groups).

use std::ops::Range;

use crate::checks;

/// One built-in detector, named in `presets`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// `local@domain.tld`.
    Email,
    /// 13–19 digits, optional space or dash separators, Luhn-valid.
    CreditCard,
    /// A dotted quad, each part 0–255.
    Ipv4,
    /// Full, compressed and IPv4-suffixed IPv6 addresses.
    Ipv6,
    /// A JSON Web Token: three base64url segments, the first `eyJ…`.
    Jwt,
    /// The credential of `Bearer <token>`, `Basic <base64 of user:password>`
    /// or `Authorization: <scheme> <credential>`.
    Bearer,
    /// An AWS access key id: `AKIA` or `ASIA` and 16 upper-case letters or digits.
    AwsAccessKey,
    /// An IBAN: country, check digits, BBAN; mod-97-valid.
    Iban,
    /// International (`+…`) and common national phone numbers.
    Phone,
}

/// A base64url segment.
const B64URL: &str = "[A-Za-z0-9_-]";

impl Preset {
    /// Every preset, in the order their findings win a tie.
    /// (Only a JWT after `Bearer` is found by two presets with the same
    /// span: it is labelled `jwt`.)
    pub const ALL: [Preset; 9] = [
        Preset::Email,
        Preset::CreditCard,
        Preset::Ipv4,
        Preset::Ipv6,
        Preset::Jwt,
        Preset::Bearer,
        Preset::AwsAccessKey,
        Preset::Iban,
        Preset::Phone,
    ];

    /// The name used in `presets`, in counters and in the mask.
    pub fn name(self) -> &'static str {
        match self {
            Preset::Email => "email",
            Preset::CreditCard => "credit_card",
            Preset::Ipv4 => "ipv4",
            Preset::Ipv6 => "ipv6",
            Preset::Jwt => "jwt",
            Preset::Bearer => "bearer",
            Preset::AwsAccessKey => "aws_access_key",
            Preset::Iban => "iban",
            Preset::Phone => "phone",
        }
    }

    /// The preset of this name.
    pub fn from_name(name: &str) -> Option<Preset> {
        Preset::ALL.into_iter().find(|p| p.name() == name)
    }

    /// Every preset's name, for messages: `email, credit_card, ...`.
    pub fn names() -> String {
        Preset::ALL.map(Preset::name).join(", ")
    }

    /// The regex that finds candidates.
    pub fn pattern(self) -> String {
        match self {
            Preset::Email => {
                r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}".to_string()
            }
            Preset::CreditCard => r"(?-u:\b)[2-6][0-9](?:[ -]?[0-9]){11,17}(?-u:\b)".to_string(),
            Preset::Ipv4 => {
                let octet = "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])";
                format!(r"(?-u:\b)(?:{octet}\.){{3}}{octet}(?-u:\b)")
            }
            Preset::Ipv6 => {
                let h = "[0-9A-Fa-f]{1,4}";
                let v4 = r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}";
                // Forms with an IPv4 tail first, so that `::ffff:1.2.3.4`
                // is taken whole.
                format!(
                    "(?:(?:{h}:){{6}}{v4}\
                     |(?:{h}(?::{h}){{0,4}})?::(?:{h}:){{0,4}}{v4}\
                     |(?:{h}:){{7}}{h}\
                     |(?:{h}(?::{h}){{0,6}})?::(?:{h}(?::{h}){{0,6}})?)"
                )
            }
            Preset::Jwt => format!(r"eyJ{B64URL}{{2,}}\.{B64URL}{{2,}}\.{B64URL}*"),
            Preset::Bearer => {
                let token = r"[A-Za-z0-9._~+/-]+=*";
                let scheme = "(?i-u:bearer|basic|digest|token|negotiate)";
                format!(
                    r#"(?i-u:bearer)[ \t]+{token}|(?i-u:basic)[ \t]+[A-Za-z0-9+/]+=*|(?i-u:authorization)["']?[ \t]*[:=][ \t]*["']?(?:{scheme}[ \t]+)?{token}"#
                )
            }
            Preset::AwsAccessKey => r"(?-u:\b)(?:AKIA|ASIA)[A-Z0-9]{16}(?-u:\b)".to_string(),
            Preset::Iban => {
                r"(?-u:\b)[A-Z]{2}[0-9]{2}(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,3})?(?-u:\b)"
                    .to_string()
            }
            Preset::Phone => {
                let international =
                    r"\+[1-9][0-9]{0,3}(?:[ .-]?(?:\([0-9]{1,4}\)|[0-9]{1,5})){1,7}";
                let nanp_parens =
                    r"(?:(?-u:\b)1[ .-]?)?\([2-9][0-9]{2}\)[ ]?[2-9][0-9]{2}[ .-][0-9]{4}";
                let nanp = r"(?-u:\b)(?:1[.-])?[2-9][0-9]{2}[.-][2-9][0-9]{2}[.-][0-9]{4}";
                let trunk = r"(?-u:\b)0[1-9][0-9]{0,3}(?:[ .-][0-9]{2,8}){1,4}";
                // National forms end on a digit at a word boundary; the
                // international one may end on `)`, and its check looks
                // at what follows.
                format!(r"{international}|(?:{nanp_parens}|{nanp}|{trunk})(?-u:\b)")
            }
        }
    }

    /// Checks a candidate: the range to redact, or `None` when the
    /// candidate is not what it looks like.
    pub fn check(self, text: &str, span: Range<usize>) -> Option<Range<usize>> {
        match self {
            Preset::Email => checks::email(text, span),
            Preset::CreditCard => checks::credit_card(text, span),
            Preset::Ipv4 => checks::ipv4(text, span),
            Preset::Ipv6 => checks::ipv6(text, span),
            Preset::Jwt => checks::jwt(text, span),
            Preset::Bearer => checks::bearer(text, span),
            Preset::AwsAccessKey => Some(span),
            Preset::Iban => checks::iban(text, span),
            Preset::Phone => checks::phone(text, span),
        }
    }
}
