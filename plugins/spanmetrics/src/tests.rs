//! The plugin's logic end to end, natively: spans in as [`SpanColumns`]
//! (the SDK's harness builds log batches only), ticks by hand, the
//! emitted OTLP/JSON read back into points.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use serde_json::{Value, json};
use weir_plugin::{Error, Plugin, Text, harness};

use crate::counters::{self, recorded};
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

/// Scenario: five spans of one series with known durations, default
/// config. Guarantees: one call counter and one histogram point with the
/// connector's names, unit, scope, buckets (upper bounds inclusive) and
/// cumulative temporality; the count, sum and bucket counts are exact.
#[test]
fn counts_and_buckets_for_known_spans() {
    let mut m = instance(json!({}));
    observe(
        &mut m,
        &[
            span("GET /cart", 1.0),
            span("GET /cart", 2.0),
            span("GET /cart", 3.0),
            span("GET /cart", 15_000.0),
            span("GET /cart", 20_000.0),
        ],
    );
    let points = tick(&mut m, T0);
    assert_eq!(points.len(), 2, "{points:#?}");
    let labels = server("GET /cart", "STATUS_CODE_UNSET");
    let calls = find(&points, CALLS, &labels);
    assert_eq!(calls.count, 5);
    assert_eq!(calls.temporality, 2);
    assert_eq!(calls.unit, "");
    assert_eq!(calls.scope, "spanmetricsconnector");
    assert_eq!(
        calls.resource,
        BTreeMap::from([("service.name".to_string(), "checkout".to_string())])
    );
    let d = find(&points, DURATION, &labels);
    assert_eq!(d.unit, "ms");
    assert_eq!(d.temporality, 2);
    assert_eq!(d.count, 5);
    assert_eq!(d.sum, 1.0 + 2.0 + 3.0 + 15_000.0 + 20_000.0);
    assert_eq!(
        d.bounds,
        [
            2.0, 4.0, 6.0, 8.0, 10.0, 50.0, 100.0, 200.0, 400.0, 800.0, 1000.0, 1400.0, 2000.0,
            5000.0, 10_000.0, 15_000.0
        ]
    );
    let mut buckets = vec![0u64; 17];
    buckets[0] = 2; // 1ms and 2ms: the bound is inclusive
    buckets[1] = 1; // 3ms
    buckets[15] = 1; // 15s, the last bound
    buckets[16] = 1; // 20s, past every bound
    assert_eq!(d.buckets, buckets);
    assert_eq!((calls.time, d.time), (T0, T0));
    assert_eq!(
        calls.start,
        T0 - 15 * SECOND,
        "the first interval starts one interval back"
    );
    assert_eq!(d.start, calls.start);
}

/// Scenario: spans of several names, kinds and statuses. Guarantees:
/// each combination is its own series; kinds and statuses are named as
/// the connector names them, a span without a status is UNSET, and a
/// negative or unknown duration counts as 0.
#[test]
fn kinds_and_statuses_make_series_named_like_the_connector() {
    let mut m = instance(json!({"buckets": ["1ms", "10ms"]}));
    let mut spans = Vec::new();
    for (kind, status) in [
        (0, Some(0)),
        (1, Some(1)),
        (2, Some(2)),
        (3, None),
        (4, Some(2)),
        (5, Some(1)),
    ] {
        spans.push(Span {
            kind,
            status,
            ..span("work", 5.0)
        });
    }
    spans.push(Span {
        duration_ns: Some(-5),
        ..span("odd", 0.0)
    });
    spans.push(Span {
        duration_ns: None,
        ..span("odd", 0.0)
    });
    observe(&mut m, &spans);
    let points = tick(&mut m, T0);
    for (kind, status) in [
        ("SPAN_KIND_UNSPECIFIED", "STATUS_CODE_UNSET"),
        ("SPAN_KIND_INTERNAL", "STATUS_CODE_OK"),
        ("SPAN_KIND_SERVER", "STATUS_CODE_ERROR"),
        ("SPAN_KIND_CLIENT", "STATUS_CODE_UNSET"),
        ("SPAN_KIND_PRODUCER", "STATUS_CODE_ERROR"),
        ("SPAN_KIND_CONSUMER", "STATUS_CODE_OK"),
    ] {
        let labels = [
            ("service.name", "checkout"),
            ("span.name", "work"),
            ("span.kind", kind),
            ("status.code", status),
        ];
        assert_eq!(find(&points, CALLS, &labels).count, 1, "{kind} {status}");
        assert_eq!(find(&points, DURATION, &labels).buckets, [0, 1, 0]);
    }
    let odd = server("odd", "STATUS_CODE_UNSET");
    let d = find(&points, DURATION, &odd);
    assert_eq!((d.count, d.sum, d.buckets.clone()), (2, 0.0, vec![2, 0, 0]));
}

