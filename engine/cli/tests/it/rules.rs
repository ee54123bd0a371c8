//! A `rules` processor in a running pipeline: OTLP spans in, recorded
//! series out as metric points, through `weir run`.

use std::time::{Duration, Instant};

use weir_testkit::prometheus;

use crate::common::{self, WEIR, post_spans as post, repo, start_in};

/// A multiple of 30 s, in seconds since the epoch.
const BASE: u64 = 1_700_000_040;

/// `otlp -> rules -> file` with one recording rule: spans per service
/// every 30 s over 1 m, written to `recorded.jsonl`.
const RECORDING: &str = r#"
[api]
address = "127.0.0.1:0"

[sources.otlp]
type = "otlp"
grpc = false
http_address = "127.0.0.1:0"

[processors.slo]
type = "rules"
inputs = ["otlp.spans"]
every = "30s"

[[processors.slo.rules]]
record = "spans_per_service"
window = "1m"
sql = "SELECT service_name, CAST(count(*) AS DOUBLE) AS value FROM spans GROUP BY service_name"

[sinks.out]
type = "file"
inputs = ["slo"]
path = "recorded.jsonl"
"#;

fn spans(service: &str, offsets: &[u64]) -> String {
    common::otlp_spans(BASE, service, offsets)
}

/// Scenario: `otlp -> rules -> file`, with a recording rule counting spans
/// per service every 30 s over 1 m; three `cart` spans, then one 35 s
/// later. Guarantees: `weir validate` accepts the file; the spans are
/// acknowledged (200); the recorded point for `cart` (value 3) reaches the
/// file sink as OTLP/JSON metrics.
#[test]
fn recording_rule_in_a_pipeline() {
    let dir = tempfile::tempdir().expect("tmp");
    let pipeline = RECORDING;
    let config = dir.path().join("pipeline.toml");
    std::fs::write(&config, pipeline).expect("write pipeline");
    let status = std::process::Command::new(WEIR)
        .args(["validate", "pipeline.toml"])
        .current_dir(dir.path())
        .status()
        .expect("weir validate runs");
    assert!(status.success(), "weir validate accepts the rules");

    let weir = start_in(dir.path(), &config);
    let client = reqwest::blocking::Client::new();
    for body in [spans("cart", &[1, 5, 9]), spans("cart", &[35])] {
        post(&client, &weir.http, body);
    }
    let file = dir.path().join("recorded.jsonl");
    let deadline = Instant::now() + Duration::from_secs(30);
    let written = loop {
        let written = std::fs::read_to_string(&file).unwrap_or_default();
        if written.contains("spans_per_service") || Instant::now() > deadline {
            break written;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        written.contains(r#""name":"spans_per_service""#),
        "{written}"
    );
    assert!(written.contains(r#""asDouble":3.0"#), "{written}");
    assert!(
        written.contains(r#"{"key":"service.name","value":{"stringValue":"cart"}}"#),
        "{written}"
    );
}

/// Guarantees: the rule sets shipped in `pipelines/` pass their own
/// `[[tests]]` (exit 0, every test reported ok).
#[test]
fn shipped_rule_sets_pass_their_tests() {
    let out = std::process::Command::new(WEIR)
        .arg("test")
        .arg(repo("pipelines/alerts.toml"))
        .output()
        .expect("weir test runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("ok: 8 passed, 0 failed"), "{stdout}");
}

/// Guarantees: `pipelines/kafka.toml` runs exactly the rules of
/// `pipelines/alerts.toml` (which its `[[tests]]` cover), with the same
/// settings, fed from its Kafka source instead of OTLP.
#[test]
fn kafka_pipeline_runs_the_alerts_rules() {
    let rules = |file: &str| {
        let plan = weir_cli::load(&repo(file)).expect("the pipeline loads");
        plan.components
            .iter()
            .filter(|c| c.type_name == "rules")
            .map(|c| {
                let config = c
                    .config_as::<weir_rules::RulesConfig>()
                    .expect("a rules config")
                    .clone();
                let inputs: Vec<String> = c
                    .inputs
                    .iter()
                    .map(|i| format!("{}.{}", i.from, i.signals))
                    .collect();
                (c.name.to_string(), config, inputs)
            })
            .collect::<Vec<_>>()
    };
    let (alerts, kafka) = (
        rules("pipelines/alerts.toml"),
        rules("pipelines/kafka.toml"),
    );
    assert_eq!(alerts.len(), 3);
    assert_eq!(alerts.len(), kafka.len());
    for ((name, a, a_in), (k_name, k, k_in)) in alerts.iter().zip(&kafka) {
        assert_eq!(name, k_name);
        assert!(a == k, "the rules of `{name}` differ between the two files");
        let renamed: Vec<String> = a_in.iter().map(|i| i.replace("otlp", "fleet")).collect();
        assert_eq!(&renamed, k_in, "inputs of `{name}`");
    }
}

/// Scenario: a test that expects an alert firing one evaluation too early,
/// a recorded value that is wrong, and an evaluation time off the grid.
/// Guarantees: `weir test` exits 1 and reports each difference under the
/// test's file:line: the alert's state expected and got, the value expected
/// and got, and the time that is not an evaluation time.
#[test]
fn failing_tests_report_the_differences() {
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("rules.toml");
    std::fs::write(
        &file,
        r#"[sources.otlp]
type = "otlp"

[processors.q]
type = "rules"
inputs = ["otlp.metrics"]

[[processors.q.rules]]
alert = "Deep"
window = "1m"
for = "2m"
sql = "SELECT service_name, max(value) AS value FROM metrics GROUP BY service_name HAVING max(value) > 10"

[[processors.q.rules]]
record = "depth:max"
window = "1m"
sql = "SELECT service_name, max(value) AS value FROM metrics GROUP BY service_name"

[sinks.out]
type = "blackhole"
inputs = ["q"]

[[tests]]
name = "too early"
[[tests.series]]
series = 'depth{service_name="w"}'
values = "20x5"
[[tests.alerts]]
at = "1m"
alert = "Deep"
expected = [{ labels = { service_name = "w" } }]
[[tests.recorded]]
at = "1m"
metric = "depth:max"
expected = [{ labels = { service_name = "w" }, value = 21.0 }]

[[tests]]
name = "off the grid"
[[tests.series]]
series = 'depth{service_name="w"}'
values = "1"
[[tests.alerts]]
at = "90s"
alert = "Deep"
"#,
    )
    .expect("write");
    let out = std::process::Command::new(WEIR)
        .arg("test")
        .arg(&file)
        .output()
        .expect("weir test runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("test too early ("), "{stdout}");
    assert!(stdout.contains("rules.toml:23) ... FAILED"), "{stdout}");
    assert!(
        stdout.contains(r#"{service_name="w"}: expected firing, got pending"#),
        "{stdout}"
    );
    assert!(
        stdout.contains(r#"{service_name="w"}: expected 21, got 20"#),
        "{stdout}"
    );
    assert!(
        stdout.contains("1m30s is not an evaluation time: the rules evaluate every 1m"),
        "{stdout}"
    );
    assert!(stdout.contains("FAILED: 0 passed, 2 failed"), "{stdout}");
}

/// The value of the `/metrics` line that starts with `series`, if any.
fn metric(api: &str, series: &str) -> Option<f64> {
    let text = reqwest::blocking::get(format!("http://{api}/metrics"))
        .ok()?
        .text()
        .ok()?;
    prometheus::value(&text, series)
}

/// Scenario: `weir run` with one recording rule; three `cart` spans; the
/// file gains a second rule, one with broken SQL, then a valid one, each
/// followed by SIGHUP; a `shop` span at 10 s; then a `cart` span 35 s
/// later.
/// Guarantees: a pipeline that does not validate changes nothing (counted
/// `invalid`); a valid one is applied without a restart (counted
/// `applied`); `/api/v1/rules` lists the new rule as soon as the processor
/// takes it (health `unknown` until it is evaluated); the new rule
/// evaluates over the rows the processor still holds (value 3 at the first
/// evaluation) and the old one goes on.
#[cfg(unix)]
#[test]
fn sighup_reloads_the_rules() {
    let dir = tempfile::tempdir().expect("tmp");
    let pipeline = RECORDING;
    let config = dir.path().join("pipeline.toml");
    std::fs::write(&config, pipeline).expect("write pipeline");
    let weir = start_in(dir.path(), &config);
    let client = reqwest::blocking::Client::new();
    let post = |body: String| post(&client, &weir.http, body);
    post(spans("cart", &[1, 5, 9]));

    let hangup = |expect: &str, count: f64| {
        let status = std::process::Command::new("kill")
            .args(["-HUP", &weir.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        let series = format!("weir_pipeline_reloads_total{{result=\"{expect}\"}}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while metric(&weir.api, &series) != Some(count) {
            assert!(Instant::now() < deadline, "no {series} {count}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let added = format!(
        "{pipeline}\n[[processors.slo.rules]]\nrecord = \"cart_spans\"\nwindow = \"1m\"\n\
         sql = \"SELECT service_name, CAST(count(*) AS DOUBLE) AS value FROM spans \
         WHERE service_name = 'cart' GROUP BY service_name\"\n"
    );
    std::fs::write(
        &config,
        added.replace("FROM spans WHERE", "FROM spanz WHERE"),
    )
    .expect("write");
    hangup("invalid", 1.0);
    std::fs::write(&config, &added).expect("write");
    hangup("applied", 1.0);
    // The next batch takes the new rules; no evaluation is due yet, so the
    // API shows the new rule listed and not evaluated, the old one evaluated.
    post(spans("shop", &[10]));
    let health = || -> Vec<(String, String)> {
        let body = reqwest::blocking::get(format!("http://{}/api/v1/rules", weir.api))
            .and_then(|r| r.text())
            .expect("GET /api/v1/rules");
        let json: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        json["data"]["groups"][0]["rules"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| {
                let text = |key: &str| r[key].as_str().unwrap_or_default().to_string();
                (text("name"), text("health"))
            })
            .collect()
    };
    let expected = [
        ("spans_per_service".to_string(), "ok".to_string()),
        ("cart_spans".to_string(), "unknown".to_string()),
    ];
    let deadline = Instant::now() + Duration::from_secs(30);
    while health() != expected {
        assert!(Instant::now() < deadline, "{:?}", health());
        std::thread::sleep(Duration::from_millis(100));
    }
    post(spans("cart", &[35]));

    let file = dir.path().join("recorded.jsonl");
    let deadline = Instant::now() + Duration::from_secs(30);
    let written = loop {
        let written = std::fs::read_to_string(&file).unwrap_or_default();
        let both = written.contains(r#""name":"cart_spans""#)
            && written.contains(r#""name":"spans_per_service""#);
        if both || Instant::now() > deadline {
            break written;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(written.contains(r#""name":"cart_spans""#), "{written}");
    assert!(
        written.contains(r#""name":"spans_per_service""#),
        "{written}"
    );
    assert_eq!(
        written.matches(r#""asDouble":3.0"#).count(),
        2,
        "both rules count the three spans: {written}"
    );
    assert_eq!(
        metric(
            &weir.api,
            "weir_rule_reloads_total{component=\"slo\",result=\"ok\"}"
        ),
        Some(1.0)
    );
}
