//! The wall clock in the units OTLP uses.

use std::time::{SystemTime, UNIX_EPOCH};

/// Nanoseconds in a second.
pub const SECOND: u64 = 1_000_000_000;

/// Nanoseconds in a millisecond.
pub const MILLI: u64 = 1_000_000;

/// Now, in nanoseconds since the epoch.
pub fn now_ns() -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970");
    u64::try_from(now.as_nanos()).expect("before the year 2554")
}

/// Now, in whole seconds since the epoch.
pub fn now_secs() -> u64 {
    now_ns() / SECOND
}
