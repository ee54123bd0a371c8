//! The plugin's logic end to end, natively: spans in as [`SpanColumns`]
//! (the SDK's harness builds log batches only), ticks by hand, the
//! emitted OTLP/JSON read back into points. This module holds the helpers;
//! the tests are in its children, by concern.

mod config;
mod counting;
mod emission;
mod instances;

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use serde_json::{Value, json};
use weir_plugin::{Error, Text};

use crate::{Plan, SpanColumns, SpanMetrics, Store};

const SECOND: u64 = 1_000_000_000;
/// A tick time: 2024-05-01T00:00:00Z.
const T0: u64 = 1_714_521_600 * SECOND;

/// One span as a test writes it.
#[derive(Clone, Default)]
struct Span {
    service: Option<&'static str>,
    name: &'static str,
    kind: i64,
    status: Option<i64>,
    duration_ns: Option<i64>,
    attributes: Vec<(&'static str, &'static str)>,
    resource: Vec<(&'static str, &'static str)>,
}

/// A server span of `checkout` named `name`, lasting `ms` milliseconds.
fn span(name: &'static str, ms: f64) -> Span {
    Span {
        service: Some("checkout"),
        name,
        kind: 2,
        status: None,
        duration_ns: Some((ms * 1e6) as i64),
        ..Span::default()
    }
}

/// The columns `SpanColumns::read` would read from a batch of `spans`.
fn columns(plan: &Plan, spans: &[Span]) -> SpanColumns {
    let attr = |kv: &[(&str, &str)], key: &str| {
        kv.iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.to_string())
    };
    let dimensions: Vec<Vec<Option<String>>> = plan
        .dimensions
        .iter()
        .map(|d| spans.iter().map(|s| attr(&s.attributes, &d.name)).collect())
        .collect();
    let dimensions_resource = plan
        .dimensions
        .iter()
        .zip(&dimensions)
        .map(|(d, span)| {
            span.iter()
                .any(Option::is_none)
                .then(|| spans.iter().map(|s| attr(&s.resource, &d.name)).collect())
        })
        .collect();
    SpanColumns {
        service: spans.iter().map(|s| s.service).collect::<Text>(),
        name: spans
            .iter()
            .map(|s| (!s.name.is_empty()).then_some(s.name))
            .collect::<Text>(),
        kind: spans.iter().map(|s| Some(s.kind)).collect(),
        status: spans.iter().map(|s| s.status).collect(),
        duration_ns: spans.iter().map(|s| s.duration_ns).collect(),
        dimensions,
        dimensions_resource,
        resource: plan
            .resource_attributes
            .iter()
            .map(|k| spans.iter().map(|s| attr(&s.resource, k)).collect())
            .collect(),
    }
}

/// The state shared by the instances of one test, with writes that can
/// be made to fail.
#[derive(Clone, Default)]
struct Shared {
    map: Rc<RefCell<HashMap<String, Vec<u8>>>>,
    refuse_blobs: Rc<Cell<bool>>,
}

impl Store for Shared {
    fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.map.borrow().get(key).cloned()
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), Error> {
        if self.refuse_blobs.get() && key.contains("/blob/") && !value.is_empty() {
            return Err(Error::LimitExceeded("the plugin's state is full".into()));
        }
        self.map
            .borrow_mut()
            .insert(key.to_string(), value.to_vec());
        Ok(())
    }
}

fn plan(config: Value) -> Plan {
    Plan::from_json(&config.to_string()).unwrap_or_else(|e| panic!("{config}: {e}"))
}

/// An instance with its own state.
fn instance(config: Value) -> SpanMetrics<Shared> {
    SpanMetrics::new(plan(config), Shared::default())
}

fn observe<S: Store>(m: &mut SpanMetrics<S>, spans: &[Span]) {
    let cols = columns(m.plan(), spans);
    m.observe(&cols);
}

/// One emitted data point, flattened.
#[derive(Debug, Clone, PartialEq)]
struct Point {
    resource: BTreeMap<String, String>,
    scope: String,
    metric: String,
    unit: String,
    temporality: i64,
    attributes: BTreeMap<String, Value>,
    start: u64,
    time: u64,
    /// Calls (sum) or count (histogram).
    count: u64,
    sum: f64,
    buckets: Vec<u64>,
    bounds: Vec<f64>,
}

