//! `weir plugin new` and `weir plugin build` as a user runs them, and the
//! components they make running in `weir run`.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::common::{WEIR, start_in};

const LANGS: [&str; 3] = ["rust", "js", "python"];

/// Runs `weir ARGS` in `dir`; panics with its output unless it succeeds.
fn weir(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(WEIR)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("weir runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "weir {args:?} failed:\n{stdout}{stderr}"
    );
    stdout
}

/// Scenario: a user makes a plugin project in each of Rust, JavaScript and
/// Python with `weir plugin new`, moves it to another folder, builds each
/// with `weir plugin build` (which installs componentize-js /
/// componentize-py when missing), runs each template's `weir test` and
/// the Rust project's tests, and runs
/// all three in one `weir run` pipeline fed by OTLP/HTTP.
/// Guarantees: the templates build and test as they are, wherever they
/// are (the Rust one with its own copy of the SDK), the components load and
/// run in the engine, each plugin's `config` reaches it, and the request is
/// answered 200 once every file sink holds the tagged records.
#[test]
fn new_build_and_run_in_every_language() {
    let dir = tempfile::tempdir().expect("tmp");
    let elsewhere = tempfile::tempdir().expect("tmp");
    for lang in LANGS {
        let name = format!("tag-{lang}");
        // Made in one place and moved to another: nothing in it may point
        // back (the Rust project carries its copy of the SDK).
        weir(elsewhere.path(), &["plugin", "new", lang, &name]);
        std::fs::rename(elsewhere.path().join(&name), dir.path().join(&name)).expect("move");
        let built = weir(dir.path(), &["plugin", "build", &format!("tag-{lang}")]);
        let wasm = dir.path().join(format!("tag-{lang}/tag-{lang}.wasm"));
        assert_eq!(
            Path::new(built.trim()),
            wasm,
            "the component's path is printed"
        );
        assert!(wasm.is_file());
        // The template's own `weir test` passes as it is.
        let tested = weir(&dir.path().join(&name), &["test", "pipeline.toml"]);
        assert!(
            tested.contains("1 passed, 0 failed"),
            "{lang}: weir test pipeline.toml:\n{tested}"
        );
    }
    // The Rust project's own tests (the SDK's native harness) pass where it
    // now is.
    let tested = Command::new("cargo")
        .args(["test", "--quiet"])
        .current_dir(dir.path().join("tag-rust"))
        .output()
        .expect("cargo runs");
    assert!(
        tested.status.success(),
        "cargo test in the moved project:\n{}",
        String::from_utf8_lossy(&tested.stderr)
    );

    let mut pipeline = String::from(
        "[api]\naddress = \"127.0.0.1:0\"\n\n\
         [sources.otlp]\ntype = \"otlp\"\ngrpc = false\nhttp_address = \"127.0.0.1:0\"\n",
    );
    for lang in LANGS {
        let name = format!("tag-{lang}");
        pipeline.push_str(&format!(
            "\n[processors.{lang}]\ntype = \"wasm\"\ninputs = [\"otlp\"]\n\
             path = \"{name}/{name}.wasm\"\ntimeout = \"30s\"\nconfig = {{ tag = \"by-{lang}\" }}\n\
             \n[sinks.{lang}_file]\ntype = \"file\"\ninputs = [\"{lang}\"]\npath = \"out-{lang}.jsonl\"\n"
        ));
    }
    let config = dir.path().join("pipeline.toml");
    std::fs::write(&config, pipeline).expect("write pipeline");
    weir(dir.path(), &["validate", "pipeline.toml"]);

    let weir = start_in(dir.path(), &config);
    let response = reqwest::blocking::Client::new()
        .post(format!("http://{}/v1/logs", weir.http))
        .header("content-type", "application/json")
        .body(
            r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[
                {"severityNumber":9,"body":{"stringValue":"one"}},
                {"severityNumber":13,"body":{"stringValue":"two"}}]}]}]}"#,
        )
        .timeout(Duration::from_secs(120))
        .send()
        .expect("weir answers");
    assert_eq!(response.status().as_u16(), 200);
    for lang in LANGS {
        let written =
            std::fs::read_to_string(dir.path().join(format!("out-{lang}.jsonl"))).expect("file");
        let tag = format!(r#"{{"key":"processed_by","value":{{"stringValue":"by-{lang}"}}}}"#);
        assert_eq!(
            written.matches(&tag).count(),
            2,
            "{lang}: both records tagged:\n{written}"
        );
    }
}

/// Guarantees: `pipelines/gateway.toml`, the four first-party plugins
/// named by `plugin` before the store, is valid and passes its own
/// `[[tests]]` (one per plugin), run from the repository's root as its
/// header says.
#[test]
fn shipped_gateway_pipeline_passes_its_tests() {
    let root = crate::common::repo("");
    weir(&root, &["validate", "pipelines/gateway.toml"]);
    let stdout = weir(&root, &["test", "pipelines/gateway.toml"]);
    assert!(stdout.contains("ok: 4 passed, 0 failed"), "{stdout}");
}

/// Guarantees: every first-party plugin's own `plugins/NAME/pipeline.toml`
/// (those that have one) passes its `[[tests]]`, run from the repository's
/// root.
#[test]
fn plugin_pipelines_pass_their_tests() {
    let root = crate::common::repo("");
    let mut files: Vec<String> = std::fs::read_dir(root.join("plugins"))
        .expect("plugins/")
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            root.join("plugins")
                .join(&name)
                .join("pipeline.toml")
                .is_file()
                .then(|| format!("plugins/{name}/pipeline.toml"))
        })
        .collect();
    files.sort();
    assert!(
        files.contains(&"plugins/sample/pipeline.toml".to_string()),
        "{files:?}"
    );
    for file in files {
        let stdout = weir(&root, &["test", &file]);
        assert!(stdout.contains(" 0 failed"), "{file}:\n{stdout}");
    }
}

/// Guarantees: `weir plugin list` shows the four first-party plugins with
/// their version and config keys, and `-q` only their names, one a line.
#[test]
fn plugin_list_shows_the_first_party_plugins() {
    let root = crate::common::repo("");
    let names = weir(&root, &["plugin", "list", "-q"]);
    assert_eq!(
        names.lines().collect::<Vec<_>>(),
        ["enrich", "redact", "sample", "spanmetrics"]
    );
    let full = weir(&root, &["plugin", "list"]);
    for expected in [
        "redact 0.1.0",
        "config keys:",
        "presets",
        "decision_wait",
        "allow_keys",
    ] {
        assert!(
            full.contains(expected),
            "`{expected}` missing from:\n{full}"
        );
    }
}
