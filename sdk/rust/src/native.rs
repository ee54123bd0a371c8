//! An in-memory stand-in for the host's batch, so that a plugin's logic
//! runs natively in tests. It follows the host's rules: one value per row,
//! columns typed as text, integers, doubles or attribute maps.

use std::cell::RefCell;

use crate::{AttributeSet, Error, Signal};

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

    pub(crate) fn remove_attribute(&mut self, set: AttributeSet, key: &str) -> Result<(), Error> {
        for entries in self.attributes_mut(set)? {
            entries.retain(|(k, _)| k != key);
        }
        Ok(())
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

thread_local! {
    static EMITTED: RefCell<Vec<(Signal, String)>> = const { RefCell::new(Vec::new()) };
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