/// Scenario: two configured dimensions, one with a default, on spans
/// that have the attribute, only their resource has it, or neither.
/// Guarantees: the span's attribute wins over the resource's, the default
/// fills in, a dimension without value or default is left out, and the
/// dimensions follow the four defaults.
#[test]
fn dimensions_come_from_the_span_then_the_resource_then_the_default() {
    let mut m = instance(json!({"dimensions": [
        {"name": "http.method", "default": "GET"},
        {"name": "http.route"}
    ]}));
    let s = |attributes, resource| Span {
        attributes,
        resource,
        ..span("handler", 1.0)
    };
    observe(
        &mut m,
        &[
            s(
                vec![("http.method", "POST"), ("http.route", "/cart")],
                vec![("http.method", "PUT")],
            ),
            s(vec![("http.route", "/cart")], vec![("http.method", "PUT")]),
            s(vec![("http.route", "/cart")], vec![]),
            s(vec![], vec![]),
            s(vec![], vec![("http.route", "/from-resource")]),
        ],
    );
    let points = tick(&mut m, T0);
    let base = server("handler", "STATUS_CODE_UNSET");
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut v = base.clone();
        v.extend(extra.iter().map(|(k, x)| (*k, x.to_string())));
        v
    };
    for (extra, n) in [
        (vec![("http.method", "POST"), ("http.route", "/cart")], 1),
        (vec![("http.method", "PUT"), ("http.route", "/cart")], 1),
        (vec![("http.method", "GET"), ("http.route", "/cart")], 1),
        (vec![("http.method", "GET")], 1),
        (
            vec![("http.method", "GET"), ("http.route", "/from-resource")],
            1,
        ),
    ] {
        assert_eq!(find(&points, CALLS, &with(&extra)).count, n, "{extra:?}");
    }
    assert_eq!(points.len(), 10);
}

/// Scenario: `exclude_dimensions`, `resource_attributes`, an empty
/// namespace, seconds and no histogram. Guarantees: excluded dimensions
/// merge series, copied resource attributes make resources of their own,
/// names lose the prefix, bounds and sums are in seconds.
#[test]
fn options_shape_names_resources_and_units() {
    let mut m = instance(json!({
        "namespace": "",
        "exclude_dimensions": ["status.code", "span.kind"],
        "resource_attributes": ["deployment.environment.name"],
        "unit": "s",
        "buckets": ["100ms", "1s"],
    }));
    let s = |env, status| Span {
        status: Some(status),
        resource: vec![("deployment.environment.name", env)],
        ..span("GET /", 500.0)
    };
    observe(&mut m, &[s("prod", 1), s("prod", 2), s("staging", 0)]);
    let points = tick(&mut m, T0);
    assert_eq!(points.len(), 4);
    let labels = [("service.name", "checkout"), ("span.name", "GET /")];
    let prod: Vec<&Point> = points
        .iter()
        .filter(|p| {
            p.resource
                .get("deployment.environment.name")
                .map(String::as_str)
                == Some("prod")
        })
        .collect();
    assert_eq!(prod.len(), 2);
    let calls = prod.iter().find(|p| p.metric == "calls").expect("calls");
    assert_eq!((calls.count, &calls.attributes), (2, &attrs(&labels)));
    let d = prod
        .iter()
        .find(|p| p.metric == "duration")
        .expect("duration");
    assert_eq!(
        (d.unit.as_str(), d.sum, d.bounds.clone()),
        ("s", 1.0, vec![0.1, 1.0])
    );
    assert_eq!(d.buckets, [0, 2, 0]);

    let mut m = instance(json!({"histogram": false}));
    observe(&mut m, &[span("a", 1.0)]);
    let points = tick(&mut m, T0);
    assert_eq!(points.len(), 1);
    assert_eq!(points[0].metric, CALLS);
}

