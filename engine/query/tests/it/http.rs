//! `POST /api/v1/sql` and `GET /api/v1/tables` end to end: a real server on
//! 127.0.0.1:0, a real HTTP client, the realistic fixtures.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arrow::array::{Array, AsArray};
use arrow::datatypes::DataType;
use datafusion::logical_expr::{ColumnarValue, Volatility, create_udf};
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING};
use serde_json::Value;
use weir_query::{Register, SqlService};

use crate::common;

struct Answer {
    status: StatusCode,
    content_type: String,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

async fn post(url: &str, content_type: &str, body: &str) -> Answer {
    let response = reqwest::Client::new()
        .post(url)
        .header(CONTENT_TYPE, content_type)
        .body(body.to_string())
        .send()
        .await
        .expect("request sent");
    answer(response).await
}

async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status();
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = response.text().await.expect("body read");
    Answer {
        status,
        content_type,
        body,
    }
}

async fn sql(base: &str, query: &str) -> Answer {
    post(&format!("{base}/api/v1/sql"), "text/plain", query).await
}

/// Scenario: a JSON query over spans. Guarantees: the documented document
/// shape (columns, one object per row, row_count), timestamps in RFC 3339,
/// ids in hex, attribute maps as objects, span events as arrays.
#[tokio::test]
async fn json_results_have_the_documented_shape() {
    let base = common::serve(common::service()).await;
    let answer = post(
        &format!("{base}/api/v1/sql"),
        "application/json",
        r#"{"sql": "SELECT start_time, trace_id, parent_span_id, attributes, events, duration_ns FROM spans WHERE trace_id = decode('1fdd7128f310c389df1a92ab81129629', 'hex')"}"#,
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.content_type, "application/json");
    let doc = answer.json();
    assert_eq!(doc["row_count"], 1);
    assert_eq!(doc["columns"][0]["name"], "start_time");
    assert!(
        doc["columns"][0]["type"]
            .as_str()
            .is_some_and(|t| t.starts_with("Timestamp")),
        "{doc}"
    );
    let row = &doc["rows"][0];
    let start = row["start_time"].as_str().expect("time is text");
    assert!(
        start.len() >= 20 && start.as_bytes()[10] == b'T' && start.ends_with('Z'),
        "not RFC 3339: {start}"
    );
    assert_eq!(row["trace_id"], "1fdd7128f310c389df1a92ab81129629");
    assert_eq!(row["parent_span_id"], Value::Null);
    assert_eq!(row["attributes"]["http.route"], "/api/checkout");
    assert_eq!(row["attributes"]["http.response.status_code"], "500");
    assert_eq!(row["events"], serde_json::json!([]));
    assert_eq!(row["duration_ns"], 250_000_000);
    // One row per line, as documented.
    assert_eq!(answer.body.lines().count(), 3, "{}", answer.body);
}

/// Scenario: the same query as text and as JSON. Guarantees: both bodies
/// are accepted and answer the same.
#[tokio::test]
async fn sql_as_text_or_json() {
    let base = common::serve(common::service()).await;
    let url = format!("{base}/api/v1/sql");
    let query = "SELECT service_name, count(*) AS n FROM logs GROUP BY 1 ORDER BY 1";
    let text = post(&url, "text/plain; charset=utf-8", query).await;
    let json = post(
        &url,
        "application/json",
        &serde_json::json!({ "sql": query }).to_string(),
    )
    .await;
    assert_eq!(text.status, StatusCode::OK, "{}", text.body);
    assert_eq!(text.body, json.body);
    assert_eq!(
        text.json()["rows"],
        serde_json::json!([
            {"service_name": "cart", "n": 25},
            {"service_name": "checkout", "n": 44},
            {"service_name": "frontend", "n": 43},
        ])
    );
}

