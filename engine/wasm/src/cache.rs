//! The on-disk cache of compiled components, and when it is trusted.
//!
//! A cached artifact is machine code that wasmtime maps and runs without
//! checking it, so whoever can write the cache can run code as Weir. The
//! cache is therefore used only when the directory and the artifact belong
//! to the effective user and neither can be written by its group or by
//! others: the directory is created with mode `0700`, artifacts are written
//! with mode `0600` to a temporary file in the same directory, flushed to
//! disk and renamed into place. An artifact that fails the check is not
//! loaded (it is compiled afresh and replaced); a directory that fails it
//! is neither read nor written: the plugin is compiled in memory only.
//! Either way a warning names the path, the reason and the fix.

use std::fmt;
use std::fs::{DirBuilder, File, Metadata, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The permission bits that let the group or others write.
const WRITABLE_BY_OTHERS: u32 = 0o022;

/// What of the cache was refused, and why: see [`CacheOutcome::Untrusted`].
///
/// [`CacheOutcome::Untrusted`]: crate::CacheOutcome::Untrusted
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Untrusted {
    /// The directory or the artifact.
    pub part: CachePart,
    /// Why it was refused.
    pub reason: Distrust,
}

/// A part of the disk cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CachePart {
    /// The cache directory: nothing in it was read or written.
    Directory,
    /// The compiled component's file: it was not loaded, but replaced.
    Artifact,
}

/// Why a part of the disk cache is not trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Distrust {
    /// It is not a directory (for the directory) or not a regular file
    /// (for an artifact: a symbolic link, say).
    WrongKind,
    /// It belongs to another user than Weir's effective user.
    Owner {
        /// The owner's user id.
        uid: u32,
        /// Weir's effective user id.
        euid: u32,
    },
    /// Its group or others may write it.
    Writable {
        /// Its permission bits.
        mode: u32,
    },
}

impl fmt::Display for Distrust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Distrust::WrongKind => f.write_str("it is not a plain directory or file"),
            Distrust::Owner { uid, euid } => write!(
                f,
                "it belongs to user id {uid}, not to the user Weir runs as (user id {euid})"
            ),
            Distrust::Writable { mode } => write!(
                f,
                "its group or others may write it (mode {:04o})",
                mode & 0o7777
            ),
        }
    }
}

/// What the cache offers for one component.
#[derive(Debug, Default)]
pub(crate) struct Lookup {
    /// A trusted artifact to load, when there is one.
    pub load: Option<PathBuf>,
    /// Where to write the component once compiled, when the directory is
    /// trusted.
    pub store: Option<PathBuf>,
    /// What was refused (a warning was logged).
    pub refused: Option<Untrusted>,
}

/// Looks for the artifact named `key` in `dir`, creating `dir` (mode
/// `0700`) when it is missing, and checking both before anything is used.
pub(crate) fn lookup(dir: &Path, key: &str) -> Lookup {
    if let Err(e) = DirBuilder::new().recursive(true).mode(0o700).create(dir) {
        tracing::warn!(path = %dir.display(), error = %e, "cannot create the plugin cache directory; compiling plugins without it");
        return Lookup::default();
    }
    let refuse = |part, path: &Path, reason| {
        let fix = match part {
            CachePart::Directory => {
                "give it to the user Weir runs as with mode 700 (chmod 700), or set WEIR_WASM_CACHE to such a directory"
            }
            CachePart::Artifact => {
                "it is replaced by a fresh compile; check who else can write the cache"
            }
        };
        tracing::warn!(path = %path.display(), reason = %reason, fix, "not loading from the plugin cache; compiling afresh");
        Some(Untrusted { part, reason })
    };
    match std::fs::metadata(dir).map(|m| trust(&m, true)) {
        Ok(Ok(())) => {}
        Ok(Err(reason)) => {
            return Lookup {
                refused: refuse(CachePart::Directory, dir, reason),
                ..Lookup::default()
            };
        }
        Err(e) => {
            tracing::warn!(path = %dir.display(), error = %e, "cannot inspect the plugin cache directory; compiling plugins without it");
            return Lookup::default();
        }
    }
    let path = dir.join(format!("{key}.cwasm"));
    // Not followed: a link to elsewhere is refused like any other odd file.
    match std::fs::symlink_metadata(&path).map(|m| trust(&m, false)) {
        Ok(Ok(())) => Lookup {
            load: Some(path.clone()),
            store: Some(path),
            refused: None,
        },
        Ok(Err(reason)) => Lookup {
            refused: refuse(CachePart::Artifact, &path, reason),
            load: None,
            store: Some(path),
        },
        Err(_) => Lookup {
            store: Some(path),
            ..Lookup::default()
        },
    }
}

