//! The checks that turn a preset's regex match into a finding: check digits
//! (Luhn for card numbers, ISO 7064 mod 97 for IBANs), address parsing for
//! IPv6, and what may stand next to a match, so that a piece of a longer
//! number or word is not taken for the whole.
//!
//! Every check takes the whole text and the match's byte range, and returns
//! the range to redact (the match, or a part of it such as the token after
//! `Bearer`) or `None` to reject the match. None allocates.

use std::net::Ipv6Addr;
use std::ops::Range;

/// The byte before `at`, if any.
fn before(text: &str, at: usize) -> Option<u8> {
    at.checked_sub(1).map(|i| text.as_bytes()[i])
}

/// The byte at `at`, if any.
fn after(text: &str, at: usize) -> Option<u8> {
    text.as_bytes().get(at).copied()
}

/// True when `span` continues a longer run of numbers joined by one of
/// `joiners` (`1.2.3.4.5`, `2024-0612-345`): a digit, then a joiner, then
/// the span (or the span, a joiner, a digit).
fn joined(text: &str, span: &Range<usize>, joiners: &[u8]) -> bool {
    let digit_before = span.start >= 2
        && joiners.contains(&text.as_bytes()[span.start - 1])
        && text.as_bytes()[span.start - 2].is_ascii_digit();
    let digit_after = after(text, span.end).is_some_and(|b| joiners.contains(&b))
        && after(text, span.end + 1).is_some_and(|b| b.is_ascii_digit());
    digit_before || digit_after
}

fn is_alnum(b: Option<u8>) -> bool {
    b.is_some_and(|b| b.is_ascii_alphanumeric())
}

/// The Luhn check over the ASCII digits of `bytes` (anything else skipped).
pub fn luhn(bytes: &[u8]) -> bool {
    let mut sum = 0u32;
    let digits = bytes.iter().rev().filter(|b| b.is_ascii_digit());
    for (i, d) in digits.enumerate() {
        let mut v = u32::from(d - b'0');
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

/// A card number: 13 to 19 digits (the regex counts them and wants the
/// first to be 2 to 6, the payment cards' major industry identifiers, which
/// keeps Unix times in seconds to nanoseconds out), one kind of separator
/// at most, not part of a longer dotted or dashed number nor after a sign
/// or an identifier's `_`, and Luhn-valid.
pub fn credit_card(text: &str, span: Range<usize>) -> Option<Range<usize>> {
    let bytes = &text.as_bytes()[span.clone()];
    let mut separator = None;
    for &b in bytes.iter().filter(|b| !b.is_ascii_digit()) {
        match separator {
            None => separator = Some(b),
            Some(s) if s == b => {}
            Some(_) => return None,
        }
    }
    // A card number never follows a sign or joins an identifier
    // (`blk_-6952295868487656571`, an HDFS block id).
    if joined(text, &span, b".-") || before(text, span.start).is_some_and(|b| b"-_.+".contains(&b))
    {
        return None;
    }
    luhn(bytes).then_some(span)
}

/// A dotted quad that is not part of a longer dotted number (an SNMP OID,
/// a four-part version inside a longer one).
pub fn ipv4(text: &str, span: Range<usize>) -> Option<Range<usize>> {
    (!joined(text, &span, b".")).then_some(span)
}

/// An IPv6 address as [`Ipv6Addr`] parses it, with at least one decimal
/// digit (so that `Add::add` or `dead::beef` in a Rust or C++ message is
/// not one), not the unspecified `::`, and standing alone: no letter,
/// digit or colon right before it or after it.
pub fn ipv6(text: &str, span: Range<usize>) -> Option<Range<usize>> {
    let s = &text[span.clone()];
    let edge_before =
        before(text, span.start).is_some_and(|b| b.is_ascii_alphanumeric() || b == b':');
    let edge_after = after(text, span.end).is_some_and(|b| b.is_ascii_alphanumeric() || b == b':')
        || joined(text, &span, b".");
    if edge_before || edge_after || !s.bytes().any(|b| b.is_ascii_digit()) {
        return None;
    }
    let addr: Ipv6Addr = s.parse().ok()?;
    (!addr.is_unspecified()).then_some(span)
}

fn is_base64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// A JWT that starts its own token: no base64url character or dot right
/// before `eyJ`.
pub fn jwt(text: &str, span: Range<usize>) -> Option<Range<usize>> {
    let inside = before(text, span.start).is_some_and(|b| is_base64url(b) || b == b'.');
    (!inside).then_some(span)
}

/// The characters of a credential (RFC 6750 `b64token`, and `=` padding).
fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b)
}