/// Scenario: `WHERE attributes[...]` and `resource_attributes[...]` over
/// HTTP. Guarantees: attribute access works on the real schema.
#[tokio::test]
async fn attribute_filters_work() {
    let base = common::serve(common::service()).await;
    let answer = sql(
        &base,
        "SELECT count(*) AS n FROM spans WHERE attributes['http.route'] = '/api/cart' \
         AND resource_attributes['service.name'] = 'cart' \
         AND start_time > now() - INTERVAL '1 hour'",
    )
    .await;
    assert_eq!(answer.json()["rows"][0]["n"], 20, "{}", answer.body);
}

/// Scenario: CSV by `Accept` and by `format=csv`. Guarantees: a header row,
/// hex ids, nested values as JSON text, the CSV media type.
#[tokio::test]
async fn csv_results() {
    let base = common::serve(common::service()).await;
    let query = "SELECT service_name, hex_id(trace_id) AS t, trace_id, attributes FROM spans \
                 WHERE trace_id = decode('1fdd7128f310c389df1a92ab81129629', 'hex')";
    let by_accept = reqwest::Client::new()
        .post(format!("{base}/api/v1/sql"))
        .header(ACCEPT, "text/csv")
        .body(query)
        .send()
        .await
        .expect("request sent");
    let by_accept = answer(by_accept).await;
    let by_param = post(
        &format!("{base}/api/v1/sql?format=csv"),
        "text/plain",
        query,
    )
    .await;
    assert_eq!(by_accept.status, StatusCode::OK, "{}", by_accept.body);
    assert!(
        by_accept.content_type.starts_with("text/csv"),
        "{}",
        by_accept.content_type
    );
    assert_eq!(by_accept.body, by_param.body);
    let mut lines = by_accept.body.lines();
    assert_eq!(lines.next(), Some("service_name,t,trace_id,attributes"));
    let row = lines.next().expect("one row");
    assert!(
        row.starts_with(
            "checkout,1fdd7128f310c389df1a92ab81129629,1fdd7128f310c389df1a92ab81129629,"
        ),
        "{row}"
    );
    assert!(row.contains(r#"""http.route"":""/api/checkout"""#), "{row}");
    assert_eq!(lines.next(), None);
}

/// Scenario: Arrow IPC by `Accept`. Guarantees: a readable IPC stream with
/// the tables' own types (dictionaries, maps) and every row.
#[tokio::test]
async fn arrow_ipc_results() {
    let base = common::serve(common::service()).await;
    let response = reqwest::Client::new()
        .post(format!("{base}/api/v1/sql"))
        .header(ACCEPT, "application/vnd.apache.arrow.stream")
        .body("SELECT service_name, attributes, body FROM logs ORDER BY time")
        .send()
        .await
        .expect("request sent");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[CONTENT_TYPE],
        "application/vnd.apache.arrow.stream"
    );
    let bytes = response.bytes().await.expect("body read");
    let reader = arrow::ipc::reader::StreamReader::try_new(bytes.as_ref(), None)
        .expect("an Arrow IPC stream");
    let schema = reader.schema();
    assert!(matches!(
        schema.field(0).data_type(),
        DataType::Dictionary(_, _)
    ));
    assert!(matches!(schema.field(1).data_type(), DataType::Map(_, _)));
    let batches: Vec<_> = reader.collect::<Result<_, _>>().expect("batches decode");
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    assert_eq!(rows, 112);
}

/// Scenario: every kind of statement that is not a query. Guarantees: each
/// is refused with 400 and kind `refused`, and nothing changed (no table
/// dropped or written, no file copied out).
#[tokio::test]
async fn statements_that_change_things_are_refused() {
    let base = common::serve(common::service()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let copy_target = dir.path().join("out.csv");
    let external = dir.path().join("x.parquet");
    let statements = [
        "CREATE TABLE t AS SELECT 1".to_string(),
        "CREATE TABLE t (x INT)".to_string(),
        "CREATE VIEW v AS SELECT * FROM logs".to_string(),
        format!(
            "CREATE EXTERNAL TABLE x STORED AS PARQUET LOCATION '{}'",
            external.display()
        ),
        "DROP TABLE logs".to_string(),
        "DROP VIEW IF EXISTS v".to_string(),
        "INSERT INTO logs SELECT * FROM logs".to_string(),
        "DELETE FROM logs".to_string(),
        "UPDATE spans SET trace_state = 'x'".to_string(),
        format!("COPY logs TO '{}'", copy_target.display()),
        format!(
            "COPY (SELECT 1) TO '{}' STORED AS CSV",
            copy_target.display()
        ),
        "SET datafusion.execution.batch_size = 1".to_string(),
        "START TRANSACTION".to_string(),
        "PREPARE p AS SELECT 1".to_string(),
    ];
    for statement in &statements {
        let answer = sql(&base, statement).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{statement}: {}",
            answer.body
        );
        let doc = answer.json();
        assert_eq!(doc["kind"], "refused", "{statement}: {doc}");
        assert!(
            doc["error"]
                .as_str()
                .is_some_and(|e| e.contains("not supported") && e.contains("read-only")),
            "{statement}: {doc}"
        );
    }
    assert!(!copy_target.exists(), "COPY wrote a file");
    let count = sql(&base, "SELECT count(*) AS n FROM logs").await;
    assert_eq!(count.json()["rows"][0]["n"], 112, "{}", count.body);
    let explain = sql(&base, "EXPLAIN SELECT count(*) FROM logs").await;
    assert_eq!(explain.status, StatusCode::OK, "{}", explain.body);
}

/// Scenario: a query naming a file of the server's disk as a table.
/// Guarantees: files cannot be read by path; only registered tables exist.
#[tokio::test]
async fn files_cannot_be_read_by_path() {
    let base = common::serve(common::service()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("secret.csv");
    std::fs::write(&file, "a,b\n1,2\n").expect("write file");
    let answer = sql(&base, &format!("SELECT * FROM '{}'", file.display())).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.body);
    assert_eq!(answer.json()["kind"], "plan", "{}", answer.body);
    assert!(!answer.body.contains("1,2"));
}

/// Scenario: requests with mistakes. Guarantees: each is answered with the
/// documented status, kind and a message naming the problem.
#[tokio::test]
async fn user_errors_are_400_with_a_kind() {
    let base = common::serve(common::service()).await;
    let url = format!("{base}/api/v1/sql");
    let cases: [(&str, &str, &str, &str); 7] = [
        ("text/plain", "SELEC 1", "syntax", "Expected"),
        ("text/plain", "SELECT * FROM nope", "plan", "nope"),
        ("text/plain", "SELECT nope FROM spans", "plan", "nope"),
        (
            "text/plain",
            "SELECT 1; SELECT 2",
            "unsupported",
            "single SQL statement",
        ),
        ("text/plain", "", "bad_request", "empty query"),
        (
            "application/json",
            "{\"query\": \"SELECT 1\"}",
            "bad_request",
            "sql",
        ),
        (
            "text/plain",
            "SELECT CAST(body AS INT) FROM logs",
            "execution",
            "Cannot cast",
        ),
    ];
    for (content_type, body, kind, needle) in cases {
        let answer = post(&url, content_type, body).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            answer.body
        );
        assert_eq!(answer.content_type, "application/json");
        let doc = answer.json();
        assert_eq!(doc["kind"], kind, "{body}: {doc}");
        assert!(
            doc["error"].as_str().is_some_and(|e| e.contains(needle)),
            "{body}: {doc}"
        );
    }
    let bad_format = post(&format!("{url}?format=xml"), "text/plain", "SELECT 1").await;
    assert_eq!(bad_format.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad_format.json()["kind"], "bad_request");
    let not_acceptable = reqwest::Client::new()
        .post(&url)
        .header(ACCEPT, "image/png")
        .body("SELECT 1")
        .send()
        .await
        .expect("request sent");
    let not_acceptable = answer(not_acceptable).await;
    assert_eq!(not_acceptable.status, StatusCode::NOT_ACCEPTABLE);
    assert_eq!(not_acceptable.json()["kind"], "not_acceptable");
}

