//! The event-time buffer of one input table of a rule.
//!
//! A [`WindowBuffer`] holds the rows of one signal table (`logs`, `spans` or
//! `metrics`) that a rule may still need, as the record batches they came
//! in, each tagged with the range of event times it holds. Event time is
//! the table's time column (`time`; `start_time` for spans, as in the
//! store).
//!
//! * **Watermark.** The buffer tracks the largest event time it has seen;
//!   the watermark is that time minus the allowed lateness (or later, when
//!   the caller [advances](WindowBuffer::advance_watermark) it for an idle
//!   input). Rows may still arrive at the watermark and after it, none
//!   before it: a window `(start, end]` (open at its start, closed at its
//!   end, like a Prometheus range since 3.0 and its instant selector) is
//!   complete once the watermark has passed `end`.
//! * **Late rows.** A row whose event time is below the watermark (as it
//!   stood before its batch arrived), or below what was already evicted,
//!   arrives too late to be folded into windows that may already have been
//!   evaluated: it is dropped and counted in [`BufferStats::late_rows`].
//!   Rows with no event time are dropped and counted in
//!   [`BufferStats::untimed_rows`].
//! * **Eviction.** The rule evicts what no later window can need
//!   ([`WindowBuffer::evict_before`]) after each evaluation, a whole batch at
//!   a time.
//! * **Bounds.** A buffer never holds more than [`BufferLimits`]; a batch
//!   that would pass them is refused with [`WindowError::Full`] and its rows
//!   counted in [`BufferStats::rejected_rows`].
//!
//! * **Rows kept or not.** A buffer keeps rows only for rules that rescan
//!   their window ([`WindowBuffer::keeping_rows`]); for rules evaluated pane
//!   by pane it only checks rows and moves the watermark, and hands the
//!   rows on (see [`crate::incremental`]).

use std::collections::VecDeque;
use std::time::Duration;

use arrow::array::{Array, BooleanArray, TimestampNanosecondArray};
use arrow::compute::filter_record_batch;
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use weir_core::schema::schema_for;
use weir_core::{Signal, SignalSet};

use crate::error::WindowError;
use crate::time::{UnixNanos, nanos};

/// The most a window buffer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferLimits {
    /// Rows, across the buffered batches.
    pub max_rows: usize,
    /// Bytes of Arrow memory, across the buffered batches.
    pub max_bytes: usize,
}

impl BufferLimits {
    /// One million rows.
    pub const DEFAULT_MAX_ROWS: usize = 1_000_000;
    /// 256 MiB.
    pub const DEFAULT_MAX_BYTES: usize = 256 << 20;
}

impl Default for BufferLimits {
    fn default() -> Self {
        BufferLimits {
            max_rows: Self::DEFAULT_MAX_ROWS,
            max_bytes: Self::DEFAULT_MAX_BYTES,
        }
    }
}

/// What a buffer holds and has dropped, for self-metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BufferStats {
    /// Rows held now.
    pub rows: usize,
    /// Bytes held now.
    pub bytes: usize,
    /// Rows taken since the start.
    pub accepted_rows: u64,
    /// Rows that arrived later than the allowed lateness, dropped.
    pub late_rows: u64,
    /// Rows with a null event time, dropped.
    pub untimed_rows: u64,
    /// Rows stamped after the bound given to
    /// [`WindowBuffer::push_bounded`], dropped.
    pub future_rows: u64,
    /// Rows of batches refused because the buffer was full.
    pub rejected_rows: u64,
}

/// One buffered batch and the range of event times it holds.
#[derive(Debug, Clone)]
struct Chunk {
    min: UnixNanos,
    max: UnixNanos,
    bytes: usize,
    batch: RecordBatch,
}

/// The event-time buffer of one signal table. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct WindowBuffer {
    signal: Signal,
    schema: SchemaRef,
    time_column: usize,
    allowed_lateness: i64,
    limits: BufferLimits,
    keep_rows: bool,
    chunks: VecDeque<Chunk>,
    max_event_time: Option<UnixNanos>,
    advanced_to: Option<UnixNanos>,
    evicted_before: Option<UnixNanos>,
    /// Rows stamped up to this time (included) may be missing: evicted, or
    /// taken before the buffer kept rows.
    lost_through: Option<UnixNanos>,
    stats: BufferStats,
}

