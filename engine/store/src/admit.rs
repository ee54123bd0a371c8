//! Which rows a table accepts: those whose time lies in `[now - retention,
//! now + max_future]` (`[store.retention]` and `[store.max_future]` of the
//! table).
//!
//! [`crate::Store::append`] refuses the rows outside, one by one, before
//! the WAL: a row older than its table's retention would be deleted at the
//! next retention check anyway, and one far in the future (a clock decades
//! ahead, a time in the wrong unit) would make partitions that neither
//! queries nor retention reach for years. The rest of the batch is stored.
//! What was refused, and why, goes back to the caller as [`RefusedRows`] (the
//! `store` sink hands it to the batch's acknowledgement, and an OTLP source
//! answers it as `partial_success`), into `weir_store_refused_rows_total`,
//! and into the log, at most one warning every ten seconds.
//!
//! A row's time is the one it is partitioned by
//! (`encode::partition_times`): its event time, else (logs) its observed
//! time. A row with neither is kept: it goes by when it arrived, now.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use arrow::array::{BooleanArray, RecordBatch};
use arrow::compute::filter_record_batch;
use arrow::error::ArrowError;
use tracing::{debug, warn};
use weir_config::StoreConfig;
use weir_core::Signal;

use crate::encode::{partition_time_bounds, partition_times};
use crate::inner::lock;
use crate::partition::utc;

/// How often refused rows are logged as a warning at most (the others at
/// `debug`).
const WARN_EVERY: Duration = Duration::from_secs(10);

/// Rows of one batch that [`crate::Store::append`] did not store because
/// their time lies outside what their table accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedRows {
    /// How many rows (one per OTLP log record, span or data point).
    pub rows: u64,
    /// Why, for the sender: how many, the table, the range it accepts and
    /// the settings that make that range.
    pub reason: String,
}

/// `[store.retention]` of `table`.
pub(crate) fn retention(config: &StoreConfig, table: Signal) -> Duration {
    let r = &config.retention;
    match table {
        Signal::Logs => r.logs,
        Signal::Spans => r.spans,
        Signal::Metrics => r.metrics,
        Signal::Alerts => r.alerts,
    }
}

/// `[store.max_future]` of `table`.
pub(crate) fn max_future(config: &StoreConfig, table: Signal) -> Duration {
    let f = &config.max_future;
    match table {
        Signal::Logs => f.logs,
        Signal::Spans => f.spans,
        Signal::Metrics => f.metrics,
        Signal::Alerts => f.alerts,
    }
}

/// `d` in nanoseconds, saturating.
pub(crate) fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// The times one table accepts as of one instant, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window {
    /// The table.
    pub table: Signal,
    /// The first nanosecond: now minus the retention (saturating).
    pub lo: i64,
    /// The last nanosecond: now plus `max_future` (saturating).
    pub hi: i64,
    retention: Duration,
    max_future: Duration,
}

/// What [`Window::admit`] kept of a batch, and how many rows it refused on
/// either side.
#[derive(Debug)]
pub(crate) struct Admitted {
    /// The rows kept (the batch itself when none was refused).
    pub batch: RecordBatch,
    /// Rows older than the retention.
    pub before: u64,
    /// Rows later than `max_future`.
    pub after: u64,
}

impl Admitted {
    /// How many rows were refused.
    pub fn refused(&self) -> u64 {
        self.before + self.after
    }
}

impl Window {
    /// What `table` accepts at `now_ns`.
    pub fn of(config: &StoreConfig, table: Signal, now_ns: i64) -> Window {
        let retention = retention(config, table);
        let max_future = max_future(config, table);
        Window {
            table,
            lo: now_ns.saturating_sub(nanos(retention)),
            hi: now_ns.saturating_add(nanos(max_future)),
            retention,
            max_future,
        }
    }

    /// The rows of `batch` (of this window's table) whose time it holds,
    /// and the counts of those it refused. One check of the time columns'
    /// bounds when every row fits; one pass and a filter otherwise.
    pub fn admit(&self, batch: RecordBatch) -> Result<Admitted, ArrowError> {
        let fits = |t: i64| self.lo <= t && t <= self.hi;
        if partition_time_bounds(self.table, &batch).is_none_or(|(a, b)| fits(a) && fits(b)) {
            return Ok(Admitted {
                batch,
                before: 0,
                after: 0,
            });
        }
        let (mut before, mut after) = (0u64, 0u64);
        let keep: BooleanArray = partition_times(self.table, &batch)
            .into_iter()
            .map(|t| {
                Some(match t {
                    Some(t) if t < self.lo => {
                        before += 1;
                        false
                    }
                    Some(t) if t > self.hi => {
                        after += 1;
                        false
                    }
                    _ => true,
                })
            })
            .collect();
        let batch = if before + after == 0 {
            batch
        } else {
            filter_record_batch(&batch, &keep)?
        };
        Ok(Admitted {
            batch,
            before,
            after,
        })
    }

