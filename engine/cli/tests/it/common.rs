//! Starting the `weir` binary as a user would, for the tests of this crate.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const WEIR: &str = env!("CARGO_BIN_EXE_weir");

/// A `weir run` child process and the addresses it logged.
pub struct Weir {
    pub child: Child,
    pub http: String,
    pub api: String,
    pub log: Option<std::thread::JoinHandle<Vec<String>>>,
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
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let (mut http, mut api) = (None, None);
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(180);
    while (http.is_none() || api.is_none()) && Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        let f = &v["fields"];
        if f["listener"] == "otlp/http" {
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
    let log = std::thread::spawn(move || lines.map_while(Result::ok).collect());
    Weir {
        child,
        http,
        api,
        log: Some(log),
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
    let spans: Vec<String> = offsets
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let start = (base + s) * 1_000_000_000;
            format!(
                r#"{{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b17{i}",
                    "name":"op","kind":2,"startTimeUnixNano":"{start}",
                    "endTimeUnixNano":"{}"}}"#,
                start + 1_000_000
            )
        })
        .collect();
    format!(
        r#"{{"resourceSpans":[{{"resource":{{"attributes":[
            {{"key":"service.name","value":{{"stringValue":"{service}"}}}}]}},
            "scopeSpans":[{{"spans":[{}]}}]}}]}}"#,
        spans.join(",")
    )
}
