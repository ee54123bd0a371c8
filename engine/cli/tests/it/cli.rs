//! The `weir` binary as a user runs it.

use std::process::Command;

use opentelemetry_proto::tonic::logs::v1::LogRecord;
use prost::Message;
use weir_testkit::otlp::Group;

use crate::common::{WEIR, repo, start};

/// Guarantees: every pipeline shipped in `pipelines/` validates (exit 0).
#[test]
fn shipped_pipelines_validate() {
    let dir = repo("pipelines");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("pipelines/") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "toml") {
            let out = Command::new(WEIR)
                .arg("validate")
                .arg(&path)
                .output()
                .expect("weir runs");
            assert!(
                out.status.success(),
                "{}: {}",
                path.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            n += 1;
        }
    }
    assert!(n >= 1, "pipelines/ holds at least default.toml");
}

/// Guarantees: an invalid file exits with code 3 and names file, line and key.
#[test]
fn invalid_pipeline_exits_3_with_file_and_line() {
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("bad.toml");
    std::fs::write(
        &file,
        "[sources.otlp]\ntype = \"otlp\"\ngrpc_adress = \"0.0.0.0:4317\"\n\n[sinks.x]\ntype = \"blackhole\"\ninputs = [\"otlp\"]\n",
    )
    .expect("write");
    let out = Command::new(WEIR)
        .arg("validate")
        .arg(&file)
        .output()
        .expect("weir runs");
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml:3"), "{err}");
    assert!(
        err.contains("grpc_adress") && err.contains("grpc_address"),
        "{err}"
    );
    // `run` refuses it the same way, before starting anything.
    let out = Command::new(WEIR)
        .arg("run")
        .arg(&file)
        .output()
        .expect("weir runs");
    assert_eq!(out.status.code(), Some(3));
}

/// Guarantees: `--help` documents the commands and the exit codes; a wrong
/// command line exits 2.
#[test]
fn help_and_usage_errors() {
    let out = Command::new(WEIR)
        .arg("--help")
        .output()
        .expect("weir runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    for needle in ["run", "validate", "Exit codes"] {
        assert!(text.contains(needle), "{text}");
    }
    for sub in ["run", "validate"] {
        let out = Command::new(WEIR)
            .args([sub, "--help"])
            .output()
            .expect("weir runs");
        assert!(out.status.success());
    }
    let out = Command::new(WEIR)
        .arg("frobnicate")
        .output()
        .expect("weir runs");
    assert_eq!(out.status.code(), Some(2));
}

/// Scenario: `weir run`, a client sends logs over HTTP, then SIGTERM.
/// Guarantees: the data accepted before the signal is in the file sink, and
/// the process exits 0 after draining.
#[test]
fn run_serves_and_drains_on_sigterm() {
    let dir = tempfile::tempdir().expect("tmp");
    let out_file = dir.path().join("out.jsonl");
    let config = dir.path().join("p.toml");
    std::fs::write(
        &config,
        format!(
            "[api]\naddress = \"127.0.0.1:0\"\n\n[sources.otlp]\ntype = \"otlp\"\ngrpc_address = \"127.0.0.1:0\"\nhttp_address = \"127.0.0.1:0\"\n\n[sinks.out]\ntype = \"file\"\ninputs = [\"otlp\"]\npath = \"{}\"\n",
            out_file.display()
        ),
    )
    .expect("write");
    let mut weir = start(&config);
    let request = Group::new((0..25).map(|i| LogRecord {
        time_unix_nano: 1_700_000_000_000_000_000 + i,
        severity_number: 9,
        ..Default::default()
    }))
    .logs();
    let r = reqwest::blocking::Client::new()
        .post(format!("http://{}/v1/logs", weir.http))
        .header("content-type", "application/x-protobuf")
        .body(request.encode_to_vec())
        .send()
        .expect("request");
    assert_eq!(r.status(), 200);

    let killed = Command::new("kill")
        .args(["-TERM", &weir.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = weir.child.wait().expect("exit");
    let logs = weir
        .log
        .take()
        .map(|log| log.join().unwrap_or_default())
        .unwrap_or_default();
    assert_eq!(status.code(), Some(0), "{}", logs.join("\n"));
    let written = std::fs::read_to_string(&out_file).expect("sink file");
    assert_eq!(written.lines().count(), 1);
    assert_eq!(written.matches("\"severityNumber\"").count(), 25);
}
