//! Opening the log: read every segment, decide what is kept, repair what is
//! not, and find where numbering resumes.
//!
//! Nothing is changed on disk until every segment was read. Then, when the
//! numbering must resume past what the surviving files show (a damaged tail
//! may have held LSNs that were handed out), an empty segment is first
//! created at the next LSN to remember it; only then are damaged tails cut
//! and unusable files removed or set aside.

use std::collections::{HashMap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use arrow::buffer::{Buffer, MutableBuffer};
use tracing::debug;

use super::format::{self, FRAME_LEN, HEADER_LEN, HeaderError, IPC_END, PAYLOAD_PREFIX_LEN};
use super::replay::{self, Scan};
use super::{
    Active, Closed, Damage, Lsn, RecordInfo, ReplayReport, WalError, WalRecord, create_segment,
    sync_dir,
};

/// What is appended to the name of a damaged segment's copy.
const CORRUPT: &str = ".corrupt";

/// The fewest bytes a record takes: its frame, its payload prefix, one
/// 8-byte IPC message (the smallest possible) and the end marker. Damaged
/// bytes of length `n` cannot have held more than `n / MIN_RECORD_LEN`
/// records (rounded up).
const MIN_RECORD_LEN: u64 = (FRAME_LEN + PAYLOAD_PREFIX_LEN + 8 + IPC_END.len()) as u64;

/// The log as found on disk and repaired.
pub(super) struct Recovered {
    pub(super) closed: VecDeque<Closed>,
    pub(super) active: Option<Active>,
    pub(super) next_lsn: Lsn,
    pub(super) records: Vec<WalRecord>,
    /// The records after the first `keep` bytes of segments, let go of.
    pub(super) let_go: Vec<RecordInfo>,
    pub(super) report: ReplayReport,
}

/// A segment file as first read, before any repair.
enum Found {
    /// Nothing can be in it (zero bytes, a torn header, not a regular
    /// file): removed.
    Remove {
        path: PathBuf,
        len: u64,
        why: String,
    },
    /// Unreadable (corrupt header, out of order): moved aside.
    SetAside {
        path: PathBuf,
        first_lsn: Lsn,
        len: u64,
        why: String,
        /// Records it held, as far as can be told.
        lost: u64,
    },
    /// A segment; its tail is cut when `scan.problem` says so.
    Segment {
        path: PathBuf,
        first_lsn: Lsn,
        len: u64,
        scan: Scan,
        /// The file as read, copied aside before a cut.
        data: Buffer,
    },
}

impl Found {
    fn path(&self) -> &Path {
        match self {
            Found::Remove { path, .. }
            | Found::SetAside { path, .. }
            | Found::Segment { path, .. } => path,
        }
    }
}

/// Reads, checks and repairs the log in `dir`, keeping the batches of the
/// oldest segments up to `keep` bytes of them; the later ones are let go
/// of once read and checked, so that memory holds about `keep` bytes and
/// one segment.
pub(super) fn recover(dir: &Path, segment_size: u64, keep: u64) -> Result<Recovered, WalError> {
    // 1. Read everything; change nothing.
    let mut found = Vec::new();
    let mut last_kept: Option<Lsn> = None;
    let mut held = 0u64;
    let mut letting_go = false;
    for (first_lsn, path) in list_segments(dir)? {
        let mut item = inspect(path, first_lsn, last_kept)?;
        if let Found::Segment { scan, data, .. } = &mut item {
            letting_go = letting_go || held.saturating_add(scan.good_len) > keep;
            if letting_go {
                scan.let_go();
                if scan.problem.is_none() {
                    // Only a damaged segment's bytes are needed again (its
                    // copy aside).
                    *data = Buffer::from(Vec::<u8>::new());
                }
            } else {
                held += scan.good_len;
            }
            if let Some(last) = scan.last_lsn() {
                last_kept = Some(last);
            }
        }
        found.push(item);
    }

    // 2. Where numbering resumes: past every name (a segment's name is
    // where numbering stood when it was created), past every kept record,
    // and past every LSN the cut bytes could have held (below the next
    // file's name, when there is one).
    let mut next_lsn: Lsn = 1;
    // ... and what the surviving files alone will show at the next open.
    let mut shown: Lsn = 1;
    for (i, item) in found.iter().enumerate() {
        let cap = found
            .get(i + 1)
            .and_then(|next| name_lsn(next.path()))
            .unwrap_or(Lsn::MAX);
        match item {
            Found::Remove { path, .. } => {
                if let Some(lsn) = name_lsn(path) {
                    next_lsn = next_lsn.max(lsn);
                }
            }
            Found::SetAside { first_lsn, len, .. } => {
                next_lsn = next_lsn.max(first_lsn.saturating_add(records_in(*len)).min(cap));
            }
            Found::Segment {
                first_lsn,
                len,
                scan,
                ..
            } => {
                let after = scan
                    .last_lsn()
                    .map_or(*first_lsn, |lsn| lsn.saturating_add(1));
                shown = shown.max(after);
                let cut = len - scan.good_len;
                next_lsn = next_lsn.max(after.saturating_add(records_in(cut)).min(cap).max(after));
            }
        }
    }

    // 3. Remember the numbering before cutting anything.
    let watermark = if next_lsn > shown {
        Some(create_segment(dir, next_lsn, true)?)
    } else {
        None
    };

    // 4. Repair.
    let mut problems = Vec::new();
    let mut damage = Vec::new();
    let mut truncated_bytes = 0;
    let mut records = Vec::new();
    let mut let_go = Vec::new();
    let mut closed = VecDeque::new();
    let mut dir_changed = false;
    for item in found {
        match item {
            Found::Remove { path, len, why } => {
                truncated_bytes += len;
                if watermark.as_ref().is_some_and(|w| w.path == path) {
                    let what = format!("{why}; replaced by an empty segment");
                    problems.push(problem(&path, what));
                } else {
                    problems.push(problem(&path, format!("{why}; removed")));
                    fs::remove_file(&path)
                        .map_err(|e| WalError::io("remove unusable WAL segment", &path, e))?;
                    dir_changed = true;
                }
            }
            Found::SetAside {
                path,
                len,
                why,
                lost,
                ..
            } => {
                let aside = aside_name(&path)?;
                fs::rename(&path, &aside)
                    .map_err(|e| WalError::io("set aside unreadable WAL segment", &path, e))?;
                dir_changed = true;
                truncated_bytes += len;
                problems.push(problem(
                    &path,
                    format!(
                        "{why}; its {len} bytes cannot be read ({lost} record(s) lost, as far as \
                         can be told), the file was moved to {}",
                        aside.display()
                    ),
                ));
                damage.push(Damage {
                    segment: path,
                    offset: 0,
                    cut_bytes: len,
                    kept_records: 0,
                    lost_records: lost,
                    why,
                    copy: Some(aside),
                });
            }
            Found::Segment {
                path,
                first_lsn,
                len,
                mut scan,
                data,
            } => {
                if let Some(why) = scan.problem.take() {
                    let cut = len - scan.good_len;
                    truncated_bytes += cut;
                    let from = usize::try_from(scan.good_len).unwrap_or(data.len());
                    let next = scan
                        .last_lsn()
                        .map_or(first_lsn, |lsn| lsn.saturating_add(1));
                    let lost = replay::lost_after(&data, from, next, records_in(cut));
                    // The evidence first: the file as found, durably, before
                    // the cut destroys it. Zeros are not worth a copy.
                    let copy = if data[from..].iter().any(|b| *b != 0) {
                        let copy = copy_aside(&path, &data)?;
                        sync_dir(dir)?;
                        Some(copy)
                    } else {
                        None
                    };
                    let offset = scan.good_len;
                    let kept = scan.len();
                    let copied = copy.as_ref().map_or_else(
                        || "nothing worth a copy was cut".to_string(),
                        |c| format!("the segment as found was copied to {}", c.display()),
                    );
                    problems.push(problem(
                        &path,
                        format!(
                            "at offset {offset}: {why}; cut the {cut} bytes from there on, kept \
                             the {kept} record(s) before, lost {lost} record(s) as far as can be \
                             told; {copied}"
                        ),
                    ));
                    damage.push(Damage {
                        segment: path.clone(),
                        offset,
                        cut_bytes: cut,
                        kept_records: kept,
                        lost_records: lost,
                        why,
                        copy,
                    });
                    let file = OpenOptions::new()
                        .write(true)
                        .open(&path)
                        .map_err(|e| WalError::io("open for repair the WAL segment", &path, e))?;
                    file.set_len(scan.good_len)
                        .and_then(|()| file.sync_all())
                        .map_err(|e| {
                            WalError::io("cut the damaged tail of WAL segment", &path, e)
                        })?;
                }
                closed.push_back(Closed {
                    path,
                    first_lsn,
                    last_lsn: scan.last_lsn(),
                    size: scan.good_len,
                });
                records.append(&mut scan.records);
                let_go.append(&mut scan.let_go);
            }
        }
    }
    if dir_changed {
        sync_dir(dir)?;
    }

    // 5. Keep writing the newest segment if numbering resumes right after it
    // and it has room (or no record: then its name is the next LSN, and no
    // new segment could take it).
    let active = match watermark {
        Some(watermark) => Some(watermark),
        None => match closed.pop_back() {
            Some(last)
                if next_after(&last) == Some(next_lsn)
                    && (last.size < segment_size || last.last_lsn.is_none()) =>
            {
                let file = OpenOptions::new()
                    .append(true)
                    .open(&last.path)
                    .map_err(|e| {
                        WalError::io("open for appending the WAL segment", &last.path, e)
                    })?;
                Some(Active {
                    file,
                    path: last.path,
                    first_lsn: last.first_lsn,
                    last_lsn: last.last_lsn,
                    size: last.size,
                    streams: HashMap::new(),
                })
            }
            Some(last) => {
                closed.push_back(last);
                None
            }
            None => None,
        },
    };

    let report = ReplayReport {
        records: records.len() + let_go.len(),
        segments: closed.len() + usize::from(active.is_some()),
        truncated_bytes,
        problem: (!problems.is_empty()).then(|| problems.join("; ")),
        damage,
    };
    Ok(Recovered {
        closed,
        active,
        next_lsn,
        records,
        let_go,
        report,
    })
}

/// Reads the segment at `path`, named for `first_lsn`; `last_kept` is the
/// LSN of the last record kept from the segments before it.
fn inspect(path: PathBuf, first_lsn: Lsn, last_kept: Option<Lsn>) -> Result<Found, WalError> {
    let mut file = File::open(&path).map_err(|e| WalError::io("open WAL segment", &path, e))?;
    let meta = file
        .metadata()
        .map_err(|e| WalError::io("read the size of WAL segment", &path, e))?;
    let len = meta.len();
    if !meta.is_file() {
        let why = "not a regular file".to_string();
        return Ok(Found::Remove { path, len: 0, why });
    }
    if len == 0 {
        let why = "an empty (zero-byte) segment file, left by an interrupted segment creation"
            .to_string();
        return Ok(Found::Remove { path, len, why });
    }
    if let Some(last) = last_kept
        && first_lsn <= last
    {
        let why = format!(
            "the segment starts at LSN {first_lsn}, at or before LSN {last} of the segment before it"
        );
        // Its records have LSNs the log already holds: none is lost.
        return Ok(Found::SetAside {
            path,
            first_lsn,
            len,
            why,
            lost: 0,
        });
    }
    let data = read_all(&mut file, len, &path)?;
    drop(file);
    // The records of a segment whose header cannot be used, found again by
    // their frames.
    let lost = || replay::lost_after(&data, HEADER_LEN, first_lsn, records_in(len));
    match replay::scan(&data, first_lsn) {
        Ok(scan) => Ok(Found::Segment {
            path,
            first_lsn,
            len,
            scan,
            data,
        }),
        Err(HeaderError::Torn(n)) => {
            let why = format!(
                "a torn segment header ({n} of {HEADER_LEN} bytes), left by an interrupted segment creation"
            );
            Ok(Found::Remove { path, len, why })
        }
        Err(HeaderError::Version(version)) if version > format::VERSION => {
            Err(WalError::UnsupportedVersion {
                path,
                version,
                supported: format::VERSION,
            })
        }
        Err(HeaderError::Version(version)) => Ok(Found::SetAside {
            lost: lost(),
            path,
            first_lsn,
            len,
            why: format!("unknown format version {version}"),
        }),
        Err(HeaderError::Corrupt(why)) => Ok(Found::SetAside {
            lost: lost(),
            path,
            first_lsn,
            len,
            why,
        }),
    }
}

/// Reads the `len` bytes of `file` into 64-byte aligned memory.
pub(super) fn read_all(file: &mut File, len: u64, path: &Path) -> Result<Buffer, WalError> {
    let size = usize::try_from(len).map_err(|_| {
        let e = io::Error::new(
            io::ErrorKind::OutOfMemory,
            "the file is larger than memory can address",
        );
        WalError::io("read WAL segment", path, e)
    })?;
    let mut data = MutableBuffer::from_len_zeroed(size);
    file.read_exact(data.as_slice_mut())
        .map_err(|e| WalError::io("read WAL segment", path, e))?;
    Ok(data.into())
}

/// The first free name `<segment>.corrupt`, `<segment>.corrupt.1`, ... for
/// a damaged segment's copy: an earlier copy is never overwritten.
fn aside_name(segment: &Path) -> Result<PathBuf, WalError> {
    for n in 0u32.. {
        let mut name = segment.as_os_str().to_owned();
        name.push(CORRUPT);
        if n > 0 {
            name.push(format!(".{n}"));
        }
        let candidate = PathBuf::from(name);
        match fs::symlink_metadata(&candidate) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(candidate),
            Err(e) => return Err(WalError::io("look for a free name beside", segment, e)),
            Ok(_) => {}
        }
    }
    let e = io::Error::new(io::ErrorKind::AlreadyExists, "every copy name is taken");
    Err(WalError::io("set aside a copy of", segment, e))
}

