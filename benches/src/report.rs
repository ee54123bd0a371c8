//! The end-of-run [`Summary`]: built from a phase's totals, printed as text
//! or as one JSON object (`--output json`, read by `compare-rotel.sh`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use crate::config::{GrpcClient, Plan, Protocol};
use crate::run::Totals;

/// Request latency percentiles, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Slowest.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

/// Errors of one kind in the summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorSummary {
    /// Failed attempts of this kind.
    pub count: u64,
    /// The first one's detail.
    pub example: String,
}

/// What a run did, for people and scripts.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Where the load went.
    pub endpoint: String,
    /// `grpc` or `http`.
    pub protocol: &'static str,
    /// `protobuf` or `json`.
    pub encoding: &'static str,
    /// `raw` or `typed` for gRPC; absent for HTTP.
    pub grpc_client: Option<&'static str>,
    /// The signal, or `mix S,L,M`.
    pub signal: String,
    /// Records per request.
    pub batch_size: usize,
    /// Requests in flight.
    pub concurrency: usize,
    /// gRPC connections (HTTP: keep-alive connections, one per in-flight request).
    pub connections: usize,
    /// Target records per second; absent when flat out.
    pub target_rate: Option<f64>,
    /// Whether bodies were gzipped.
    pub gzip: bool,
    /// Length of the measured phase in seconds.
    pub elapsed_secs: f64,
    /// Requests accepted.
    pub requests_ok: u64,
    /// Requests that failed for good.
    pub requests_failed: u64,
    /// Attempts (requests plus retries).
    pub attempts: u64,
    /// Retries made.
    pub retries: u64,
    /// Records accepted by the server.
    pub records_ok: u64,
    /// Records rejected in `partial_success`.
    pub records_rejected: u64,
    /// Records in failed requests.
    pub records_failed: u64,
    /// Records accepted per second.
    pub records_per_sec: f64,
    /// Requests accepted per second.
    pub requests_per_sec: f64,
    /// Request body megabytes (10^6) per second on the wire, every attempt.
    pub wire_mb_per_sec: f64,
    /// Uncompressed body megabytes per second.
    pub payload_mb_per_sec: f64,
    /// Mean wire bytes per request.
    pub mean_request_bytes: f64,
    /// Latency of accepted requests.
    pub latency_ms: Latency,
    /// Failed requests over all requests.
    pub error_ratio: f64,
    /// Failed attempts by kind.
    pub errors: BTreeMap<String, ErrorSummary>,
    /// Records accepted per signal.
    pub records_by_signal: BTreeMap<&'static str, u64>,
    /// CPU seconds the load generator used during the measured phase (Linux only).
    pub loadgen_cpu_secs: Option<f64>,
}

/// CPU time (user + system) this process has used, from `/proc/self/stat`; `None` off Linux.
pub fn process_cpu_time() -> Option<Duration> {
    // USER_HZ, the unit of utime and stime, is 100 on every Linux target Rust supports.
    const TICKS_PER_SEC: u64 = 100;
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_millis(
        (utime + stime) * 1_000 / TICKS_PER_SEC,
    ))
}

impl Summary {
    /// Builds the summary of a measured phase.
    pub fn new(plan: &Plan, totals: &Totals, elapsed: Duration, cpu: Option<Duration>) -> Self {
        let secs = elapsed.as_secs_f64().max(1e-9);
        let h = &totals.latency_us;
        let ms = |us: u64| us as f64 / 1_000.0;
        let latency = if h.is_empty() {
            Latency::default()
        } else {
            Latency {
                p50: ms(h.value_at_quantile(0.50)),
                p90: ms(h.value_at_quantile(0.90)),
                p99: ms(h.value_at_quantile(0.99)),
                p999: ms(h.value_at_quantile(0.999)),
                max: ms(h.max()),
                mean: h.mean() / 1_000.0,
            }
        };
        let signal = match plan.mix {
            Some([s, l, m]) => format!("mix {s},{l},{m}"),
            None => plan
                .phase
                .schedule
                .first()
                .map_or("none", |s| s.name())
                .to_owned(),
        };
        Self {
            endpoint: plan.client.endpoint.clone(),
            protocol: match plan.protocol {
                Protocol::Grpc => "grpc",
                Protocol::Http => "http",
            },
            encoding: match plan.client.encoding {
                crate::pool::BodyEncoding::Protobuf => "protobuf",
                crate::pool::BodyEncoding::Json => "json",
            },
            grpc_client: (plan.protocol == Protocol::Grpc).then_some(match plan.grpc_client {
                GrpcClient::Raw => "raw",
                GrpcClient::Typed => "typed",
            }),
            signal,
            batch_size: plan.pool.shape.batch_size,
            concurrency: plan.phase.concurrency,
            connections: match plan.protocol {
                Protocol::Grpc => plan.connections,
                Protocol::Http => plan.phase.concurrency,
            },
            target_rate: plan.phase.rate,
            gzip: plan.client.gzip,
            elapsed_secs: elapsed.as_secs_f64(),
            requests_ok: totals.requests_ok,
            requests_failed: totals.requests_failed,
            attempts: totals.attempts,
            retries: totals.retries,
            records_ok: totals.records_ok,
            records_rejected: totals.records_rejected,
            records_failed: totals.records_failed,
            records_per_sec: totals.records_ok as f64 / secs,
            requests_per_sec: totals.requests_ok as f64 / secs,
            wire_mb_per_sec: totals.wire_bytes as f64 / 1e6 / secs,
            payload_mb_per_sec: totals.payload_bytes as f64 / 1e6 / secs,
            mean_request_bytes: if totals.attempts == 0 {
                0.0
            } else {
                totals.wire_bytes as f64 / totals.attempts as f64
            },
            latency_ms: latency,
            error_ratio: totals.error_ratio(),
            errors: totals
                .errors
                .iter()
                .map(|(k, e)| {
                    (
                        k.clone(),
                        ErrorSummary {
                            count: e.count,
                            example: e.example.clone(),
                        },
                    )
                })
                .collect(),
            records_by_signal: totals
                .records_by_signal
                .iter()
                .map(|(s, n)| (s.name(), *n))
                .collect(),
            loadgen_cpu_secs: cpu.map(|c| c.as_secs_f64()),
        }
    }

