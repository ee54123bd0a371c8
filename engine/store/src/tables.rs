//! The tables of the store.

use std::fmt;

use arrow::datatypes::SchemaRef;
use weir_core::Signal;
use weir_core::schema::schema_for;

/// A table of the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    /// Log records.
    Logs,
    /// Spans.
    Spans,
    /// Metric data points.
    Metrics,
    /// Alert events (every state transition of every alert instance).
    Alerts,
}

impl Table {
    /// Every table.
    pub const ALL: [Table; 4] = [Table::Logs, Table::Spans, Table::Metrics, Table::Alerts];

    /// The table's SQL name.
    pub fn name(self) -> &'static str {
        match self {
            Table::Logs => "logs",
            Table::Spans => "spans",
            Table::Metrics => "metrics",
            Table::Alerts => "alerts",
        }
    }

    /// A stable one-byte id (used in the write-ahead log).
    pub fn id(self) -> u8 {
        match self {
            Table::Logs => 1,
            Table::Spans => 2,
            Table::Metrics => 3,
            Table::Alerts => 4,
        }
    }

    /// The table of id `id`.
    pub fn from_id(id: u8) -> Option<Table> {
        Table::ALL.into_iter().find(|t| t.id() == id)
    }

    /// The table called `name`.
    pub fn from_name(name: &str) -> Option<Table> {
        Table::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The table's Arrow schema.
    pub fn schema(self) -> SchemaRef {
        match self {
            Table::Logs => schema_for(Signal::Logs),
            Table::Spans => schema_for(Signal::Spans),
            Table::Metrics => schema_for(Signal::Metrics),
            Table::Alerts => schema_for(Signal::Alerts),
        }
    }

    /// The name of the table's event-time column, which partitions it.
    pub fn time_column(self) -> &'static str {
        match self {
            Table::Spans => "start_time",
            _ => "time",
        }
    }
}

impl From<Signal> for Table {
    fn from(signal: Signal) -> Self {
        match signal {
            Signal::Logs => Table::Logs,
            Signal::Spans => Table::Spans,
            Signal::Metrics => Table::Metrics,
            Signal::Alerts => Table::Alerts,
        }
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
