//! Durations and sizes as people write them in a pipeline file, the
//! syntax of the OpenTelemetry Collector's configs. Durations: `"15s"`,
//! `"1400ms"`, `"100us"`, `"1.5s"`, `"1m30s"` (Go's `time.ParseDuration`
//! without signs, plus `d`), read into whole nanoseconds. Sizes:
//! `"256MiB"`, `"1 GiB"`, `"500MB"`, `"65536"` (bytes), read into bytes.
//!
//! Both return the message alone (`` `30` has no unit; ... ``) for the
//! caller to prefix with the config key it read the text from.

/// Nanoseconds per unit, by suffix.
const DURATION_UNITS: [(&str, u64); 9] = [
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
/// fraction (`"1.5s"`, `".5ms"`); `"0"` alone is zero. Digits beyond a
/// nanosecond are cut.
///
/// # Errors
///
/// What is wrong and how to write a duration instead, without the key:
/// no unit (`"30"`), an unknown unit (`"5sec"`), not a number (`"-5s"`,
/// `"1.2.3s"`), empty, or more than `u64::MAX` nanoseconds.
pub fn duration_ns(text: &str) -> Result<u64, String> {
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
        let Some(per) = DURATION_UNITS
            .iter()
            .find(|(u, _)| *u == unit)
            .map(|(_, n)| *n)
        else {
            return Err(if unit.is_empty() {
                format!("`{s}` has no unit; add one of ns, us, ms, s, m, h, d (\"{s}ms\")")
            } else {
                format!("`{s}`: `{unit}` is not a unit; use ns, us, ms, s, m, h or d")
            });
        };
        let part = duration_part(number, per).ok_or_else(|| {
            format!("`{s}` is not a duration; write it like \"15s\", \"250ms\" or \"1.5s\"")
        })?;
        total = total
            .checked_add(part)
            .ok_or_else(|| format!("`{s}` is too long a duration"))?;
        rest = next;
    }
    Ok(total)
}

/// `number` (digits, at most one `.`) times `per` nanoseconds, exactly;
/// digits beyond a nanosecond are cut. `None` when it is not a number or
/// does not fit.
fn duration_part(number: &str, per: u64) -> Option<u64> {
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

/// Bytes per unit, by suffix (binary and decimal multiples).
const SIZE_UNITS: [(&str, u64); 9] = [
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
/// spaces allowed between them.
///
/// # Errors
///
/// What is wrong and how to write a size instead, without the key: not a
/// whole number (`"lots"`, `"-5MiB"`), an unknown unit (`"5 parsecs"`), or
/// more than `u64::MAX` bytes.
pub fn byte_size(text: &str) -> Result<u64, String> {
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
        _ => SIZE_UNITS
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
    use super::{byte_size, duration_ns};

    /// Guarantees: every unit the Collector's configs use reads exactly,
    /// fractions and compound durations included.
    #[test]
    fn reads_go_style_durations() {
        assert_eq!(duration_ns("15s"), Ok(15_000_000_000));
        assert_eq!(duration_ns("30s"), Ok(30_000_000_000));
        assert_eq!(duration_ns("1400ms"), Ok(1_400_000_000));
        assert_eq!(duration_ns("250ms"), Ok(250_000_000));
        assert_eq!(duration_ns("100us"), Ok(100_000));
        assert_eq!(duration_ns("100µs"), Ok(100_000));
        assert_eq!(duration_ns("100μs"), Ok(100_000));
        assert_eq!(duration_ns("250ns"), Ok(250));
        assert_eq!(duration_ns("1.5s"), Ok(1_500_000_000));
        assert_eq!(duration_ns("0.5ms"), Ok(500_000));
        assert_eq!(duration_ns(".5ms"), Ok(500_000));
        assert_eq!(duration_ns("1m30s"), Ok(90_000_000_000));
        assert_eq!(duration_ns("2h"), Ok(7_200_000_000_000));
        assert_eq!(duration_ns("1d"), Ok(86_400_000_000_000));
        assert_eq!(duration_ns(" 15s "), Ok(15_000_000_000));
        assert_eq!(duration_ns("0"), Ok(0));
        assert_eq!(duration_ns("0s"), Ok(0));
    }

    /// Guarantees: a malformed duration is refused with a message saying
    /// how to write one, never read as something else; one without a unit
    /// says so.
    #[test]
    fn refuses_what_is_not_a_duration() {
        for bad in ["", "15", "15 s", "fast", "1.2.3s", "-5s", "5sec", "s", "."] {
            let err = duration_ns(bad).expect_err(bad);
            assert!(
                err.contains("duration") || err.contains("unit"),
                "{bad}: {err}"
            );
        }
        assert!(duration_ns("30").expect_err("no unit").contains("no unit"));
        assert!(duration_ns("99999999999h").is_err());
    }

    /// Guarantees: sizes read in binary and decimal units and as bare
    /// bytes, and malformed ones are refused with a hint.
    #[test]
    fn reads_sizes_and_refuses_what_is_not_one() {
        assert_eq!(byte_size("256MiB"), Ok(256 << 20));
        assert_eq!(byte_size("1 GiB"), Ok(1 << 30));
        assert_eq!(byte_size("500MB"), Ok(500_000_000));
        assert_eq!(byte_size("65536"), Ok(65_536));
        assert!(
            byte_size("lots")
                .expect_err("not a number")
                .contains("not a size")
        );
        assert!(
            byte_size("5 parsecs")
                .expect_err("no such unit")
                .contains("not a unit")
        );
        assert!(byte_size("-5MiB").is_err());
        assert!(byte_size("99999999TiB").is_err());
    }
}