    /// The summary as one line of JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// The summary as a short human-readable report.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let rate = self.target_rate.map_or_else(
            || "flat out".to_owned(),
            |r| format!("target {r:.0} records/s"),
        );
        let client = self
            .grpc_client
            .map_or_else(String::new, |c| format!(" ({c} client)"));
        let _ = writeln!(
            s,
            "weir-loadgen: {}{client} {} {}{}, {}, batch {}, {} in flight over {} connections, {rate}, {:.1} s",
            self.protocol,
            self.encoding,
            self.endpoint,
            if self.gzip { " gzip" } else { "" },
            self.signal,
            self.batch_size,
            self.concurrency,
            self.connections,
            self.elapsed_secs,
        );
        let _ = writeln!(
            s,
            "  records   {:>12.0} /s   {} accepted, {} rejected (partial_success), {} in failed requests",
            self.records_per_sec, self.records_ok, self.records_rejected, self.records_failed
        );
        if self.records_by_signal.len() > 1 {
            let parts: Vec<String> = self
                .records_by_signal
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            let _ = writeln!(s, "            by signal: {}", parts.join(", "));
        }
        let _ = writeln!(
            s,
            "  requests  {:>12.1} /s   {} ok, {} failed ({:.2}%), {} retries",
            self.requests_per_sec,
            self.requests_ok,
            self.requests_failed,
            self.error_ratio * 100.0,
            self.retries
        );
        let _ = writeln!(
            s,
            "  wire      {:>12.1} MB/s ({:.1} MB/s before compression), {:.1} KB per request",
            self.wire_mb_per_sec,
            self.payload_mb_per_sec,
            self.mean_request_bytes / 1e3
        );
        let l = &self.latency_ms;
        let _ = writeln!(
            s,
            "  latency   p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms, mean {:.2} ms",
            l.p50, l.p90, l.p99, l.p999, l.max, l.mean
        );
        if self.errors.is_empty() {
            let _ = writeln!(s, "  errors    none");
        } else {
            for (i, (kind, e)) in self.errors.iter().enumerate() {
                let _ = writeln!(
                    s,
                    "  {:<9} {kind}: {} (first: {})",
                    if i == 0 { "errors" } else { "" },
                    e.count,
                    e.example
                );
            }
        }
        if let Some(cpu) = self.loadgen_cpu_secs {
            let _ = writeln!(
                s,
                "  loadgen   {cpu:.1} CPU s ({:.2} cores)",
                cpu / self.elapsed_secs.max(1e-9)
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::config::Args;

    /// Rates divide by the elapsed time; the JSON carries the fields the comparison script reads.
    #[test]
    fn summary_computes_rates_and_serialises() {
        let args = Args::parse_from(["weir-loadgen", "--batch-size", "100"]);
        let plan = Plan::from_args(&args).expect("valid");
        let mut totals = Totals {
            requests_ok: 20,
            records_ok: 2_000,
            wire_bytes: 4_000_000,
            attempts: 20,
            ..Totals::default()
        };
        for us in [1_000, 2_000, 3_000] {
            totals.latency_us.record(us).expect("in range");
        }
        let summary = Summary::new(&plan, &totals, Duration::from_secs(2), None);
        assert!((summary.records_per_sec - 1_000.0).abs() < 1e-9);
        assert!((summary.requests_per_sec - 10.0).abs() < 1e-9);
        assert!((summary.wire_mb_per_sec - 2.0).abs() < 1e-9);
        assert!((summary.latency_ms.p50 - 2.0).abs() < 0.01);
        let json: serde_json::Value = serde_json::from_str(&summary.to_json()).expect("valid json");
        assert_eq!(json["records_per_sec"], 1_000.0);
        assert_eq!(json["signal"], "spans");
        assert!(json["latency_ms"]["p99"].is_number());
        assert!(summary.to_text().contains("errors    none"));
    }

    /// On Linux the process CPU time is readable and does not go backwards.
    #[test]
    fn cpu_time_reads_on_linux() {
        if cfg!(target_os = "linux") {
            let a = process_cpu_time().expect("readable on linux");
            let mut x = 0u64;
            for i in 0..10_000_000u64 {
                x = x.wrapping_add(i * i);
            }
            assert!(x > 0);
            let b = process_cpu_time().expect("readable on linux");
            assert!(b >= a);
        }
    }
}