/// Scenario: more series than `max_series`. Guarantees: the first
/// `max_series` keep their own series (and keep counting once the table
/// is full); the spans of every further series go to one overflow series
/// whose only attribute is `otel.metric.overflow = true`, on a resource of
/// its own; the plugin's overflow counter counts those spans.
#[test]
fn series_beyond_max_series_go_to_the_overflow_series() {
    recorded::take();
    let mut m = instance(json!({"max_series": 2}));
    observe(&mut m, &[span("a", 1.0), span("b", 1.0), span("c", 1.0)]);
    observe(
        &mut m,
        &[
            span("d", 1.0),
            span("a", 1.0),
            span("c", 1.0),
            span("e", 3.0),
        ],
    );
    assert_eq!(recorded::total(counters::OVERFLOW_SPANS), 4);
    let points = tick(&mut m, T0);
    assert_eq!(
        find(&points, CALLS, &server("a", "STATUS_CODE_UNSET")).count,
        2
    );
    assert_eq!(
        find(&points, CALLS, &server("b", "STATUS_CODE_UNSET")).count,
        1
    );
    let overflow = [("otel.metric.overflow", "true")];
    assert!(points.iter().all(|p| p.attributes != attrs(&overflow)));
    let marker = BTreeMap::from([("otel.metric.overflow".to_string(), json!(true))]);
    let over: Vec<&Point> = points.iter().filter(|p| p.attributes == marker).collect();
    assert_eq!(over.len(), 2, "{points:#?}");
    assert!(over.iter().all(|p| p.count == 4 && p.resource.is_empty()));
    let d = over
        .iter()
        .find(|p| p.metric == DURATION)
        .expect("duration");
    assert_eq!(d.sum, 6.0);
    assert_eq!(points.len(), 6);
}

/// Scenario: two ticks with cumulative temporality, a series that sees no
/// span in the second interval. Guarantees: counts keep growing, every
/// series is emitted at every tick, and a series' start time stays fixed
/// while the time moves; a series new in the second interval starts at
/// the first tick.
#[test]
fn cumulative_counts_grow_from_a_fixed_start() {
    let mut m = instance(json!({}));
    observe(&mut m, &[span("a", 1.0), span("a", 1.0), span("b", 1.0)]);
    let first = tick(&mut m, T0);
    observe(&mut m, &[span("a", 5.0), span("c", 1.0)]);
    let second = tick(&mut m, T0 + 15 * SECOND);
    let a = server("a", "STATUS_CODE_UNSET");
    let b = server("b", "STATUS_CODE_UNSET");
    let c = server("c", "STATUS_CODE_UNSET");
    assert_eq!(find(&first, CALLS, &a).count, 2);
    let (a2, b2, c2) = (
        find(&second, CALLS, &a),
        find(&second, CALLS, &b),
        find(&second, CALLS, &c),
    );
    assert_eq!((a2.count, b2.count, c2.count), (3, 1, 1));
    assert_eq!(a2.start, find(&first, CALLS, &a).start);
    assert_eq!(a2.start, T0 - 15 * SECOND);
    assert_eq!(c2.start, T0);
    assert_eq!(a2.time, T0 + 15 * SECOND);
    let d = find(&second, DURATION, &a);
    assert_eq!((d.count, d.sum), (3, 7.0));
    assert!(second.iter().all(|p| p.temporality == 2));
    // Nothing new: the same counts again.
    let third = tick(&mut m, T0 + 30 * SECOND);
    assert_eq!(find(&third, CALLS, &a).count, 3);
    assert_eq!(third.len(), second.len());
}

/// Scenario: the same spans with delta temporality. Guarantees: each tick
/// counts only the spans since the one before, with the previous tick as
/// start time; a series with no span in an interval is not emitted, and
/// an interval with no span emits nothing.
#[test]
fn delta_counts_start_again_each_interval() {
    let mut m = instance(json!({"temporality": "delta"}));
    observe(&mut m, &[span("a", 1.0), span("a", 1.0), span("b", 1.0)]);
    let first = tick(&mut m, T0);
    observe(&mut m, &[span("a", 5.0)]);
    let second = tick(&mut m, T0 + 15 * SECOND);
    let a = server("a", "STATUS_CODE_UNSET");
    let b = server("b", "STATUS_CODE_UNSET");
    assert_eq!(find(&first, CALLS, &a).count, 2);
    assert_eq!(find(&first, CALLS, &b).count, 1);
    assert_eq!(find(&first, CALLS, &a).start, T0 - 15 * SECOND);
    let a2 = find(&second, CALLS, &a);
    assert_eq!((a2.count, a2.start, a2.time), (1, T0, T0 + 15 * SECOND));
    assert_eq!(find(&second, DURATION, &a).sum, 5.0);
    assert_eq!(second.len(), 2, "b saw no span: {second:#?}");
    assert!(second.iter().all(|p| p.temporality == 1));
    assert!(tick(&mut m, T0 + 30 * SECOND).is_empty());
    // The connector's spelling works too.
    let m = instance(json!({"temporality": "AGGREGATION_TEMPORALITY_DELTA"}));
    assert_eq!(m.plan().temporality, crate::Temporality::Delta);
}

