//! Event time: nanoseconds since the Unix epoch, and its text form.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A point in event time: nanoseconds since the Unix epoch (UTC), as in the
/// `Timestamp(Nanosecond, "+00:00")` columns of the signal tables.
pub type UnixNanos = i64;

/// `d` in nanoseconds, saturating at `i64::MAX` (about 292 years).
pub(crate) fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// The last multiple of `every` before `t` (not `t` itself): the start of
/// the pane `(s, s + every]` that holds `t`, and the last evaluation time
/// whose window a watermark at `t` has passed.
pub(crate) fn multiple_before(t: UnixNanos, every: i64) -> UnixNanos {
    let every = every.max(1);
    t.saturating_sub(1).div_euclid(every) * every
}

/// The first multiple of `every` at or after `t`.
pub(crate) fn multiple_from(t: UnixNanos, every: i64) -> UnixNanos {
    let every = every.max(1);
    t.saturating_add(every - 1).div_euclid(every) * every
}

/// `t` as RFC 3339 in UTC with nanoseconds (`2026-11-22T09:00:00.000000000Z`),
/// the form Alertmanager reads. Times before 1970 are written as the epoch.
pub fn rfc3339(t: UnixNanos) -> String {
    let since_epoch = Duration::from_nanos(u64::try_from(t).unwrap_or(0));
    let at: SystemTime = UNIX_EPOCH + since_epoch;
    humantime::format_rfc3339_nanos(at).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guarantees: times print as UTC RFC 3339 with nanoseconds, and
    /// durations convert without overflow.
    #[test]
    fn formats_rfc3339_and_converts_durations() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(rfc3339(1_500_000_000_123), "1970-01-01T00:25:00.000000123Z");
        assert_eq!(rfc3339(-5), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(nanos(Duration::from_secs(60)), 60_000_000_000);
        assert_eq!(nanos(Duration::MAX), i64::MAX);
    }
}
