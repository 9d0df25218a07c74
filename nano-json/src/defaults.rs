//! Deserializers that produce defaults: [`Defaults`] for a missing or `null` field, [`NoFields`]
//! for an empty document.

use std::marker::PhantomData;

use serde::de::value::{MapDeserializer, SeqDeserializer, StrDeserializer};
use serde::de::{self, Deserializer, IntoDeserializer, Visitor};

use crate::adapter::StructMap;

/// Produces the proto3 default of whatever type asks: zero, `false`, `""`, empty lists and maps,
/// `None`, a struct of defaults, an enum's first variant.
pub(crate) struct Defaults<E>(pub(crate) PhantomData<E>);

impl<E> Defaults<E> {
    pub(crate) fn new() -> Self {
        Defaults(PhantomData)
    }
}

fn empty_map<'de, E: de::Error>() -> MapDeserializer<'de, std::iter::Empty<((), ())>, E> {
    MapDeserializer::new(std::iter::empty())
}

macro_rules! visit {
    ($($method:ident => |$v:ident| $body:expr;)*) => {
        $(fn $method<V: Visitor<'de>>(self, $v: V) -> Result<V::Value, E> { $body })*
    };
}

impl<'de, E: de::Error> Deserializer<'de> for Defaults<E> {
    type Error = E;

    visit! {
        deserialize_any => |v| v.visit_unit();
        deserialize_ignored_any => |v| v.visit_unit();
        deserialize_bool => |v| v.visit_bool(false);
        deserialize_i8 => |v| v.visit_i64(0);
        deserialize_i16 => |v| v.visit_i64(0);
        deserialize_i32 => |v| v.visit_i64(0);
        deserialize_i64 => |v| v.visit_i64(0);
        deserialize_u8 => |v| v.visit_u64(0);
        deserialize_u16 => |v| v.visit_u64(0);
        deserialize_u32 => |v| v.visit_u64(0);
        deserialize_u64 => |v| v.visit_u64(0);
        deserialize_f32 => |v| v.visit_f64(0.0);
        deserialize_f64 => |v| v.visit_f64(0.0);
        deserialize_char => |v| v.visit_char('\0');
        deserialize_str => |v| v.visit_str("");
        deserialize_string => |v| v.visit_str("");
        deserialize_bytes => |v| v.visit_bytes(&[]);
        deserialize_byte_buf => |v| v.visit_bytes(&[]);
        deserialize_option => |v| v.visit_none();
        deserialize_unit => |v| v.visit_unit();
        deserialize_seq => |v| v.visit_seq(SeqDeserializer::<_, E>::new(std::iter::empty::<()>()));
        deserialize_map => |v| v.visit_map(empty_map::<E>());
        deserialize_identifier => |v| v.visit_str("");
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        v: V,
    ) -> Result<V::Value, E> {
        v.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        v: V,
    ) -> Result<V::Value, E> {
        v.visit_newtype_struct(self)
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _: usize, v: V) -> Result<V::Value, E> {
        self.deserialize_seq(v)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: usize,
        v: V,
    ) -> Result<V::Value, E> {
        self.deserialize_seq(v)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, E> {
        v.visit_map(StructMap::new(empty_map::<E>(), fields))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, E> {
        let first = variants
            .first()
            .ok_or_else(|| E::custom(format_args!("enum {name} has no variants")))?;
        let variant: StrDeserializer<'_, E> = first.into_deserializer();
        v.visit_enum(variant)
    }
}

/// What an empty document is: the one value of a type without fields, an error for any other.
pub(crate) struct NoFields;

fn has_fields<E: de::Error>(what: &dyn std::fmt::Display) -> E {
    E::custom(format_args!(
        "an empty document carries no fields, but {what} has fields"
    ))
}

impl<'de> Deserializer<'de> for NoFields {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(has_fields(&"the expected value"))
    }

    fn deserialize_unit<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Self::Error> {
        v.visit_unit()
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        v: V,
    ) -> Result<V::Value, Self::Error> {
        v.visit_unit()
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Self::Error> {
        if !fields.is_empty() {
            return Err(has_fields(&format_args!("struct {name}")));
        }
        v.visit_map(empty_map::<Self::Error>())
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option newtype_struct seq tuple tuple_struct map enum identifier ignored_any
    }
}
