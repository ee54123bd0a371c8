//! The Postgres wire endpoint against real clients: `psql` (Debian's
//! postgresql-client) and psycopg 3 (the suite's Python), over the
//! realistic fixtures, signing in with SCRAM-SHA-256.
//!
//! `scripts/test` installs both and sets `WEIR_TEST_PYTHON`; without it
//! the psycopg test fails, saying so.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use weir_config::{PostgresConfig, QueryAuthConfig, QueryConfig, QueryUser, Secret};
use weir_query::{Credentials, PostgresServer, SqlService};

use crate::common::{self, Tables};

const USER: &str = "grafana";
const PASSWORD: &str = "correct horse battery staple";

/// A Postgres endpoint over the fixtures as of `now`, with the user
/// `grafana`; its port and the secrets' directory (kept alive).
async fn serve(now: u64, config: QueryConfig) -> (u16, tempfile::TempDir) {
    serve_with(now, config, None).await
}

/// [`serve`], with TLS when `tls` is given.
async fn serve_with(
    now: u64,
    config: QueryConfig,
    tls: Option<weir_config::ServerTlsConfig>,
) -> (u16, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let password = dir.path().join("password");
    std::fs::write(&password, format!("{PASSWORD}\n")).expect("write the password");
    let auth = QueryAuthConfig {
        users: vec![QueryUser {
            name: USER.into(),
            password: Secret::File(password),
        }],
        tokens: vec![],
    };
    let credentials = Credentials::from_config(&auth).expect("credentials");
    let service = Arc::new(SqlService::new(Tables::at(now).register(), &config));
    let postgres = PostgresConfig {
        address: "127.0.0.1:0".parse().expect("address"),
        max_connections: 8,
        tls,
    };
    let server = PostgresServer::bind(&postgres, service, credentials)
        .await
        .expect("binds");
    let port = server.local_addr().expect("bound").port();
    tokio::spawn(server.serve(std::future::pending()));
    (port, dir)
}

/// `psql` with `args`, signing in as `user` with `password`.
async fn psql(port: u16, user: &str, password: &str, args: &[&str]) -> Output {
    let mut command = Command::new("psql");
    command
        .arg(format!(
            "host=127.0.0.1 port={port} user={user} dbname=weir sslmode=disable connect_timeout=10"
        ))
        .args(["-X", "-v", "ON_ERROR_STOP=1", "-A", "-t"])
        .args(args)
        .env("PGPASSWORD", password);
    tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("joins")
        .expect("psql runs: install postgresql-client (scripts/test does)")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Scenario: psql signs in with the password and runs queries and its
/// catalog commands. Guarantees: counts equal the fixtures', `\dt` lists
/// the three tables, `\d spans` shows the columns with Postgres types, and
/// `version()` / `current_setting` answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_queries_and_describes() {
    let (port, _dir) = serve(common::now_ns(), QueryConfig::default()).await;

    let counts = psql(
        port,
        USER,
        PASSWORD,
        &[
            "-c",
            "SELECT service_name, count(*) FROM spans GROUP BY service_name ORDER BY service_name",
        ],
    )
    .await;
    assert!(counts.status.success(), "{}", text(&counts.stderr));
    assert_eq!(text(&counts.stdout), "cart|23\ncheckout|43\nfrontend|43\n");

    let tables = psql(port, USER, PASSWORD, &["-c", "\\dt"]).await;
    assert!(tables.status.success(), "{}", text(&tables.stderr));
    let listing = text(&tables.stdout);
    for table in ["logs", "metrics", "spans"] {
        assert!(
            listing.lines().any(|l| l.split('|').nth(1) == Some(table)),
            "\\dt lists {table}:\n{listing}"
        );
    }

    let describe = psql(port, USER, PASSWORD, &["-c", "\\d spans"]).await;
    assert!(describe.status.success(), "{}", text(&describe.stderr));
    let columns = text(&describe.stdout);
    for (column, kind) in [
        ("start_time", "timestamp"),
        ("duration_ns", "bigint"),
        ("service_name", "text"),
        ("trace_id", "bytea"),
    ] {
        assert!(
            columns
                .lines()
                .any(|l| l.starts_with(&format!("{column}|")) && l.contains(kind)),
            "\\d spans shows {column} as {kind}:\n{columns}"
        );
    }

    let settings = psql(
        port,
        USER,
        PASSWORD,
        &[
            "-c",
            "SELECT current_setting('server_version_num'), current_setting('search_path'), \
             version() LIKE 'PostgreSQL 16%'",
        ],
    )
    .await;
    assert!(settings.status.success(), "{}", text(&settings.stderr));
    assert_eq!(text(&settings.stdout), "160006|\"$user\", public|t\n");

    let everything = psql(port, USER, PASSWORD, &["-c", "SELECT * FROM spans LIMIT 3"]).await;
    assert!(
        everything.status.success(),
        "every column of spans reaches psql: {}",
        text(&everything.stderr)
    );
    assert_eq!(text(&everything.stdout).lines().count(), 3);
}

