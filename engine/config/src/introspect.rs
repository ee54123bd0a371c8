//! Asking a `Deserialize` type which names it knows.
//!
//! Serde derives record a struct's field names and an enum's variant names
//! as `&'static [&'static str]` and hand them to the deserializer. A
//! deserializer that only records them and then stops gives the lists
//! "valid fields" and "valid types" are built from, so those lists can never
//! drift from the structs.

use std::cell::Cell;

use serde::de::value::{Error, StrDeserializer};
use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, Visitor};

type Names = &'static [&'static str];

/// The field names of struct `T`, in declaration order.
pub(crate) fn struct_fields<T: DeserializeOwned>() -> Names {
    names::<T>(None).unwrap_or(&[])
}

/// The variant names of enum `T`, in declaration order.
pub(crate) fn enum_variants<T: DeserializeOwned>() -> Names {
    names::<T>(None).unwrap_or(&[])
}

/// The field names of the struct inside newtype variant `variant` of enum
/// `T`; `None` when that is not a plain struct (a `#[serde(flatten)]`
/// struct, for one, hides its fields and so cannot be used for configs).
pub(crate) fn variant_fields<T: DeserializeOwned>(variant: &str) -> Option<Names> {
    names::<T>(Some(variant))
}

fn names<T: DeserializeOwned>(variant: Option<&str>) -> Option<Names> {
    let found = Cell::new(None);
    let _ = T::deserialize(Recorder {
        found: &found,
        variant,
    });
    found.get()
}

struct Recorder<'a> {
    found: &'a Cell<Option<Names>>,
    /// When set, descend into this enum variant instead of recording the
    /// variant list.
    variant: Option<&'a str>,
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

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.variant {
            Some(variant) => visitor.visit_enum(VariantRecorder {
                found: self.found,
                variant,
            }),
            None => {
                self.found.set(Some(variants));
                Err(stop())
            }
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map identifier ignored_any
    }
}

struct VariantRecorder<'a> {
    found: &'a Cell<Option<Names>>,
    variant: &'a str,
}

impl<'de, 'a> de::EnumAccess<'de> for VariantRecorder<'a> {
    type Error = Error;
    type Variant = Self;

    fn variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<(S::Value, Self), Error> {
        let name: StrDeserializer<'a, Error> = self.variant.into_deserializer();
        let value = seed.deserialize(name)?;
        Ok((value, self))
    }
}

impl<'de> de::VariantAccess<'de> for VariantRecorder<'_> {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        Err(stop())
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value, Error> {
        seed.deserialize(Recorder {
            found: self.found,
            variant: None,
        })
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, _visitor: V) -> Result<V::Value, Error> {
        Err(stop())
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Error> {
        self.found.set(Some(fields));
        Err(stop())
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
    #[serde(rename_all = "snake_case")]
    #[allow(dead_code)]
    enum Kinds {
        First(Inner),
        SecondOne(Inner),
    }

    /// Guarantees: the names serde would accept are read back exactly,
    /// including renamed variants and the fields inside a variant.
    #[test]
    fn reads_names_from_derives() {
        assert_eq!(struct_fields::<Inner>(), ["alpha", "beta"]);
        assert_eq!(enum_variants::<Kinds>(), ["first", "second_one"]);
        assert_eq!(
            variant_fields::<Kinds>("second_one"),
            Some(&["alpha", "beta"][..])
        );
        assert_eq!(variant_fields::<Kinds>("third"), None);
    }
}
