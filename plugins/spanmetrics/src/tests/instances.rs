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
