//! Builds the first-party plugins of `plugins/` for `wasm32-wasip2` and
//! writes `bundled.rs`, which embeds each component with what
//! `weir plugin list` shows of it.
//!
//! A first-party plugin is a member of the `plugins/` workspace whose
//! `Cargo.toml` has a `[package.metadata.weir]` table:
//!
//! ```toml
//! [package.metadata.weir]
//! summary = "One line: what the plugin does."
//! [package.metadata.weir.config]
//! key = "One line: what the key does, and its default."
//! ```
//!
//! They are built in release mode (a plugin runs on every batch, whatever
//! profile Weir is built in) into `wasm-guests/` under Weir's own target
//! directory, the folder the tests build their guests in, so that the two
//! share one build.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(env("CARGO_MANIFEST_DIR"));
    let root = manifest_dir
        .ancestors()
        .nth(2)
        .expect("the crate lives in engine/bundled")
        .to_path_buf();
    let workspace = root.join("plugins");
    let out_dir = PathBuf::from(env("OUT_DIR"));

    for watched in ["plugins/Cargo.toml", "plugins/Cargo.lock", "plugins/.cargo"] {
        rerun_if_changed(&root.join(watched));
    }
    for watched in ["sdk/rust/Cargo.toml", "sdk/rust/src", "wit"] {
        rerun_if_changed(&root.join(watched));
    }

    let plugins = first_party(&workspace);
    for plugin in &plugins {
        rerun_if_changed(&plugin.dir.join("src"));
    }

    let target = guests_dir(&out_dir);
    if !plugins.is_empty() {
        build(&workspace, &target, &plugins);
    }

    let mut code = String::from("&[\n");
    for plugin in &plugins {
        let file = format!("{}.wasm", plugin.name.replace('-', "_"));
        let built = target.join("wasm32-wasip2/release").join(&file);
        let copy = out_dir.join(&file);
        std::fs::copy(&built, &copy).unwrap_or_else(|e| {
            panic!(
                "the first-party plugin {} was not built: {e}",
                built.display()
            )
        });
        let _ = writeln!(
            code,
            "    Bundled {{ name: {name:?}, version: {version:?}, summary: {summary:?}, \
             config: &[{config}], wasm: include_bytes!({copy:?}) }},",
            name = plugin.name,
            version = plugin.version,
            summary = plugin.summary,
            config = plugin
                .config
                .iter()
                .map(|(k, v)| format!("({k:?}, {v:?})"))
                .collect::<Vec<_>>()
                .join(", "),
            copy = copy.display().to_string(),
        );
    }
    code.push(']');
    std::fs::write(out_dir.join("bundled.rs"), code).expect("OUT_DIR is writable");
}

/// One first-party plugin, as its manifest describes it.
struct Plugin {
    name: String,
    version: String,
    summary: String,
    config: Vec<(String, String)>,
    dir: PathBuf,
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("cargo sets {name} for build scripts"))
}

fn rerun_if_changed(path: &Path) {
    println!("cargo::rerun-if-changed={}", path.display());
}

/// The members of the plugins' workspace with `[package.metadata.weir]`,
/// by name.
fn first_party(workspace: &Path) -> Vec<Plugin> {
    let manifest = read_toml(&workspace.join("Cargo.toml"));
    let members = manifest
        .get("workspace")
        .and_then(|w| w.get("members"))
        .and_then(toml::Value::as_array)
        .expect("plugins/Cargo.toml lists its members");
    let mut plugins = Vec::new();
    for member in members.iter().filter_map(toml::Value::as_str) {
        let dir = workspace.join(member);
        // Every member's: one may become first-party.
        rerun_if_changed(&dir.join("Cargo.toml"));
        let manifest = read_toml(&dir.join("Cargo.toml"));
        let package = &manifest["package"];
        let Some(meta) = package.get("metadata").and_then(|m| m.get("weir")) else {
            continue;
        };
        let text = |v: &toml::Value, what: &str| {
            v.as_str()
                .unwrap_or_else(|| panic!("{member}: {what} must be a string"))
                .to_string()
        };
        let config = meta
            .get("config")
            .and_then(toml::Value::as_table)
            .map(|t| {
                t.iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            text(v, "each [package.metadata.weir.config] value"),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        plugins.push(Plugin {
            name: text(&package["name"], "package.name"),
            version: text(&package["version"], "package.version"),
            summary: text(
                meta.get("summary")
                    .unwrap_or_else(|| panic!("{member}: [package.metadata.weir] needs `summary`")),
                "summary",
            ),
            config,
            dir,
        });
    }
    plugins.sort_by(|a, b| a.name.cmp(&b.name));
    plugins
}

fn read_toml(path: &Path) -> toml::Table {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.parse()
        .unwrap_or_else(|e| panic!("{} is not valid TOML: {e}", path.display()))
}

/// `wasm-guests/` under the target directory this build writes to:
/// `OUT_DIR` is `<target>/<profile>/build/<crate>-<hash>/out`, or one level
/// deeper under `<target>/<triple>/` when cross-compiling.
fn guests_dir(out_dir: &Path) -> PathBuf {
    let target = out_dir
        .ancestors()
        .skip(4)
        .find(|dir| dir.join("CACHEDIR.TAG").is_file() || dir.join(".rustc_info.json").is_file())
        .map_or_else(|| out_dir.to_path_buf(), Path::to_path_buf);
    target.join("wasm-guests")
}

fn build(workspace: &Path, target: &Path, plugins: &[Plugin]) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .args([
            "build",
            "--release",
            "--locked",
            "--target",
            "wasm32-wasip2",
        ])
        .arg("--manifest-path")
        .arg(workspace.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target)
        // The workspace's own `.cargo/config.toml` (SIMD for the plugins).
        .current_dir(workspace);
    for plugin in plugins {
        command.args(["-p", &plugin.name]);
    }
    // What cargo tells this build script is not for the guests' build.
    for var in [
        "CARGO_TARGET_DIR",
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_BUILD_RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "TARGET",
        "HOST",
        "PROFILE",
        "OPT_LEVEL",
        "DEBUG",
        "OUT_DIR",
    ] {
        command.env_remove(var);
    }
    let status = command
        .status()
        .unwrap_or_else(|e| panic!("cannot run cargo to build the first-party plugins: {e}"));
    assert!(
        status.success(),
        "building the first-party plugins (`plugins/`) for wasm32-wasip2 failed (see above); \
         if the target is missing: `rustup target add wasm32-wasip2`"
    );
}
