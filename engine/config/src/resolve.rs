//! The second stage: linking the tables into a pipeline graph.
//!
//! Checks what needs every component at once: unique names, `inputs` that
//! name real components and signals, signals that can really flow on each
//! edge, no cycles, at least one source and one sink, and the settings
//! that contradict each other inside a component. Produces the components
//! in topological order with the signals on every edge.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::ops::Range;

use weir_core::{Signal, SignalSet};

use crate::component::ComponentKind;
use crate::diagnostic::Report;
use crate::plan::{Component, Input};
use crate::raw::{RawComponent, RawPipeline};
use crate::rule_tests::PipelineTest;
use crate::suggest::{did_you_mean, quoted_list};

/// One `inputs` entry that names an existing, readable component.
struct Edge {
    from: usize,
    to: usize,
    /// `None` for `"name"` (every signal), `Some` for `"name.signal"`.
    signal: Option<Signal>,
    span: Range<usize>,
    text: String,
}

/// Links the components of `raw`, reporting every problem. The result is
/// only meaningful when `report` holds no errors.
pub(crate) fn resolve(raw: &RawPipeline, report: &mut Report<'_>) -> Vec<Component> {
    let comps = &raw.components;
    check_problems(comps, report);
    check_sources_and_sinks(comps, report);
    let names = name_table(comps, report);
    let edges = collect_edges(comps, &names, report);
    let order = topological_order(comps.len(), &names, &edges);
    if order.len() < names.len() {
        report_cycles(comps, &names, &edges, &order, report);
    }
    link(comps, &edges, &order, report)
}

/// The `[[tests]]` of `raw`, each with the processor it tests (a `rules`
/// or a `wasm` one).
pub(crate) fn tests(raw: &RawPipeline, report: &mut Report<'_>) -> Vec<PipelineTest> {
    let rules: Vec<&str> = raw
        .components
        .iter()
        .filter(|c| {
            c.kind == ComponentKind::Processor
                && c.config.as_ref().is_some_and(|(_, c)| c.takes_tests())
        })
        .map(|c| c.name.as_str())
        .collect();
    let mut out = Vec::new();
    for (i, (spec, span)) in raw.tests.iter().enumerate() {
        let what = format!("test {}", i + 1);
        let processor = match (&spec.processor, rules.as_slice()) {
            (Some(name), _) if rules.contains(&name.as_str()) => name.clone(),
            (Some(name), _) => {
                let label = match did_you_mean(name, rules.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => "not a `rules` or `wasm` processor of this file".to_string(),
                };
                report
                    .error(
                        span.clone(),
                        format!(
                            "{what} tests `{name}`, which is not a `rules` or `wasm` processor"
                        ),
                    )
                    .key(format!("tests[{i}].processor"))
                    .label(label)
                    .help(format!(
                        "name one of: {}",
                        quoted_list(rules.iter().copied())
                    ));
                continue;
            }
            (None, [only]) => only.to_string(),
            (None, []) => {
                report
                    .error(span.clone(), format!("{what} has no processor to test"))
                    .key(format!("tests[{i}]"))
                    .help(
                        "add a `[processors.NAME]` with `type = \"rules\"` or `type = \"wasm\"` \
                         to this file",
                    );
                continue;
            }
            (None, many) => {
                report
                    .error(
                        span.clone(),
                        format!("{what} does not say which processor it tests"),
                    )
                    .key(format!("tests[{i}]"))
                    .help(format!(
                        "add `processor = ` one of {}",
                        quoted_list(many.iter().copied())
                    ));
                continue;
            }
        };
        if spec.alerts.is_empty() && spec.recorded.is_empty() && spec.outputs.is_empty() {
            report
                .error(span.clone(), format!("{what} expects nothing"))
                .key(format!("tests[{i}]"))
                .help(
                    "add `[[tests.alerts]]` or `[[tests.recorded]]` with what rules should \
                     produce, or `[[tests.outputs]]` with what a plugin should send on",
                );
            continue;
        }
        if let Some(j) = spec
            .outputs
            .iter()
            .position(|o| o.rows.is_none() && o.expected.is_none())
        {
            report
                .error(
                    span.clone(),
                    format!("{what}: output {} expects nothing", j + 1),
                )
                .key(format!("tests[{i}].outputs[{j}]"))
                .help("add `rows = N` (how many rows) or `expected = [...]` (which rows)");
            continue;
        }
        out.push(PipelineTest {
            spec: spec.clone(),
            line: report.line_of(span.start),
            processor,
        });
    }
    out
}

