//! The timed phase: workers, pacing, retries and the numbers they collect.
//!
//! [`run_phase`] starts `concurrency` workers, each holding its own
//! [`Transport`] (gRPC workers share a few HTTP/2 connections). A worker takes
//! the next request number from a shared counter, which picks the signal (from
//! the mix schedule) and the body (from the pool), waits for the rate limiter
//! when there is one, sends, and records the outcome in its own [`Totals`].
//! The phase ends at its deadline or after its request budget; totals are
//! merged at the end. A progress task can print a line every second from a
//! few shared atomic counters.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::time::Instant;

use crate::client::{Failure, Transport};
use crate::pool::{Payload, Pool, Signal};
use crate::rate::RateLimiter;

/// Highest latency the histogram tracks exactly (60 s, in microseconds); longer ones are clamped.
const MAX_TRACKED_LATENCY_US: u64 = 60_000_000;

/// What one phase does.
#[derive(Debug, Clone)]
pub struct PhasePlan {
    /// Requests in flight at once (one worker each).
    pub concurrency: usize,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Stop after this many requests (across workers).
    pub requests: Option<u64>,
    /// Records per second across workers; `None` = as fast as possible.
    pub rate: Option<f64>,
    /// Retries of a retryable failure (0 = none).
    pub retries: u32,
    /// The signal of request `i` is `schedule[i % schedule.len()]`.
    pub schedule: Vec<Signal>,
    /// Print a line to stderr every second.
    pub progress: bool,
}

/// Errors of one kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorCount {
    /// How many attempts failed so.
    pub count: u64,
    /// The detail of the first one.
    pub example: String,
}

/// What a phase (or one worker of it) saw.
#[derive(Debug, Clone)]
pub struct Totals {
    /// Latency of successful requests, in microseconds (retries included).
    pub latency_us: Histogram<u64>,
    /// Requests answered with success (possibly after retries).
    pub requests_ok: u64,
    /// Requests that failed for good.
    pub requests_failed: u64,
    /// Attempts made (requests plus retries).
    pub attempts: u64,
    /// Retries made.
    pub retries: u64,
    /// Records the server accepted (in successful requests, minus rejected ones).
    pub records_ok: u64,
    /// Records the server reported rejected in `partial_success`.
    pub records_rejected: u64,
    /// Records in requests that failed for good.
    pub records_failed: u64,
    /// Bytes of request bodies put on the wire (compressed when gzip), every attempt.
    pub wire_bytes: u64,
    /// Bytes of encoded request bodies before compression, every attempt.
    pub payload_bytes: u64,
    /// Failed attempts by kind, named as [`crate::client::ErrorKind`] prints (`grpc UNAVAILABLE`, `http 503`).
    pub errors: BTreeMap<String, ErrorCount>,
    /// Records accepted, per signal.
    pub records_by_signal: BTreeMap<Signal, u64>,
}

impl Default for Totals {
    fn default() -> Self {
        Self {
            latency_us: Histogram::new_with_bounds(1, MAX_TRACKED_LATENCY_US, 3)
                .expect("1..60e6 with 3 significant digits is a valid histogram range"),
            requests_ok: 0,
            requests_failed: 0,
            attempts: 0,
            retries: 0,
            records_ok: 0,
            records_rejected: 0,
            records_failed: 0,
            wire_bytes: 0,
            payload_bytes: 0,
            errors: BTreeMap::new(),
            records_by_signal: BTreeMap::new(),
        }
    }
}

