//! The decision cache: the last N decided trace ids and whether each was
//! kept, so that a span arriving after its trace was decided follows the
//! decision at once instead of starting a new trace. Bounded by count:
//! when full, the oldest decision is forgotten (first in, first out).
//! Each entry costs about 48 bytes of the instance's memory.

use std::collections::VecDeque;

use foldhash::fast::FixedState;
use hashbrown::HashMap;

/// Decided trace ids, at most `capacity`.
#[derive(Debug, Clone)]
pub struct DecisionCache {
    kept: HashMap<u128, bool, FixedState>,
    order: VecDeque<u128>,
    capacity: usize,
}

impl DecisionCache {
    /// A cache of at most `capacity` decisions; 0 remembers none.
    pub fn new(capacity: usize) -> DecisionCache {
        DecisionCache {
            kept: HashMap::with_hasher(FixedState::with_seed(0x5a3e)),
            order: VecDeque::new(),
            capacity,
        }
    }

    /// Whether trace `id` was kept, if it was decided and is remembered.
    #[inline]
    pub fn get(&self, id: u128) -> Option<bool> {
        if self.capacity == 0 {
            return None;
        }
        self.kept.get(&id).copied()
    }

    /// Remembers that trace `id` was kept or dropped, forgetting the
    /// oldest decision when full.
    pub fn insert(&mut self, id: u128, keep: bool) {
        if self.capacity == 0 {
            return;
        }
        if let Some(k) = self.kept.get_mut(&id) {
            *k = keep;
            return;
        }
        if self.order.len() >= self.capacity
            && let Some(oldest) = self.order.pop_front()
        {
            self.kept.remove(&oldest);
        }
        self.kept.insert(id, keep);
        self.order.push_back(id);
    }

    /// Decisions remembered.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether none is remembered.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}
