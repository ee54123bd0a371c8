//! [`SeriesTable`]: every series' counts, held column-wise (one array per
//! field, a series is an index), with its key interned once in a hash
//! table of indices. Looking a span's series up hashes its key and
//! compares bytes; only a new series allocates.

use std::hash::BuildHasher;

use foldhash::fast::FixedState;
use hashbrown::HashTable;

use crate::key::OVERFLOW;

/// Where a key's counts go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// The series' index.
    pub index: usize,
    /// Whether the key had no series of its own (the table was full) and
    /// went to the overflow series.
    pub overflowed: bool,
}

/// Counts per series: calls, and with a histogram, the sum of durations
/// and the count per bucket.
#[derive(Debug, Clone)]
pub struct SeriesTable {
    /// Buckets per series: bounds + 1, or 0 without a histogram.
    width: usize,
    /// The most series besides the overflow one.
    limit: usize,
    hasher: FixedState,
    index: HashTable<u32>,
    keys: Vec<Box<[u8]>>,
    hashes: Vec<u64>,
    calls: Vec<u64>,
    sums: Vec<f64>,
    buckets: Vec<u64>,
    /// When the series started (nanoseconds since the epoch); 0 until it
    /// is first emitted.
    pub start: Vec<u64>,
    /// When the series last saw a span, as the emission time after it.
    pub seen: Vec<u64>,
    /// Whether the series saw a span since the last emission.
    pub touched: Vec<bool>,
    overflow: Option<u32>,
}

impl SeriesTable {
    /// An empty table for histograms of `width` buckets (0 for none),
    /// holding `limit` series besides the overflow one.
    pub fn new(width: usize, limit: usize) -> Self {
        SeriesTable {
            width,
            limit,
            hasher: FixedState::with_seed(0x5eed_5eed_5eed_5eed),
            index: HashTable::new(),
            keys: Vec::new(),
            hashes: Vec::new(),
            calls: Vec::new(),
            sums: Vec::new(),
            buckets: Vec::new(),
            start: Vec::new(),
            seen: Vec::new(),
            touched: Vec::new(),
            overflow: None,
        }
    }

    /// The number of series, the overflow one included.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there is no series.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Buckets per series.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Series `i`'s key.
    pub fn key(&self, i: usize) -> &[u8] {
        &self.keys[i]
    }

    /// Series `i`'s call count.
    pub fn calls(&self, i: usize) -> u64 {
        self.calls[i]
    }

    /// Series `i`'s sum of durations, in the histogram's unit.
    pub fn sum(&self, i: usize) -> f64 {
        self.sums[i]
    }

    /// Series `i`'s bucket counts (empty without a histogram).
    pub fn buckets(&self, i: usize) -> &[u64] {
        &self.buckets[i * self.width..(i + 1) * self.width]
    }

    /// Whether series `i` is the overflow series.
    pub fn is_overflow(&self, i: usize) -> bool {
        self.overflow == Some(i as u32)
    }

    /// The series of `key`, made if it is new: in the overflow series when
    /// `limit` series exist already.
    pub fn slot(&mut self, key: &[u8]) -> Slot {
        let hash = self.hasher.hash_one(key);
        let keys = &self.keys;
        if let Some(&i) = self.index.find(hash, |&i| &*keys[i as usize] == key) {
            return Slot {
                index: i as usize,
                overflowed: false,
            };
        }
        let own = self.len() - usize::from(self.overflow.is_some());
        if own >= self.limit && key != OVERFLOW {
            return Slot {
                index: self.overflow_index(),
                overflowed: true,
            };
        }
        Slot {
            index: self.push(key, hash),
            overflowed: false,
        }
    }

    /// The overflow series' index, made if needed.
    fn overflow_index(&mut self) -> usize {
        if let Some(i) = self.overflow {
            return i as usize;
        }
        let hash = self.hasher.hash_one(OVERFLOW);
        let i = self.push(OVERFLOW, hash);
        self.overflow = Some(i as u32);
        i
    }

    fn push(&mut self, key: &[u8], hash: u64) -> usize {
        let i = self.keys.len();
        self.keys.push(key.into());
        self.hashes.push(hash);
        self.calls.push(0);
        self.sums.push(0.0);
        self.buckets.resize(self.buckets.len() + self.width, 0);
        self.start.push(0);
        self.seen.push(0);
        self.touched.push(false);
        let hashes = &self.hashes;
        self.index
            .insert_unique(hash, i as u32, |&j| hashes[j as usize]);
        if key == OVERFLOW {
            self.overflow = Some(i as u32);
        }
        i
    }

    /// Counts one span of `value` (in the histogram's unit) in bucket
    /// `bucket` of series `i`.
    #[inline]
    pub fn observe(&mut self, i: usize, value: f64, bucket: usize) {
        self.calls[i] += 1;
        self.touched[i] = true;
        if self.width > 0 {
            self.sums[i] += value;
            self.buckets[i * self.width + bucket] += 1;
        }
    }

    /// Counts one span without a duration (no histogram).
    #[inline]
    pub fn count(&mut self, i: usize) {
        self.calls[i] += 1;
        self.touched[i] = true;
    }

