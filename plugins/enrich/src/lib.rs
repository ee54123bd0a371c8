//! `enrich`: adds, changes, renames and deletes attributes of logs, spans
//! and metric points, with constant or templated values and with values
//! from lookup tables (CSV or JSON files the pipeline names, matched by
//! exact key, prefix or CIDR).
//!
//! ```toml
//! [processors.enrich]
//! type = "wasm"
//! inputs = ["otlp"]
//! # cargo build --release --target wasm32-wasip2 -p enrich (in plugins/)
//! path = "enrich.wasm"
//! lookups = { teams = { file = "teams.csv", key = "service" } }
//!
//! [processors.enrich.config]
//! # Lookups run first: the row of each service's name in teams.csv.
//! lookups = [{ table = "teams", from = "resource.service.name",
//!              columns = { team = "team.name", owner = "team.owner" } }]
//! # Then the actions, in order.
//! actions = [
//!   { set = "resource", key = "deployment.environment", value = "prod", action = "insert" },
//!   { set = "record", key = "http.route", action = "rename", to = "route" },
//!   { set = "record", key = "user.password", action = "delete" },
//!   { set = "resource", key = "service.ns_name", action = "upsert",
//!     value = "{resource.service.namespace}/{resource.service.name}" },
//! ]
//! ```
//!
//! How a batch goes through: a [`Frame`] reads each attribute key or
//! column a step needs once; each [`LookupStep`] takes the distinct keys
//! of its column, looks them up in one call and parses each value found
//! once; each [`ActionStep`] renders its value per row; every write stays
//! in the frame (later steps see it) until [`Frame::flush`] sends each
//! changed key back in one call.
//!
//! The modules: [`config`] (what the user writes, checked into a
//! [`Plan`]), [`refs`] (attributes and columns a config reads),
//! [`template`], [`frame`] (one batch), [`lookup`] and [`actions`] (the
//! steps), [`tables`] (where lookups go).

pub mod actions;
pub mod config;
pub mod frame;
pub mod lookup;
pub mod refs;
pub mod tables;
pub mod template;

#[cfg(test)]
mod tests;

use weir_plugin::services::{self, Label};
use weir_plugin::{Batch, Error, Plugin, export_plugin};

pub use actions::ActionStep;
pub use config::{ConfigError, EnrichConfig, Plan};
pub use frame::{Frame, Rows};
pub use lookup::LookupStep;
pub use tables::{HostTables, Tables};

/// The plugin: its steps and where lookups go.
#[derive(Debug)]
pub struct Enrich<T: Tables = HostTables> {
    plan: Plan,
    tables: T,
}

impl<T: Tables> Enrich<T> {
    /// The plugin for a checked [`Plan`]; refuses a lookup of a table that
    /// `tables` does not have.
    pub fn new(plan: Plan, tables: T) -> Result<Self, ConfigError> {
        for (i, lookup) in plan.lookups.iter().enumerate() {
            if let Err(Error::Denied(_)) = tables.get_many(&lookup.table, &[]) {
                return Err(ConfigError::UnknownTable {
                    path: format!("lookups[{i}]"),
                    table: lookup.table.clone(),
                });
            }
        }
        Ok(Enrich { plan, tables })
    }

    /// Runs every step on `rows` and writes the changes back. Returns the
    /// hits and misses of each lookup.
    pub fn enrich<R: Rows + ?Sized>(&self, rows: &mut R) -> Result<Vec<lookup::Outcome>, Error> {
        let mut frame = Frame::new(rows);
        if frame.is_empty() {
            return Ok(Vec::new());
        }
        let signal = frame.signal();
        let mut outcomes = Vec::with_capacity(self.plan.lookups.len());
        for step in &self.plan.lookups {
            outcomes.push(match step.signals.contains(signal) {
                true => step.run(&mut frame, &self.tables)?,
                false => lookup::Outcome::default(),
            });
        }
        for step in &self.plan.actions {
            if step.signals.contains(signal) {
                step.run(&mut frame)?;
            }
        }
        frame.flush()?;
        Ok(outcomes)
    }
}

impl<T: Tables + Default + 'static> Plugin for Enrich<T> {
    fn init(config: &str) -> Result<Self, Error> {
        Ok(Enrich::new(Plan::from_json(config)?, T::default())?)
    }

    fn process(&mut self, batch: &mut Batch<'_>) -> Result<(), Error> {
        let outcomes = self.enrich(batch)?;
        for (step, outcome) in self.plan.lookups.iter().zip(outcomes) {
            count(&step.table, "hit", outcome.hits);
            count(&step.table, "miss", outcome.misses);
        }
        Ok(())
    }
}

/// `weir_plugin_enrich_lookups{table, result}`: rows whose key was found
/// (`hit`) or not (`miss`). A counter the host refuses is logged; the
/// batch goes on enriched.
fn count(table: &str, result: &str, rows: u64) {
    if rows == 0 {
        return;
    }
    let labels = [
        Label {
            name: "table".to_string(),
            value: table.to_string(),
        },
        Label {
            name: "result".to_string(),
            value: result.to_string(),
        },
    ];
    if let Err(e) = services::counter_add("enrich_lookups", rows, &labels) {
        services::log(
            services::Level::Warn,
            &format!("counting lookups of table `{table}`: {e:?}"),
        );
    }
}

export_plugin!(Enrich);
