//! `weir plugin new` and `weir plugin build`: a plugin project from a
//! template, and its build into a WebAssembly component.
//!
//! ```text
//!  new LANG NAME ──▶ NAME/ (template of LANG; for js and python a copy of
//!                   the WIT package in NAME/wit)
//!  build [DIR]   ──▶ the language's own tools ──▶ DIR/NAME.wasm
//!                   rust:   cargo build --release --target wasm32-wasip2
//!                   js:     npm install (once), componentize-js
//!                   python: a venv in DIR/.venv (once), componentize-py
//! ```
//!
//! The templates are in `engine/cli/templates/`; the WIT files and the
//! templates are compiled into the binary, so `weir plugin new` works
//! anywhere. A Rust project depends on the `weir-plugin` SDK by path
//! (`--sdk`, by default the SDK of the source tree this binary was built
//! from).

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The languages `weir plugin new` has templates for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    /// Rust, with the `weir-plugin` SDK (cargo, target wasm32-wasip2).
    Rust,
    /// JavaScript, built with ComponentizeJS (npm).
    Js,
    /// Python, built with componentize-py (PyPI).
    Python,
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Lang::Rust => "rust",
            Lang::Js => "js",
            Lang::Python => "python",
        })
    }
}

/// Why a plugin project could not be made or built.
#[derive(Debug, thiserror::Error)]
pub enum PluginCommandError {
    /// The user's input: a bad name, an existing folder, a folder that is
    /// no plugin project.
    #[error("{0}")]
    Usage(String),
    /// A tool the build needs is missing or failed.
    #[error("{0}")]
    Tool(String),
    /// Reading or writing files failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, with the path.
        what: String,
        /// The error.
        source: std::io::Error,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> PluginCommandError {
    let what = what.into();
    move |source| PluginCommandError::Io { what, source }
}

/// The WIT package (`weir:plugin@0.2.0`), as the binary was built with
/// it: what the Rust SDK's copy in a project is generated from.
const WIT: &[(&str, &str)] = &[
    ("world.wit", include_str!("../../../wit/world.wit")),
    ("types.wit", include_str!("../../../wit/types.wit")),
    ("batch.wit", include_str!("../../../wit/batch.wit")),
    ("emit.wit", include_str!("../../../wit/emit.wit")),
    ("log.wit", include_str!("../../../wit/log.wit")),
    ("metrics.wit", include_str!("../../../wit/metrics.wit")),
    ("state.wit", include_str!("../../../wit/state.wit")),
    ("lookup.wit", include_str!("../../../wit/lookup.wit")),
    ("clock.wit", include_str!("../../../wit/clock.wit")),
    ("hold.wit", include_str!("../../../wit/hold.wit")),
];

/// `weir:plugin@0.1.0` (`wit/v0.1`), which Weir still runs: what the
/// JavaScript and Python templates are written against (their
/// `init` returns 0.1.0's `settings`).
const WIT_V0_1: &[(&str, &str)] = &[
    ("world.wit", include_str!("../../../wit/v0.1/world.wit")),
    ("types.wit", include_str!("../../../wit/v0.1/types.wit")),
    ("batch.wit", include_str!("../../../wit/v0.1/batch.wit")),
    ("emit.wit", include_str!("../../../wit/v0.1/emit.wit")),
    ("log.wit", include_str!("../../../wit/v0.1/log.wit")),
    ("metrics.wit", include_str!("../../../wit/v0.1/metrics.wit")),
    ("state.wit", include_str!("../../../wit/v0.1/state.wit")),
    ("lookup.wit", include_str!("../../../wit/v0.1/lookup.wit")),
    ("clock.wit", include_str!("../../../wit/v0.1/clock.wit")),
];

/// The Rust SDK's sources (`sdk/rust/src`), which `weir plugin new rust`
/// writes into the project as its `weir-plugin` crate, with the WIT package
/// ([`WIT`]) and a manifest of its own ([`sdk_manifest`]): the project then
/// builds wherever it is, with no path into Weir's source tree.
const SDK_SOURCES: &[(&str, &str)] = &[
    ("lib.rs", include_str!("../../../sdk/rust/src/lib.rs")),
    ("config.rs", include_str!("../../../sdk/rust/src/config.rs")),
    (
        "harness.rs",
        include_str!("../../../sdk/rust/src/harness.rs"),
    ),
    ("hold.rs", include_str!("../../../sdk/rust/src/hold.rs")),
    ("native.rs", include_str!("../../../sdk/rust/src/native.rs")),
    (
        "services.rs",
        include_str!("../../../sdk/rust/src/services.rs"),
    ),
    ("text.rs", include_str!("../../../sdk/rust/src/text.rs")),
    ("units.rs", include_str!("../../../sdk/rust/src/units.rs")),
];

/// Where the SDK's `lib.rs` finds the WIT package in the source tree, and
/// where it is in a project's copy.
const SDK_WIT_PATH: (&str, &str) = ("path: \"../../wit\"", "path: \"wit\"");

/// The workspace's manifest: the versions the SDK's dependencies are
/// pinned to there are the ones its copy asks for.
const WORKSPACE_MANIFEST: &str = include_str!("../../../Cargo.toml");

/// The folder of a Rust project that holds its copy of the SDK.
const SDK_DIR: &str = "weir-plugin";

/// The manifest of the SDK's copy in a project: the SDK's own, with the
/// workspace's versions written out.
fn sdk_manifest() -> String {
    let pinned = |name: &str| {
        WORKSPACE_MANIFEST
            .lines()
            .find(|l| l.starts_with(&format!("{name} = ")))
            .map(str::to_string)
            .unwrap_or_else(|| unreachable!("the workspace pins {name}"))
    };
    // The workspace writes `serde_json = "1"` and `serde = { version =
    // "1", ... }`; the copy needs them optional.
    let optional = |name: &str| {
        let line = pinned(name);
        let (_, spec) = line
            .split_once(" = ")
            .unwrap_or_else(|| unreachable!("{name} = ..."));
        match spec.trim().strip_suffix('}') {
            Some(table) => format!("{name} = {}, optional = true }}", table.trim_end()),
            None => format!("{name} = {{ version = {spec}, optional = true }}"),
        }
    };
    format!(
        "# Weir's plugin SDK, as `weir plugin new` copied it from Weir {version}:\n\
         # the `weir:plugin` contract (wit/) behind a small trait. It is part of\n\
         # this project, so the project builds wherever it is.\n\
         [package]\nname = \"weir-plugin\"\nversion = \"{version}\"\nedition = \"2024\"\n\
         publish = false\n\n[dependencies]\n{wit_bindgen}\n{serde}\n{serde_json}\n\
         {serde_path_to_error}\n\n\
         [features]\ndefault = [\"config\"]\n\
         # Read a plugin's JSON config into a serde type (`config::parse_json`).\n\
         config = [\"dep:serde\", \"dep:serde_json\", \"dep:serde_path_to_error\"]\n\
         # A native test harness: run a plugin against OTLP/JSON logs in `cargo test`.\n\
         harness = [\"dep:serde_json\"]\n",
        version = env!("CARGO_PKG_VERSION"),
        serde = optional("serde"),
        serde_json = optional("serde_json"),
        serde_path_to_error = optional("serde_path_to_error"),
        wit_bindgen = pinned("wit-bindgen"),
    )
}

/// The files of the SDK's copy in a project, under [`SDK_DIR`].
fn sdk_files() -> Vec<(PathBuf, String)> {
    let dir = Path::new(SDK_DIR);
    let mut files = vec![(dir.join("Cargo.toml"), sdk_manifest())];
    for (file, text) in SDK_SOURCES {
        let text = if *file == "lib.rs" {
            text.replace(SDK_WIT_PATH.0, SDK_WIT_PATH.1)
        } else {
            (*text).to_string()
        };
        files.push((dir.join("src").join(file), text));
    }
    for (file, text) in WIT {
        files.push((dir.join("wit").join(file), (*text).to_string()));
    }
    files
}

/// The template of each language: (path in the project, text).
fn template(lang: Lang) -> &'static [(&'static str, &'static str)] {
    match lang {
        Lang::Rust => &[
            ("Cargo.toml", include_str!("../templates/rust/Cargo.toml")),
            ("src/lib.rs", include_str!("../templates/rust/src/lib.rs")),
            (".gitignore", include_str!("../templates/rust/gitignore")),
            ("pipeline.toml", include_str!("../templates/pipeline.toml")),
            (
                ".cargo/config.toml",
                include_str!("../templates/rust/cargo/config.toml"),
            ),
        ],
        Lang::Js => &[
            ("package.json", include_str!("../templates/js/package.json")),
            ("plugin.js", include_str!("../templates/js/plugin.js")),
            (".gitignore", include_str!("../templates/js/gitignore")),
            ("pipeline.toml", include_str!("../templates/pipeline.toml")),
        ],
        Lang::Python => &[
            ("app.py", include_str!("../templates/python/app.py")),
            (
                "requirements.txt",
                include_str!("../templates/python/requirements.txt"),
            ),
            (".gitignore", include_str!("../templates/python/gitignore")),
            ("pipeline.toml", include_str!("../templates/pipeline.toml")),
        ],
    }
}

