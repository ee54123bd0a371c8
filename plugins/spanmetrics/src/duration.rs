//! Durations as people write them in the pipeline file and in the
//! Collector's configs: `"15s"`, `"1400ms"`, `"100us"`, `"1.5s"`, `"1m30s"`
//! (Go's `time.ParseDuration` syntax, without signs), read into whole
//! nanoseconds.

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
pub fn parse(text: &str) -> Result<u64, String> {
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

#[cfg(test)]
mod tests {
    use super::parse;

    /// Guarantees: every unit the Collector's configs use reads exactly,
    /// fractions and compound durations included.
    #[test]
    fn reads_go_style_durations() {
        assert_eq!(parse("15s"), Ok(15_000_000_000));
        assert_eq!(parse("1400ms"), Ok(1_400_000_000));
        assert_eq!(parse("100us"), Ok(100_000));
        assert_eq!(parse("100µs"), Ok(100_000));
        assert_eq!(parse("250ns"), Ok(250));
        assert_eq!(parse("1.5s"), Ok(1_500_000_000));
        assert_eq!(parse("0.5ms"), Ok(500_000));
        assert_eq!(parse(".5ms"), Ok(500_000));
        assert_eq!(parse("1m30s"), Ok(90_000_000_000));
        assert_eq!(parse("2h"), Ok(7_200_000_000_000));
        assert_eq!(parse("0"), Ok(0));
        assert_eq!(parse("0s"), Ok(0));
    }

    /// Guarantees: a malformed duration is refused with a message saying
    /// how to write one, never read as something else.
    #[test]
    fn refuses_what_is_not_a_duration() {
        for bad in ["", "15", "15 s", "fast", "1.2.3s", "-5s", "5sec", "s", "."] {
            let err = parse(bad).expect_err(bad);
            assert!(
                err.contains("duration") || err.contains("unit"),
                "{bad}: {err}"
            );
        }
        assert!(parse("99999999999h").is_err());
    }
}
