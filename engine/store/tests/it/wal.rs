//! The write-ahead log through its public API: round trips of every table,
//! LSNs, removal, every kind of damage replay must survive, and a full disk.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, DictionaryArray, Int32Array, Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Int32Type, Schema};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use weir_config::FsyncPolicy;
use weir_core::Signal;
use weir_store::wal::{Lsn, Wal, WalError, WalOptions, WalRecord};

use crate::wal_common::{batch, open, options, record_spans, segment_name, segments};

const BIG: u64 = 64 << 20;

fn lsns(records: &[WalRecord]) -> Vec<Lsn> {
    records.iter().map(|r| r.lsn).collect()
}

/// Appends `batches` one group per batch; returns what replay must give.
fn append_each(wal: &mut Wal, batches: &[(Signal, RecordBatch)]) -> Vec<WalRecord> {
    batches
        .iter()
        .map(|(table, batch)| {
            let lsn = wal.append(&[(*table, batch)]).expect("append")[0];
            WalRecord {
                lsn,
                table: *table,
                batch: batch.clone(),
            }
        })
        .collect()
}

/// Scenario: batches of all four tables, as Weir builds them, appended in
/// groups mixing tables, with fsync always and never. Guarantees: replay
/// returns every batch equal to what was appended (dictionaries, maps,
/// nested lists included), with its table and LSN, in order; LSNs start at
/// 1 and follow each other.
#[test]
fn round_trip_of_every_table() {
    for fsync in [FsyncPolicy::Always, FsyncPolicy::Never] {
        let dir = tempfile::tempdir().expect("tempdir");
        let opts = WalOptions {
            fsync,
            ..options(dir.path(), BIG)
        };
        let (mut wal, records, report) = Wal::open(opts.clone()).expect("open");
        assert!(records.is_empty());
        assert_eq!(report.problem, None);

        let mut expected = Vec::new();
        for round in 0..3u64 {
            let group: Vec<(Signal, RecordBatch)> = Signal::ALL
                .iter()
                .enumerate()
                .map(|(i, t)| (*t, batch(*t, 20 + i * 7, round * 10 + i as u64)))
                .collect();
            let entries: Vec<(Signal, &RecordBatch)> = group.iter().map(|(t, b)| (*t, b)).collect();
            let got = wal.append(&entries).expect("append");
            assert_eq!(got, (round * 4 + 1..round * 4 + 5).collect::<Vec<_>>());
            for (lsn, (table, batch)) in got.into_iter().zip(group) {
                expected.push(WalRecord { lsn, table, batch });
            }
        }
        drop(wal);

        let (wal, records, report) = Wal::open(opts).expect("reopen");
        assert_eq!(report.problem, None);
        assert_eq!(report.records, 12);
        assert_eq!(report.truncated_bytes, 0);
        assert_eq!(records, expected);
        assert_eq!(wal.next_lsn(), 13);
    }
}

/// Scenario: one table's batches whose dictionaries change from batch to
/// batch (new values, a superset, the same values again), sliced batches,
/// and a batch of another schema between them. Guarantees: each decodes to
/// exactly what was appended; dictionary ids never mix between records.
#[test]
fn dictionaries_slices_and_schema_changes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut wal, _, _) = open(dir.path(), BIG);
    let a = batch(Signal::Spans, 30, 1);
    let b = batch(Signal::Spans, 30, 2);
    let sliced = b.slice(7, 11);
    let narrow = a.project(&[0, 3, 9]).expect("projection");
    let with_meta = RecordBatch::try_new(
        Arc::new(
            a.schema()
                .as_ref()
                .clone()
                .with_metadata(Default::default()),
        ),
        a.columns().to_vec(),
    )
    .expect("same columns");
    let batches: Vec<(Signal, RecordBatch)> = [
        a.clone(),
        b.clone(),
        a.clone(),
        sliced,
        narrow,
        b.clone(),
        with_meta,
        a.slice(29, 1),
        a,
    ]
    .into_iter()
    .map(|b| (Signal::Spans, b))
    .collect();
    let expected = append_each(&mut wal, &batches);
    drop(wal);
    let (_, records, report) = open(dir.path(), BIG);
    assert_eq!(report.problem, None);
    assert_eq!(records, expected);
}

