//! The contract between a pipeline file and the components it names.
//!
//! Each component type lives in one folder of its own crate (the `otlp`
//! source in `weir-sources`, the `store` sink in `weir-store`, ...) and
//! holds there its config struct, which implements [`ComponentConfig`]:
//! what it takes in, what it emits, the checks across its keys, and how it
//! builds the running component. A [`Registry`] names the types a pipeline
//! file may use; `weir-cli` holds the one table of built-ins. The config
//! crate decodes each `[KIND.NAME]` table into the type its `type` names,
//! with every problem at its file, line and key, and never needs to know
//! the types themselves.
//!
//! Building happens once per component, in plan order, through a
//! [`BuildContext`]: the resources components share (such as the embedded
//! store), the listeners they bound, and the [`Hooks`] a component offers
//! the engine (taking a changed config without a restart, HTTP routes on
//! the API server).

use std::any::{Any, TypeId};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use toml::de::DeTable;
use weir_core::{Built, ComponentError, SignalSet};

use crate::decode::{self, Owner};
use crate::diagnostic::Report;
use crate::introspect;
use crate::plan::Plan;

/// The part a component plays in a pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ComponentKind {
    /// Brings data in from outside (`[sources.NAME]`).
    Source,
    /// Transforms data between its inputs and its readers
    /// (`[processors.NAME]`).
    Processor,
    /// Sends data out of the pipeline (`[sinks.NAME]`).
    Sink,
}

impl ComponentKind {
    /// The table the kind is declared in: `sources`, `processors`, `sinks`.
    pub fn section(self) -> &'static str {
        match self {
            ComponentKind::Source => "sources",
            ComponentKind::Processor => "processors",
            ComponentKind::Sink => "sinks",
        }
    }

    /// The kind as a noun in messages: `source`, `processor`, `sink`.
    pub fn noun(self) -> &'static str {
        match self {
            ComponentKind::Source => "source",
            ComponentKind::Processor => "processor",
            ComponentKind::Sink => "sink",
        }
    }
}

/// A problem with a decoded config that no single value shows, such as two
/// settings that contradict each other; reported at `key` in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The key to point at, if it is in the file; else the table header.
    /// `rules[2]` is the third table of the array `rules`, `rules[2].sql`
    /// a key inside it.
    pub key: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub help: String,
}

/// A component type's configuration: the struct a `[KIND.NAME]` table
/// decodes into (`#[serde(deny_unknown_fields)]`, a doc on every field), and
/// what the planner and the engine ask of it.
#[async_trait]
pub trait ComponentConfig: DynConfig + Debug + Send + Sync + 'static {
    /// The signals the component takes in; none for a source.
    fn accepts(&self) -> SignalSet;

    /// The signals the component emits when it receives `input` (a source
    /// ignores `input`; a sink emits none).
    fn outputs(&self, input: SignalSet) -> SignalSet;

    /// Problems that involve more than one key, found after decoding.
    fn problems(&self) -> Vec<Problem> {
        Vec::new()
    }

    /// Settings that work but should change (a deprecated key, say):
    /// shown as warnings, the pipeline starts.
    fn warnings(&self) -> Vec<Problem> {
        Vec::new()
    }

    /// Whether `[[tests]]` blocks may name this component as the one they
    /// test (the `rules` processor).
    fn takes_tests(&self) -> bool {
        false
    }

    /// Builds the running component named `cx.name()`: binds what it
    /// listens on, opens what it writes to, and registers its hooks.
    async fn build(&self, cx: &mut BuildContext<'_>) -> Result<Built, ComponentError>;
}

/// What every [`ComponentConfig`] gets for free: comparison and downcasts
/// through `dyn`. Implemented for every `PartialEq + Debug` config.
pub trait DynConfig {
    /// The config as [`Any`], to downcast to its concrete type.
    fn as_any(&self) -> &dyn Any;
    /// Whether `other` is a config of the same type with equal values.
    fn dyn_eq(&self, other: &dyn Any) -> bool;
}