impl WindowBuffer {
    /// An empty buffer for `signal`'s table.
    pub fn new(signal: Signal, allowed_lateness: Duration, limits: BufferLimits) -> Self {
        let schema = schema_for(signal);
        let time_name = signal.time_column();
        let time_column = schema
            .index_of(time_name)
            .unwrap_or_else(|_| unreachable!("weir-core's {signal} schema has `{time_name}`"));
        WindowBuffer {
            signal,
            schema,
            time_column,
            allowed_lateness: nanos(allowed_lateness),
            limits,
            keep_rows: true,
            chunks: VecDeque::new(),
            max_event_time: None,
            advanced_to: None,
            evicted_before: None,
            lost_through: None,
            stats: BufferStats::default(),
        }
    }

    /// A buffer that checks rows and moves its watermark but keeps no
    /// rows (`keep` false): its rules aggregate them as they arrive.
    pub fn keeping_rows(mut self, keep: bool) -> Self {
        self.keep_rows = keep;
        self
    }

    /// Changes, for a reload, whether the buffer keeps rows (dropping those
    /// it holds when it stops) and its limits (rows already held stay).
    pub(crate) fn reshape(&mut self, keep: bool, limits: BufferLimits) {
        if keep && !self.keep_rows {
            self.lost_through = self.lost_through.max(self.max_event_time);
        }
        if !keep {
            self.chunks.clear();
            self.stats.rows = 0;
            self.stats.bytes = 0;
        }
        self.keep_rows = keep;
        self.limits = limits;
    }

    /// The buffer holds every row stamped after this time that it took;
    /// `None`: every row. A buffer that keeps no rows holds none of those
    /// it took.
    pub(crate) fn held_after(&self) -> Option<UnixNanos> {
        if self.keep_rows {
            self.lost_through
        } else {
            self.lost_through.max(self.max_event_time)
        }
    }

    /// Whether it keeps the rows it takes.
    pub(crate) fn keeps_rows(&self) -> bool {
        self.keep_rows
    }

    /// The rows stamped up to `t` (included) never reached it.
    pub(crate) fn missing_through(&mut self, t: Option<UnixNanos>) {
        self.lost_through = self.lost_through.max(t);
    }

    /// The earliest event time after `t` of the rows it holds (`t + 1`
    /// when a batch holds rows on both sides of `t`).
    pub(crate) fn earliest_after(&self, t: UnixNanos) -> Option<UnixNanos> {
        self.chunks
            .iter()
            .filter(|c| c.max > t)
            .map(|c| c.min.max(t.saturating_add(1)))
            .min()
    }

    /// The largest event time taken.
    pub(crate) fn max_event_time(&self) -> Option<UnixNanos> {
        self.max_event_time
    }

    /// The buffer's table.
    pub fn signal(&self) -> Signal {
        self.signal
    }

    /// The schema of the batches it holds.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// The watermark: the largest event time seen minus the allowed lateness,
    /// or the time it was advanced to if later; `None` before any data.
    pub fn watermark(&self) -> Option<UnixNanos> {
        let from_data = self
            .max_event_time
            .map(|t| t.saturating_sub(self.allowed_lateness));
        from_data.max(self.advanced_to)
    }

    /// Moves the watermark to at least `to`, for an input that is idle (no
    /// data arrives to move it): the runtime calls this from processing time
    /// so that rules over a silent input still evaluate (and "no data"
    /// alerts can fire).
    pub fn advance_watermark(&mut self, to: UnixNanos) {
        self.advanced_to = self.advanced_to.max(Some(to));
    }

    /// The counters.
    pub fn stats(&self) -> BufferStats {
        self.stats
    }

    /// Takes the rows of `batch` that are on time; returns how many it kept.
    pub fn push(&mut self, batch: &RecordBatch) -> Result<usize, WindowError> {
        self.push_bounded(batch, None)
    }

    /// [`WindowBuffer::push`], dropping (and counting in
    /// [`BufferStats::future_rows`]) the rows whose event time is after
    /// `not_after`. The runtime passes its clock plus a tolerance: one
    /// record stamped years ahead by a broken client clock would otherwise
    /// move the watermark there, and every later record would be late.
    pub fn push_bounded(
        &mut self,
        batch: &RecordBatch,
        not_after: Option<UnixNanos>,
    ) -> Result<usize, WindowError> {
        Ok(self.take(batch, not_after)?.map_or(0, |b| b.num_rows()))
    }