/// Scenario: a store whose tables fail to register. Guarantees: HTTP 500,
/// kind `tables` — Weir's fault, not the query's.
#[tokio::test]
async fn store_failures_are_500() {
    let register: Register = Arc::new(|_ctx| {
        Err(datafusion::error::DataFusionError::IoError(
            std::io::Error::other("partition file vanished"),
        ))
    });
    let base = common::serve(SqlService::new(register, &Default::default())).await;
    let answer = sql(&base, "SELECT 1").await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    let doc = answer.json();
    assert_eq!(doc["kind"], "tables");
    assert!(
        doc["error"]
            .as_str()
            .is_some_and(|e| e.contains("partition file vanished")),
        "{doc}"
    );
}

/// Scenario: `GET /api/v1/tables`. Guarantees: the registered tables, sorted,
/// with their columns and types.
#[tokio::test]
async fn tables_are_listed() {
    let base = common::serve(common::service()).await;
    let response = reqwest::get(format!("{base}/api/v1/tables"))
        .await
        .expect("request sent");
    let answer = answer(response).await;
    assert_eq!(answer.status, StatusCode::OK);
    let doc = answer.json();
    let names: Vec<&str> = doc["tables"]
        .as_array()
        .expect("tables")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(names, ["logs", "metrics", "spans"]);
    let spans = &doc["tables"][2]["columns"];
    let trace = spans
        .as_array()
        .expect("columns")
        .iter()
        .find(|c| c["name"] == "trace_id")
        .expect("trace_id column");
    assert_eq!(trace["type"], "FixedSizeBinary(16)");
    assert_eq!(trace["nullable"], false);
}

