//! The lookup tables a pipeline gives a plugin (`lookups = { NAME = ... }`
//! on a `wasm` processor), served to it through the WIT `lookup`
//! interface.
//!
//! * [`config`]: what a user writes for one table ([`LookupFile`]).
//! * `source`: a file's rows, from CSV or JSON.
//! * `index`: the rows indexed for `exact`, `prefix` or `cidr` matching.
//! * `watch`: the thread that loads a changed file again.
//!
//! Every table is loaded when the processor is built; a missing or bad
//! file fails the start, naming the table and the file. Afterwards a
//! background thread checks each file's modification time and length
//! about once a second and, when they change, reads and indexes the file
//! and swaps the new index in whole: a lookup sees the old table or the
//! new one, never a mix. A file that no longer loads (or is gone) leaves
//! the last good table in place, logs a warning naming the table and the
//! file, and counts in `weir_plugin_lookup_reload_errors_total`.
//!
//! Why a thread rather than a check on lookup: reading and indexing a
//! large file then never runs inside a plugin call (where it would count
//! against the plugin's `timeout` and hold up a batch) nor on the async
//! runtime; a lookup costs a read lock and a reference count; and a change
//! is picked up within a second even while no batch flows. The thread
//! sleeps between checks and ends when the processor is dropped.

pub mod config;
mod index;
mod source;
mod watch;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

pub use config::{Format, LookupFile, MatchMode};
pub(crate) use index::Index;

/// How often the files are checked for changes.
pub(crate) const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Why a lookup file cannot be used. The caller adds the table and file.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// The file cannot be read.
    #[error(
        "cannot read the file: {error}; check `file` (a relative path is taken from the directory Weir runs in)"
    )]
    Read {
        /// The operating system's reason.
        error: std::io::Error,
    },
    /// The file is not CSV as this table needs it.
    #[error("not a CSV table: {message}")]
    Csv {
        /// What is wrong, with the line where it says so.
        message: String,
    },
    /// `key` names no column of the CSV header.
    #[error("there is no column `{key}`; the header names `{columns}`: set `key` to one of them")]
    NoKeyColumn {
        /// The `key` given.
        key: String,
        /// The header's columns.
        columns: String,
    },
    /// The file does not parse as JSON.
    #[error("not JSON: {message}")]
    Json {
        /// serde_json's words.
        message: String,
    },
    /// JSON of another shape than an object or an array.
    #[error("a JSON table must hold one JSON object (key -> value) or an array of objects")]
    JsonShape,
    /// `key` given for a JSON object.
    #[error(
        "the file is one JSON object whose keys are the keys: leave `key` out (it names the \
         key field of an array of objects, or the key column of a CSV file)"
    )]
    KeyOnObject,
    /// A JSON array without `key`.
    #[error(
        "an array of objects needs `key` naming the field that holds each object's key, such \
         as {{ file = \"teams.json\", key = \"service\" }}"
    )]
    NoKeyField,
    /// An element of a JSON array that cannot be a row.
    #[error("element {element} {message}")]
    Element {
        /// Its position, from 1.
        element: usize,
        /// What is wrong with it.
        message: String,
    },
    /// A key given twice.
    #[error("row {row}: the key `{key}` is given more than once; keep one row per key")]
    DuplicateKey {
        /// The key.
        key: String,
        /// The row of its second appearance, from 1.
        row: usize,
    },
    /// A key of a `cidr` table that is not a network.
    #[error("row {row}: {message}")]
    BadNetwork {
        /// The row, from 1.
        row: usize,
        /// What is wrong with the key.
        message: String,
    },
    /// Over 4 billion rows.
    #[error("the table has more than 4294967295 rows")]
    TooLarge,
    /// The table's settings are wrong.
    #[error("{0}")]
    Settings(String),
}

/// A table that did not load when the processor was built.
#[derive(Debug, thiserror::Error)]
#[error("lookup table `{table}` (`{file}`): {error}")]
pub struct LoadError {
    /// The table's name in `lookups`.
    pub table: String,
    /// Its file, as written.
    pub file: String,
    /// What is wrong.
    pub error: LookupError,
}

/// The lookup tables of one `wasm` processor, shared by its instances.
#[derive(Debug)]
pub(crate) struct Tables {
    inner: Arc<Inner>,
    /// Stops the reload thread when the tables are dropped.
    _watch: Option<watch::Watcher>,
}

#[derive(Debug)]
struct Inner {
    component: Arc<str>,
    tables: BTreeMap<String, Table>,
}

