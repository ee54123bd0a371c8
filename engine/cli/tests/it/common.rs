//! Starting the `weir` binary as a user would, and feeding it spans, for
//! the tests of this crate.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::trace::v1::Span;
use weir_testkit::otlp::{self, Group};
use weir_testkit::time::{MILLI, SECOND};

/// The `weir` binary built for these tests.
pub const WEIR: &str = env!("CARGO_BIN_EXE_weir");

/// `path`, relative to the repository's root.
pub fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

/// A `weir run` child process and the addresses it logged.
pub struct Weir {
    /// The process.
    pub child: Child,
    /// The OTLP/HTTP listener's address, `127.0.0.1:PORT`.
    pub http: String,
    /// The API server's address, `127.0.0.1:PORT`.
    pub api: String,
    /// The rest of its log (stderr), read on a thread so that it never
    /// blocks on a full pipe; joined, the lines it wrote.
    pub log: Option<std::thread::JoinHandle<Vec<String>>>,
    /// Every line it logged so far, from the first, as it logs them.
    pub lines: Arc<Mutex<Vec<String>>>,
}

impl Drop for Weir {
    /// A failed test must not leave a `weir` process behind.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Starts `weir run CONFIG` and waits until it logs its OTLP/HTTP and API
/// addresses (the pipeline listens on port 0).
pub fn start(config: &Path) -> Weir {
    start_in(Path::new("."), config)
}

/// [`start`], with Weir running in `dir` (where the pipeline's relative
/// paths are taken from).
pub fn start_in(dir: &Path, config: &Path) -> Weir {
    let mut child = Command::new(WEIR)
        .args(["--log-format", "json", "run"])
        .arg(config)
        .current_dir(dir)
        .stderr(Stdio::piped())
        .spawn()
        .expect("weir starts");
    // Lines are read on a thread of their own, so that a Weir that falls
    // silent cannot hold the test past its deadline.
    let lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            if tx.send(line.clone()).is_err() {
                break;
            }
        }
    });
    let (mut http, mut api) = (None, None);
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(180);
    while http.is_none() || api.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(line) = rx.recv_timeout(left) else {
            break;
        };
        let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        let f = &v["fields"];
        // The OTLP source's HTTP listener, whatever the source is called.
        if f["listener"].as_str().is_some_and(|l| l.ends_with("/http")) {
            http = f["address"].as_str().map(str::to_string);
        }
        if f["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("API listening"))
        {
            api = f["address"].as_str().map(str::to_string);
        }
        seen.push(line);
    }
    let (Some(http), Some(api)) = (http, api) else {
        let _ = child.kill();
        panic!("weir did not start:\n{}", seen.join("\n"));
    };
    let lines = Arc::new(Mutex::new(seen));
    let all = lines.clone();
    let log = std::thread::spawn(move || {
        let rest: Vec<String> = rx
            .iter()
            .inspect(|line| all.lock().expect("lock").push(line.clone()))
            .collect();
        let _ = reader.join();
        rest
    });
    Weir {
        child,
        http,
        api,
        log: Some(log),
        lines,
    }
}

/// Posts OTLP/JSON spans to the OTLP/HTTP listener `http` and checks they
/// are taken (200).
pub fn post_spans(client: &reqwest::blocking::Client, http: &str, body: String) {
    let response = client
        .post(format!("http://{http}/v1/traces"))
        .header("content-type", "application/json")
        .body(body)
        .timeout(Duration::from_secs(30))
        .send()
        .expect("weir answers");
    assert_eq!(response.status().as_u16(), 200);
}

/// OTLP/JSON spans of `service`, one starting at each of `offsets`
/// seconds after `base` (seconds since the epoch), 1 ms long.
pub fn otlp_spans(base: u64, service: &str, offsets: &[u64]) -> String {
    let trace_id = 0x5b8e_fff7_9803_8103_d269_b633_813f_c60c_u128.to_be_bytes();
    let spans = offsets.iter().enumerate().map(|(i, s)| {
        let start = (base + s) * SECOND;
        let span_id = (0xeee1_9b7e_c3c1_b170 + i as u64).to_be_bytes();
        Span {
            kind: 2,
            ..otlp::span(&trace_id, &span_id, "op", start, start + MILLI)
        }
    });
    otlp::spans_json(&Group::new(spans).service(service).spans())
}

/// The last 40 lines Weir logged.
pub fn log_tail(weir: &Weir) -> String {
    let lines = weir.lines.lock().expect("lock");
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// Stops Weir with SIGTERM and checks it exits 0.
pub fn stop(mut weir: Weir) {
    Command::new("kill")
        .args(["-TERM", &weir.child.id().to_string()])
        .status()
        .expect("kill");
    let status = weir.child.wait().expect("exit");
    assert_eq!(status.code(), Some(0), "{}", log_tail(&weir));
}
