//! Command-line options ([`Args`], what the user types) and the validated
//! [`Plan`] the load generator runs.

use std::time::Duration;

use clap::{Parser, ValueEnum};

use crate::client::ClientOptions;
use crate::generate::{MAX_ATTRIBUTES, Shape};
use crate::pool::{BodyEncoding, PoolOptions, Signal};
use crate::run::{PhasePlan, mix_schedule};

/// Duration of a run when neither `--duration` nor `--requests` is given.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(10);

/// Wire protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Protocol {
    /// OTLP/gRPC (HTTP/2).
    Grpc,
    /// OTLP/HTTP: POST to /v1/traces, /v1/logs, /v1/metrics (protobuf, or JSON with --json).
    Http,
}

/// Which signal to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SignalArg {
    /// Traces (records are spans).
    Spans,
    /// Logs (records are log records).
    Logs,
    /// Metrics (records are data points: sums, gauges, histograms).
    Metrics,
    /// All three, weighted by --mix.
    Mix,
}

/// How gRPC requests are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GrpcClient {
    /// Send pre-encoded bodies through tonic with a pass-through codec (cheapest for the generator).
    Raw,
    /// Use the generated TraceServiceClient / LogsServiceClient / MetricsServiceClient, encoding every request like an SDK exporter.
    Typed,
}

/// Report format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// A short human-readable report.
    Text,
    /// One JSON object (for scripts).
    Json,
}

/// Sends OTLP load (spans, logs, metrics) at a set rate or flat out, and reports what happened.
///
/// Request bodies are generated and encoded before the timed phase, so generating data does not
/// limit the rate. The report gives records/s, requests/s, wire MB/s, request latency percentiles
/// (successful requests, retries included), errors by kind (gRPC code, HTTP status, connection
/// errors, timeouts) and records the server rejected in partial_success. Progress lines go to
/// stderr; the report goes to stdout.
///
/// Exit status: 0 on success, 1 if the run could not start, 2 if the share of failed requests
/// exceeded --max-error-ratio.
#[derive(Debug, Clone, Parser)]
#[command(name = "weir-loadgen", version, max_term_width = 100)]
pub struct Args {
    /// Where to send [default: http://127.0.0.1:4317 for grpc, http://127.0.0.1:4318 for http]
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,

    /// Wire protocol.
    #[arg(long, value_enum, default_value_t = Protocol::Grpc)]
    pub protocol: Protocol,

    /// Send OTLP/JSON bodies instead of protobuf (http only).
    #[arg(long)]
    pub json: bool,

    /// Signal to send.
    #[arg(long, value_enum, default_value_t = SignalArg::Spans)]
    pub signal: SignalArg,

    /// Weights of spans,logs,metrics requests for --signal mix.
    #[arg(long, value_name = "SPANS,LOGS,METRICS", default_value = "70,20,10")]
    pub mix: String,

    /// Records (spans, log records, data points) per request.
    #[arg(long, default_value_t = 512)]
    pub batch_size: usize,

    /// Target records per second across all workers; 0 = as fast as possible.
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,

    /// How long to send, e.g. "30s", "2m" [default: 10s unless --requests is given]
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,

    /// Stop after this many requests (with --duration, whichever comes first).
    #[arg(long)]
    pub requests: Option<u64>,

    /// Send for this long first and discard its numbers (same connections).
    #[arg(long, value_parser = parse_duration, default_value = "0s")]
    pub warmup: Duration,

    /// Requests in flight at once.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,

    /// HTTP/2 connections for gRPC, shared by the in-flight requests [default: min(concurrency, 4)].
    /// OTLP/HTTP uses one HTTP/1.1 keep-alive connection per in-flight request.
    #[arg(long)]
    pub connections: Option<usize>,

    /// Attributes per record.
    #[arg(long, default_value_t = 10)]
    pub attributes: usize,

    /// Length in bytes of each attribute value.
    #[arg(long, default_value_t = 16)]
    pub attribute_value_len: usize,

