//! The store's tables: one per [`Signal`], named as it is (`logs`,
//! `spans`, `metrics`, `alerts`), with its schema and time column
//! ([`Signal::schema`], [`Signal::time_column`]). What the store adds: a
//! table's one-byte id in the write-ahead log, its slot in per-table
//! arrays, and the lookup by exact name of the files and the checkpoint.

use weir_core::Signal;

/// The table called exactly `name` (no aliases: `traces` is not a table).
pub(crate) fn named(name: &str) -> Option<Signal> {
    Signal::ALL.into_iter().find(|t| t.as_str() == name)
}

/// The position of `table` in per-table arrays.
pub(crate) fn index(table: Signal) -> usize {
    match table {
        Signal::Logs => 0,
        Signal::Spans => 1,
        Signal::Metrics => 2,
        Signal::Alerts => 3,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guarantees: names lead back to their table, indexes are distinct and
    /// fit per-table arrays, and unknown names (and the `traces` alias of
    /// `spans`) are no table.
    #[test]
    fn names_and_indexes() {
        for t in Signal::ALL {
            assert_eq!(named(t.as_str()), Some(t));
            assert!(index(t) < Signal::ALL.len());
        }
        let mut slots: Vec<usize> = Signal::ALL.into_iter().map(index).collect();
        slots.dedup();
        assert_eq!(slots.len(), Signal::ALL.len());
        assert_eq!(named("traces"), None);
    }
}
