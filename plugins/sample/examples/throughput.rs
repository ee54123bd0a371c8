//! Times the plugin's logic natively.
//!
//! ```sh
//! cargo run --release -p sample --example throughput [tail|tail-tight|head|head-logs ...]
//! ```
//!
//! - `tail`: tail sampling at a steady 100,000 traces in flight. Every
//!   simulated second 20,000 traces start, and every trace gets one span
//!   a second for four seconds (so 80,000 spans a simulated second in
//!   batches of 1,024, interleaving all traces in flight); with
//!   `decision_wait = "2s"` a trace is decided two seconds after its
//!   fourth span, so five seconds' worth of traces are in flight;
//!   a tick every simulated second, policies: errors (1 trace in 100 has
//!   an error span), latency over 2 s, 10 % probabilistic. The hold is a
//!   fake that counts 300 bytes per span (about what a span's Arrow row
//!   costs) and frees them on release or discard; `max_memory =
//!   "256MiB"`, above what the load needs. Checks the memory (held bytes
//!   plus bookkeeping) after every call and prints its peak.
//! - `tail-tight`: the same with `max_memory = "48MiB"`, below what the
//!   load needs, so that traces are decided early all along.
//! - `head`: head sampling of spans at 10 %, batches of 1,024 spans, one
//!   in ten carrying `ot=th:8;rv:...` in its tracestate.
//! - `head-logs`: head sampling of log records at 10 %, a third of them
//!   without a trace id (hashed by an attribute).
//!
//! The time counted is the plugin's calls (`process` and `tick` with the
//! fake hold for tail; the decision over already-read columns for head),
//! not the building of the batches.

use std::collections::HashMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use sample::config::Plan;
use sample::head::{self, LogColumns};
use sample::tail::parse_trace_id;
use sample::{Held, Holder, TailColumns, TailSampler};
use serde_json::json;
use weir_plugin::{Error, Text};

const ROWS: usize = 1024;
const SECOND: u64 = 1_000_000_000;
const BYTES_PER_SPAN: u64 = 300;

/// A hold that counts: rows per trace, bytes in all.
#[derive(Default)]
struct CountingHold {
    rows: HashMap<u128, u32>,
    bytes: u64,
    peak_bytes: u64,
    released: u64,
    discarded: u64,
}

impl CountingHold {
    fn take(&mut self, keys: &[String]) -> Held {
        let mut rows = 0u64;
        for k in keys {
            if let Some(id) = parse_trace_id(k) {
                rows += u64::from(self.rows.remove(&id).unwrap_or(0));
            }
        }
        let freed = rows * BYTES_PER_SPAN;
        self.bytes -= freed;
        Held {
            rows: rows as usize,
            bytes: freed,
        }
    }
}

impl Holder for CountingHold {
    fn drop_rows(&mut self, mask: &[bool]) -> Result<usize, Error> {
        Ok(mask.iter().filter(|d| !**d).count())
    }

    fn hold(&mut self, keys: &[Option<&str>]) -> Result<Held, Error> {
        let mut n = 0;
        for k in keys.iter().flatten() {
            if let Some(id) = parse_trace_id(k) {
                *self.rows.entry(id).or_default() += 1;
                n += 1;
            }
        }
        self.bytes += n * BYTES_PER_SPAN;
        self.peak_bytes = self.peak_bytes.max(self.bytes);
        Ok(Held {
            rows: n as usize,
            bytes: self.bytes,
        })
    }

    fn release(&mut self, keys: &[String]) -> Result<Held, Error> {
        let h = self.take(keys);
        self.released += h.rows as u64;
        Ok(h)
    }

    fn discard(&mut self, keys: &[String]) -> Result<Held, Error> {
        let h = self.take(keys);
        self.discarded += h.rows as u64;
        Ok(h)
    }
}

/// A 128-bit trace id of trace number `n`, spread like random ids.
fn trace_id(n: u64) -> u128 {
    let x = u128::from(n).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835);
    x ^ (x >> 61) | 1
}