/// `weir plugin list`: every first-party plugin with its version, what it
/// does and its config keys (or, `quiet`, only the names).
pub fn list(quiet: bool) -> String {
    let mut out = String::new();
    for plugin in weir_bundled::ALL {
        if quiet {
            out.push_str(plugin.name);
            out.push('\n');
            continue;
        }
        out.push_str(&format!(
            "{} {}\n  {}\n  config keys:\n",
            plugin.name, plugin.version, plugin.summary
        ));
        let width = plugin
            .config
            .iter()
            .map(|(k, _)| k.len())
            .max()
            .unwrap_or(0);
        for (key, doc) in plugin.config {
            out.push_str(&format!("    {key:<width$}  {doc}\n"));
        }
        out.push('\n');
    }
    if !quiet {
        out.push_str(
            "Use one in a pipeline with `type = \"wasm\"` and `plugin = \"NAME\"`; each \
             plugin's README (plugins/NAME/README.md) documents every key.\n",
        );
    }
    out
}

/// Checks a project name: lowercase letters, digits and `-`, starting
/// with a letter (a valid crate, npm package and file name).
fn check_name(name: &str) -> Result<(), PluginCommandError> {
    let ok = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(PluginCommandError::Usage(format!(
            "`{name}` is not a plugin name: use lowercase letters, digits and `-`, \
             starting with a letter (for example `drop-debug`)"
        )))
    }
}