/// The fewest characters a bearer credential has; shorter words after
/// `Bearer` (`Bearer realm`, `Bearer token` in prose) are left alone.
const MIN_CREDENTIAL: usize = 8;

/// Whether standard base64 `encoded` decodes to bytes holding a `:`, as
/// Basic authentication's `user:password` does.
fn decodes_to_user_password(encoded: &[u8]) -> bool {
    let mut acc = 0u32;
    let mut bits = 0;
    for &c in encoded.iter().take_while(|c| **c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return false,
        };
        acc = (acc << 6 | u32::from(v)) & 0xfff;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            if (acc >> bits) & 0xff == u32::from(b':') {
                return true;
            }
        }
    }
    false
}

/// `Bearer <token>`, `Basic <credential>` or `Authorization: [scheme]
/// <credential>`: the keyword starts a word, and only the credential (the
/// last token of the match) is redacted, so the text still says what it
/// was. After a bare `Basic` (an English word too) the credential must be
/// base64 of `user:password`.
pub fn bearer(text: &str, span: Range<usize>) -> Option<Range<usize>> {
    if is_alnum(before(text, span.start)) {
        return None;
    }
    let bytes = text.as_bytes();
    let mut start = span.end;
    while start > span.start && is_token(bytes[start - 1]) {
        start -= 1;
    }
    let credential = &text[start..span.end];
    let scheme = ["bearer", "basic", "digest", "token", "negotiate"]
        .iter()
        .any(|s| credential.eq_ignore_ascii_case(s));
    let bare_basic = text.as_bytes()[span.start..]
        .get(..5)
        .is_some_and(|k| k.eq_ignore_ascii_case(b"basic"));
    if bare_basic && !decodes_to_user_password(credential.as_bytes()) {
        return None;
    }
    (credential.len() >= MIN_CREDENTIAL && !scheme).then_some(start..span.end)
}

/// IBAN lengths by country code, from the SWIFT IBAN registry.
const IBAN_LENGTHS: &[(&[u8; 2], usize)] = &[
    (b"AD", 24),
    (b"AE", 23),
    (b"AL", 28),
    (b"AT", 20),
    (b"AZ", 28),
    (b"BA", 20),
    (b"BE", 16),
    (b"BG", 22),
    (b"BH", 22),
    (b"BI", 27),
    (b"BR", 29),
    (b"BY", 28),
    (b"CH", 21),
    (b"CR", 22),
    (b"CY", 28),
    (b"CZ", 24),
    (b"DE", 22),
    (b"DJ", 27),
    (b"DK", 18),
    (b"DO", 28),
    (b"EE", 20),
    (b"EG", 29),
    (b"ES", 24),
    (b"FI", 18),
    (b"FK", 18),
    (b"FO", 18),
    (b"FR", 27),
    (b"GB", 22),
    (b"GE", 22),
    (b"GI", 23),
    (b"GL", 18),
    (b"GR", 27),
    (b"GT", 28),
    (b"HR", 21),
    (b"HU", 28),
    (b"IE", 22),
    (b"IL", 23),
    (b"IQ", 23),
    (b"IS", 26),
    (b"IT", 27),
    (b"JO", 30),
    (b"KW", 30),
    (b"KZ", 20),
    (b"LB", 28),
    (b"LC", 32),
    (b"LI", 21),
    (b"LT", 20),
    (b"LU", 20),
    (b"LV", 21),
    (b"LY", 25),
    (b"MC", 27),
    (b"MD", 24),
    (b"ME", 22),
    (b"MK", 19),
    (b"MN", 20),
    (b"MR", 27),
    (b"MT", 31),
    (b"MU", 30),
    (b"NI", 28),
    (b"NL", 18),
    (b"NO", 15),
    (b"OM", 23),
    (b"PK", 24),
    (b"PL", 28),
    (b"PS", 29),
    (b"PT", 25),
    (b"QA", 29),
    (b"RO", 24),
    (b"RS", 22),
    (b"RU", 33),
    (b"SA", 24),
    (b"SC", 31),
    (b"SD", 18),
    (b"SE", 24),
    (b"SI", 19),
    (b"SK", 24),
    (b"SM", 27),
    (b"SO", 23),
    (b"ST", 25),
    (b"SV", 28),
    (b"TL", 23),
    (b"TN", 24),
    (b"TR", 26),
    (b"UA", 29),
    (b"VA", 22),
    (b"VG", 24),
    (b"XK", 20),
    (b"YE", 30),
];