    /// [`WindowBuffer::push_bounded`], returning the rows it took (also when
    /// it keeps no rows).
    pub(crate) fn take(
        &mut self,
        batch: &RecordBatch,
        not_after: Option<UnixNanos>,
    ) -> Result<Option<RecordBatch>, WindowError> {
        if batch.num_rows() == 0 {
            return Ok(None);
        }
        if batch.schema().fields() != self.schema.fields() {
            return Err(WindowError::Schema {
                signal: self.signal,
                message: format!(
                    "expected the columns {:?}, got {:?}",
                    names(&self.schema),
                    names(&batch.schema())
                ),
            });
        }
        let times = batch
            .column(self.time_column)
            .as_any()
            .downcast_ref::<TimestampNanosecondArray>()
            .ok_or_else(|| WindowError::Schema {
                signal: self.signal,
                message: "the time column is not a nanosecond timestamp".to_string(),
            })?;
        let floor = self.watermark().max(self.evicted_before);
        let (mut late, mut untimed, mut future) = (0u64, 0u64, 0u64);
        let (mut min, mut max) = (i64::MAX, i64::MIN);
        let keep: BooleanArray = times
            .iter()
            .map(|t| {
                let keep = match t {
                    None => {
                        untimed += 1;
                        false
                    }
                    Some(t) if floor.is_some_and(|f| t < f) => {
                        late += 1;
                        false
                    }
                    Some(t) if not_after.is_some_and(|n| t > n) => {
                        future += 1;
                        false
                    }
                    Some(t) => {
                        min = min.min(t);
                        max = max.max(t);
                        true
                    }
                };
                Some(keep)
            })
            .collect();
        self.stats.late_rows += late;
        self.stats.untimed_rows += untimed;
        self.stats.future_rows += future;
        let kept = if late + untimed + future == 0 {
            batch.clone()
        } else {
            filter_record_batch(batch, &keep).map_err(|e| WindowError::Schema {
                signal: self.signal,
                message: e.to_string(),
            })?
        };
        let rows = kept.num_rows();
        if rows == 0 {
            return Ok(None);
        }
        if !self.keep_rows {
            self.stats.accepted_rows += rows as u64;
            self.max_event_time = self.max_event_time.max(Some(max));
            return Ok(Some(kept));
        }
        let bytes = kept.get_array_memory_size();
        if self.stats.rows + rows > self.limits.max_rows
            || self.stats.bytes + bytes > self.limits.max_bytes
        {
            self.stats.rejected_rows += rows as u64;
            return Err(WindowError::Full {
                signal: self.signal,
                rows: self.stats.rows,
                bytes: self.stats.bytes,
                batch_rows: rows,
                batch_bytes: bytes,
                max_rows: self.limits.max_rows,
                max_bytes: self.limits.max_bytes,
            });
        }
        self.stats.rows += rows;
        self.stats.bytes += bytes;
        self.stats.accepted_rows += rows as u64;
        self.max_event_time = self.max_event_time.max(Some(max));
        self.chunks.push_back(Chunk {
            min,
            max,
            bytes,
            batch: kept.clone(),
        });
        Ok(Some(kept))
    }

    /// The index of the event-time column.
    pub(crate) fn time_column(&self) -> usize {
        self.time_column
    }

    /// The rows with event time in `(start, end]`.
    pub fn snapshot(&self, start: UnixNanos, end: UnixNanos) -> Vec<RecordBatch> {
        let mut out = Vec::new();
        for chunk in &self.chunks {
            if chunk.max <= start || chunk.min > end {
                continue;
            }
            if chunk.min > start && chunk.max <= end {
                out.push(chunk.batch.clone());
                continue;
            }
            let times = chunk
                .batch
                .column(self.time_column)
                .as_any()
                .downcast_ref::<TimestampNanosecondArray>();
            let Some(times) = times else { continue };
            let keep: BooleanArray = times
                .iter()
                .map(|t| Some(t.is_some_and(|t| t > start && t <= end)))
                .collect();
            if let Ok(batch) = filter_record_batch(&chunk.batch, &keep)
                && batch.num_rows() > 0
            {
                out.push(batch);
            }
        }
        out
    }

    /// Drops the batches whose rows are all before `t` (a batch that
    /// straddles `t` stays whole until its last row is behind; snapshots
    /// still see only their range). Rows before `t` that arrive later count
    /// as late.
    pub fn evict_before(&mut self, t: UnixNanos) {
        self.evicted_before = self.evicted_before.max(Some(t));
        let mut kept = VecDeque::with_capacity(self.chunks.len());
        for chunk in self.chunks.drain(..) {
            if chunk.max < t {
                self.lost_through = self.lost_through.max(Some(t.saturating_sub(1)));
                self.stats.rows -= chunk.batch.num_rows();
                self.stats.bytes -= chunk.bytes;
            } else {
                kept.push_back(chunk);
            }
        }
        self.chunks = kept;
    }
}