/// Settings inside one component that contradict each other (errors),
/// or that work but should change (warnings).
fn check_problems(comps: &[RawComponent], report: &mut Report<'_>) {
    for c in comps {
        let Some((_, config)) = &c.config else {
            continue;
        };
        let owner = c.owner();
        let errors = config.problems().into_iter().map(|p| (true, p));
        let warnings = config.warnings().into_iter().map(|p| (false, p));
        for (error, p) in errors.chain(warnings) {
            let span = c.span_of(&p.key);
            let message = format!("{} in {}", p.message, owner.describe);
            let draft = match error {
                true => report.error(span, message),
                false => report.warning(span, message),
            };
            draft.key(owner.key(&p.key)).help(p.help);
        }
    }
}

fn check_sources_and_sinks(comps: &[RawComponent], report: &mut Report<'_>) {
    let first_source = comps.iter().find(|c| c.kind == ComponentKind::Source);
    let has_sink = comps.iter().any(|c| c.kind == ComponentKind::Sink);
    let Some(first) = comps.first() else {
        report
            .error(None, "the pipeline has no components")
            .help("add a source and a sink, such as `[sources.otlp]` with `type = \"otlp\"` and `[sinks.out]` with `type = \"blackhole\"` and `inputs = [\"otlp\"]`");
        return;
    };
    if first_source.is_none() {
        report
            .error(first.span.clone(), "the pipeline has no source")
            .label("nothing brings data into this pipeline")
            .help("add a source, such as `[sources.otlp]` with `type = \"otlp\"`");
    }
    if !has_sink {
        let (at, from) = match first_source {
            Some(s) => (s.span.clone(), s.name.as_str()),
            None => (first.span.clone(), "NAME"),
        };
        report
            .error(at, "the pipeline has no sink")
            .label("data from here goes nowhere")
            .help(format!(
                "add a sink, such as `[sinks.out]` with `type = \"blackhole\"` and `inputs = [\"{from}\"]`"
            ));
    }
}

/// Name -> index of the component that owns it. Later components reusing a
/// name are reported and left out of the graph.
fn name_table<'a>(comps: &'a [RawComponent], report: &mut Report<'_>) -> HashMap<&'a str, usize> {
    let mut names: HashMap<&str, usize> = HashMap::new();
    for (i, c) in comps.iter().enumerate() {
        if !c.valid_name {
            continue;
        }
        match names.get(c.name.as_str()) {
            Some(&j) => {
                let first = &comps[j];
                let line = report.line_of(first.name_span.start);
                report
                    .error(
                        c.name_span.clone(),
                        format!(
                            "the name `{}` is used by a {} and a {}",
                            c.name,
                            first.kind.noun(),
                            c.kind.noun()
                        ),
                    )
                    .key(c.owner().path)
                    .label(format!(
                        "also the name of the {} on line {line}",
                        first.kind.noun()
                    ))
                    .help("names are shared by sources, processors and sinks: rename one of them");
            }
            None => {
                names.insert(c.name.as_str(), i);
            }
        }
    }
    names
}

/// What a component could name in `inputs` (sources and processors), for
/// suggestions.
fn readable<'a>(comps: &'a [RawComponent], names: &HashMap<&str, usize>) -> Vec<&'a str> {
    comps
        .iter()
        .enumerate()
        .filter(|(i, c)| c.kind != ComponentKind::Sink && names.get(c.name.as_str()) == Some(i))
        .map(|(_, c)| c.name.as_str())
        .collect()
}

