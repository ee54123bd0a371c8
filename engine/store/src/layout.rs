//! Where files live and what they say about themselves.
//!
//! ```text
//! <tables root>/<table>/date=YYYY-MM-DD/hour=HH/<name>.parquet
//! ```
//!
//! * a file written by a flush is named `<through>-<epoch>.parquet`:
//!   `through` is the WAL LSN up to which the flush took the table's rows
//!   (20 digits) and `epoch` identifies the WAL those LSNs belong to (16 hex
//!   digits, see [`crate::checkpoint`]);
//! * a file written by compaction is named
//!   `<max lsn>-<epoch>-c<unix nanos>.parquet`.
//!
//! Each file's Parquet key-value metadata holds its table, the schema
//! version, the range of event times and of WAL LSNs of its rows, the epoch
//! and either the flush's `through` and how many files that flush wrote, or
//! the names of the files a compaction merged into it and the highest
//! `through` of the flushes whose rows it holds ([`keys`]). The store
//! rebuilds its index from these footers when it opens, so the files are
//! the only truth about what is in Parquet; nothing else needs to be kept in
//! step with them. Even the checkpoint can be rebuilt from them when it is
//! lost (see [`crate::recovery`]).

use std::collections::HashMap;
use std::fmt::Write as _;

use object_store::path::Path as ObjPath;
use parquet::file::metadata::KeyValue;
use weir_core::Signal;

use crate::partition::{hour_dir, parse_hour_dir};
use crate::wal::Lsn;

/// The key-value metadata keys of the store's Parquet files.
pub(crate) mod keys {
    /// The table's name.
    pub const TABLE: &str = "weir.table";
    /// The schema version of the rows.
    pub const SCHEMA_VERSION: &str = "weir.schema.version";
    /// The smallest event time (nanoseconds since the epoch), absent when
    /// every row's time is null.
    pub const TIME_MIN: &str = "weir.time.min";
    /// The largest event time.
    pub const TIME_MAX: &str = "weir.time.max";
    /// The smallest WAL LSN of the rows.
    pub const LSN_MIN: &str = "weir.lsn.min";
    /// The largest WAL LSN of the rows.
    pub const LSN_MAX: &str = "weir.lsn.max";
    /// The epoch of the WAL the LSNs belong to (16 hex digits).
    pub const EPOCH: &str = "weir.wal.epoch";
    /// For a flushed file: the LSN up to which the flush took the rows of
    /// its table (all of its hours). For a compacted file: the highest such
    /// LSN of the flushes whose rows it holds.
    pub const FLUSH_THROUGH: &str = "weir.flush.through";
    /// For a flushed file: how many files (one per hour) its flush wrote.
    pub const FLUSH_FILES: &str = "weir.flush.files";
    /// For a compacted file: the names of the files merged into it,
    /// separated by `,`.
    pub const REPLACES: &str = "weir.compaction.replaces";
}

/// How a file came to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FileKind {
    /// Written by a flush that took the table's rows up to `through`.
    Flush {
        /// The flush's last LSN.
        through: Lsn,
        /// How many files the flush wrote (one per hour); `None` in files
        /// written before it was recorded.
        files: Option<u32>,
    },
    /// Written by compaction, merging the files named.
    Compacted {
        /// The names of the merged files (same directory).
        replaces: Vec<String>,
        /// The highest `through` of the flushes whose rows it holds; `None`
        /// in files written before it was recorded.
        through: Option<Lsn>,
    },
}

/// One Parquet file of the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileEntry {
    /// Its table.
    pub table: Signal,
    /// Its hour (since the epoch).
    pub hour: i64,
    /// Its file name.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its rows.
    pub rows: u64,
    /// The smallest and largest non-null event time of its rows.
    pub time: Option<(i64, i64)>,
    /// The smallest and largest WAL LSN of its rows.
    pub lsn: (Lsn, Lsn),
    /// The epoch of the WAL its LSNs belong to.
    pub epoch: u64,
    /// How it came to be.
    pub kind: FileKind,
}

impl FileEntry {
    /// Its path in the object store.
    pub fn path(&self) -> ObjPath {
        file_path(self.table, self.hour, &self.name)
    }

    /// The LSN through which the flushes whose rows it holds took the
    /// table's rows: a flushed file's `through`; a compacted file's highest
    /// one (its largest row LSN when it does not record one, which can be
    /// lower).
    pub fn held_through(&self) -> Lsn {
        match &self.kind {
            FileKind::Flush { through, .. } => *through,
            FileKind::Compacted { through, .. } => through.unwrap_or(self.lsn.1),
        }
    }