/// A register that adds the fixtures and `counted(x)`, which returns `x`
/// and counts the rows it has seen: how far the server has got.
fn counting_register(counter: Arc<AtomicU64>) -> Register {
    let tables = common::Tables::at(common::now_ns()).register();
    Arc::new(move |ctx| {
        tables(ctx)?;
        let counter = Arc::clone(&counter);
        ctx.register_udf(create_udf(
            "counted",
            vec![DataType::Int64],
            DataType::Int64,
            Volatility::Volatile,
            Arc::new(move |args: &[ColumnarValue]| {
                let rows = match &args[0] {
                    ColumnarValue::Array(array) => array.len() as u64,
                    ColumnarValue::Scalar(_) => 1,
                };
                counter.fetch_add(rows, Ordering::SeqCst);
                Ok(args[0].clone())
            }),
        ));
        Ok(())
    })
}

/// Scenario: `SELECT` of five million rows as JSON. Guarantees: the answer
/// is chunked (no Content-Length), its first bytes arrive while the server
/// has produced only part of the rows (it encodes as the client reads and
/// never holds the whole result), and every row arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn millions_of_rows_stream() {
    const ROWS: u64 = 5_000_000;
    let counter = Arc::new(AtomicU64::new(0));
    let config = common::config(Duration::from_secs(600), 1 << 30);
    let service = SqlService::new(counting_register(Arc::clone(&counter)), &config);
    let base = common::serve(service).await;
    let mut response = reqwest::Client::new()
        .post(format!("{base}/api/v1/sql"))
        .body(format!(
            "SELECT counted(value) AS value FROM generate_series(1, {ROWS})"
        ))
        .send()
        .await
        .expect("request sent");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get(CONTENT_LENGTH).is_none());
    assert_eq!(response.headers()[TRANSFER_ENCODING], "chunked");

    let first = response
        .chunk()
        .await
        .expect("first chunk")
        .expect("not empty");
    assert!(first.starts_with(b"{\"columns\":[{\"name\":\"value\""));
    // Let the server run ahead as far as it can: it must stall, waiting for
    // this client, long before the end of the result. Stalled: its count of
    // rows stays put for a quarter of a second.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut last, mut still_since) = (counter.load(Ordering::SeqCst), Instant::now());
    let produced_while_paused = loop {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let produced = counter.load(Ordering::SeqCst);
        if produced != last {
            (last, still_since) = (produced, Instant::now());
        }
        let stalled = still_since.elapsed() >= Duration::from_millis(250);
        if stalled || produced >= ROWS / 2 || Instant::now() > deadline {
            break produced;
        }
    };
    assert!(
        produced_while_paused < ROWS / 2,
        "the server produced {produced_while_paused} of {ROWS} rows before the client read them"
    );

    let mut newlines = first.iter().filter(|b| **b == b'\n').count() as u64;
    let mut tail: Vec<u8> = first.to_vec();
    let mut chunks = 1u64;
    while let Some(chunk) = response.chunk().await.expect("chunk") {
        chunks += 1;
        newlines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
        tail.extend_from_slice(&chunk);
        if tail.len() > 256 {
            tail.drain(..tail.len() - 256);
        }
    }
    // One line per row, plus the line that closes the rows and the end.
    assert_eq!(newlines, ROWS + 2);
    let tail = String::from_utf8_lossy(&tail);
    assert!(
        tail.ends_with(&format!("}}\n],\"row_count\":{ROWS}}}\n")),
        "{tail}"
    );
    assert!(chunks > 100, "only {chunks} chunks");
    assert_eq!(counter.load(Ordering::SeqCst), ROWS);
}