fn refused(_: &str) -> Result<(), Error> {
    Err(Error::LimitExceeded("max_emitted_records".into()))
}

/// Scenario: an emission the host refuses. Guarantees: nothing is lost:
/// the next flush still has the counts, and with delta its start is the
/// last emission that went out.
#[test]
fn counts_stay_until_emitted() {
    for temporality in ["delta", "cumulative"] {
        let mut m = instance(json!({ "temporality": temporality }));
        observe(&mut m, &[span("a", 1.0)]);
        assert!(m.flush(T0, refused).is_err());
        observe(&mut m, &[span("a", 1.0)]);
        let points = tick(&mut m, T0 + 15 * SECOND);
        let a = find(&points, CALLS, &server("a", "STATUS_CODE_UNSET"));
        assert_eq!((a.count, a.start), (2, T0 - 15 * SECOND), "{temporality}");
    }
}

/// Scenario: more series than one request carries. Guarantees: they go
/// out in requests of 1,000 series, each a whole request with its
/// resources, every series exactly once; when the host refuses a later
/// request with delta temporality, the series already sent are not sent
/// again and the others are.
#[test]
fn many_series_go_out_in_chunks() {
    let names: Vec<&'static str> = (0..2500)
        .map(|i| &*Box::leak(format!("op {i}").into_boxed_str()))
        .collect();
    let spans: Vec<Span> = names.iter().map(|n| span(n, 1.0)).collect();
    let mut m = instance(json!({}));
    observe(&mut m, &spans);
    let sent = requests(&mut m, T0);
    assert_eq!(sent.len(), 3);
    let points: Vec<Point> = sent.iter().flat_map(|j| points(j)).collect();
    assert_eq!(points.iter().filter(|p| p.metric == CALLS).count(), 2500);
    assert!(
        points
            .iter()
            .all(|p| p.resource.contains_key("service.name"))
    );

    let mut m = instance(json!({"temporality": "delta"}));
    observe(&mut m, &spans);
    let mut calls = 0;
    let failed = m.flush(T0, |_| {
        calls += 1;
        if calls == 2 { refused("") } else { Ok(()) }
    });
    assert!(failed.is_err());
    let rest = tick(&mut m, T0 + 15 * SECOND);
    assert_eq!(rest.iter().filter(|p| p.metric == CALLS).count(), 1500);
}

/// Scenario: `expiration` with a series that stops seeing spans.
/// Guarantees: it is emitted until it has seen no span for `expiration`,
/// then dropped; if spans come back it starts again from zero with a new
/// start time.
#[test]
fn expired_series_are_dropped() {
    let mut m = instance(json!({"expiration": "30s"}));
    let a = server("a", "STATUS_CODE_UNSET");
    observe(&mut m, &[span("a", 1.0), span("b", 1.0)]);
    tick(&mut m, T0);
    observe(&mut m, &[span("b", 1.0)]);
    assert_eq!(find(&tick(&mut m, T0 + 15 * SECOND), CALLS, &a).count, 1);
    assert_eq!(find(&tick(&mut m, T0 + 29 * SECOND), CALLS, &a).count, 1);
    let later = tick(&mut m, T0 + 30 * SECOND);
    assert!(
        later.iter().all(|p| p.attributes != attrs(&a)),
        "{later:#?}"
    );
    assert_eq!(later.len(), 2, "b is still there");
    observe(&mut m, &[span("a", 1.0)]);
    let back = tick(&mut m, T0 + 45 * SECOND);
    let p = find(&back, CALLS, &a);
    assert_eq!((p.count, p.start), (1, T0 + 30 * SECOND));
}

/// Scenario: spans whose resource has no `service.name`. Guarantees: they
/// are not counted (as in the connector) and the skip counter says how
/// many.
#[test]
fn spans_without_a_service_are_skipped_and_counted() {
    recorded::take();
    let mut m = instance(json!({}));
    let nameless = Span {
        service: None,
        ..span("x", 1.0)
    };
    observe(&mut m, &[nameless.clone(), span("a", 1.0), nameless]);
    assert_eq!(recorded::total(counters::SKIPPED_SPANS), 2);
    let points = tick(&mut m, T0);
    assert_eq!(points.len(), 2);
    assert_eq!(
        find(&points, CALLS, &server("a", "STATUS_CODE_UNSET")).count,
        1
    );
}

