//! Golden tests: every `pipelines/NAME.toml` is checked and the result —
//! the rendered errors, or the plan and its warnings — must equal
//! `pipelines/NAME.out` byte for byte.
//!
//! A case is a file, not a recompile. After changing messages on purpose,
//! run with `WEIR_BLESS=1` to rewrite the `.out` files, then review the diff.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use weir_cli::parse_str;
use weir_config::Plan;

fn cases() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pipelines");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/pipelines exists")
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    cases.sort();
    cases
}

fn describe(plan: &Plan) -> String {
    let mut out = String::from("ok\n");
    for c in &plan.components {
        let _ = write!(out, "{} {} `{}`", c.kind().noun(), c.type_name, c.name);
        for (i, input) in c.inputs.iter().enumerate() {
            let sep = if i == 0 { " <- " } else { ", " };
            let _ = write!(out, "{sep}{} {}", input.from, input.signals);
        }
        if !c.inputs.is_empty() {
            let _ = write!(out, " (queue {})", c.queue_capacity);
        }
        out.push('\n');
    }
    for w in &plan.warnings {
        out.push('\n');
        out.push_str(w);
    }
    out
}

/// Scenario: each fixture pipeline is loaded. Guarantees: the output (every
/// error with file, line, column, key and help; or the plan in topological
/// order with its warnings) is exactly the reviewed one.
#[test]
fn golden_pipelines() {
    let bless = std::env::var_os("WEIR_BLESS").is_some();
    let cases = cases();
    assert!(!cases.is_empty(), "no fixtures found");
    let mut failures = Vec::new();
    for case in &cases {
        let source = std::fs::read_to_string(case).expect("fixture is readable");
        let name = case
            .file_name()
            .expect("fixture has a name")
            .to_string_lossy();
        let actual = match parse_str(&source, &format!("pipelines/{name}")) {
            Ok(plan) => describe(&plan),
            Err(e) => e.to_string(),
        };
        let expected_path = case.with_extension("out");
        if bless {
            std::fs::write(&expected_path, &actual).expect("can write the .out file");
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if expected != actual {
            failures.push(format!(
                "--- {name}: expected ---\n{expected}\n--- {name}: actual ---\n{actual}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} golden cases differ (WEIR_BLESS=1 rewrites them):\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
