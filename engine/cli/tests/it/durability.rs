//! Durability of the `weir` binary with its embedded store: `kill -9` under
//! load, and a full disk. These start real processes and a real tmpfs.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::logs::v1::LogRecord;
use prost::Message;
use weir_testkit::kv;
use weir_testkit::otlp::{self, Group};

use crate::common::start;

const PER_REQUEST: u64 = 20;

fn pipeline(dir: &Path, store_path: &Path) -> std::path::PathBuf {
    let file = dir.join("p.toml");
    std::fs::write(
        &file,
        format!(
            r#"
[api]
address = "127.0.0.1:0"

[store]
path = "{}"
fsync = "always"
flush_interval = "1s"
flush_size = "256KiB"

[sources.otlp]
type = "otlp"
grpc = false
http_address = "127.0.0.1:0"
queue_wait = "50ms"

[sinks.store]
type = "store"
inputs = ["otlp"]
"#,
            store_path.display()
        ),
    )
    .expect("write pipeline");
    file
}

/// When the test started, in ns since the epoch: records are timestamped
/// from there so that the store's retention keeps them.
fn base_time() -> u64 {
    static BASE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *BASE.get_or_init(weir_testkit::time::now_ns)
}

fn logs(first: u64) -> Vec<u8> {
    Group::new((first..first + PER_REQUEST).map(|seq| LogRecord {
        attributes: vec![kv::int("seq", seq as i64)],
        ..otlp::log(
            base_time() + seq * 1_000_000,
            9,
            &format!("record {seq} {}", "x".repeat(200)),
        )
    }))
    .logs()
    .encode_to_vec()
}

fn post(client: &reqwest::blocking::Client, http: &str, first: u64) -> Result<u16, String> {
    client
        .post(format!("http://{http}/v1/logs"))
        .header("content-type", "application/x-protobuf")
        .body(logs(first))
        .timeout(Duration::from_secs(10))
        .send()
        .map(|r| r.status().as_u16())
        .map_err(|e| e.to_string())
}

/// Parquet files under `dir`, at any depth.
fn parquet_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| {
                    let path = e.path();
                    if path.is_dir() {
                        parquet_files(&path)
                    } else {
                        usize::from(path.extension().is_some_and(|x| x == "parquet"))
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

/// Every `seq` attribute in the store, with repeats.
fn stored_seqs(api: &str) -> Vec<u64> {
    let text = reqwest::blocking::Client::new()
        .post(format!("http://{api}/api/v1/sql?format=csv"))
        .header("content-type", "text/plain")
        .body("SELECT attributes['seq'] AS seq FROM logs")
        .timeout(Duration::from_secs(60))
        .send()
        .expect("sql")
        .text()
        .expect("csv");
    text.lines()
        .skip(1)
        .map(|l| {
            l.trim()
                .parse::<u64>()
                .unwrap_or_else(|_| panic!("bad seq row `{l}` in:\n{text}"))
        })
        .collect()
}

/// Scenario: clients send logs continuously while `weir` is killed with
/// SIGKILL and restarted, 10 times, with flushes to Parquet in between.
/// Guarantees: every record whose request was answered 200 is in the store
/// after the last restart, and no record is stored twice (each request is
/// sent once, so a repeat could only come from replaying the WAL over data
/// already in Parquet).
#[test]
fn kill_9_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().expect("tmp");
    let config = pipeline(dir.path(), &dir.path().join("data"));
    let address = Arc::new(Mutex::new(String::new()));
    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicU64::new(0));

    let mut weir = start(&config);
    *address.lock().expect("lock") = weir.http.clone();
    let loaders: Vec<_> = (0..2)
        .map(|_| {
            let (address, acked, stop, next) =
                (address.clone(), acked.clone(), stop.clone(), next.clone());
            std::thread::spawn(move || {
                let client = reqwest::blocking::Client::new();
                while !stop.load(Ordering::SeqCst) {
                    let first = next.fetch_add(PER_REQUEST, Ordering::SeqCst);
                    let http = address.lock().expect("lock").clone();
                    if let Ok(200) = post(&client, &http, first) {
                        acked.lock().expect("lock").insert(first);
                    } else {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
            })
        })
        .collect();

    for cycle in 0..10 {
        std::thread::sleep(Duration::from_millis(600 + 150 * (cycle % 4)));
        weir.child.kill().expect("SIGKILL");
        weir.child.wait().expect("reaped");
        if let Some(log) = weir.log.take() {
            let _ = log.join();
        }
        weir = start(&config);
        *address.lock().expect("lock") = weir.http.clone();
    }
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::SeqCst);
    for l in loaders {
        l.join().expect("loader");
    }

    let acked = acked.lock().expect("lock").clone();
    assert!(
        acked.len() >= 50,
        "the load was too light to prove anything: {} requests",
        acked.len()
    );
    let stored = stored_seqs(&weir.api);
    eprintln!(
        "{} requests acknowledged ({} records), {} records stored",
        acked.len(),
        acked.len() as u64 * PER_REQUEST,
        stored.len()
    );
    let unique: BTreeSet<u64> = stored.iter().copied().collect();
    assert_eq!(unique.len(), stored.len(), "some records are stored twice");
    assert!(
        parquet_files(&dir.path().join("data")) > 0,
        "rows were flushed to Parquet between the kills, so replay met flushed data"
    );
    let missing: Vec<u64> = acked
        .iter()
        .flat_map(|first| *first..*first + PER_REQUEST)
        .filter(|seq| !unique.contains(seq))
        .collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged records are missing, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );

    Command::new("kill")
        .args(["-TERM", &weir.child.id().to_string()])
        .status()
        .expect("kill");
    assert_eq!(weir.child.wait().expect("exit").code(), Some(0));
}