    /// Distinct values per attribute key.
    #[arg(long, default_value_t = 64)]
    pub attribute_cardinality: usize,

    /// Attributes per resource, service.name included.
    #[arg(long, default_value_t = 8)]
    pub resource_attributes: usize,

    /// Distinct service.name values; each request spreads its records over them.
    #[arg(long, default_value_t = 4)]
    pub services: usize,

    /// Gzip request bodies (pre-compressed for http; tonic compresses each gRPC request).
    #[arg(long)]
    pub gzip: bool,

    /// How gRPC requests are encoded.
    #[arg(long, value_enum, default_value_t = GrpcClient::Raw)]
    pub grpc_client: GrpcClient,

    /// Distinct pre-encoded requests per signal; the run cycles through them.
    #[arg(long, default_value_t = 32)]
    pub pool_size: usize,

    /// Build the pool again every second, stamped with the clock, so that the
    /// records' times follow the wall clock (for rules, whose event time must move on).
    /// The records are the same each time (services, operations, attribute values):
    /// only their times move.
    #[arg(long)]
    pub live_time: bool,

    /// Retry a retryable failure (gRPC UNAVAILABLE, HTTP 429/503, ...) up to N times, waiting
    /// Retry-After when given, else 100 ms doubling. 0 = count it as an error and move on.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub retry: u32,

    /// Give up on a request after this long.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub timeout: Duration,

    /// Print a line to stderr every second.
    #[arg(long)]
    pub progress: bool,

    /// Report format.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,

    /// Exit with status 2 if failed requests / all requests exceeds this (1.0 = never).
    #[arg(long, default_value_t = 1.0)]
    pub max_error_ratio: f64,

    /// Tokio worker threads [default: number of CPUs].
    #[arg(long)]
    pub threads: Option<usize>,

    /// Seed of the data generator.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s)
        .map_err(|e| format!("{e}; write a duration such as \"30s\", \"500ms\" or \"2m\""))
}

/// A command line that cannot run.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PlanError {
    /// A number option is out of its range.
    #[error("--{option} must be {expected}, got {got}")]
    OutOfRange {
        /// The option.
        option: &'static str,
        /// What it must be.
        expected: &'static str,
        /// What was given.
        got: String,
    },
    /// `--mix` does not parse.
    #[error(
        "--mix must be three non-negative integer weights for spans,logs,metrics with at least one above zero, like 70,20,10; got {0:?}"
    )]
    Mix(String),
    /// `--json` with gRPC.
    #[error("--json applies to --protocol http only; gRPC bodies are always protobuf")]
    JsonOverGrpc,
}

/// Everything a run needs, validated.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Protocol.
    pub protocol: Protocol,
    /// gRPC encoding mode.
    pub grpc_client: GrpcClient,
    /// Client settings.
    pub client: ClientOptions,
    /// gRPC connections (workers share them round-robin).
    pub connections: usize,
    /// What to put in the pool.
    pub pool: PoolOptions,
    /// The measured phase.
    pub phase: PhasePlan,
    /// The warm-up phase, if any.
    pub warmup: Option<PhasePlan>,
    /// Mix weights, when mixing.
    pub mix: Option<[u32; 3]>,
    /// Report format.
    pub output: Output,
    /// Exit-status threshold.
    pub max_error_ratio: f64,
    /// Tokio worker threads.
    pub threads: Option<usize>,
    /// Rebuild the pool every second with the clock's time.
    pub live_time: bool,
}

fn parse_mix(s: &str) -> Result<[u32; 3], PlanError> {
    let parts: Vec<&str> = s.split(',').map(str::trim).collect();
    let weights: Vec<u32> = parts
        .iter()
        .map(|p| p.parse::<u32>())
        .collect::<Result<_, _>>()
        .map_err(|_| PlanError::Mix(s.to_owned()))?;
    let weights: [u32; 3] = weights
        .try_into()
        .map_err(|_| PlanError::Mix(s.to_owned()))?;
    if weights.iter().all(|w| *w == 0) || weights.iter().any(|w| *w > 1_000) {
        return Err(PlanError::Mix(s.to_owned()));
    }
    Ok(weights)
}

