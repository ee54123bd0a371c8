//! The `protocols` step: the same queries through every SQL endpoint of
//! one [`SqlService`] over a filled store — HTTP with JSON, HTTP with
//! Arrow IPC, the Postgres wire protocol (binary rows, tokio-postgres)
//! and Arrow Flight SQL (arrow-flight's client) — each served on
//! 127.0.0.1 in this process, as `weir run` serves them.
//!
//! Two queries: the one-hour GROUP BY (a small result: latency), and a
//! full scan returning every row's time, service, severity and body (a
//! large result: rows per second). Each client reads the whole result into
//! values a program can use, as a user's client would: Arrow IPC and
//! Flight decode the record batches, tokio-postgres reads every column of
//! every row (a timestamp and three strings), the JSON client parses each
//! row object. "In process" runs the query through the service itself, the
//! floor every endpoint adds to. The median of the repetitions is
//! reported.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use arrow_flight::sql::client::FlightSqlServiceClient;
use futures::{StreamExt, TryStreamExt};
use weir_config::{FlightConfig, PostgresConfig, QueryConfig, StoreConfig};
use weir_query::{Credentials, FlightServer, PostgresServer, SqlService};
use weir_store::Store;

use crate::ProtocolsArgs;
use crate::fill::{FillRecord, rfc3339};

/// One endpoint's way of running a query to its last row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    InProcess,
    HttpJson,
    HttpArrow,
    Postgres,
    Flight,
}

impl Endpoint {
    const ALL: [Endpoint; 5] = [
        Endpoint::InProcess,
        Endpoint::HttpJson,
        Endpoint::HttpArrow,
        Endpoint::Postgres,
        Endpoint::Flight,
    ];

    /// The name `--only` takes.
    fn key(self) -> &'static str {
        match self {
            Endpoint::InProcess => "in-process",
            Endpoint::HttpJson => "json",
            Endpoint::HttpArrow => "arrow",
            Endpoint::Postgres => "postgres",
            Endpoint::Flight => "flight",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Endpoint::InProcess => "in process",
            Endpoint::HttpJson => "HTTP JSON",
            Endpoint::HttpArrow => "HTTP Arrow IPC",
            Endpoint::Postgres => "Postgres (binary)",
            Endpoint::Flight => "Flight SQL",
        }
    }
}

struct Servers {
    service: Arc<SqlService>,
    http: String,
    postgres: tokio_postgres::Client,
    flight: FlightSqlServiceClient<tonic::transport::Channel>,
}

