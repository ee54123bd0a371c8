//! The first stage: the TOML document to typed tables, one component at a
//! time.
//!
//! This stage checks everything that can be checked inside one table: the
//! top-level sections, component names, `type`, the shape of `inputs`,
//! `queue_capacity`, unknown keys and every value. What needs the whole
//! pipeline (inputs that name other components, signals, cycles) is left to
//! [`crate::resolve`].

use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use std::sync::Arc;

use crate::component::{ComponentConfig, ComponentKind, Registry};
use crate::decode::{self, Owner};
use crate::diagnostic::Report;
use crate::rule_tests::TestSpec;
use crate::settings::{ApiConfig, QueryConfig, RuntimeConfig, StoreConfig};
use crate::suggest::{did_you_mean, quoted_list};
use crate::values;

/// The top-level tables a pipeline file may hold.
const SECTIONS: [&str; 8] = [
    "api",
    "runtime",
    "store",
    "query",
    "sources",
    "processors",
    "sinks",
    "tests",
];

/// The queue capacity of processors and sinks that do not set one.
pub(crate) const DEFAULT_QUEUE_CAPACITY: usize = 32;

/// A pipeline file read table by table, before the tables are linked.
pub(crate) struct RawPipeline {
    pub api: ApiConfig,
    pub runtime: RuntimeConfig,
    pub store: StoreConfig,
    pub query: QueryConfig,
    /// Every component, in file order.
    pub components: Vec<RawComponent>,
    /// Every `[[tests]]` table that decoded, with its header's span.
    pub tests: Vec<(TestSpec, Range<usize>)>,
}

/// One `[KIND.NAME]` table.
pub(crate) struct RawComponent {
    pub kind: ComponentKind,
    pub name: String,
    /// Where the name is written (in the header, or as an inline key).
    pub name_span: Range<usize>,
    /// The table's header, or the inline table.
    pub span: Range<usize>,
    /// Whether the name is usable in `inputs` (it has no `.` and is not empty).
    pub valid_name: bool,
    /// The `type` and the typed config; `None` when the type or any value
    /// was wrong (and reported).
    pub config: Option<(&'static str, Arc<dyn ComponentConfig>)>,
    /// The `inputs` key, if written and shaped as a list of strings.
    pub inputs: Option<RawInputs>,
    /// `queue_capacity`, or its default.
    pub queue_capacity: usize,
    /// Every key written in the table with the span of its value, so that
    /// later checks can point at them.
    pub keys: Vec<(String, Range<usize>)>,
}

/// The `inputs` of a component as written.
pub(crate) struct RawInputs {
    /// The whole list's span (for "empty list").
    pub span: Range<usize>,
    /// Each entry and its span.
    pub entries: Vec<Spanned<String>>,
}

impl RawComponent {
    pub(crate) fn owner(&self) -> Owner {
        owner(self.kind, &self.name, self.span.clone())
    }

    /// The span of `key`'s value, or the table header when it is not written.
    pub(crate) fn span_of(&self, key: &str) -> Range<usize> {
        self.keys
            .iter()
            .find(|(k, _)| k == key)
            .map_or_else(|| self.span.clone(), |(_, s)| s.clone())
    }
}

fn owner(kind: ComponentKind, name: &str, span: Range<usize>) -> Owner {
    Owner {
        describe: format!("{} `{name}`", kind.noun()),
        path: format!("{}.{}", kind.section(), dotted_key_part(name)),
        span,
    }
}

/// A key as it would be written in a dotted path (quoted if it needs it).
fn dotted_key_part(name: &str) -> String {
    if !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        name.to_string()
    } else {
        format!("{name:?}")
    }
}

/// "an integer", "a string": a TOML type name for a message. An array
/// written `[[x]]` is an array too.
fn article(type_name: &str) -> String {
    match type_name {
        "integer" | "array" => format!("an {type_name}"),
        other => format!("a {other}"),
    }
}

