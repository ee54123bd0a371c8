//! The process's memory limit (`[runtime] memory_limit`), as the
//! OpenTelemetry Collector's `memory_limiter` keeps one: a thread reads the
//! process's resident memory every [`CHECK_INTERVAL`], and while it is at
//! or over the soft limit (`memory_limit - memory_spike_limit`) the sources
//! take no new data — the OTLP source answers 503 / `UNAVAILABLE` with a
//! retry hint, the Kafka source stops fetching — until it falls below it
//! again. What is already accepted goes on to the sinks: nothing
//! acknowledged is dropped to make room.
//!
//! ```text
//! sampler thread ──every 100 ms──▶ RSS (/proc/self/statm) ──▶ over soft limit? ──▶ pressure()
//! OTLP admit / Kafka poll ──▶ pressure() is Some ──▶ refuse (retryable) / wait
//! ```
//!
//! One limit per process: [`install`] sets it (again on a reload), and
//! [`pressure`] is what every source asks. With no limit installed,
//! `pressure` is always `None` and costs one atomic load.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use metrics::Unit;

use crate::metrics::GaugeDef;

/// How often the resident memory is read.
pub const CHECK_INTERVAL: Duration = Duration::from_millis(100);

/// `weir_memory_resident_bytes`.
const RESIDENT: GaugeDef<0> = GaugeDef {
    name: "weir_memory_resident_bytes",
    help: "The process's resident memory, as the memory limit sees it (read every 100 ms while `[runtime] memory_limit` is set).",
    unit: Some(Unit::Bytes),
    labels: [],
};

/// `weir_memory_soft_limit_bytes`.
const SOFT_LIMIT: GaugeDef<0> = GaugeDef {
    name: "weir_memory_soft_limit_bytes",
    help: "Resident memory at which the sources stop taking data: `memory_limit - memory_spike_limit` (0: no limit).",
    unit: Some(Unit::Bytes),
    labels: [],
};

/// `weir_memory_limited`.
const LIMITED: GaugeDef<0> = GaugeDef {
    name: "weir_memory_limited",
    help: "1 while resident memory is over the soft limit and the sources refuse new data, else 0.",
    unit: None,
    labels: [],
};

/// Gives the current recorder the help texts.
pub fn describe() {
    RESIDENT.describe();
    SOFT_LIMIT.describe();
    LIMITED.describe();
}

/// The limit in force: 0 for none.
static SOFT: AtomicU64 = AtomicU64::new(0);
static HARD: AtomicU64 = AtomicU64::new(0);
/// The last resident memory read.
static RSS: AtomicU64 = AtomicU64::new(0);
/// Whether the last read was at or over the soft limit.
static OVER: AtomicBool = AtomicBool::new(false);
static SAMPLER: OnceLock<()> = OnceLock::new();

/// Sets the process's memory limit: `limit` bytes of resident memory, the
/// sources refusing data from `limit - spike` on (`spike` is clamped to
/// `limit`). `None` removes the limit. Starts the sampler thread the first
/// time a limit is set.
pub fn install(limit: Option<u64>, spike: u64) {
    match limit {
        None => {
            SOFT.store(0, Ordering::Relaxed);
            HARD.store(0, Ordering::Relaxed);
            OVER.store(false, Ordering::Relaxed);
        }
        Some(limit) => {
            let soft = limit.saturating_sub(spike.min(limit)).max(1);
            HARD.store(limit, Ordering::Relaxed);
            SOFT.store(soft, Ordering::Relaxed);
            sample();
            SAMPLER.get_or_init(|| {
                let started = std::thread::Builder::new()
                    .name("weir-memory".to_string())
                    .spawn(|| {
                        loop {
                            std::thread::sleep(CHECK_INTERVAL);
                            sample();
                        }
                    });
                if let Err(error) = started {
                    tracing::error!(%error, "cannot start the memory limit's sampler; the limit is read once only");
                }
            });
        }
    }
}

/// Reads the resident memory and updates the state.
fn sample() {
    let soft = SOFT.load(Ordering::Relaxed);
    let Some(rss) = resident_bytes() else {
        return;
    };
    RSS.store(rss, Ordering::Relaxed);
    RESIDENT.with([]).set(rss as f64);
    SOFT_LIMIT.with([]).set(soft as f64);
    let over = soft > 0 && rss >= soft;
    let was = OVER.swap(over, Ordering::Relaxed);
    LIMITED.with([]).set(if over { 1.0 } else { 0.0 });
    if over && !was {
        tracing::warn!(
            resident_bytes = rss,
            soft_limit_bytes = soft,
            limit_bytes = HARD.load(Ordering::Relaxed),
            "memory over the soft limit: the sources refuse new data until it falls"
        );
    } else if was && !over {
        tracing::info!(
            resident_bytes = rss,
            soft_limit_bytes = soft,
            "memory back under the soft limit: the sources take data again"
        );
    }
}

/// The process's resident memory in bytes (Linux: `/proc/self/statm`).
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // The kernel's page size; 4 KiB everywhere Weir runs, but ask.
    let page = page_size();
    Some(pages.saturating_mul(page))
}

#[allow(unsafe_code)]
fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions and only reads a constant.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).ok().filter(|s| *s > 0).unwrap_or(4096)
}

/// Why the sources refuse data now: resident memory at or over the soft
/// limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pressure {
    /// Resident memory at the last read.
    pub resident: u64,
    /// Where refusing starts.
    pub soft_limit: u64,
    /// `[runtime] memory_limit`.
    pub limit: u64,
}

impl std::fmt::Display for Pressure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Weir is over its memory limit ({} MiB resident; data is refused from {} MiB, \
             `[runtime] memory_limit` is {} MiB) while it delivers what it holds",
            self.resident >> 20,
            self.soft_limit >> 20,
            self.limit >> 20
        )
    }
}

/// `Some` while the sources must refuse new data.
pub fn pressure() -> Option<Pressure> {
    if !OVER.load(Ordering::Relaxed) {
        return None;
    }
    Some(Pressure {
        resident: RSS.load(Ordering::Relaxed),
        soft_limit: SOFT.load(Ordering::Relaxed),
        limit: HARD.load(Ordering::Relaxed),
    })
}