fn at_least_one(option: &'static str, value: usize) -> Result<(), PlanError> {
    if value == 0 {
        return Err(PlanError::OutOfRange {
            option,
            expected: "at least 1",
            got: value.to_string(),
        });
    }
    Ok(())
}

impl Plan {
    /// Checks `args` and resolves defaults.
    pub fn from_args(args: &Args) -> Result<Self, PlanError> {
        at_least_one("batch-size", args.batch_size)?;
        at_least_one("concurrency", args.concurrency)?;
        at_least_one("pool-size", args.pool_size)?;
        at_least_one("services", args.services)?;
        at_least_one("attribute-cardinality", args.attribute_cardinality)?;
        if let Some(c) = args.connections {
            at_least_one("connections", c)?;
        }
        if args.batch_size > 1_000_000 {
            return Err(PlanError::OutOfRange {
                option: "batch-size",
                expected: "at most 1000000",
                got: args.batch_size.to_string(),
            });
        }
        for (option, value) in [
            ("attributes", args.attributes),
            ("resource-attributes", args.resource_attributes),
        ] {
            if value > MAX_ATTRIBUTES {
                return Err(PlanError::OutOfRange {
                    option,
                    expected: "at most 1024",
                    got: value.to_string(),
                });
            }
        }
        if !args.rate.is_finite() || args.rate < 0.0 {
            return Err(PlanError::OutOfRange {
                option: "rate",
                expected: "a number of records per second >= 0",
                got: args.rate.to_string(),
            });
        }
        if !(0.0..=1.0).contains(&args.max_error_ratio) {
            return Err(PlanError::OutOfRange {
                option: "max-error-ratio",
                expected: "between 0.0 and 1.0",
                got: args.max_error_ratio.to_string(),
            });
        }
        if args.requests == Some(0) {
            return Err(PlanError::OutOfRange {
                option: "requests",
                expected: "at least 1",
                got: "0".into(),
            });
        }
        if args.duration == Some(Duration::ZERO) {
            return Err(PlanError::OutOfRange {
                option: "duration",
                expected: "longer than 0s",
                got: "0s".into(),
            });
        }
        if args.json && args.protocol == Protocol::Grpc {
            return Err(PlanError::JsonOverGrpc);
        }
        let (signals, mix, schedule) = match args.signal {
            SignalArg::Spans => (vec![Signal::Spans], None, vec![Signal::Spans]),
            SignalArg::Logs => (vec![Signal::Logs], None, vec![Signal::Logs]),
            SignalArg::Metrics => (vec![Signal::Metrics], None, vec![Signal::Metrics]),
            SignalArg::Mix => {
                let weights = parse_mix(&args.mix)?;
                let signals = Signal::ALL
                    .iter()
                    .zip(weights)
                    .filter(|(_, w)| *w > 0)
                    .map(|(s, _)| *s)
                    .collect();
                (signals, Some(weights), mix_schedule(weights))
            }
        };
        let endpoint = args.endpoint.clone().unwrap_or_else(|| {
            match args.protocol {
                Protocol::Grpc => "http://127.0.0.1:4317",
                Protocol::Http => "http://127.0.0.1:4318",
            }
            .to_owned()
        });
        let encoding = if args.json {
            BodyEncoding::Json
        } else {
            BodyEncoding::Protobuf
        };
        let duration = match (args.duration, args.requests) {
            (None, None) => Some(DEFAULT_DURATION),
            (d, _) => d,
        };
        let rate = (args.rate > 0.0).then_some(args.rate);
        let phase = PhasePlan {
            concurrency: args.concurrency,
            duration,
            requests: args.requests,
            rate,
            retries: args.retry,
            schedule,
            progress: args.progress,
        };
        let warmup = (!args.warmup.is_zero()).then(|| PhasePlan {
            duration: Some(args.warmup),
            requests: None,
            progress: false,
            ..phase.clone()
        });
        Ok(Self {
            protocol: args.protocol,
            grpc_client: args.grpc_client,
            client: ClientOptions {
                endpoint,
                timeout: args.timeout,
                gzip: args.gzip,
                encoding,
            },
            connections: args.connections.unwrap_or_else(|| args.concurrency.min(4)),
            pool: PoolOptions {
                shape: Shape {
                    batch_size: args.batch_size,
                    attributes: args.attributes,
                    attribute_value_len: args.attribute_value_len,
                    attribute_cardinality: args.attribute_cardinality,
                    resource_attributes: args.resource_attributes,
                    services: args.services,
                },
                signals,
                per_signal: args.pool_size,
                encoding,
                gzip: args.gzip,
                keep_messages: args.protocol == Protocol::Grpc
                    && args.grpc_client == GrpcClient::Typed,
                seed: args.seed,
            },
            phase,
            warmup,
            mix,
            output: args.output,
            max_error_ratio: args.max_error_ratio,
            threads: args.threads,
            live_time: args.live_time,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(args: &[&str]) -> Result<Plan, PlanError> {
        let args =
            Args::try_parse_from(std::iter::once("weir-loadgen").chain(args.iter().copied()))
                .expect("arguments parse");
        Plan::from_args(&args)
    }

    /// Defaults: gRPC to 127.0.0.1:4317, spans, batch 512, 8 in flight over 4 connections, 10 s flat out.
    #[test]
    fn defaults_resolve() {
        let p = plan(&[]).expect("defaults are valid");
        assert_eq!(p.client.endpoint, "http://127.0.0.1:4317");
        assert_eq!(p.pool.shape, Shape::default());
        assert_eq!(p.phase.concurrency, 8);
        assert_eq!(p.connections, 4);
        assert_eq!(p.phase.duration, Some(DEFAULT_DURATION));
        assert_eq!(p.phase.rate, None);
        assert!(p.warmup.is_none());
        let http = plan(&["--protocol", "http"]).expect("valid");
        assert_eq!(http.client.endpoint, "http://127.0.0.1:4318");
    }

    /// --requests alone runs without a time limit; durations parse as human strings.
    #[test]
    fn requests_and_durations() {
        let p = plan(&["--requests", "100"]).expect("valid");
        assert_eq!(p.phase.duration, None);
        assert_eq!(p.phase.requests, Some(100));
        let p = plan(&["--duration", "1m30s", "--warmup", "5s"]).expect("valid");
        assert_eq!(p.phase.duration, Some(Duration::from_secs(90)));
        assert_eq!(
            p.warmup.expect("warm-up set").duration,
            Some(Duration::from_secs(5))
        );
        assert!(Args::try_parse_from(["weir-loadgen", "--duration", "soon"]).is_err());
    }

    /// Mixed signals build all three pools and a schedule; bad weights are refused with the reason.
    #[test]
    fn mix_is_validated() {
        let p = plan(&["--signal", "mix", "--mix", "1,1,0"]).expect("valid");
        assert_eq!(p.pool.signals, vec![Signal::Spans, Signal::Logs]);
        assert_eq!(p.phase.schedule, vec![Signal::Spans, Signal::Logs]);
        assert!(matches!(
            plan(&["--signal", "mix", "--mix", "1,2"]),
            Err(PlanError::Mix(_))
        ));
        assert!(matches!(
            plan(&["--signal", "mix", "--mix", "0,0,0"]),
            Err(PlanError::Mix(_))
        ));
    }

    /// Impossible combinations and ranges are refused, naming the option.
    #[test]
    fn bad_options_are_refused() {
        assert_eq!(plan(&["--json"]).err(), Some(PlanError::JsonOverGrpc));
        let err = plan(&["--concurrency", "0"]).expect_err("refused");
        assert!(err.to_string().contains("--concurrency"));
        assert!(plan(&["--rate=-5"]).is_err());
        assert!(plan(&["--max-error-ratio", "2"]).is_err());
        assert!(plan(&["--attributes", "5000"]).is_err());
        assert!(plan(&["--protocol", "http", "--json"]).is_ok());
    }
}