fn u64_of(v: &Value) -> u64 {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .or_else(|| v.as_u64())
        .unwrap_or_else(|| panic!("{v} is not a uint64"))
}

fn attributes(v: &Value) -> BTreeMap<String, Value> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|kv| {
                    let value = kv["value"].as_object().expect("an AnyValue");
                    let (_, inner) = value.iter().next().expect("one field");
                    (kv["key"].as_str().expect("key").to_string(), inner.clone())
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Every data point of an emitted request.
fn points(json: &str) -> Vec<Point> {
    let root: Value = serde_json::from_str(json).expect("the plugin emits valid JSON");
    let mut out = Vec::new();
    for rm in root["resourceMetrics"].as_array().expect("resourceMetrics") {
        let resource: BTreeMap<String, String> = attributes(&rm["resource"]["attributes"])
            .into_iter()
            .map(|(k, v)| (k, v.as_str().expect("string").to_string()))
            .collect();
        for sm in rm["scopeMetrics"].as_array().expect("scopeMetrics") {
            let scope = sm["scope"]["name"].as_str().unwrap_or("").to_string();
            for m in sm["metrics"].as_array().expect("metrics") {
                let metric = m["name"].as_str().expect("name").to_string();
                let unit = m["unit"].as_str().unwrap_or("").to_string();
                let (data, is_sum) = match (&m["sum"], &m["histogram"]) {
                    (Value::Object(_), _) => (&m["sum"], true),
                    (_, Value::Object(_)) => (&m["histogram"], false),
                    _ => panic!("{metric} is neither a sum nor a histogram"),
                };
                if is_sum {
                    assert_eq!(data["isMonotonic"], json!(true), "{metric}");
                }
                for p in data["dataPoints"].as_array().expect("dataPoints") {
                    out.push(Point {
                        resource: resource.clone(),
                        scope: scope.clone(),
                        metric: metric.clone(),
                        unit: unit.clone(),
                        temporality: data["aggregationTemporality"]
                            .as_i64()
                            .expect("temporality"),
                        attributes: attributes(&p["attributes"]),
                        start: u64_of(&p["startTimeUnixNano"]),
                        time: u64_of(&p["timeUnixNano"]),
                        count: u64_of(if is_sum { &p["asInt"] } else { &p["count"] }),
                        sum: p["sum"].as_f64().unwrap_or(0.0),
                        buckets: p["bucketCounts"]
                            .as_array()
                            .map(|a| a.iter().map(u64_of).collect())
                            .unwrap_or_default(),
                        bounds: p["explicitBounds"]
                            .as_array()
                            .map(|a| a.iter().map(|b| b.as_f64().expect("bound")).collect())
                            .unwrap_or_default(),
                    });
                }
            }
        }
    }
    out
}

/// The requests a flush at `now` emits.
fn requests<S: Store>(m: &mut SpanMetrics<S>, now: u64) -> Vec<String> {
    let mut out = Vec::new();
    m.flush(now, |json| {
        out.push(json.to_string());
        Ok(())
    })
    .expect("the flush succeeds");
    out
}

/// The points a flush at `now` emits.
fn tick<S: Store>(m: &mut SpanMetrics<S>, now: u64) -> Vec<Point> {
    requests(m, now).iter().flat_map(|j| points(j)).collect()
}

fn attrs<V: AsRef<str>>(kv: &[(&str, V)]) -> BTreeMap<String, Value> {
    kv.iter()
        .map(|(k, v)| (k.to_string(), json!(v.as_ref())))
        .collect()
}

fn find<'a, V: AsRef<str>>(points: &'a [Point], metric: &str, kv: &[(&str, V)]) -> &'a Point {
    let want = attrs(kv);
    points
        .iter()
        .find(|p| p.metric == metric && p.attributes == want)
        .unwrap_or_else(|| panic!("no {metric} point {want:?} in {points:#?}"))
}

const CALLS: &str = "traces.span.metrics.calls";
const DURATION: &str = "traces.span.metrics.duration";

fn server(name: &str, status: &str) -> Vec<(&'static str, String)> {
    vec![
        ("service.name", "checkout".into()),
        ("span.name", name.to_string()),
        ("span.kind", "SPAN_KIND_SERVER".into()),
        ("status.code", status.to_string()),
    ]
}