/// Scenario: batches with no rows (with and without variable-width
/// columns), a batch with rows and no columns, and a hand-built dictionary
/// column. Guarantees: each comes back with its schema and row count.
#[test]
fn edge_shaped_batches() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut wal, _, _) = open(dir.path(), BIG);
    let ints = Arc::new(Schema::new(vec![
        Field::new("a", DataType::Int64, false),
        Field::new("b", DataType::Int32, true),
    ]));
    let empty_ints = RecordBatch::new_empty(ints.clone());
    let some_ints = RecordBatch::try_new(
        ints,
        vec![
            Arc::new(Int64Array::from(vec![1, 2, 3])) as ArrayRef,
            Arc::new(Int32Array::from(vec![Some(1), None, Some(3)])),
        ],
    )
    .expect("ints");
    let no_columns = RecordBatch::try_new_with_options(
        Arc::new(Schema::empty()),
        vec![],
        &RecordBatchOptions::new().with_row_count(Some(5)),
    )
    .expect("no columns");
    let dict: DictionaryArray<Int32Type> = vec!["x", "y", "x", "z"].into_iter().collect();
    let dict_schema = Arc::new(Schema::new(vec![
        Field::new("d", dict.data_type().clone(), false),
        Field::new("s", DataType::Utf8, true),
    ]));
    let dict_batch = RecordBatch::try_new(
        dict_schema,
        vec![
            Arc::new(dict) as ArrayRef,
            Arc::new(StringArray::from(vec![
                Some("p"),
                None,
                Some(""),
                Some("q"),
            ])),
        ],
    )
    .expect("dict");
    let batches = vec![
        (Signal::Alerts, batch(Signal::Alerts, 0, 1)),
        (Signal::Logs, empty_ints.clone()),
        (Signal::Logs, some_ints),
        (Signal::Logs, empty_ints),
        (Signal::Metrics, no_columns),
        (Signal::Metrics, dict_batch),
        (Signal::Spans, batch(Signal::Spans, 0, 3)),
        (Signal::Spans, batch(Signal::Spans, 1, 3)),
    ];
    let expected = append_each(&mut wal, &batches);
    drop(wal);
    let (_, records, report) = open(dir.path(), BIG);
    assert_eq!(report.problem, None);
    assert_eq!(records, expected);
    assert_eq!(records[4].batch.num_rows(), 5);
}

/// Scenario: a log rolling a segment after every group, reopened three
/// times. Guarantees: LSNs strictly increase and follow each other across
/// segment rolls and restarts; each segment is named by its first LSN;
/// `disk_bytes` is the size of the files.
#[test]
fn lsns_increase_across_rolls_and_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = batch(Signal::Logs, 10, 5);
    let mut all = Vec::new();
    for _restart in 0..3 {
        let (mut wal, records, report) = open(dir.path(), 1);
        assert_eq!(report.problem, None);
        assert_eq!(lsns(&records), all);
        for size in [1, 3, 2] {
            let group = vec![(Signal::Logs, &b); size];
            let got = wal.append(&group).expect("append");
            assert_eq!(got.len(), size);
            all.extend(got);
        }
        let on_disk: u64 = segments(dir.path())
            .iter()
            .map(|p| fs::metadata(p).expect("segment").len())
            .sum();
        assert_eq!(wal.disk_bytes(), on_disk);
        assert_eq!(wal.next_lsn(), all.last().expect("appended") + 1);
    }
    assert_eq!(all, (1..=18).collect::<Vec<_>>());
    let names: Vec<String> = segments(dir.path())
        .iter()
        .map(|p| p.file_name().expect("name").to_string_lossy().into_owned())
        .collect();
    let firsts = [1, 2, 5, 7, 8, 11, 13, 14, 17];
    assert_eq!(names, firsts.map(segment_name));
}