impl<T: PartialEq + Any> DynConfig for T {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn dyn_eq(&self, other: &dyn Any) -> bool {
        other.downcast_ref::<T>().is_some_and(|o| o == self)
    }
}

impl dyn ComponentConfig {
    /// The config as its concrete type `T`, if it is one.
    pub fn downcast_ref<T: Any>(&self) -> Option<&T> {
        self.as_any().downcast_ref::<T>()
    }
}

/// Decodes a component table into its config; reports problems itself.
type Decode = for<'i> fn(DeTable<'i>, &Owner, &mut Report<'_>) -> Option<Arc<dyn ComponentConfig>>;

/// One component type a pipeline file may name.
#[derive(Clone)]
pub struct ComponentType {
    kind: ComponentKind,
    name: &'static str,
    /// The config struct's fields, `None` when they cannot be listed (a
    /// `#[serde(flatten)]` struct hides them).
    fields: Option<&'static [&'static str]>,
    decode: Decode,
}

impl Debug for ComponentType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComponentType")
            .field("kind", &self.kind)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl ComponentType {
    /// Source, processor or sink.
    pub fn kind(&self) -> ComponentKind {
        self.kind
    }

    /// The `type` users write.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The keys its table takes, besides `type`, `inputs` and
    /// `queue_capacity`; `None` when the config struct does not list them.
    pub fn fields(&self) -> Option<&'static [&'static str]> {
        self.fields
    }

    pub(crate) fn decode(
        &self,
        table: DeTable<'_>,
        owner: &Owner,
        report: &mut Report<'_>,
    ) -> Option<Arc<dyn ComponentConfig>> {
        (self.decode)(table, owner, report)
    }
}

fn decode_as<T: ComponentConfig + DeserializeOwned>(
    table: DeTable<'_>,
    owner: &Owner,
    report: &mut Report<'_>,
) -> Option<Arc<dyn ComponentConfig>> {
    decode::decode_struct::<T>(table, owner, report)
        .map(|c| Arc::new(c) as Arc<dyn ComponentConfig>)
}

/// The component types a pipeline file may name, by kind and `type`.
///
/// ```
/// # use weir_config::{ComponentKind, Registry};
/// let registry = Registry::new();
/// assert_eq!(registry.names(ComponentKind::Sink).count(), 0);
/// ```
#[derive(Debug, Clone, Default)]
pub struct Registry {
    types: Vec<ComponentType>,
}

impl Registry {
    /// A registry with no types.
    pub fn new() -> Self {
        Registry::default()
    }

    /// Adds source type `name`, configured by `T`.
    pub fn source<T: ComponentConfig + DeserializeOwned>(self, name: &'static str) -> Self {
        self.with::<T>(ComponentKind::Source, name)
    }

    /// Adds processor type `name`, configured by `T`.
    pub fn processor<T: ComponentConfig + DeserializeOwned>(self, name: &'static str) -> Self {
        self.with::<T>(ComponentKind::Processor, name)
    }

    /// Adds sink type `name`, configured by `T`.
    pub fn sink<T: ComponentConfig + DeserializeOwned>(self, name: &'static str) -> Self {
        self.with::<T>(ComponentKind::Sink, name)
    }

    fn with<T: ComponentConfig + DeserializeOwned>(
        mut self,
        kind: ComponentKind,
        name: &'static str,
    ) -> Self {
        self.types.retain(|t| !(t.kind == kind && t.name == name));
        self.types.push(ComponentType {
            kind,
            name,
            fields: introspect::struct_fields_checked::<T>(),
            decode: decode_as::<T>,
        });
        self
    }

    /// The type `name` of `kind`, if registered.
    pub fn get(&self, kind: ComponentKind, name: &str) -> Option<&ComponentType> {
        self.types.iter().find(|t| t.kind == kind && t.name == name)
    }

    /// The `type` names of `kind`, in the order they were added.
    pub fn names(&self, kind: ComponentKind) -> impl Iterator<Item = &'static str> + '_ {
        self.types
            .iter()
            .filter(move |t| t.kind == kind)
            .map(|t| t.name)
    }

