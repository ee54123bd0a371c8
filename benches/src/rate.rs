//! A records-per-second limiter shared by all workers.
//!
//! It is a virtual schedule (the GCRA form of a token bucket): each request
//! of `n` records books the next `n / rate` seconds of the schedule and may
//! start when its booking starts. When senders fall behind (the server is
//! slow), the schedule does not let them catch up in one burst of more than
//! `burst` worth of time: bookings never start earlier than `now - burst`.
//! One atomic compare-and-swap per request, no lock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// Shared pacing for a target rate of records per second.
#[derive(Debug)]
pub struct RateLimiter {
    origin: Instant,
    /// Nanoseconds of schedule one record books.
    ns_per_record: f64,
    /// How far behind `now` a booking may start.
    burst_ns: u64,
    /// Start of the next free slot, in ns since `origin`.
    next_ns: AtomicU64,
}

impl RateLimiter {
    /// A limiter for `records_per_sec` (> 0), allowing catch-up bursts of `burst`.
    pub fn new(records_per_sec: f64, burst: Duration) -> Self {
        Self::with_origin(records_per_sec, burst, Instant::now())
    }

    /// Like [`RateLimiter::new`], with the schedule starting at `origin`.
    pub fn with_origin(records_per_sec: f64, burst: Duration, origin: Instant) -> Self {
        Self {
            origin,
            ns_per_record: 1e9 / records_per_sec.max(f64::MIN_POSITIVE),
            burst_ns: u64::try_from(burst.as_nanos()).unwrap_or(u64::MAX),
            next_ns: AtomicU64::new(0),
        }
    }

    /// Books `records` at time `now_ns` (ns since the origin) and returns when
    /// the caller may send, in ns since the origin.
    pub fn reserve_at(&self, now_ns: u64, records: u64) -> u64 {
        let cost = (records as f64 * self.ns_per_record).round() as u64;
        let floor = now_ns.saturating_sub(self.burst_ns);
        let mut current = self.next_ns.load(Ordering::Relaxed);
        loop {
            let start = current.max(floor);
            match self.next_ns.compare_exchange_weak(
                current,
                start.saturating_add(cost),
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return start,
                Err(seen) => current = seen,
            }
        }
    }

    /// Waits until `records` may be sent.
    pub async fn acquire(&self, records: u64) {
        let now_ns = u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let start = self.reserve_at(now_ns, records);
        if start > now_ns {
            tokio::time::sleep_until(self.origin + Duration::from_nanos(start)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Back-to-back bookings are spaced by records / rate: 1000 records/s, 10 records = 10 ms.
    #[test]
    fn bookings_are_spaced_by_cost() {
        let limiter = RateLimiter::new(1_000.0, Duration::ZERO);
        assert_eq!(limiter.reserve_at(0, 10), 0);
        assert_eq!(limiter.reserve_at(0, 10), 10_000_000);
        assert_eq!(limiter.reserve_at(0, 5), 20_000_000);
        assert_eq!(limiter.reserve_at(0, 1), 25_000_000);
    }

    /// An idle limiter does not bank more than `burst` of unused time.
    #[test]
    fn idle_time_beyond_burst_is_not_banked() {
        let limiter = RateLimiter::new(1_000.0, Duration::from_millis(100));
        assert_eq!(limiter.reserve_at(0, 10), 0);
        // A second later: the schedule is 990 ms behind, but only 100 ms may be caught up.
        let now = 1_000_000_000;
        assert_eq!(limiter.reserve_at(now, 50), now - 100_000_000);
        assert_eq!(limiter.reserve_at(now, 50), now - 50_000_000);
        assert_eq!(limiter.reserve_at(now, 50), now);
        assert_eq!(limiter.reserve_at(now, 50), now + 50_000_000);
    }

    /// Bookings from many threads never overlap: the total booked time equals the total cost.
    #[test]
    fn concurrent_bookings_do_not_overlap() {
        let limiter = std::sync::Arc::new(RateLimiter::new(1_000_000.0, Duration::ZERO));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let limiter = limiter.clone();
                std::thread::spawn(move || {
                    (0..1_000)
                        .map(|_| limiter.reserve_at(0, 3))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut starts: Vec<u64> = threads
            .into_iter()
            .flat_map(|t| t.join().expect("thread runs"))
            .collect();
        starts.sort_unstable();
        starts.dedup();
        assert_eq!(starts.len(), 4_000);
        assert_eq!(starts[0], 0);
        assert!(starts.windows(2).all(|w| w[1] - w[0] == 3_000));
    }

    /// In real time, 10 acquisitions of 100 records at 2000 records/s take 450 ms (the first is free).
    #[tokio::test]
    async fn acquire_paces_in_time() {
        let start = Instant::now();
        let limiter = RateLimiter::with_origin(2_000.0, Duration::ZERO, start);
        for _ in 0..10 {
            limiter.acquire(100).await;
        }
        let elapsed = start.elapsed();
        assert!(
            elapsed >= Duration::from_millis(449) && elapsed < Duration::from_millis(1_500),
            "took {elapsed:?}"
        );
    }
}
