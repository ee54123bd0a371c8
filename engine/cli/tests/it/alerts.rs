//! Alerts end to end, through `weir run`: OTLP spans in, an alert rule
//! firing and resolving, its notifications at a real Alertmanager (Debian's
//! `prometheus-alertmanager`) and at a webhook, its events in the store's
//! `alerts` table.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use crate::common::{self, start_in};

/// The Alertmanager binary: `WEIR_TEST_ALERTMANAGER`, else
/// `prometheus-alertmanager` on the PATH (scripts/test installs it).
fn alertmanager_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("WEIR_TEST_ALERTMANAGER") {
        return path.into();
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("prometheus-alertmanager"))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "this test needs Alertmanager: install Debian's `prometheus-alertmanager` \
             (scripts/test does) or set WEIR_TEST_ALERTMANAGER to its binary"
        )
    })
}

/// An Alertmanager child process, killed on drop.
struct Alertmanager {
    child: Child,
    url: String,
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Starts Alertmanager in `dir`, routing every alert to the webhook at
/// `hook` with resolved notifications, and waits until it is ready.
fn start_alertmanager(dir: &Path, hook: &str) -> Alertmanager {
    let config = format!(
        "route:\n  receiver: hook\n  group_by: [alertname]\n  group_wait: 1s\n  \
         group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: hook\n    \
         webhook_configs:\n      - url: {hook}\n        send_resolved: true\n"
    );
    std::fs::write(dir.join("alertmanager.yml"), config).expect("write config");
    let port = free_port();
    let child = Command::new(alertmanager_binary())
        .arg(format!(
            "--config.file={}",
            dir.join("alertmanager.yml").display()
        ))
        .arg(format!("--storage.path={}", dir.join("am-data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("alertmanager starts");
    let am = Alertmanager {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = reqwest::blocking::get(format!("{}/-/ready", am.url))
            .is_ok_and(|r| r.status().is_success());
        if ready {
            return am;
        }
        assert!(Instant::now() < deadline, "alertmanager did not get ready");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A webhook receiver: keeps the JSON body of every POST, answers 200.
#[derive(Clone, Default)]
struct Hook {
    bodies: Arc<Mutex<Vec<Value>>>,
}

impl Hook {
    fn start() -> (Hook, String) {
        let hook = Hook::default();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        let bodies = hook.bodies.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let bodies = bodies.clone();
                std::thread::spawn(move || serve(&mut stream, &bodies));
            }
        });
        (hook, url)
    }

    fn bodies(&self) -> Vec<Value> {
        self.bodies.lock().expect("lock").clone()
    }

    /// Waits until a message with `status` has come.
    fn wait_for(&self, status: &str, what: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(m) = self.bodies().into_iter().find(|b| b["status"] == status) {
                return m;
            }
            assert!(
                Instant::now() < deadline,
                "{what} sent no `{status}` message; got {:?}",
                self.bodies()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// One HTTP/1.1 connection: reads requests, keeps their bodies.
fn serve(stream: &mut std::net::TcpStream, bodies: &Mutex<Vec<Value>>) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    loop {
        let mut length = 0usize;
        let mut line = String::new();
        let mut first = true;
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if first && line.trim().is_empty() {
                continue;
            }
            first = false;
            if line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        if let Ok(json) = serde_json::from_slice(&body) {
            bodies.lock().expect("lock").push(json);
        }
        let reply = "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
        if stream.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

/// GETs `url`, checks the status is `status` and returns the JSON body.
fn get_json(url: &str, status: u16) -> Value {
    let response = reqwest::blocking::Client::new()
        .get(url)
        .timeout(Duration::from_secs(30))
        .send()
        .expect("weir answers");
    assert_eq!(response.status().as_u16(), status, "GET {url}");
    let body = response.text().expect("a body");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {url}: {e}: {body}"))
}

/// An RFC 3339 time of Alertmanager's JSON.
fn time(value: &Value) -> SystemTime {
    let text = value.as_str().unwrap_or_default();
    humantime::parse_rfc3339(text).unwrap_or_else(|e| panic!("`{text}`: {e}"))
}

/// The alerts Alertmanager lists (active ones; resolved ones it drops).
fn listed(am: &Alertmanager) -> Vec<Value> {
    reqwest::blocking::get(format!("{}/api/v2/alerts", am.url))
        .and_then(|r| r.bytes())
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// Scenario: `otlp -> rules -> alertmanager, webhook, store` with an
/// alert on three or more `cart` spans in a minute (`for = 0s`), at event
/// times of a couple of minutes ago. Three spans, then one 35 s later: the
/// evaluation at +30 s fires. A span at +95 s moves event time on: at +90 s
/// the window holds no `cart` span and the alert resolves.
/// Guarantees: the real Alertmanager lists the alert as active, with its
/// templated annotation, then no longer lists it and notifies its own
/// receiver that it resolved (firing, then resolved); the webhook sink
/// sends Alertmanager's webhook JSON for both; the store's `alerts` table
/// holds the firing and resolved transitions and notifications; the
/// alert's `generatorURL` leads to the rule in Weir's API (firing, then
/// inactive), and `/api/v1/alerts` lists the firing alert.
#[test]
fn alert_fires_and_resolves_at_a_real_alertmanager() {
    let dir = tempfile::tempdir().expect("tmp");
    let (am_hook, am_hook_url) = Hook::start();
    let am = start_alertmanager(dir.path(), &am_hook_url);
    let (hook, hook_url) = Hook::start();
    let pipeline = format!(
        r#"
[api]
address = "127.0.0.1:0"

[store]
path = "data"

[sources.otlp]
type = "otlp"
grpc = false
http_address = "127.0.0.1:0"

[processors.slo]
type = "rules"
inputs = ["otlp.spans"]
every = "30s"

[[processors.slo.rules]]
alert = "CartIsBusy"
window = "1m"
sql = "SELECT service_name, CAST(count(*) AS DOUBLE) AS value FROM spans WHERE service_name = 'cart' GROUP BY service_name HAVING count(*) >= 3"
labels = {{ severity = "page" }}
annotations = {{ summary = "{{{{ $labels.service_name }}}} ran {{{{ $value }}}} spans" }}

[sinks.am]
type = "alertmanager"
inputs = ["slo.alerts"]
urls = ["{am_url}"]

[sinks.hook]
type = "webhook"
inputs = ["slo.alerts"]
url = "{hook_url}"
retry = {{ initial_backoff = "100ms", max_backoff = "1s" }}

[sinks.store]
type = "store"
inputs = ["slo"]
"#,
        am_url = am.url,
    );
    let config = dir.path().join("pipeline.toml");
    std::fs::write(&config, pipeline).expect("write pipeline");
    let weir = start_in(dir.path(), &config);

    let now = weir_testkit::time::now_secs();
    let base = now / 30 * 30 - 120;
    let client = reqwest::blocking::Client::new();
    let send = |body: String| common::post_spans(&client, &weir.http, body);
    send(common::otlp_spans(base, "cart", &[1, 5, 9]));
    send(common::otlp_spans(base, "shop", &[35]));

    let deadline = Instant::now() + Duration::from_secs(60);
    let active = loop {
        let alerts = listed(&am);
        if let Some(a) = alerts
            .into_iter()
            .find(|a| a["labels"]["alertname"] == "CartIsBusy")
        {
            break a;
        }
        assert!(
            Instant::now() < deadline,
            "Alertmanager never listed the alert"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(active["status"]["state"], "active", "{active}");
    assert_eq!(active["labels"]["service_name"], "cart");
    assert_eq!(active["labels"]["severity"], "page");
    assert_eq!(active["annotations"]["summary"], "cart ran 3 spans");
    let generator = active["generatorURL"].as_str().unwrap_or_default();
    assert_eq!(
        generator,
        format!("http://{}/rules/CartIsBusy", weir.api),
        "{active}"
    );
    // The link leads to the rule, firing, as Prometheus' /api/v1/rules shows it.
    let page: Value = get_json(generator, 200);
    let rule = &page["data"]["groups"][0]["rules"][0];
    assert_eq!(page["data"]["groups"][0]["name"], "slo", "{page}");
    assert_eq!(rule["name"], "CartIsBusy", "{page}");
    assert_eq!(rule["type"], "alerting");
    assert_eq!(rule["state"], "firing");
    assert_eq!(rule["health"], "ok");
    assert_eq!(rule["alerts"][0]["labels"]["service_name"], "cart");
    assert_eq!(
        rule["alerts"][0]["annotations"]["summary"],
        "cart ran 3 spans"
    );
    assert_eq!(rule["alerts"][0]["value"], "3");
    let alerts: Value = get_json(&format!("http://{}/api/v1/alerts", weir.api), 200);
    assert_eq!(alerts["data"]["alerts"][0]["state"], "firing", "{alerts}");
    let missing: Value = get_json(&format!("http://{}/rules/Nope", weir.api), 404);
    assert!(
        missing["error"]
            .as_str()
            .unwrap_or_default()
            .contains("`Nope`"),
        "{missing}"
    );
    let firing = am_hook.wait_for("firing", "Alertmanager");
    assert_eq!(firing["alerts"][0]["labels"]["alertname"], "CartIsBusy");
    let sent = hook.wait_for("firing", "the webhook sink");
    assert_eq!(sent["version"], "4");
    assert_eq!(
        sent["alerts"][0]["annotations"]["summary"],
        "cart ran 3 spans"
    );

    send(common::otlp_spans(base, "shop", &[95]));
    let resolved = am_hook.wait_for("resolved", "Alertmanager");
    assert_eq!(resolved["alerts"][0]["status"], "resolved");
    assert_eq!(resolved["alerts"][0]["labels"]["service_name"], "cart");
    // Alertmanager also resolves an alert by itself once the `endsAt` of
    // its last firing notification passes; the resolution must be Weir's,
    // which ends the alert at the evaluation that resolved it, earlier.
    let expires = time(&active["endsAt"]);
    let ended = time(&resolved["alerts"][0]["endsAt"]);
    assert!(
        ended < expires,
        "Alertmanager resolved the alert at {ended:?} by itself, not told by Weir \
         (the firing alert was valid until {expires:?}): {resolved}"
    );
    assert!(
        listed(&am)
            .iter()
            .all(|a| a["labels"]["alertname"] != "CartIsBusy"),
        "a resolved alert is no longer active"
    );
    let resolved = hook.wait_for("resolved", "the webhook sink");
    let ends = resolved["alerts"][0]["endsAt"].as_str().unwrap_or_default();
    assert_ne!(ends, "0001-01-01T00:00:00Z", "{resolved}");
    let page: Value = get_json(generator, 200);
    let rule = &page["data"]["groups"][0]["rules"][0];
    assert_eq!(rule["state"], "inactive", "{page}");
    assert_eq!(rule["alerts"], Value::Array(Vec::new()), "{page}");

    // The store sink takes the alert events beside the notifying sinks, so
    // it may not have them yet when the webhook has.
    let expected = [
        "transition,firing,cart",
        "notification,firing,cart",
        "transition,resolved,cart",
        "notification,resolved,cart",
    ];
    let deadline = Instant::now() + Duration::from_secs(30);
    let csv = loop {
        let csv = client
            .post(format!("http://{}/api/v1/sql?format=csv", weir.api))
            .header("content-type", "text/plain")
            .body(
                "SELECT kind, state, labels['service_name'] AS service FROM alerts \
                 WHERE rule = 'CartIsBusy' ORDER BY time, kind DESC",
            )
            .timeout(Duration::from_secs(60))
            .send()
            .expect("sql")
            .text()
            .expect("csv");
        if csv.lines().count() > expected.len() || Instant::now() > deadline {
            break csv;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(rows, expected, "{csv}");
}