/// Unmounts the tmpfs when the test ends, however it ends.
struct Mounted(std::path::PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Scenario: the store's disk fills up under load, then space is freed.
/// Guarantees: while full, the receiver answers 503 with Retry-After (a
/// retryable error) and keeps running; afterwards it accepts again; every
/// acknowledged record is in the store and queryable.
/// Needs root, to mount a small tmpfs (CI runs as root).
#[test]
fn full_disk_is_retryable_and_loses_nothing() {
    let dir = tempfile::tempdir().expect("tmp");
    let disk = dir.path().join("disk");
    std::fs::create_dir_all(&disk).expect("mkdir");
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=6m", "tmpfs"])
        .arg(&disk)
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        mounted,
        "this test mounts a 6 MiB tmpfs and needs root (scripts/test runs as root in CI)"
    );
    let _unmount = Mounted(disk.clone());
    // Leave about 1.5 MiB free.
    let filler = disk.join("filler");
    std::fs::write(&filler, vec![0u8; 4_600_000]).expect("filler");

    let config = pipeline(dir.path(), &disk.join("data"));
    let mut weir = start(&config);
    let client = reqwest::blocking::Client::new();
    let mut acked = Vec::new();
    let mut refused = 0;
    let mut first = 0;
    while refused < 3 && first < 200_000 {
        let r = client
            .post(format!("http://{}/v1/logs", weir.http))
            .header("content-type", "application/x-protobuf")
            .body(logs(first))
            .send()
            .expect("weir answers even with a full disk");
        match r.status().as_u16() {
            200 => acked.push(first),
            503 => {
                assert!(r.headers().contains_key("retry-after"));
                refused += 1;
            }
            other => panic!(
                "unexpected status {other}: {}",
                r.text().unwrap_or_default()
            ),
        }
        first += PER_REQUEST;
    }
    assert_eq!(refused, 3, "the disk never filled up");
    assert!(!acked.is_empty());

    std::fs::remove_file(&filler).expect("free space");
    let mut accepted_again = false;
    for _ in 0..50 {
        if post(&client, &weir.http, first) == Ok(200) {
            acked.push(first);
            accepted_again = true;
            break;
        }
        first += PER_REQUEST;
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(accepted_again, "weir did not recover once space was free");

    let stored: BTreeSet<u64> = stored_seqs(&weir.api).into_iter().collect();
    for f in &acked {
        for seq in *f..*f + PER_REQUEST {
            assert!(
                stored.contains(&seq),
                "acknowledged record {seq} is missing"
            );
        }
    }
    Command::new("kill")
        .args(["-TERM", &weir.child.id().to_string()])
        .status()
        .expect("kill");
    assert_eq!(weir.child.wait().expect("exit").code(), Some(0));
}
