//! Emission over time: cumulative and delta, refused emissions, chunks,
//! expiration.

use serde_json::json;
use weir_plugin::Error;

use super::*;

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
