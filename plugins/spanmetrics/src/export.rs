//! Series as OTLP/JSON `ExportMetricsServiceRequest`s, what the `emit`
//! interface takes: one `ResourceMetrics` per resource (the service and
//! the copied resource attributes), each with scope
//! `spanmetricsconnector` and two metrics, the call counter (a monotonic
//! `sum` of integers) and the duration histogram (an explicit-bucket
//! `histogram`). The overflow series has a resource of its own with no
//! attribute.
//!
//! The series go out [`CHUNK`] at a time, one request each, so that the
//! text of 10,000 series (about 9 MB) never sits in the plugin's memory
//! at once.

use std::fmt::Write;

use crate::config::Plan;
use crate::key::{self, Labels};
use crate::series::SeriesTable;

/// The instrumentation scope of the emitted metrics: the connector's, so
/// that queries filtering on it keep working.
pub const SCOPE_NAME: &str = "spanmetricsconnector";

/// Series per emitted request: about 1 MB of OTLP/JSON with the default
/// buckets.
pub const CHUNK: usize = 1000;

/// The attribute that marks the overflow series.
pub const OVERFLOW_ATTRIBUTE: &str = "otel.metric.overflow";

/// The times of the points being emitted.
#[derive(Debug, Clone, Copy)]
pub struct Times<'a> {
    /// Each series' start time (cumulative), by index.
    pub start: &'a [u64],
    /// The start of every point instead (delta): the previous emission.
    pub delta_start: Option<u64>,
    /// The points' time: now.
    pub now: u64,
}

/// One resource's series, in `order`'s order.
struct Group<'a> {
    labels: Labels<'a>,
    series: Vec<usize>,
}

/// Writes into `out` the request for the series `series` of `table`
/// (indices in [`SeriesTable::sorted`] order, so that a resource's series
/// are neighbours).
pub fn otlp_json(
    out: &mut String,
    plan: &Plan,
    table: &SeriesTable,
    series: &[usize],
    times: Times<'_>,
) {
    out.clear();
    let mut groups: Vec<Group<'_>> = Vec::new();
    let mut overflow = None;
    for &i in series {
        if table.is_overflow(i) {
            overflow = Some(i);
            continue;
        }
        // A key that does not fit the plan cannot be made by it; skip it.
        let Some(labels) = key::labels(plan, table.key(i)) else {
            continue;
        };
        match groups.last_mut() {
            Some(g) if g.labels.resource_key == labels.resource_key => g.series.push(i),
            _ => groups.push(Group {
                labels,
                series: vec![i],
            }),
        }
    }
    out.reserve(256 + series.len() * (300 + 24 * table.width()));
    out.push_str("{\"resourceMetrics\":[");
    let mut first = true;
    for g in &groups {
        comma(out, &mut first);
        out.push_str("{\"resource\":{\"attributes\":[");
        let mut a = true;
        attribute(out, &mut a, "service.name", g.labels.service);
        for (k, v) in plan.resource_attributes.iter().zip(&g.labels.resource) {
            if let Some(v) = v {
                attribute(out, &mut a, k, v);
            }
        }
        out.push_str("]},");
        scope(out, plan, table, times, &g.series);
        out.push('}');
    }
    if let Some(i) = overflow {
        comma(out, &mut first);
        out.push_str("{\"resource\":{\"attributes\":[]},");
        scope(out, plan, table, times, &[i]);
        out.push('}');
    }
    out.push_str("]}");
}

/// The `scopeMetrics` of one resource's series.
fn scope(out: &mut String, plan: &Plan, table: &SeriesTable, times: Times<'_>, series: &[usize]) {
    let temporality = plan.temporality.otlp();
    out.push_str("\"scopeMetrics\":[{\"scope\":{\"name\":");
    string(out, SCOPE_NAME);
    out.push_str("},\"metrics\":[{\"name\":");
    string(out, &plan.calls_name);
    out.push_str(",\"sum\":{\"dataPoints\":[");
    let mut first = true;
    for &i in series {
        comma(out, &mut first);
        point_head(out, plan, table, times, i);
        let _ = write!(out, ",\"asInt\":\"{}\"}}", table.calls(i));
    }
    let _ = write!(
        out,
        "],\"aggregationTemporality\":{temporality},\"isMonotonic\":true}}}}"
    );
    if let Some(h) = &plan.histogram {
        out.push_str(",{\"name\":");
        string(out, &plan.duration_name);
        out.push_str(",\"unit\":");
        string(out, h.unit.ucum());
        out.push_str(",\"histogram\":{\"dataPoints\":[");
        let mut first = true;
        for &i in series {
            comma(out, &mut first);
            point_head(out, plan, table, times, i);
            let _ = write!(
                out,
                ",\"count\":\"{}\",\"sum\":{:?},\"bucketCounts\":[",
                table.calls(i),
                table.sum(i)
            );
            let mut b = true;
            for n in table.buckets(i) {
                comma(out, &mut b);
                let _ = write!(out, "\"{n}\"");
            }
            out.push_str("],\"explicitBounds\":[");
            let mut b = true;
            for bound in &h.bounds {
                comma(out, &mut b);
                let _ = write!(out, "{bound:?}");
            }
            out.push_str("]}");
        }
        let _ = write!(out, "],\"aggregationTemporality\":{temporality}}}}}");
    }
    out.push_str("]}]");
}

/// A data point's attributes and times, up to the value.
fn point_head(out: &mut String, plan: &Plan, table: &SeriesTable, times: Times<'_>, i: usize) {
    out.push_str("{\"attributes\":[");
    let mut a = true;
    if table.is_overflow(i) {
        comma(out, &mut a);
        out.push_str("{\"key\":");
        string(out, OVERFLOW_ATTRIBUTE);
        out.push_str(",\"value\":{\"boolValue\":true}}");
    } else if let Some(l) = key::labels(plan, table.key(i)) {
        if plan.defaults.service_name {
            attribute(out, &mut a, "service.name", l.service);
        }
        if let Some(v) = l.span_name {
            attribute(out, &mut a, "span.name", v);
        }
        if let Some(v) = l.span_kind {
            attribute(out, &mut a, "span.kind", v);
        }
        if let Some(v) = l.status_code {
            attribute(out, &mut a, "status.code", v);
        }
        for (d, v) in plan.dimensions.iter().zip(&l.dimensions) {
            if let Some(v) = v {
                attribute(out, &mut a, &d.name, v);
            }
        }
    }
    let start = times.delta_start.unwrap_or(times.start[i]);
    let _ = write!(
        out,
        "],\"startTimeUnixNano\":\"{start}\",\"timeUnixNano\":\"{}\"",
        times.now
    );
}

fn comma(out: &mut String, first: &mut bool) {
    if !*first {
        out.push(',');
    }
    *first = false;
}

/// One string attribute.
fn attribute(out: &mut String, first: &mut bool, key: &str, value: &str) {
    comma(out, first);
    out.push_str("{\"key\":");
    string(out, key);
    out.push_str(",\"value\":{\"stringValue\":");
    string(out, value);
    out.push_str("}}");
}

/// `s` as a JSON string.
fn string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c < ' ' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::string;

    /// Guarantees: any text, quotes and control characters included, is a
    /// valid JSON string that reads back the same.
    #[test]
    fn strings_are_escaped() {
        let text = "a \"quoted\" \\ path\n\t\u{1}é";
        let mut out = String::new();
        string(&mut out, text);
        let back: String = serde_json::from_str(&out).expect("valid JSON");
        assert_eq!(back, text);
    }
}