/// Scenario: segments holding LSNs 1-2, 3-5, 6, 7-10; `remove_through` at
/// LSNs inside and at the end of segments, then past everything.
/// Guarantees: only segments whose every record is covered are deleted;
/// replay then returns exactly the records left; after everything is
/// removed one empty segment keeps the numbering, across a restart.
#[test]
fn remove_through_deletes_only_covered_segments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut wal, _, _) = open(dir.path(), 1);
    let b = batch(Signal::Metrics, 12, 9);
    for size in [2, 3, 1, 4] {
        wal.append(&vec![(Signal::Metrics, &b); size])
            .expect("append");
    }
    let names = |dir: &std::path::Path| -> Vec<String> {
        segments(dir)
            .iter()
            .map(|p| p.file_name().expect("name").to_string_lossy().into_owned())
            .collect()
    };
    assert_eq!(names(dir.path()), [1, 3, 6, 7].map(segment_name));

    wal.remove_through(0).expect("remove nothing");
    wal.remove_through(1).expect("remove nothing whole");
    assert_eq!(names(dir.path()), [1, 3, 6, 7].map(segment_name));
    let before = wal.disk_bytes();
    wal.remove_through(4).expect("remove");
    assert_eq!(names(dir.path()), [3, 6, 7].map(segment_name));
    assert!(wal.disk_bytes() < before);
    wal.remove_through(6).expect("remove");
    assert_eq!(names(dir.path()), [7].map(segment_name));
    drop(wal);

    let (mut wal, records, report) = open(dir.path(), 1);
    assert_eq!(report.problem, None);
    assert_eq!(lsns(&records), [7, 8, 9, 10]);
    wal.remove_through(10).expect("remove all");
    assert_eq!(names(dir.path()), [11].map(segment_name));
    assert_eq!(wal.disk_bytes(), 32, "one empty segment: its header");
    drop(wal);

    let (mut wal, records, report) = open(dir.path(), 1);
    assert_eq!(report.problem, None);
    assert!(records.is_empty());
    assert_eq!(wal.append(&[(Signal::Metrics, &b)]).expect("append"), [11]);
}

/// Scenario: the segment being written is fully covered (a large segment
/// size, nothing rolled). Guarantees: it is replaced by an empty segment and
/// deleted; numbering goes on.
#[test]
fn remove_through_the_active_segment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut wal, _, _) = open(dir.path(), BIG);
    let b = batch(Signal::Logs, 5, 1);
    wal.append(&[(Signal::Logs, &b), (Signal::Logs, &b)])
        .expect("append");
    wal.remove_through(1)
        .expect("partly covered: nothing removed");
    assert_eq!(segments(dir.path()).len(), 1);
    wal.remove_through(2).expect("remove");
    assert_eq!(segments(dir.path()), [dir.path().join(segment_name(3))]);
    assert_eq!(wal.append(&[(Signal::Logs, &b)]).expect("append"), [3]);
    drop(wal);
    let (_, records, _) = open(dir.path(), BIG);
    assert_eq!(lsns(&records), [3]);
}

/// Writes three records of `table` in one segment and returns the log's
/// directory, the records and the segment's path.
fn three_records(table: Signal) -> (tempfile::TempDir, Vec<WalRecord>, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut wal, _, _) = open(dir.path(), BIG);
    let batches: Vec<(Signal, RecordBatch)> = (0..3).map(|i| (table, batch(table, 8, i))).collect();
    let records = append_each(&mut wal, &batches);
    drop(wal);
    let path = dir.path().join(segment_name(1));
    (dir, records, path)
}

/// Reopens after damage and checks: the records before it come back, the
/// report names the file and the cut, the file is cut there, appending
/// works and the next open is clean.
fn check_cut(dir: &std::path::Path, expected: &[WalRecord], why: &str) {
    let path = dir.join(segment_name(1));
    let damaged_len = fs::metadata(&path).expect("segment").len();
    let (mut wal, records, report) = open(dir, BIG);
    assert_eq!(records, expected, "{why}");
    let problem = report.problem.expect("the damage is reported");
    assert!(problem.contains(&segment_name(1)), "{problem}");
    assert!(problem.contains(why), "{problem}");
    let good_len = fs::metadata(&path).expect("segment").len();
    assert_eq!(report.truncated_bytes, damaged_len - good_len);
    assert!(report.truncated_bytes > 0);

    let extra = batch(Signal::Alerts, 3, 99);
    let lsn = wal
        .append(&[(Signal::Alerts, &extra)])
        .expect("append after the cut")[0];
    assert!(lsn > expected.last().map_or(0, |r| r.lsn));
    drop(wal);
    let (_, records, report) = open(dir, BIG);
    assert_eq!(report.problem, None);
    assert_eq!(records.len(), expected.len() + 1);
    assert_eq!(&records[..expected.len()], expected);
    assert_eq!(records[expected.len()].batch, extra);
}

/// Scenario: the last record is half written (crash during the write).
/// Guarantees: the two records before it are replayed, the torn bytes are
/// reported and cut, and the log goes on.
#[test]
fn torn_tail() {
    let (dir, records, path) = three_records(Signal::Logs);
    let len = fs::metadata(&path).expect("segment").len();
    OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|f| f.set_len(len - 100))
        .expect("tear");
    check_cut(dir.path(), &records[..2], "runs past the end of the file");
}

