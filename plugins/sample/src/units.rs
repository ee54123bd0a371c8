//! Durations and sizes as people write them in the pipeline file.
//!
//! Durations: `"30s"`, `"1400ms"`, `"1.5s"`, `"1m30s"` (Go's
//! `time.ParseDuration` syntax without signs, as in the Collector's configs
//! and `spanmetrics`), read into whole nanoseconds. Sizes: `"256MiB"`,
//! `"1GiB"`, `"500MB"`, `"65536"` (bytes), read into bytes.

/// Nanoseconds per unit, by suffix.
const UNITS: [(&str, u64); 9] = [
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("μs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
    ("d", 86_400_000_000_000),
];

/// Parses `text` into nanoseconds: one or more `<number><unit>` parts
/// (`ns`, `us`/`µs`, `ms`, `s`, `m`, `h`, `d`), a number with an optional
/// fraction; `"0"` alone is zero. The error says what is wrong, for the
/// caller to prefix with the key.
pub fn duration(text: &str) -> Result<u64, String> {
    let s = text.trim();
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err("an empty duration; write it like \"15s\" or \"250ms\"".into());
    }
    let mut rest = s;
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, tail) = rest.split_at(digits);
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, next) = tail.split_at(unit_len);
        let Some(per) = UNITS.iter().find(|(u, _)| *u == unit).map(|(_, n)| *n) else {
            return Err(if unit.is_empty() {
                format!("`{s}` has no unit; add one of ns, us, ms, s, m, h, d (\"{s}ms\")")
            } else {
                format!("`{s}`: `{unit}` is not a unit; use ns, us, ms, s, m, h or d")
            });
        };
        total = total
            .checked_add(part(number, per).ok_or_else(|| not_a_duration(s))?)
            .ok_or_else(|| too_long(s))?;
        rest = next;
    }
    Ok(total)
}

/// `number` (digits, at most one `.`) times `per` nanoseconds, exactly;
/// digits beyond a nanosecond are cut. `None` when it is not a number or
/// does not fit.
fn part(number: &str, per: u64) -> Option<u64> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() || fraction.contains('.') {
        return None;
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut nanos = whole.checked_mul(per)?;
    let mut scale = per;
    for digit in fraction.bytes() {
        scale /= 10;
        nanos = nanos.checked_add(u64::from(digit - b'0') * scale)?;
    }
    Some(nanos)
}

fn not_a_duration(s: &str) -> String {
    format!("`{s}` is not a duration; write it like \"15s\", \"250ms\" or \"1.5s\"")
}

fn too_long(s: &str) -> String {
    format!("`{s}` is too long a duration")
}

/// Bytes per unit, by suffix (binary and decimal multiples).
const SIZES: [(&str, u64); 9] = [
    ("B", 1),
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("TiB", 1 << 40),
    ("KB", 1_000),
    ("MB", 1_000_000),
    ("GB", 1_000_000_000),
    ("TB", 1_000_000_000_000),
];

/// Parses a size into bytes: a whole number with an optional unit (`B`,
/// `KiB`, `MiB`, `GiB`, `TiB`, `KB`, `MB`, `GB`, `TB`; none is bytes),
/// spaces allowed between them. The error says what is wrong, for the
/// caller to prefix with the key.
pub fn size(text: &str) -> Result<u64, String> {
    let s = text.trim();
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(digits);
    let unit = unit.trim();
    let Ok(number) = number.parse::<u64>() else {
        return Err(format!(
            "`{s}` is not a size; write a whole number of bytes with a unit, like \"256MiB\""
        ));
    };
    let per = match unit {
        "" => 1,
        _ => SIZES
            .iter()
            .find(|(u, _)| *u == unit)
            .map(|(_, n)| *n)
            .ok_or_else(|| {
                format!(
                    "`{s}`: `{unit}` is not a unit; use B, KiB, MiB, GiB, TiB, KB, MB, GB or TB"
                )
            })?,
    };
    number
        .checked_mul(per)
        .ok_or_else(|| format!("`{s}` is too large a size"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guarantees: the forms the README shows parse to what they say, and
    /// malformed ones are refused with a hint.
    #[test]
    fn durations_and_sizes_parse_as_documented() {
        assert_eq!(duration("30s"), Ok(30_000_000_000));
        assert_eq!(duration("1m30s"), Ok(90_000_000_000));
        assert_eq!(duration("1.5s"), Ok(1_500_000_000));
        assert_eq!(duration("250ms"), Ok(250_000_000));
        assert!(duration("30").expect_err("no unit").contains("no unit"));
        assert!(duration("-1s").is_err());
        assert_eq!(size("256MiB"), Ok(256 << 20));
        assert_eq!(size("1 GiB"), Ok(1 << 30));
        assert_eq!(size("500MB"), Ok(500_000_000));
        assert_eq!(size("65536"), Ok(65_536));
        assert!(
            size("lots")
                .expect_err("not a number")
                .contains("not a size")
        );
        assert!(
            size("5 parsecs")
                .expect_err("no such unit")
                .contains("not a unit")
        );
        assert!(size("-5MiB").is_err());
    }
}