/// Scenario: a wrong password, an unknown user, and statements that would
/// write or read outside the store. Guarantees: sign-in fails for both,
/// each statement is refused with a read-only error, and the server keeps
/// serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_is_refused_what_it_may_not_do() {
    let (port, _dir) = serve(common::now_ns(), QueryConfig::default()).await;
    for (user, password) in [(USER, "wrong"), ("admin", PASSWORD)] {
        let denied = psql(port, user, password, &["-c", "SELECT 1"]).await;
        assert!(!denied.status.success(), "{user} signed in with {password}");
        let stderr = text(&denied.stderr);
        assert!(
            stderr.contains("auth") || stderr.contains("password"),
            "{stderr}"
        );
    }
    for statement in [
        "DROP TABLE spans",
        "INSERT INTO spans (name) VALUES ('x')",
        "COPY spans TO '/tmp/weir-spans.csv'",
        "CREATE EXTERNAL TABLE leak STORED AS CSV LOCATION '/etc/passwd'",
        "SET datafusion.execution.batch_size = 1",
    ] {
        let refused = psql(port, USER, PASSWORD, &["-c", statement]).await;
        assert!(!refused.status.success(), "{statement} ran");
        let stderr = text(&refused.stderr);
        assert!(
            stderr.contains("read-only") || stderr.contains("only client settings"),
            "{statement}: {stderr}"
        );
    }
    assert!(!Path::new("/tmp/weir-spans.csv").exists());
    let still = psql(port, USER, PASSWORD, &["-c", "SELECT 42"]).await;
    assert_eq!(text(&still.stdout), "42\n", "{}", text(&still.stderr));
}

/// Scenario: a query over its time limit and one over its memory limit.
/// Guarantees: each ends with the limit's error (SQLSTATE 57014 / 53200 in
/// the message psql prints) and the next query is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_end_queries_with_clear_errors() {
    // One limit per server: a slow query may also outgrow a tiny memory
    // limit (its operators buffer ahead of a busy machine), and which
    // limit it meets first would then depend on the machine's load.
    let timed = QueryConfig {
        timeout: Duration::from_millis(500),
        ..QueryConfig::default()
    };
    let (port, _dir) = serve(common::now_ns(), timed).await;
    let slow = psql(
        port,
        USER,
        PASSWORD,
        &[
            "-c",
            "SELECT count(*) FROM generate_series(1, 2000000000) a(x) WHERE x % 7 = 3",
        ],
    )
    .await;
    assert!(!slow.status.success(), "the slow query finished");
    assert!(
        text(&slow.stderr).contains("timeout"),
        "{}",
        text(&slow.stderr)
    );

    let small = QueryConfig {
        memory_limit: 1 << 20,
        ..QueryConfig::default()
    };
    let (port, _small_dir) = serve(common::now_ns(), small).await;
    let hungry = psql(
        port,
        USER,
        PASSWORD,
        &[
            "-c",
            "SELECT x, count(*) FROM generate_series(1, 5000000) a(x) GROUP BY x ORDER BY 2 DESC LIMIT 1",
        ],
    )
    .await;
    assert!(!hungry.status.success(), "the hungry query finished");
    assert!(
        text(&hungry.stderr).contains("memory limit"),
        "{}",
        text(&hungry.stderr)
    );
    let next = psql(port, USER, PASSWORD, &["-c", "SELECT 1"]).await;
    assert_eq!(text(&next.stdout), "1\n", "{}", text(&next.stderr));
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/postgres")
}

