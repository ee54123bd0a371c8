//! The SQL endpoints of a running `weir run`: spans sent over OTLP are
//! read back through the Postgres wire protocol (psql), Arrow Flight SQL
//! (pyarrow.flight) and HTTP, all behind `[query.auth]`; and an endpoint
//! exposed beyond loopback without credentials stops the start.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::{self, Weir};

const PASSWORD: &str = "pg-password-1";
const TOKEN: &str = "http-token-2";

fn pipeline(dir: &Path, postgres: &str) -> std::path::PathBuf {
    std::fs::write(dir.join("password"), PASSWORD).expect("password");
    std::fs::write(dir.join("token"), format!("{TOKEN}\n")).expect("token");
    store_pipeline(
        dir,
        &format!(
            r#"
[api]
address = "127.0.0.1:0"

[query.auth]
users = [{{ name = "grafana", password = {{ file = "{password}" }} }}]
tokens = [{{ file = "{token}" }}]

[query.postgres]
address = "{postgres}"

[query.flight]
address = "127.0.0.1:0"
"#,
            password = dir.join("password").display(),
            token = dir.join("token").display(),
        ),
    )
}

/// Writes `weir.toml` in `dir`: `settings` (the engine's tables), then the
/// store in `dir/data` fed by an OTLP source on port 0.
fn store_pipeline(dir: &Path, settings: &str) -> std::path::PathBuf {
    let config = dir.join("weir.toml");
    std::fs::write(
        &config,
        format!(
            r#"{settings}
[store]
path = "{store}"

[sources.otlp]
type = "otlp"
grpc_address = "127.0.0.1:0"
http_address = "127.0.0.1:0"

[sinks.store]
type = "store"
inputs = ["otlp"]
"#,
            store = dir.join("data").display()
        ),
    )
    .expect("pipeline");
    config
}

/// The address Weir logged for `listener` (`query/postgres`).
fn listener(weir: &Weir, listener: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let found = weir.lines.lock().expect("lock").iter().find_map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).ok()?;
            (v["fields"]["listener"] == listener)
                .then(|| v["fields"]["address"].as_str().map(str::to_string))
                .flatten()
        });
        if let Some(address) = found {
            return address;
        }
        assert!(Instant::now() < deadline, "{listener} not logged");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn psql(address: &str, password: &str, sql: &str) -> std::process::Output {
    let (host, port) = address.rsplit_once(':').expect("host:port");
    Command::new("psql")
        .arg(format!(
            "host={host} port={port} user=grafana dbname=weir sslmode=disable connect_timeout=10"
        ))
        .args(["-X", "-A", "-t", "-c", sql])
        .env("PGPASSWORD", password)
        .output()
        .expect("psql runs: install postgresql-client (scripts/test does)")
}