    /// Adds counts made elsewhere to `key`'s series; returns the slot they
    /// went to. `buckets` must be [`Self::width`] long.
    pub fn add(&mut self, key: &[u8], calls: u64, sum: f64, buckets: &[u64]) -> Slot {
        let slot = self.slot(key);
        let i = slot.index;
        self.calls[i] += calls;
        self.touched[i] = true;
        if self.width > 0 {
            self.sums[i] += sum;
            for (b, n) in self.buckets[i * self.width..(i + 1) * self.width]
                .iter_mut()
                .zip(buckets)
            {
                *b += n;
            }
        }
        slot
    }

    /// Takes counts away from `key`'s series (the counts another table
    /// already handed on). A series left with no call stays until
    /// [`Self::drop_empty`].
    pub fn subtract(&mut self, key: &[u8], calls: u64, sum: f64, buckets: &[u64]) {
        let hash = self.hasher.hash_one(key);
        let keys = &self.keys;
        let Some(&i) = self.index.find(hash, |&i| &*keys[i as usize] == key) else {
            return;
        };
        let i = i as usize;
        self.calls[i] = self.calls[i].saturating_sub(calls);
        if self.width > 0 {
            self.sums[i] -= sum;
            for (b, n) in self.buckets[i * self.width..(i + 1) * self.width]
                .iter_mut()
                .zip(buckets)
            {
                *b = b.saturating_sub(*n);
            }
        }
    }

    /// Removes the series left with no call.
    pub fn drop_empty(&mut self) {
        let empty: Vec<bool> = self.calls.iter().map(|c| *c == 0).collect();
        self.retain(|i| !empty[i]);
    }

    /// Forgets every series.
    pub fn clear(&mut self) {
        self.index.clear();
        self.keys.clear();
        self.hashes.clear();
        self.calls.clear();
        self.sums.clear();
        self.buckets.clear();
        self.start.clear();
        self.seen.clear();
        self.touched.clear();
        self.overflow = None;
    }

    /// Keeps the series for which `keep(index)` is true, in their order.
    pub fn retain(&mut self, keep: impl Fn(usize) -> bool) {
        let kept: Vec<bool> = (0..self.len()).map(keep).collect();
        if kept.iter().all(|k| *k) {
            return;
        }
        let w = self.width;
        let mut to = 0;
        for (from, _) in kept.iter().enumerate().filter(|(_, k)| **k) {
            if to != from {
                self.keys.swap(to, from);
                self.hashes[to] = self.hashes[from];
                self.calls[to] = self.calls[from];
                self.sums[to] = self.sums[from];
                self.buckets.copy_within(from * w..(from + 1) * w, to * w);
                self.start[to] = self.start[from];
                self.seen[to] = self.seen[from];
                self.touched[to] = self.touched[from];
            }
            to += 1;
        }
        self.keys.truncate(to);
        self.hashes.truncate(to);
        self.calls.truncate(to);
        self.sums.truncate(to);
        self.buckets.truncate(to * w);
        self.start.truncate(to);
        self.seen.truncate(to);
        self.touched.truncate(to);
        self.index.clear();
        self.overflow = None;
        for i in 0..to {
            let hashes = &self.hashes;
            self.index
                .insert_unique(self.hashes[i], i as u32, |&j| hashes[j as usize]);
            if &*self.keys[i] == OVERFLOW {
                self.overflow = Some(i as u32);
            }
        }
    }

    /// The series' indices in key order: the series of one resource are
    /// neighbours, and the overflow series comes last.
    pub fn sorted(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.len()).collect();
        order.sort_unstable_by(|a, b| self.keys[*a].cmp(&self.keys[*b]));
        order
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> Vec<u8> {
        vec![0, n, n]
    }

    /// Guarantees: a key finds its own series every time; past the limit
    /// new keys share the overflow series while known keys keep theirs.
    #[test]
    fn interns_keys_up_to_the_limit() {
        let mut t = SeriesTable::new(3, 2);
        let a = t.slot(&key(1));
        let b = t.slot(&key(2));
        assert_ne!(a.index, b.index);
        assert_eq!(t.slot(&key(1)), a);
        let c = t.slot(&key(3));
        let d = t.slot(&key(4));
        assert!(c.overflowed && d.overflowed);
        assert_eq!(c.index, d.index);
        assert!(t.is_overflow(c.index));
        assert_eq!(t.slot(&key(2)), b);
        assert_eq!(t.len(), 3);
        assert_eq!(*t.sorted().last().expect("series"), c.index);
    }

    /// Guarantees: removing series keeps the others' counts and keys, and
    /// lookups still find them.
    #[test]
    fn retain_and_subtract_keep_the_rest_intact() {
        let mut t = SeriesTable::new(2, 10);
        for n in 0..5u8 {
            let i = t.slot(&key(n)).index;
            for _ in 0..=n {
                t.observe(i, f64::from(n), usize::from(n % 2));
            }
        }
        t.retain(|i| i % 2 == 0);
        assert_eq!(t.len(), 3);
        for n in [0u8, 2, 4] {
            let i = t.slot(&key(n)).index;
            assert_eq!(t.calls(i), u64::from(n) + 1);
            assert_eq!(t.buckets(i), [u64::from(n) + 1, 0]);
        }
        t.subtract(&key(2), 3, 6.0, &[3, 0]);
        t.drop_empty();
        assert_eq!(t.len(), 2);
        t.subtract(&key(4), 2, 8.0, &[2, 0]);
        let i = t.slot(&key(4)).index;
        assert_eq!((t.calls(i), t.sum(i), t.buckets(i)), (3, 12.0, &[3, 0][..]));
    }
}