fn collect_edges(
    comps: &[RawComponent],
    names: &HashMap<&str, usize>,
    report: &mut Report<'_>,
) -> Vec<Edge> {
    let readable = readable(comps, names);
    let example = readable.first().copied().unwrap_or("NAME");
    let mut edges = Vec::new();
    for (to, c) in comps.iter().enumerate() {
        if c.kind == ComponentKind::Source || names.get(c.name.as_str()) != Some(&to) {
            continue;
        }
        let owner = c.owner();
        let inputs =
            match &c.inputs {
                Some(inputs) => inputs,
                // Written but malformed: already reported.
                None if c.keys.iter().any(|(k, _)| k == "inputs") => continue,
                None => {
                    report
                    .error(c.span.clone(), format!("{} has no `inputs`", owner.describe))
                    .key(owner.key("inputs"))
                    .label("`inputs` is required")
                    .help(format!(
                        "add `inputs = [\"{example}\"]`, naming the components this {} reads from",
                        c.kind.noun()
                    ));
                    continue;
                }
            };
        if inputs.entries.is_empty() {
            report
                .error(
                    inputs.span.clone(),
                    format!("`inputs` of {} is empty", owner.describe),
                )
                .key(owner.key("inputs"))
                .label("nothing to read from")
                .help(format!(
                    "name at least one component, as in `inputs = [\"{example}\"]`"
                ));
            continue;
        }
        for entry in &inputs.entries {
            let text = entry.get_ref().as_str();
            let span = entry.span();
            let (name, signal) = match text.split_once('.') {
                Some((n, s)) => (n, Some(s)),
                None => (text, None),
            };
            if name.is_empty() {
                report
                    .error(
                        span,
                        format!("empty component name in `inputs` of {}", owner.describe),
                    )
                    .key(owner.key("inputs"))
                    .label("expected `NAME` or `NAME.SIGNAL`")
                    .help(readable_help(&readable));
                continue;
            }
            let Some(&from) = names.get(name) else {
                let label = match did_you_mean(name, readable.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => "no component has this name".to_string(),
                };
                report
                    .error(
                        span,
                        format!(
                            "unknown component `{name}` in `inputs` of {}",
                            owner.describe
                        ),
                    )
                    .key(owner.key("inputs"))
                    .label(label)
                    .help(readable_help(&readable));
                continue;
            };
            if comps[from].kind == ComponentKind::Sink {
                report
                    .error(
                        span,
                        format!("{} cannot read from sink `{name}`", owner.describe),
                    )
                    .key(owner.key("inputs"))
                    .label("sinks have no output")
                    .help(readable_help(&readable));
                continue;
            }
            let signal = match signal.map(str::parse::<Signal>) {
                None => None,
                Some(Ok(s)) => Some(s),
                Some(Err(_)) => {
                    let written = signal.unwrap_or_default();
                    let signals = Signal::ALL.map(Signal::as_str);
                    let label = match did_you_mean(written, signals) {
                        Some(s) => format!("did you mean `{name}.{s}`?"),
                        None => "not a signal".to_string(),
                    };
                    report
                        .error(
                            span,
                            format!(
                                "unknown signal `{written}` in input `{text}` of {}",
                                owner.describe
                            ),
                        )
                        .key(owner.key("inputs"))
                        .label(label)
                        .help(format!(
                            "write `{name}.logs`, `{name}.spans` or `{name}.metrics` for one signal, or `{name}` for all it emits"
                        ));
                    continue;
                }
            };
            edges.push(Edge {
                from,
                to,
                signal,
                span,
                text: text.to_string(),
            });
        }
    }
    edges
}

fn readable_help(readable: &[&str]) -> String {
    if readable.is_empty() {
        "this file defines no sources or processors to read from".to_string()
    } else {
        format!(
            "components that can be read from: {}",
            quoted_list(readable.iter().copied())
        )
    }
}