/// The spans of simulated second `sec`: one span of each trace started in
/// the last four seconds (`per_second` new ones a second), as batches of
/// `ROWS`, trace by trace in a scattered order.
fn second(sec: u64, per_second: u64) -> Vec<TailColumns> {
    let live: Vec<u64> = (sec.saturating_sub(3)..=sec)
        .flat_map(|s| (s * per_second)..((s + 1) * per_second))
        .collect();
    let n = live.len();
    let order: Vec<usize> = (0..n).map(|i| (i * 7919) % n).collect();
    let mut out = Vec::new();
    for chunk in order.chunks(ROWS) {
        let mut ids = Text::with_capacity(chunk.len(), chunk.len() * 32);
        let (mut status, mut start, mut end) = (Vec::new(), Vec::new(), Vec::new());
        for &i in chunk {
            let t = live[i];
            ids.push(Some(&format!("{:032x}", trace_id(t))));
            let span_of_trace = sec - t / per_second;
            status.push(Some(if t % 100 == 7 && span_of_trace == 2 {
                2
            } else {
                0
            }));
            // A trace's spans within its first ~100 ms; 1 in 1,000 is slow.
            let begin = ((t / per_second) * SECOND) as i64 + span_of_trace as i64 * 20_000_000;
            let slow = if t % 1000 == 3 { 3 * SECOND as i64 } else { 0 };
            start.push(Some(begin));
            end.push(Some(begin + 5_000_000 + (t % 50) as i64 * 1_000_000 + slow));
        }
        out.push(TailColumns {
            trace_ids: ids,
            trace_states: Some(Text::with_capacity(chunk.len(), 0).tap_nulls(chunk.len())),
            status: Some(status),
            start: Some(start),
            end: Some(end),
            attributes: Vec::new(),
        });
    }
    out
}

trait TapNulls {
    fn tap_nulls(self, n: usize) -> Self;
}

impl TapNulls for Text {
    fn tap_nulls(mut self, n: usize) -> Self {
        for _ in 0..n {
            self.push(None);
        }
        self
    }
}

fn tail(max_memory: &str) {
    let config = json!({"tail": {"decision_wait": "2s", "max_memory": max_memory, "policies": [
        {"name": "errors", "type": "status_code", "status_codes": ["ERROR"]},
        {"name": "slow", "type": "latency", "threshold": "2s"},
        {"name": "some", "type": "probabilistic", "sampling_percentage": 10}]}});
    let plan = Plan::from_json(&config.to_string()).unwrap_or_else(|e| panic!("{e}"));
    let tail_plan = plan.tail.unwrap_or_else(|| panic!("tail"));
    let limit = tail_plan.max_memory;
    let mut s = TailSampler::new(tail_plan);
    let mut hold = CountingHold::default();
    let per_second = 20_000;
    let t0 = 1_714_521_600 * SECOND;
    let (mut spans, mut busy) = (0u64, Duration::ZERO);
    let (mut peak, mut peak_in_flight, mut early) = (0u64, 0usize, 0u64);
    let seconds = 24;
    for sec in 0..seconds {
        let batches = second(sec, per_second);
        let started = Instant::now();
        s.tick(t0 + sec * SECOND, &mut hold)
            .unwrap_or_else(|e| panic!("{e:?}"));
        for b in &batches {
            s.process(b, &mut hold).unwrap_or_else(|e| panic!("{e:?}"));
            peak = peak.max(s.memory());
            peak_in_flight = peak_in_flight.max(s.in_flight());
            assert!(s.memory() <= limit, "{} > {limit}", s.memory());
            assert_eq!(s.held_bytes(), hold.bytes);
        }
        let took = started.elapsed();
        // Measured warm: once the first five seconds filled the window.
        if sec >= 5 {
            busy += took;
            spans += batches.iter().map(|b| b.len() as u64).sum::<u64>();
        }
        early += s.take_stats().early;
    }
    #[allow(clippy::print_stdout)]
    {
        println!(
            "tail (max_memory {max_memory}): {:>10.0} spans/s over {spans} spans; up to {peak_in_flight} traces in flight; \
             peak memory {:.1} MiB of {:.0} MiB ({:.1} MiB held, bookkeeping {:.1} MiB at the peak of traces); \
             {early} traces decided early; {} spans released, {} discarded",
            spans as f64 / busy.as_secs_f64(),
            peak as f64 / 1048576.0,
            limit as f64 / 1048576.0,
            hold.peak_bytes as f64 / 1048576.0,
            (peak_in_flight as u64 * sample::tail::TRACE_BYTES) as f64 / 1048576.0,
            hold.released,
            hold.discarded,
        );
    }
}