/// `my-plugin` -> `MyPlugin`.
fn type_name(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map_or_else(String::new, |c| {
                c.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect()
}

/// Makes a plugin project `name` of `lang` in `dir` (which must not exist,
/// or be empty). Returns the files written.
pub fn new_project(
    lang: Lang,
    name: &str,
    dir: &Path,
    sdk: Option<&Path>,
) -> Result<Vec<PathBuf>, PluginCommandError> {
    check_name(name)?;
    if dir.exists()
        && std::fs::read_dir(dir)
            .map_err(io(format!("reading {}", dir.display())))?
            .next()
            .is_some()
    {
        return Err(PluginCommandError::Usage(format!(
            "{} exists and is not empty; choose another name or --dir",
            dir.display()
        )));
    }
    // Rust: the SDK's copy in the project, or the SDK at `--sdk`.
    let (sdk, vendored) = match (lang, sdk) {
        (Lang::Rust, Some(sdk)) => {
            if !sdk.join("Cargo.toml").is_file() {
                return Err(PluginCommandError::Usage(format!(
                    "{} holds no Cargo.toml: --sdk must name the `sdk/rust` folder of \
                     Weir's source tree",
                    sdk.display()
                )));
            }
            let sdk =
                std::fs::canonicalize(sdk).map_err(io(format!("resolving {}", sdk.display())))?;
            (sdk, false)
        }
        (Lang::Rust, None) => (PathBuf::from(SDK_DIR), true),
        _ => (PathBuf::new(), false),
    };
    let fill = |text: &str| {
        text.replace("{{name}}", name)
            .replace("{{ident}}", &name.replace('-', "_"))
            .replace("{{Type}}", &type_name(name))
            .replace("{{sdk}}", &sdk.display().to_string().replace('\\', "/"))
    };
    let mut files: Vec<(PathBuf, String)> = template(lang)
        .iter()
        .map(|(path, text)| (dir.join(path), fill(text)))
        .collect();
    if vendored {
        files.extend(
            sdk_files()
                .into_iter()
                .map(|(path, text)| (dir.join(path), text)),
        );
    }
    if lang != Lang::Rust {
        // The Rust SDK carries the WIT package; the other toolchains read
        // it from the project.
        files.extend(
            WIT_V0_1
                .iter()
                .map(|(file, text)| (dir.join("wit").join(file), (*text).to_string())),
        );
    }
    for (path, text) in &files {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(io(format!("creating {}", parent.display())))?;
        }
        std::fs::write(path, text).map_err(io(format!("writing {}", path.display())))?;
    }
    Ok(files.into_iter().map(|(p, _)| p).collect())
}

/// Which language the project in `dir` is written in, and its name.
fn detect(dir: &Path) -> Result<(Lang, String), PluginCommandError> {
    let read = |file: &str| {
        let path = dir.join(file);
        std::fs::read_to_string(&path).map_err(io(format!("reading {}", path.display())))
    };
    let folder_name = || {
        std::fs::canonicalize(dir)
            .ok()
            .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "plugin".into())
    };
    if dir.join("Cargo.toml").is_file() {
        let manifest = read("Cargo.toml")?;
        let name = manifest
            .lines()
            .find_map(|l| {
                let (key, value) = l.split_once('=')?;
                (key.trim() == "name").then(|| value.trim().trim_matches('"').to_string())
            })
            .ok_or_else(|| {
                PluginCommandError::Usage(format!("{}/Cargo.toml names no package", dir.display()))
            })?;
        Ok((Lang::Rust, name))
    } else if dir.join("package.json").is_file() {
        let package: serde_json::Value =
            serde_json::from_str(&read("package.json")?).map_err(|e| {
                PluginCommandError::Usage(format!(
                    "{}/package.json is not JSON: {e}",
                    dir.display()
                ))
            })?;
        let name = package["name"]
            .as_str()
            .map_or_else(folder_name, str::to_string);
        Ok((Lang::Js, name))
    } else if dir.join("app.py").is_file() {
        Ok((Lang::Python, folder_name()))
    } else {
        Err(PluginCommandError::Usage(format!(
            "{} is not a plugin project: it has no Cargo.toml (Rust), package.json \
             (JavaScript) or app.py (Python); make one with `weir plugin new`",
            dir.display()
        )))
    }
}

