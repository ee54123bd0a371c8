//! The external sinks in `weir run`, end to end: OTLP in, a real backend
//! out (VictoriaMetrics through the `prometheus_remote_write` sink), the
//! disk queue riding out an outage of the backend and a `kill -9` of Weir.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use weir_testkit::backends::{Backend, victoria_metrics};
use weir_testkit::otlp::{self, Group};
use weir_testkit::time::SECOND;

use crate::common::{self, Weir, log_tail, stop};

/// How long the backend is down while the load goes on (the issue's
/// outage: a minute).
const OUTAGE: Duration = Duration::from_secs(60);

fn pipeline(dir: &Path, vm: &Backend) -> std::path::PathBuf {
    let path = dir.join("pipeline.toml");
    let text = format!(
        r#"[api]
address = "127.0.0.1:0"

[sources.otlp]
type = "otlp"
grpc_address = "127.0.0.1:0"
http_address = "127.0.0.1:0"

[sinks.vm]
type = "prometheus_remote_write"
inputs = ["otlp"]
url = "{}/api/v1/write"
batch_timeout = "50ms"
retry = {{ initial_backoff = "100ms", max_backoff = "1s" }}
queue = {{ max_size = "64MiB", dir = "{}" }}
"#,
        vm.base(),
        dir.join("queue").display()
    );
    std::fs::write(&path, text).expect("write pipeline");
    path
}

/// Posts point `seq` of gauge `weir_e2e_seq` (value `seq`, one second
/// apart from `base`); whether Weir took it (200).
fn post_point(client: &reqwest::blocking::Client, weir: &Weir, base: u64, seq: u64) -> bool {
    let request = Group::new(vec![otlp::gauge(
        "weir.e2e.seq",
        vec![otlp::double_point(base + seq * SECOND, seq as f64)],
    )])
    .service("e2e")
    .metrics();
    client
        .post(format!("http://{}/v1/metrics", weir.http))
        .header("content-type", "application/json")
        .body(otlp::metrics_json(&request))
        .timeout(Duration::from_secs(10))
        .send()
        .is_ok_and(|r| r.status().is_success())
}

/// The values of `weir_e2e_seq` VictoriaMetrics holds, each with how many
/// times it holds it.
fn stored(vm: &Backend) -> BTreeMap<u64, usize> {
    let text = reqwest::blocking::Client::new()
        .get(format!("{}/api/v1/export", vm.base()))
        .query(&[("match[]", "weir_e2e_seq")])
        .send()
        .and_then(|r| r.text())
        .unwrap_or_default();
    let mut counts = BTreeMap::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
        for value in v["values"].as_array().into_iter().flatten() {
            if let Some(x) = value.as_f64() {
                *counts.entry(x as u64).or_insert(0) += 1;
            }
        }
    }
    counts
}

fn kill_9(weir: &mut Weir) {
    weir.child.kill().expect("SIGKILL");
    weir.child.wait().expect("reaped");
}

/// Guarantees: every point Weir acknowledged reaches VictoriaMetrics
/// through the disk queue although VictoriaMetrics is down for a minute
/// of steady load and Weir is killed with `kill -9` in the middle of the
/// outage; points arrive twice only from requests out at the kill
/// (counted and bounded).
#[test]
fn an_outage_and_a_kill_9_lose_nothing_acknowledged() {
    let mut vm = victoria_metrics();
    let dir = tempfile::tempdir().expect("tmp");
    let config = pipeline(dir.path(), &vm);
    let mut weir = common::start_in(dir.path(), &config);
    let client = reqwest::blocking::Client::new();
    let base = weir_testkit::time::now_ns() - 3600 * SECOND;
    let mut acknowledged = Vec::new();
    let mut seq = 0;
    let mut load = |weir: &Weir, until: Instant, acknowledged: &mut Vec<u64>| {
        while Instant::now() < until {
            if post_point(&client, weir, base, seq) {
                acknowledged.push(seq);
            }
            seq += 1;
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    // Up: a few seconds of load.
    load(
        &weir,
        Instant::now() + Duration::from_secs(3),
        &mut acknowledged,
    );
    // Down for OUTAGE, under load; Weir killed half-way and started again.
    // (Shut down, not killed: what the backend took before must stay in
    // it, or the test would count the backend's losses as Weir's.)
    vm.shut_down();
    let outage_start = Instant::now();
    load(&weir, outage_start + OUTAGE / 2, &mut acknowledged);
    kill_9(&mut weir);
    let weir = common::start_in(dir.path(), &config);
    load(&weir, outage_start + OUTAGE, &mut acknowledged);
    vm.start_again();
    load(
        &weir,
        Instant::now() + Duration::from_secs(3),
        &mut acknowledged,
    );
    assert!(
        acknowledged.len() > 400,
        "only {} points were taken",
        acknowledged.len()
    );

    // Everything acknowledged arrives.
    let deadline = Instant::now() + Duration::from_secs(120);
    let counts = loop {
        let counts = stored(&vm);
        let missing = acknowledged
            .iter()
            .filter(|s| !counts.contains_key(s))
            .count();
        if missing == 0 {
            break counts;
        }
        assert!(
            Instant::now() < deadline,
            "{missing} of {} acknowledged points never arrived; Weir's log:\n{}",
            acknowledged.len(),
            log_tail(&weir)
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let twice: usize = counts.values().filter(|n| **n > 1).count();
    eprintln!(
        "outage {OUTAGE:?} with a kill -9: {} points acknowledged, {} stored, {twice} stored twice",
        acknowledged.len(),
        counts.len()
    );
    // Only what was out when Weir was killed can come twice: at most
    // max_in_flight (4) requests' worth of points.
    assert!(twice <= 4 * 100, "{twice} points arrived twice");
    stop(weir);
}