    /// Every registered type.
    pub fn types(&self) -> &[ComponentType] {
        &self.types
    }
}

/// Things components of one running Weir share, one value per type (the
/// embedded store, a board the `rules` processors publish their status on).
/// The first component that needs one makes it; the others find it.
#[derive(Default)]
pub struct Resources {
    values: HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
}

impl Debug for Resources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resources")
            .field("count", &self.values.len())
            .finish()
    }
}

impl Resources {
    /// The shared `T`, if some component made one.
    pub fn get<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        self.values
            .get(&TypeId::of::<T>())
            .and_then(|v| v.clone().downcast::<T>().ok())
    }

    /// Shares `value`, replacing an earlier `T`.
    pub fn insert<T: Any + Send + Sync>(&mut self, value: Arc<T>) {
        self.values.insert(TypeId::of::<T>(), value);
    }
}

/// Takes a changed config of a running component without a restart.
pub trait Reload: Send + Sync {
    /// Applies `new`, the component's new config (of its own type). An
    /// error says why only a restart can apply it.
    fn reload(&self, new: &dyn ComponentConfig) -> Result<(), String>;
}

/// What a built component offers the engine besides running.
#[derive(Default)]
pub struct Hooks {
    /// Takes a changed config on `SIGHUP`; without it any change needs a
    /// restart.
    pub reload: Option<Box<dyn Reload>>,
}

/// What the engine keeps across the building of all components.
#[derive(Default)]
pub struct Shared {
    /// Addresses bound so far, by `component/what` (`otlp/grpc`).
    pub listeners: BTreeMap<String, SocketAddr>,
    /// Values shared between components, by type.
    pub resources: Resources,
    /// Routes components add to the API server (`[api]`).
    pub api_routes: Vec<axum::Router>,
    /// Each component's hooks, by name.
    pub hooks: BTreeMap<String, Hooks>,
    /// The directory where components keep state across restarts (each
    /// under its own name); `None` keeps no state.
    pub state_dir: Option<PathBuf>,
    /// The URL Weir's API is reached at, for links (an alert's
    /// `generatorURL`).
    pub external_url: String,
}

/// What a component's [`ComponentConfig::build`] is given.
pub struct BuildContext<'a> {
    name: &'a str,
    plan: &'a Plan,
    shared: &'a mut Shared,
}

impl<'a> BuildContext<'a> {
    /// The context for building component `name` of `plan`.
    pub fn new(name: &'a str, plan: &'a Plan, shared: &'a mut Shared) -> Self {
        BuildContext { name, plan, shared }
    }

    /// The component's name in the pipeline file.
    pub fn name(&self) -> &str {
        self.name
    }

    /// The whole plan: the engine-wide settings (`[store]`, `[query]`, ...).
    pub fn plan(&self) -> &Plan {
        self.plan
    }

    /// Records that the component listens for `what` (`grpc`, `http`) on
    /// `addr`, as `NAME/what`.
    pub fn listening(&mut self, what: &str, addr: SocketAddr) {
        self.shared
            .listeners
            .insert(format!("{}/{what}", self.name), addr);
    }

    /// The values components share.
    pub fn resources(&mut self) -> &mut Resources {
        &mut self.shared.resources
    }

    /// Adds routes to the API server.
    pub fn add_api_routes(&mut self, routes: axum::Router) {
        self.shared.api_routes.push(routes);
    }

    /// Offers the engine a way to apply a changed config without a restart.
    pub fn on_reload(&mut self, reload: impl Reload + 'static) {
        self.shared
            .hooks
            .entry(self.name.to_string())
            .or_default()
            .reload = Some(Box::new(reload));
    }

    /// Where the component may keep state across restarts, or `None`.
    pub fn state_dir(&self) -> Option<&std::path::Path> {
        self.shared.state_dir.as_deref()
    }

    /// The URL Weir's API is reached at.
    pub fn external_url(&self) -> &str {
        &self.shared.external_url
    }
}
