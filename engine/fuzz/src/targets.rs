//! The targets themselves. Each takes any bytes; an `Err` from the code
//! under test is a correct answer to bad input, only a panic (or a hang,
//! or an abort) is a finding.

#[cfg(feature = "all-targets")]
use std::sync::Arc;
#[cfg(feature = "all-targets")]
use std::time::Duration;

#[cfg(feature = "all-targets")]
use datafusion::datasource::MemTable;
#[cfg(feature = "all-targets")]
use datafusion::prelude::SessionContext;
#[cfg(feature = "all-targets")]
use futures::StreamExt;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
#[cfg(feature = "all-targets")]
use weir_config::{QueryConfig, Registry};
use weir_core::convert::{self, json};
#[cfg(feature = "all-targets")]
use weir_query::SqlService;
use weir_wal::{FsyncPolicy, Wal, WalOptions};

use crate::Target;

/// Runs one of the targets that need no engine (`otlp_proto`,
/// `otlp_json`, `wal_replay`) on `data`; `false` for another target.
/// These are the targets `weir-libfuzzer` runs.
pub fn run_light(target: Target, data: &[u8]) -> bool {
    match target {
        Target::OtlpProto => otlp(data, Decode::Proto),
        Target::OtlpJson => otlp(data, Decode::Json),
        Target::WalReplay => wal(data),
        Target::PipelineToml | Target::Sql => return false,
    }
    true
}

/// What the targets need across runs: the component registry, the SQL
/// service over its tables, and a runtime for it.
#[cfg(feature = "all-targets")]
pub struct Runner {
    registry: Registry,
    runtime: tokio::runtime::Runtime,
    sql: SqlService,
}

#[cfg(feature = "all-targets")]
impl Runner {
    /// A runner; the SQL target's tables are the OTLP/JSON examples of the
    /// `otlp_json` corpus.
    pub fn new() -> anyhow::Result<Runner> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let config = QueryConfig {
            timeout: Duration::from_secs(2),
            memory_limit: 64 << 20,
            total_memory_limit: 128 << 20,
            ..QueryConfig::default()
        };
        Ok(Runner {
            registry: weir_cli::registry::builtins(),
            runtime,
            sql: SqlService::new(tables()?, &config),
        })
    }

    /// Runs `target` on `data`.
    pub fn run(&self, target: Target, data: &[u8]) {
        match target {
            Target::PipelineToml => self.pipeline(data),
            Target::Sql => self.query(data),
            light => {
                run_light(light, data);
            }
        }
    }

    fn pipeline(&self, data: &[u8]) {
        if let Ok(text) = std::str::from_utf8(data) {
            let _ = weir_config::parse_str(text, "fuzz.toml", &self.registry);
        }
    }

    fn query(&self, data: &[u8]) {
        let Ok(sql) = std::str::from_utf8(data) else {
            return;
        };
        self.runtime.block_on(async {
            let Ok(mut stream) = self.sql.execute(sql).await else {
                return;
            };
            // The service's own deadline ends a long query; this bounds
            // the rows read so that a huge but cheap result ends too.
            let mut rows = 0usize;
            while let Some(batch) = stream.next().await {
                match batch {
                    Ok(b) => rows += b.num_rows(),
                    Err(_) => break,
                }
                if rows > 1_000_000 {
                    break;
                }
            }
        });
    }
}

#[derive(Clone, Copy)]
enum Decode {
    Proto,
    Json,
}

