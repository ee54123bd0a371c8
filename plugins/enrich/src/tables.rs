//! Where lookups go: the host's tables ([`HostTables`]) in Weir, the tests'
//! own natively.

use weir_plugin::{Error, services};

/// Lookup tables by name.
pub trait Tables {
    /// The value of each key in table `table` (one entry per key);
    /// [`Error::Denied`] when the pipeline gives the plugin no such table.
    fn get_many(&self, table: &str, keys: &[String]) -> Result<Vec<Option<String>>, Error>;
}

/// The tables the pipeline names in the processor's `lookups`, through
/// the host's `lookup` interface.
#[derive(Debug, Clone, Copy, Default)]
pub struct HostTables;

impl Tables for HostTables {
    fn get_many(&self, table: &str, keys: &[String]) -> Result<Vec<Option<String>>, Error> {
        services::lookup_many(table, keys)
    }
}
