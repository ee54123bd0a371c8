//! One batch as the steps see it: each attribute key and column read from
//! the host at most once, the steps' writes kept here and seen by the
//! steps after them, and every change sent back at the end
//! ([`Frame::flush`]): one `write-attributes` per attribute set, with the
//! keys deleted and each written key's values, each distinct value once.

use std::collections::HashMap;

use weir_plugin::{AttributeColumn, AttributeSet, AttributeWrite, Batch, Error, Signal, Text};

use crate::refs::{Ref, Set};

/// What the plugin needs of a batch: the SDK's [`Batch`] in a host, a
/// table of the tests' own natively.
pub trait Rows {
    /// The rows' signal.
    fn signal(&self) -> Signal;
    /// The number of rows.
    fn num_rows(&self) -> usize;
    /// Every row's value of attribute `key`, each distinct value once.
    fn attribute(&self, set: AttributeSet, key: &str) -> Result<AttributeColumn, Error>;
    /// Every row's value of a column, as text.
    fn text(&self, column: &str) -> Result<Text, Error>;
    /// Removes the keys of `remove` from every row, then sets each write's
    /// key in the rows its column gives a value for
    /// ([`Batch::write_attributes`]).
    fn write_attributes(
        &mut self,
        set: AttributeSet,
        remove: &[String],
        writes: &[AttributeWrite],
    ) -> Result<(), Error>;
}

impl Rows for Batch<'_> {
    fn signal(&self) -> Signal {
        Batch::signal(self)
    }
    fn num_rows(&self) -> usize {
        Batch::num_rows(self)
    }
    fn attribute(&self, set: AttributeSet, key: &str) -> Result<AttributeColumn, Error> {
        Batch::attribute_column(self, set, key)
    }
    fn text(&self, column: &str) -> Result<Text, Error> {
        Batch::text(self, column)
    }
    fn write_attributes(
        &mut self,
        set: AttributeSet,
        remove: &[String],
        writes: &[AttributeWrite],
    ) -> Result<(), Error> {
        Batch::write_attributes(self, set, remove, writes)
    }
}

/// One attribute key of one set, as the steps have left it.
#[derive(Debug)]
pub struct Attr {
    set: Set,
    key: String,
    /// The batch's values, once read (`None` until a step needs them).
    base: Option<AttributeColumn>,
    /// Whether a step deleted the key (from every row).
    removed: bool,
    /// The values steps wrote (row entry 0: not written); `None` until
    /// the first write.
    written: Option<AttributeColumn>,
}

impl Attr {
    /// A number for the value of `row`, the same for rows whose value
    /// comes from the same entry of the read or written values.
    fn code(&self, row: usize) -> Option<usize> {
        let read = self.base.as_ref().map_or(0, |b| b.values.len());
        if let Some(w) = &self.written
            && let Some(&at) = w.rows.get(row)
            && at != 0
        {
            return Some(read + at as usize);
        }
        if self.removed {
            return None;
        }
        match self.base.as_ref()?.rows.get(row) {
            Some(&at) if at != 0 => Some(at as usize),
            _ => None,
        }
    }
}

/// A key column's distinct values: what to look up once each.
#[derive(Debug, Default)]
pub struct Keys {
    /// For each row, the position of its value in `distinct`.
    pub rows: Vec<Option<u32>>,
    /// Each value once, in order of first appearance.
    pub distinct: Vec<String>,
}

/// The values of one reference in a [`Frame`], found once and read row
/// by row.
#[derive(Debug, Clone, Copy)]
pub enum View<'f> {
    /// An attribute key (`None`: nothing read or written).
    Attr(Option<&'f Attr>),
    /// A column (`None`: not read, or the batch has none).
    Column(Option<&'f Text>),
}

impl<'f> View<'f> {
    /// The value in `row`, `None` where the row lacks it.
    pub fn get(self, row: usize) -> Option<&'f str> {
        match self {
            View::Attr(attr) => {
                let attr = attr?;
                if let Some(v) = attr.written.as_ref().and_then(|w| w.get(row)) {
                    return Some(v);
                }
                if attr.removed {
                    return None;
                }
                attr.base.as_ref()?.get(row)
            }
            View::Column(text) => text?.get(row),
        }
    }
}