/// Kahn's algorithm; among components that are ready, the earliest in the
/// file goes first. Components on (or behind) a cycle are left out.
fn topological_order(n: usize, names: &HashMap<&str, usize>, edges: &[Edge]) -> Vec<usize> {
    let in_graph: BTreeSet<usize> = names.values().copied().collect();
    let mut pending = vec![0usize; n];
    let mut downstream = vec![Vec::new(); n];
    for e in edges {
        pending[e.to] += 1;
        downstream[e.from].push(e.to);
    }
    let mut ready: BTreeSet<usize> = in_graph
        .iter()
        .copied()
        .filter(|&i| pending[i] == 0)
        .collect();
    let mut order = Vec::with_capacity(in_graph.len());
    while let Some(i) = ready.pop_first() {
        order.push(i);
        for &d in &downstream[i] {
            pending[d] -= 1;
            if pending[d] == 0 {
                ready.insert(d);
            }
        }
    }
    order
}

/// Reports each cycle among the components the topological sort could not
/// place, naming every component on it.
fn report_cycles(
    comps: &[RawComponent],
    names: &HashMap<&str, usize>,
    edges: &[Edge],
    order: &[usize],
    report: &mut Report<'_>,
) {
    let placed: BTreeSet<usize> = order.iter().copied().collect();
    let stuck: BTreeSet<usize> = names
        .values()
        .copied()
        .filter(|i| !placed.contains(i))
        .collect();
    let mut covered = BTreeSet::new();
    for &start in &stuck {
        if covered.contains(&start) {
            continue;
        }
        // Shortest way from `start` back to itself, following data flow.
        let mut parent: HashMap<usize, usize> = HashMap::new();
        let mut queue = VecDeque::from([start]);
        let mut closing: Option<&Edge> = None;
        'search: while let Some(u) = queue.pop_front() {
            for e in edges
                .iter()
                .filter(|e| e.from == u && stuck.contains(&e.to))
            {
                if e.to == start {
                    closing = Some(e);
                    break 'search;
                }
                if let std::collections::hash_map::Entry::Vacant(slot) = parent.entry(e.to) {
                    slot.insert(u);
                    queue.push_back(e.to);
                }
            }
        }
        let Some(closing) = closing else { continue };
        let mut path = vec![closing.from];
        while let Some(&p) = path.last().and_then(|last| parent.get(last)) {
            path.push(p);
        }
        if path.last() != Some(&start) {
            path.push(start);
        }
        path.reverse();
        covered.extend(path.iter().copied());
        let mut cycle: Vec<&str> = path.iter().map(|&i| comps[i].name.as_str()).collect();
        cycle.push(comps[start].name.as_str());
        let c = &comps[start];
        let from = comps[closing.from].name.as_str();
        report
            .error(
                closing.span.clone(),
                format!("cycle among processors: `{}`", cycle.join(" -> ")),
            )
            .key(c.owner().key("inputs"))
            .label(format!(
                "`{}` reads from `{from}` here, closing the loop",
                c.name
            ))
            .help("data cannot flow in a circle: remove one of the inputs on this cycle");
    }
}

