//! Durable writes to local disk.
//!
//! `object_store`'s `LocalFileSystem` does not fsync what it writes, so the
//! store writes its local Parquet files itself: a temporary file in the
//! target directory, fsync, rename over the final name, fsync of the
//! directory. Directories it creates are fsynced into their parents. After
//! [`write_durably`] returns, the file survives a power cut under its final
//! name, and a crash before that leaves at most a `*.tmp` file, which the
//! store deletes when it opens.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

/// Fsyncs a directory, so that the names created or removed in it last.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

/// Creates `dir` and its missing parents, fsyncing each new one into its
/// parent.
pub(crate) fn create_dir_durably(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut missing = Vec::new();
    let mut cur = Some(dir);
    while let Some(d) = cur {
        if d.is_dir() {
            break;
        }
        missing.push(d);
        cur = d.parent();
    }
    for d in missing.into_iter().rev() {
        match fs::create_dir(d) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && d.is_dir() => {}
            Err(e) => return Err(e),
        }
        if let Some(parent) = d.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent)?;
        }
    }
    Ok(())
}

/// The temporary name a file is written under before it is renamed.
pub(crate) fn temp_path(path: &Path) -> std::path::PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp"))
}

/// Writes `bytes` to `path` durably (blocking): see the module doc.
pub(crate) fn write_durably(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "a file path has a parent"))?;
    create_dir_durably(dir)?;
    let tmp = temp_path(path);
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Makes a file written under its temporary name durable under `path`
/// (blocking): fsync, rename, fsync of the directory.
pub(crate) fn commit_temp(tmp: &Path, path: &Path) -> io::Result<()> {
    fs::File::open(tmp)?.sync_all()?;
    fs::rename(tmp, path)?;
    match path.parent() {
        Some(dir) => sync_dir(dir),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guarantees: a durable write creates missing directories, leaves no
    /// temporary file behind, and fails (without panicking) when a file
    /// stands where a directory is needed.
    #[test]
    fn writes_durably_or_fails_cleanly() {
        let root = tempfile::tempdir().expect("tempdir");
        let path = root.path().join("a/b/c.parquet");
        write_durably(&path, b"hello").expect("write");
        assert_eq!(fs::read(&path).expect("read"), b"hello");
        assert!(!temp_path(&path).exists());
        fs::write(root.path().join("file"), b"x").expect("write");
        let blocked = root.path().join("file/d/e.parquet");
        assert!(write_durably(&blocked, b"x").is_err());
    }
}