/// Scenario: a byte of the second record's data flipped on disk.
/// Guarantees: the checksum catches it; the first record is kept, the rest
/// of the segment is cut.
#[test]
fn corrupt_checksum() {
    let (dir, records, path) = three_records(Signal::Spans);
    let mut data = fs::read(&path).expect("read");
    let (start, end) = record_spans(&data)[1];
    data[(start + end) / 2] ^= 0x04;
    fs::write(&path, &data).expect("write");
    check_cut(dir.path(), &records[..1], "checksum mismatch");
}

/// Scenario: the length of the second record overwritten with a huge value.
/// Guarantees: it is reported as corruption (not allocated), the first
/// record is kept.
#[test]
fn garbage_length() {
    let (dir, records, path) = three_records(Signal::Metrics);
    let mut data = fs::read(&path).expect("read");
    let (start, _) = record_spans(&data)[1];
    data[start..start + 4].copy_from_slice(&0xfff0_0000u32.to_le_bytes());
    fs::write(&path, &data).expect("write");
    check_cut(dir.path(), &records[..1], "runs past the end of the file");
}

/// Scenario: zeros where the third record should start (a file system that
/// extended the file but never wrote the data). Guarantees: two records are
/// kept, the zeros cut.
#[test]
fn zero_filled_tail() {
    let (dir, records, path) = three_records(Signal::Alerts);
    let mut data = fs::read(&path).expect("read");
    let (start, end) = record_spans(&data)[2];
    data[start..end].fill(0);
    fs::write(&path, &data).expect("write");
    check_cut(dir.path(), &records[..2], "zero bytes");
}

/// Scenario: a whole, valid record of another segment copied after the
/// last record (a stale block). Guarantees: its unexpected LSN is caught
/// although its checksum is valid; it is cut.
#[test]
fn record_with_an_unexpected_lsn() {
    let (dir, records, path) = three_records(Signal::Logs);
    let data = fs::read(&path).expect("read");
    let (start, end) = record_spans(&data)[0];
    let mut file = OpenOptions::new().append(true).open(&path).expect("open");
    file.write_all(&data[start..end])
        .expect("append a stale record");
    drop(file);
    check_cut(dir.path(), &records, "LSN 1 where LSN 4 was expected");
}

/// Scenario: segments whose header is torn (the creation was interrupted),
/// zero bytes long, or only a header (no record yet), next to good ones.
/// Guarantees: the good records are all replayed; torn and empty files are
/// removed and reported; a header-only segment is valid and silent; the
/// numbering resumes past every file's name.
#[test]
fn torn_header_empty_and_zero_byte_segments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut wal, _, _) = open(dir.path(), 1);
    let b = batch(Signal::Logs, 4, 4);
    let expected = append_each(
        &mut wal,
        &[(Signal::Logs, b.clone()), (Signal::Logs, b.clone())],
    );
    drop(wal);

    // A header-only segment is what a roll leaves before its first write.
    let header = fs::read(dir.path().join(segment_name(1))).expect("read")[..32].to_vec();
    let header_for = |lsn: u64| {
        let mut h = header.clone();
        h[16..24].copy_from_slice(&lsn.to_le_bytes());
        let crc = crc32fast::hash(&h[..24]);
        h[24..28].copy_from_slice(&crc.to_le_bytes());
        h
    };
    fs::write(dir.path().join(segment_name(3)), header_for(3)).expect("header-only segment");
    let (wal, records, report) = open(dir.path(), 1);
    assert_eq!(report.problem, None, "a header-only segment is not damage");
    assert_eq!(records, expected);
    assert_eq!(wal.next_lsn(), 3);
    drop(wal);

    fs::write(dir.path().join(segment_name(4)), &header_for(4)[..10]).expect("torn header");
    fs::write(dir.path().join(segment_name(5)), b"").expect("zero-byte segment");
    let (mut wal, records, report) = open(dir.path(), 1);
    assert_eq!(records, expected);
    let problem = report.problem.expect("reported");
    assert!(
        problem.contains(&format!(
            "{}: a torn segment header (10 of 32 bytes)",
            segment_name(4)
        )),
        "{problem}"
    );
    assert!(
        problem.contains(&format!(
            "{}: an empty (zero-byte) segment file",
            segment_name(5)
        )),
        "{problem}"
    );
    assert_eq!(report.truncated_bytes, 10);
    assert!(!dir.path().join(segment_name(4)).exists());
    assert_eq!(wal.append(&[(Signal::Logs, &b)]).expect("append"), [5]);
    drop(wal);
    let (_, records, report) = open(dir.path(), 1);
    assert_eq!(report.problem, None);
    assert_eq!(lsns(&records), [1, 2, 5]);
}

