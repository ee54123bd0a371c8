//! Builds the guest plugins the tests use, once per test binary, and makes
//! the log batches they are fed.
//!
//! Guests are crates of their own workspaces, built with
//! `cargo build --target wasm32-wasip2 --release` into `wasm-guests/`
//! under the target directory the tests run from, so that `cargo test`
//! from a fresh clone needs nothing but the `wasm32-wasip2` target.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use weir_testkit::otlp::{self, Group};

/// The repository's root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
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
    let target = target_dir().join("wasm-guests");
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

/// The hostile test plugin.
pub fn hostile() -> PathBuf {
    guest("engine/wasm/tests/plugins", "hostile")
}

/// The example redaction plugin.
pub fn redact() -> PathBuf {
    guest("plugins", "redact-rust")
}

/// The example redaction plugin in `lang` (`js` or `python`), built by
/// `plugins/examples/build.sh`, which installs componentize-js (npm) or
/// componentize-py (PyPI) when they are missing.
pub fn redact_in(lang: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    let mut built = built.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(path) = built.get(lang) {
        return path.clone();
    }
    let out = Command::new("bash")
        .arg(repo_root().join("plugins/examples/build.sh"))
        .arg(lang)
        .arg(target_dir().join("wasm-guests"))
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "building the {lang} example plugin failed"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let path = PathBuf::from(
        stdout
            .lines()
            .last()
            .expect("build.sh prints the path")
            .trim(),
    );
    assert!(path.is_file(), "{} was not built", path.display());
    built.insert(lang.to_string(), path.clone());
    path
}

/// A logs batch with one record per `(severity_number, body)`.
pub fn logs(records: &[(i32, &str)]) -> arrow::record_batch::RecordBatch {
    let request = Group::new(
        records
            .iter()
            .map(|(severity, body)| otlp::log(0, *severity, body)),
    )
    .logs();
    weir_core::convert::logs_to_batch(&request)
        .expect("converts")
        .batch
}