/// Reads the document root into typed tables, reporting every problem
/// found inside a single table.
pub(crate) fn read(root: DeTable<'_>, registry: &Registry, report: &mut Report<'_>) -> RawPipeline {
    let mut pipeline = RawPipeline {
        api: ApiConfig::default(),
        runtime: RuntimeConfig::default(),
        store: StoreConfig::default(),
        query: QueryConfig::default(),
        components: Vec::new(),
        tests: Vec::new(),
    };
    for (key, value) in root {
        let key_span = key.span();
        let key = key.into_inner();
        match key.as_ref() {
            "api" => {
                if let Some(api) = read_settings(&key, value, report) {
                    pipeline.api = api;
                }
            }
            "runtime" => {
                let span = value.span();
                if let Some(runtime) = read_settings::<RuntimeConfig>(&key, value, report) {
                    if let Some(problem) = memory_problem(&runtime) {
                        report
                            .error(span, problem)
                            .key("runtime")
                            .help("give `memory_limit`, and a `memory_spike_limit` under it (or leave that out: a fifth of the limit)");
                    }
                    pipeline.runtime = runtime;
                }
            }
            "store" => {
                if let Some(store) = read_settings(&key, value, report) {
                    pipeline.store = store;
                }
            }
            "query" => {
                if let Some(query) = read_settings(&key, value, report) {
                    pipeline.query = query;
                }
            }
            "sources" => read_section(
                ComponentKind::Source,
                value,
                registry,
                &mut pipeline,
                report,
            ),
            "processors" => read_section(
                ComponentKind::Processor,
                value,
                registry,
                &mut pipeline,
                report,
            ),
            "sinks" => read_section(ComponentKind::Sink, value, registry, &mut pipeline, report),
            "tests" => pipeline.tests = read_tests(value, report),
            other => {
                let valid = format!("valid top-level tables: {}", quoted_list(SECTIONS));
                let help = match did_you_mean(other, SECTIONS) {
                    Some(s) => format!("did you mean `{s}`? {valid}"),
                    None => valid,
                };
                report
                    .error(key_span, format!("unknown top-level key `{other}`"))
                    .key(other)
                    .help(help);
            }
        }
    }
    pipeline.components.sort_by_key(|c| c.span.start);
    pipeline
}

/// What is wrong with `[runtime]`'s memory limit, if anything.
fn memory_problem(runtime: &RuntimeConfig) -> Option<String> {
    match (runtime.memory_limit, runtime.memory_spike_limit) {
        (None, Some(_)) => Some("`memory_spike_limit` is set without `memory_limit`".to_string()),
        (Some(limit), Some(spike)) if spike >= limit => Some(format!(
            "`memory_spike_limit` ({spike} bytes) must be less than `memory_limit` ({limit} bytes)"
        )),
        _ => None,
    }
}

fn read_settings<T: serde::de::DeserializeOwned>(
    key: &str,
    value: Spanned<DeValue<'_>>,
    report: &mut Report<'_>,
) -> Option<T> {
    let span = value.span();
    let found = value.get_ref().type_str();
    let DeValue::Table(mut table) = value.into_inner() else {
        report
            .error(span, format!("`{key}` must be a table"))
            .key(key)
            .label(format!("found {}", article(found)))
            .help(format!(
                "write `[{key}]` on its own line, then its keys below it"
            ));
        return None;
    };
    let owner = Owner {
        describe: format!("`[{key}]`"),
        path: key.to_string(),
        span,
    };
    decode::reject_unknown_keys(
        &mut table,
        crate::introspect::struct_fields::<T>(),
        &owner,
        report,
    );
    decode::decode_struct(table, &owner, report)
}

/// `[[tests]]`: an array of tables, each decoded on its own.
fn read_tests(
    value: Spanned<DeValue<'_>>,
    report: &mut Report<'_>,
) -> Vec<(TestSpec, Range<usize>)> {
    let span = value.span();
    let found = value.get_ref().type_str();
    let DeValue::Array(items) = value.into_inner() else {
        report
            .error(span, "`tests` must be an array of tables")
            .key("tests")
            .label(format!("found {}", article(found)))
            .help("write each test as `[[tests]]` on its own line, then its keys below it");
        return Vec::new();
    };
    let mut tests = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let span = item.span();
        let found = item.get_ref().type_str();
        let owner = Owner {
            describe: format!("test {}", i + 1),
            path: format!("tests[{i}]"),
            span: span.clone(),
        };
        let DeValue::Table(mut table) = item.into_inner() else {
            report
                .error(span, format!("{} must be a table", owner.describe))
                .key(owner.path.clone())
                .label(format!("found {}", article(found)))
                .help("write each test as `[[tests]]` on its own line, then its keys below it");
            continue;
        };
        decode::reject_unknown_keys(
            &mut table,
            crate::introspect::struct_fields::<TestSpec>(),
            &owner,
            report,
        );
        if let Some(spec) = decode::decode_struct::<TestSpec>(table, &owner, report) {
            tests.push((spec, span));
        }
    }
    tests
}

