//! An in-memory stand-in for the host's batch, so that a plugin's logic
//! runs natively in tests. It follows the host's rules: one value per row,
//! columns typed as text, integers, doubles or attribute maps.

use std::cell::RefCell;
use std::collections::HashMap;

use crate::{AttributeColumn, AttributeSet, AttributeWrite, Error, Held, Signal};

/// One column of a [`Table`].
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    /// A text column (`body`, `severity_text`, `service_name`, ...).
    Text(Vec<Option<String>>),
    /// An integer or time column (`severity_number`, `time`, ...).
    Int(Vec<Option<i64>>),
    /// A floating-point column (`value`, ...).
    Float(Vec<Option<f64>>),
    /// An attribute map (`attributes`, ...): the entries of each row.
    Attributes(Vec<Vec<(String, String)>>),
}

impl Column {
    fn len(&self) -> usize {
        match self {
            Column::Text(v) => v.len(),
            Column::Int(v) => v.len(),
            Column::Float(v) => v.len(),
            Column::Attributes(v) => v.len(),
        }
    }

    /// The rows at `rows`, in that order.
    fn select(&self, rows: &[usize]) -> Column {
        fn pick<T: Clone>(v: &[T], rows: &[usize]) -> Vec<T> {
            rows.iter().map(|i| v[*i].clone()).collect()
        }
        match self {
            Column::Text(v) => Column::Text(pick(v, rows)),
            Column::Int(v) => Column::Int(pick(v, rows)),
            Column::Float(v) => Column::Float(pick(v, rows)),
            Column::Attributes(v) => Column::Attributes(pick(v, rows)),
        }
    }

    /// Appends `other`'s rows, if it is a column of the same kind.
    fn append(&mut self, other: Column) {
        match (self, other) {
            (Column::Text(a), Column::Text(b)) => a.extend(b),
            (Column::Int(a), Column::Int(b)) => a.extend(b),
            (Column::Float(a), Column::Float(b)) => a.extend(b),
            (Column::Attributes(a), Column::Attributes(b)) => a.extend(b),
            _ => {}
        }
    }

    /// What the values take, roughly as Arrow would hold them.
    fn bytes(&self) -> u64 {
        let text = |v: &Option<String>| 4 + v.as_ref().map_or(0, String::len) as u64;
        match self {
            Column::Text(v) => v.iter().map(text).sum(),
            Column::Int(v) => 8 * v.len() as u64,
            Column::Float(v) => 8 * v.len() as u64,
            Column::Attributes(v) => {
                v.iter()
                    .flatten()
                    .map(|(k, v)| 8 + (k.len() + v.len()) as u64)
                    .sum::<u64>()
                    + 4 * v.len() as u64
            }
        }
    }

    fn keep(&mut self, keep: &[bool]) {
        fn filter<T>(v: &mut Vec<T>, keep: &[bool]) {
            let mut i = 0;
            v.retain(|_| {
                let k = keep[i];
                i += 1;
                k
            });
        }
        match self {
            Column::Text(v) => filter(v, keep),
            Column::Int(v) => filter(v, keep),
            Column::Float(v) => filter(v, keep),
            Column::Attributes(v) => filter(v, keep),
        }
    }
}

/// Rows of one signal held natively, column by column.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// The rows' signal.
    pub signal: Signal,
    /// The columns, by name, in order.
    pub columns: Vec<(String, Column)>,
}

fn set_column(set: AttributeSet) -> &'static str {
    match set {
        AttributeSet::Record => "attributes",
        AttributeSet::Resource => "resource_attributes",
        AttributeSet::Scope => "scope_attributes",
    }
}

impl Table {
    /// The number of rows.
    pub fn num_rows(&self) -> usize {
        self.columns.first().map_or(0, |(_, c)| c.len())
    }

    /// The column names.
    pub fn column_names(&self) -> Vec<String> {
        self.columns.iter().map(|(n, _)| n.clone()).collect()
    }

