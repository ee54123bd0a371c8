//! The host side of the `hold` interface (`weir:plugin@0.2.0`): rows an
//! instance keeps across calls, under keys of the plugin's choosing.
//!
//! A `hold` call takes the rows it moves out of the batch with one Arrow
//! `take` (grouped by key) and keeps each key's rows as a zero-copy slice
//! of that *chunk*. A chunk's buffers count, in the instance's and the
//! plugin's `bytes`, until the last of its rows leaves the hold; that is
//! the memory really kept, and what `max_held_bytes` bounds.
//!
//! Each call into the plugin is a unit: [`Hold::begin_call`] marks its
//! start; on success [`Hold::commit`] hands over the rows it released (one
//! batch per signal); when the call (or another part of the same input)
//! fails, [`Hold::abort_call`] forgets the rows the call held (its input,
//! which follows `on_error`, still has them) and gives back the rows it
//! released, to be sent on all the same. An instance that is replaced or
//! stopped gives up everything else with [`Hold::drain`].

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow::array::{BooleanArray, UInt32Array};
use arrow::compute::{filter_record_batch, interleave_record_batch, take_record_batch};
use arrow::record_batch::RecordBatch;
use weir_core::Signal;

use crate::metrics;

/// An amount of held rows: the WIT `held` record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Held {
    /// Rows.
    pub rows: usize,
    /// Bytes of Arrow buffers.
    pub bytes: u64,
}

/// Why a `hold` call was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HoldError {
    /// `keys` has not one entry per row.
    InvalidArgument(String),
    /// The rows would take the plugin past `max_held_bytes`.
    LimitExceeded(String),
}

/// What all instances of one plugin hold together, and its bound.
#[derive(Debug)]
pub(crate) struct HoldTotals {
    component: Arc<str>,
    max_bytes: u64,
    rows: AtomicU64,
    bytes: AtomicU64,
}

impl HoldTotals {
    /// Totals of nothing held, bounded at `max_bytes`.
    pub(crate) fn new(component: Arc<str>, max_bytes: u64) -> Self {
        HoldTotals {
            component,
            max_bytes,
            rows: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
        }
    }

    /// Rows and bytes held by all instances now.
    pub(crate) fn now(&self) -> Held {
        Held {
            rows: usize::try_from(self.rows.load(Ordering::Relaxed)).unwrap_or(usize::MAX),
            bytes: self.bytes.load(Ordering::Relaxed),
        }
    }

    /// Takes `bytes` more, unless that passes the bound.
    fn reserve(&self, bytes: u64) -> bool {
        self.bytes
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |now| {
                now.checked_add(bytes).filter(|n| *n <= self.max_bytes)
            })
            .is_ok()
    }

    fn add_rows(&self, rows: usize) {
        self.rows.fetch_add(rows as u64, Ordering::Relaxed);
        self.report();
    }

    fn sub(&self, rows: usize, bytes: u64) {
        self.rows.fetch_sub(rows as u64, Ordering::Relaxed);
        self.bytes.fetch_sub(bytes, Ordering::Relaxed);
        self.report();
    }

    /// Sets `weir_plugin_held_rows` / `weir_plugin_held_bytes`.
    fn report(&self) {
        let now = self.now();
        metrics::held_rows(&self.component).set(now.rows as f64);
        metrics::held_bytes(&self.component).set(now.bytes as f64);
    }
}

/// Some rows of one key, as one `hold` call moved them: a range of the
/// call's chunk, taken out only when the rows are sent on.
struct Piece {
    signal: Signal,
    /// The whole chunk the rows are in.
    data: Arc<RecordBatch>,
    chunk: u64,
    /// Where in the chunk they start.
    offset: usize,
    /// How many rows.
    len: usize,
    /// The call that held them.
    call: u64,
}

/// A chunk's buffers and how many of its rows are still held.
struct Chunk {
    bytes: u64,
    rows: usize,
}

/// One instance's hold.
pub(crate) struct Hold {
    totals: Arc<HoldTotals>,
    keys: HashMap<String, Vec<Piece>>,
    chunks: HashMap<u64, Chunk>,
    next_chunk: u64,
    /// Rows and bytes this instance holds (its share of `totals`).
    rows: usize,
    bytes: u64,
    /// The current call.
    call: u64,
    /// Rows released during the current call, in order.
    released: Vec<Piece>,
}

impl Hold {
    /// An empty hold counting into `totals`.
    pub(crate) fn new(totals: Arc<HoldTotals>) -> Self {
        Hold {
            totals,
            keys: HashMap::new(),
            chunks: HashMap::new(),
            next_chunk: 0,
            rows: 0,
            bytes: 0,
            call: 0,
            released: Vec::new(),
        }
    }

