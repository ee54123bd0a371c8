//! weir-pluginbench: what each first-party plugin costs inside Weir.
//!
//! Runs each plugin (`plugin = NAME`, as a pipeline names it) in Weir's
//! WebAssembly host, one instance, on batches of 1,024 records converted
//! from OTLP as the OTLP source converts them, for `--seconds` each, and
//! prints records per second per core: the records processed over the CPU
//! time the process used (host and guest together: reading columns out of
//! Arrow, the calls into the component, the plugin's work, writing back).
//! `benches/plugins.sh` runs it beside each plugin's native build (the same
//! logic compiled for the host, the physical-limit anchor).
//!
//! ```sh
//! target/release/weir-pluginbench [--seconds 10] [enrich redact spanmetrics sample]
//! ```
//!
//! The workloads:
//! - `enrich`: logs of 64 services; a CSV lookup of the service (team,
//!   owner, tier, on-call) into the resource, a CIDR lookup of
//!   `client.address` into the record, a static insert, a templated upsert,
//!   a rename and a delete;
//! - `redact`: logs with a 120-byte body and 5 attributes, a quarter of the
//!   bodies and one attribute per row holding PII, every preset on the body
//!   and the 5 attributes;
//! - `spanmetrics`: spans of 8 services x 16 names, default dimensions;
//! - `sample`: tail sampling, 4-span traces arriving interleaved so that
//!   100,000 traces are in flight, decided 5 s of test time after their
//!   last span (ticks every second of test time), 10 % kept plus errors;
//!   the memory the plugin holds is printed beside its `max_memory`.

// The report goes to stdout.
#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use arrow::record_batch::RecordBatch;
use clap::Parser;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, status};
use weir_benches::report::process_cpu_time;
use weir_core::{Ack, Batch, Processor, Signal, convert};
use weir_wasm::{Runtime, WasmConfig, WasmProcessor};

/// The allocator `weir` runs with (see its `main.rs`), so that the figures
/// are the engine's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ROWS: usize = 1024;

/// Test time 0 of the clocked workloads: 2023-11-14, as the spans' times.
const BASE_NS: u64 = 1_700_000_000_000_000_000;

#[derive(Parser)]
#[command(about = "What each first-party plugin costs inside Weir (see the source's docs)")]
struct Args {
    /// How long each plugin runs.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// The plugins to run (default: all).
    plugins: Vec<String>,
}

/// One plugin's workload.
struct Workload {
    config: WasmConfig,
    signal: Signal,
    /// The batches, used round-robin.
    batches: Vec<RecordBatch>,
    /// Files the config names (lookup tables), kept until the run ends.
    _dir: Option<tempfile::TempDir>,
    /// A test clock instead of the wall clock: the plugin is ticked with
    /// test time, which advances by one second per this many records.
    records_per_second: Option<u64>,
    /// The traces of one pass over `batches`: each later pass adds this
    /// to every trace id, so that traces never repeat.
    cycle_traces: Option<u128>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let all = ["enrich", "redact", "spanmetrics", "sample"];
    let names: Vec<String> = if args.plugins.is_empty() {
        all.iter().map(|s| (*s).to_string()).collect()
    } else {
        args.plugins.clone()
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    println!("plugin        records/s per core   records   cpu s   wall s");
    for name in names {
        let workload = match name.as_str() {
            "enrich" => enrich()?,
            "redact" => redact()?,
            "spanmetrics" => spanmetrics()?,
            "sample" => sample()?,
            other => bail!("no workload `{other}`; choose among {all:?}"),
        };
        let (records, cpu, wall) =
            runtime.block_on(run(&name, workload, Duration::from_secs(args.seconds)))?;
        println!(
            "{name:<13} {:>18.0}   {records:>7}   {:>5.2}   {:>6.2}",
            records as f64 / cpu.as_secs_f64(),
            cpu.as_secs_f64(),
            wall.as_secs_f64()
        );
    }
    Ok(())
}

/// Runs `workload` for `length`; returns the records processed, the CPU
/// time and the wall time spent.
async fn run(
    name: &str,
    workload: Workload,
    length: Duration,
) -> anyhow::Result<(u64, Duration, Duration)> {
    let runtime = Runtime::shared().context("the plugin runtime")?;
    let config = WasmConfig {
        instances: Some(1),
        ..workload.config
    };
    let mut processor = WasmProcessor::new(name, &config, runtime)
        .await
        .with_context(|| format!("starting `{name}`"))?;
    let tick = processor.tick_interval();
    // Warm up: the first calls grow the instance's memory.
    let mut out = Vec::new();
    for data in workload.batches.iter().take(8) {
        processor
            .process(
                Batch::new(workload.signal, data.clone(), Ack::none()),
                &mut out,
            )
            .await?;
        out.clear();
    }
    let (cpu0, wall0) = (process_cpu_time().context("CPU time")?, Instant::now());
    let mut records = 0u64;
    let mut next_tick = tick.map(|t| wall0 + t);
    let mut test_ticks = 0u64;
    let mut cycle = 0u128;
    'run: loop {
        for data in &workload.batches {
            let data = match workload.cycle_traces {
                Some(traces) if cycle > 0 => shift_trace_ids(data, cycle * traces)?,
                _ => data.clone(),
            };
            records += data.num_rows() as u64;
            processor
                .process(Batch::new(workload.signal, data, Ack::none()), &mut out)
                .await?;
            out.clear();
            match (workload.records_per_second, tick) {
                (Some(per_second), Some(every)) => {
                    // Test time: one second per `per_second` records.
                    let every_ns = every.as_nanos().max(1) as u64;
                    let now_ns = records * 1_000_000_000 / per_second;
                    while (test_ticks + 1) * every_ns <= now_ns {
                        test_ticks += 1;
                        processor
                            .tick_at(BASE_NS + test_ticks * every_ns, &mut out)
                            .await?;
                        out.clear();
                    }
                }
                (None, Some(every)) => {
                    if let Some(at) = next_tick
                        && Instant::now() >= at
                    {
                        processor.tick(&mut out).await?;
                        out.clear();
                        next_tick = Some(at + every);
                    }
                }
                _ => {}
            }
            if wall0.elapsed() >= length {
                break 'run;
            }
        }
        cycle += 1;
    }
    let (rows, bytes) = processor.held();
    if rows > 0 {
        println!(
            "  {name}: {rows} rows held at the end, {:.1} MiB (max_held_bytes {:.0} MiB)",
            bytes as f64 / 1048576.0,
            config.max_held_bytes as f64 / 1048576.0
        );
    }
    let (cpu, wall) = (
        process_cpu_time().context("CPU time")? - cpu0,
        wall0.elapsed(),
    );
    Ok((records, cpu, wall))
}