/// The first byte picks the signal; the rest is the request. What
/// converts is converted back too.
fn otlp(data: &[u8], decode: Decode) {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    match (pick % 3, decode) {
        (0, Decode::Proto) => {
            let decoded = ExportLogsServiceRequest::decode(body).ok();
            read_logs_directly(body, decoded.as_ref());
            logs(walked(body, convert::logs_decoded_size(body), decoded))
        }
        (0, Decode::Json) => logs(json::decode_logs(body).ok()),
        (1, Decode::Proto) => {
            let decoded = ExportTraceServiceRequest::decode(body).ok();
            read_directly(body, decoded.as_ref());
            spans(walked(body, convert::spans_decoded_size(body), decoded))
        }
        (1, Decode::Json) => spans(json::decode_spans(body).ok()),
        (_, Decode::Proto) => metrics(walked(
            body,
            convert::metrics_decoded_size(body),
            ExportMetricsServiceRequest::decode(body).ok(),
        )),
        (_, Decode::Json) => metrics(json::decode_metrics(body).ok()),
    }
    let _ = convert::json_decoded_size(body);
}

/// The walk that bounds decoding before it happens must accept every body
/// the decoder accepts: a body it refused would be refused by Weir though
/// it decodes. What it counts is within the bound known from the body's
/// length alone, which lets the Kafka source skip the walk.
fn walked<R>(
    body: &[u8],
    walk: Result<usize, convert::WireError>,
    decoded: Option<R>,
) -> Option<R> {
    if let (Err(e), Some(_)) = (&walk, &decoded) {
        panic!("the decode-size walk refused a body that decodes: {e}");
    }
    if let Ok(counted) = walk {
        let most = convert::decoded_size_at_most(body.len());
        assert!(
            counted <= most,
            "the walk counted {counted} bytes for a body of {}, over the bound from its length ({most})",
            body.len()
        );
    }
    decoded
}

/// The direct reader of trace bodies reads only what prost decodes, into
/// the rows prost's path makes.
fn read_directly(body: &[u8], decoded: Option<&ExportTraceServiceRequest>) {
    let Some(read) = convert::SpansProto::scan(body).and_then(|scan| scan.read()) else {
        return;
    };
    let Some(decoded) = decoded else {
        panic!("the direct reader read a trace body prost refuses");
    };
    same_rows(read, convert::spans_to_batch(decoded));
}

/// [`read_directly`] for logs bodies.
fn read_logs_directly(body: &[u8], decoded: Option<&ExportLogsServiceRequest>) {
    let Some(read) = convert::LogsProto::scan(body).and_then(|scan| scan.read()) else {
        return;
    };
    let Some(decoded) = decoded else {
        panic!("the direct reader read a logs body prost refuses");
    };
    same_rows(read, convert::logs_to_batch(decoded));
}

fn same_rows(
    read: Result<convert::Converted, convert::ConvertError>,
    expected: Result<convert::Converted, convert::ConvertError>,
) {
    match (read, expected) {
        (Ok(read), Ok(expected)) => {
            assert_eq!(
                read.batch, expected.batch,
                "the direct reader's rows differ"
            );
            assert_eq!(read.rejected, expected.rejected);
            assert_eq!(read.rejection, expected.rejection);
        }
        (Err(_), Err(_)) => {}
        (read, expected) => panic!("direct: {read:?}, prost's path: {expected:?}"),
    }
}

fn logs(request: Option<ExportLogsServiceRequest>) {
    if let Some(Ok(c)) = request.map(|r| convert::logs_to_batch(&r)) {
        let _ = convert::batch_to_logs(&c.batch);
    }
}

fn spans(request: Option<ExportTraceServiceRequest>) {
    if let Some(Ok(c)) = request.map(|r| convert::spans_to_batch(&r)) {
        let _ = convert::batch_to_spans(&c.batch);
    }
}

fn metrics(request: Option<ExportMetricsServiceRequest>) {
    if let Some(Ok(c)) = request.map(|r| convert::metrics_to_batch(&r)) {
        let _ = convert::batch_to_metrics(&c.batch);
    }
}

/// A segment's file name: its first LSN, 20 digits.
const SEGMENT: &str = "00000000000000000001.wal";