    /// What this instance holds now.
    pub(crate) fn holding(&self) -> Held {
        Held {
            rows: self.rows,
            bytes: self.bytes,
        }
    }

    /// Marks the start of a call into the plugin.
    pub(crate) fn begin_call(&mut self) {
        self.call += 1;
        self.released.clear();
    }

    /// Moves the rows of `data` whose key is `some` into the hold; returns
    /// what is left of `data`, the rows moved, and the bytes now held.
    pub(crate) fn hold(
        &mut self,
        signal: Signal,
        data: &RecordBatch,
        keys: Vec<Option<String>>,
    ) -> Result<(RecordBatch, Held), HoldError> {
        if keys.len() != data.num_rows() {
            return Err(HoldError::InvalidArgument(format!(
                "{} keys given for a batch of {} rows; give exactly one per row",
                keys.len(),
                data.num_rows()
            )));
        }
        // Row indices grouped by key, keys in first-seen order.
        let mut groups: Vec<(String, Vec<u32>)> = Vec::new();
        let mut index: HashMap<&str, usize> = HashMap::new();
        for (row, key) in keys.iter().enumerate() {
            let Some(key) = key else { continue };
            let group = *index.entry(key.as_str()).or_insert_with(|| {
                groups.push((key.clone(), Vec::new()));
                groups.len() - 1
            });
            groups[group].1.push(row as u32);
        }
        let moved: usize = groups.iter().map(|(_, rows)| rows.len()).sum();
        if moved == 0 {
            return Ok((
                data.clone(),
                Held {
                    rows: 0,
                    bytes: self.bytes,
                },
            ));
        }
        let indices: UInt32Array = groups
            .iter()
            .flat_map(|(_, rows)| rows.iter().copied())
            .collect();
        let chunk = take_record_batch(data, &indices)
            .map_err(|e| HoldError::InvalidArgument(format!("the rows cannot be held: {e}")))?;
        let bytes = chunk.get_array_memory_size() as u64;
        if !self.totals.reserve(bytes) {
            return Err(HoldError::LimitExceeded(format!(
                "holding {moved} more rows ({bytes} bytes) would take the plugin past its \
                 {} bytes (max_held_bytes); release or discard held rows first",
                self.totals.max_bytes
            )));
        }
        let keep: BooleanArray = keys.iter().map(|k| Some(k.is_none())).collect();
        let left = match filter_record_batch(data, &keep) {
            Ok(left) => left,
            Err(e) => {
                self.totals.sub(0, bytes);
                return Err(HoldError::InvalidArgument(format!(
                    "the rows cannot be held: {e}"
                )));
            }
        };
        let id = self.next_chunk;
        self.next_chunk += 1;
        let chunk = Arc::new(chunk);
        let mut offset = 0;
        for (key, rows) in groups {
            let piece = Piece {
                signal,
                data: chunk.clone(),
                chunk: id,
                offset,
                len: rows.len(),
                call: self.call,
            };
            offset += rows.len();
            self.keys.entry(key).or_default().push(piece);
        }
        self.chunks.insert(id, Chunk { bytes, rows: moved });
        self.rows += moved;
        self.bytes += bytes;
        self.totals.add_rows(moved);
        Ok((
            left,
            Held {
                rows: moved,
                bytes: self.bytes,
            },
        ))
    }

    /// Takes every piece of `keys` out of the hold; returns them with the
    /// rows and the bytes freed.
    fn take(&mut self, keys: &[String]) -> (Vec<Piece>, Held) {
        let mut pieces = Vec::new();
        for key in keys {
            if let Some(mut of_key) = self.keys.remove(key) {
                pieces.append(&mut of_key);
            }
        }
        let mut held = Held::default();
        for piece in &pieces {
            held.rows += piece.len;
            held.bytes += self.forget(piece);
        }
        (pieces, held)
    }

    /// Counts `piece`'s rows out; returns the bytes that frees.
    fn forget(&mut self, piece: &Piece) -> u64 {
        let rows = piece.len;
        let mut freed = 0;
        if let Some(chunk) = self.chunks.get_mut(&piece.chunk) {
            chunk.rows -= rows;
            if chunk.rows == 0 {
                freed = chunk.bytes;
                self.chunks.remove(&piece.chunk);
            }
        }
        self.rows -= rows;
        self.bytes -= freed;
        self.totals.sub(rows, freed);
        freed
    }