    /// The key-value metadata to write in its footer.
    pub fn key_values(&self) -> Vec<KeyValue> {
        let mut kv = vec![
            KeyValue::new(keys::TABLE.into(), self.table.as_str().to_string()),
            KeyValue::new(
                keys::SCHEMA_VERSION.into(),
                weir_core::schema::SCHEMA_VERSION.to_string(),
            ),
            KeyValue::new(keys::LSN_MIN.into(), self.lsn.0.to_string()),
            KeyValue::new(keys::LSN_MAX.into(), self.lsn.1.to_string()),
            KeyValue::new(keys::EPOCH.into(), format!("{:016x}", self.epoch)),
        ];
        if let Some((lo, hi)) = self.time {
            kv.push(KeyValue::new(keys::TIME_MIN.into(), lo.to_string()));
            kv.push(KeyValue::new(keys::TIME_MAX.into(), hi.to_string()));
        }
        match &self.kind {
            FileKind::Flush { through, files } => {
                kv.push(KeyValue::new(
                    keys::FLUSH_THROUGH.into(),
                    through.to_string(),
                ));
                if let Some(files) = files {
                    kv.push(KeyValue::new(keys::FLUSH_FILES.into(), files.to_string()));
                }
            }
            FileKind::Compacted { replaces, through } => {
                kv.push(KeyValue::new(keys::REPLACES.into(), replaces.join(",")));
                if let Some(through) = through {
                    kv.push(KeyValue::new(
                        keys::FLUSH_THROUGH.into(),
                        through.to_string(),
                    ));
                }
            }
        }
        kv
    }

    /// Reads an entry back from a file's location, size, row count and
    /// key-value metadata. `Err` says what is missing or wrong.
    pub fn from_footer(
        location: &Located,
        size: u64,
        rows: u64,
        kv: Option<&Vec<KeyValue>>,
    ) -> Result<FileEntry, String> {
        let map: HashMap<&str, &str> = kv
            .map(|kv| {
                kv.iter()
                    .filter_map(|e| e.value.as_deref().map(|v| (e.key.as_str(), v)))
                    .collect()
            })
            .unwrap_or_default();
        let get = |k: &str| map.get(k).copied();
        let num = |k: &str| -> Result<Option<i64>, String> {
            get(k)
                .map(|v| {
                    v.parse::<i64>()
                        .map_err(|_| format!("`{k}` is not a number: {v}"))
                })
                .transpose()
        };
        let lsn = |k: &str| -> Result<Lsn, String> {
            let v = get(k).ok_or_else(|| format!("no `{k}` in its metadata"))?;
            v.parse::<Lsn>()
                .map_err(|_| format!("`{k}` is not a number: {v}"))
        };
        match get(keys::TABLE) {
            Some(t) if t == location.table.as_str() => {}
            other => {
                return Err(format!(
                    "its metadata says table {other:?}, its directory says `{}`",
                    location.table
                ));
            }
        }
        let time = match (num(keys::TIME_MIN)?, num(keys::TIME_MAX)?) {
            (Some(lo), Some(hi)) => Some((lo, hi)),
            _ => None,
        };
        let epoch = get(keys::EPOCH)
            .and_then(|e| u64::from_str_radix(e, 16).ok())
            .ok_or_else(|| format!("no valid `{}` in its metadata", keys::EPOCH))?;
        let kind = if let Some(replaces) = get(keys::REPLACES) {
            FileKind::Compacted {
                replaces: replaces
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect(),
                through: get(keys::FLUSH_THROUGH)
                    .map(|_| lsn(keys::FLUSH_THROUGH))
                    .transpose()?,
            }
        } else {
            let files = get(keys::FLUSH_FILES)
                .map(|v| {
                    v.parse::<u32>()
                        .map_err(|_| format!("`{}` is not a number: {v}", keys::FLUSH_FILES))
                })
                .transpose()?;
            FileKind::Flush {
                through: lsn(keys::FLUSH_THROUGH)?,
                files,
            }
        };
        Ok(FileEntry {
            table: location.table,
            hour: location.hour,
            name: location.name.clone(),
            size,
            rows,
            time,
            lsn: (lsn(keys::LSN_MIN)?, lsn(keys::LSN_MAX)?),
            epoch,
            kind,
        })
    }
}

