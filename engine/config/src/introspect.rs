//! Asking a `Deserialize` struct which field names it knows.
//!
//! Serde derives record a struct's field names as
//! `&'static [&'static str]` and hand them to the deserializer. A
//! deserializer that only records them and then stops gives the lists
//! "valid fields" are built from, so those lists can never drift from the
//! structs.

use std::cell::Cell;

use serde::de::value::Error;
use serde::de::{self, DeserializeOwned, Visitor};

type Names = &'static [&'static str];

/// The field names of struct `T`, in declaration order.
pub(crate) fn struct_fields<T: DeserializeOwned>() -> Names {
    struct_fields_checked::<T>().unwrap_or(&[])
}

/// The field names of struct `T`; `None` when `T` is not a plain struct
/// (a `#[serde(flatten)]` struct, for one, hides its fields and so cannot
/// be used for configs).
pub(crate) fn struct_fields_checked<T: DeserializeOwned>() -> Option<Names> {
    let found = Cell::new(None);
    let _ = T::deserialize(Recorder { found: &found });
    found.get()
}

struct Recorder<'a> {
    found: &'a Cell<Option<Names>>,
}

fn stop() -> Error {
    de::Error::custom("introspection only")
}

impl<'de> de::Deserializer<'de> for Recorder<'_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Error> {
        Err(stop())
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Error> {
        self.found.set(Some(fields));
        Err(stop())
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map identifier ignored_any enum
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        alpha: u32,
        #[serde(default)]
        beta: bool,
    }

    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Flattened {
        #[serde(flatten)]
        inner: Inner,
    }

    /// Guarantees: the names serde would accept are read back exactly, and
    /// a struct that hides its fields is told apart.
    #[test]
    fn reads_names_from_derives() {
        assert_eq!(struct_fields::<Inner>(), ["alpha", "beta"]);
        assert_eq!(struct_fields_checked::<Flattened>(), None);
    }
}