    /// Releases every row of `keys`: they go out with the call's output.
    pub(crate) fn release(&mut self, keys: &[String]) -> Held {
        let (mut pieces, held) = self.take(keys);
        self.released.append(&mut pieces);
        held
    }

    /// Drops every row of `keys`.
    pub(crate) fn discard(&mut self, keys: &[String]) -> Held {
        self.take(keys).1
    }

    /// Ends a successful call: the rows it released, one batch per signal.
    pub(crate) fn commit(&mut self) -> Vec<(Signal, RecordBatch)> {
        batches(std::mem::take(&mut self.released))
    }

    /// Ends a call whose input is not passed on as the plugin left it:
    /// forgets the rows the call held (the input still has them) and
    /// returns those it released that were held before it, to be sent on
    /// all the same.
    pub(crate) fn abort_call(&mut self) -> Vec<(Signal, RecordBatch)> {
        let call = self.call;
        let mut mine = Vec::new();
        for pieces in self.keys.values_mut() {
            let (now, before): (Vec<Piece>, Vec<Piece>) =
                pieces.drain(..).partition(|p| p.call == call);
            *pieces = before;
            mine.extend(now);
        }
        self.keys.retain(|_, pieces| !pieces.is_empty());
        for piece in &mine {
            self.forget(piece);
        }
        let released = std::mem::take(&mut self.released);
        batches(released.into_iter().filter(|p| p.call != call).collect())
    }

    /// Gives up everything held (the instance is being replaced or
    /// stopped): the rows, one batch per signal, in the order held.
    pub(crate) fn drain(&mut self) -> Vec<(Signal, RecordBatch)> {
        let mut pieces: Vec<Piece> = self.keys.drain().flat_map(|(_, p)| p).collect();
        // Chunks are numbered in the order they were held.
        pieces.sort_by_key(|p| (p.chunk, p.offset));
        for piece in &pieces {
            self.forget(piece);
        }
        let mut out = batches(std::mem::take(&mut self.released));
        out.extend(batches(pieces));
        out
    }
}

impl Drop for Hold {
    /// An instance dropped with rows held (a path that forgot to drain)
    /// must not leave them counted.
    fn drop(&mut self) {
        if self.rows > 0 || self.bytes > 0 {
            self.totals.sub(self.rows, self.bytes);
        }
    }
}