/// Runs the step.
pub async fn run(args: &ProtocolsArgs) -> anyhow::Result<()> {
    let record = FillRecord::load(&args.dir)?;
    let (lo, hi) = (
        rfc3339(record.window_start_ns),
        rfc3339(record.window_end_ns),
    );
    let small = format!(
        "SELECT service_name, severity_text, count(*) FROM logs \
         WHERE time >= '{lo}' AND time < '{hi}' GROUP BY 1, 2"
    );
    let large = "SELECT time, service_name, severity_text, body FROM logs".to_string();

    let store = Store::open(&StoreConfig {
        path: args.dir.clone(),
        ..StoreConfig::default()
    })
    .await
    .with_context(|| format!("cannot open the store in `{}`", args.dir.display()))?;
    let registered = store.clone();
    let config = QueryConfig {
        timeout: Duration::from_secs(3600),
        memory_limit: 8 << 30,
        total_memory_limit: 16 << 30,
        ..QueryConfig::default()
    };
    let service = Arc::new(SqlService::new(
        Arc::new(move |ctx| registered.register(ctx)),
        &config,
    ));
    let servers = serve(service, args.flight_frame_bytes).await?;
    println!(
        "protocols: store {} ({} rows); each query {} times, median reported",
        args.dir.display(),
        record.rows,
        args.repeat
    );
    let mut report = Vec::new();
    for (label, sql) in [("one-hour GROUP BY", &small), ("full scan", &large)] {
        println!("protocols: {label}: {sql}");
        for endpoint in Endpoint::ALL {
            if !args.only.is_empty() && !args.only.iter().any(|o| o == endpoint.key()) {
                continue;
            }
            let mut times = Vec::with_capacity(args.repeat);
            let mut rows = 0;
            for _ in 0..args.repeat {
                let started = Instant::now();
                rows = run_one(&servers, endpoint, sql)
                    .await
                    .with_context(|| format!("{} failed on the {label}", endpoint.name()))?;
                times.push(started.elapsed());
            }
            times.sort();
            let median = times[times.len() / 2];
            let per_s = rows as f64 / median.as_secs_f64();
            println!(
                "  {:<18} {:>10.1} ms  {:>10} rows  {:>12.0} rows/s",
                endpoint.name(),
                median.as_secs_f64() * 1e3,
                rows,
                per_s
            );
            report.push((label, endpoint, median, rows, per_s));
        }
    }
    let find = |label: &str, endpoint: Endpoint| {
        report
            .iter()
            .find(|r| r.0 == label && r.1 == endpoint)
            .map(|r| (r.2, r.3, r.4))
    };
    if let (Some(json), Some(flight)) = (
        find("full scan", Endpoint::HttpJson),
        find("full scan", Endpoint::Flight),
    ) {
        if json.1 != flight.1 {
            bail!("HTTP JSON counted {} rows, Flight SQL {}", json.1, flight.1);
        }
        println!(
            "protocols: full scan, Flight SQL / HTTP JSON rows/s = {:.2}x (target >= 5x)",
            flight.2 / json.2
        );
    }
    if let (Some(pg), Some(flight)) = (
        find("one-hour GROUP BY", Endpoint::Postgres),
        find("one-hour GROUP BY", Endpoint::Flight),
    ) {
        println!(
            "protocols: one-hour GROUP BY, Postgres / Flight SQL latency = {:.2}x (target <= 2x)",
            pg.0.as_secs_f64() / flight.0.as_secs_f64()
        );
    }
    Ok(())
}

/// Serves `service` on every endpoint and connects a client to each.
async fn serve(
    service: Arc<SqlService>,
    flight_frame_bytes: Option<u32>,
) -> anyhow::Result<Servers> {
    let open = Arc::new(Credentials::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let in_process = service.clone();
    let http = format!("http://{}", listener.local_addr()?);
    let router = service.clone().router(open.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });

    let postgres = PostgresServer::bind(
        &PostgresConfig {
            address: "127.0.0.1:0".parse()?,
            max_connections: 4,
            tls: None,
        },
        service.clone(),
        open.clone(),
    )
    .await
    .map_err(anyhow::Error::msg)?;
    let pg_port = postgres.local_addr()?.port();
    tokio::spawn(postgres.serve(std::future::pending()));
    let (client, connection) = tokio_postgres::connect(
        &format!("host=127.0.0.1 port={pg_port} user=bench dbname=weir"),
        tokio_postgres::NoTls,
    )
    .await
    .context("tokio-postgres cannot connect")?;
    tokio::spawn(connection);

    let flight = FlightServer::bind(
        &FlightConfig {
            address: "127.0.0.1:0".parse()?,
            tls: None,
        },
        service,
        open,
    )
    .await
    .map_err(anyhow::Error::msg)?;
    let flight_port = flight.local_addr()?.port();
    tokio::spawn(flight.serve(std::future::pending()));
    let channel =
        tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{flight_port}"))?
            .max_frame_size(flight_frame_bytes)
            .connect()
            .await
            .context("the Flight SQL client cannot connect")?;
    Ok(Servers {
        service: in_process,
        http,
        postgres: client,
        flight: FlightSqlServiceClient::new(channel),
    })
}