/// The ISO 7064 mod 97-10 check of an IBAN's characters (no spaces): the
/// first four moved to the end, letters as 10 to 35, the number mod 97
/// must be 1.
pub fn iban_mod97(chars: &[u8]) -> bool {
    if chars.len() < 5 {
        return false;
    }
    let (head, tail) = chars.split_at(4);
    let mut rem = 0u32;
    for &c in tail.iter().chain(head) {
        rem = match c {
            b'0'..=b'9' => (rem * 10 + u32::from(c - b'0')) % 97,
            b'A'..=b'Z' => (rem * 100 + u32::from(c - b'A') + 10) % 97,
            _ => return false,
        };
    }
    rem == 1
}

/// An IBAN: a known country code, that country's length, and the mod 97
/// check. A match that runs on past the country's length (a reference
/// printed after it) is cut there when a space falls at the cut.
pub fn iban(text: &str, span: Range<usize>) -> Option<Range<usize>> {
    let bytes = &text.as_bytes()[span.clone()];
    let country = [bytes[0], bytes[1]];
    let &(_, length) = IBAN_LENGTHS.iter().find(|(c, _)| **c == country)?;
    let mut chars = [0u8; 34];
    let mut n = 0;
    let mut end = span.end;
    for (i, &b) in bytes.iter().enumerate() {
        if b == b' ' {
            continue;
        }
        if n == length {
            // One more character than the country has: cut before it if a
            // space separates the two, else it is no IBAN of that country.
            if bytes[i - 1] != b' ' {
                return None;
            }
            end = span.start + i - 1;
            break;
        }
        chars[n] = b;
        n += 1;
    }
    (n == length && iban_mod97(&chars[..n])).then_some(span.start..end)
}

/// The most digits a phone number has (E.164).
const MAX_PHONE_DIGITS: usize = 15;

/// A phone number, by the form the regex matched:
///
/// - `+` and a country code: 8 to 15 digits (a `(0)` trunk prefix not
///   counted), 10 or more when written without any separator, and no
///   letter, digit or `+` right before the `+`;
/// - North American (`(415) 555-0132`, `415-555-0132`, `415.555.0132`,
///   optionally after `1-`): one kind of separator between the groups;
/// - national with a trunk `0` (`020 7946 0958`, `06-12345678`,
///   `01 23 45 67 89`): one kind of separator, 9 to 11 digits.
///
/// None may continue a longer dotted, dashed or slashed number, or touch a
/// letter or digit. Plain digit runs (Unix times, ids), dates and times of
/// day are never phone numbers here.
pub fn phone(text: &str, span: Range<usize>) -> Option<Range<usize>> {
    if is_alnum(before(text, span.start))
        || is_alnum(after(text, span.end))
        || joined(text, &span, b".-/")
    {
        return None;
    }
    let bytes = &text.as_bytes()[span.clone()];
    let digits = bytes.iter().filter(|b| b.is_ascii_digit()).count();
    let separated = bytes.iter().any(|b| matches!(b, b' ' | b'.' | b'-' | b'('));
    if bytes[0] == b'+' {
        if before(text, span.start) == Some(b'+') {
            return None;
        }
        let trunk = usize::from(text[span.clone()].contains("(0)"));
        let least = if separated { 8 } else { 10 };
        return (least..=MAX_PHONE_DIGITS)
            .contains(&(digits - trunk))
            .then_some(span);
    }
    if bytes.contains(&b'(') {
        // `(415) 555-0132`: the regex fixed every group.
        return Some(span);
    }
    let mut seps = bytes.iter().filter(|b| !b.is_ascii_digit());
    let one_kind = seps.next().is_none_or(|s| seps.all(|t| t == s));
    let count_fits = bytes[0] != b'0' || (9..=11).contains(&digits);
    (one_kind && count_fits).then_some(span)
}