fn names(schema: &SchemaRef) -> Vec<&str> {
    schema.fields().iter().map(|f| f.name().as_str()).collect()
}

/// The window buffers of one evaluator (a rule, or a group of rules that
/// share them): one per table its SQL reads, and the watermark they share.
#[derive(Debug, Default)]
pub struct Inputs {
    buffers: Vec<WindowBuffer>,
    advanced_to: Option<UnixNanos>,
    allowed_lateness: Duration,
    limits: BufferLimits,
}

impl Inputs {
    /// One empty buffer per signal of `signals`, keeping rows for those of
    /// `keep` (see [`WindowBuffer::keeping_rows`]).
    pub fn new(
        signals: SignalSet,
        keep: SignalSet,
        allowed_lateness: Duration,
        limits: BufferLimits,
    ) -> Self {
        Inputs {
            buffers: signals
                .iter()
                .map(|s| {
                    WindowBuffer::new(s, allowed_lateness, limits).keeping_rows(keep.contains(s))
                })
                .collect(),
            advanced_to: None,
            allowed_lateness,
            limits,
        }
    }

    /// The allowed lateness of every buffer.
    pub(crate) fn allowed_lateness(&self) -> Duration {
        self.allowed_lateness
    }

    /// The limits of every buffer.
    pub(crate) fn limits(&self) -> BufferLimits {
        self.limits
    }

    /// For a reload: one buffer per signal of `signals`, keeping rows for
    /// those of `keep`; the buffers of signals read before stay with their
    /// rows and watermark, new ones start empty.
    pub(crate) fn reshape(
        &mut self,
        signals: SignalSet,
        keep: SignalSet,
        allowed_lateness: Duration,
        limits: BufferLimits,
    ) {
        self.allowed_lateness = allowed_lateness;
        self.limits = limits;
        let mut old = std::mem::take(&mut self.buffers);
        // A table read from now on was not taken before: its rows up to the
        // newest taken of any table are missing.
        let newest = old.iter().filter_map(WindowBuffer::max_event_time).max();
        for signal in signals.iter() {
            let buffer = match old.iter().position(|b| b.signal() == signal) {
                Some(i) => {
                    let mut b = old.swap_remove(i);
                    b.reshape(keep.contains(signal), limits);
                    b
                }
                None => {
                    let mut b = WindowBuffer::new(signal, allowed_lateness, limits)
                        .keeping_rows(keep.contains(signal));
                    if let Some(t) = self.advanced_to {
                        b.advance_watermark(t);
                    }
                    b.missing_through(newest);
                    b
                }
            };
            self.buffers.push(buffer);
        }
    }

    /// The buffers, one per input table.
    pub fn buffers(&self) -> &[WindowBuffer] {
        &self.buffers
    }

    /// The buffer of `signal`'s table, if a rule reads it.
    pub(crate) fn buffer(&self, signal: Signal) -> Option<&WindowBuffer> {
        self.buffers.iter().find(|b| b.signal() == signal)
    }

    /// The counters of each buffer.
    pub fn stats(&self) -> Vec<(Signal, BufferStats)> {
        self.buffers
            .iter()
            .map(|b| (b.signal(), b.stats()))
            .collect()
    }

    /// Takes a batch of `signal`'s table, dropping rows stamped after
    /// `not_after` (see [`WindowBuffer::push_bounded`]); a table no input
    /// reads is ignored (0 rows taken).
    pub fn push_bounded(
        &mut self,
        signal: Signal,
        batch: &RecordBatch,
        not_after: Option<UnixNanos>,
    ) -> Result<usize, WindowError> {
        match self.buffers.iter_mut().find(|b| b.signal() == signal) {
            Some(buffer) => buffer.push_bounded(batch, not_after),
            None => Ok(0),
        }
    }

    /// [`Inputs::push_bounded`], returning the rows taken and the index of
    /// their event-time column; `None` when none was.
    pub(crate) fn take(
        &mut self,
        signal: Signal,
        batch: &RecordBatch,
        not_after: Option<UnixNanos>,
    ) -> Result<Option<(RecordBatch, usize)>, WindowError> {
        match self.buffers.iter_mut().find(|b| b.signal() == signal) {
            Some(buffer) => Ok(buffer
                .take(batch, not_after)?
                .map(|b| (b, buffer.time_column()))),
            None => Ok(None),
        }
    }