/// `data` with `by` added to every trace id.
fn shift_trace_ids(data: &RecordBatch, by: u128) -> anyhow::Result<RecordBatch> {
    use arrow::array::{Array, AsArray, FixedSizeBinaryArray};
    let index = data.schema().index_of("trace_id")?;
    let ids = data.column(index).as_fixed_size_binary();
    let shifted = (0..ids.len()).map(|i| {
        let id = u128::from_be_bytes(ids.value(i).try_into().unwrap_or([0; 16]));
        id.wrapping_add(by).to_be_bytes()
    });
    let array = FixedSizeBinaryArray::try_from_iter(shifted)?;
    let mut columns = data.columns().to_vec();
    columns[index] = std::sync::Arc::new(array);
    Ok(RecordBatch::try_new(data.schema(), columns)?)
}

fn string(key: &str, value: impl Into<String>) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

fn resource(service: &str) -> Option<Resource> {
    Some(Resource {
        attributes: vec![
            string("service.name", service),
            string("service.namespace", "retail"),
        ],
        ..Default::default()
    })
}

/// Batches of log records, `ROWS` each, one resource per `per_service`
/// consecutive records; `record(i)` makes record `i`.
fn logs_batches(
    batches: usize,
    services: usize,
    record: impl Fn(usize) -> LogRecord,
) -> anyhow::Result<Vec<RecordBatch>> {
    let mut out = Vec::new();
    for b in 0..batches {
        let mut resource_logs = Vec::new();
        let per = ROWS / 16;
        for chunk in 0..16 {
            let first = b * ROWS + chunk * per;
            resource_logs.push(ResourceLogs {
                resource: resource(&format!("svc-{}", (first / per) % services)),
                scope_logs: vec![ScopeLogs {
                    scope: Some(InstrumentationScope {
                        name: "bench".into(),
                        ..Default::default()
                    }),
                    log_records: (first..first + per).map(&record).collect(),
                    ..Default::default()
                }],
                ..Default::default()
            });
        }
        let converted = convert::logs_to_batch(&ExportLogsServiceRequest { resource_logs })?;
        out.push(converted.batch);
    }
    Ok(out)
}

fn body(text: String) -> Option<AnyValue> {
    Some(AnyValue {
        value: Some(any_value::Value::StringValue(text)),
    })
}