/// Scenario: three instances sharing one state, as the host runs them
/// when it splits batches; only the first is ticked. Guarantees: the
/// emitter's counts include every instance's spans exactly once, across
/// several ticks, whether an instance wrote before or after a tick.
#[test]
fn instances_hand_their_counts_to_the_emitter() {
    let shared = Shared::default();
    let config = plan(json!({}));
    let mut emitter = SpanMetrics::new(config.clone(), shared.clone());
    let mut b = SpanMetrics::new(config.clone(), shared.clone());
    let mut c = SpanMetrics::new(config, shared);
    let a = server("a", "STATUS_CODE_UNSET");
    observe(&mut emitter, &[span("a", 1.0)]);
    observe(&mut b, &[span("a", 1.0), span("a", 1.0)]);
    observe(&mut c, &[span("a", 1.0)]);
    observe(&mut b, &[span("a", 1.0)]);
    assert_eq!(find(&tick(&mut emitter, T0), CALLS, &a).count, 5);
    // After the tick: b's next batch starts from zero again.
    observe(&mut b, &[span("a", 1.0)]);
    observe(&mut emitter, &[span("a", 1.0)]);
    let second = tick(&mut emitter, T0 + 15 * SECOND);
    assert_eq!(find(&second, CALLS, &a).count, 7);
    assert_eq!(find(&second, DURATION, &a).buckets[0], 7);
    // c saw nothing since: no double count.
    assert_eq!(
        find(&tick(&mut emitter, T0 + 30 * SECOND), CALLS, &a).count,
        7
    );
    observe(&mut c, &[span("a", 1.0)]);
    observe(&mut b, &[span("a", 1.0)]);
    assert_eq!(
        find(&tick(&mut emitter, T0 + 45 * SECOND), CALLS, &a).count,
        9
    );
}

/// Scenario: the state refuses an instance's write between two of its
/// batches, around a tick. Guarantees: the refused counts are neither
/// lost nor counted twice: they reach the emitter with the next write
/// that succeeds, and the handoff failure counter counts the refusal.
#[test]
fn a_refused_handoff_loses_and_doubles_nothing() {
    recorded::take();
    let shared = Shared::default();
    let config = plan(json!({}));
    let mut emitter = SpanMetrics::new(config.clone(), shared.clone());
    let mut b = SpanMetrics::new(config, shared.clone());
    let a = server("a", "STATUS_CODE_UNSET");
    observe(&mut b, &[span("a", 1.0)]); // written
    shared.refuse_blobs.set(true);
    observe(&mut b, &[span("a", 1.0), span("a", 1.0)]); // refused
    assert_eq!(recorded::total(counters::HANDOFF_FAILURES), 1);
    shared.refuse_blobs.set(false);
    // The emitter takes the first write only.
    assert_eq!(find(&tick(&mut emitter, T0), CALLS, &a).count, 1);
    observe(&mut b, &[span("a", 1.0)]); // the two refused and this one
    assert_eq!(
        find(&tick(&mut emitter, T0 + 15 * SECOND), CALLS, &a).count,
        4
    );
    assert_eq!(
        find(&tick(&mut emitter, T0 + 30 * SECOND), CALLS, &a).count,
        4
    );
}

/// Scenario: an instance's counts written under another config (a reload
/// changed the buckets). Guarantees: the emitter leaves them out rather
/// than mixing series of different shapes.
#[test]
fn counts_of_another_config_are_left_out() {
    let shared = Shared::default();
    let mut old = SpanMetrics::new(plan(json!({"buckets": ["1s"]})), shared.clone());
    let mut emitter = SpanMetrics::new(plan(json!({})), shared);
    observe(&mut old, &[span("a", 1.0)]);
    observe(&mut emitter, &[span("a", 1.0)]);
    let points = tick(&mut emitter, T0);
    assert_eq!(
        find(&points, CALLS, &server("a", "STATUS_CODE_UNSET")).count,
        1
    );
}

fn init_error(config: Value) -> String {
    match SpanMetrics::init(&config.to_string()) {
        Ok(_) => panic!("config {config} was accepted"),
        Err(Error::InvalidArgument(message)) => message,
        Err(other) => panic!("config {config}: {other:?} is not an invalid-argument error"),
    }
}

