//! Lookup tables as a plugin reads them: the `enrich` plugin (built from
//! `plugins/enrich`) looks up a CSV table by exact key and another by CIDR
//! through the host's `lookup` interface, sees a changed file after the
//! host reloads it, and a missing file or an unknown table stops the start
//! with the component, the table and the key named.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use weir_core::{Ack, Batch, Processor, Signal};
use weir_testkit::kv;
use weir_testkit::otlp::{self, Group};
use weir_wasm::columns::{AttributeSet, read_attribute};
use weir_wasm::{LookupFile, MatchMode, Runtime, WasmConfig, WasmProcessor};

use crate::common;

fn runtime() -> Arc<Runtime> {
    static R: OnceLock<Arc<Runtime>> = OnceLock::new();
    R.get_or_init(|| Runtime::new(None).expect("runtime"))
        .clone()
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).expect("the test writes its file");
}

/// The enrich plugin with tables `teams` (CSV keyed by `service`) and
/// `nets` (CSV of networks, CIDR match).
fn config(dir: &Path, plugin_config: &str) -> WasmConfig {
    let mut c = WasmConfig::new(common::enrich());
    c.instances = Some(1);
    c.config = plugin_config.to_string();
    c.lookups = BTreeMap::from([
        (
            "teams".to_string(),
            LookupFile {
                key: Some("service".to_string()),
                ..LookupFile::new(dir.join("teams.csv"))
            },
        ),
        (
            "nets".to_string(),
            LookupFile {
                match_mode: MatchMode::Cidr,
                ..LookupFile::new(dir.join("nets.csv"))
            },
        ),
    ]);
    c
}

const CONFIG: &str = r#"{"lookups": [
    {"table": "teams", "from": "service_name", "columns": {"team": "team.name", "owner": "team.owner"}},
    {"table": "nets", "from": "record.client.address", "columns": {"zone": "network.zone"}}
]}"#;

/// Logs of `service`, one per client address.
fn logs(service: &str, clients: &[&str]) -> Batch {
    let records = clients.iter().map(|c| {
        let mut r = otlp::log(1, 9, "x");
        r.attributes = vec![kv::string("client.address", *c)];
        r
    });
    let request = Group::new(records).service(service).logs();
    let data = weir_core::convert::logs_to_batch(&request)
        .expect("converts")
        .batch;
    Batch::new(Signal::Logs, data, Ack::none())
}

/// Runs `batch` and returns its one output.
async fn run(p: &mut WasmProcessor, batch: Batch) -> Batch {
    let mut out = Vec::new();
    p.process(batch, &mut out).await.expect("processed");
    assert_eq!(out.len(), 1, "one output");
    out.remove(0)
}

fn attribute(batch: &Batch, set: AttributeSet, key: &str) -> Vec<Option<String>> {
    read_attribute(batch.data(), set, key).expect("attributes")
}

fn some(values: &[&str]) -> Vec<Option<String>> {
    values.iter().map(|v| Some(v.to_string())).collect()
}

/// Scenario: CSV tables by exact key and by network, read by the plugin.
/// Guarantees: the columns of the row found land in the attributes named;
/// an address in no network, or not an address, gets nothing.
#[tokio::test(flavor = "multi_thread")]
async fn the_plugin_reads_exact_and_cidr_tables() {
    let dir = tempfile::tempdir().expect("a temp dir");
    write(
        &dir.path().join("teams.csv"),
        "team,service,owner\npayments,checkout,ana\n",
    );
    write(
        &dir.path().join("nets.csv"),
        "cidr,zone\n10.0.0.0/8,corp\n10.1.0.0/16,eu\n2001:db8::/32,doc\n",
    );
    let mut p = WasmProcessor::new("enrich", &config(dir.path(), CONFIG), runtime())
        .await
        .expect("starts");
    let out = run(
        &mut p,
        logs(
            "checkout",
            &["10.1.2.3", "10.9.9.9", "2001:db8::1", "192.0.2.1", "web-1"],
        ),
    )
    .await;
    assert_eq!(
        attribute(&out, AttributeSet::Resource, "team.name"),
        some(&["payments"; 5])
    );
    assert_eq!(
        attribute(&out, AttributeSet::Resource, "team.owner"),
        some(&["ana"; 5])
    );
    assert_eq!(
        attribute(&out, AttributeSet::Record, "network.zone"),
        [
            Some("eu".to_string()),
            Some("corp".to_string()),
            Some("doc".to_string()),
            None,
            None
        ]
    );
}

/// Scenario: the CSV file changes while the pipeline runs. Guarantees:
/// the plugin sees the new rows once the host has reloaded the file (the
/// test waits for that, checking batch after batch).
#[tokio::test(flavor = "multi_thread")]
async fn the_plugin_sees_a_changed_file() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let teams = dir.path().join("teams.csv");
    write(&teams, "service,team\ncheckout,payments\n");
    write(&dir.path().join("nets.csv"), "cidr,zone\n");
    let mut p = WasmProcessor::new("enrich", &config(dir.path(), CONFIG), runtime())
        .await
        .expect("starts");
    let team = |b: &Batch| attribute(b, AttributeSet::Resource, "team.name");
    assert_eq!(team(&run(&mut p, logs("cart", &["x"])).await), [None]);
    write(
        &teams,
        "service,team\ncheckout,payments\ncart,shop-frontend\n",
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let seen = team(&run(&mut p, logs("cart", &["x"])).await);
        if seen == some(&["shop-frontend"]) {
            break;
        }
        assert!(Instant::now() < deadline, "the change was never seen");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Scenario: a table's file is missing; the plugin names a table the
/// pipeline does not give. Guarantees: the start fails, naming the
/// component, the table and the file, or the plugin's config key.
#[tokio::test(flavor = "multi_thread")]
async fn bad_tables_fail_the_start() {
    let dir = tempfile::tempdir().expect("a temp dir");
    write(&dir.path().join("nets.csv"), "cidr,zone\n");
    let e = WasmProcessor::new("enrich", &config(dir.path(), CONFIG), runtime())
        .await
        .expect_err("refused")
        .to_string();
    assert!(
        e.contains("enrich") && e.contains("lookup table `teams`") && e.contains("teams.csv"),
        "{e}"
    );
    write(&dir.path().join("teams.csv"), "service,team\n");
    let unknown = r#"{"lookups": [{"table": "owners", "from": "service_name"}]}"#;
    let e = WasmProcessor::new("enrich", &config(dir.path(), unknown), runtime())
        .await
        .expect_err("refused")
        .to_string();
    assert!(
        e.contains("enrich")
            && e.contains("config key `lookups[0].table`")
            && e.contains("no lookup table `owners`"),
        "{e}"
    );
}