/// Runs `sql` through `endpoint` to its last row; the rows read.
async fn run_one(servers: &Servers, endpoint: Endpoint, sql: &str) -> anyhow::Result<u64> {
    match endpoint {
        Endpoint::InProcess => {
            let mut stream = servers.service.execute(sql).await?;
            let mut rows = 0u64;
            while let Some(batch) = stream.try_next().await? {
                rows += batch.num_rows() as u64;
            }
            Ok(rows)
        }
        Endpoint::HttpJson | Endpoint::HttpArrow => {
            let format = if endpoint == Endpoint::HttpJson {
                "json"
            } else {
                "arrow"
            };
            let response = reqwest::Client::new()
                .post(format!("{}/api/v1/sql?format={format}", servers.http))
                .body(sql.to_string())
                .send()
                .await?;
            if !response.status().is_success() {
                bail!("HTTP {}: {}", response.status(), response.text().await?);
            }
            let mut body = response.bytes_stream();
            if endpoint == Endpoint::HttpJson {
                // Row objects are one per line (`{...},`), parsed as they
                // arrive.
                let mut rows = 0u64;
                let mut line: Vec<u8> = Vec::new();
                while let Some(chunk) = body.next().await {
                    for piece in chunk?.split_inclusive(|&b| b == b'\n') {
                        line.extend_from_slice(piece);
                        if line.last() == Some(&b'\n') {
                            rows += parse_row(&line)?;
                            line.clear();
                        }
                    }
                }
                rows += parse_row(&line)?;
                Ok(rows)
            } else {
                let mut bytes = Vec::new();
                while let Some(chunk) = body.next().await {
                    bytes.extend_from_slice(&chunk?);
                }
                let reader = arrow::ipc::reader::StreamReader::try_new(bytes.as_slice(), None)?;
                let mut rows = 0u64;
                for batch in reader {
                    rows += batch?.num_rows() as u64;
                }
                Ok(rows)
            }
        }
        Endpoint::Postgres => {
            let params: [&(dyn tokio_postgres::types::ToSql + Sync); 0] = [];
            let stream = servers.postgres.query_raw(sql, params).await?;
            futures::pin_mut!(stream);
            let mut rows = 0u64;
            while let Some(row) = stream.try_next().await? {
                for i in 0..row.len() {
                    read_value(&row, i)?;
                }
                rows += 1;
            }
            Ok(rows)
        }
        Endpoint::Flight => {
            let mut client = servers.flight.clone();
            let info = client.execute(sql.to_string(), None).await?;
            let mut rows = 0u64;
            for endpoint in info.endpoint {
                let Some(ticket) = endpoint.ticket else {
                    continue;
                };
                let mut stream = client.do_get(ticket).await?;
                while let Some(batch) = stream.try_next().await? {
                    rows += batch.num_rows() as u64;
                }
            }
            Ok(rows)
        }
    }
}

/// Parses one line of the JSON document if it is a row object (`{...}` or
/// `{...},`); 1 if it was.
fn parse_row(line: &[u8]) -> anyhow::Result<u64> {
    let text = line.trim_ascii();
    let text = text.strip_suffix(b",").unwrap_or(text);
    if !(text.starts_with(b"{\"") && text.ends_with(b"}")) || text.starts_with(b"{\"columns\"") {
        return Ok(0);
    }
    let row: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(text)?;
    Ok(u64::from(!row.is_empty()))
}

/// Decodes column `i` of a Postgres row as its type says.
fn read_value(row: &tokio_postgres::Row, i: usize) -> anyhow::Result<()> {
    use tokio_postgres::types::Type;
    let kind = row.columns()[i].type_().clone();
    if kind == Type::TIMESTAMPTZ || kind == Type::TIMESTAMP {
        row.try_get::<_, Option<std::time::SystemTime>>(i)?;
    } else if kind == Type::INT8 {
        row.try_get::<_, Option<i64>>(i)?;
    } else {
        row.try_get::<_, Option<&str>>(i)?;
    }
    Ok(())
}
