//! Each kind of mistake in a pipeline file, checked field by field: the
//! diagnostic names the file, the line, the key, and says how to fix it.
//! (`golden.rs` checks the full rendered text of the same cases.)

use weir_cli::parse_str;
use weir_config::{Diagnostic, Severity};

const FILE: &str = "pipelines/test.toml";

/// All errors for `source`, which must fail to load.
fn errors(source: &str) -> Vec<Diagnostic> {
    let err = parse_str(source, FILE).expect_err("the pipeline is invalid");
    for d in err.diagnostics() {
        assert_eq!(d.file, FILE);
        assert_eq!(d.severity, Severity::Error);
    }
    err.diagnostics().to_vec()
}

/// The single error for `source`.
fn error(source: &str) -> Diagnostic {
    let all = errors(source);
    assert_eq!(all.len(), 1, "expected one error, got {all:#?}");
    all.into_iter().next().expect("one error")
}

fn key(d: &Diagnostic) -> &str {
    d.key.as_deref().unwrap_or("")
}

fn help(d: &Diagnostic) -> String {
    d.help.join("\n")
}

fn label(d: &Diagnostic) -> &str {
    d.label.as_deref().unwrap_or("")
}

const SINK: &str = "\n[sinks.null]\ntype = \"blackhole\"\ninputs = [\"otlp\"]\n";

/// Scenario: broken TOML. Guarantees: the error points at the broken line
/// and is reported as a syntax problem.
#[test]
fn toml_syntax_error() {
    let d = error("[sources.otlp]\ntype = \"otlp\"\ngrpc_address \"0.0.0.0:4317\"\n");
    assert_eq!(d.line(), Some(3));
    assert!(d.message.starts_with("invalid TOML"), "{}", d.message);
    assert!(d.message.contains("expected `=`"), "{}", d.message);
}

/// Scenario: a misspelt top-level table and an unknown top-level key.
/// Guarantees: both are reported at their lines, with a did-you-mean.
#[test]
fn unknown_top_level_table_and_key() {
    let all = errors(
        "title = \"x\"\n[source.otlp]\ntype = \"otlp\"\n[sources.otlp]\ntype = \"otlp\"\n[sinks.null]\ntype = \"blackhole\"\ninputs = [\"otlp\"]\n",
    );
    assert_eq!(all.len(), 2, "{all:#?}");
    assert_eq!((all[0].line(), key(&all[0])), (Some(1), "title"));
    assert_eq!(all[0].message, "unknown top-level key `title`");
    assert_eq!((all[1].line(), key(&all[1])), (Some(2), "source"));
    assert!(help(&all[1]).contains("did you mean `sources`?"));
}

/// Scenario: a typo in a component key. Guarantees: the key's line and
/// column, its full path, a did-you-mean and the list of valid fields.
#[test]
fn unknown_key_in_component() {
    let d = error(&format!(
        "[sources.otlp]\ntype = \"otlp\"\ngrpc_adress = \"0.0.0.0:4317\"\n{SINK}"
    ));
    assert_eq!(d.line(), Some(3));
    assert_eq!(d.location.as_ref().map(|l| l.column), Some(1));
    assert_eq!(key(&d), "sources.otlp.grpc_adress");
    assert_eq!(d.message, "unknown field `grpc_adress` in source `otlp`");
    assert!(
        help(&d).starts_with("did you mean `grpc_address`? valid fields: `grpc`, `grpc_address`")
    );
    let text = parse_str(
        &format!("[sources.otlp]\ntype = \"otlp\"\ngrpc_adress = \"0.0.0.0:4317\"\n{SINK}"),
        FILE,
    )
    .expect_err("invalid")
    .to_string();
    assert!(text.contains(" --> pipelines/test.toml:3:1\n"), "{text}");
}

