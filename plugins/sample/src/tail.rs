//! Tail sampling: a trace's spans are held (by the host, see
//! [`crate::holder`]) until `decision_wait` after its last span arrived,
//! then kept or dropped as one by the policies ([`crate::policy`]).
//!
//! **Time.** The plugin learns the time only from `tick` (the host passes
//! `now`). A span is stamped with the time of the last tick before it
//! arrived (spans before the first tick with the first tick's time); a
//! trace is decided at the first tick at or after its last span's stamp
//! plus `decision_wait`. So a decision comes between `decision_wait` and
//! `decision_wait + 2 × check_interval` after the last span. The spans'
//! own times serve only the latency policy.
//!
//! **Memory.** What counts is the bytes the host holds for the instance
//! ([`Held::bytes`]: the total after every hold, less what each release
//! and discard frees) plus
//! the plugin's bookkeeping of the traces in flight ([`TRACE_BYTES`] per
//! trace, [`TailSampler::bookkeeping_bytes`]). Whenever the sum
//! is above `max_memory`, the traces that arrived first are decided at
//! once ("early"), as many as it takes to get back under, each on what it
//! has so far, and counted. The decision cache is bounded by its own
//! count (`decision_cache`).
//!
//! **Late spans.** A span of a trace in the decision cache goes its
//! trace's way at once: passed on if it was kept, dropped if not. A span of
//! a trace decided and since forgotten starts a new trace.

use std::collections::VecDeque;
use std::mem::size_of;

use foldhash::fast::FixedState;
use hashbrown::HashMap;
use weir_plugin::Error;

use crate::cache::DecisionCache;
use crate::columns::TailColumns;
use crate::config::TailPlan;
use crate::counters::TailStats;
use crate::holder::{Held, Holder};
use crate::policy::{self, Limits, Summary};
use crate::threshold::Randomness;
use crate::tracestate;

/// One trace in flight.
#[derive(Debug, Clone, Copy)]
struct Pending {
    /// What the policies read.
    summary: Summary,
    /// The order in which traces arrived: the key of `order`.
    seq: u64,
    /// Stamp of the last span (the last tick's time when it arrived).
    last_seen: u64,
    /// Estimated bytes the host holds for it.
    bytes: u64,
    /// Spans held from the current batch (0 between calls).
    batch_rows: u32,
    /// Whether `summary.randomness` came from an `rv`.
    explicit_rv: bool,
}

/// The bookkeeping of one trace in flight, in bytes: its entry in the hash
/// table at the table's highest load (7/8) with its control byte, and its
/// entry in the arrival queue. About 140 bytes.
pub const TRACE_BYTES: u64 =
    (((size_of::<(u128, Pending)>() + 1) * 8).div_ceil(7) + size_of::<(u128, u64)>()) as u64;

/// The plugin's tail sampler: the traces in flight and the decisions.
#[derive(Debug)]
pub struct TailSampler {
    plan: TailPlan,
    traces: HashMap<u128, Pending, FixedState>,
    /// Trace ids by arrival, with their `seq`: entries whose trace was
    /// decided since are skipped when met.
    order: VecDeque<(u128, u64)>,
    next_seq: u64,
    cache: DecisionCache,
    limits: Limits,
    /// The last tick's time; `None` before the first tick.
    clock: Option<u64>,
    /// What the host last said it holds.
    held_bytes: u64,
    /// Counted since the last [`TailSampler::take_stats`].
    stats: TailStats,
    /// Per span test: its attribute's position in `TailColumns::attributes`.
    test_columns: Vec<Option<usize>>,
}

/// A trace id of 32 hex digits as a number; `None` for anything else.
#[inline]
pub fn parse_trace_id(hex: &str) -> Option<u128> {
    let bytes = hex.as_bytes();
    if bytes.len() != 32 {
        return None;
    }
    let mut id: u128 = 0;
    for &b in bytes {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => return None,
        };
        id = (id << 4) | u128::from(d);
    }
    Some(id)
}

/// A trace id as the hold's key: 32 lowercase hex digits, as Weir's
/// `trace_id` column reads.
pub fn key(id: u128) -> String {
    format!("{id:032x}")
}