/// Copies the damaged segment `data`, read from `segment`, to a free
/// `.corrupt` name beside it, durably (the directory entry is synced by the
/// caller). Returns the copy's path.
fn copy_aside(segment: &Path, data: &[u8]) -> Result<PathBuf, WalError> {
    let copy = aside_name(segment)?;
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&copy)
        .and_then(|mut f| {
            f.write_all(data)?;
            f.sync_all()
        });
    written.map_err(|e| WalError::io("copy aside the damaged WAL segment", &copy, e))?;
    Ok(copy)
}

/// How many records `bytes` damaged bytes could have held, at most.
fn records_in(bytes: u64) -> u64 {
    bytes.div_ceil(MIN_RECORD_LEN)
}

/// The LSN that would follow the records of `segment`.
fn next_after(segment: &Closed) -> Option<Lsn> {
    match segment.last_lsn {
        Some(last) => last.checked_add(1),
        None => Some(segment.first_lsn),
    }
}

/// The first LSN in the name of the segment at `path`.
fn name_lsn(path: &Path) -> Option<Lsn> {
    path.file_name()?
        .to_str()
        .and_then(format::parse_segment_name)
}

/// One sentence of the replay report.
fn problem(path: &Path, what: String) -> String {
    let problem = format!("{}: {what}", path.display());
    debug!(problem = %problem, "WAL damage found and cut");
    problem
}

/// The segment files of `dir`, in LSN order.
fn list_segments(dir: &Path) -> Result<Vec<(Lsn, PathBuf)>, WalError> {
    let entries = fs::read_dir(dir).map_err(|e| WalError::io("list WAL directory", dir, e))?;
    let mut segments = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| WalError::io("list WAL directory", dir, e))?;
        if let Some(lsn) = entry
            .file_name()
            .to_str()
            .and_then(format::parse_segment_name)
        {
            segments.push((lsn, entry.path()));
        }
    }
    segments.sort_unstable();
    Ok(segments)
}