/// Scenario: a million rows as CSV and as Arrow IPC. Guarantees: both
/// stream in chunks and carry every row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_and_arrow_stream_every_row() {
    const ROWS: usize = 1_000_000;
    let base = common::serve(common::service()).await;
    let query = format!("SELECT value, value * 2 AS twice FROM generate_series(1, {ROWS})");
    let client = reqwest::Client::new();

    let mut csv = client
        .post(format!("{base}/api/v1/sql?format=csv"))
        .body(query.clone())
        .send()
        .await
        .expect("request sent");
    assert_eq!(csv.headers()[TRANSFER_ENCODING], "chunked");
    let (mut lines, mut chunks) = (0usize, 0usize);
    while let Some(chunk) = csv.chunk().await.expect("chunk") {
        chunks += 1;
        lines += chunk.iter().filter(|b| **b == b'\n').count();
    }
    assert_eq!(lines, ROWS + 1, "header + rows");
    assert!(chunks > 10, "only {chunks} chunks");

    let arrow = client
        .post(format!("{base}/api/v1/sql?format=arrow"))
        .body(query)
        .send()
        .await
        .expect("request sent");
    assert_eq!(arrow.headers()[TRANSFER_ENCODING], "chunked");
    let bytes = arrow.bytes().await.expect("body read");
    let reader = arrow::ipc::reader::StreamReader::try_new(bytes.as_ref(), None)
        .expect("an Arrow IPC stream");
    let mut rows = 0;
    let mut sum = 0i64;
    for batch in reader {
        let batch = batch.expect("batch decodes");
        rows += batch.num_rows();
        let twice = batch
            .column(1)
            .as_primitive::<arrow::datatypes::Int64Type>();
        sum += twice.values().iter().sum::<i64>();
    }
    assert_eq!(rows, ROWS);
    // 2 * (1 + 2 + ... + ROWS): every value, once.
    assert_eq!(sum, (ROWS * (ROWS + 1)) as i64);
}