impl TailSampler {
    /// A sampler with nothing in flight.
    pub fn new(plan: TailPlan) -> TailSampler {
        TailSampler {
            cache: DecisionCache::new(plan.decision_cache),
            limits: Limits::new(&plan.rate_limits),
            stats: TailStats {
                policy: vec![0; plan.policies.len()],
                ..TailStats::default()
            },
            test_columns: plan
                .span_tests
                .iter()
                .map(|t| {
                    let key = t.attribute()?;
                    plan.needs.attributes.iter().position(|a| a == key)
                })
                .collect(),
            plan,
            traces: HashMap::with_hasher(FixedState::with_seed(0x7a11)),
            order: VecDeque::new(),
            next_seq: 0,
            clock: None,
            held_bytes: 0,
        }
    }

    /// The plan.
    pub fn plan(&self) -> &TailPlan {
        &self.plan
    }

    /// Traces in flight.
    pub fn in_flight(&self) -> usize {
        self.traces.len()
    }

    /// Bytes the host last reported holding.
    pub fn held_bytes(&self) -> u64 {
        self.held_bytes
    }

    /// The memory of the plugin's bookkeeping of traces in flight:
    /// [`TRACE_BYTES`] per trace.
    pub fn bookkeeping_bytes(&self) -> u64 {
        self.traces.len() as u64 * TRACE_BYTES
    }

    /// What counts against `max_memory`.
    pub fn memory(&self) -> u64 {
        self.held_bytes + self.bookkeeping_bytes()
    }

    /// Decisions remembered by the cache.
    pub fn cached_decisions(&self) -> usize {
        self.cache.len()
    }

    /// What was counted since the last call, for the counters.
    pub fn take_stats(&mut self) -> TailStats {
        let fresh = TailStats {
            policy: vec![0; self.plan.policies.len()],
            ..TailStats::default()
        };
        std::mem::replace(&mut self.stats, fresh)
    }

    /// Takes one batch of spans: spans of decided traces are passed on or
    /// dropped at once, the others are held under their trace id and
    /// their traces' summaries updated; then, above `max_memory`, the
    /// oldest traces are decided. Spans whose trace id does not parse
    /// (Weir refuses those at its sources) pass on.
    pub fn process(&mut self, cols: &TailColumns, holder: &mut impl Holder) -> Result<(), Error> {
        let rows = cols.len();
        let now = self.clock.unwrap_or(0);
        let mut drop = vec![false; rows];
        let mut hold = vec![false; rows];
        let mut touched: Vec<u128> = Vec::new();
        let (mut any_drop, mut any_hold) = (false, false);
        for (row, (text, hold_row)) in cols.trace_ids.iter().zip(hold.iter_mut()).enumerate() {
            let Some(id) = text.and_then(parse_trace_id) else {
                continue;
            };
            if let Some(keep) = self.cache.get(id) {
                if keep {
                    self.stats.late_kept += 1;
                } else {
                    self.stats.late_dropped += 1;
                    drop[row] = true;
                    any_drop = true;
                }
                continue;
            }
            let trace = match self.traces.get_mut(&id) {
                Some(t) => t,
                None => {
                    let seq = self.next_seq;
                    self.next_seq += 1;
                    self.order.push_back((id, seq));
                    self.traces.entry(id).or_insert(Pending {
                        summary: Summary::new(Randomness::from_trace_id_bits(id)),
                        seq,
                        last_seen: now,
                        bytes: 0,
                        batch_rows: 0,
                        explicit_rv: false,
                    })
                }
            };
            observe(&self.plan, &self.test_columns, cols, row, trace);
            trace.last_seen = now;
            if trace.batch_rows == 0 {
                touched.push(id);
            }
            trace.batch_rows += 1;
            *hold_row = true;
            any_hold = true;
        }
        if any_drop {
            holder.drop_rows(&drop)?;
        }
        if any_hold {
            let keys: Vec<Option<&str>> = cols
                .trace_ids
                .iter()
                .zip(&hold)
                .zip(&drop)
                .filter(|(_, dropped)| !**dropped)
                .map(|((text, held), _)| if *held { text } else { None })
                .collect();
            let held = match holder.hold(&keys) {
                Err(Error::LimitExceeded(_)) => {
                    // The host's bound on what all instances hold
                    // (`max_held_bytes`) is lower than `max_memory` lets
                    // this one reach: decide the older half early, then
                    // try once more.
                    let decided = self.shed(self.held_bytes / 2, holder)?;
                    let keys = follow(&decided, keys, holder)?;
                    holder.hold(&keys)?
                }
                other => other?,
            };
            self.spread(held, &touched);
        }
        self.within_memory(holder)
    }