/// Scenario: the first of three segments has a corrupt header; the second a
/// damaged record in its middle. Guarantees: the unreadable segment is
/// moved aside (not deleted), the damaged one cut at the damage, and the
/// valid segment after them is kept whole: damage never costs the records
/// of another segment.
#[test]
fn damage_in_earlier_segments_keeps_later_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut wal, _, _) = open(dir.path(), 1);
    let b = batch(Signal::Spans, 6, 6);
    for _ in 0..3 {
        wal.append(&[
            (Signal::Spans, &b),
            (Signal::Spans, &b),
            (Signal::Spans, &b),
        ])
        .expect("append");
    }
    drop(wal);
    let first = dir.path().join(segment_name(1));
    let second = dir.path().join(segment_name(4));
    let mut data = fs::read(&first).expect("read");
    data[3] ^= 0xff;
    fs::write(&first, &data).expect("write");
    let mut data = fs::read(&second).expect("read");
    let (start, _) = record_spans(&data)[1];
    data[start + 20] ^= 0x01;
    fs::write(&second, &data).expect("write");

    let (mut wal, records, report) = open(dir.path(), 1);
    assert_eq!(lsns(&records), [4, 7, 8, 9]);
    let problem = report.problem.expect("reported");
    assert!(problem.contains("magic"), "{problem}");
    assert!(problem.contains("checksum"), "{problem}");
    let mut aside = first.clone().into_os_string();
    aside.push(".corrupt");
    assert!(std::path::Path::new(&aside).exists());
    assert!(wal.append(&[(Signal::Spans, &b)]).expect("append")[0] > 9);
}

/// Scenario: one bit flipped in the middle of the second of five records
/// (a disk error), with a file left by an earlier repair at
/// `<segment>.corrupt`; then, after more appends, a garbage length in the
/// second of three records of the new segment. Guarantees: the records
/// before the damage are replayed; before the cut, the whole segment as
/// found is copied aside, byte for byte, under a free name (`.corrupt.1`:
/// the earlier copy is not overwritten); the report gives the segment, the
/// offset of the damaged record, the bytes cut, the records lost (the
/// damaged one and every intact one after it, found again by their
/// frames) and the copy.
#[test]
fn mid_segment_damage_is_copied_aside_and_counted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut wal, _, _) = open(dir.path(), BIG);
    let batches: Vec<(Signal, RecordBatch)> = (0..5)
        .map(|i| (Signal::Logs, batch(Signal::Logs, 8, i)))
        .collect();
    let records = append_each(&mut wal, &batches);
    drop(wal);
    let path = dir.path().join(segment_name(1));
    let earlier = dir.path().join(format!("{}.corrupt", segment_name(1)));
    fs::write(&earlier, b"an earlier copy").expect("write");
    let mut data = fs::read(&path).expect("read");
    let (start, end) = record_spans(&data)[1];
    data[(start + end) / 2] ^= 0x10;
    fs::write(&path, &data).expect("write");

    let (mut wal, replayed, report) = open(dir.path(), BIG);
    assert_eq!(replayed, records[..1]);
    let [damage] = report.damage.as_slice() else {
        panic!("one damaged segment: {:?}", report.damage);
    };
    assert_eq!(damage.segment, path);
    assert_eq!(damage.offset, start as u64);
    assert_eq!(damage.cut_bytes, (data.len() - start) as u64);
    assert_eq!(damage.kept_records, 1);
    assert_eq!(damage.lost_records, 4, "LSNs 2 to 5");
    assert_eq!(report.lost_records(), 4);
    assert!(damage.why.contains("checksum mismatch"), "{}", damage.why);
    let copy = damage.copy.clone().expect("a copy");
    assert_eq!(
        copy,
        dir.path().join(format!("{}.corrupt.1", segment_name(1)))
    );
    assert_eq!(fs::read(&copy).expect("the copy"), data, "byte for byte");
    assert_eq!(fs::read(&earlier).expect("earlier"), b"an earlier copy");
    let problem = report.problem.expect("reported");
    assert!(problem.contains(&copy.display().to_string()), "{problem}");
    assert!(problem.contains("lost 4 record(s)"), "{problem}");
    assert_eq!(fs::metadata(&path).expect("segment").len(), start as u64);

    // Numbering resumed in a new segment: damage its second record's length.
    let appended = append_each(&mut wal, &batches[..3]);
    drop(wal);
    let newest = segments(dir.path()).pop().expect("a segment");
    assert_ne!(newest, path);
    let mut data = fs::read(&newest).expect("read");
    let (start, _) = record_spans(&data)[1];
    data[start..start + 4].copy_from_slice(&0x00ff_fff0u32.to_le_bytes());
    fs::write(&newest, &data).expect("write");
    let (_, replayed, report) = open(dir.path(), BIG);
    assert_eq!(lsns(&replayed), [1, appended[0].lsn]);
    let [damage] = report.damage.as_slice() else {
        panic!("one damaged segment: {:?}", report.damage);
    };
    assert!(damage.why.contains("runs past the end"), "{}", damage.why);
    assert_eq!(
        damage.lost_records, 2,
        "the damaged record and the one after it"
    );
    let mut name = newest.clone().into_os_string();
    name.push(".corrupt");
    assert_eq!(damage.copy.as_deref(), Some(std::path::Path::new(&name)));
    assert_eq!(fs::read(&name).expect("the second copy"), data);
}

