//! `client::query`, what `weir sql` runs, against a real server on
//! 127.0.0.1:0 over the realistic fixtures.

use weir_query::client::{self, ClientError, OutputFormat};

use crate::common;

const QUERY: &str = "SELECT service_name, count(*) AS spans, max(duration_ms(duration_ns)) AS max_ms \
                     FROM spans GROUP BY service_name ORDER BY service_name";

/// Scenario: the default table format. Guarantees: Arrow's pretty table of
/// the result, with the column names, every row and the row count.
#[tokio::test]
async fn table_format_pretty_prints() {
    let base = common::serve(common::service()).await;
    let table = client::query(&base, QUERY, OutputFormat::Table)
        .await
        .expect("query succeeds");
    let expected = "\
+--------------+-------+---------+
| service_name | spans | max_ms  |
+--------------+-------+---------+
| cart         | 23    | 1200.0  |
| checkout     | 43    | 25000.0 |
| frontend     | 43    | 2000.0  |
+--------------+-------+---------+
3 rows
";
    assert_eq!(table, expected);
}

/// Scenario: a query with no rows. Guarantees: the header is still shown.
#[tokio::test]
async fn empty_results_keep_their_header() {
    let base = common::serve(common::service()).await;
    let table = client::query(
        &base,
        "SELECT service_name FROM spans WHERE false",
        OutputFormat::Table,
    )
    .await
    .expect("query succeeds");
    assert!(table.contains("| service_name |"), "{table}");
    assert!(table.ends_with("0 rows\n"), "{table}");
}

/// Scenario: CSV and JSON formats, with the address given without a
/// scheme. Guarantees: the server's CSV and JSON, unchanged.
#[tokio::test]
async fn csv_and_json_formats() {
    let base = common::serve(common::service()).await;
    let bare = base.trim_start_matches("http://");
    let csv = client::query(bare, QUERY, OutputFormat::Csv)
        .await
        .expect("query succeeds");
    assert_eq!(
        csv,
        "service_name,spans,max_ms\ncart,23,1200.0\ncheckout,43,25000.0\nfrontend,43,2000.0\n"
    );
    let json = client::query(&format!("{base}/"), QUERY, OutputFormat::Json)
        .await
        .expect("query succeeds");
    let doc: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(doc["row_count"], 3);
    assert_eq!(doc["rows"][1]["service_name"], "checkout");
    assert_eq!(doc["rows"][1]["spans"], 43);
}

/// Scenario: a query with a syntax error. Guarantees: the server's message
/// and kind come back as `ClientError::Query`.
#[tokio::test]
async fn query_errors_carry_the_server_message() {
    let base = common::serve(common::service()).await;
    let error = client::query(&base, "SELEC 1", OutputFormat::Table)
        .await
        .expect_err("a syntax error");
    match &error {
        ClientError::Query {
            status,
            kind,
            message,
        } => {
            assert_eq!(*status, 400);
            assert_eq!(kind, "syntax");
            assert!(message.contains("SELEC"), "{message}");
        }
        other => panic!("expected a query error, got {other:?}"),
    }
    assert!(error.to_string().contains("(syntax, HTTP 400)"), "{error}");
}

/// Scenario: no server at the address. Guarantees: a transport error that
/// names the URL and says what to check.
#[tokio::test]
async fn unreachable_server_is_explained() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    drop(listener);
    let error = client::query(&address.to_string(), "SELECT 1", OutputFormat::Table)
        .await
        .expect_err("nothing listens");
    assert!(matches!(error, ClientError::Transport { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.contains(&format!("http://{address}/api/v1/sql")),
        "{message}"
    );
    assert!(message.contains("weir run"), "{message}");
}

/// Output formats parse from their names, as the command line gives them.
#[test]
fn output_formats_parse() {
    assert_eq!("table".parse(), Ok(OutputFormat::Table));
    assert_eq!("CSV".parse(), Ok(OutputFormat::Csv));
    assert_eq!("json".parse(), Ok(OutputFormat::Json));
    assert!("xml".parse::<OutputFormat>().is_err());
    assert_eq!(OutputFormat::default().to_string(), "table");
}