/// An attribute key a step writes, found once per batch
/// ([`Frame::target`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target(usize);

/// One batch being worked on.
pub struct Frame<'a, R: Rows + ?Sized> {
    rows: &'a mut R,
    len: usize,
    /// Every attribute key read or written, in order of first use.
    attrs: Vec<Attr>,
    /// Columns read; `None` for a column the batch does not have.
    columns: HashMap<&'static str, Option<Text>>,
}

impl<'a, R: Rows + ?Sized> Frame<'a, R> {
    /// A frame over `rows`.
    pub fn new(rows: &'a mut R) -> Self {
        let len = rows.num_rows();
        Frame {
            rows,
            len,
            attrs: Vec::new(),
            columns: HashMap::new(),
        }
    }

    /// The number of rows.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The rows' signal.
    pub fn signal(&self) -> Signal {
        self.rows.signal()
    }

    /// The attribute `key` of `set`, to write with [`Frame::write`].
    pub fn target(&mut self, set: Set, key: &str) -> Target {
        Target(self.attr_index(set, key))
    }

    fn attr_index(&mut self, set: Set, key: &str) -> usize {
        // The attributes a config names are few: a scan beats hashing an
        // owned key.
        if let Some(i) = self.attrs.iter().position(|a| a.set == set && a.key == key) {
            return i;
        }
        self.attrs.push(Attr {
            set,
            key: key.to_string(),
            base: None,
            removed: false,
            written: None,
        });
        self.attrs.len() - 1
    }

    /// Reads what `reference` needs from the batch, unless it has been
    /// read (or a step's writes make it unnecessary). [`Frame::get`]
    /// needs it first.
    pub fn load(&mut self, reference: &Ref) -> Result<(), Error> {
        match reference {
            Ref::Attribute(set, key) => {
                let i = self.attr_index(*set, key);
                let attr = &mut self.attrs[i];
                if attr.base.is_none() && !attr.removed {
                    attr.base = Some(self.rows.attribute(set.wit(), key)?);
                }
            }
            Ref::Column(name) => {
                if !self.columns.contains_key(name) {
                    let text = match self.rows.text(name) {
                        Ok(t) => Some(t),
                        // A column of another signal: missing in every row.
                        Err(Error::NoSuchColumn(_)) => None,
                        Err(e) => return Err(e),
                    };
                    self.columns.insert(name, text);
                }
            }
        }
        Ok(())
    }

