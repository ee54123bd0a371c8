//! Which offsets may be committed: per partition, the messages read and
//! not yet finished, in offset order. A partition's commit point moves
//! only past a prefix of finished messages, so a message that is still in
//! the pipeline (or being sent again) holds back every later offset,
//! however early their own batches were acknowledged.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// A message read: where it is, and the assignment it was read under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    topic: Arc<str>,
    partition: i32,
    generation: u64,
    offset: i64,
}

#[derive(Debug, Default)]
struct Part {
    /// Bumped each time the partition is assigned anew: tokens of an
    /// earlier assignment no longer count (another consumer may have read
    /// the partition meanwhile).
    generation: u64,
    /// Offsets read and not yet passed by the commit point; `true` once
    /// finished.
    open: BTreeMap<i64, bool>,
    /// The next offset to commit, when it moved since last taken.
    store: Option<i64>,
}

/// The offsets of every assigned partition.
#[derive(Debug, Default)]
pub(crate) struct Offsets {
    parts: HashMap<(Arc<str>, i32), Part>,
    next_generation: u64,
}

impl Offsets {
    /// A partition was assigned: what was open for it is forgotten.
    pub(crate) fn assign(&mut self, topic: &str, partition: i32) {
        self.next_generation += 1;
        self.parts.insert(
            (Arc::from(topic), partition),
            Part {
                generation: self.next_generation,
                ..Part::default()
            },
        );
    }

    /// A partition was revoked: finishing its messages no longer moves
    /// anything (their offsets are read again by its next owner).
    pub(crate) fn revoke(&mut self, topic: &str, partition: i32) {
        self.parts.remove(&(Arc::from(topic), partition));
    }

    /// Records that the message at `offset` was read.
    pub(crate) fn read(&mut self, topic: &Arc<str>, partition: i32, offset: i64) -> Token {
        let key = (topic.clone(), partition);
        if !self.parts.contains_key(&key) {
            self.assign(topic, partition);
        }
        let part = self.parts.entry(key).or_default();
        part.open.insert(offset, false);
        Token {
            topic: topic.clone(),
            partition,
            generation: part.generation,
            offset,
        }
    }

    /// Records that a message is finished (acknowledged by every sink, or
    /// skipped as undecodable).
    pub(crate) fn finish(&mut self, token: &Token) {
        let Some(part) = self.parts.get_mut(&(token.topic.clone(), token.partition)) else {
            return;
        };
        if part.generation != token.generation {
            return;
        }
        if let Some(done) = part.open.get_mut(&token.offset) {
            *done = true;
        }
        while let Some(entry) = part.open.first_entry() {
            if !*entry.get() {
                break;
            }
            part.store = Some(*entry.key() + 1);
            entry.remove();
        }
    }

    /// The commit points that moved since last taken: `(topic, partition,
    /// next offset to read)`.
    pub(crate) fn take_moved(&mut self) -> Vec<(Arc<str>, i32, i64)> {
        self.parts
            .iter_mut()
            .filter_map(|((topic, partition), part)| {
                part.store.take().map(|o| (topic.clone(), *partition, o))
            })
            .collect()
    }

    /// How many messages are read and not finished.
    pub(crate) fn open(&self) -> usize {
        self.parts
            .values()
            .map(|p| p.open.values().filter(|done| !**done).count())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guarantees: a message finished early does not move the commit point
    /// past an earlier one still open; once that one finishes, the point
    /// jumps past both.
    #[test]
    fn commit_point_moves_over_finished_prefix_only() {
        let mut o = Offsets::default();
        let t: Arc<str> = Arc::from("t");
        let a = o.read(&t, 0, 10);
        let b = o.read(&t, 0, 11);
        let c = o.read(&t, 0, 12);
        o.finish(&b);
        o.finish(&c);
        assert!(o.take_moved().is_empty());
        assert_eq!(o.open(), 1);
        o.finish(&a);
        assert_eq!(o.take_moved(), vec![(t.clone(), 0, 13)]);
        assert!(o.take_moved().is_empty());
        assert_eq!(o.open(), 0);
    }

    /// Guarantees: after a partition is revoked and assigned again,
    /// finishing a message read under the old assignment moves nothing.
    #[test]
    fn old_assignment_does_not_count() {
        let mut o = Offsets::default();
        let t: Arc<str> = Arc::from("t");
        let old = o.read(&t, 1, 5);
        o.revoke("t", 1);
        o.assign("t", 1);
        let new = o.read(&t, 1, 5);
        o.finish(&old);
        assert!(o.take_moved().is_empty());
        o.finish(&new);
        assert_eq!(o.take_moved(), vec![(t, 1, 6)]);
    }

    /// Guarantees: partitions are independent.
    #[test]
    fn partitions_are_independent() {
        let mut o = Offsets::default();
        let t: Arc<str> = Arc::from("t");
        let _held = o.read(&t, 0, 1);
        let other = o.read(&t, 1, 7);
        o.finish(&other);
        assert_eq!(o.take_moved(), vec![(t, 1, 8)]);
    }
}
