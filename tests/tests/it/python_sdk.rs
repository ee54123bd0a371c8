//! The OpenTelemetry Python SDK, with its real OTLP gRPC and HTTP exporters,
//! sending to a running Weir. `scripts/test` installs the SDK into a venv and
//! sets `WEIR_TEST_PYTHON`.

use std::collections::BTreeSet;
use std::process::Command;

use weir_testkit::backends::Rotel;
use weir_testkit::engine::{self, Weir};
use weir_testkit::kv;

const COUNT: usize = 250;

pub(crate) fn python() -> String {
    std::env::var("WEIR_TEST_PYTHON").unwrap_or_else(|_| {
        panic!(
            "WEIR_TEST_PYTHON is not set: run the suite with `scripts/test`, which installs \
             the OpenTelemetry Python SDK into target/test-venv and sets it"
        )
    })
}

fn send(transport: &str, endpoint: &str, tag: &str) {
    send_recording(transport, endpoint, tag, None);
}

/// Runs `send.py`; with `record`, it writes what it exported there.
fn send_recording(transport: &str, endpoint: &str, tag: &str, record: Option<&std::path::Path>) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/send.py");
    let mut command = Command::new(python());
    command.args([script, transport, endpoint, &COUNT.to_string(), tag]);
    if let Some(record) = record {
        command.arg(record);
    }
    let out = command.output().expect("python runs");
    assert!(
        out.status.success(),
        "the Python SDK reported failed exports over {transport}:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Scenario: the Python SDK sends 250 spans, 250 logs and 250 metric points
/// over gRPC and again over HTTP/protobuf.
/// Guarantees: every record arrives exactly once, with its attribute values
/// and types, ids and resource intact.
#[tokio::test(flavor = "multi_thread")]
async fn python_sdk_over_grpc_and_http_loses_nothing() {
    let weir = Weir::start("").await;
    let (grpc, http) = (weir.grpc(), weir.http());
    tokio::task::spawn_blocking(move || {
        send("grpc", &grpc, "via-grpc");
        send("http", &http, "via-http");
    })
    .await
    .expect("senders");
    let got = weir.stop().await;

    let spans = got.spans();
    assert_eq!(spans.len(), 2 * COUNT);
    for tag in ["via-grpc", "via-http"] {
        let mine: Vec<_> = spans
            .iter()
            .filter(|s| kv::get_str(&s.attributes, "test.tag") == Some(tag))
            .collect();
        assert_eq!(mine.len(), COUNT, "{tag}");
        let is: BTreeSet<i64> = mine
            .iter()
            .filter_map(|s| kv::get_int(&s.attributes, "i"))
            .collect();
        assert_eq!(
            is.len(),
            COUNT,
            "every span's int attribute `i` is back, as an int"
        );
    }
    let s = spans[0];
    assert_eq!(s.trace_id.len(), 16);
    assert_eq!(s.span_id.len(), 8);
    assert!(s.end_time_unix_nano >= s.start_time_unix_nano && s.start_time_unix_nano > 0);
    assert_eq!(s.events.len(), 1);
    let types: BTreeSet<&str> = s
        .attributes
        .iter()
        .filter_map(|kv| kv.value.as_ref()?.value.as_ref())
        .map(kv::type_name)
        .collect();
    assert_eq!(
        types,
        BTreeSet::from(["string", "int", "double", "bool", "array"])
    );
    let services: BTreeSet<String> = got
        .traces
        .iter()
        .flat_map(|r| &r.resource_spans)
        .filter_map(|r| r.resource.as_ref())
        .filter_map(|r| kv::get_str(&r.attributes, "service.name"))
        .map(str::to_string)
        .collect();
    assert_eq!(
        services,
        BTreeSet::from(["py-grpc".to_string(), "py-http".to_string()])
    );

    let logs = got.log_records();
    assert_eq!(logs.len(), 2 * COUNT);
    assert!(
        logs.iter().all(|l| l.severity_number == 13),
        "WARNING maps to severity 13"
    );
    let bodies: BTreeSet<String> = logs
        .iter()
        .filter_map(|l| kv::as_str(l.body.as_ref()?))
        .map(str::to_string)
        .collect();
    assert_eq!(bodies.len(), COUNT, "log bodies `log line N` for every N");

    assert_eq!(got.data_points(), 2 * COUNT);
    assert!(got.metric_names().iter().all(|n| n == "e2e.requests"));
}

/// A running Weir: OTLP on port 0 into the embedded store in a temp dir.
async fn start_with_store(dir: &std::path::Path) -> weir_cli::Started {
    engine::start(&format!(
        r#"
[api]
address = "127.0.0.1:0"

[store]
path = "{}"

[sources.otlp]
type = "otlp"
grpc_address = "127.0.0.1:0"
http_address = "127.0.0.1:0"

[sinks.store]
type = "store"
inputs = ["otlp"]
"#,
        dir.display()
    ))
    .await
}

/// The rows of `sql`, through the SQL endpoint's JSON format.
pub(crate) async fn sql(api: std::net::SocketAddr, sql: &str) -> Vec<serde_json::Value> {
    let response = reqwest::Client::new()
        .post(format!("http://{api}/api/v1/sql?format=json"))
        .header("content-type", "text/plain")
        .body(sql.to_string())
        .send()
        .await
        .expect("the SQL endpoint answers");
    let status = response.status();
    let text = response.text().await.expect("an answer");
    let body: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{sql}: not JSON ({e}): {text}"));
    assert!(status.is_success(), "{sql}: {status} {body}");
    body["rows"].as_array().expect("rows").clone()
}

/// One comparable line per record, sorted: what the SDK exported, or what
/// SQL returned (a multiset, so a duplicate would show).
fn lines(rows: impl IntoIterator<Item = serde_json::Value>, keys: &[&str]) -> Vec<String> {
    let mut lines: Vec<String> = rows
        .into_iter()
        .map(|row| {
            keys.iter()
                .map(|k| match &row[*k] {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join(" | ")
        })
        .collect();
    lines.sort();
    lines
}

/// Scenario: the Python SDK sends 250 spans, 250 logs and 250 metric points
/// over gRPC and again over HTTP/protobuf into the embedded store; SQL reads
/// them back through the API server.
/// Guarantees: `count(*)` of each table is exactly what was sent, and every
/// span's trace and span id, start and end time, name and int attribute,
/// every log's time, body, severity and attribute, and every point's times,
/// value and attribute read back equal to what the SDK exported.
#[tokio::test(flavor = "multi_thread")]
async fn python_sdk_records_are_all_queryable_from_the_store() {
    let dir = tempfile::tempdir().expect("temp dir");
    let weir = start_with_store(&dir.path().join("data")).await;
    let grpc = format!("http://{}", weir.listener("otlp/grpc").expect("grpc"));
    let http = format!("http://{}", weir.listener("otlp/http").expect("http"));
    let (rec_grpc, rec_http) = (dir.path().join("grpc.jsonl"), dir.path().join("http.jsonl"));
    let (a, b) = (rec_grpc.clone(), rec_http.clone());
    tokio::task::spawn_blocking(move || {
        send_recording("grpc", &grpc, "via-grpc", Some(&a));
        send_recording("http", &http, "via-http", Some(&b));
    })
    .await
    .expect("senders");
    let api = weir.api_addr.expect("api bound");
    assert_store_holds_what_was_sent(api, &[rec_grpc, rec_http]).await;
    let report = weir.stop().await;
    assert!(report.is_clean(), "weir stopped with errors: {report:?}");
}

/// Checks that the store behind `api` holds exactly the records the SDK
/// exported (the files `send.py` wrote): `count(*)` of each table, and
/// every span's trace and span id, start and end time, name and int
/// attribute, every log's time, body, severity and attribute, and every
/// point's times, value and attribute.
async fn assert_store_holds_what_was_sent(
    api: std::net::SocketAddr,
    records: &[std::path::PathBuf],
) {
    let mut sent: Vec<serde_json::Value> = Vec::new();
    for file in records {
        let text = std::fs::read_to_string(file).expect("the sender's record");
        sent.extend(
            text.lines()
                .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("JSON line")),
        );
    }
    let of = |signal: &str| {
        sent.iter()
            .filter(|v| v["signal"] == signal)
            .cloned()
            .collect::<Vec<_>>()
    };
    let (spans, logs, points) = (of("span"), of("log"), of("point"));
    assert_eq!(
        (spans.len(), logs.len(), points.len()),
        (
            records.len() * COUNT,
            records.len() * COUNT,
            records.len() * COUNT
        ),
        "the SDK exported what it was asked to"
    );

    for (table, n) in [
        ("spans", spans.len()),
        ("logs", logs.len()),
        ("metrics", points.len()),
    ] {
        let rows = sql(api, &format!("SELECT count(*) AS n FROM {table}")).await;
        assert_eq!(rows[0]["n"], serde_json::json!(n), "count(*) of {table}");
    }

    // Int attributes come back as their decimal text (the `i` type letter
    // says they are ints); ids as lowercase hex; times as ns since the epoch.
    let stored = sql(
        api,
        "SELECT trace_id, span_id, CAST(start_time AS BIGINT) AS start, \
         CAST(end_time AS BIGINT) AS \"end\", name, CAST(attributes['i'] AS BIGINT) AS i, \
         attributes_types FROM spans",
    )
    .await;
    assert!(
        stored.iter().all(|r| r["attributes_types"]
            .as_str()
            .is_some_and(|t| t.contains('i'))),
        "attribute types are kept"
    );
    let keys = ["trace_id", "span_id", "start", "end", "name", "i"];
    assert_eq!(
        lines(stored, &keys),
        lines(spans, &keys),
        "spans read back equal"
    );

    let stored = sql(
        api,
        "SELECT CAST(time AS BIGINT) AS time, body, severity_number AS severity, \
         CAST(attributes['i'] AS BIGINT) AS i FROM logs",
    )
    .await;
    let keys = ["time", "body", "severity", "i"];
    assert_eq!(
        lines(stored, &keys),
        lines(logs, &keys),
        "logs read back equal"
    );

    let stored = sql(
        api,
        "SELECT CAST(time AS BIGINT) AS time, CAST(start_time AS BIGINT) AS start, \
         int_value AS value, CAST(attributes['i'] AS BIGINT) AS i FROM metrics",
    )
    .await;
    let keys = ["time", "start", "value", "i"];
    assert_eq!(
        lines(stored, &keys),
        lines(points, &keys),
        "metric points read back equal"
    );
}

/// Scenario: the Python SDK sends 250 spans, 250 logs and 250 metric points
/// over gRPC to a first Weir whose `otlp` sink forwards them over gRPC to
/// Rotel (OTLP receiver, OTLP exporter), which exports them to a second
/// Weir with the embedded store.
/// Guarantees: the second Weir's store holds exactly what the SDK exported
/// to the first, for all three signals (counts and content, as above).
#[tokio::test(flavor = "multi_thread")]
async fn python_sdk_through_weir_rotel_weir_arrives_equal() {
    let dir = tempfile::tempdir().expect("temp dir");
    let last = start_with_store(&dir.path().join("data")).await;
    let last_grpc = format!("http://{}", last.listener("otlp/grpc").expect("grpc"));
    let rotel = Rotel::start(
        &python(),
        &dir.path().join("rotel.log"),
        &["--exporter", "otlp", "--otlp-exporter-endpoint", &last_grpc],
    );
    let first = engine::start(&format!(
        r#"
[api]
address = "127.0.0.1:0"

[sources.otlp]
type = "otlp"
grpc_address = "127.0.0.1:0"
http_address = "127.0.0.1:0"

[sinks.rotel]
type = "otlp"
inputs = ["otlp"]
endpoint = "http://{}"
batch_timeout = "50ms"
"#,
        rotel.grpc
    ))
    .await;
    let grpc = format!("http://{}", first.listener("otlp/grpc").expect("grpc"));
    let record = dir.path().join("sent.jsonl");
    let sent = record.clone();
    tokio::task::spawn_blocking(move || send_recording("grpc", &grpc, "forwarded", Some(&sent)))
        .await
        .expect("sender");
    // Rotel answers before it exports: wait until the last Weir has it all.
    let api = last.api_addr.expect("api bound");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    for table in ["spans", "logs", "metrics"] {
        loop {
            let rows = sql(api, &format!("SELECT count(*) AS n FROM {table}")).await;
            if rows[0]["n"].as_u64().unwrap_or(0) >= COUNT as u64 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{table}: {} of {COUNT} arrived; rotel's log:\n{}",
                rows[0]["n"],
                rotel.log()
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
    assert_store_holds_what_was_sent(api, &[record]).await;
    for weir in [first, last] {
        let report = weir.stop().await;
        assert!(report.is_clean(), "weir stopped with errors: {report:?}");
    }
}