    /// Shares the bytes a hold added among the traces whose rows it took,
    /// by rows.
    fn spread(&mut self, held: Held, touched: &[u128]) {
        let added = held.bytes.saturating_sub(self.held_bytes);
        self.held_bytes = held.bytes;
        let per_row = added.checked_div(held.rows as u64).unwrap_or(0);
        for id in touched {
            if let Some(t) = self.traces.get_mut(id) {
                t.bytes += per_row * u64::from(t.batch_rows);
                t.batch_rows = 0;
            }
        }
    }

    /// Called every `check_interval` with the host's time: decides the
    /// traces whose last span is `decision_wait` old, releasing the kept
    /// ones (as the tick's output) and discarding the others.
    pub fn tick(&mut self, now: u64, holder: &mut impl Holder) -> Result<(), Error> {
        if self.clock.is_none() {
            // Everything so far arrived before the first tick: now.
            for t in self.traces.values_mut() {
                t.last_seen = now;
            }
        }
        self.clock = Some(self.clock.map_or(now, |c| c.max(now)));
        let now = self.clock.unwrap_or(now);
        self.limits.advance(now);
        let wait = self.plan.decision_wait_ns;
        let mut due: Vec<(u64, u128)> = self
            .traces
            .iter()
            .filter(|(_, t)| t.last_seen.saturating_add(wait) <= now)
            .map(|(id, t)| (t.seq, *id))
            .collect();
        due.sort_unstable();
        let mut verdicts = Verdicts::default();
        for (_, id) in due {
            self.decide(id, false, &mut verdicts);
        }
        self.apply(verdicts, holder)?;
        self.within_memory(holder)?;
        self.compact();
        Ok(())
    }

    /// Decides the oldest traces while the memory is above `max_memory`.
    fn within_memory(&mut self, holder: &mut impl Holder) -> Result<(), Error> {
        self.shed(self.plan.max_memory, holder).map(drop)
    }

    /// Decides the oldest traces, early, until the memory is at most
    /// `limit` or no trace is left. Returns the traces decided and whether
    /// each was kept.
    fn shed(&mut self, limit: u64, holder: &mut impl Holder) -> Result<Vec<(u128, bool)>, Error> {
        let mut decided = Vec::new();
        while self.memory() > limit && !self.traces.is_empty() {
            let mut excess = self.memory() - limit;
            let mut verdicts = Verdicts::default();
            while excess > 0 {
                let Some((id, seq)) = self.order.pop_front() else {
                    break;
                };
                let Some(t) = self.traces.get(&id) else {
                    continue;
                };
                if t.seq != seq {
                    continue;
                }
                excess = excess.saturating_sub(t.bytes + TRACE_BYTES);
                self.decide(id, true, &mut verdicts);
            }
            if verdicts.decided.is_empty() {
                break;
            }
            decided.append(&mut verdicts.decided);
            self.apply(verdicts, holder)?;
        }
        Ok(decided)
    }

    /// Decides trace `id` and forgets it, noting the key to release or
    /// discard.
    fn decide(&mut self, id: u128, early: bool, verdicts: &mut Verdicts) {
        let Some(trace) = self.traces.remove(&id) else {
            return;
        };
        let d = policy::decide(&self.plan.policies, &trace.summary, &mut self.limits);
        self.cache.insert(id, d.keep);
        verdicts.decided.push((id, d.keep));
        let s = &mut self.stats;
        if d.keep {
            s.kept += 1;
            verdicts.keep.push(key(id));
        } else {
            s.dropped += 1;
            verdicts.drop.push(key(id));
        }
        s.early += u64::from(early);
        for (i, n) in s.policy.iter_mut().enumerate().take(64) {
            *n += (d.matched >> i) & 1;
        }
    }