/// Works out the signals on every edge in topological order and builds the
/// plan's components.
fn link(
    comps: &[RawComponent],
    edges: &[Edge],
    order: &[usize],
    report: &mut Report<'_>,
) -> Vec<Component> {
    // What each component emits; `None` when its config is unknown (an
    // error was reported already, so signal checks around it are skipped).
    let mut emits: Vec<Option<SignalSet>> = vec![None; comps.len()];
    // What is read from each component, for the "nothing reads" warnings.
    let mut read: Vec<SignalSet> = vec![SignalSet::NONE; comps.len()];
    let mut readers: Vec<usize> = vec![0; comps.len()];
    let mut out = Vec::with_capacity(order.len());

    for &i in order {
        let c = &comps[i];
        let owner = c.owner();
        let accepts = match (&c.config, c.kind) {
            (_, ComponentKind::Source) => Some(SignalSet::NONE),
            (Some((_, config)), _) => Some(config.accepts()),
            (None, _) => None,
        };
        let mut inputs: Vec<Input> = Vec::new();
        let mut known = true;
        for e in edges.iter().filter(|e| e.to == i) {
            let from = comps[e.from].name.as_str();
            let flowing = match flow(e.signal, emits[e.from], accepts) {
                Flow::Signals(set) => set,
                Flow::Unknown(set) => {
                    known = false;
                    set
                }
                Flow::NeverEmitted { signal, emits } => {
                    report
                        .error(
                            e.span.clone(),
                            format!(
                                "`{from}` never emits {signal} (input of {})",
                                owner.describe
                            ),
                        )
                        .key(owner.key("inputs"))
                        .label(format!("`{from}` emits {}", list_signals(emits)))
                        .help(format!("read what `{from}` emits, or remove this entry"));
                    continue;
                }
                Flow::NotAccepted { sends, accepts } => {
                    report
                        .error(
                            e.span.clone(),
                            format!("{} cannot take anything `{}` sends", owner.describe, e.text),
                        )
                        .key(owner.key("inputs"))
                        .label(format!(
                            "`{}` sends {}; this {} accepts {}",
                            e.text,
                            list_signals(sends),
                            c.kind.noun(),
                            list_signals(accepts)
                        ))
                        .help(format!(
                            "read signals this {} accepts, or send `{from}` to another component",
                            c.kind.noun()
                        ));
                    continue;
                }
            };
            read[e.from] = read[e.from].union(flowing);
            readers[e.from] += 1;
            match inputs.iter_mut().find(|input| input.from == from) {
                Some(input) => {
                    if input.signals.union(flowing) == input.signals {
                        report
                            .warning(
                                e.span.clone(),
                                format!("`{}` is read twice by {}", e.text, owner.describe),
                            )
                            .key(owner.key("inputs"))
                            .label("an earlier entry already reads this")
                            .help("remove this entry");
                    }
                    input.signals = input.signals.union(flowing);
                }
                None => inputs.push(Input {
                    from: from.to_string(),
                    signals: flowing,
                }),
            }
        }
        emits[i] = match (&c.config, c.kind) {
            (Some((_, s)), ComponentKind::Source) => Some(s.outputs(SignalSet::NONE)),
            (Some((_, p)), ComponentKind::Processor) if known => {
                let input = inputs
                    .iter()
                    .fold(SignalSet::NONE, |acc, input| acc.union(input.signals));
                Some(p.outputs(input))
            }
            (Some(_), ComponentKind::Sink) => Some(SignalSet::NONE),
            _ => None,
        };
        if let Some((type_name, config)) = &c.config {
            out.push(Component {
                name: c.name.clone(),
                kind: c.kind,
                type_name,
                config: config.clone(),
                inputs,
                queue_capacity: c.queue_capacity,
            });
        }
    }

    for &i in order {
        let c = &comps[i];
        let Some(emitted) = emits[i].filter(|e| !e.is_empty()) else {
            continue;
        };
        let owner = c.owner();
        if readers[i] == 0 {
            report
                .warning(
                    c.span.clone(),
                    format!("nothing reads from {}", owner.describe),
                )
                .key(owner.path.clone())
                .label(format!("its {} go nowhere", list_signals(emitted)))
                .help(format!(
                    "add `{}` to the `inputs` of a sink or processor, or remove this {}",
                    c.name,
                    c.kind.noun()
                ));
            continue;
        }
        let unread: SignalSet = emitted.iter().filter(|s| !read[i].contains(*s)).collect();
        if !unread.is_empty() {
            let first = unread.iter().next().map_or("logs", Signal::as_str);
            report
                .warning(
                    c.span.clone(),
                    format!(
                        "{} emits {} that nothing reads",
                        owner.describe,
                        list_signals(unread)
                    ),
                )
                .key(owner.path.clone())
                .label(format!("its {} go nowhere", list_signals(unread)))
                .help(format!(
                    "add `{}.{first}` (or `{}`) to the `inputs` of a sink to keep them",
                    c.name, c.name
                ));
        }
    }
    out
}