    /// What the sender of a batch is told about the rows `admitted`
    /// refused (`None` if none was).
    pub fn refusal(&self, admitted: &Admitted) -> Option<RefusedRows> {
        let rows = admitted.refused();
        (rows > 0).then(|| RefusedRows {
            rows,
            reason: format!(
                "{rows} `{table}` records refused by the store: their time is outside \
                 {lo} to {hi}, the range the table accepts ({before} before it, {after} \
                 after it), now - `[store.retention] {table}` ({retention}) to now + \
                 `[store.max_future] {table}` ({max_future}); correct the senders' clocks, \
                 or raise those settings to keep such records",
                table = self.table,
                lo = utc(self.lo),
                hi = utc(self.hi),
                before = admitted.before,
                after = admitted.after,
                retention = humantime::format_duration(self.retention),
                max_future = humantime::format_duration(self.max_future),
            ),
        })
    }
}

/// Logs refusals: a warning at most every [`WARN_EVERY`] for the whole
/// store, `debug` otherwise, so a sender with a broken clock cannot flood
/// the log.
#[derive(Debug, Default)]
pub(crate) struct RefusalLog {
    warned: Mutex<Option<Instant>>,
}

impl RefusalLog {
    /// Logs `refused`, rows of `table`.
    pub fn log(&self, table: Signal, refused: &RefusedRows) {
        let now = Instant::now();
        let mut warned = lock(&self.warned);
        if warned.is_none_or(|at| now.duration_since(at) >= WARN_EVERY) {
            *warned = Some(now);
            drop(warned);
            warn!(%table, rows = refused.rows, reason = %refused.reason,
                "the store refused records outside the time range their table accepts (further refusals within 10s are logged at debug level)");
        } else {
            drop(warned);
            debug!(%table, rows = refused.rows, reason = %refused.reason,
                "the store refused records outside the time range their table accepts");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partition::HOUR_NS;
    use crate::testdata::{logs_at, logs_batch};

    /// 2024-03-01T10:00:00Z.
    const NOW: i64 = 1_709_287_200_000_000_000;

    fn config() -> StoreConfig {
        StoreConfig::default()
    }

    /// Guarantees: with the defaults (`logs`: 7 days back, 1 hour ahead),
    /// rows at the epoch (1 ns after it: OTLP's 0 means "unknown") and in
    /// 2262 (the last instant an `i64` holds) are
    /// refused and counted on their side, the rows between are kept in
    /// order, and the reason names the count, the table and the range.
    #[test]
    fn rows_outside_the_range_are_refused_and_counted() {
        let w = Window::of(&config(), Signal::Logs, NOW);
        let b = logs_batch(
            &[
                Some(1),
                Some(NOW - HOUR_NS),
                Some(i64::MAX),
                Some(NOW + HOUR_NS / 2),
                Some(NOW - 8 * 24 * HOUR_NS),
                None,
                Some(NOW + 2 * HOUR_NS),
            ],
            &[None, None, None, None, None, Some(NOW), None],
            &["a", "b", "c", "d", "e", "f", "g"],
        );
        let got = w.admit(b).expect("admit");
        assert_eq!((got.before, got.after), (2, 2));
        assert_eq!(got.batch.num_rows(), 3);
        let refused = w.refusal(&got).expect("refused");
        assert_eq!(refused.rows, 4);
        for part in [
            "4 `logs` records",
            "2024-02-23T10:00:00Z to 2024-03-01T11:00:00Z",
            "2 before it, 2 after it",
            "`[store.retention] logs` (7days)",
            "`[store.max_future] logs` (1h)",
        ] {
            assert!(refused.reason.contains(part), "{part}: {}", refused.reason);
        }
    }

    /// Guarantees: a batch that fits is kept as it is, with no refusal;
    /// rows without any time are kept (they go by their arrival, now); the
    /// ends of the range are inside it.
    #[test]
    fn rows_inside_the_range_are_kept_whole() {
        let w = Window::of(&config(), Signal::Logs, NOW);
        let b = logs_at(w.lo, w.hi - w.lo, 2, "a");
        let got = w.admit(b.clone()).expect("admit");
        assert_eq!(got.refused(), 0);
        assert_eq!(got.batch, b);
        assert_eq!(w.refusal(&got), None);
        let timeless = logs_batch(&[None], &[None], &["a"]);
        assert_eq!(w.admit(timeless).expect("admit").refused(), 0);
    }

    /// Guarantees: the range saturates instead of overflowing, whatever
    /// the clock and the settings (a retention of centuries at the epoch,
    /// `max_future` of centuries in 2262).
    #[test]
    fn extreme_settings_and_clocks_saturate() {
        let mut cfg = config();
        cfg.retention.spans = Duration::from_secs(u64::MAX);
        cfg.max_future.spans = Duration::from_secs(u64::MAX);
        let w = Window::of(&cfg, Signal::Spans, 0);
        assert_eq!((w.lo, w.hi), (-i64::MAX, i64::MAX));
        let w = Window::of(&cfg, Signal::Spans, i64::MAX);
        assert_eq!((w.lo, w.hi), (0, i64::MAX));
        let w = Window::of(&config(), Signal::Metrics, i64::MIN);
        assert_eq!(w.lo, i64::MIN);
        assert!(
            w.refusal(&Admitted {
                batch: logs_at(0, 1, 1, "a"),
                before: 1,
                after: 0,
            })
            .is_some_and(|r| r.reason.contains("1677-09-21T00:12:43Z"))
        );
    }
}