    /// The column `name`.
    pub fn column(&self, name: &str) -> Result<&Column, Error> {
        self.columns
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, c)| c)
            .ok_or_else(|| Error::NoSuchColumn(name.to_string()))
    }

    fn column_mut(&mut self, name: &str) -> Result<&mut Column, Error> {
        self.columns
            .iter_mut()
            .find(|(n, _)| n == name)
            .map(|(_, c)| c)
            .ok_or_else(|| Error::NoSuchColumn(name.to_string()))
    }

    fn check_len(&self, len: usize) -> Result<(), Error> {
        if len != self.num_rows() {
            return Err(Error::InvalidArgument(format!(
                "{len} values given for a batch of {} rows; give exactly one per row",
                self.num_rows()
            )));
        }
        Ok(())
    }

    pub(crate) fn read_strings(&self, name: &str) -> Result<Vec<Option<String>>, Error> {
        match self.column(name)? {
            Column::Text(v) => Ok(v.clone()),
            Column::Int(v) => Ok(v.iter().map(|x| x.map(|x| x.to_string())).collect()),
            Column::Float(v) => Ok(v.iter().map(|x| x.map(|x| x.to_string())).collect()),
            Column::Attributes(_) => Err(Error::TypeMismatch(format!(
                "column `{name}` is an attribute map; read it with `attribute`"
            ))),
        }
    }

    pub(crate) fn read_ints(&self, name: &str) -> Result<Vec<Option<i64>>, Error> {
        match self.column(name)? {
            Column::Int(v) => Ok(v.clone()),
            _ => Err(Error::TypeMismatch(format!(
                "column `{name}` is not an integer column"
            ))),
        }
    }

    pub(crate) fn read_floats(&self, name: &str) -> Result<Vec<Option<f64>>, Error> {
        match self.column(name)? {
            Column::Float(v) => Ok(v.clone()),
            Column::Int(v) => Ok(v.iter().map(|x| x.map(|x| x as f64)).collect()),
            _ => Err(Error::TypeMismatch(format!(
                "column `{name}` is not numeric"
            ))),
        }
    }

    pub(crate) fn read_attribute(
        &self,
        set: AttributeSet,
        key: &str,
    ) -> Result<Vec<Option<String>>, Error> {
        match self.column(set_column(set))? {
            Column::Attributes(rows) => Ok(rows
                .iter()
                .map(|e| e.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()))
                .collect()),
            _ => Err(Error::TypeMismatch("not an attribute map".to_string())),
        }
    }

    /// As Weir gives it: each distinct value once.
    pub(crate) fn read_attribute_column(
        &self,
        set: AttributeSet,
        key: &str,
    ) -> Result<AttributeColumn, Error> {
        let mut column = AttributeColumn {
            values: Vec::new(),
            rows: Vec::new(),
        };
        let mut seen: HashMap<String, u32> = HashMap::new();
        for value in self.read_attribute(set, key)? {
            let at = match value {
                Some(v) => *seen.entry(v.clone()).or_insert_with(|| {
                    column.values.push(v);
                    u32::try_from(column.values.len()).unwrap_or(u32::MAX)
                }),
                None => 0,
            };
            column.rows.push(at);
        }
        Ok(column)
    }

    pub(crate) fn write_strings(
        &mut self,
        name: &str,
        values: &[Option<String>],
    ) -> Result<(), Error> {
        self.check_len(values.len())?;
        match self.column_mut(name)? {
            Column::Text(v) => {
                *v = values.to_vec();
                Ok(())
            }
            _ => Err(Error::TypeMismatch(format!(
                "column `{name}` is not a text column"
            ))),
        }
    }

    pub(crate) fn write_ints(&mut self, name: &str, values: &[Option<i64>]) -> Result<(), Error> {
        self.check_len(values.len())?;
        match self.column_mut(name)? {
            Column::Int(v) => {
                *v = values.to_vec();
                Ok(())
            }
            _ => Err(Error::TypeMismatch(format!(
                "column `{name}` is not an integer column"
            ))),
        }
    }

    pub(crate) fn write_floats(&mut self, name: &str, values: &[Option<f64>]) -> Result<(), Error> {
        self.check_len(values.len())?;
        match self.column_mut(name)? {
            Column::Float(v) => {
                *v = values.to_vec();
                Ok(())
            }
            _ => Err(Error::TypeMismatch(format!(
                "column `{name}` is not a floating-point column"
            ))),
        }
    }

    fn attributes_mut(
        &mut self,
        set: AttributeSet,
    ) -> Result<&mut Vec<Vec<(String, String)>>, Error> {
        match self.column_mut(set_column(set))? {
            Column::Attributes(rows) => Ok(rows),
            _ => Err(Error::TypeMismatch("not an attribute map".to_string())),
        }
    }

    pub(crate) fn set_attribute(
        &mut self,
        set: AttributeSet,
        key: &str,
        values: &[Option<String>],
    ) -> Result<(), Error> {
        if key.is_empty() {
            return Err(Error::InvalidArgument(
                "an attribute key cannot be empty".to_string(),
            ));
        }
        self.check_len(values.len())?;
        for (entries, value) in self.attributes_mut(set)?.iter_mut().zip(values) {
            let Some(value) = value else { continue };
            match entries.iter().position(|(k, _)| k == key) {
                Some(i) => {
                    entries[i].1 = value.clone();
                    let mut seen = 0;
                    entries.retain(|(k, _)| {
                        seen += usize::from(k == key);
                        k != key || seen == 1
                    });
                }
                None => entries.push((key.to_string(), value.clone())),
            }
        }
        Ok(())
    }

    pub(crate) fn write_attributes(
        &mut self,
        set: AttributeSet,
        remove: &[String],
        writes: &[AttributeWrite],
    ) -> Result<(), Error> {
        // Checked whole first: a refused call changes nothing, as in Weir.
        self.attributes_mut(set)?;
        if remove
            .iter()
            .chain(writes.iter().map(|w| &w.key))
            .any(String::is_empty)
        {
            return Err(Error::InvalidArgument(
                "an attribute key cannot be empty".to_string(),
            ));
        }
        for (n, write) in writes.iter().enumerate() {
            if writes[..n].iter().any(|w| w.key == write.key) {
                return Err(Error::InvalidArgument(format!(
                    "attribute `{}` is written twice in one call; give it once",
                    write.key
                )));
            }
            self.check_len(write.column.rows.len())?;
            let count = write.column.values.len();
            if let Some(bad) = write.column.rows.iter().find(|&&i| i as usize > count) {
                return Err(Error::InvalidArgument(format!(
                    "attribute `{}`: row index {bad} is past the {count} values given",
                    write.key
                )));
            }
        }
        for key in remove {
            self.remove_attribute(set, key)?;
        }
        for write in writes {
            self.set_attribute(set, &write.key, &write.column.to_options())?;
        }
        Ok(())
    }

    pub(crate) fn remove_attribute(&mut self, set: AttributeSet, key: &str) -> Result<(), Error> {
        for entries in self.attributes_mut(set)? {
            entries.retain(|(k, _)| k != key);
        }
        Ok(())
    }

    pub(crate) fn attribute_keys(&self, set: AttributeSet) -> Result<Vec<String>, Error> {
        match self.column(set_column(set))? {
            Column::Attributes(rows) => {
                let mut keys: Vec<String> = Vec::new();
                for (key, _) in rows.iter().flatten() {
                    if !keys.contains(key) {
                        keys.push(key.clone());
                    }
                }
                Ok(keys)
            }
            _ => Err(Error::TypeMismatch("not an attribute map".to_string())),
        }
    }

    /// The rows at `rows`, in that order, as a table of their own.
    fn select(&self, rows: &[usize]) -> Table {
        Table {
            signal: self.signal,
            columns: self
                .columns
                .iter()
                .map(|(n, c)| (n.clone(), c.select(rows)))
                .collect(),
        }
    }

    /// Appends the rows of `other`, a table of the same signal and columns.
    pub(crate) fn append(&mut self, other: Table) {
        for (name, more) in other.columns {
            if let Ok(column) = self.column_mut(&name) {
                column.append(more);
            }
        }
    }

    /// What the rows take, roughly as Arrow would hold them.
    pub(crate) fn bytes(&self) -> u64 {
        self.columns.iter().map(|(_, c)| c.bytes()).sum()
    }

    pub(crate) fn hold(&mut self, keys: &[Option<String>]) -> Result<Held, Error> {
        self.check_len(keys.len())?;
        HOLD.with(|h| h.borrow_mut().hold(self, keys))
    }

    pub(crate) fn drop_rows(&mut self, mask: &[bool]) -> Result<usize, Error> {
        self.check_len(mask.len())?;
        let keep: Vec<bool> = mask.iter().map(|d| !d).collect();
        for (_, column) in &mut self.columns {
            column.keep(&keep);
        }
        Ok(self.num_rows())
    }
}