    /// The values of `reference` as the steps so far left them; every
    /// row misses it unless it was [`Frame::load`]ed.
    pub fn view(&self, reference: &Ref) -> View<'_> {
        match reference {
            Ref::Attribute(set, key) => {
                View::Attr(self.attrs.iter().find(|a| a.set == *set && a.key == *key))
            }
            Ref::Column(name) => View::Column(self.columns.get(name).and_then(Option::as_ref)),
        }
    }

    /// The value of `reference` in `row` (see [`Frame::view`]).
    pub fn get(&self, reference: &Ref, row: usize) -> Option<&str> {
        self.view(reference).get(row)
    }

    /// The distinct values of `reference`, and which one each row has.
    pub fn keys(&mut self, reference: &Ref) -> Result<Keys, Error> {
        self.load(reference)?;
        let mut keys = Keys {
            rows: Vec::with_capacity(self.len),
            distinct: Vec::new(),
        };
        let view = self.view(reference);
        let mut seen: HashMap<&str, u32> = HashMap::new();
        // An attribute's rows that share an entry of its values share a
        // key: found by the entry's number, without hashing the text.
        let mut by_code: Vec<u32> = Vec::new();
        let mut last: Option<(&str, u32)> = None;
        for row in 0..self.len {
            let Some(value) = view.get(row) else {
                keys.rows.push(None);
                continue;
            };
            let code = match view {
                View::Attr(Some(attr)) => attr.code(row),
                _ => None,
            };
            if let Some(&known) = code.and_then(|c| by_code.get(c))
                && known != 0
            {
                keys.rows.push(Some(known - 1));
                continue;
            }
            // Column values repeat row after row: skip the hash.
            let index = match last {
                Some((v, i)) if v == value => i,
                _ => *seen.entry(value).or_insert_with(|| {
                    keys.distinct.push(value.to_string());
                    u32::try_from(keys.distinct.len() - 1).unwrap_or(u32::MAX)
                }),
            };
            last = Some((value, index));
            if let Some(c) = code {
                if by_code.len() <= c {
                    by_code.resize(c + 1, 0);
                }
                by_code[c] = index + 1;
            }
            keys.rows.push(Some(index));
        }
        Ok(keys)
    }

    /// Writes `column` to attribute `target`: each row whose entry is not
    /// 0 gets its value, over what an earlier step wrote there.
    pub fn write(&mut self, target: Target, column: AttributeColumn) {
        let len = self.len;
        let attr = &mut self.attrs[target.0];
        let written = attr.written.get_or_insert_with(|| AttributeColumn {
            values: Vec::new(),
            rows: vec![0; len],
        });
        let offset = u32::try_from(written.values.len()).unwrap_or(u32::MAX);
        written.values.extend(column.values);
        for (row, &at) in column.rows.iter().enumerate().take(len) {
            if at != 0 {
                written.rows[row] = offset.saturating_add(at);
            }
        }
    }

    /// Deletes attribute `key` of `set` from every row (values written
    /// afterwards are kept).
    pub fn delete(&mut self, set: Set, key: &str) {
        let i = self.attr_index(set, key);
        let attr = &mut self.attrs[i];
        attr.removed = true;
        attr.base = None;
        attr.written = None;
    }

    /// Sends every change to the batch: one `write-attributes` per
    /// attribute set, with the keys deleted and, for each key written,
    /// the values some row has.
    pub fn flush(self) -> Result<(), Error> {
        let mut sets: Vec<(Set, Vec<String>, Vec<AttributeWrite>)> = Vec::new();
        for attr in self.attrs {
            let written = attr.written.and_then(used);
            if !attr.removed && written.is_none() {
                continue;
            }
            let at = match sets.iter().position(|(s, _, _)| *s == attr.set) {
                Some(at) => at,
                None => {
                    sets.push((attr.set, Vec::new(), Vec::new()));
                    sets.len() - 1
                }
            };
            if attr.removed {
                sets[at].1.push(attr.key.clone());
            }
            if let Some(column) = written {
                sets[at].2.push(AttributeWrite {
                    key: attr.key,
                    column,
                });
            }
        }
        for (set, remove, writes) in sets {
            self.rows.write_attributes(set.wit(), &remove, &writes)?;
        }
        Ok(())
    }
}

/// `column` with only the values some row has (a later step may have
/// written over an earlier one's), `None` if no row has one.
fn used(mut column: AttributeColumn) -> Option<AttributeColumn> {
    let mut new_at = vec![0u32; column.values.len() + 1];
    for &at in &column.rows {
        new_at[at as usize] = 1;
    }
    new_at[0] = 0;
    let mut kept = 0u32;
    let mut values = Vec::new();
    for (i, value) in std::mem::take(&mut column.values).into_iter().enumerate() {
        if new_at[i + 1] != 0 {
            kept += 1;
            new_at[i + 1] = kept;
            values.push(value);
        }
    }
    if kept == 0 {
        return None;
    }
    for at in &mut column.rows {
        *at = new_at[*at as usize];
    }
    column.values = values;
    Some(column)
}
