//! Unit tests of what the public API cannot reach: a write that stops part
//! way (the disk filling up in the middle of a group).

use std::sync::Arc;

use arrow::array::{
    ArrayRef, Float64Array, MapBuilder, StringArray, StringBuilder, StringDictionaryBuilder,
    TimestampNanosecondArray,
};
use arrow::datatypes::Int32Type;
use arrow::record_batch::RecordBatch;
use weir_config::FsyncPolicy;

use super::*;

/// An `alerts` batch of `rows` rows; `seed` varies the values.
fn alerts(rows: usize, seed: usize) -> RecordBatch {
    let mut rule = StringDictionaryBuilder::<Int32Type>::new();
    let mut state = StringDictionaryBuilder::<Int32Type>::new();
    let mut kind = StringDictionaryBuilder::<Int32Type>::new();
    let mut labels = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
    let mut annotations = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
    for i in 0..rows {
        rule.append_value(format!("rule-{}", (seed + i) % 3));
        state.append_value(["pending", "firing", "resolved"][(seed * 7 + i) % 3]);
        kind.append_value(["transition", "notification"][i % 2]);
        labels.keys().append_value("service");
        labels.values().append_value(format!("svc-{}", seed % 5));
        labels
            .append(true)
            .expect("keys and values appended together");
        annotations.append(true).expect("an empty map");
    }
    let ts = |base: i64| {
        Arc::new(
            TimestampNanosecondArray::from_iter_values((0..rows as i64).map(|i| base + i))
                .with_timezone(weir_core::schema::TIME_ZONE),
        ) as ArrayRef
    };
    let columns: Vec<ArrayRef> = vec![
        ts(1_700_000_000_000_000_000 + seed as i64),
        Arc::new(rule.finish()),
        Arc::new(state.finish()),
        Arc::new(kind.finish()),
        Arc::new(labels.finish()),
        Arc::new(annotations.finish()),
        Arc::new(Float64Array::from_iter(
            (0..rows).map(|i| (i % 2 == 0).then_some(i as f64)),
        )),
        ts(1_600_000_000_000_000_000),
        ts(1_650_000_000_000_000_000),
        Arc::new(StringArray::from_iter_values(
            (0..rows).map(|i| format!("{seed:x}{i:x}")),
        )),
        Arc::new(StringArray::from_iter((0..rows).map(|_| None::<&str>))),
    ];
    RecordBatch::try_new(Signal::Alerts.schema(), columns).expect("columns of the alerts schema")
}

fn open(dir: &Path) -> (Wal, Vec<WalRecord>, ReplayReport) {
    let opts = WalOptions {
        dir: dir.to_path_buf(),
        fsync: FsyncPolicy::Always,
        segment_size: DEFAULT_SEGMENT_SIZE,
    };
    Wal::open(opts).expect("open the WAL")
}

fn segment_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".wal"))
        .collect();
    names.sort();
    names
}

/// Scenario: the disk fills up after part of a group reached the file, at
/// every cut point of a three-record group. Guarantees: the append fails
/// with the I/O error; the partial bytes are cut off at once (nothing to
/// repair at the next open); the next append works, in a new segment, with
/// a fresh LSN; replay returns exactly the acknowledged records.
#[test]
fn partial_write_is_cut_and_the_log_goes_on() {
    let (a, b, c, d) = (alerts(3, 1), alerts(4, 2), alerts(5, 3), alerts(2, 4));
    let mut group = Vec::new();
    format::push_record(&mut group, 1, 4, 0, &[&[0u8; 4000][..]]).expect("small");
    let group_len = 3 * group.len();
    for cut in [0, 1, 7, 8, 100, group_len / 2, group_len - 1] {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut wal, _, _) = open(dir.path());
        assert_eq!(
            wal.append(&[(Signal::Alerts, &a), (Signal::Alerts, &b)])
                .expect("append"),
            [1, 2]
        );
        let before = wal.disk_bytes();

        wal.fail_next_write_after(cut);
        let err = wal
            .append(&[
                (Signal::Alerts, &c),
                (Signal::Alerts, &c),
                (Signal::Alerts, &c),
            ])
            .expect_err("the disk is full");
        let WalError::Io { source, .. } = &err else {
            panic!("not an I/O error: {err}")
        };
        assert_eq!(source.kind(), io::ErrorKind::StorageFull);
        assert!(
            err.to_string().contains("00000000000000000001.wal"),
            "{err}"
        );
        assert_eq!(
            wal.disk_bytes(),
            before,
            "cut {cut}: the partial group is cut off"
        );
        let first = dir.path().join(format::segment_name(1));
        assert_eq!(fs::metadata(&first).expect("segment").len(), before);

        assert_eq!(
            wal.append(&[(Signal::Alerts, &d)])
                .expect("append after the failure"),
            [6]
        );
        assert_eq!(
            segment_files(dir.path()),
            [format::segment_name(1), format::segment_name(6)]
        );
        drop(wal);

        let (wal, records, report) = open(dir.path());
        assert_eq!(report.problem, None, "cut {cut}");
        let got: Vec<(Lsn, &RecordBatch)> = records.iter().map(|r| (r.lsn, &r.batch)).collect();
        assert_eq!(got, [(1, &a), (2, &b), (6, &d)], "cut {cut}");
        assert_eq!(wal.next_lsn(), 7);
    }
}

