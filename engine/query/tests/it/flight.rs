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
    let port = serve(service, credentials, None).await;

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
    let port = serve(service, Arc::new(Credentials::default()), Some(tls)).await;
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

/// Scenario: arrow-flight's Rust client against an endpoint that needs a
/// token, with a 2 s query timeout: a 2M-row result, a ticket fetched
/// without the token, and an endless result. Guarantees: every row arrives
/// once and in order (its messages under gRPC's 4 MiB default limit); a
/// `DoGet` without credentials is refused `UNAUTHENTICATED`; the endless
/// query ends, after the rows already sent, with `DEADLINE_EXCEEDED`
/// naming the timeout, and the endpoint serves the next query.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_client_results_tokens_and_timeouts() {
    use arrow::array::AsArray;
    use arrow::datatypes::Int64Type;
    use arrow_flight::sql::client::FlightSqlServiceClient;
    use futures::TryStreamExt;

    const TOKEN: &str = "flight-token-7f3a";
    let dir = tempfile::tempdir().expect("tempdir");
    let token = dir.path().join("token");
    std::fs::write(&token, TOKEN).expect("write the token");
    let credentials = Credentials::from_config(&QueryAuthConfig {
        users: vec![],
        tokens: vec![Secret::File(token)],
    })
    .expect("credentials");
    let service = Arc::new(SqlService::new(
        Tables::at(common::now_ns()).register(),
        &common::config(std::time::Duration::from_secs(2), 1 << 30),
    ));
    let port = serve(service, credentials, None).await;
    let channel = connect(port).await;
    let mut client = FlightSqlServiceClient::new(channel.clone());
    client.set_token(TOKEN.into());

    // A large result, every row in order.
    const ROWS: i64 = 2_000_000;
    let info = client
        .execute(
            format!("SELECT value FROM generate_series(1, {ROWS})"),
            None,
        )
        .await
        .expect("planned");
    let ticket = info.endpoint[0].ticket.clone().expect("a ticket");
    let batches = fetch(&mut client, ticket.clone())
        .await
        .expect("every batch arrives");
    let mut expected = 1;
    for batch in &batches {
        for value in batch.column(0).as_primitive::<Int64Type>().values() {
            assert_eq!(*value, expected);
            expected += 1;
        }
    }
    assert_eq!(expected, ROWS + 1, "every row once");

    // The same ticket without the token.
    let mut anonymous = FlightSqlServiceClient::new(channel);
    let refused = fetch(&mut anonymous, ticket)
        .await
        .expect_err("a DoGet without credentials is refused");
    assert_status(refused, tonic::Code::Unauthenticated, "needs credentials");

    // An endless result: rows, then the timeout.
    let info = client
        .execute(
            "SELECT value FROM generate_series(1, 1000000000000)".into(),
            None,
        )
        .await
        .expect("planned");
    let mut stream = client
        .do_get(info.endpoint[0].ticket.clone().expect("a ticket"))
        .await
        .expect("DoGet");
    let mut rows = 0;
    let error = loop {
        match stream.try_next().await {
            Ok(Some(batch)) => rows += batch.num_rows(),
            Ok(None) => panic!("an endless result ended after {rows} rows"),
            Err(error) => break error,
        }
    };
    assert!(rows > 0, "rows arrived before the timeout");
    assert_status(error, tonic::Code::DeadlineExceeded, "2s timeout");
    serves_on(&mut client).await;
}

/// Scenario: `DoGet` requests a hostile client could send: a statement
/// ticket whose handle this server never gave out, a ticket that is not a
/// Flight SQL command at all, and a 17 MiB ticket. Guarantees: each is
/// refused `INVALID_ARGUMENT` with what was wrong (the large one without
/// being read past the 16 MiB request limit), and the endpoint serves the
/// next query.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_do_get_requests_are_refused() {
    use arrow_flight::Ticket;
    use arrow_flight::sql::client::FlightSqlServiceClient;
    use arrow_flight::sql::{ProstMessageExt, TicketStatementQuery};
    use prost::Message;

    let service = Arc::new(SqlService::new(
        Tables::at(common::now_ns()).register(),
        &QueryConfig::default(),
    ));
    let port = serve(service, Arc::new(Credentials::default()), None).await;
    let channel = connect(port).await;
    let mut client = FlightSqlServiceClient::new(channel);
    let fetch = |ticket: Vec<u8>| {
        let mut client = client.clone();
        async move { fetch(&mut client, Ticket::new(ticket)).await }
    };

    let foreign = TicketStatementQuery {
        statement_handle: b"weir-ps1 but not really".to_vec().into(),
    }
    .as_any()
    .encode_to_vec();
    let error = fetch(foreign)
        .await
        .expect_err("a foreign handle is refused");
    assert_status(
        error,
        tonic::Code::InvalidArgument,
        "not a prepared statement handle of this server",
    );

    let error = fetch(b"\xff\xfe not protobuf".to_vec())
        .await
        .expect_err("a ticket that is no command is refused");
    assert_status(error, tonic::Code::InvalidArgument, "");

    let error = fetch(vec![b'x'; 17 << 20])
        .await
        .expect_err("a 17 MiB ticket is refused");
    assert_status(
        error,
        tonic::Code::InvalidArgument,
        "at most 16777216 bytes",
    );

    serves_on(&mut client).await;
}

/// Asserts that `error` is a gRPC status of `code` whose message holds
/// `says`.
fn assert_status(error: arrow_flight::error::FlightError, code: tonic::Code, says: &str) {
    match error {
        arrow_flight::error::FlightError::Tonic(status) => {
            assert_eq!(status.code(), code, "{status}");
            assert!(status.message().contains(says), "{status}");
        }
        other => panic!("not a gRPC status: {other}"),
    }
}

/// Serves `service` over Flight SQL on 127.0.0.1:0; the port.
async fn serve(
    service: Arc<SqlService>,
    credentials: Arc<Credentials>,
    tls: Option<weir_config::ServerTlsConfig>,
) -> u16 {
    let config = FlightConfig {
        address: "127.0.0.1:0".parse().expect("address"),
        tls,
    };
    let server = FlightServer::bind(&config, service, credentials)
        .await
        .expect("binds");
    let port = server.local_addr().expect("bound").port();
    tokio::spawn(server.serve(std::future::pending()));
    port
}

/// A channel to the Flight endpoint on `port`.
async fn connect(port: u16) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("connects")
}

/// Every batch of `ticket`'s `DoGet`, or the error that ended it (at the
/// call or mid-stream).
async fn fetch(
    client: &mut arrow_flight::sql::client::FlightSqlServiceClient<tonic::transport::Channel>,
    ticket: arrow_flight::Ticket,
) -> Result<Vec<arrow::array::RecordBatch>, arrow_flight::error::FlightError> {
    use futures::TryStreamExt;
    client.do_get(ticket).await?.try_collect().await
}

/// Asserts that the endpoint answers a query after what came before.
async fn serves_on(
    client: &mut arrow_flight::sql::client::FlightSqlServiceClient<tonic::transport::Channel>,
) {
    let info = client
        .execute("SELECT count(*) AS n FROM spans".into(), None)
        .await
        .expect("the endpoint serves on");
    let ticket = info.endpoint[0].ticket.clone().expect("a ticket");
    let rows = fetch(client, ticket).await.expect("the next query runs");
    assert_eq!(rows[0].num_rows(), 1);
}
