//! The law of replay, checked on random logs with random damage: replay
//! returns exactly the records before the damage, reports the cut, never
//! panics, and the log goes on after it.

use std::fs;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use weir_config::FsyncPolicy;
use weir_core::Signal;
use weir_store::wal::{Wal, WalOptions, WalRecord};

use crate::wal_common::{batch, record_spans, segments};

/// Damage to the last segment: cut it at a fraction of its length, and/or
/// XOR one byte (at a fraction of what is left) with a non-zero mask.
#[derive(Debug, Clone)]
struct Damage {
    truncate: Option<f64>,
    flip: Option<(f64, u8)>,
}

fn damage() -> impl Strategy<Value = Damage> {
    let fraction = 0.0..1.0f64;
    let flip = (fraction.clone(), 1..=255u8);
    prop_oneof![
        fraction.clone().prop_map(|f| Damage {
            truncate: Some(f),
            flip: None
        }),
        flip.clone().prop_map(|f| Damage {
            truncate: None,
            flip: Some(f)
        }),
        (fraction, flip).prop_map(|(t, f)| Damage {
            truncate: Some(t),
            flip: Some(f)
        }),
    ]
}

/// One appended batch: table index, rows, seed.
fn entry() -> impl Strategy<Value = (usize, usize, u64)> {
    (0..4usize, 0..12usize, any::<u64>())
}

fn opts(dir: &std::path::Path, segment_size: u64) -> WalOptions {
    WalOptions {
        dir: dir.to_path_buf(),
        fsync: FsyncPolicy::Never,
        segment_size,
    }
}

proptest! {
    // The regressions file lies beside this file (`WithSource`): the
    // default looks for it under `tests/proptest-regressions/`, because
    // this directory has a `main.rs`.
    #![proptest_config(ProptestConfig {
        cases: 64,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
        ..ProptestConfig::default()
    })]

    /// Scenario: groups of random batches of every table appended with
    /// random segment sizes and restarts, then the last segment truncated at
    /// any byte and/or a byte of it flipped. Guarantees: replay returns
    /// exactly the records of the earlier segments plus those of the last
    /// segment lying wholly before the damage, nothing after it; the cut is
    /// reported (unless a truncation fell on a record boundary, which leaves
    /// a valid log), with the bytes cut; appending afterwards works, with
    /// LSNs above every kept one (and above every lost one when the damaged
    /// bytes are still there), and the next replay returns them too.
    #[test]
    fn replay_keeps_exactly_the_prefix_before_damage(
        groups in vec(vec(entry(), 1..4), 1..8),
        segment_size in prop_oneof![Just(1u64), Just(6_000), Just(40_000), Just(64u64 << 20)],
        reopen_every in 1..4usize,
        damage in damage(),
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut wal, _, _) = Wal::open(opts(dir.path(), segment_size)).expect("open");
        let mut appended: Vec<WalRecord> = Vec::new();
        for (i, group) in groups.iter().enumerate() {
            if i > 0 && i % reopen_every == 0 {
                drop(wal);
                let (reopened, records, report) = Wal::open(opts(dir.path(), segment_size)).expect("reopen");
                prop_assert_eq!(report.problem, None);
                prop_assert_eq!(&records, &appended);
                wal = reopened;
            }
            let batches: Vec<(Signal, arrow::record_batch::RecordBatch)> = group
                .iter()
                .map(|&(t, rows, seed)| (Signal::ALL[t], batch(Signal::ALL[t], rows, seed)))
                .collect();
            let entries: Vec<_> = batches.iter().map(|(t, b)| (*t, b)).collect();
            let lsns = wal.append(&entries).expect("append");
            for (lsn, (table, batch)) in lsns.into_iter().zip(batches) {
                appended.push(WalRecord { lsn, table, batch });
            }
        }
        drop(wal);
        let max_appended = appended.last().expect("appended").lsn;

        // Damage the last segment.
        let last = segments(dir.path()).pop().expect("a segment");
        let mut data = fs::read(&last).expect("read");
        let spans = record_spans(&data);
        let earlier = appended.len() - spans.len();
        let mut damage_at = data.len();
        let mut reported = false;
        if let Some(f) = damage.truncate {
            let cut = ((data.len() as f64) * f) as usize;
            data.truncate(cut);
            damage_at = cut;
            let on_boundary = cut >= 32 && (cut == 32 || spans.iter().any(|&(_, end)| end == cut));
            reported |= !on_boundary;
        }
        if let Some((f, mask)) = damage.flip
            && !data.is_empty()
        {
            let at = ((data.len() as f64) * f) as usize;
            data[at] ^= mask;
            damage_at = damage_at.min(at);
            reported = true;
        }
        fs::write(&last, &data).expect("write the damage");
        let kept_here = spans.iter().filter(|&&(_, end)| end <= damage_at).count();
        let expected = &appended[..earlier + kept_here];
        let header_ok = damage_at >= 32;
        let good_len = if header_ok {
            spans[..kept_here].last().map_or(32, |&(_, end)| end)
        } else {
            0
        };

        let (mut wal, records, report) = Wal::open(opts(dir.path(), segment_size)).expect("open after damage");
        prop_assert_eq!(&records, expected);
        prop_assert_eq!(report.problem.is_some(), reported, "{:?}", report.problem);
        if let Some(problem) = &report.problem {
            let name = last.file_name().expect("name").to_string_lossy().into_owned();
            prop_assert!(problem.contains(&name), "{}", problem);
        }
        prop_assert_eq!(report.truncated_bytes, (data.len() - good_len) as u64);

        // The log goes on.
        let extra = batch(Signal::Logs, 3, 7);
        let lsn = wal.append(&[(Signal::Logs, &extra)]).expect("append after the cut")[0];
        prop_assert!(lsn > expected.last().map_or(0, |r| r.lsn));
        if damage.truncate.is_none() {
            prop_assert!(lsn > max_appended, "LSN {} reused ({} were handed out)", lsn, max_appended);
        }
        drop(wal);
        let (_, records, report) = Wal::open(opts(dir.path(), segment_size)).expect("open again");
        prop_assert_eq!(report.problem, None);
        prop_assert_eq!(&records[..expected.len()], expected);
        prop_assert_eq!(records.len(), expected.len() + 1);
        prop_assert_eq!(records[expected.len()].lsn, lsn);
        prop_assert_eq!(&records[expected.len()].batch, &extra);
    }
}