/// Whether `meta` is of the right kind, owned by the effective user, and
/// not writable by its group or others.
fn trust(meta: &Metadata, directory: bool) -> Result<(), Distrust> {
    let kind = if directory {
        meta.is_dir()
    } else {
        meta.file_type().is_file()
    };
    if !kind {
        return Err(Distrust::WrongKind);
    }
    let euid = effective_uid();
    if meta.uid() != euid {
        return Err(Distrust::Owner {
            uid: meta.uid(),
            euid,
        });
    }
    if meta.mode() & WRITABLE_BY_OTHERS != 0 {
        return Err(Distrust::Writable { mode: meta.mode() });
    }
    Ok(())
}

#[allow(unsafe_code)]
fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Writes `bytes` to `path` whole or not at all: to a new file (mode
/// `0600`) in the same directory, flushed to disk, then renamed over
/// `path`, so a reader never maps a partial artifact.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    static SEQUENCE: AtomicU64 = AtomicU64::new(0);
    let tmp = path.with_extension(format!(
        "tmp.{}.{}",
        std::process::id(),
        SEQUENCE.fetch_add(1, Ordering::Relaxed)
    ));
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut file| {
            file.write_all(bytes)?;
            file.sync_all()
        })
        .and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written?;
    // The rename itself survives a crash once the directory is flushed.
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn chmod(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }

    /// Guarantees: a missing directory is created with mode 0700 and
    /// offers a place to write, nothing to load; an artifact written
    /// there has mode 0600, leaves no temporary file, and is then offered.
    #[test]
    fn creates_a_private_directory_and_writes_private_artifacts() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("a/b");
        let first = lookup(&dir, "k");
        assert_eq!(first.load, None);
        assert_eq!(first.refused, None);
        let mode = std::fs::metadata(&dir).expect("created").mode();
        assert_eq!(mode & 0o777, 0o700);

        let path = first.store.expect("trusted directory");
        write_atomically(&path, b"code").expect("writes");
        assert_eq!(
            std::fs::metadata(&path).expect("file").mode() & 0o777,
            0o600
        );
        let names: Vec<_> = std::fs::read_dir(&dir)
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["k.cwasm"]);
        assert_eq!(lookup(&dir, "k").load, Some(path));
    }

    /// Guarantees: a directory writable by its group or others offers
    /// neither an artifact nor a place to write, and says why.
    #[test]
    fn refuses_a_shared_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("k.cwasm"), b"code").expect("write");
        chmod(dir.path(), 0o770);
        let found = lookup(dir.path(), "k");
        assert_eq!((found.load, found.store), (None, None));
        assert_eq!(
            found.refused,
            Some(Untrusted {
                part: CachePart::Directory,
                reason: Distrust::Writable { mode: 0o40770 },
            })
        );
    }

    /// Guarantees: an artifact writable by others, or a symbolic link, is
    /// not offered for loading, but may be replaced.
    #[test]
    fn refuses_a_shared_or_linked_artifact() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("k.cwasm");
        std::fs::write(&path, b"code").expect("write");
        chmod(&path, 0o666);
        let found = lookup(dir.path(), "k");
        assert_eq!(found.load, None);
        assert_eq!(found.store.as_deref(), Some(path.as_path()));
        assert_eq!(
            found.refused.map(|u| u.reason),
            Some(Distrust::Writable { mode: 0o100666 })
        );

        let elsewhere = dir.path().join("elsewhere");
        std::fs::write(&elsewhere, b"code").expect("write");
        std::fs::remove_file(&path).expect("remove");
        std::os::unix::fs::symlink(&elsewhere, &path).expect("symlink");
        let linked = lookup(dir.path(), "k");
        assert_eq!(linked.load, None);
        assert_eq!(linked.refused.map(|u| u.reason), Some(Distrust::WrongKind));
    }

    /// Guarantees: a directory or an artifact owned by another user is
    /// refused. Giving a file away needs root, so as another user this
    /// test checks nothing and says so.
    #[test]
    fn refuses_what_another_user_owns() {
        if effective_uid() != 0 {
            eprintln!("skipped: only root can give a file to another user");
            return;
        }
        let nobody = 65_534;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("k.cwasm");
        std::fs::write(&path, b"code").expect("write");
        std::os::unix::fs::chown(&path, Some(nobody), None).expect("chown");
        let found = lookup(dir.path(), "k");
        assert_eq!(found.load, None);
        assert_eq!(
            found.refused.map(|u| u.reason),
            Some(Distrust::Owner {
                uid: nobody,
                euid: 0
            })
        );

        std::os::unix::fs::chown(dir.path(), Some(nobody), None).expect("chown");
        let found = lookup(dir.path(), "k");
        assert_eq!((found.load, found.store), (None, None));
        assert_eq!(found.refused.map(|u| u.part), Some(CachePart::Directory));
    }
}