/// File-name endings that follow an `@` in asset names (`icon@2x.png`)
/// and are never an e-mail's top-level domain in logs.
const ASSET_ENDINGS: &[&str] = &[
    "png", "jpg", "jpeg", "gif", "svg", "webp", "ico", "css", "js", "map",
];

/// An e-mail address whose top-level domain is not an asset file's ending.
pub fn email(text: &str, span: Range<usize>) -> Option<Range<usize>> {
    let s = &text[span.clone()];
    let tld = s.rsplit('.').next().unwrap_or_default();
    let asset = ASSET_ENDINGS.iter().any(|e| tld.eq_ignore_ascii_case(e));
    (!asset).then_some(span)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guarantees: the Luhn check accepts the test card numbers of the
    /// networks and rejects a changed digit.
    #[test]
    fn luhn_accepts_valid_numbers_only() {
        assert!(luhn(b"4111111111111111"));
        assert!(luhn(b"5500 0000 0000 0004"));
        assert!(luhn(b"378282246310005"));
        assert!(!luhn(b"4111111111111112"));
        assert!(!luhn(b"1234567812345678"));
    }

    /// Guarantees: the IBAN check accepts registry examples and rejects a
    /// changed check digit.
    #[test]
    fn mod97_accepts_valid_ibans_only() {
        assert!(iban_mod97(b"DE89370400440532013000"));
        assert!(iban_mod97(b"GB29NWBK60161331926819"));
        assert!(iban_mod97(b"NO9386011117947"));
        assert!(!iban_mod97(b"DE88370400440532013000"));
        assert!(!iban_mod97(b"DE89"));
    }

    /// Guarantees: an IBAN followed by more text is cut at the country's
    /// length when a space separates them.
    #[test]
    fn iban_is_cut_at_its_country_length() {
        let text = "DE89 3704 0044 0532 0130 00 12";
        assert_eq!(iban(text, 0..text.len()), Some(0..27));
        let text = "DE89 3704 0044 0532 0130 0012";
        assert_eq!(iban(text, 0..text.len()), None);
    }

    /// Guarantees: only the credential after `Bearer` is redacted, and a
    /// short word or a scheme name is no credential.
    #[test]
    fn bearer_narrows_to_the_credential() {
        let text = "Bearer abcdefgh12345678";
        assert_eq!(bearer(text, 0..text.len()), Some(7..text.len()));
        let text = "Bearer realm";
        assert_eq!(bearer(text, 0..text.len()), None);
        let text = "xBearer abcdefgh12345678";
        assert_eq!(bearer(text, 1..text.len()), None);
    }

    /// Guarantees: a bare `Basic` credential counts only when it decodes
    /// to `user:password`.
    #[test]
    fn basic_needs_user_and_password() {
        // "user:password", "Aladdin:open sesame"
        assert!(decodes_to_user_password(b"dXNlcjpwYXNzd29yZA=="));
        assert!(decodes_to_user_password(b"QWxhZGRpbjpvcGVuIHNlc2FtZQ=="));
        // "configuration" is not base64 of anything with a colon.
        assert!(!decodes_to_user_password(b"configuration"));
        assert!(!decodes_to_user_password(b"dXNlcnBhc3N3b3Jk"));
    }
}