impl Totals {
    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &Totals) {
        // Both histograms share bounds, so adding cannot fail.
        let _ = self.latency_us.add(&other.latency_us);
        self.requests_ok += other.requests_ok;
        self.requests_failed += other.requests_failed;
        self.attempts += other.attempts;
        self.retries += other.retries;
        self.records_ok += other.records_ok;
        self.records_rejected += other.records_rejected;
        self.records_failed += other.records_failed;
        self.wire_bytes += other.wire_bytes;
        self.payload_bytes += other.payload_bytes;
        for (kind, e) in &other.errors {
            let entry = self.errors.entry(kind.clone()).or_default();
            if entry.count == 0 {
                entry.example.clone_from(&e.example);
            }
            entry.count += e.count;
        }
        for (signal, n) in &other.records_by_signal {
            *self.records_by_signal.entry(*signal).or_default() += n;
        }
    }

    fn record_failure(&mut self, failure: &Failure) {
        let entry = self.errors.entry(failure.kind.to_string()).or_default();
        if entry.count == 0 {
            entry.example.clone_from(&failure.detail);
        }
        entry.count += 1;
    }

    /// Requests that got a final answer or failed for good.
    pub fn requests(&self) -> u64 {
        self.requests_ok + self.requests_failed
    }

    /// Failed requests over all requests (0 when none were sent).
    pub fn error_ratio(&self) -> f64 {
        let total = self.requests();
        if total == 0 {
            0.0
        } else {
            self.requests_failed as f64 / total as f64
        }
    }
}

/// Counters the progress line reads while the phase runs.
#[derive(Debug, Default)]
struct Live {
    records_ok: AtomicU64,
    requests_ok: AtomicU64,
    failed_attempts: AtomicU64,
    wire_bytes: AtomicU64,
}

/// State shared by a phase's workers.
struct Shared {
    pool: Arc<LivePool>,
    next: AtomicU64,
    deadline: Option<Instant>,
    max_requests: Option<u64>,
    limiter: Option<RateLimiter>,
    retries: u32,
    schedule: Vec<Signal>,
    live: Live,
}

impl Shared {
    fn expired(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    fn remaining(&self) -> Duration {
        self.deadline.map_or(Duration::MAX, |d| {
            d.saturating_duration_since(Instant::now())
        })
    }

    /// The next request's body, or `None` when the phase is over.
    fn next_payload(&self) -> Option<Payload> {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        if self.max_requests.is_some_and(|n| i >= n) || self.expired() {
            return None;
        }
        let turns = self.schedule.len() as u64;
        let signal = self.schedule[(i % turns) as usize];
        let pool = self.pool.current();
        let payloads = pool.payloads(signal);
        if payloads.is_empty() {
            return None;
        }
        Some(payloads[((i / turns) % payloads.len() as u64) as usize].clone())
    }
}

/// The pool the workers take bodies from: fixed, or rebuilt now and then
/// (`--live-time`) and swapped in whole.
#[derive(Debug, Default)]
pub struct LivePool(std::sync::RwLock<Arc<Pool>>);

impl LivePool {
    /// A pool that starts as `pool`.
    pub fn new(pool: Arc<Pool>) -> Self {
        LivePool(std::sync::RwLock::new(pool))
    }

    /// The pool now.
    pub fn current(&self) -> Arc<Pool> {
        self.0
            .read()
            .map_or_else(|poisoned| poisoned.into_inner().clone(), |p| p.clone())
    }