fn enrich() -> anyhow::Result<Workload> {
    let dir = tempfile::tempdir()?;
    let mut services = String::from("service,team,owner,tier,oncall\n");
    for s in 0..64 {
        services.push_str(&format!(
            "svc-{s},team-{},owner-{s},{},pager-{}\n",
            s % 8,
            s % 3,
            s % 5
        ));
    }
    let mut networks = String::from("network,zone\n");
    for n in 0..16 {
        networks.push_str(&format!("10.{n}.0.0/16,zone-{n}\n"));
    }
    std::fs::write(dir.path().join("services.csv"), services)?;
    std::fs::write(dir.path().join("networks.csv"), networks)?;
    let mut config = WasmConfig::bundled("enrich");
    config.lookups = lookups(&format!(
        r#"services = {{ file = "{}", key = "service", match = "exact" }}
           networks = {{ file = "{}", key = "network", match = "cidr" }}"#,
        dir.path().join("services.csv").display(),
        dir.path().join("networks.csv").display()
    ))?;
    config.config = r#"{
        "lookups": [
            {"table": "services", "from": "resource.service.name", "to": {"set": "resource"},
             "columns": {"team": "team.name", "owner": "team.owner", "tier": "service.tier", "oncall": "team.oncall"}},
            {"table": "networks", "from": "record.client.address", "to": {"set": "record"},
             "columns": {"zone": "network.zone"}}
        ],
        "actions": [
            {"set": "resource", "key": "deployment.environment.name", "value": "prod", "action": "insert"},
            {"set": "resource", "key": "service.qualified", "value": "{resource.service.namespace}/{resource.service.name}", "action": "upsert"},
            {"set": "record", "key": "http.route", "action": "rename", "to": "route"},
            {"set": "record", "key": "session.id", "action": "delete"}
        ]
    }"#
    .to_string();
    let batches = logs_batches(16, 64, |i| LogRecord {
        time_unix_nano: 1_700_000_000_000_000_000 + i as u64,
        severity_number: 9,
        body: body(format!("request {i} handled")),
        attributes: vec![
            string(
                "client.address",
                format!("10.{}.{}.{}", i % 20, i % 256, i % 250),
            ),
            string("http.route", "/api/cart"),
            string("session.id", format!("s-{i}")),
        ],
        ..Default::default()
    })?;
    Ok(Workload {
        config,
        signal: Signal::Logs,
        batches,
        _dir: Some(dir),
        records_per_second: None,
        cycle_traces: None,
    })
}

/// The `lookups` table of a wasm processor, parsed as a pipeline would.
fn lookups(
    toml_text: &str,
) -> anyhow::Result<std::collections::BTreeMap<String, weir_wasm::LookupFile>> {
    #[derive(serde::Deserialize)]
    struct Holder {
        lookups: std::collections::BTreeMap<String, weir_wasm::LookupFile>,
    }
    let holder: Holder = toml::from_str(&format!("[lookups]\n{toml_text}"))?;
    Ok(holder.lookups)
}

const REDACT_KEYS: [&str; 5] = [
    "http.route",
    "client.address",
    "user.id",
    "user_agent.original",
    "session.id",
];

/// A body of 120 bytes; every fourth holds a finding of one preset.
fn redact_body(row: usize) -> String {
    let clean = format!(
        "2024-05-01T12:{:02}:{:02}.{:03}Z INFO checkout handled order {} in {}ms status=200 path=/api/v1/cart/items",
        row % 60,
        (row * 7) % 60,
        row % 1000,
        48_000 + row,
        row % 97
    );
    let mut line = if row.is_multiple_of(4) {
        let finding = match (row / 4) % 9 {
            0 => "for jane.doe+shop@example.com".to_string(),
            1 => "card 4111 1111 1111 1111".to_string(),
            2 => format!("from 10.{}.{}.{}", row % 256, (row / 7) % 256, row % 200),
            3 => "from 2001:db8::8a2e:370:7334".to_string(),
            4 => "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl".to_string(),
            5 => "Authorization: Basic dXNlcjpwYXNzd29yZA==".to_string(),
            6 => "key AKIAIOSFODNN7EXAMPLE".to_string(),
            7 => "iban DE89 3704 0044 0532 0130 00".to_string(),
            _ => "call +44 20 7946 0958".to_string(),
        };
        format!("{finding} {clean}")
    } else {
        clean
    };
    line.truncate(120);
    while line.len() < 120 {
        line.push(' ');
    }
    line
}

fn redact() -> anyhow::Result<Workload> {
    let mut config = WasmConfig::bundled("redact");
    config.config = format!(
        r#"{{"presets": ["email", "credit_card", "ipv4", "ipv6", "jwt", "bearer", "aws_access_key", "iban", "phone"],
            "attributes": {}}}"#,
        serde_json::to_string(&REDACT_KEYS)?
    );
    let batches = logs_batches(16, 8, |i| LogRecord {
        time_unix_nano: 1_700_000_000_000_000_000 + i as u64,
        severity_number: 9,
        body: body(redact_body(i)),
        attributes: vec![
            string("http.route", "/api/v1/cart/items"),
            string(
                "client.address",
                if i % 2 == 0 {
                    format!("10.1.{}.{}", i % 256, i % 200)
                } else {
                    "gateway".to_string()
                },
            ),
            string("user.id", format!("u-{}", i % 5000)),
            string("user_agent.original", "Mozilla/5.0 (X11; Linux x86_64)"),
            string("session.id", format!("{:016x}", i * 7919)),
        ],
        ..Default::default()
    })?;
    Ok(Workload {
        config,
        signal: Signal::Logs,
        batches,
        _dir: None,
        records_per_second: None,
        cycle_traces: None,
    })
}

