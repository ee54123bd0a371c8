//! One batch as the steps see it: each attribute key and column read from
//! the host at most once, the steps' writes kept here and seen by the
//! steps after them, and each written key sent back once at the end
//! ([`Frame::flush`]): one `remove-attribute` if the key was deleted, one
//! `set-attribute` with every row written.

use std::collections::HashMap;

use weir_plugin::{AttributeSet, Batch, Error, Signal, Text};

use crate::refs::{Ref, Set};

/// What the plugin needs of a batch: the SDK's [`Batch`] in a host, a
/// table of the tests' own natively.
pub trait Rows {
    /// The rows' signal.
    fn signal(&self) -> Signal;
    /// The number of rows.
    fn num_rows(&self) -> usize;
    /// Every row's value of attribute `key`.
    fn attribute(&self, set: AttributeSet, key: &str) -> Result<Vec<Option<String>>, Error>;
    /// Every row's value of a column, as text.
    fn text(&self, column: &str) -> Result<Text, Error>;
    /// Sets attribute `key` in the rows where `values` has a value.
    fn set_attribute(
        &mut self,
        set: AttributeSet,
        key: &str,
        values: &[Option<String>],
    ) -> Result<(), Error>;
    /// Removes attribute `key` from every row.
    fn remove_attribute(&mut self, set: AttributeSet, key: &str) -> Result<(), Error>;
}

impl Rows for Batch<'_> {
    fn signal(&self) -> Signal {
        Batch::signal(self)
    }
    fn num_rows(&self) -> usize {
        Batch::num_rows(self)
    }
    fn attribute(&self, set: AttributeSet, key: &str) -> Result<Vec<Option<String>>, Error> {
        Batch::attribute(self, set, key)
    }
    fn text(&self, column: &str) -> Result<Text, Error> {
        Batch::text(self, column)
    }
    fn set_attribute(
        &mut self,
        set: AttributeSet,
        key: &str,
        values: &[Option<String>],
    ) -> Result<(), Error> {
        Batch::set_attribute(self, set, key, values)
    }
    fn remove_attribute(&mut self, set: AttributeSet, key: &str) -> Result<(), Error> {
        Batch::remove_attribute(self, set, key)
    }
}

/// One attribute key of one set, as the steps have left it.
#[derive(Debug)]
pub struct Attr {
    set: Set,
    key: String,
    /// The batch's values, once read (`None` until a step needs them).
    base: Option<Vec<Option<String>>>,
    /// Whether a step deleted the key (from every row).
    removed: bool,
    /// The values steps wrote, per row; empty until the first write.
    written: Vec<Option<String>>,
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
                if let Some(Some(v)) = attr.written.get(row) {
                    return Some(v);
                }
                if attr.removed {
                    return None;
                }
                attr.base.as_ref()?.get(row)?.as_deref()
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
            written: Vec::new(),
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
        let mut last: Option<(&str, u32)> = None;
        for row in 0..self.len {
            let Some(value) = view.get(row) else {
                keys.rows.push(None);
                continue;
            };
            // Resource attributes repeat row after row: skip the hash.
            let index = match last {
                Some((v, i)) if v == value => i,
                _ => *seen.entry(value).or_insert_with(|| {
                    keys.distinct.push(value.to_string());
                    u32::try_from(keys.distinct.len() - 1).unwrap_or(u32::MAX)
                }),
            };
            last = Some((value, index));
            keys.rows.push(Some(index));
        }
        Ok(keys)
    }

    /// Sets attribute `target` to `value` in `row`.
    pub fn write(&mut self, target: Target, row: usize, value: String) {
        let len = self.len;
        let attr = &mut self.attrs[target.0];
        if attr.written.is_empty() {
            attr.written = vec![None; len];
        }
        attr.written[row] = Some(value);
    }

    /// Deletes attribute `key` of `set` from every row (values written
    /// afterwards are kept).
    pub fn delete(&mut self, set: Set, key: &str) {
        let i = self.attr_index(set, key);
        let attr = &mut self.attrs[i];
        attr.removed = true;
        attr.base = None;
        attr.written.clear();
    }

    /// Sends every change to the batch: per key, one removal if it was
    /// deleted, then one write of every row written.
    pub fn flush(self) -> Result<(), Error> {
        for attr in self.attrs {
            if attr.removed {
                self.rows.remove_attribute(attr.set.wit(), &attr.key)?;
            }
            if attr.written.iter().any(Option::is_some) {
                self.rows
                    .set_attribute(attr.set.wit(), &attr.key, &attr.written)?;
            }
        }
        Ok(())
    }
}
