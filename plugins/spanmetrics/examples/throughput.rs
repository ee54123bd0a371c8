//! Times the plugin's logic natively: batches of 1,024 spans through the
//! aggregation (what `process` does between reading the columns and
//! returning), and the emission of the series (what `tick` does).
//!
//! ```sh
//! cargo run --release -p spanmetrics --example throughput [defaults|dimensions|handoff|wide ...]
//! ```
//!
//! Four inputs, each batches of 1,024 spans of 20 services, 300 series in
//! all unless said otherwise:
//!
//! - `defaults`: the default dimensions only;
//! - `dimensions`: two more, `http.request.method` (with a default) and
//!   `http.response.status_code`, read from span attributes (half the
//!   spans lack the method, so the resource is read too), and one copied
//!   resource attribute (the dimensions multiply the series);
//! - `handoff`: `defaults` in an instance that is not the emitter, which
//!   writes its counts to the plugin's state after every batch;
//! - `wide`: `defaults` over 10,000 series (the default `max_series`).
//!
//! Prints spans/s for each, and the time one emission of its series takes.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hint::black_box;
use std::rc::Rc;
use std::time::{Duration, Instant};

use serde_json::json;
use spanmetrics::{Plan, SpanColumns, SpanMetrics, Store};
use weir_plugin::{Error, Text};

const ROWS: usize = 1024;

/// A state that keeps what it is given, as the host's does.
#[derive(Clone, Default)]
struct Memory(Rc<RefCell<HashMap<String, Vec<u8>>>>);

impl Store for Memory {
    fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.0.borrow().get(key).cloned()
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), Error> {
        self.0.borrow_mut().insert(key.to_string(), value.to_vec());
        Ok(())
    }
}

const OPERATIONS: [&str; 15] = [
    "GET /api/v1/cart",
    "POST /api/v1/cart/items",
    "GET /api/v1/products/{id}",
    "SELECT shop.products",
    "INSERT shop.orders",
    "redis GET",
    "redis SET",
    "publish orders",
    "process orders",
    "GET /healthz",
    "grpc checkout.Pay",
    "grpc checkout.Refund",
    "render template",
    "http.client GET",
    "authorize",
];

/// Batch `n` of spans spread over `series` series: series `s` is
/// service `s % 20`, name `s / 20`, and a kind and status of its own; the
/// batches visit every series in a scattered order.
fn batch(n: usize, series: usize, plan: &Plan) -> SpanColumns {
    let services: Vec<String> = (0..20).map(|s| format!("service-{s:02}")).collect();
    let names: Vec<String> = (0..series.div_ceil(20))
        .map(|i| format!("{} #{i}", OPERATIONS[i % OPERATIONS.len()]))
        .collect();
    let mut service = Text::with_capacity(ROWS, ROWS * 12);
    let mut name = Text::with_capacity(ROWS, ROWS * 24);
    let (mut kind, mut status, mut duration_ns) = (Vec::new(), Vec::new(), Vec::new());
    for row in 0..ROWS {
        // 7919 is prime: coprime with any series count used here.
        let s = ((n * ROWS + row) * 7919) % series;
        service.push(Some(&services[s % 20]));
        name.push(Some(&names[s / 20]));
        kind.push(Some(1 + (s / 20 % 3) as i64));
        status.push(if s.is_multiple_of(7) { Some(2) } else { None });
        duration_ns.push(Some(((row * 2_654_435_761) % 900_000_000) as i64));
    }
    let dims = plan.dimensions.len();
    let method: Vec<Option<String>> = (0..ROWS)
        .map(|row| {
            row.is_multiple_of(2)
                .then(|| ["GET", "POST"][row % 4 / 2].to_string())
        })
        .collect();
    let code: Vec<Option<String>> = (0..ROWS)
        .map(|row| Some(["200", "404", "500"][row % 3].to_string()))
        .collect();
    SpanColumns {
        service,
        name,
        kind,
        status,
        duration_ns,
        dimensions: [method, code].into_iter().take(dims).collect(),
        dimensions_resource: [Some(vec![None; ROWS]), None]
            .into_iter()
            .take(dims)
            .collect(),
        resource: plan
            .resource_attributes
            .iter()
            .map(|_| vec![Some("production".to_string()); ROWS])
            .collect(),
    }
}

struct Case {
    name: &'static str,
    config: serde_json::Value,
    series: usize,
    emitter: bool,
}

fn main() {
    let dimensions = json!({
        "dimensions": [{"name": "http.request.method", "default": "GET"},
                       {"name": "http.response.status_code"}],
        "resource_attributes": ["deployment.environment.name"]
    });
    let cases = [
        Case {
            name: "defaults",
            config: json!({}),
            series: 300,
            emitter: true,
        },
        Case {
            name: "dimensions",
            config: dimensions,
            series: 300,
            emitter: true,
        },
        Case {
            name: "handoff",
            config: json!({}),
            series: 300,
            emitter: false,
        },
        Case {
            name: "wide",
            config: json!({}),
            series: 10_000,
            emitter: true,
        },
    ];
    let only: Vec<String> = std::env::args().skip(1).collect();
    for case in cases
        .iter()
        .filter(|c| only.is_empty() || only.iter().any(|o| o == c.name))
    {
        let plan = Plan::from_json(&case.config.to_string()).unwrap_or_else(|e| panic!("{e}"));
        let batches: Vec<SpanColumns> = (0..16).map(|n| batch(n, case.series, &plan)).collect();
        let state = Memory::default();
        let mut m = SpanMetrics::new(plan, state.clone());
        if case.emitter {
            // The emitter counts into its own table from its first tick on.
            let _ = m.flush(1, |_| Ok(()));
        }
        for b in &batches {
            black_box(m.observe(b));
        }
        let started = Instant::now();
        let mut done = 0usize;
        while started.elapsed() < Duration::from_secs(2) {
            black_box(m.observe(&batches[done % batches.len()]));
            done += 1;
        }
        let secs = started.elapsed().as_secs_f64();
        let spans = (done * ROWS) as f64 / secs;
        let handed: usize = state.0.borrow().values().map(Vec::len).sum();
        let emit = Instant::now();
        let mut json = 0;
        let _ = m.flush(2_000_000_000, |text| {
            json += text.len();
            Ok(())
        });
        let emit = emit.elapsed();
        let series = m.series().len();
        #[allow(clippy::print_stdout)]
        {
            print!(
                "{:<10} {:>10.0} spans/s  ({done} batches of {ROWS})",
                case.name, spans
            );
            if !case.emitter {
                print!("; {} KiB written to the state per batch", handed / 1024);
            }
            println!(
                "; {series} series emitted in {:.1} ms ({} KiB of OTLP/JSON)",
                emit.as_secs_f64() * 1e3,
                json / 1024
            );
        }
    }
}