/// Scenario: a sink `type` that does not exist. Guarantees: the value's
/// line, a did-you-mean, and the valid sink types listed.
#[test]
fn unknown_component_type() {
    let d =
        error("[sources.otlp]\ntype = \"otlp\"\n[sinks.x]\ntype = \"fil\"\ninputs = [\"otlp\"]\n");
    assert_eq!((d.line(), key(&d)), (Some(4), "sinks.x.type"));
    assert_eq!(d.message, "unknown sink type `fil` in sink `x`");
    assert_eq!(label(&d), "did you mean `file`?");
    assert_eq!(
        help(&d),
        "valid sink types: `blackhole`, `file`, `store`, `alertmanager`, `webhook`, `kafka`, `otlp`, `prometheus_remote_write`, `loki`"
    );
}

/// Scenario: a processor type misspelt. Guarantees: it is refused as an
/// unknown type at its line, with the closest built-in type suggested.
#[test]
fn unknown_processor_type_suggests_wasm() {
    let all = errors(&format!(
        "[sources.otlp]\ntype = \"otlp\"\n[processors.p]\ntype = \"wsam\"\ninputs = [\"otlp\"]\n{SINK}"
    ));
    assert_eq!(all.len(), 1, "{all:#?}");
    assert_eq!(
        (all[0].line(), key(&all[0])),
        (Some(4), "processors.p.type")
    );
    assert_eq!(label(&all[0]), "did you mean `wasm`?");
}

/// Scenario: a component without `type`. Guarantees: the error points at
/// the component's header and shows a `type` line to add.
#[test]
fn missing_type() {
    let d = error(&format!("[sources.otlp]\ngrpc = true\n{SINK}"));
    assert_eq!((d.line(), key(&d)), (Some(1), "sources.otlp.type"));
    assert_eq!(d.message, "source `otlp` has no `type`");
    assert!(help(&d).contains("add `type = \"otlp\"`"));
}

/// Scenario: several bad values in one file. Guarantees: every one is
/// reported (not just the first), each at its value's line, under its key.
#[test]
fn bad_values_are_all_reported_at_their_values() {
    let source = "[sources.otlp]\n\
        type = \"otlp\"\n\
        queue_wait = \"5 parsecs\"\n\
        grpc_address = \"nope\"\n\
        grpc = \"yes\"\n\
        [sinks.null]\n\
        type = \"blackhole\"\n\
        inputs = [\"otlp\"]\n\
        queue_capacity = 0\n";
    let all = errors(source);
    let found: Vec<(Option<usize>, &str)> = all.iter().map(|d| (d.line(), key(d))).collect();
    assert_eq!(
        found,
        [
            (Some(3), "sources.otlp.queue_wait"),
            (Some(4), "sources.otlp.grpc_address"),
            (Some(5), "sources.otlp.grpc"),
            (Some(9), "sinks.null.queue_capacity"),
        ]
    );
    assert_eq!(
        all[0].message,
        "invalid value for `queue_wait` in source `otlp`"
    );
    assert!(label(&all[0]).contains("`5 parsecs` is not a duration"));
    assert!(label(&all[1]).contains("`nope` is not an IP:PORT address"));
    assert_eq!(label(&all[2]), "expected a boolean, found string \"yes\"");
    assert_eq!(label(&all[3]), "must be an integer from 1 to 65536, not 0");
    // The underline starts at the value, not the key.
    assert_eq!(all[0].location.as_ref().map(|l| l.column), Some(14));
}

/// Scenario: a file sink without its required `path`. Guarantees: the
/// error points at the component's header and names the missing key.
#[test]
fn missing_required_key() {
    let d = error(
        "[sources.otlp]\ntype = \"otlp\"\n\n[sinks.debug]\ntype = \"file\"\ninputs = [\"otlp\"]\n",
    );
    assert_eq!((d.line(), key(&d)), (Some(4), "sinks.debug.path"));
    assert_eq!(d.message, "sink `debug` is missing `path`");
    assert_eq!(
        d.location.as_ref().map(|l| l.source_line.as_str()),
        Some("[sinks.debug]")
    );
}