/// Scenario: a segment written by a future format version. Guarantees:
/// opening fails with a message naming the file and what to do, and the
/// file is left untouched.
#[test]
fn newer_format_version_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut header = Vec::from(*b"WEIRWAL1");
    header.extend(2u32.to_le_bytes());
    header.extend(0u32.to_le_bytes());
    header.extend(1u64.to_le_bytes());
    let crc = crc32fast::hash(&header);
    header.extend(crc.to_le_bytes());
    header.extend(0u32.to_le_bytes());
    header.extend([7u8; 100]);
    let path = dir.path().join(segment_name(1));
    fs::write(&path, &header).expect("write");
    let err = Wal::open(options(dir.path(), BIG)).expect_err("a newer version");
    assert!(
        matches!(err, WalError::UnsupportedVersion { version: 2, .. }),
        "{err}"
    );
    let message = err.to_string();
    assert!(
        message.contains(&segment_name(1)) && message.contains("version 2"),
        "{message}"
    );
    assert_eq!(fs::read(&path).expect("read"), header);
}

/// Scenario: a second `Wal` opened on a directory already open. Guarantees:
/// it is refused with `Locked` while the first is open, and allowed after.
#[test]
fn one_writer_per_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (wal, _, _) = open(dir.path(), BIG);
    let err = Wal::open(options(dir.path(), BIG)).expect_err("locked");
    assert!(matches!(err, WalError::Locked { .. }), "{err}");
    drop(wal);
    open(dir.path(), BIG);
}

