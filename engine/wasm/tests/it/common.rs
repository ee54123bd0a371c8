//! The guest plugins the tests use (built by the test kit's
//! [`guest`]), and the log batches they are fed.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use weir_testkit::otlp::{self, Group};

pub use weir_testkit::guest::{guest, guests_dir, repo_root};

/// The hostile test plugin.
pub fn hostile() -> PathBuf {
    guest("engine/wasm/tests/plugins", "hostile")
}

/// The test plugin of `weir:plugin@0.2.0` that holds rows on command.
pub fn keeper() -> PathBuf {
    guest("engine/wasm/tests/plugins", "keeper")
}

/// The test plugin built against `weir:plugin@0.1.0` without the SDK.
pub fn legacy() -> PathBuf {
    guest("engine/wasm/tests/plugins", "legacy")
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
        .arg(guests_dir())
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

/// The first-party enrichment plugin.
pub fn enrich() -> PathBuf {
    guest("plugins", "enrich")
}