/// Scenario: `inputs` names a component that does not exist. Guarantees:
/// the entry's line, a did-you-mean and the readable components listed.
#[test]
fn input_names_unknown_component() {
    let d = error(
        "[sources.otlp]\ntype = \"otlp\"\n[sinks.null]\ntype = \"blackhole\"\ninputs = [\"otpl\"]\n",
    );
    assert_eq!((d.line(), key(&d)), (Some(5), "sinks.null.inputs"));
    assert_eq!(
        d.message,
        "unknown component `otpl` in `inputs` of sink `null`"
    );
    assert_eq!(label(&d), "did you mean `otlp`?");
    assert!(help(&d).contains("`otlp`"));
}

/// Scenario: `inputs` names a sink. Guarantees: refused because sinks have
/// no output, at the entry's line.
#[test]
fn input_names_a_sink() {
    let d = error(&format!(
        "[sources.otlp]\ntype = \"otlp\"\n{SINK}[sinks.second]\ntype = \"blackhole\"\ninputs = [\"null\"]\n"
    ));
    assert_eq!((d.line(), key(&d)), (Some(9), "sinks.second.inputs"));
    assert_eq!(d.message, "sink `second` cannot read from sink `null`");
    assert_eq!(label(&d), "sinks have no output");
}

/// Scenario: `inputs` names an unknown signal. Guarantees: the entry's
/// line and a did-you-mean with the corrected entry.
#[test]
fn input_names_unknown_signal() {
    let d = error(
        "[sources.otlp]\ntype = \"otlp\"\n[sinks.null]\ntype = \"blackhole\"\ninputs = [\"otlp.log\"]\n",
    );
    assert_eq!((d.line(), key(&d)), (Some(5), "sinks.null.inputs"));
    assert_eq!(
        d.message,
        "unknown signal `log` in input `otlp.log` of sink `null`"
    );
    assert_eq!(label(&d), "did you mean `otlp.logs`?");
}

/// Scenario: `traces` is accepted as another name for `spans`. Guarantees:
/// the edge carries spans.
#[test]
fn traces_is_an_alias_for_spans() {
    let plan = parse_str(
        "[sources.otlp]\ntype = \"otlp\"\n[sinks.null]\ntype = \"blackhole\"\ninputs = [\"otlp.traces\"]\n",
        FILE,
    )
    .expect("valid");
    let sink = plan.component("null").expect("sink exists");
    assert_eq!(
        sink.inputs[0].signals,
        weir_core::SignalSet::only(weir_core::Signal::Spans)
    );
}

/// Scenario: a source with `inputs`. Guarantees: refused at the key's line.
#[test]
fn inputs_on_a_source() {
    let d = error(&format!(
        "[sources.otlp]\ntype = \"otlp\"\ninputs = [\"x\"]\n{SINK}"
    ));
    assert_eq!((d.line(), key(&d)), (Some(3), "sources.otlp.inputs"));
    assert_eq!(d.message, "source `otlp` cannot have `inputs`");
}

/// Scenario: a sink without `inputs`, and one with an empty list.
/// Guarantees: the first points at the header, the second at the list, and
/// both suggest an existing source.
#[test]
fn sink_without_inputs_or_with_empty_inputs() {
    let all = errors(
        "[sources.otlp]\ntype = \"otlp\"\n[sinks.a]\ntype = \"blackhole\"\n[sinks.b]\ntype = \"blackhole\"\ninputs = []\n",
    );
    assert_eq!(all.len(), 2, "{all:#?}");
    assert_eq!((all[0].line(), key(&all[0])), (Some(3), "sinks.a.inputs"));
    assert_eq!(all[0].message, "sink `a` has no `inputs`");
    assert!(help(&all[0]).contains("inputs = [\"otlp\"]"));
    assert_eq!((all[1].line(), key(&all[1])), (Some(7), "sinks.b.inputs"));
    assert_eq!(all[1].message, "`inputs` of sink `b` is empty");
}