/// One table: its source, the index in use, and what the last check saw.
#[derive(Debug)]
struct Table {
    source: LookupFile,
    format: Format,
    current: RwLock<Arc<Index>>,
    stamp: Mutex<Option<FileStamp>>,
    reloads: AtomicU64,
    failures: AtomicU64,
}

/// What tells a changed file: its modification time and length.
type FileStamp = (Option<SystemTime>, u64);

fn stamp(path: &std::path::Path) -> Option<FileStamp> {
    std::fs::metadata(path)
        .ok()
        .map(|m| (m.modified().ok(), m.len()))
}

/// Reads and indexes `source`.
fn load(source: &LookupFile, format: Format) -> Result<Index, LookupError> {
    let rows = source::read(&source.file, format, source.key.as_deref())?;
    Index::build(source.match_mode, rows)
}

impl Tables {
    /// Loads every table of `files` for component `component`, checking
    /// the files for changes every [`CHECK_EVERY`].
    pub(crate) fn load(
        component: &str,
        files: &BTreeMap<String, LookupFile>,
    ) -> Result<Tables, LoadError> {
        Tables::load_checking_every(component, files, CHECK_EVERY)
    }

    /// [`Tables::load`], checking the files every `every`.
    pub(crate) fn load_checking_every(
        component: &str,
        files: &BTreeMap<String, LookupFile>,
        every: Duration,
    ) -> Result<Tables, LoadError> {
        let mut tables = BTreeMap::new();
        for (name, source) in files {
            let fail = |error| LoadError {
                table: name.clone(),
                file: source.file.display().to_string(),
                error,
            };
            if let Some(problem) = source.problem() {
                return Err(fail(LookupError::Settings(problem)));
            }
            let format = source.resolved_format();
            // The stamp is taken first: a change made while the file is
            // read is seen by the next check.
            let seen = stamp(&source.file);
            let index = load(source, format).map_err(fail)?;
            tracing::debug!(component, table = %name, file = %source.file.display(),
                rows = index.len(), "lookup table loaded");
            tables.insert(
                name.clone(),
                Table {
                    source: source.clone(),
                    format,
                    current: RwLock::new(Arc::new(index)),
                    stamp: Mutex::new(seen),
                    reloads: AtomicU64::new(0),
                    failures: AtomicU64::new(0),
                },
            );
        }
        let inner = Arc::new(Inner {
            component: component.into(),
            tables,
        });
        let watch = (!inner.tables.is_empty()).then(|| watch::Watcher::start(inner.clone(), every));
        Ok(Tables {
            inner,
            _watch: watch,
        })
    }

    /// The index of table `name` as it is now.
    pub(crate) fn get(&self, name: &str) -> Option<Arc<Index>> {
        let table = self.inner.tables.get(name)?;
        let current = table.current.read().unwrap_or_else(|e| e.into_inner());
        Some(current.clone())
    }

    /// How often table `name` was loaded again after a change, and how
    /// often that failed (the old table kept).
    #[cfg(test)]
    pub(crate) fn reload_counts(&self, name: &str) -> (u64, u64) {
        self.inner.tables.get(name).map_or((0, 0), |t| {
            (
                t.reloads.load(Ordering::Relaxed),
                t.failures.load(Ordering::Relaxed),
            )
        })
    }
}

impl Inner {
    /// Loads again every table whose file changed since the last check.
    fn check(&self) {
        for (name, table) in &self.tables {
            table.check(&self.component, name);
        }
    }
}

impl Table {
    fn check(&self, component: &str, name: &str) {
        let now = stamp(&self.source.file);
        {
            let mut seen = self.stamp.lock().unwrap_or_else(|e| e.into_inner());
            if *seen == now {
                return;
            }
            *seen = now;
        }
        let file = self.source.file.display();
        let result = match now {
            None => Err(LookupError::Read {
                error: std::io::Error::new(std::io::ErrorKind::NotFound, "the file is gone"),
            }),
            Some(_) => load(&self.source, self.format),
        };
        match result {
            Ok(index) => {
                let rows = index.len();
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(index);
                self.reloads.fetch_add(1, Ordering::Relaxed);
                crate::metrics::lookup_reloads(component, name).increment(1);
                tracing::info!(component, table = name, file = %file, rows,
                    "lookup file changed; table reloaded");
            }
            Err(error) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                crate::metrics::lookup_reload_errors(component, name).increment(1);
                tracing::warn!(component, table = name, file = %file, %error,
                    "lookup file changed but does not load; keeping the table as last loaded");
            }
        }
    }
}

#[cfg(test)]
mod tests;