/// Batches of spans: `span(i)` gives span `i`, its service and its
/// trace id.
fn span_batches(
    batches: usize,
    span: impl Fn(usize) -> (Span, String),
) -> anyhow::Result<Vec<RecordBatch>> {
    let mut out = Vec::new();
    for b in 0..batches {
        let mut resource_spans: Vec<ResourceSpans> = Vec::new();
        for i in b * ROWS..(b + 1) * ROWS {
            let (span, service) = span(i);
            let same = resource_spans.last().is_some_and(|r| {
                r.resource
                    .as_ref()
                    .and_then(|r| r.attributes.first())
                    .and_then(|kv| kv.value.as_ref())
                    .and_then(|v| v.value.as_ref())
                    == Some(&any_value::Value::StringValue(service.clone()))
            });
            if !same {
                resource_spans.push(ResourceSpans {
                    resource: resource(&service),
                    scope_spans: vec![ScopeSpans::default()],
                    ..Default::default()
                });
            }
            let last = resource_spans.last_mut().expect("one resource");
            last.scope_spans[0].spans.push(span);
        }
        let converted = convert::spans_to_batch(&ExportTraceServiceRequest { resource_spans })?;
        out.push(converted.batch);
    }
    Ok(out)
}

fn spanmetrics() -> anyhow::Result<Workload> {
    let batches = span_batches(16, |i| {
        let start = 1_700_000_000_000_000_000 + i as u64 * 1_000;
        (
            Span {
                trace_id: (i as u128 / 4).to_be_bytes().to_vec(),
                span_id: (i as u64 + 1).to_be_bytes().to_vec(),
                name: format!("op-{}", i % 16),
                kind: 2,
                start_time_unix_nano: start,
                end_time_unix_nano: start + (i as u64 % 500) * 1_000_000,
                status: (i.is_multiple_of(50)).then(|| Status {
                    code: status::StatusCode::Error as i32,
                    ..Default::default()
                }),
                ..Default::default()
            },
            format!("svc-{}", (i / 128) % 8),
        )
    })?;
    Ok(Workload {
        config: WasmConfig::bundled("spanmetrics"),
        signal: Signal::Spans,
        batches,
        _dir: None,
        records_per_second: None,
        cycle_traces: None,
    })
}

fn sample() -> anyhow::Result<Workload> {
    let mut config = WasmConfig::bundled("sample");
    config.config = r#"{"tail": {
        "decision_wait": "2s", "check_interval": "1s", "max_memory": "256MiB",
        "policies": [
            {"name": "errors", "type": "status_code", "status_codes": ["ERROR"]},
            {"name": "some", "type": "probabilistic", "sampling_percentage": 10}
        ]}}"#
        .to_string();
    // 20,000 new traces per second of test time, 4 spans each: second `b`
    // brings the first span of its 20,000 traces and the second, third
    // and fourth spans of the traces of seconds b-1, b-2 and b-3,
    // interleaved. A trace lasts 3 s and is decided 2 s after its last
    // span: 100,000 traces are in flight. Eight seconds of spans are
    // replayed, trace ids shifted on every pass.
    const NEW_PER_SECOND: usize = 20_000;
    const SECONDS: usize = 8;
    let per_second = NEW_PER_SECOND * 4;
    let batches = span_batches(SECONDS * per_second / ROWS, |p| {
        let (second, q) = (p / per_second, p % per_second);
        let (span, j) = (q % 4, q / 4);
        // Ids stay positive: the first seconds' late spans belong to the
        // previous pass's traces.
        let trace = (1_000_000_000 + NEW_PER_SECOND * second + j - NEW_PER_SECOND * span) as u128;
        let start = BASE_NS + (p as u64) * 12_500;
        (
            Span {
                trace_id: trace.to_be_bytes().to_vec(),
                span_id: (p as u64 + 1).to_be_bytes().to_vec(),
                name: format!("op-{span}"),
                kind: 2,
                start_time_unix_nano: start,
                end_time_unix_nano: start + 1_000_000,
                status: (trace.is_multiple_of(97) && span == 3).then(|| Status {
                    code: status::StatusCode::Error as i32,
                    ..Default::default()
                }),
                ..Default::default()
            },
            format!("svc-{}", j % 8),
        )
    })?;
    Ok(Workload {
        config,
        signal: Signal::Spans,
        batches,
        _dir: None,
        records_per_second: Some(per_second as u64),
        cycle_traces: Some((NEW_PER_SECOND * SECONDS) as u128),
    })
}
