//! [`Aggregator`]: one batch's spans into a [`SeriesTable`], a span at a
//! time, with no allocation but for new series. A span whose key equals
//! the span before's skips the hash lookup.

use crate::columns::SpanColumns;
use crate::config::Plan;
use crate::key::{self, KeyWriter};
use crate::series::SeriesTable;

/// What one batch left besides the counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Spans counted.
    pub counted: u64,
    /// Spans counted in the overflow series (their series did not fit).
    pub overflowed: u64,
    /// Spans not counted: their resource has no `service.name`, which the
    /// connector skips too.
    pub skipped: u64,
}

/// Turns spans into series counts for one plan.
#[derive(Debug)]
pub struct Aggregator {
    plan: Plan,
    /// Bucket bounds in nanoseconds (empty without a histogram).
    bounds_ns: Vec<u64>,
    /// Nanoseconds per histogram unit.
    per_unit: f64,
    key: KeyWriter,
    /// The key of the span before and its series.
    last: Vec<u8>,
    last_index: usize,
}

impl Aggregator {
    /// An aggregator for `plan`.
    pub fn new(plan: Plan) -> Self {
        let (bounds_ns, per_unit) = match &plan.histogram {
            Some(h) => (h.bounds_ns.clone(), h.unit.nanos()),
            None => (Vec::new(), 1.0),
        };
        Aggregator {
            plan,
            bounds_ns,
            per_unit,
            key: KeyWriter::default(),
            last: Vec::new(),
            last_index: 0,
        }
    }

    /// The plan.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Buckets per series: bounds + 1, or 0 without a histogram.
    pub fn width(&self) -> usize {
        match self.plan.histogram {
            Some(_) => self.bounds_ns.len() + 1,
            None => 0,
        }
    }

    /// A table for this plan's series.
    pub fn table(&self) -> SeriesTable {
        SeriesTable::new(self.width(), self.plan.max_series)
    }

    /// The bucket of a duration: the first whose upper bound is at least
    /// the duration (bounds are inclusive, as in OTLP and the connector).
    #[inline]
    fn bucket(&self, ns: u64) -> usize {
        self.bounds_ns.partition_point(|b| *b < ns)
    }

    /// Counts every span of `spans` into `table`.
    pub fn observe(&mut self, spans: &SpanColumns, table: &mut SeriesTable) -> BatchOutcome {
        let mut out = BatchOutcome::default();
        // The previous batch's series may have been cleared since.
        self.last.clear();
        let histogram = self.plan.histogram.is_some();
        let d = self.plan.defaults;
        for row in 0..spans.len() {
            let Some(service) = spans.service.get(row) else {
                out.skipped += 1;
                continue;
            };
            self.key.start();
            for values in &spans.resource {
                self.key.maybe(values[row].as_deref());
            }
            self.key.text(service);
            if d.span_name {
                self.key.text(spans.name.get(row).unwrap_or(""));
            }
            if d.span_kind {
                self.key.code(key::kind_of(spans.kind[row]));
            }
            if d.status_code {
                self.key.code(key::status_of(spans.status[row]));
            }
            for (i, dim) in self.plan.dimensions.iter().enumerate() {
                self.key
                    .maybe(spans.dimension(i, row, dim.default.as_deref()));
            }
            let index = if self.key.as_bytes() == self.last.as_slice() {
                self.last_index
            } else {
                let slot = table.slot(self.key.as_bytes());
                if slot.overflowed {
                    // Not remembered: the next span of this key must be
                    // counted as overflow too, which a lookup does.
                    self.last.clear();
                    out.overflowed += 1;
                } else {
                    self.last.clear();
                    self.last.extend_from_slice(self.key.as_bytes());
                    self.last_index = slot.index;
                }
                slot.index
            };
            if histogram {
                // A span that ends before it starts lasts 0, as in the
                // connector; so does one without both times.
                let ns = spans.duration_ns[row].unwrap_or(0).max(0) as u64;
                table.observe(index, ns as f64 / self.per_unit, self.bucket(ns));
            } else {
                table.count(index);
            }
            out.counted += 1;
        }
        self.last.clear();
        out
    }
}
