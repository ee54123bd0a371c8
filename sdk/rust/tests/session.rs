//! The native harness's session: one plugin instance across several
//! `process` and `tick` calls, with the host's hold simulated.

use weir_plugin::harness::{self, Session};
use weir_plugin::{AttributeSet, Batch, Error, Plugin, Signal, hold};

/// A tail sampler in miniature: holds every span under its trace id; a
/// trace whose root span (no parent) has status error is released at
/// once, the others at the next tick; a span named `boom` fails the call.
struct Tail {
    waiting: Vec<String>,
}

impl Plugin for Tail {
    fn init(_: &str) -> Result<Self, Error> {
        Ok(Tail {
            waiting: Vec::new(),
        })
    }

    fn partition_by(&self) -> Option<&str> {
        Some("trace_id")
    }

    fn process(&mut self, batch: &mut Batch<'_>) -> Result<(), Error> {
        let traces = batch.strings("trace_id")?;
        let parents = batch.strings("parent_span_id")?;
        let status = batch.ints("status_code")?;
        let names = batch.strings("name")?;
        let mut now = Vec::new();
        for i in 0..traces.len() {
            let Some(trace) = traces[i].clone() else {
                continue;
            };
            if parents[i].is_none() && status[i] == Some(2) {
                now.push(trace);
            } else if !self.waiting.contains(&trace) {
                self.waiting.push(trace);
            }
        }
        batch.hold(&traces)?;
        if names.iter().any(|n| n.as_deref() == Some("boom")) {
            return Err(Error::Failed("boom".into()));
        }
        self.waiting.retain(|t| !now.contains(t));
        hold::release(&now)?;
        Ok(())
    }

    fn tick(&mut self, _now: u64) -> Result<(), Error> {
        hold::release(&std::mem::take(&mut self.waiting))?;
        Ok(())
    }
}

const A: &str = "0af7651916cd43dd8448eb211c80319c";
const B: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

fn spans(list: &[(&str, &str, Option<&str>, i32)]) -> String {
    let spans: Vec<String> = list
        .iter()
        .enumerate()
        .map(|(i, (trace, name, parent, code))| {
            let parent = parent.map_or(String::new(), |p| format!(r#""parentSpanId":"{p}","#));
            format!(
                r#"{{"traceId":"{trace}","spanId":"00f067aa0ba902b{i}",{parent}"name":"{name}","kind":2,
                   "startTimeUnixNano":"100","endTimeUnixNano":"250","status":{{"code":{code}}},
                   "attributes":[{{"key":"n","value":{{"intValue":"{i}"}}}}]}}"#
            )
        })
        .collect();
    format!(
        r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"cart"}}}}]}},
            "scopeSpans":[{{"spans":[{}]}}]}}]}}"#,
        spans.join(",")
    )
}

/// Guarantees: spans become a table with Weir's column names and string
/// forms; held rows leave the batch; a release in a later call gives back
/// exactly the rows held, in the order held, in that call's output; a tick
/// releases too; `holding` counts rows and bytes.
#[test]
fn spans_are_held_and_released_across_calls() {
    let mut s = Session::<Tail>::new("{}").expect("init");
    assert_eq!(s.plugin().partition_by(), Some("trace_id"));
    let first = harness::spans(&spans(&[
        (A, "child", Some("00f067aa0ba902b7"), 0),
        (B, "b-child", Some("00f067aa0ba902b7"), 0),
    ]))
    .expect("spans");
    assert_eq!(first.signal, Signal::Spans);
    assert_eq!(
        first.strings("duration_ns").expect("d"),
        vec![Some("150".to_string()); 2]
    );
    let call = s.process(first).expect("first");
    assert_eq!(call.table.expect("left").num_rows(), 0);
    assert!(call.released.is_empty());
    assert_eq!(s.holding().rows, 2);
    assert!(s.holding().bytes > 0);

    let call = s.spans(&spans(&[(A, "root", None, 2)])).expect("second");
    assert_eq!(call.released.len(), 1);
    let released = &call.released[0];
    assert_eq!(
        released.strings("name").expect("names"),
        [Some("child".to_string()), Some("root".to_string())]
    );
    assert_eq!(
        released.strings("trace_id").expect("ids"),
        vec![Some(A.to_string()); 2]
    );
    assert_eq!(s.holding().rows, 1);

    let call = s.tick(1).expect("tick");
    assert!(call.table.is_none());
    assert_eq!(
        call.released[0].strings("name").expect("names"),
        [Some("b-child".to_string())]
    );
    assert_eq!(s.holding(), weir_plugin::Held::default());
}

/// Guarantees: a call that fails is treated as the host treats it: the
/// instance starts again, the rows the call held are forgotten (its input
/// has them) and what was held before comes out with the next call.
#[test]
fn a_failed_call_gives_up_what_was_held_before() {
    let mut s = Session::<Tail>::new("{}").expect("init");
    s.spans(&spans(&[(A, "child", Some("00f067aa0ba902b7"), 0)]))
        .expect("held");
    let failed = s.spans(&spans(&[(B, "boom", None, 0)]));
    assert!(matches!(failed, Err(Error::Failed(_))));
    assert_eq!(s.holding().rows, 0);
    let call = s.spans(&spans(&[])).expect("next");
    assert_eq!(call.released.len(), 1);
    assert_eq!(
        call.released[0].strings("name").expect("names"),
        [Some("child".to_string())]
    );
    assert!(s.plugin().waiting.is_empty(), "a fresh instance");
}

/// Guarantees: past the session's `max_held_bytes` `hold` is refused with
/// `limit-exceeded` and the rows stay in the batch.
#[test]
fn the_hold_is_bounded() {
    let mut s = Session::<Tail>::new("{}")
        .expect("init")
        .with_max_held_bytes(1);
    let refused = s.spans(&spans(&[(A, "child", Some("00f067aa0ba902b7"), 0)]));
    assert!(matches!(refused, Err(Error::LimitExceeded(_))));
}

struct Keys;

impl Plugin for Keys {
    fn init(_: &str) -> Result<Self, Error> {
        Ok(Keys)
    }

    fn process(&mut self, batch: &mut Batch<'_>) -> Result<(), Error> {
        let keys = batch.attribute_keys(AttributeSet::Record)?;
        batch.set_attribute_all(AttributeSet::Resource, "keys", &keys.join(","))
    }
}

/// Guarantees: `attribute_keys` lists each key once in first-seen order,
/// natively too; metric points become a table of their own.
#[test]
fn attribute_keys_and_metrics() {
    let mut s = Session::<Keys>::new("{}").expect("init");
    let call = s
        .metrics(
            r#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[
                {"name":"up","gauge":{"dataPoints":[
                    {"asDouble":1.5,"timeUnixNano":"5","attributes":[{"key":"x","value":{"stringValue":"1"}}]},
                    {"asInt":"2","attributes":[{"key":"y","value":{"stringValue":"1"}},{"key":"x","value":{"stringValue":"2"}}]}]}}]}]}]}"#,
        )
        .expect("metrics");
    let table = call.table.expect("left");
    assert_eq!(table.signal, Signal::Metrics);
    assert_eq!(
        table.strings("value").expect("values"),
        [Some("1.5".to_string()), Some("2".to_string())]
    );
    let keys = match table.column("resource_attributes").expect("column") {
        harness::Column::Attributes(rows) => rows[0].clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(keys, [("keys".to_string(), "x,y".to_string())]);
}