/// Scenario: a heavy ORDER BY, a heavy GROUP BY and a string
/// concatenation in an aggregate (`string_agg` of 10 KB values over 60,000
/// rows: 600 MB if nothing held it) with a 4 MiB limit, next to a small
/// query. Guarantees: the heavy ones fail alone with 400
/// `resources_exhausted` naming the limit; the small one, concurrent,
/// succeeds; the service runs on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_limit_fails_the_query_alone() {
    let config = common::config(Duration::from_secs(600), 4 << 20);
    let tables = common::Tables::at(common::now_ns());
    let base = common::serve(SqlService::new(tables.register(), &config)).await;
    let sort = sql(
        &base,
        "SELECT value FROM generate_series(1, 5000000) ORDER BY value DESC",
    );
    let group = sql(
        &base,
        "SELECT value % 1000000 AS k, count(*) FROM generate_series(1, 5000000) GROUP BY k",
    );
    let concat = sql(
        &base,
        "SELECT length(string_agg(repeat('x', 10000), ',')) FROM generate_series(1, 60000)",
    );
    let small = sql(
        &base,
        "SELECT service_name, count(*) AS n FROM spans GROUP BY 1 ORDER BY 1",
    );
    let (sort, group, concat, small) = tokio::join!(sort, group, concat, small);
    for heavy in [&sort, &group, &concat] {
        assert_eq!(heavy.status, StatusCode::BAD_REQUEST, "{}", heavy.body);
        let doc = heavy.json();
        assert_eq!(doc["kind"], "resources_exhausted", "{doc}");
        let message = doc["error"].as_str().unwrap_or_default();
        assert!(message.contains("Resources exhausted"), "{message}");
        assert!(message.contains("memory limit is 4 MiB"), "{message}");
    }
    assert_eq!(small.status, StatusCode::OK, "{}", small.body);
    assert_eq!(small.json()["row_count"], 3);
    let after = sql(&base, "SELECT count(*) AS n FROM logs").await;
    assert_eq!(after.json()["rows"][0]["n"], 112);
}

/// Scenario: an aggregation that would run for hours, with a 300 ms
/// timeout. Guarantees: it is cancelled quickly and answered 400 `timeout`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_before_the_first_row() {
    let config = common::config(Duration::from_millis(300), 1 << 30);
    let base = common::serve(SqlService::new(
        common::Tables::at(common::now_ns()).register(),
        &config,
    ))
    .await;
    let started = Instant::now();
    let answer = sql(
        &base,
        "SELECT sum(value) FROM generate_series(1, 1000000000000)",
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.body);
    let doc = answer.json();
    assert_eq!(doc["kind"], "timeout");
    assert!(
        doc["error"]
            .as_str()
            .is_some_and(|e| e.contains("300ms timeout")),
        "{doc}"
    );
    let after = sql(&base, "SELECT count(*) AS n FROM spans").await;
    assert_eq!(after.status, StatusCode::OK);
}

/// Scenario: an endless result with a 2 s timeout, rows already sent.
/// Guarantees: the JSON ends with the error object instead of `row_count`,
/// and the body is aborted so that the client sees a transfer error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_mid_stream_aborts_the_body() {
    let config = common::config(Duration::from_secs(2), 1 << 30);
    let base = common::serve(SqlService::new(
        common::Tables::at(common::now_ns()).register(),
        &config,
    ))
    .await;
    let mut response = reqwest::Client::new()
        .post(format!("{base}/api/v1/sql"))
        .body("SELECT value FROM generate_series(1, 1000000000000)")
        .send()
        .await
        .expect("request sent");
    assert_eq!(response.status(), StatusCode::OK);
    let mut tail = Vec::new();
    let outcome = loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                tail.extend_from_slice(&chunk);
                if tail.len() > 4096 {
                    tail.drain(..tail.len() - 4096);
                }
            }
            Ok(None) => break Ok(()),
            Err(error) => break Err(error),
        }
    };
    assert!(outcome.is_err(), "the body ended cleanly after an error");
    let tail = String::from_utf8_lossy(&tail);
    assert!(
        tail.contains("],\"error\":\"query cancelled") && tail.contains("\"kind\":\"timeout\"}"),
        "{}",
        &tail[tail.len().saturating_sub(400)..]
    );
    assert!(!tail.contains("row_count"));
}