/// RFC 3339 in UTC, as Grafana writes `$__timeFilter`'s bounds.
fn rfc3339(ns: u64) -> String {
    let secs = i64::try_from(ns / 1_000_000_000).expect("fits");
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Scenario: psycopg 3 over the simple and the extended protocol, text and
/// binary, with parameters and a prepared statement, then the queries
/// Grafana's PostgreSQL data source sends. Guarantees: every answer equals
/// the fixtures', typed values arrive typed, refused statements carry
/// SQLSTATE 42501, and each Grafana query returns the shape Grafana reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psycopg_and_grafana_queries() {
    let now = common::now_ns();
    let (port, _dir) = serve(now, QueryConfig::default()).await;
    let grafana = fixtures().join("grafana");
    let from = rfc3339(now - 3_600_000_000_000);
    let to = rfc3339(now + 60_000_000_000);
    let out: Value = common::python_json(
        "postgres/clients.py",
        vec![
            "127.0.0.1".into(),
            port.to_string(),
            USER.into(),
            PASSWORD.into(),
            grafana.to_str().expect("utf-8 path").into(),
            from.clone(),
            to.clone(),
        ],
    )
    .await;

    assert_eq!(
        out["simple"],
        serde_json::json!([["cart", 23], ["checkout", 43], ["frontend", 43]])
    );
    assert_eq!(
        out["simple_columns"],
        serde_json::json!(["service_name", "spans"])
    );
    // Checkout's server spans: both routes, recent and older batches.
    let expected = common::count(
        "SELECT count(*) FROM spans WHERE service_name = 'checkout' AND kind = 2",
        now,
    )
    .await;
    assert_eq!(out["param_simple"], expected);
    assert_eq!(out["param_text"], expected);
    assert_eq!(out["param_binary"], expected);
    assert_eq!(out["prepared"], serde_json::json!([23, 43]));
    let typed = &out["typed"];
    assert_eq!(typed["service"], "cart");
    assert_eq!(typed["latest_type"], "datetime");
    assert!(
        typed["latest_tz"]
            .as_str()
            .is_some_and(|tz| tz.ends_with("UTC")),
        "timestamps arrive in UTC: {typed}"
    );
    assert!(
        typed["mean_ns"].as_f64().is_some_and(|m| m > 0.0),
        "{typed}"
    );
    assert!(typed["failed"].is_boolean(), "{typed}");

    for (statement, error) in out["refused"].as_object().expect("refused") {
        assert_eq!(error["sqlstate"], "42501", "{statement}: {error}");
    }
    assert_eq!(out["after_errors"], 2);

    let grafana = &out["grafana"];
    assert_eq!(
        grafana["health.sql"]["rows"],
        serde_json::json!([]),
        "{grafana}"
    );
    assert_eq!(
        grafana["version.sql"]["rows"],
        serde_json::json!([["1600"]]),
        "{grafana}"
    );
    assert_eq!(
        grafana["timescaledb.sql"]["rows"],
        serde_json::json!([]),
        "{grafana}"
    );
    let tables: Vec<&str> = grafana["tables.sql"]["rows"]
        .as_array()
        .unwrap_or_else(|| panic!("{grafana}"))
        .iter()
        .filter_map(|r| r[0].as_str())
        .collect();
    for table in ["logs", "metrics", "spans"] {
        assert!(tables.contains(&table), "{table} in {tables:?}");
    }
    let columns = grafana["columns.sql"]["rows"]
        .as_array()
        .unwrap_or_else(|| panic!("{grafana}"));
    assert!(
        columns
            .iter()
            .any(|c| c[0] == "start_time"
                && c[1].as_str().is_some_and(|t| t.starts_with("timestamp"))),
        "{columns:?}"
    );
    let series = &grafana["timeseries.sql"];
    assert_eq!(
        series["columns"],
        serde_json::json!(["time", "metric", "spans"]),
        "{series}"
    );
    let points = series["rows"]
        .as_array()
        .unwrap_or_else(|| panic!("{series}"));
    let in_window = common::count(
        &format!("SELECT count(*) FROM spans WHERE start_time BETWEEN '{from}' AND '{to}'"),
        now,
    )
    .await;
    let summed: i64 = points
        .iter()
        .map(|p| {
            p[2].as_str()
                .and_then(|s| s.parse::<i64>().ok())
                .unwrap_or(0)
        })
        .sum();
    assert_eq!(serde_json::json!(summed), in_window, "{series}");
    assert!(
        points.iter().all(|p| p[0]
            .as_str()
            .and_then(|t| t.parse::<f64>().ok())
            .is_some_and(|t| t % 60.0 == 0.0)),
        "buckets fall on minutes: {series}"
    );
}