/// Scenario: a write fails in a segment that has no record yet (the failed
/// group was its first). Guarantees: the empty segment keeps the LSN mark,
/// the next append goes to a new segment, and a reopened log numbers on
/// after every LSN handed out.
#[test]
fn failure_in_a_fresh_segment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut wal, _, _) = open(dir.path());
    let a = alerts(2, 9);
    wal.fail_next_write_after(10);
    wal.append(&[(Signal::Alerts, &a)])
        .expect_err("the disk is full");
    assert_eq!(wal.append(&[(Signal::Alerts, &a)]).expect("append"), [2]);
    wal.remove_through(2).expect("remove");
    assert_eq!(wal.append(&[(Signal::Alerts, &a)]).expect("append"), [3]);
    drop(wal);
    let (wal, records, report) = open(dir.path());
    assert_eq!(report.problem, None);
    assert_eq!(records.iter().map(|r| r.lsn).collect::<Vec<_>>(), [3]);
    assert_eq!(wal.next_lsn(), 4);
}

/// Scenario: batches appended over several segments, some removed, one
/// segment damaged on disk afterwards. Guarantees: `read_back` returns the
/// records of exactly the segment holding the LSN asked for (closed or
/// still being written), equal to what was appended; `None` for an LSN no
/// segment holds; damage is reported with the records before it.
#[test]
fn read_back_returns_the_segment_holding_an_lsn() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = WalOptions {
        dir: dir.path().to_path_buf(),
        fsync: FsyncPolicy::Never,
        segment_size: 1,
    };
    let (mut wal, _, _) = Wal::open(opts).expect("open");
    let batches: Vec<RecordBatch> = (0..6).map(|i| alerts(3 + i, i)).collect();
    // Two records a segment: a segment of size 1 is full after each group.
    for pair in batches.chunks(2) {
        let group: Vec<(Signal, &RecordBatch)> = pair.iter().map(|b| (Signal::Alerts, b)).collect();
        wal.append(&group).expect("append");
    }
    for (lsn, want) in [(1, [1, 2]), (2, [1, 2]), (4, [3, 4]), (6, [5, 6])] {
        let back = wal.read_back(lsn).expect("read").expect("held");
        let got: Vec<Lsn> = back.records.iter().map(|r| r.lsn).collect();
        assert_eq!(got, want, "lsn {lsn}");
        assert_eq!(back.through, want[1]);
        assert_eq!(back.problem, None);
        for r in &back.records {
            assert_eq!(r.batch, batches[(r.lsn - 1) as usize]);
            assert_eq!(r.table, Signal::Alerts);
        }
    }
    assert_eq!(wal.read_back(7).expect("read"), None);
    wal.remove_through(2).expect("remove");
    assert_eq!(wal.read_back(1).expect("read"), None);

    // The disk changes the second record of segment 3 after the fact.
    let path = dir.path().join(format::segment_name(3));
    let mut data = fs::read(&path).expect("segment");
    let at = data.len() - 64;
    data[at] ^= 0xff;
    fs::write(&path, &data).expect("damage");
    let back = wal.read_back(4).expect("read").expect("held");
    assert_eq!(back.records.iter().map(|r| r.lsn).collect::<Vec<_>>(), [3]);
    assert_eq!(back.through, 4);
    let problem = back.problem.expect("damage reported");
    assert!(problem.contains(&format::segment_name(3)), "{problem}");
}

/// Scenario: a log of six segments reopened with room for about two.
/// Guarantees: `open_within` returns the batches of the oldest segments
/// within the bytes asked for, and describes every later record (LSN,
/// table, rows) without its batch, in order; those are read back whole;
/// the log goes on appending after them.
#[test]
fn open_within_lets_go_of_what_is_past_the_bound() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = || WalOptions {
        dir: dir.path().to_path_buf(),
        fsync: FsyncPolicy::Never,
        segment_size: 1,
    };
    let batches: Vec<RecordBatch> = (0..6).map(|i| alerts(50 + i, i)).collect();
    let segment_len = {
        let (mut wal, _, _) = Wal::open(opts()).expect("open");
        for b in &batches {
            wal.append(&[(Signal::Alerts, b)]).expect("append");
        }
        wal.disk_bytes() / 6
    };
    let (mut wal, kept, let_go, report) =
        Wal::open_within(opts(), 2 * segment_len + segment_len / 2).expect("reopen");
    assert_eq!(report.records, 6);
    assert_eq!(report.problem, None);
    assert_eq!(kept.iter().map(|r| r.lsn).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(kept[1].batch, batches[1]);
    assert_eq!(
        let_go.iter().map(|i| i.lsn).collect::<Vec<_>>(),
        [3, 4, 5, 6]
    );
    for info in &let_go {
        let want = &batches[(info.lsn - 1) as usize];
        assert_eq!((info.table, info.rows), (Signal::Alerts, want.num_rows()));
        assert!(info.bytes > 0);
        let back = wal.read_back(info.lsn).expect("read").expect("held");
        assert_eq!(&back.records[0].batch, want);
    }
    assert_eq!(
        wal.append(&[(Signal::Alerts, &batches[0])])
            .expect("append"),
        [7]
    );
}