fn head_spans() {
    let plan = Plan::from_json(&json!({"head": {"sampling_percentage": 10}}).to_string())
        .unwrap_or_else(|e| panic!("{e}"));
    let plan = plan.head.unwrap_or_else(|| panic!("head"));
    let batches: Vec<(Text, Text)> = (0..16u64)
        .map(|b| {
            let mut ids = Text::with_capacity(ROWS, ROWS * 32);
            let mut states = Text::with_capacity(ROWS, ROWS * 4);
            for r in 0..ROWS as u64 {
                let id = trace_id(b * ROWS as u64 + r);
                ids.push(Some(&format!("{id:032x}")));
                if r % 10 == 0 {
                    states.push(Some(&format!("ot=th:8;rv:{:014x},x=1", (id as u64) >> 8)));
                } else {
                    states.push(None);
                }
            }
            (ids, states)
        })
        .collect();
    let started = Instant::now();
    let (mut done, mut kept) = (0usize, 0u64);
    while started.elapsed() < Duration::from_secs(2) {
        let (ids, states) = &batches[done % batches.len()];
        let v = black_box(head::spans(&plan, ids, states));
        kept += v.tally.kept;
        done += 1;
    }
    let secs = started.elapsed().as_secs_f64();
    #[allow(clippy::print_stdout)]
    {
        println!(
            "head spans: {:>10.0} spans/s ({:.1} % kept)",
            (done * ROWS) as f64 / secs,
            kept as f64 * 100.0 / (done * ROWS) as f64
        );
    }
}

fn head_logs() {
    let config = json!({"head": {"sampling_percentage": 10, "logs_without_trace_id": "hash",
                                  "logs_hash_attribute": "log.record.uid"}});
    let plan = Plan::from_json(&config.to_string()).unwrap_or_else(|e| panic!("{e}"));
    let plan = plan.head.unwrap_or_else(|| panic!("head"));
    let batches: Vec<LogColumns> = (0..16u64)
        .map(|b| {
            let mut ids = Text::with_capacity(ROWS, ROWS * 32);
            let mut hashed = Vec::with_capacity(ROWS);
            for r in 0..ROWS as u64 {
                let n = b * ROWS as u64 + r;
                if r % 3 == 0 {
                    ids.push(None);
                    hashed.push(Some(format!("uid-{n}")));
                } else {
                    ids.push(Some(&format!("{:032x}", trace_id(n))));
                    hashed.push(None);
                }
            }
            LogColumns {
                trace_ids: ids,
                threshold: vec![None; ROWS],
                randomness: vec![None; ROWS],
                hashed: Some(hashed),
            }
        })
        .collect();
    let started = Instant::now();
    let mut done = 0usize;
    while started.elapsed() < Duration::from_secs(2) {
        black_box(head::logs(&plan, &batches[done % batches.len()]));
        done += 1;
    }
    #[allow(clippy::print_stdout)]
    {
        println!(
            "head logs:  {:>10.0} records/s",
            (done * ROWS) as f64 / started.elapsed().as_secs_f64()
        );
    }
}

fn main() {
    let only: Vec<String> = std::env::args().skip(1).collect();
    let run = |name: &str| only.is_empty() || only.iter().any(|o| o == name);
    if run("tail") {
        tail("256MiB");
    }
    if run("tail-tight") {
        tail("48MiB");
    }
    if run("head") {
        head_spans();
    }
    if run("head-logs") {
        head_logs();
    }
}