/// A self-signed certificate for `localhost` and 127.0.0.1 in `dir`, made
/// with the openssl command.
pub fn self_signed(dir: &Path) -> weir_config::ServerTlsConfig {
    let cert_file = dir.join("cert.pem");
    let key_file = dir.join("key.pem");
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key_file)
        .arg("-out")
        .arg(&cert_file)
        .output()
        .expect("openssl runs");
    assert!(made.status.success(), "{}", text(&made.stderr));
    weir_config::ServerTlsConfig {
        cert_file,
        key_file,
    }
}

/// Scenario: the endpoint with a certificate, psql asking
/// `sslmode=require`. Guarantees: the session is encrypted (psql's
/// `\conninfo` says SSL) and queries answer; a certificate file that does
/// not exist stops the bind with an error naming the key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_over_tls() {
    let certs = tempfile::tempdir().expect("tempdir");
    let tls = self_signed(certs.path());
    let (port, _dir) = serve_with(common::now_ns(), QueryConfig::default(), Some(tls)).await;
    let mut command = Command::new("psql");
    command
        .arg(format!(
            "host=127.0.0.1 port={port} user={USER} dbname=weir sslmode=require connect_timeout=10"
        ))
        .args([
            "-X",
            "-A",
            "-t",
            "-c",
            "\\conninfo",
            "-c",
            "SELECT count(*) FROM logs",
        ])
        .env("PGPASSWORD", PASSWORD);
    let out = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("joins")
        .expect("psql runs");
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(stdout.contains("SSL connection"), "{stdout}");
    let logs = common::count("SELECT count(*) FROM logs", common::now_ns()).await;
    assert!(
        stdout.trim_end().ends_with(&logs.to_string()),
        "{stdout} vs {logs}"
    );

    let missing = weir_config::ServerTlsConfig {
        cert_file: certs.path().join("nope.pem"),
        key_file: certs.path().join("key.pem"),
    };
    let postgres = PostgresConfig {
        address: "127.0.0.1:0".parse().expect("address"),
        max_connections: 1,
        tls: Some(missing),
    };
    let service = Arc::new(SqlService::new(
        Tables::at(common::now_ns()).register(),
        &QueryConfig::default(),
    ));
    let error = PostgresServer::bind(&postgres, service, Arc::new(Credentials::default()))
        .await
        .expect_err("a missing certificate");
    assert!(
        error.contains("[query.postgres] tls") && error.contains("nope.pem"),
        "{error}"
    );
}

/// Scenario: a client holds every connection `max_connections` allows
/// (8 here) without ever signing in. Guarantees: one more client is
/// refused rather than queued, and once the idle sockets close, clients
/// are served again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sockets_cannot_hold_more_than_max_connections() {
    let (port, _dir) = serve(common::now_ns(), QueryConfig::default()).await;
    let mut idle = Vec::new();
    for _ in 0..8 {
        idle.push(
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .expect("connects"),
        );
    }
    // Each idle socket has been accepted (and holds its slot) once a
    // ninth connection is accepted and closed at once.
    let refused = psql(port, USER, PASSWORD, &["-c", "SELECT 1"]).await;
    assert!(!refused.status.success(), "a ninth client was served");
    drop(idle);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let served = psql(port, USER, PASSWORD, &["-c", "SELECT 1"]).await;
        if served.status.success() {
            assert_eq!(text(&served.stdout), "1\n");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "clients are not served again: {}",
            text(&served.stderr)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