    /// Swaps in `pool`.
    pub fn replace(&self, pool: Pool) {
        match self.0.write() {
            Ok(mut p) => *p = Arc::new(pool),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(pool),
        }
    }
}

/// Why a phase could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A worker task panicked or was cancelled: a bug in the load generator.
    #[error("a load generator worker stopped unexpectedly (a bug): {0}")]
    Worker(#[from] tokio::task::JoinError),
    /// The plan cannot run.
    #[error("invalid phase plan: {0}")]
    Plan(&'static str),
}

/// Runs one phase with one worker per transport and returns what it saw and how long it took.
pub async fn run_phase(
    transports: &[Transport],
    pool: Arc<LivePool>,
    plan: &PhasePlan,
) -> Result<(Totals, Duration), RunError> {
    if transports.is_empty() {
        return Err(RunError::Plan("no transports (concurrency is 0)"));
    }
    if plan.schedule.is_empty() {
        return Err(RunError::Plan("no signal to send"));
    }
    if plan.duration.is_none() && plan.requests.is_none() {
        return Err(RunError::Plan("neither a duration nor a request count"));
    }
    let started = Instant::now();
    let shared = Arc::new(Shared {
        pool,
        next: AtomicU64::new(0),
        deadline: plan.duration.map(|d| started + d),
        max_requests: plan.requests,
        limiter: plan
            .rate
            .map(|r| RateLimiter::with_origin(r, Duration::from_millis(100), started)),
        retries: plan.retries,
        schedule: plan.schedule.clone(),
        live: Live::default(),
    });
    let progress = plan
        .progress
        .then(|| tokio::spawn(progress_lines(shared.clone(), started)));
    let workers: Vec<_> = transports
        .iter()
        .take(plan.concurrency.max(1))
        .cloned()
        .map(|t| tokio::spawn(worker(t, shared.clone())))
        .collect();
    let mut totals = Totals::default();
    let mut failure = None;
    for w in workers {
        match w.await {
            Ok(t) => totals.merge(&t),
            Err(e) => failure = Some(e),
        }
    }
    let elapsed = started.elapsed();
    if let Some(p) = progress {
        p.abort();
    }
    match failure {
        Some(e) => Err(RunError::Worker(e)),
        None => Ok((totals, elapsed)),
    }
}

/// Backoff before retry number `attempt` (1-based) when the server named no wait: 100 ms doubling, at most 5 s.
fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100u64.saturating_mul(1u64 << attempt.saturating_sub(1).min(6)))
        .min(Duration::from_secs(5))
}