/// What one `inputs` entry carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    /// These signals flow (never empty).
    Signals(SignalSet),
    /// One end's config is unknown (and already reported): assume these.
    Unknown(SignalSet),
    /// `NAME.SIGNAL` asks for a signal the upstream never emits.
    NeverEmitted { signal: Signal, emits: SignalSet },
    /// The reader accepts nothing of what the entry sends.
    NotAccepted {
        sends: SignalSet,
        accepts: SignalSet,
    },
}

/// The signals on an edge: those asked for (`signal`, or all that the
/// upstream `emits`) that the reader `accepts`. `None` means unknown.
fn flow(signal: Option<Signal>, emits: Option<SignalSet>, accepts: Option<SignalSet>) -> Flow {
    let sends = match (signal, emits) {
        (Some(signal), Some(emits)) if !emits.contains(signal) => {
            return Flow::NeverEmitted { signal, emits };
        }
        (Some(signal), _) => Some(SignalSet::only(signal)),
        (None, emits) => emits,
    };
    match (sends, accepts) {
        (Some(sends), Some(accepts)) => {
            let flowing = sends.intersect(accepts);
            if flowing.is_empty() {
                Flow::NotAccepted { sends, accepts }
            } else {
                Flow::Signals(flowing)
            }
        }
        (sends, _) => Flow::Unknown(sends.unwrap_or(SignalSet::ALL)),
    }
}

/// `logs`, `logs and spans`, `logs, spans and metrics`.
fn list_signals(set: SignalSet) -> String {
    let names: Vec<&str> = set.iter().map(Signal::as_str).collect();
    match names.split_last() {
        None => "nothing".to_string(),
        Some((last, [])) => (*last).to_string(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(signals: &[Signal]) -> SignalSet {
        signals.iter().copied().collect()
    }

    /// Guarantees: an edge carries exactly the requested signals the
    /// upstream emits and the reader accepts.
    #[test]
    fn edges_carry_the_intersection() {
        let all = Some(SignalSet::ALL);
        assert_eq!(flow(None, all, all), Flow::Signals(SignalSet::ALL));
        assert_eq!(
            flow(None, all, Some(set(&[Signal::Logs]))),
            Flow::Signals(set(&[Signal::Logs]))
        );
        assert_eq!(
            flow(Some(Signal::Spans), all, all),
            Flow::Signals(set(&[Signal::Spans]))
        );
    }

    /// Guarantees: asking for a signal the upstream never emits, or sending
    /// only what the reader refuses, is caught, naming both sides' sets.
    #[test]
    fn impossible_edges_are_caught() {
        let logs = set(&[Signal::Logs]);
        let metrics = set(&[Signal::Metrics]);
        assert_eq!(
            flow(Some(Signal::Spans), Some(logs), Some(SignalSet::ALL)),
            Flow::NeverEmitted {
                signal: Signal::Spans,
                emits: logs
            }
        );
        assert_eq!(
            flow(None, Some(logs), Some(metrics)),
            Flow::NotAccepted {
                sends: logs,
                accepts: metrics
            }
        );
        assert_eq!(
            flow(Some(Signal::Logs), Some(SignalSet::ALL), Some(metrics)),
            Flow::NotAccepted {
                sends: logs,
                accepts: metrics
            }
        );
    }

    /// Guarantees: when one end is unknown (its error already reported), no
    /// further error is invented about the edge.
    #[test]
    fn unknown_ends_are_not_reported_again() {
        assert_eq!(
            flow(None, None, Some(SignalSet::ALL)),
            Flow::Unknown(SignalSet::ALL)
        );
        assert_eq!(
            flow(Some(Signal::Logs), None, None),
            Flow::Unknown(set(&[Signal::Logs]))
        );
    }

    /// Guarantees: signal lists read as English.
    #[test]
    fn lists_signals_in_words() {
        assert_eq!(list_signals(SignalSet::only(Signal::Logs)), "logs");
        assert_eq!(
            list_signals(SignalSet::TELEMETRY),
            "logs, spans and metrics"
        );
        assert_eq!(
            list_signals([Signal::Spans, Signal::Metrics].into_iter().collect()),
            "spans and metrics"
        );
    }
}
