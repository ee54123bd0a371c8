//! Guest plugins built for the tests: crates of their own workspaces
//! (`plugins/`, `engine/wasm/tests/plugins/`), built once per test binary
//! with `cargo build --target wasm32-wasip2 --release` into `wasm-guests/`
//! under the target directory the tests run from, so that `cargo test` from
//! a fresh clone needs nothing but the `wasm32-wasip2` target.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// The repository's root.
pub fn repo_root() -> PathBuf {
    // The package under test's directory, as cargo sets it when it runs
    // the test (a test binary built in a clone elsewhere, sharing a target
    // directory, must not read this checkout's files), else this crate's.
    let here = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    here.ancestors()
        .find(|dir| dir.join("Cargo.lock").is_file() && dir.join("wit").is_dir())
        .map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."),
            Path::to_path_buf,
        )
}

/// Where guests are built: `wasm-guests/` under the target directory the
/// running test binary was built in.
pub fn guests_dir() -> PathBuf {
    target_dir().join("wasm-guests")
}

fn target_dir() -> PathBuf {
    // The test binary is `<target>/<profile>/deps/<name>`.
    let exe = std::env::current_exe().expect("the test binary has a path");
    exe.ancestors()
        .nth(3)
        .expect("the test binary lives in <target>/<profile>/deps")
        .to_path_buf()
}

/// Builds package `package` of the guest workspace at `workspace`
/// (relative to the repository root) and returns its `.wasm`.
pub fn guest(workspace: &str, package: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    let mut built = built.lock().unwrap_or_else(|e| e.into_inner());
    let key = format!("{workspace}/{package}");
    if let Some(path) = built.get(&key) {
        return path.clone();
    }
    let target = guests_dir();
    let manifest = repo_root().join(workspace).join("Cargo.toml");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "-p",
            package,
        ])
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target)
        // The workspace's own `.cargo/config.toml` (SIMD for the plugins).
        .current_dir(repo_root().join(workspace))
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building guest `{package}` failed");
    let path = target
        .join("wasm32-wasip2/release")
        .join(format!("{}.wasm", package.replace('-', "_")));
    assert!(path.is_file(), "{} was not built", path.display());
    built.insert(key, path.clone());
    path
}