/// Some rows of one key, as one `hold` call moved them.
#[derive(Debug, Clone)]
struct Piece {
    rows: Table,
    bytes: u64,
    /// The call that held them.
    call: u64,
}

/// The host's hold, simulated: what the [`harness`](crate::harness)'s
/// session keeps for its plugin across calls. Bytes are an estimate of
/// what Arrow would take (text lengths, 8 bytes per number); each key's
/// rows count for their own bytes.
#[derive(Debug, Clone)]
pub(crate) struct NativeHold {
    keys: HashMap<String, Vec<Piece>>,
    /// The order keys were first held in (for `drain`).
    order: Vec<String>,
    rows: usize,
    bytes: u64,
    pub(crate) max_bytes: u64,
    call: u64,
    released: Vec<Piece>,
}

impl Default for NativeHold {
    fn default() -> Self {
        NativeHold {
            keys: HashMap::new(),
            order: Vec::new(),
            rows: 0,
            bytes: 0,
            max_bytes: 256 * 1024 * 1024,
            call: 0,
            released: Vec::new(),
        }
    }
}

impl NativeHold {
    pub(crate) fn holding(&self) -> Held {
        Held {
            rows: self.rows,
            bytes: self.bytes,
        }
    }

    pub(crate) fn begin_call(&mut self) {
        self.call += 1;
        self.released.clear();
    }