    /// Releases the kept and discards the dropped.
    fn apply(&mut self, verdicts: Verdicts, holder: &mut impl Holder) -> Result<(), Error> {
        if !verdicts.keep.is_empty() {
            let freed = holder.release(&verdicts.keep)?.bytes;
            self.held_bytes = self.held_bytes.saturating_sub(freed);
        }
        if !verdicts.drop.is_empty() {
            let freed = holder.discard(&verdicts.drop)?.bytes;
            self.held_bytes = self.held_bytes.saturating_sub(freed);
        }
        Ok(())
    }

    /// Drops the queue's entries of decided traces once they are most of
    /// it.
    fn compact(&mut self) {
        if self.order.len() > 2 * self.traces.len() + 1024 {
            let traces = &self.traces;
            self.order
                .retain(|(id, seq)| traces.get(id).is_some_and(|t| t.seq == *seq));
            self.order.shrink_to(self.order.len() * 2);
        }
        if self.traces.len() * 4 < self.traces.capacity() {
            self.traces.shrink_to(self.traces.len() * 2);
        }
    }
}

/// Keys to release and to discard.
#[derive(Debug, Default)]
struct Verdicts {
    keep: Vec<String>,
    drop: Vec<String>,
    /// Every trace decided, and whether it was kept.
    decided: Vec<(u128, bool)>,
}

/// After traces were decided while the current batch's rows were about
/// to be held (`keys`, one per row left in the batch): the rows of those
/// traces follow the decision, as late spans do, instead of being held
/// under a trace no longer in flight (where nothing would release them).
/// Kept: they stay in the batch and go on with it. Dropped: they are
/// dropped. Returns the keys of the rows left.
fn follow<'k>(
    decided: &[(u128, bool)],
    mut keys: Vec<Option<&'k str>>,
    holder: &mut impl Holder,
) -> Result<Vec<Option<&'k str>>, Error> {
    if decided.is_empty() {
        return Ok(keys);
    }
    let decided: HashMap<u128, bool, FixedState> = decided.iter().copied().collect();
    let mut drop = vec![false; keys.len()];
    let mut any_drop = false;
    for (key, drop) in keys.iter_mut().zip(drop.iter_mut()) {
        let Some(&keep) = key.and_then(parse_trace_id).and_then(|id| decided.get(&id)) else {
            continue;
        };
        *key = None;
        *drop = !keep;
        any_drop |= !keep;
    }
    if any_drop {
        holder.drop_rows(&drop)?;
        keys = keys
            .into_iter()
            .zip(drop)
            .filter(|(_, dropped)| !dropped)
            .map(|(key, _)| key)
            .collect();
    }
    Ok(keys)
}

/// Folds span `row` into its trace's summary.
#[inline]
fn observe(
    plan: &TailPlan,
    test_columns: &[Option<usize>],
    cols: &TailColumns,
    row: usize,
    trace: &mut Pending,
) {
    let s = &mut trace.summary;
    s.spans = s.spans.saturating_add(1);
    if let (Some(start), Some(end)) = (&cols.start, &cols.end)
        && let (Some(a), Some(b)) = (start[row], end[row])
    {
        s.min_start = s.min_start.min(a);
        s.max_end = s.max_end.max(b);
    }
    if !trace.explicit_rv
        && let Some(states) = &cols.trace_states
        && let Some(state) = states.get(row)
        && let Ok(ot) = tracestate::parse(state)
        && let Some(rv) = ot.randomness
    {
        s.randomness = rv;
        trace.explicit_rv = true;
    }
    let status = cols.status.as_ref().and_then(|c| c[row]);
    for (bit, test) in plan.span_tests.iter().enumerate() {
        if s.matched & (1 << bit) != 0 {
            continue;
        }
        let value = test_columns[bit].and_then(|k| cols.attributes[k][row].as_deref());
        if test.passes(status, value) {
            s.matched |= 1 << bit;
        }
    }
}