/// Runs `command`, all its output going to our stderr (stdout carries only
/// the component's path); an error names `what`.
fn run(mut command: Command, what: &str) -> Result<(), PluginCommandError> {
    let program = command.get_program().to_string_lossy().into_owned();
    let status = command.stdout(std::io::stderr()).status().map_err(|e| {
        PluginCommandError::Tool(format!(
            "{what}: cannot run `{program}`: {e}; is it installed?"
        ))
    })?;
    if status.success() {
        Ok(())
    } else {
        Err(PluginCommandError::Tool(format!(
            "{what} failed ({status}); its output is above"
        )))
    }
}

/// Builds the plugin project in `dir` into a component; returns its path
/// (`out`, or `DIR/NAME.wasm`). Installs the language's build tools into
/// the project when they are missing.
pub fn build_project(dir: &Path, out: Option<&Path>) -> Result<PathBuf, PluginCommandError> {
    let (lang, name) = detect(dir)?;
    let dir = std::fs::canonicalize(dir).map_err(io(format!("resolving {}", dir.display())))?;
    let out = match out {
        Some(o) => std::path::absolute(o).map_err(io(format!("resolving {}", o.display())))?,
        None => dir.join(format!("{name}.wasm")),
    };
    // Written next to `out` and renamed, so that a running Weir watching
    // the file (hot reload) never reads half of it.
    let tmp = out.with_extension("wasm.tmp");
    let _ = std::fs::remove_file(&tmp);
    eprintln!("building the {lang} plugin `{name}` in {}", dir.display());
    match lang {
        Lang::Rust => build_rust(&dir, &name, &tmp)?,
        Lang::Js => build_js(&dir, &tmp)?,
        Lang::Python => build_python(&dir, &tmp)?,
    }
    std::fs::rename(&tmp, &out).map_err(io(format!("writing {}", out.display())))?;
    Ok(out)
}