/// The name of the file a flush through `through` writes.
pub(crate) fn flush_file_name(through: Lsn, epoch: u64) -> String {
    format!("{through:020}-{epoch:016x}.parquet")
}

/// The name of a file compaction writes.
pub(crate) fn compacted_file_name(max_lsn: Lsn, epoch: u64, now_ns: i64) -> String {
    let mut name = String::with_capacity(64);
    let _ = write!(name, "{max_lsn:020}-{epoch:016x}-c{now_ns}.parquet");
    name
}

/// The directory of a table, relative to the tables root.
pub(crate) fn table_prefix(table: Signal) -> ObjPath {
    ObjPath::from(table.as_str())
}

/// The directory of one hour of a table, relative to the tables root.
pub(crate) fn hour_path(table: Signal, hour: i64) -> String {
    format!("{}/{}", table.as_str(), hour_dir(hour))
}

/// The path of a file.
pub(crate) fn file_path(table: Signal, hour: i64, name: &str) -> ObjPath {
    ObjPath::from(format!("{}/{name}", hour_path(table, hour)))
}

/// What a path of the tables root says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Located {
    /// The table.
    pub table: Signal,
    /// The hour.
    pub hour: i64,
    /// The file name.
    pub name: String,
}

/// What kind of thing a listed path is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Listed {
    /// A data file of the store.
    Data(Located),
    /// A temporary file of an interrupted write, to delete.
    Temporary,
    /// Anything else: left alone.
    Other,
}

/// Classifies a path of the tables root.
pub(crate) fn classify(path: &ObjPath) -> Listed {
    let parts: Vec<_> = path.parts().collect();
    let [table, date, hour, name] = parts.as_slice() else {
        return Listed::Other;
    };
    let name = name.as_ref();
    if name.ends_with(".tmp") {
        return Listed::Temporary;
    }
    let (Some(table), Some(hour)) = (
        crate::tables::named(table.as_ref()),
        parse_hour_dir(date.as_ref(), hour.as_ref()),
    ) else {
        return Listed::Other;
    };
    if !name.ends_with(".parquet") || name.starts_with('.') {
        return Listed::Other;
    }
    Listed::Data(Located {
        table,
        hour,
        name: name.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(kind: FileKind) -> FileEntry {
        FileEntry {
            table: Signal::Spans,
            hour: 480_000,
            name: flush_file_name(42, 0xabc),
            size: 10,
            rows: 3,
            time: Some((1, 2)),
            lsn: (7, 42),
            epoch: 0xabc,
            kind,
        }
    }

    /// Guarantees: what a file's footer says reads back as the same index
    /// entry, for flushed and compacted files.
    #[test]
    fn metadata_round_trips() {
        for kind in [
            FileKind::Flush {
                through: 42,
                files: Some(2),
            },
            FileKind::Flush {
                through: 42,
                files: None,
            },
            FileKind::Compacted {
                replaces: vec!["a.parquet".into(), "b.parquet".into()],
                through: Some(40),
            },
            FileKind::Compacted {
                replaces: vec!["a.parquet".into()],
                through: None,
            },
        ] {
            let e = entry(kind);
            let listed = classify(&e.path());
            let Listed::Data(loc) = listed else {
                panic!("not a data file: {listed:?}");
            };
            let kv = e.key_values();
            let back = FileEntry::from_footer(&loc, 10, 3, Some(&kv)).expect("valid");
            assert_eq!(back, e);
        }
    }

    /// Guarantees: temporary files and foreign files are told apart from
    /// data files, and a file in the wrong table's directory is refused.
    #[test]
    fn paths_are_classified() {
        let p = ObjPath::from("logs/date=2024-01-01/hour=05/.x.parquet.tmp");
        assert_eq!(classify(&p), Listed::Temporary);
        let p = ObjPath::from("logs/date=2024-01-01/hour=05/readme.txt");
        assert_eq!(classify(&p), Listed::Other);
        let p = ObjPath::from("nope/date=2024-01-01/hour=05/a.parquet");
        assert_eq!(classify(&p), Listed::Other);
        let e = entry(FileKind::Flush {
            through: 42,
            files: Some(1),
        });
        let loc = Located {
            table: Signal::Logs,
            hour: e.hour,
            name: e.name.clone(),
        };
        assert!(FileEntry::from_footer(&loc, 1, 1, Some(&e.key_values())).is_err());
    }
}