    fn hold(&mut self, table: &mut Table, keys: &[Option<String>]) -> Result<Held, Error> {
        let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
        for (row, key) in keys.iter().enumerate() {
            let Some(key) = key else { continue };
            match groups.iter_mut().find(|(k, _)| k == key) {
                Some((_, rows)) => rows.push(row),
                None => groups.push((key.clone(), vec![row])),
            }
        }
        let pieces: Vec<(String, Piece)> = groups
            .into_iter()
            .map(|(key, rows)| {
                let rows = table.select(&rows);
                let bytes = rows.bytes();
                let call = self.call;
                (key, Piece { rows, bytes, call })
            })
            .collect();
        let moved: usize = pieces.iter().map(|(_, p)| p.rows.num_rows()).sum();
        let bytes: u64 = pieces.iter().map(|(_, p)| p.bytes).sum();
        if self.bytes + bytes > self.max_bytes {
            return Err(Error::LimitExceeded(format!(
                "holding {moved} more rows ({bytes} bytes) would take the plugin past its {} \
                 bytes (max_held_bytes); release or discard held rows first",
                self.max_bytes
            )));
        }
        let mask: Vec<bool> = keys.iter().map(Option::is_some).collect();
        table.drop_rows(&mask)?;
        for (key, piece) in pieces {
            if !self.keys.contains_key(&key) {
                self.order.push(key.clone());
            }
            self.keys.entry(key).or_default().push(piece);
        }
        self.rows += moved;
        self.bytes += bytes;
        Ok(Held {
            rows: moved,
            bytes: self.bytes,
        })
    }