async fn worker(mut transport: Transport, shared: Arc<Shared>) -> Totals {
    let mut totals = Totals::default();
    while let Some(payload) = shared.next_payload() {
        if let Some(limiter) = &shared.limiter {
            limiter.acquire(payload.records).await;
            if shared.expired() {
                break;
            }
        }
        let started = Instant::now();
        let mut attempt = 0;
        let outcome = loop {
            totals.attempts += 1;
            totals.wire_bytes += payload.wire.len() as u64;
            totals.payload_bytes += payload.body.len() as u64;
            shared
                .live
                .wire_bytes
                .fetch_add(payload.wire.len() as u64, Ordering::Relaxed);
            match transport.send(&payload).await {
                Ok(sent) => break Ok(sent),
                Err(failure) => {
                    totals.record_failure(&failure);
                    shared.live.failed_attempts.fetch_add(1, Ordering::Relaxed);
                    if attempt < shared.retries && failure.retryable() && !shared.expired() {
                        attempt += 1;
                        totals.retries += 1;
                        let wait = failure
                            .retry_after
                            .unwrap_or_else(|| backoff(attempt))
                            .min(shared.remaining());
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    break Err(failure);
                }
            }
        };
        match outcome {
            Ok(sent) => {
                let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                totals
                    .latency_us
                    .saturating_record(micros.clamp(1, MAX_TRACKED_LATENCY_US));
                let rejected = sent.rejected.min(payload.records);
                let accepted = payload.records - rejected;
                totals.requests_ok += 1;
                totals.records_ok += accepted;
                totals.records_rejected += rejected;
                *totals.records_by_signal.entry(payload.signal).or_default() += accepted;
                shared.live.requests_ok.fetch_add(1, Ordering::Relaxed);
                shared
                    .live
                    .records_ok
                    .fetch_add(accepted, Ordering::Relaxed);
            }
            Err(_) => {
                totals.requests_failed += 1;
                totals.records_failed += payload.records;
            }
        }
    }
    totals
}

/// Prints one line a second to stderr with the rates of the last second.
#[allow(clippy::print_stderr)]
async fn progress_lines(shared: Arc<Shared>, started: Instant) {
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.tick().await;
    let (mut records, mut requests, mut errors, mut bytes) = (0, 0, 0, 0);
    let mut last = Instant::now();
    loop {
        ticker.tick().await;
        let now = Instant::now();
        let secs = now.duration_since(last).as_secs_f64().max(1e-9);
        last = now;
        let live = &shared.live;
        let r = live.records_ok.load(Ordering::Relaxed);
        let q = live.requests_ok.load(Ordering::Relaxed);
        let e = live.failed_attempts.load(Ordering::Relaxed);
        let b = live.wire_bytes.load(Ordering::Relaxed);
        eprintln!(
            "[{:>4}s] {:>12.0} records/s {:>8.0} req/s {:>8.1} MB/s  errors +{}",
            now.duration_since(started).as_secs(),
            (r - records) as f64 / secs,
            (q - requests) as f64 / secs,
            (b - bytes) as f64 / secs / 1e6,
            e - errors,
        );
        (records, requests, errors, bytes) = (r, q, e, b);
    }
}

/// The request-by-request signal order for `weights` (spans, logs, metrics):
/// each signal appears in proportion to its weight, interleaved as evenly as
/// possible (smooth weighted round robin), over one cycle of `sum(weights) / gcd` turns.
pub fn mix_schedule(weights: [u32; 3]) -> Vec<Signal> {
    let g = weights.iter().copied().filter(|w| *w > 0).fold(0, gcd);
    if g == 0 {
        return Vec::new();
    }
    let reduced: Vec<i64> = weights.iter().map(|w| i64::from(w / g)).collect();
    let total: i64 = reduced.iter().sum();
    let mut current = [0i64; 3];
    let mut schedule = Vec::with_capacity(total as usize);
    for _ in 0..total {
        for (c, w) in current.iter_mut().zip(&reduced) {
            *c += w;
        }
        let (best, _) = current
            .iter()
            .enumerate()
            .max_by_key(|(i, c)| (**c, std::cmp::Reverse(*i)))
            .expect("three signals");
        current[best] -= total;
        schedule.push(Signal::ALL[best]);
    }
    schedule
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd(b, a % b) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 70,20,10 becomes a 10-turn cycle of 7 spans, 2 logs, 1 metrics, with logs spread apart.
    #[test]
    fn mix_schedule_follows_weights() {
        let s = mix_schedule([70, 20, 10]);
        assert_eq!(s.len(), 10);
        let count = |sig| s.iter().filter(|x| **x == sig).count();
        assert_eq!(count(Signal::Spans), 7);
        assert_eq!(count(Signal::Logs), 2);
        assert_eq!(count(Signal::Metrics), 1);
        let logs: Vec<usize> = (0..s.len()).filter(|i| s[*i] == Signal::Logs).collect();
        assert!(logs[1] - logs[0] >= 3, "logs bunched together: {s:?}");
        assert_eq!(mix_schedule([1, 0, 0]), vec![Signal::Spans]);
        assert_eq!(mix_schedule([0, 0, 5]), vec![Signal::Metrics]);
        assert!(mix_schedule([0, 0, 0]).is_empty());
    }

    /// Backoff doubles from 100 ms and stops at 5 s.
    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff(1), Duration::from_millis(100));
        assert_eq!(backoff(2), Duration::from_millis(200));
        assert_eq!(backoff(4), Duration::from_millis(800));
        assert_eq!(backoff(30), Duration::from_secs(5));
    }

    /// Merging totals adds counts and keeps the first example of each error kind.
    #[test]
    fn totals_merge_adds_up() {
        use crate::client::ErrorKind;
        let mut a = Totals {
            requests_ok: 2,
            ..Totals::default()
        };
        a.latency_us.record(100).expect("in range");
        a.record_failure(&Failure {
            kind: ErrorKind::Http(503),
            retry_after: None,
            detail: "first".into(),
        });
        let mut b = a.clone();
        b.errors.get_mut("http 503").expect("present").example = "second".into();
        b.requests_failed = 1;
        a.merge(&b);
        assert_eq!(a.requests_ok, 4);
        assert_eq!(a.requests(), 5);
        assert_eq!(a.latency_us.len(), 2);
        assert_eq!(a.errors["http 503"].count, 2);
        assert_eq!(a.errors["http 503"].example, "first");
        assert!((a.error_ratio() - 0.2).abs() < 1e-9);
    }
}