fn read_section(
    kind: ComponentKind,
    value: Spanned<DeValue<'_>>,
    registry: &Registry,
    pipeline: &mut RawPipeline,
    report: &mut Report<'_>,
) {
    let section = kind.section();
    let span = value.span();
    let found = value.get_ref().type_str();
    let DeValue::Table(table) = value.into_inner() else {
        report
            .error(span, format!("`{section}` must be a table of {section}"))
            .key(section)
            .label(format!("found {}", article(found)))
            .help(format!(
                "declare each {} as its own table: `[{section}.NAME]` with a `type` key",
                kind.noun()
            ));
        return;
    };
    for (name, body) in table {
        let name_span = name.span();
        let name = name.into_inner().into_owned();
        if let Some(c) = read_component(kind, name, name_span, body, registry, report) {
            pipeline.components.push(c);
        }
    }
}

fn read_component(
    kind: ComponentKind,
    name: String,
    name_span: Range<usize>,
    body: Spanned<DeValue<'_>>,
    registry: &Registry,
    report: &mut Report<'_>,
) -> Option<RawComponent> {
    let span = body.span();
    let owner = owner(kind, &name, span.clone());
    let found = body.get_ref().type_str();
    let DeValue::Table(mut table) = body.into_inner() else {
        report
            .error(span, format!("{} must be a table", owner.describe))
            .key(owner.path.clone())
            .label(format!("found {}", article(found)))
            .help(format!(
                "write `[{}]` on its own line, then `type = \"…\"` and its settings below it",
                owner.path
            ));
        return None;
    };

    let valid_name = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !valid_name {
        report
            .error(
                name_span.clone(),
                format!("invalid {} name {name:?}", kind.noun()),
            )
            .key(owner.path.clone())
            .label("names may use only letters, digits, `_` and `-`")
            .help("rename it: a `.` would be read as `NAME.SIGNAL` in `inputs`");
    }

    let mut keys: Vec<(String, Range<usize>)> = Vec::new();
    for (k, v) in table.iter() {
        keys.push((k.get_ref().to_string(), v.span()));
        // Each table of an array (`[[processors.NAME.rules]]`) as `key[i]`,
        // and the keys inside it as `key[i].inner`.
        if let DeValue::Array(items) = v.get_ref() {
            for (i, item) in items.iter().enumerate() {
                keys.push((format!("{}[{i}]", k.get_ref()), item.span()));
                if let DeValue::Table(inner) = item.get_ref() {
                    for (ik, iv) in inner.iter() {
                        keys.push((format!("{}[{i}].{}", k.get_ref(), ik.get_ref()), iv.span()));
                    }
                }
            }
        }
    }

    let type_names: Vec<&str> = registry.names(kind).collect();
    let kind_type = read_type(kind, &mut table, &type_names, &owner, report);

    let inputs = table
        .remove_entry("inputs")
        .and_then(|(key, value)| read_inputs(kind, key.span(), value, &owner, report));

    let queue_capacity = match table.remove_entry("queue_capacity") {
        None => DEFAULT_QUEUE_CAPACITY,
        Some((key, _)) if kind == ComponentKind::Source => {
            report
                .error(
                    key.span(),
                    format!("`queue_capacity` does not apply to {}", owner.describe),
                )
                .key(owner.key("queue_capacity"))
                .label("a source has no input queue")
                .help("remove this line; set `queue_capacity` on the processors and sinks that read from it");
            DEFAULT_QUEUE_CAPACITY
        }
        Some((_, value)) => decode::decode_value(
            "queue_capacity",
            value,
            values::queue_capacity,
            &owner,
            report,
        )
        .unwrap_or(DEFAULT_QUEUE_CAPACITY),
    };

    let config = kind_type.and_then(|(type_name, _)| {
        let component_type = registry.get(kind, &type_name)?;
        let common: &[&str] = match kind {
            ComponentKind::Source => &["type"],
            ComponentKind::Processor | ComponentKind::Sink => &["type", "inputs", "queue_capacity"],
        };
        let fields = component_type.fields().unwrap_or(&[]);
        let known: Vec<&str> = fields.iter().chain(common).copied().collect();
        decode::reject_unknown_keys(&mut table, &known, &owner, report);
        component_type
            .decode(table, &owner, report)
            .map(|config| (component_type.name(), config))
    });

    Some(RawComponent {
        kind,
        name,
        name_span,
        span,
        valid_name,
        config,
        inputs,
        queue_capacity,
        keys,
    })
}