    fn take(&mut self, keys: &[String]) -> (Vec<Piece>, Held) {
        let mut pieces = Vec::new();
        for key in keys {
            if let Some(mut of_key) = self.keys.remove(key) {
                self.order.retain(|k| k != key);
                pieces.append(&mut of_key);
            }
        }
        let held = Held {
            rows: pieces.iter().map(|p| p.rows.num_rows()).sum(),
            bytes: pieces.iter().map(|p| p.bytes).sum(),
        };
        self.rows -= held.rows;
        self.bytes -= held.bytes;
        (pieces, held)
    }

    pub(crate) fn release(&mut self, keys: &[String]) -> Held {
        let (mut pieces, held) = self.take(keys);
        self.released.append(&mut pieces);
        held
    }

    pub(crate) fn discard(&mut self, keys: &[String]) -> Held {
        self.take(keys).1
    }

    /// The rows released by the call that succeeded, one table per signal.
    pub(crate) fn commit(&mut self) -> Vec<Table> {
        tables(std::mem::take(&mut self.released))
    }

    /// After a call that failed, as the host does: the rows it held are
    /// forgotten (its input has them); what it released that was held
    /// before and everything else held is given up, one table per signal.
    pub(crate) fn fail(&mut self) -> Vec<Table> {
        let call = self.call;
        let mut out: Vec<Piece> = std::mem::take(&mut self.released)
            .into_iter()
            .filter(|p| p.call != call)
            .collect();
        for key in std::mem::take(&mut self.order) {
            if let Some(pieces) = self.keys.remove(&key) {
                out.extend(pieces.into_iter().filter(|p| p.call != call));
            }
        }
        self.keys.clear();
        self.rows = 0;
        self.bytes = 0;
        tables(out)
    }
}

/// `pieces` as one table per signal, in order of first appearance.
fn tables(pieces: Vec<Piece>) -> Vec<Table> {
    let mut out: Vec<Table> = Vec::new();
    for piece in pieces {
        match out.iter_mut().find(|t| t.signal == piece.rows.signal) {
            Some(table) => table.append(piece.rows),
            None => out.push(piece.rows),
        }
    }
    out
}

thread_local! {
    static EMITTED: RefCell<Vec<(Signal, String)>> = const { RefCell::new(Vec::new()) };
    static HOLD: RefCell<NativeHold> = RefCell::new(NativeHold::default());
}

/// Runs `f` with the thread's simulated hold.
pub(crate) fn with_hold<T>(f: impl FnOnce(&mut NativeHold) -> T) -> T {
    HOLD.with(|h| f(&mut h.borrow_mut()))
}

/// Puts `hold` in place of the thread's simulated hold; returns the one
/// that was there.
#[cfg_attr(not(feature = "harness"), allow(dead_code))]
pub(crate) fn swap_hold(hold: NativeHold) -> NativeHold {
    HOLD.with(|h| std::mem::replace(&mut *h.borrow_mut(), hold))
}

#[cfg_attr(target_family = "wasm", allow(dead_code))]
pub(crate) fn emit(signal: Signal, otlp_json: &str) -> Result<u32, Error> {
    EMITTED.with(|e| e.borrow_mut().push((signal, otlp_json.to_string())));
    Ok(0)
}

#[cfg_attr(not(feature = "harness"), allow(dead_code))]
pub(crate) fn take_emitted() -> Vec<(Signal, String)> {
    EMITTED.with(|e| std::mem::take(&mut *e.borrow_mut()))
}
