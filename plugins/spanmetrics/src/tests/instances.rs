//! Several instances handing their counts to the emitting one.

use serde_json::json;

use super::*;
use crate::counters::{self, recorded};

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

/// The points `m`'s tick at `now` emits, as the host ticks it: nothing
/// unless it is the emitter.
fn host_tick<S: Store>(m: &mut SpanMetrics<S>, now: u64) -> Vec<Point> {
    let mut out = Vec::new();
    m.tick_with(now, |json| {
        out.push(json.to_string());
        Ok(())
    })
    .expect("the tick succeeds");
    out.iter().flat_map(|j| points(j)).collect()
}

/// Scenario: three instances, every one ticked at each interval as the
/// host does (0.2.0), in the same order; then the emitter is replaced by
/// a new instance. Guarantees: the first to tick emits every instance's
/// counts and the others' ticks emit nothing; once the emitter has not
/// ticked for one and a half intervals, the next instance takes over and
/// emits the counts of the instances still running.
#[test]
fn every_instance_ticks_and_one_emits() {
    let shared = Shared::default();
    let config = plan(json!({}));
    let mut a = SpanMetrics::new(config.clone(), shared.clone());
    let mut b = SpanMetrics::new(config.clone(), shared.clone());
    let mut c = SpanMetrics::new(config.clone(), shared.clone());
    let series = server("a", "STATUS_CODE_UNSET");
    observe(&mut a, &[span("a", 1.0)]);
    observe(&mut b, &[span("a", 1.0), span("a", 1.0)]);
    observe(&mut c, &[span("a", 1.0)]);
    for round in 0..2 {
        let now = T0 + round * 15 * SECOND;
        assert_eq!(find(&host_tick(&mut a, now), CALLS, &series).count, 4);
        assert!(host_tick(&mut b, now).is_empty(), "round {round}");
        assert!(host_tick(&mut c, now).is_empty(), "round {round}");
    }
    // `a` fails and is replaced by `d`; `b` and `c` count on.
    drop(a);
    let mut d = SpanMetrics::new(config, shared);
    observe(&mut b, &[span("a", 1.0)]);
    observe(&mut d, &[span("a", 1.0)]);
    let now = T0 + 30 * SECOND;
    for m in [&mut b, &mut c, &mut d] {
        assert!(host_tick(m, now).is_empty(), "the lease is still fresh");
    }
    let now = T0 + 45 * SECOND;
    let taken = host_tick(&mut b, now);
    // What b and d counted since `a` last took counts in: one span each
    // (the cumulative total `a` emitted went with it).
    assert_eq!(find(&taken, CALLS, &series).count, 2);
    assert!(host_tick(&mut c, now).is_empty());
    assert!(host_tick(&mut d, now).is_empty());
}
