//! The Arrow Flight SQL endpoint against real clients: the ADBC Flight SQL
//! driver (into pyarrow and pandas) and pyarrow.flight, over the realistic
//! fixtures, with basic authentication exchanged for a bearer token.
//!
//! `scripts/test` installs them and sets `WEIR_TEST_PYTHON`.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use serde_json::{Value, json};
use weir_config::{FlightConfig, QueryAuthConfig, QueryConfig, QueryUser, Secret};
use weir_query::{Credentials, FlightServer, SqlService};

use crate::common::{self, Tables};

const USER: &str = "analyst";
const PASSWORD: &str = "s3cret-flight";

/// Scenario: ADBC connects with a user and password, queries into Arrow
/// and pandas with and without parameters, lists catalogs, tables and
/// their schemas; pyarrow.flight signs in for a token and fetches a
/// statement; statements that write are refused, a wrong password and a
/// missing token are refused. Guarantees: every answer equals the
/// fixtures' and the session goes on serving after refusals.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adbc_and_pyarrow_flight() {
    let now = common::now_ns();
    let dir = tempfile::tempdir().expect("tempdir");
    let password = dir.path().join("password");
    std::fs::write(&password, PASSWORD).expect("write the password");
    let credentials = Credentials::from_config(&QueryAuthConfig {
        users: vec![QueryUser {
            name: USER.into(),
            password: Secret::File(password),
        }],
        tokens: vec![],
    })
    .expect("credentials");
    let service = Arc::new(SqlService::new(
        Tables::at(now).register(),
        &QueryConfig::default(),
    ));
    let config = FlightConfig {
        address: "127.0.0.1:0".parse().expect("address"),
        tls: None,
    };
    let server = FlightServer::bind(&config, service, credentials)
        .await
        .expect("binds");
    let port = server.local_addr().expect("bound").port();
    tokio::spawn(server.serve(std::future::pending()));

    let out: Value = common::python_json(
        "flight/clients.py",
        vec![port.to_string(), USER.into(), PASSWORD.into()],
    )
    .await;

    assert_eq!(out["arrow_columns"], json!(["service_name", "spans"]));
    assert_eq!(
        out["arrow_rows"],
        json!([["cart", 23], ["checkout", 43], ["frontend", 43]])
    );
    assert_eq!(
        out["param"],
        common::count(
            "SELECT count(*) FROM spans WHERE service_name = 'checkout'",
            now
        )
        .await
    );
    assert_eq!(out["pandas_shape"], json!([5, 4]), "{out}");
    assert!(
        out["pandas_dtypes"]["start_time"]
            .as_str()
            .is_some_and(|t| t.starts_with("datetime64[ns")),
        "{out}"
    );
    assert_eq!(out["star"][0], 7, "{out}");
    assert!(out["star"][1].as_u64().is_some_and(|n| n > 20), "{out}");
    assert!(
        out["star_resource"]
            .as_str()
            .is_some_and(|r| r.contains("service.name")),
        "{out}"
    );
    assert_eq!(out["tables"], json!(["logs", "metrics", "spans"]));
    let spans_schema: Vec<&str> = out["spans_schema"]
        .as_array()
        .expect("names")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for column in ["start_time", "trace_id", "attributes", "duration_ns"] {
        assert!(
            spans_schema.contains(&column),
            "{column} in {spans_schema:?}"
        );
    }
    assert_eq!(out["table_types"], json!(["TABLE"]));
    assert_eq!(out["vendor"], "Weir");
    for (statement, error) in out["refused"].as_object().expect("refused") {
        assert!(
            error.as_str().is_some_and(|e| e.contains("read-only")),
            "{statement}: {error}"
        );
    }
    assert!(!Path::new("/tmp/weir-flight.csv").exists());
    assert_eq!(out["after_errors"], 2);
    assert!(
        out["wrong_password"]
            .as_str()
            .is_some_and(
                |e| e.to_lowercase().contains("unauthenticated") || e.contains("credentials")
            ),
        "{out}"
    );
    assert_eq!(
        out["pyarrow_flight"],
        common::count("SELECT count(*) FROM logs", now).await
    );
    assert!(out["no_token"].is_string(), "{out}");
}

/// Scenario: the endpoint with a certificate; the ADBC driver trusting it.
/// Guarantees: the client signs in and queries over TLS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyarrow_flight_over_tls() {
    let now = common::now_ns();
    let dir = tempfile::tempdir().expect("tempdir");
    let tls = crate::postgres::self_signed(dir.path());
    let cert = tls.cert_file.clone();
    let service = Arc::new(SqlService::new(
        Tables::at(now).register(),
        &QueryConfig::default(),
    ));
    let config = FlightConfig {
        address: "127.0.0.1:0".parse().expect("address"),
        tls: Some(tls),
    };
    let server = FlightServer::bind(&config, service, Arc::new(Credentials::default()))
        .await
        .expect("binds");
    let port = server.local_addr().expect("bound").port();
    tokio::spawn(server.serve(std::future::pending()));
    let python = std::env::var("WEIR_TEST_PYTHON").expect("WEIR_TEST_PYTHON is set");
    let script = format!(
        r#"
import adbc_driver_flightsql.dbapi as flightsql
from adbc_driver_flightsql import DatabaseOptions
root = open({cert:?}).read()
with flightsql.connect("grpc+tls://127.0.0.1:{port}", db_kwargs={{DatabaseOptions.TLS_ROOT_CERTS.value: root}}) as conn:
    cur = conn.cursor()
    cur.execute("SELECT count(*) AS n FROM spans")
    print(cur.fetch_arrow_table().to_pylist()[0]["n"])
"#,
        cert = cert.display().to_string()
    );
    let mut command = Command::new(python);
    command.args(["-c", &script]);
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("joins")
        .expect("python runs");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        common::count("SELECT count(*) FROM spans", now)
            .await
            .to_string(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