fn build_rust(dir: &Path, name: &str, tmp: &Path) -> Result<(), PluginCommandError> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .current_dir(dir)
        .output();
    if let Ok(o) = installed
        && o.status.success()
        && !String::from_utf8_lossy(&o.stdout)
            .lines()
            .any(|l| l.trim() == "wasm32-wasip2")
    {
        let mut add = Command::new("rustup");
        add.args(["target", "add", "wasm32-wasip2"])
            .current_dir(dir);
        run(add, "adding the wasm32-wasip2 target")?;
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .args(["build", "--release", "--target", "wasm32-wasip2"])
        .current_dir(dir)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET");
    run(build, "cargo build")?;
    let built = dir
        .join("target/wasm32-wasip2/release")
        .join(format!("{}.wasm", name.replace('-', "_")));
    std::fs::copy(&built, tmp).map_err(io(format!("copying {}", built.display())))?;
    Ok(())
}

fn build_js(dir: &Path, tmp: &Path) -> Result<(), PluginCommandError> {
    let componentize = dir.join("node_modules/.bin/componentize-js");
    if !componentize.is_file() {
        let mut install = Command::new("npm");
        install
            .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(dir);
        run(install, "npm install (ComponentizeJS and jco)")?;
    }
    let mut build = Command::new(&componentize);
    build
        .arg("plugin.js")
        .args(["--wit", "wit", "--world-name", "processor"])
        .args(["--disable", "http", "--disable", "fetch-event", "--out"])
        .arg(tmp)
        .current_dir(dir);
    run(build, "componentize-js")
}