/// Scenario: one name used by a source and a sink. Guarantees: the second
/// use is reported, naming the line of the first.
#[test]
fn same_name_in_two_tables() {
    let d = error(
        "[sources.main]\ntype = \"otlp\"\n[sinks.main]\ntype = \"blackhole\"\ninputs = [\"main\"]\n",
    );
    assert_eq!((d.line(), key(&d)), (Some(3), "sinks.main"));
    assert_eq!(d.message, "the name `main` is used by a source and a sink");
    assert_eq!(label(&d), "also the name of the source on line 1");
}

/// Scenario: processors reading from each other in a loop. Guarantees: the
/// whole cycle is named and the error points at an `inputs` entry on it.
#[test]
fn cycle_among_processors() {
    let source = "[sources.otlp]\ntype = \"otlp\"\n\
        [processors.a]\ntype = \"wasm\"\ninputs = [\"otlp\", \"b\"]\n\
        [processors.b]\ntype = \"wasm\"\ninputs = [\"a\"]\n\
        [sinks.null]\ntype = \"blackhole\"\ninputs = [\"b\"]\n";
    let all = errors(source);
    let cycle: Vec<&Diagnostic> = all.iter().filter(|d| d.message.contains("cycle")).collect();
    assert_eq!(cycle.len(), 1, "{all:#?}");
    assert_eq!(cycle[0].message, "cycle among processors: `a -> b -> a`");
    assert_eq!(
        (cycle[0].line(), key(cycle[0])),
        (Some(5), "processors.a.inputs")
    );
    assert_eq!(cycle[0].location.as_ref().map(|l| l.column), Some(19));
}

/// Scenario: a file with sources but no sink, and one with a sink but no
/// source. Guarantees: each is refused, pointing at a component header.
#[test]
fn needs_a_source_and_a_sink() {
    let d = error("[sources.otlp]\ntype = \"otlp\"\n");
    assert_eq!(d.line(), Some(1));
    assert_eq!(d.message, "the pipeline has no sink");
    assert!(help(&d).contains("inputs = [\"otlp\"]"));

    let all = errors(SINK);
    assert_eq!(all[0].message, "the pipeline has no source");
    assert_eq!(all[0].line(), Some(2));

    let d = error("");
    assert_eq!(d.message, "the pipeline has no components");
    assert_eq!(d.line(), None);
}

/// Scenario: both OTLP listeners turned off. Guarantees: refused at the
/// `http` key, saying to turn one on.
#[test]
fn otlp_needs_a_listener() {
    let d = error(&format!(
        "[sources.otlp]\ntype = \"otlp\"\ngrpc = false\nhttp = false\n{SINK}"
    ));
    assert_eq!((d.line(), key(&d)), (Some(4), "sources.otlp.http"));
    assert!(help(&d).contains("turn on at least one of `grpc` and `http`"));
}

/// Scenario: `[api]` and `[runtime]` mistakes. Guarantees: reported under
/// `api.*` / `runtime.*` keys at their lines.
#[test]
fn settings_tables_are_checked() {
    let all = errors(&format!(
        "[api]\naddress = \"127.0.0.1\"\n[runtime]\nworkers = 2\n[sources.otlp]\ntype = \"otlp\"\n{SINK}"
    ));
    let found: Vec<(Option<usize>, &str)> = all.iter().map(|d| (d.line(), key(d))).collect();
    assert_eq!(
        found,
        [(Some(2), "api.address"), (Some(4), "runtime.workers")]
    );
}

/// Scenario: a file with Windows line endings. Guarantees: lines and
/// columns are still right and the quoted line carries no `\r`.
#[test]
fn windows_line_endings() {
    let d = error(
        "[sources.otlp]\r\ntype = \"otlp\"\r\ngrpc = 1\r\n[sinks.null]\r\ntype = \"blackhole\"\r\ninputs = [\"otlp\"]\r\n",
    );
    let loc = d.location.expect("points at the value");
    assert_eq!((loc.line, loc.column, loc.width), (3, 8, 1));
    assert_eq!(loc.source_line, "grpc = 1");
}
