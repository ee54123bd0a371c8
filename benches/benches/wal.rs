//! Write-ahead log appends of 512-span batches, with `fsync = "always"` and
//! `"never"`, one batch per append and groups of 16 (group commit).
//!
//! Each iteration appends one group to a log on the local disk (under the
//! system's temporary directory): the work the store does before it
//! acknowledges a request. `wal_append/batches` reports batches per second,
//! `wal_append/bytes` the same work in bytes of log written per second. The
//! log is cut past 256 MiB (outside the timing) so the disk does not
//! fill. Before measuring, the bench prints what one batch takes in the log.
//!
//! The batch: one resource with 5 attributes, one scope, 512 spans with 10
//! attributes (one in five with an event), converted by
//! `weir_core::convert::spans_to_batch` as the OTLP receiver does.
//!
//! Run: `cargo bench -p weir-benches --bench wal -- --quick`
//!
//! Measured on the 2-core development VM (virtual disk, other builds
//! running, so fsync latency varied between 0.5 and 4 ms from run to run):
//! a batch takes 318 KiB in the log (636 bytes per span; the schema, 6.5
//! KiB, once per segment). `fsync = "always"`: 245 to 1,900 batches/s
//! (75 to 600 MiB/s) one batch per append, 800 to 2,800 batches/s (250 MiB/s
//! to 1 GiB/s) in groups of 16. `fsync = "never"`: about 8,800 batches/s
//! (2.7 GiB/s, 4.5 million spans/s), bound by encoding and copying.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_main};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, InstrumentationScope, KeyValue, any_value::Value,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span};
use weir_core::{Signal, convert};
use weir_store::wal::{FsyncPolicy, Wal, WalOptions};

/// Spans per batch.
const SPANS: usize = 512;

/// The log is cut once it holds this many bytes.
const CUT_PAST: u64 = 256 << 20;

/// A small deterministic generator, so every run benches the same data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }

    fn id(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| (self.next() & 0xff) as u8 | 1).collect()
    }
}

fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(value) }),
        key_strindex: 0,
    }
}

fn s(v: &str) -> Value {
    Value::StringValue(v.to_string())
}

const ROUTES: &[&str] = &[
    "/api/cart",
    "/api/checkout",
    "/api/items/{id}",
    "/health",
    "/api/user",
];
const METHODS: &[&str] = &["GET", "POST", "PUT", "DELETE"];

fn trace_request() -> ExportTraceServiceRequest {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let spans = (0..SPANS)
        .map(|i| {
            let start = 1_700_000_000_000_000_000 + i as u64 * 1_000_000;
            let route = rng.pick(ROUTES);
            Span {
                trace_id: rng.id(16),
                span_id: rng.id(8),
                parent_span_id: if i % 4 == 0 { Vec::new() } else { rng.id(8) },
                name: format!("{} {route}", rng.pick(METHODS)),
                kind: 2,
                start_time_unix_nano: start,
                end_time_unix_nano: start + rng.next() % 50_000_000,
                attributes: vec![
                    kv("http.request.method", s(rng.pick(METHODS))),
                    kv("http.route", s(route)),
                    kv("url.path", s(&format!("{route}?page={}", i % 7))),
                    kv(
                        "http.response.status_code",
                        Value::IntValue(200 + (i as i64 % 3) * 100),
                    ),
                    kv("server.address", s("checkout.shop.svc.cluster.local")),
                    kv("server.port", Value::IntValue(8080)),
                    kv("network.protocol.version", s("1.1")),
                    kv("user_agent.original", s("Mozilla/5.0 (X11; Linux x86_64)")),
                    kv(
                        "http.response.body.size",
                        Value::IntValue((rng.next() % 100_000) as i64),
                    ),
                    kv("sampled", Value::BoolValue(true)),
                ],
                events: if i % 5 == 0 {
                    vec![span::Event {
                        time_unix_nano: start + 10,
                        name: "exception".into(),
                        attributes: vec![kv("exception.type", s("TimeoutError"))],
                        ..Default::default()
                    }]
                } else {
                    Vec::new()
                },
                status: Some(Status {
                    code: if i % 10 == 0 { 2 } else { 0 },
                    message: String::new(),
                }),
                ..Default::default()
            }
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", s("checkout")),
                    kv("service.version", s("2.14.1")),
                    kv("host.name", s("ip-10-0-12-34.eu-west-1.compute.internal")),
                    kv("k8s.namespace.name", s("shop")),
                    kv("cloud.region", s("eu-west-1")),
                ],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "io.opentelemetry.http".into(),
                    version: "0.33.0".into(),
                    ..Default::default()
                }),
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// A fresh log directory for this bench run.
fn fresh_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("weir-wal-bench-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn open(dir: PathBuf, fsync: FsyncPolicy) -> Wal {
    let options = WalOptions {
        fsync,
        ..WalOptions::new(dir)
    };
    Wal::open(options).expect("open the WAL").0
}

fn wal(c: &mut Criterion) {
    let batch = convert::spans_to_batch(&trace_request())
        .expect("valid OTLP")
        .batch;

    // What one batch takes in the log: the first of its table in a segment
    // carries the schema, the next ones only dictionaries and data.
    let dir = fresh_dir("size");
    let mut log = open(dir.clone(), FsyncPolicy::Never);
    let empty = log.disk_bytes();
    log.append(&[(Signal::Spans, &batch)]).expect("append");
    let first = log.disk_bytes() - empty;
    log.append(&[(Signal::Spans, &batch)]).expect("append");
    let record = log.disk_bytes() - empty - first;
    drop(log);
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!(
        "one {SPANS}-span batch in the WAL: {record} bytes; the first of a segment {first} bytes \
         (schema {} bytes); in memory {} bytes",
        first - record,
        batch.get_array_memory_size()
    );

    for unit in ["batches", "bytes"] {
        let mut group = c.benchmark_group(format!("wal_append/{unit}"));
        group.measurement_time(Duration::from_secs(5));
        for (policy, fsync) in [
            ("always", FsyncPolicy::Always),
            ("never", FsyncPolicy::Never),
        ] {
            for size in [1u64, 16] {
                group.throughput(match unit {
                    "batches" => Throughput::Elements(size),
                    _ => Throughput::Bytes(record * size),
                });
                let entries = vec![(Signal::Spans, &batch); size as usize];
                let dir = fresh_dir(&format!("{policy}-{size}"));
                let mut log = open(dir.clone(), fsync);
                group.bench_function(format!("fsync_{policy}/group_{size}"), |b| {
                    b.iter_custom(|iters| {
                        let mut spent = Duration::ZERO;
                        for _ in 0..iters {
                            let started = Instant::now();
                            let lsns = log.append(black_box(&entries)).expect("append");
                            spent += started.elapsed();
                            if log.disk_bytes() > CUT_PAST
                                && let Some(last) = lsns.last()
                            {
                                log.remove_through(*last).expect("cut the log");
                            }
                        }
                        spent
                    });
                });
                drop(log);
                let _ = std::fs::remove_dir_all(&dir);
            }
        }
        group.finish();
    }
}

/// Runs every benchmark of this file (what `criterion_group!` would
/// generate, with a doc comment).
fn benches() {
    let mut c = Criterion::default().configure_from_args();
    wal(&mut c);
}

criterion_main!(benches);