fn build_python(dir: &Path, tmp: &Path) -> Result<(), PluginCommandError> {
    let venv = dir.join(".venv");
    let tool = venv.join("bin/componentize-py");
    if !tool.is_file() {
        if !venv.join("bin/python").is_file() {
            let mut make = Command::new("python3");
            make.args(["-m", "venv"]).arg(&venv).current_dir(dir);
            run(make, "python3 -m venv")?;
        }
        let mut install = Command::new(venv.join("bin/python"));
        install
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(["-r", "requirements.txt"])
            .current_dir(dir);
        run(install, "pip install -r requirements.txt (componentize-py)")?;
    }
    // Bindings and a copy of the app go to build/, so the componentizer's
    // byte-code caches stay out of the sources.
    let stage = dir.join("build");
    let _ = std::fs::remove_dir_all(&stage);
    std::fs::create_dir_all(&stage).map_err(io(format!("creating {}", stage.display())))?;
    let mut bindings = Command::new(&tool);
    bindings
        .args(["-q", "-d", "wit", "-w", "processor", "bindings"])
        .arg(&stage)
        .current_dir(dir);
    run(bindings, "componentize-py bindings")?;
    std::fs::copy(dir.join("app.py"), stage.join("app.py"))
        .map_err(io(format!("copying {}/app.py", dir.display())))?;
    let mut build = Command::new(&tool);
    build
        .arg("-q")
        .arg("-d")
        .arg(dir.join("wit"))
        .args(["-w", "processor", "componentize", "-p"])
        .arg(&stage)
        .args(["app", "-o"])
        .arg(tmp)
        .current_dir(&stage)
        .env_remove("VIRTUAL_ENV");
    run(build, "componentize-py componentize")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guarantees: names that are not valid crate / package / file names
    /// are refused with a hint; the type name is the CamelCase form.
    #[test]
    fn names() {
        for bad in ["", "1x", "Has-Caps", "a_b", "x-", "a b", "../up"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        check_name("drop-debug2").expect("valid");
        assert_eq!(type_name("drop-debug2"), "DropDebug2");
    }

    /// Guarantees: a new project of each language is detected as that
    /// language with its name; a folder of something else is refused.
    #[test]
    fn new_then_detect() {
        let tmp = tempfile::tempdir().expect("tmp");
        for lang in [Lang::Rust, Lang::Js, Lang::Python] {
            let dir = tmp.path().join(format!("p-{lang}"));
            let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sdk/rust");
            new_project(lang, &format!("p-{lang}"), &dir, Some(&sdk)).expect("made");
            assert_eq!(detect(&dir).expect("detected"), (lang, format!("p-{lang}")));
            let again = new_project(lang, &format!("p-{lang}"), &dir, Some(&sdk));
            assert!(matches!(again, Err(PluginCommandError::Usage(_))));
        }
        assert!(tmp.path().join("p-js/wit/world.wit").is_file());
        assert!(detect(tmp.path()).is_err());
        // JavaScript and Python projects get 0.1.0, the whole of it.
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        for lang in ["js", "python"] {
            let wit = tmp.path().join(format!("p-{lang}/wit"));
            let world = std::fs::read_to_string(wit.join("world.wit")).expect("world");
            assert!(world.contains("weir:plugin@0.1.0"), "{lang}: {world}");
            for entry in std::fs::read_dir(repo.join("wit/v0.1")).expect("v0.1") {
                let name = entry.expect("entry").file_name();
                if name.to_string_lossy().ends_with(".wit") {
                    assert!(wit.join(&name).is_file(), "{lang}: {name:?}");
                }
            }
            assert!(!wit.join("hold.wit").exists(), "{lang}");
        }
    }

    /// Guarantees: without `--sdk`, a Rust project holds its own copy of
    /// the SDK (every source file of `sdk/rust/src` and every file of the
    /// WIT package, the WIT path made the copy's own) and no file of it
    /// names a path outside the project.
    #[test]
    fn a_rust_project_holds_its_sdk() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().join("mine");
        let files = new_project(Lang::Rust, "mine", &dir, None).expect("made");
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let listed = |folder: &Path, ext: &str| -> Vec<String> {
            let mut names: Vec<String> = std::fs::read_dir(folder)
                .expect("read")
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n.ends_with(ext))
                .collect();
            names.sort();
            names
        };
        assert_eq!(
            listed(&dir.join("weir-plugin/src"), ".rs"),
            listed(&repo.join("sdk/rust/src"), ".rs")
        );
        assert_eq!(
            listed(&dir.join("weir-plugin/wit"), ".wit"),
            listed(&repo.join("wit"), ".wit")
        );
        let lib = std::fs::read_to_string(dir.join("weir-plugin/src/lib.rs")).expect("lib");
        assert!(lib.contains(SDK_WIT_PATH.1) && !lib.contains(SDK_WIT_PATH.0));
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).expect("manifest");
        assert!(
            manifest.contains(r#"weir-plugin = { path = "weir-plugin" }"#),
            "{manifest}"
        );
        let sdk = std::fs::read_to_string(dir.join("weir-plugin/Cargo.toml")).expect("sdk");
        assert!(
            sdk.contains("wit-bindgen = {") && sdk.contains("optional = true"),
            "{sdk}"
        );
        for dep in ["serde", "serde_json", "serde_path_to_error"] {
            let line = sdk
                .lines()
                .find(|l| l.starts_with(&format!("{dep} = ")))
                .unwrap_or_else(|| panic!("{dep} missing: {sdk}"));
            assert!(line.ends_with("optional = true }"), "{line}");
        }
        assert!(sdk.contains("default = [\"config\"]"), "{sdk}");
        let tree = std::fs::canonicalize(&repo).expect("repo");
        for file in files {
            let text = std::fs::read_to_string(&file).expect("read");
            assert!(
                !text.contains(&*tree.to_string_lossy()) && !text.contains("../"),
                "{} names a path outside the project",
                file.display()
            );
        }
    }
}
