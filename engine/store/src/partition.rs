//! Hourly partitions: which hour a row belongs to, and the directory that
//! holds the hour (`date=YYYY-MM-DD/hour=HH`).
//!
//! An hour is numbered by hours since the Unix epoch (UTC); the date is the
//! proleptic Gregorian calendar (Howard Hinnant's `civil_from_days`).

use std::time::{SystemTime, UNIX_EPOCH};

/// Nanoseconds in one hour.
pub(crate) const HOUR_NS: i64 = 3_600 * 1_000_000_000;

/// The hour (since the epoch) holding the instant `ns`.
pub(crate) fn hour_of(ns: i64) -> i64 {
    ns.div_euclid(HOUR_NS)
}

/// The first nanosecond of hour `hour`, saturating.
pub(crate) fn hour_start(hour: i64) -> i64 {
    hour.saturating_mul(HOUR_NS)
}

/// The last nanosecond of hour `hour`, saturating.
pub(crate) fn hour_end(hour: i64) -> i64 {
    hour_start(hour).saturating_add(HOUR_NS - 1)
}

/// Now, in nanoseconds since the epoch.
pub(crate) fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// The directory of hour `hour`, relative to its table:
/// `date=YYYY-MM-DD/hour=HH`.
pub(crate) fn hour_dir(hour: i64) -> String {
    let days = hour.div_euclid(24);
    let (y, m, d) = civil_from_days(days);
    format!("date={y:04}-{m:02}-{d:02}/hour={:02}", hour.rem_euclid(24))
}

/// The instant `ns` in UTC to the second, as RFC 3339 writes it:
/// `2024-03-01T10:00:00Z` (any `i64`: from 1677 to 2262).
pub(crate) fn utc(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        s / 3_600,
        s / 60 % 60,
        s % 60
    )
}

/// The hour of a directory `date=YYYY-MM-DD/hour=HH`, from its two path
/// parts; `None` if they are not of that form.
pub(crate) fn parse_hour_dir(date: &str, hour: &str) -> Option<i64> {
    let date = date.strip_prefix("date=")?;
    let hour: i64 = hour.strip_prefix("hour=")?.parse().ok()?;
    if !(0..24).contains(&hour) {
        return None;
    }
    let mut parts = date.splitn(3, '-');
    let y: i64 = parts.next()?.parse().ok()?;
    let m: u32 = parts.next()?.parse().ok()?;
    let d: u32 = parts.next()?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let days = days_from_civil(y, m, d);
    // Reject dates that do not exist (31 February), which would alias.
    if civil_from_days(days) != (y, m, d) {
        return None;
    }
    Some(days * 24 + hour)
}

/// Days since 1970-01-01 -> (year, month, day).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (year, month, day) -> days since 1970-01-01.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Guarantees: known instants land in the right directory.
    #[test]
    fn known_dates() {
        assert_eq!(hour_dir(0), "date=1970-01-01/hour=00");
        // 2024-02-29T13:45:00Z = 1709214300 s.
        assert_eq!(
            hour_dir(hour_of(1_709_214_300 * 1_000_000_000)),
            "date=2024-02-29/hour=13"
        );
        assert_eq!(hour_dir(-1), "date=1969-12-31/hour=23");
        assert_eq!(parse_hour_dir("date=2024-02-30", "hour=01"), None);
        assert_eq!(parse_hour_dir("date=2024-02-29", "hour=24"), None);
        assert_eq!(parse_hour_dir("x", "hour=01"), None);
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            utc(1_709_214_300 * 1_000_000_000 + 7),
            "2024-02-29T13:45:00Z"
        );
        assert_eq!(utc(-1), "1969-12-31T23:59:59Z");
        assert_eq!(utc(i64::MAX), "2262-04-11T23:47:16Z");
        assert_eq!(utc(i64::MIN), "1677-09-21T00:12:43Z");
    }

    proptest! {
        /// Guarantees: every hour's directory parses back to the same hour,
        /// and an instant lies within its hour.
        #[test]
        fn hour_dirs_round_trip(ns in any::<i64>()) {
            let hour = hour_of(ns);
            prop_assert!(hour_start(hour) <= ns && ns <= hour_end(hour));
            let dir = hour_dir(hour);
            let (date, h) = dir.split_once('/').expect("two parts");
            prop_assert_eq!(parse_hour_dir(date, h), Some(hour));
        }
    }
}