/// Scenario: every kind of bad config. Guarantees: `init` refuses it with
/// an invalid-argument error whose message names the key to fix.
#[test]
fn bad_configs_are_refused_naming_the_key() {
    for (config, key, words) in [
        (
            json!({"intervall": "15s"}),
            "`intervall`",
            "unknown field `intervall`",
        ),
        (json!({"unit": "min"}), "`unit`", "unknown variant `min`"),
        (
            json!({"temporality": "sometimes"}),
            "`temporality`",
            "unknown variant",
        ),
        (json!({"interval": "0s"}), "`interval`", "longer than zero"),
        (json!({"interval": "15"}), "`interval`", "no unit"),
        (json!({"interval": "25h"}), "`interval`", "too long"),
        (
            json!({"buckets": ["10ms", "5ms"]}),
            "`buckets`",
            "`5ms` (buckets[1]) follows `10ms`",
        ),
        (
            json!({"buckets": ["10ms", "10ms"]}),
            "`buckets`",
            "must increase",
        ),
        (json!({"buckets": []}), "`buckets`", "at least one bound"),
        (
            json!({"buckets": ["10 parsecs"]}),
            "`buckets[0]`",
            "not a unit",
        ),
        (
            json!({"buckets": [10, 20]}),
            "`buckets[0]`",
            "expected a string",
        ),
        (json!({"expiration": "0s"}), "`expiration`", "zero"),
        (
            json!({"expiration": "5m", "temporality": "delta"}),
            "`expiration`",
            "cumulative",
        ),
        (json!({"max_series": 0}), "`max_series`", "out of range"),
        (
            json!({"dimensions": [{"name": "span.name"}]}),
            "`dimensions[0].name`",
            "default dimension",
        ),
        (
            json!({"dimensions": [{"name": "a"}, {"name": "a"}]}),
            "`dimensions[1].name`",
            "listed twice",
        ),
        (
            json!({"dimensions": [{"name": ""}]}),
            "`dimensions[0].name`",
            "needs an attribute key",
        ),
        (
            json!({"dimensions": [{"name": "a", "defaults": "x"}]}),
            "`dimensions[0].defaults`",
            "unknown field `defaults`",
        ),
        (
            json!({"exclude_dimensions": ["http.method"]}),
            "`exclude_dimensions`",
            "not a default",
        ),
        (
            json!({"resource_attributes": ["service.name"]}),
            "`resource_attributes`",
            "always copied",
        ),
        (
            json!({"drop_spans": "yes"}),
            "`drop_spans`",
            "expected a boolean",
        ),
    ] {
        let message = init_error(config.clone());
        assert!(
            message.contains(&format!("config key {key}")) && message.contains(words),
            "{config}: {message}"
        );
    }
}

/// Scenario: the defaults. Guarantees: they are the connector's (names,
/// buckets in ms, cumulative) plus the 15s interval and 10,000 series,
/// and the host is asked to tick every interval.
#[test]
fn defaults_follow_the_connector() {
    let m = SpanMetrics::init("{}").expect("the empty config is valid");
    let p = m.plan();
    assert_eq!(p.calls_name, CALLS);
    assert_eq!(p.duration_name, DURATION);
    assert_eq!(p.temporality, crate::Temporality::Cumulative);
    assert_eq!(p.max_series, 10_000);
    assert!(!p.drop_spans);
    assert_eq!(m.tick_every(), Some(std::time::Duration::from_secs(15)));
    let h = p.histogram.as_ref().expect("a histogram");
    assert_eq!(h.bounds_ns.first(), Some(&2_000_000));
    assert_eq!(h.bounds_ns.len(), 16);
    let m = SpanMetrics::init(r#"{"interval": "1m", "unit": "s"}"#).expect("valid");
    assert_eq!(m.tick_every(), Some(std::time::Duration::from_secs(60)));
    assert_eq!(
        m.plan().histogram.as_ref().map(|h| h.bounds[0]),
        Some(0.002)
    );
}

/// Scenario: a logs batch through `process` in the SDK's harness (which
/// builds log batches only). Guarantees: records of other signals pass
/// through untouched and emit nothing.
#[test]
fn other_signals_pass_through() {
    let logs = r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[
        {"severityNumber":9,"body":{"stringValue":"fine"}}]}]}]}"#;
    let out = harness::run::<SpanMetrics>(r#"{"drop_spans": true}"#, logs).expect("runs");
    assert_eq!(
        out.table.strings("body").expect("body"),
        [Some("fine".to_string())]
    );
    assert!(out.emitted.is_empty());
}