/// Scenario: five spans sent over OTLP/HTTP to `weir run` with the store
/// and every SQL endpoint on, credentials required. Guarantees: psql (with
/// the password), pyarrow.flight (basic authentication, then its token) and
/// HTTP (bearer token or basic) each count five; HTTP without credentials
/// gets 401 and a cross-site browser request is refused.
#[test]
fn every_endpoint_reads_what_otlp_sent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = pipeline(dir.path(), "127.0.0.1:0");
    let weir = common::start(&config);
    let client = reqwest::blocking::Client::new();
    let base = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        - 60;
    common::post_spans(
        &client,
        &weir.http,
        common::otlp_spans(base, "checkout", &[0, 1, 2, 3, 4]),
    );
    let postgres = listener(&weir, "query/postgres");
    let flight = listener(&weir, "query/flight");
    let count = "SELECT count(*) FROM spans WHERE service_name = 'checkout'";

    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = psql(&postgres, PASSWORD, count);
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if text == "5" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "psql saw {text:?}: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            common::log_tail(&weir)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let denied = psql(&postgres, "wrong", count);
    assert!(!denied.status.success(), "a wrong password signed in");

    let python = std::env::var("WEIR_TEST_PYTHON").expect(
        "WEIR_TEST_PYTHON is not set: run the suite with `scripts/test`, which installs pyarrow",
    );
    let script = format!(
        r#"
import base64, pyarrow.flight as fl
def field(n, b):
    out, v = bytearray(), len(b)
    while True:
        out.append((v & 0x7F) | (0x80 if v >> 7 else 0)); v >>= 7
        if not v: break
    return bytes([(n << 3) | 2]) + bytes(out) + b
cmd = field(1, b"type.googleapis.com/arrow.flight.protocol.sql.CommandStatementQuery") + field(2, field(1, {count:?}.encode()))
c = fl.FlightClient("grpc://{flight}")
opts = fl.FlightCallOptions(headers=[c.authenticate_basic_token("grafana", "{PASSWORD}")])
info = c.get_flight_info(fl.FlightDescriptor.for_command(cmd), opts)
print(c.do_get(info.endpoints[0].ticket, opts).read_all().column(0)[0].as_py())
"#
    );
    let out = Command::new(python)
        .args(["-c", &script])
        .output()
        .expect("python runs");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "5",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let sql = format!("http://{}/api/v1/sql?format=csv", weir.api);
    let open = client.post(&sql).body(count).send().expect("answers");
    assert_eq!(open.status().as_u16(), 401);
    for auth in [
        format!("Bearer {TOKEN}"),
        format!(
            "Basic {}",
            base64_encode(format!("grafana:{PASSWORD}").as_bytes())
        ),
    ] {
        let answer = client
            .post(&sql)
            .header("authorization", &auth)
            .body(count)
            .send()
            .expect("answers");
        assert_eq!(answer.status().as_u16(), 200, "{auth}");
        assert!(answer.text().expect("body").ends_with("5\n"));
    }
    let cross = client
        .post(&sql)
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("origin", "https://attacker.example")
        .body(count)
        .send()
        .expect("answers");
    assert_eq!(cross.status().as_u16(), 400);
    common::stop(weir);
}

/// Standard base64, for a Basic header.
fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Scenario: the Postgres endpoint on 0.0.0.0 with no `[query.auth]`
/// users. Guarantees: `weir run` refuses to start and says how to fix it.
#[test]
fn open_endpoints_beyond_loopback_stop_the_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = store_pipeline(
        dir.path(),
        "[api]\naddress = \"127.0.0.1:0\"\n[query.postgres]\naddress = \"0.0.0.0:0\"\n",
    );
    let out = Command::new(common::WEIR)
        .arg("run")
        .arg(&config)
        .output()
        .expect("weir runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("reachable from other hosts") && stderr.contains("[query.auth] users"),
        "{stderr}"
    );
}

/// Scenario: `[api] tls` with a self-signed certificate. Guarantees: the
/// API answers over HTTPS to a client trusting the certificate (health and
/// SQL), and alerts would link back with `https://`.
#[test]
fn the_api_serves_https() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key, ca) = certificate(dir.path());
    let config = store_pipeline(
        dir.path(),
        &format!(
            "[api]\naddress = \"127.0.0.1:0\"\ntls = {{ cert_file = \"{}\", key_file = \"{}\" }}\n",
            cert.display(),
            key.display()
        ),
    );
    let weir = common::start(&config);
    let pem = std::fs::read(&ca).expect("ca");
    let client = reqwest::blocking::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("pem"))
        .build()
        .expect("client");
    let port = weir.api.rsplit_once(':').expect("host:port").1;
    let health = client
        .get(format!("https://localhost:{port}/healthz"))
        .send()
        .expect("https answers");
    assert_eq!(health.status().as_u16(), 200);
    let sql = client
        .post(format!("https://localhost:{port}/api/v1/sql?format=csv"))
        .body("SELECT 40 + 2 AS answer")
        .send()
        .expect("https answers");
    assert_eq!(sql.text().expect("body"), "answer\n42\n");
    let plain = reqwest::blocking::Client::new()
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send();
    assert!(
        plain.map(|r| !r.status().is_success()).unwrap_or(true),
        "plain HTTP is not served"
    );
    common::stop(weir);
}

/// A test CA and a certificate it signed for `localhost` and 127.0.0.1,
/// made with the openssl command: (certificate, key, CA certificate).
fn certificate(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let path = |name: &str| dir.join(name);
    std::fs::write(
        path("leaf.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .expect("extensions");
    let steps: [&[&str]; 3] = [
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=weir-test-ca",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ],
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "key.pem",
            "-out",
            "leaf.csr",
        ],
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            "leaf.ext",
            "-out",
            "cert.pem",
        ],
    ];
    for args in steps {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    (path("cert.pem"), path("key.pem"), path("ca.pem"))
}
