//! Counting: series, dimensions, kinds and statuses, buckets, overflow.

use std::collections::BTreeMap;

use serde_json::json;

use super::*;
use crate::counters::{self, recorded};

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
