//! The checkpoint: per table, the WAL LSN up to which its rows are in
//! Parquet, and the epoch of the WAL those LSNs count in.
//!
//! It lives next to the WAL (`<path>/store.checkpoint`), is rewritten
//! durably (temporary file, fsync, rename, fsync of the directory) by every
//! flush *before* the WAL is cut, and is what the store reads on restart to
//! replay only the WAL records that are not in Parquet yet. When it is
//! missing or unusable, it is rebuilt from the Parquet files' metadata
//! (see `crate::recovery`).
//!
//! The epoch is a random number chosen when the WAL starts afresh (nothing
//! to replay): Parquet files record the epoch with their LSNs, so LSNs of a
//! WAL that was deleted and recreated are never mistaken for the new
//! WAL's.
//!
//! ```text
//! weir-store-checkpoint 1
//! epoch 3f2a9c0d11e5b7a4
//! logs 1234
//! spans 0
//! metrics 77
//! alerts 0
//! crc 1c291ca3
//! ```

use std::collections::hash_map::RandomState;
use std::fs;
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use weir_core::Signal;

use crate::error::StoreError;
use crate::local::sync_dir;
use crate::tables::{self, index};
use crate::wal::Lsn;

/// The file name of the checkpoint, in `[store] path`.
pub(crate) const FILE_NAME: &str = "store.checkpoint";

const HEADER: &str = "weir-store-checkpoint 1";

/// Per table, the LSN through which its rows are in Parquet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Checkpoint {
    /// The WAL's epoch.
    pub epoch: u64,
    /// Per table (in [`Signal::ALL`] order), the LSN through which its rows
    /// are in Parquet.
    pub through: [Lsn; 4],
}

impl Checkpoint {
    /// A checkpoint of a new epoch, with nothing in Parquet yet.
    pub fn fresh() -> Checkpoint {
        Checkpoint {
            epoch: random_u64(),
            through: [0; 4],
        }
    }

    /// The LSN through which `table`'s rows are in Parquet.
    pub fn through(&self, table: Signal) -> Lsn {
        self.through[index(table)]
    }

    /// Sets the LSN through which `table`'s rows are in Parquet.
    pub fn set(&mut self, table: Signal, lsn: Lsn) {
        self.through[index(table)] = lsn;
    }

    fn body(&self) -> String {
        let mut s = format!("{HEADER}\nepoch {:016x}\n", self.epoch);
        for table in Signal::ALL {
            s.push_str(&format!("{} {}\n", table.as_str(), self.through(table)));
        }
        s
    }

    fn encode(&self) -> String {
        let body = self.body();
        let crc = crc32fast::hash(body.as_bytes());
        format!("{body}crc {crc:08x}\n")
    }

    fn decode(text: &str) -> Result<Checkpoint, String> {
        let (body, crc_line) = text
            .trim_end_matches('\n')
            .rsplit_once('\n')
            .ok_or("it is truncated")?;
        let body = format!("{body}\n");
        let crc = crc_line
            .strip_prefix("crc ")
            .and_then(|c| u32::from_str_radix(c, 16).ok())
            .ok_or("its last line is not `crc <hex>`")?;
        if crc32fast::hash(body.as_bytes()) != crc {
            return Err("its checksum does not match".into());
        }
        let mut lines = body.lines();
        if lines.next() != Some(HEADER) {
            return Err(format!("its first line is not `{HEADER}`"));
        }
        let epoch = lines
            .next()
            .and_then(|l| l.strip_prefix("epoch "))
            .and_then(|e| u64::from_str_radix(e, 16).ok())
            .ok_or("its second line is not `epoch <hex>`")?;
        let mut cp = Checkpoint {
            epoch,
            through: [0; 4],
        };
        for line in lines {
            let (name, lsn) = line
                .split_once(' ')
                .ok_or_else(|| format!("bad line `{line}`"))?;
            let table = tables::named(name).ok_or_else(|| format!("unknown table `{name}`"))?;
            let lsn = lsn.parse().map_err(|_| format!("bad LSN in `{line}`"))?;
            cp.set(table, lsn);
        }
        Ok(cp)
    }

    /// Reads the checkpoint in `dir`: `Ok(None)` if there is none, `Err`
    /// with the reason if it cannot be used.
    pub fn load(dir: &Path) -> Result<Option<Checkpoint>, String> {
        let path = dir.join(FILE_NAME);
        match fs::read_to_string(&path) {
            Ok(text) => Checkpoint::decode(&text)
                .map(Some)
                .map_err(|e| format!("`{}` cannot be used: {e}", path.display())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("cannot read `{}`: {e}", path.display())),
        }
    }

    /// Writes the checkpoint durably into `dir` (blocking).
    pub fn save(&self, dir: &Path) -> Result<(), StoreError> {
        let path = dir.join(FILE_NAME);
        let tmp: PathBuf = dir.join(format!("{FILE_NAME}.tmp"));
        let write = || -> io::Result<()> {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(self.encode().as_bytes())?;
            f.sync_all()?;
            fs::rename(&tmp, &path)
        };
        write().map_err(|e| StoreError::io("write the checkpoint", &path, e))?;
        sync_dir(dir).map_err(|e| StoreError::io("sync the directory", dir, e))
    }
}

/// A random number from the standard library's per-process random keys,
/// mixed with the time and the process id.
pub(crate) fn random_u64() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_i64(crate::partition::now_ns());
    h.write_u32(std::process::id());
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guarantees: a saved checkpoint loads back equal; a damaged one is
    /// refused with a reason rather than misread; a missing one is `None`.
    #[test]
    fn saves_loads_and_detects_damage() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(Checkpoint::load(dir.path()), Ok(None));
        let mut cp = Checkpoint::fresh();
        cp.set(Signal::Metrics, 77);
        cp.set(Signal::Alerts, 3);
        cp.save(dir.path()).expect("save");
        assert_eq!(Checkpoint::load(dir.path()), Ok(Some(cp)));
        let path = dir.path().join(FILE_NAME);
        let text = fs::read_to_string(&path).expect("read");
        fs::write(&path, text.replace("metrics 77", "metrics 78")).expect("write");
        let err = Checkpoint::load(dir.path()).expect_err("damaged");
        assert!(err.contains("checksum"), "{err}");
    }
}