/// The first byte picks the form: even, the rest is a segment file as it
/// is (mostly stopped by the checksums); odd, the rest is framed into a
/// segment with a valid header and valid record checksums (see
/// [`frame_segment`]), which reaches the Arrow IPC decoding of replay.
fn wal(data: &[u8]) {
    let Some((&form, body)) = data.split_first() else {
        return;
    };
    let segment = match form % 2 {
        0 => body.to_vec(),
        _ => frame_segment(body),
    };
    let Ok(dir) = tempfile::tempdir() else {
        return;
    };
    if std::fs::write(dir.path().join(SEGMENT), &segment).is_err() {
        return;
    }
    let mut options = WalOptions::new(dir.path());
    options.fsync = FsyncPolicy::Never;
    let _ = Wal::open(options);
}

/// A segment (format version 1, first LSN 1) from `body` read as records:
/// each a little-endian `u16` length and that many bytes of payload after
/// the LSN (table, flags, reserved, IPC). Each record gets the next LSN,
/// a valid length and checksum, and its padding.
pub fn frame_segment(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + body.len() * 2);
    out.extend_from_slice(b"WEIRWAL1");
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&1u64.to_le_bytes());
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    let mut rest = body;
    let mut lsn = 1u64;
    while rest.len() >= 2 {
        let len = usize::from(u16::from_le_bytes([rest[0], rest[1]])).min(rest.len() - 2);
        let mut payload = lsn.to_le_bytes().to_vec();
        payload.extend_from_slice(&rest[2..2 + len]);
        rest = &rest[2 + len..];
        let len_bytes = u32::try_from(payload.len())
            .unwrap_or(u32::MAX)
            .to_le_bytes();
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&len_bytes);
        hasher.update(&payload);
        out.extend_from_slice(&len_bytes);
        out.extend_from_slice(&hasher.finalize().to_le_bytes());
        out.extend_from_slice(&payload);
        out.resize(out.len().next_multiple_of(8), 0);
        lsn += 1;
    }
    out
}

/// The inverse of [`frame_segment`] for a valid segment: its records'
/// payloads after the LSN, each behind its `u16` length (records longer
/// than 64 KiB are cut). The seeds of the framed form come from real
/// segments this way.
pub fn unframe_segment(segment: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut at = 32;
    while at + 8 <= segment.len() {
        let len = u32::from_le_bytes([
            segment[at],
            segment[at + 1],
            segment[at + 2],
            segment[at + 3],
        ]) as usize;
        let start = at + 8;
        let Some(payload) = segment.get(start..start + len) else {
            break;
        };
        let Some(after_lsn) = payload.get(8..) else {
            break;
        };
        let take = &after_lsn[..after_lsn.len().min(usize::from(u16::MAX))];
        out.extend_from_slice(&u16::try_from(take.len()).unwrap_or(u16::MAX).to_le_bytes());
        out.extend_from_slice(take);
        at = (start + len).next_multiple_of(8);
    }
    out
}

/// `logs`, `spans` and `metrics` from the `otlp_json` corpus's examples
/// (after their first byte, the signal's pick).
#[cfg(feature = "all-targets")]
fn tables() -> anyhow::Result<weir_query::Register> {
    let logs = convert::logs_to_batch(&json::decode_logs(
        &include_bytes!("../corpus/otlp_json/logs.json")[1..],
    )?)?
    .batch;
    let spans = convert::spans_to_batch(&json::decode_spans(
        &include_bytes!("../corpus/otlp_json/spans.json")[1..],
    )?)?
    .batch;
    let metrics = convert::metrics_to_batch(&json::decode_metrics(
        &include_bytes!("../corpus/otlp_json/metrics.json")[1..],
    )?)?
    .batch;
    let tables = [("logs", logs), ("spans", spans), ("metrics", metrics)];
    Ok(Arc::new(move |ctx: &SessionContext| {
        for (name, batch) in &tables {
            let table = MemTable::try_new(batch.schema(), vec![vec![batch.clone()]])?;
            ctx.register_table(*name, Arc::new(table))?;
        }
        Ok(())
    }))
}