/// Removes `type` from the table and checks it names a known type.
fn read_type(
    kind: ComponentKind,
    table: &mut DeTable<'_>,
    valid: &[&str],
    owner: &Owner,
    report: &mut Report<'_>,
) -> Option<(String, Range<usize>)> {
    let noun = kind.noun();
    let valid_list = if valid.is_empty() {
        format!("this version of Weir has no built-in {noun} types")
    } else {
        format!("valid {noun} types: {}", quoted_list(valid.iter().copied()))
    };
    let Some(value) = table.remove("type") else {
        let example = valid.first().copied().unwrap_or("…");
        report
            .error(
                owner.span.clone(),
                format!("{} has no `type`", owner.describe),
            )
            .key(owner.key("type"))
            .label("`type` is required")
            .help(format!(
                "add `type = \"{example}\"` to this table; {valid_list}"
            ));
        return None;
    };
    let span = value.span();
    let Some(type_name) = value.get_ref().as_str() else {
        report
            .error(
                span,
                format!("invalid value for `type` in {}", owner.describe),
            )
            .key(owner.key("type"))
            .label(format!(
                "expected a string, found {}",
                value.get_ref().type_str()
            ))
            .help(valid_list);
        return None;
    };
    if valid.contains(&type_name) {
        return Some((type_name.to_string(), span));
    }
    let label = match did_you_mean(type_name, valid.iter().copied()) {
        Some(s) => format!("did you mean `{s}`?"),
        None => format!("not a {noun} type"),
    };
    report
        .error(
            span,
            format!("unknown {noun} type `{type_name}` in {}", owner.describe),
        )
        .key(owner.key("type"))
        .label(label)
        .help(valid_list);
    None
}

/// Checks `inputs` is a list of strings (what they name is checked later).
fn read_inputs(
    kind: ComponentKind,
    key_span: Range<usize>,
    value: Spanned<DeValue<'_>>,
    owner: &Owner,
    report: &mut Report<'_>,
) -> Option<RawInputs> {
    if kind == ComponentKind::Source {
        report
            .error(key_span, format!("{} cannot have `inputs`", owner.describe))
            .key(owner.key("inputs"))
            .label("sources read from outside the pipeline")
            .help(
                "remove `inputs` here; to feed a component from this source, \
                 list the source's name in that component's `inputs`",
            );
        return None;
    }
    let span = value.span();
    let items = match value.into_inner() {
        DeValue::Array(items) => items,
        DeValue::String(s) => {
            report
                .error(
                    span,
                    format!("invalid value for `inputs` in {}", owner.describe),
                )
                .key(owner.key("inputs"))
                .label("expected a list of component names, found a string")
                .help(format!("write `inputs = [\"{s}\"]`"));
            return None;
        }
        other => {
            report
                .error(
                    span,
                    format!("invalid value for `inputs` in {}", owner.describe),
                )
                .key(owner.key("inputs"))
                .label(format!(
                    "expected a list of component names, found {}",
                    other.type_str()
                ))
                .help("write `inputs = [\"NAME\", \"NAME.SIGNAL\"]`");
            return None;
        }
    };
    let mut entries = Vec::new();
    let mut ok = true;
    for item in items {
        let item_span = item.span();
        match item.into_inner() {
            DeValue::String(s) => entries.push(Spanned::new(item_span, s.into_owned())),
            other => {
                ok = false;
                report
                    .error(
                        item_span,
                        format!("invalid entry in `inputs` of {}", owner.describe),
                    )
                    .key(owner.key("inputs"))
                    .label(format!(
                        "expected a component name, found {}",
                        other.type_str()
                    ))
                    .help("each entry is a string: `\"NAME\"` or `\"NAME.SIGNAL\"`");
            }
        }
    }
    ok.then_some(RawInputs { span, entries })
}
