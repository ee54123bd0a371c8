//! The compile cache: a compiled component is kept on disk, privately,
//! and loaded from there only when no one but Weir's user could have
//! written it; otherwise the plugin still loads, compiled afresh.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use weir_wasm::{CacheOutcome, CachePart, Distrust, Runtime, Untrusted, WasmConfig, WasmProcessor};

use crate::common;

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).expect("exists").mode() & 0o7777
}

/// The files in `dir`.
fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    files
}

/// Scenario: the same component loaded three times, the last by a new
/// runtime on the same cache directory, which did not exist before.
/// Guarantees: compiled once, then taken from memory, then from disk; the
/// directory is created with mode 0700 and holds one artifact, mode 0600.
#[tokio::test(flavor = "multi_thread")]
async fn compiled_once_then_cached() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("weir/wasm");
    let bytes = std::fs::read(common::redact()).expect("built");
    let first = Runtime::new(Some(dir.clone())).expect("runtime");
    assert_eq!(first.load(&bytes).expect("loads").1, CacheOutcome::Compiled);
    assert_eq!(first.load(&bytes).expect("loads").1, CacheOutcome::Memory);
    assert_eq!(mode(&dir), 0o700);
    let artifacts = files(&dir);
    assert_eq!(artifacts.len(), 1, "one artifact, no temporary file left");
    assert_eq!(mode(&artifacts[0]), 0o600);
    let second = Runtime::new(Some(dir)).expect("runtime");
    assert_eq!(second.load(&bytes).expect("loads").1, CacheOutcome::Disk);
    assert!(
        Runtime::new(None)
            .expect("runtime")
            .load(b"not wasm")
            .is_err()
    );
}

/// Scenario: a cache directory made writable by its group and others,
/// first holding a good artifact, then empty. Guarantees: the artifact is
/// not loaded and nothing is written there, yet the plugin loads (compiled
/// afresh) and its processor reports why the cache was refused.
#[tokio::test(flavor = "multi_thread")]
async fn a_cache_directory_others_can_write_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bytes = std::fs::read(common::redact()).expect("built");
    let warm = Runtime::new(Some(dir.path().to_path_buf())).expect("runtime");
    assert_eq!(warm.load(&bytes).expect("loads").1, CacheOutcome::Compiled);
    chmod(dir.path(), 0o777);
    let refused = CacheOutcome::Untrusted(Untrusted {
        part: CachePart::Directory,
        reason: Distrust::Writable { mode: 0o40777 },
    });

    let runtime = Runtime::new(Some(dir.path().to_path_buf())).expect("runtime");
    let processor = WasmProcessor::new("redact", &WasmConfig::new(common::redact()), runtime)
        .await
        .expect("the plugin loads without the cache");
    assert_eq!(processor.cache_outcome(), refused);

    for artifact in files(dir.path()) {
        std::fs::remove_file(artifact).expect("remove");
    }
    let runtime = Runtime::new(Some(dir.path().to_path_buf())).expect("runtime");
    assert_eq!(runtime.load(&bytes).expect("loads").1, refused);
    assert_eq!(files(dir.path()), Vec::<std::path::PathBuf>::new());
}

/// Scenario: a cached artifact whose mode was changed to 0666. Guarantees:
/// it is not loaded but compiled afresh and replaced by a private (0600)
/// artifact, which the next runtime loads from disk.
#[tokio::test(flavor = "multi_thread")]
async fn a_cached_artifact_others_can_write_is_not_loaded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bytes = std::fs::read(common::redact()).expect("built");
    let warm = Runtime::new(Some(dir.path().to_path_buf())).expect("runtime");
    assert_eq!(warm.load(&bytes).expect("loads").1, CacheOutcome::Compiled);
    let artifact = files(dir.path()).remove(0);
    chmod(&artifact, 0o666);

    let runtime = Runtime::new(Some(dir.path().to_path_buf())).expect("runtime");
    assert_eq!(
        runtime.load(&bytes).expect("loads").1,
        CacheOutcome::Untrusted(Untrusted {
            part: CachePart::Artifact,
            reason: Distrust::Writable { mode: 0o100666 },
        })
    );
    assert_eq!(mode(&artifact), 0o600);
    let next = Runtime::new(Some(dir.path().to_path_buf())).expect("runtime");
    assert_eq!(next.load(&bytes).expect("loads").1, CacheOutcome::Disk);
}