/// `pieces` as one batch per signal (in order of first appearance), rows
/// in the pieces' order, picked out of their chunks in one `interleave`
/// per signal (a slice of every column per piece cost more than the
/// plugin's own work); chunks whose schemas differ stay apart.
fn batches(pieces: Vec<Piece>) -> Vec<(Signal, RecordBatch)> {
    // Per signal: its chunks, and (chunk, row) for every row in order.
    struct Group {
        signal: Signal,
        chunks: Vec<Arc<RecordBatch>>,
        at: HashMap<u64, usize>,
        rows: Vec<(usize, usize)>,
    }
    let mut groups: Vec<Group> = Vec::new();
    for piece in pieces {
        let g = match groups.iter().position(|g| g.signal == piece.signal) {
            Some(g) => g,
            None => {
                groups.push(Group {
                    signal: piece.signal,
                    chunks: Vec::new(),
                    at: HashMap::new(),
                    rows: Vec::new(),
                });
                groups.len() - 1
            }
        };
        let group = &mut groups[g];
        let c = *group.at.entry(piece.chunk).or_insert_with(|| {
            group.chunks.push(piece.data.clone());
            group.chunks.len() - 1
        });
        group
            .rows
            .extend((piece.offset..piece.offset + piece.len).map(|r| (c, r)));
    }
    let mut out = Vec::new();
    for group in groups {
        let chunks: Vec<&RecordBatch> = group.chunks.iter().map(|c| c.as_ref()).collect();
        match interleave_record_batch(&chunks, &group.rows) {
            Ok(one) => out.push((group.signal, one)),
            // Chunks of different schemas: each piece's rows on their own.
            Err(_) => {
                for (c, r) in group.rows {
                    out.push((group.signal, chunks[c].slice(r, 1)));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::columns::read_strings;
    use weir_core::convert::{json, logs_to_batch};

    fn logs(bodies: &[&str]) -> RecordBatch {
        let records: Vec<String> = bodies
            .iter()
            .map(|b| format!(r#"{{"severityNumber":9,"body":{{"stringValue":"{b}"}}}}"#))
            .collect();
        let text = format!(
            r#"{{"resourceLogs":[{{"scopeLogs":[{{"logRecords":[{}]}}]}}]}}"#,
            records.join(",")
        );
        let req = json::decode_logs(text.as_bytes()).expect("valid OTLP/JSON");
        logs_to_batch(&req).expect("converts").batch
    }

    fn bodies(b: &RecordBatch) -> Vec<String> {
        read_strings(b, "body")
            .expect("body")
            .into_iter()
            .map(|v| v.unwrap_or_default())
            .collect()
    }

    fn key(k: &str) -> Option<String> {
        Some(k.to_string())
    }

    fn hold(max: u64) -> (Hold, Arc<HoldTotals>) {
        let totals = Arc::new(HoldTotals::new("test".into(), max));
        (Hold::new(totals.clone()), totals)
    }

    /// Guarantees: held rows leave the batch; a release gives them back
    /// whole, key by key in the order asked, each key's rows in the order
    /// held (across calls), as one batch; the counts go back to zero.
    #[test]
    fn hold_then_release_gives_back_the_rows() {
        let (mut h, totals) = hold(u64::MAX);
        h.begin_call();
        let input = logs(&["a1", "b1", "x", "a2"]);
        let (left, held) = h
            .hold(
                Signal::Logs,
                &input,
                vec![key("a"), key("b"), None, key("a")],
            )
            .expect("held");
        assert_eq!(bodies(&left), ["x"]);
        assert_eq!(held.rows, 3);
        assert!(held.bytes > 0);
        assert_eq!(h.commit(), vec![]);
        h.begin_call();
        let (_, second) = h
            .hold(Signal::Logs, &logs(&["b2"]), vec![key("b")])
            .expect("held");
        assert_eq!(second.rows, 1);
        assert!(second.bytes > held.bytes, "the bytes held in all");
        assert_eq!(
            totals.now(),
            Held {
                rows: 4,
                bytes: second.bytes
            }
        );
        let released = h.release(&["b".into(), "nope".into(), "a".into()]);
        assert_eq!(
            released,
            Held {
                rows: 4,
                bytes: second.bytes
            }
        );
        let out = h.commit();
        assert_eq!(out.len(), 1);
        assert_eq!(bodies(&out[0].1), ["b1", "b2", "a1", "a2"]);
        assert_eq!(out[0].1.schema(), input.schema());
        assert_eq!(h.holding(), Held::default());
        assert_eq!(totals.now(), Held::default());
    }

    /// Guarantees: a chunk's bytes stay counted until its last row leaves;
    /// discard frees them and returns nothing to send.
    #[test]
    fn bytes_are_freed_with_the_last_row_of_a_chunk() {
        let (mut h, totals) = hold(u64::MAX);
        h.begin_call();
        let (_, held) = h
            .hold(Signal::Logs, &logs(&["a", "b"]), vec![key("a"), key("b")])
            .expect("held");
        let first = h.discard(&["a".into()]);
        assert_eq!((first.rows, first.bytes), (1, 0));
        let second = h.discard(&["b".into()]);
        assert_eq!((second.rows, second.bytes), (1, held.bytes));
        assert_eq!(h.commit(), vec![]);
        assert_eq!(totals.now(), Held::default());
    }

    /// Guarantees: past the bound `hold` is refused and moves nothing.
    #[test]
    fn the_bound_refuses() {
        let (mut h, totals) = hold(64);
        h.begin_call();
        let input = logs(&["a"]);
        let refused = h.hold(Signal::Logs, &input, vec![key("a")]);
        assert!(matches!(refused, Err(HoldError::LimitExceeded(_))));
        assert_eq!(totals.now(), Held::default());
        let wrong = h.hold(Signal::Logs, &input, vec![]);
        assert!(matches!(wrong, Err(HoldError::InvalidArgument(_))));
    }

    /// Guarantees: an aborted call forgets the rows it held and gives back
    /// those it released that were held before; draining gives back the
    /// rest; nothing stays counted.
    #[test]
    fn abort_then_drain_loses_nothing_held_before() {
        let (mut h, totals) = hold(u64::MAX);
        h.begin_call();
        h.hold(Signal::Logs, &logs(&["a1", "b1"]), vec![key("a"), key("b")])
            .expect("held");
        h.commit();
        h.begin_call();
        h.hold(Signal::Logs, &logs(&["c1", "a2"]), vec![key("c"), key("a")])
            .expect("held");
        h.release(&["a".into()]);
        let orphans = h.abort_call();
        assert_eq!(orphans.len(), 1);
        assert_eq!(bodies(&orphans[0].1), ["a1"]);
        assert_eq!(h.holding().rows, 1);
        let rest = h.drain();
        assert_eq!(bodies(&rest[0].1), ["b1"]);
        assert_eq!(totals.now(), Held::default());
    }
}