    /// Moves the watermark of every input to at least `to` (idle inputs).
    pub fn advance_watermark(&mut self, to: UnixNanos) {
        self.advanced_to = self.advanced_to.max(Some(to));
        for buffer in &mut self.buffers {
            buffer.advance_watermark(to);
        }
    }

    /// The least watermark of the inputs (a window is complete once every
    /// input has passed its end); `None` until each input has one.
    pub fn watermark(&self) -> Option<UnixNanos> {
        if self.buffers.is_empty() {
            return self.advanced_to;
        }
        self.buffers
            .iter()
            .map(WindowBuffer::watermark)
            .collect::<Option<Vec<_>>>()?
            .into_iter()
            .min()
    }

    /// The greatest watermark of the inputs: how far the most advanced one
    /// has got; `None` while none has one.
    pub fn newest_watermark(&self) -> Option<UnixNanos> {
        self.buffers
            .iter()
            .filter_map(WindowBuffer::watermark)
            .max()
            .or(self.advanced_to)
    }

    /// Frees every row stamped before `t` in every buffer.
    pub fn evict_before(&mut self, t: UnixNanos) {
        for buffer in &mut self.buffers {
            buffer.evict_before(t);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use opentelemetry_proto::tonic::resource::v1::Resource;

    pub(crate) const S: i64 = 1_000_000_000;

    /// A `logs` batch with one record per (time in seconds, service).
    pub(crate) fn logs(records: &[(i64, &str)]) -> RecordBatch {
        let resource_logs = records
            .iter()
            .map(|(t, service)| ResourceLogs {
                resource: Some(Resource {
                    attributes: vec![KeyValue {
                        key: "service.name".into(),
                        value: Some(AnyValue {
                            value: Some(any_value::Value::StringValue(service.to_string())),
                        }),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
                scope_logs: vec![ScopeLogs {
                    log_records: vec![LogRecord {
                        time_unix_nano: u64::try_from(t * S).unwrap(),
                        severity_number: 17,
                        body: Some(AnyValue {
                            value: Some(any_value::Value::StringValue("boom".into())),
                        }),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect();
        let req = ExportLogsServiceRequest { resource_logs };
        weir_core::convert::logs_to_batch(&req).unwrap().batch
    }

    fn rows(batches: &[RecordBatch]) -> usize {
        batches.iter().map(RecordBatch::num_rows).sum()
    }

    /// Guarantees: the watermark is the largest event time minus the allowed
    /// lateness; rows later than that are dropped and counted, rows within
    /// it are kept.
    #[test]
    fn watermark_and_late_rows() {
        let mut buf = WindowBuffer::new(
            Signal::Logs,
            Duration::from_secs(10),
            BufferLimits::default(),
        );
        assert_eq!(buf.watermark(), None);
        assert_eq!(buf.push(&logs(&[(100, "a"), (105, "a")])).unwrap(), 2);
        assert_eq!(buf.watermark(), Some(95 * S));
        // 96 is within the lateness, 90 is not.
        assert_eq!(buf.push(&logs(&[(96, "a"), (90, "b")])).unwrap(), 1);
        let stats = buf.stats();
        assert_eq!(
            (stats.rows, stats.accepted_rows, stats.late_rows),
            (3, 3, 1)
        );
        buf.advance_watermark(200 * S);
        assert_eq!(buf.watermark(), Some(200 * S));
        assert_eq!(buf.push(&logs(&[(150, "a")])).unwrap(), 0);
        assert_eq!(buf.stats().late_rows, 2);
    }

    /// Guarantees: a snapshot holds exactly the rows of `(start, end]`, and
    /// eviction frees rows and makes later arrivals before the horizon late.
    #[test]
    fn snapshot_and_eviction() {
        let mut buf = WindowBuffer::new(
            Signal::Logs,
            Duration::from_secs(1000),
            BufferLimits::default(),
        );
        buf.push(&logs(&[(10, "a"), (20, "a"), (30, "a")])).unwrap();
        buf.push(&logs(&[(40, "a")])).unwrap();
        // (20, 40] holds 30 and 40, not 20.
        assert_eq!(rows(&buf.snapshot(20 * S, 40 * S)), 2);
        assert_eq!(rows(&buf.snapshot(0, 100 * S)), 4);
        assert_eq!(rows(&buf.snapshot(40 * S, 100 * S)), 0);
        assert_eq!(rows(&buf.snapshot(0, 10 * S)), 1);
        buf.evict_before(35 * S);
        // The first chunk ends at 30 < 35: gone; the second stays.
        assert_eq!(buf.stats().rows, 1);
        assert_eq!(buf.push(&logs(&[(34, "a"), (36, "a")])).unwrap(), 1);
        assert_eq!(buf.stats().late_rows, 1);
    }

    /// Guarantees: rows stamped after the bound are dropped and counted,
    /// and do not move the watermark.
    #[test]
    fn future_rows_are_bounded() {
        let mut buf = WindowBuffer::new(Signal::Logs, Duration::ZERO, BufferLimits::default());
        let kept = buf
            .push_bounded(&logs(&[(100, "a"), (1_000_000, "a")]), Some(200 * S))
            .unwrap();
        assert_eq!(kept, 1);
        assert_eq!(buf.stats().future_rows, 1);
        assert_eq!(buf.watermark(), Some(100 * S));
    }

    /// Guarantees: a batch that would pass the limits is refused with a
    /// clear error and counted; the buffer keeps what it had.
    #[test]
    fn bounded_by_limits() {
        let limits = BufferLimits {
            max_rows: 3,
            max_bytes: usize::MAX,
        };
        let mut buf = WindowBuffer::new(Signal::Logs, Duration::ZERO, limits);
        buf.push(&logs(&[(1, "a"), (2, "a")])).unwrap();
        let err = buf.push(&logs(&[(3, "a"), (4, "a")])).unwrap_err();
        assert!(matches!(
            err,
            WindowError::Full {
                rows: 2,
                batch_rows: 2,
                max_rows: 3,
                ..
            }
        ));
        assert!(err.to_string().contains("raise the rule's buffer limits"));
        assert_eq!(buf.stats().rejected_rows, 2);
        assert_eq!(buf.stats().rows, 2);
        let err = buf
            .push(&RecordBatch::new_empty(schema_for(Signal::Spans)))
            .map(|_| ());
        assert_eq!(err, Ok(()), "an empty batch is a no-op");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// Law: against a model that keeps, from each batch, the rows at or
        /// after the watermark as it stood before the batch, every row is
        /// either kept or counted late, and a snapshot of any range holds
        /// exactly the kept rows of that range.
        #[test]
        fn snapshot_matches_model(
            batches in proptest::collection::vec(proptest::collection::vec(1i64..300, 1..8), 1..8),
            lateness in 0u64..60,
            start in 0i64..300,
            len in 0i64..300,
        ) {
            let mut buf = WindowBuffer::new(Signal::Logs, Duration::from_secs(lateness), BufferLimits::default());
            let mut max_seen: Option<i64> = None;
            // (Time 0 is OTLP's "unknown": the generator starts at 1.)
            let mut kept = Vec::new();
            let mut total = 0u64;
            for times in &batches {
                let records: Vec<(i64, &str)> = times.iter().map(|t| (*t, "svc")).collect();
                let floor = max_seen.map(|m| m - lateness as i64);
                let on_time: Vec<i64> = times.iter().copied().filter(|t| floor.is_none_or(|f| *t >= f)).collect();
                if let Some(m) = on_time.iter().max() {
                    max_seen = max_seen.max(Some(*m));
                }
                proptest::prop_assert_eq!(buf.push(&logs(&records)).unwrap(), on_time.len());
                kept.extend(on_time);
                total += times.len() as u64;
            }
            let stats = buf.stats();
            proptest::prop_assert_eq!(stats.accepted_rows + stats.late_rows, total);
            proptest::prop_assert_eq!(buf.watermark(), max_seen.map(|m| (m - lateness as i64) * S));
            let end = start + len;
            let want = kept.iter().filter(|t| **t > start && **t <= end).count();
            proptest::prop_assert_eq!(rows(&buf.snapshot(start * S, end * S)), want);
        }
    }

    /// Guarantees: a batch of another table's schema is refused.
    #[test]
    fn refuses_foreign_schema() {
        let mut buf = WindowBuffer::new(Signal::Spans, Duration::ZERO, BufferLimits::default());
        let err = buf.push(&logs(&[(1, "a")])).unwrap_err();
        assert!(matches!(
            err,
            WindowError::Schema {
                signal: Signal::Spans,
                ..
            }
        ));
    }
}