/// Scenario: a group whose second batch cannot be encoded (a dictionary of
/// dictionaries, which Arrow IPC refuses). Guarantees: the append fails with
/// `Encode`, nothing of the group is written, and the log (whose encoders
/// saw the first batch) keeps working and replays exactly the good records.
#[test]
fn encode_failure_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut wal, _, _) = open(dir.path(), BIG);
    let good = batch(Signal::Alerts, 4, 1);
    wal.append(&[(Signal::Alerts, &good)]).expect("append");
    let before = wal.disk_bytes();

    let inner: DictionaryArray<Int32Type> = vec!["a", "b"].into_iter().collect();
    let outer =
        DictionaryArray::<Int32Type>::try_new(Int32Array::from(vec![0, 1, 1]), Arc::new(inner))
            .expect("dictionary of dictionaries");
    let bad = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new(
            "d",
            outer.data_type().clone(),
            false,
        )])),
        vec![Arc::new(outer) as ArrayRef],
    )
    .expect("batch");
    let other = batch(Signal::Alerts, 5, 2);
    let err = wal
        .append(&[(Signal::Alerts, &other), (Signal::Logs, &bad)])
        .expect_err("cannot encode");
    assert!(
        matches!(
            err,
            WalError::Encode {
                table: Signal::Logs,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(wal.disk_bytes(), before);

    assert_eq!(
        wal.append(&[(Signal::Alerts, &other)]).expect("append"),
        [2]
    );
    drop(wal);
    let (_, records, report) = open(dir.path(), BIG);
    assert_eq!(report.problem, None);
    assert_eq!(
        records
            .iter()
            .map(|r| (r.lsn, &r.batch))
            .collect::<Vec<_>>(),
        [(1, &good), (2, &other)]
    );
}

/// Scenario: the disk is full (the next segment's path leads to /dev/full,
/// whose writes fail with ENOSPC) when a group must start a new segment;
/// then space comes back. Guarantees: the append fails with the I/O error
/// naming the file; nothing partial is visible to later appends or to
/// replay; appends work again once there is space; replay returns exactly
/// the records whose append succeeded.
#[test]
fn disk_full_then_space_back() {
    if !std::path::Path::new("/dev/full").exists() {
        eprintln!("skipped: this system has no /dev/full");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut wal, _, _) = open(dir.path(), 1);
    let b = batch(Signal::Logs, 16, 3);
    let expected = append_each(
        &mut wal,
        &[(Signal::Logs, b.clone()), (Signal::Logs, b.clone())],
    );
    let before = wal.disk_bytes();

    let full = dir.path().join(segment_name(3));
    for _attempt in 0..2 {
        if !full.exists() {
            std::os::unix::fs::symlink("/dev/full", &full).expect("symlink");
        }
        let err = wal
            .append(&[(Signal::Logs, &b)])
            .expect_err("the disk is full");
        let WalError::Io { path, source, .. } = &err else {
            panic!("not an I/O error: {err}")
        };
        assert_eq!(source.kind(), ErrorKind::StorageFull, "{err}");
        assert_eq!(path, &full);
        assert!(err.to_string().contains("free space"), "{err}");
        assert_eq!(wal.disk_bytes(), before);
    }

    // Space is back.
    if full.symlink_metadata().is_ok() {
        fs::remove_file(&full).expect("remove the symlink");
    }
    let lsn = wal
        .append(&[(Signal::Logs, &b)])
        .expect("append once there is space")[0];
    assert!(lsn > 2);
    drop(wal);
    let (_, records, report) = open(dir.path(), 1);
    assert_eq!(report.problem, None);
    let mut expected = expected;
    expected.push(WalRecord {
        lsn,
        table: Signal::Logs,
        batch: b,
    });
    assert_eq!(records, expected);
}

/// Scenario: a caller whose checkpoint covers LSNs the log lost (a tail
/// lost to a power cut with fsync never). Guarantees: after `skip_through`
/// new LSNs are above the checkpoint, also after a restart.
#[test]
fn skip_through_raises_numbering_durably() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut wal, _, _) = open(dir.path(), BIG);
    let b = batch(Signal::Logs, 2, 2);
    wal.append(&[(Signal::Logs, &b)]).expect("append");
    wal.skip_through(0).expect("below: nothing to do");
    assert_eq!(wal.next_lsn(), 2);
    wal.skip_through(41).expect("skip");
    assert_eq!(wal.next_lsn(), 42);
    drop(wal);
    let (mut wal, records, report) = open(dir.path(), BIG);
    assert_eq!(report.problem, None);
    assert_eq!(lsns(&records), [1]);
    assert_eq!(wal.append(&[(Signal::Logs, &b)]).expect("append"), [42]);
}

/// Scenario: damage cut from the middle of the last segment. Guarantees:
/// the LSNs the cut bytes could have held are never handed out again, even
/// if the process stops before appending anything.
#[test]
fn lsns_of_cut_records_are_not_reused() {
    let (dir, records, path) = three_records(Signal::Logs);
    let mut data = fs::read(&path).expect("read");
    let (start, _) = record_spans(&data)[1];
    data[start + 30] ^= 0x80;
    fs::write(&path, &data).expect("write");
    let (wal, kept, _) = open(dir.path(), BIG);
    assert_eq!(kept, records[..1]);
    assert!(
        wal.next_lsn() > 3,
        "LSNs 2 and 3 were cut: {}",
        wal.next_lsn()
    );
    let next = wal.next_lsn();
    drop(wal);
    let (wal, _, report) = open(dir.path(), BIG);
    assert_eq!(report.problem, None);
    assert_eq!(wal.next_lsn(), next);
}

/// The log can move to the blocking thread that writes it.
#[test]
fn wal_is_send() {
    fn send<T: Send>() {}
    send::<Wal>();
    send::<WalError>();
}
