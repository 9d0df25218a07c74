//! The deserializer adapter: [`Proto`] wraps a deserializer and everything it hands out, so that
//! every struct at any depth is decoded by [`StructMap`] under the proto3 rules.

use std::fmt;

use serde::de::value::StrDeserializer;
use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, IntoDeserializer, MapAccess, SeqAccess,
    Unexpected, VariantAccess, Visitor,
};

use crate::defaults::Defaults;

/// A deserializer whose structs follow the proto3 rules.
pub(crate) struct Proto<D>(pub(crate) D);

/// The value of a struct field: like [`Proto`], and `null` is the type's default.
struct Field<D>(D);

/// A visitor whose nested deserializers and accesses are wrapped in [`Proto`].
struct Wrap<V>(V);

/// A seed whose deserializer is wrapped in [`Proto`].
struct ProtoSeed<S>(S);

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for ProtoSeed<S> {
    type Value = S::Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S::Value, D::Error> {
        self.0.deserialize(Proto(d))
    }
}

macro_rules! forward {
    ($($method:ident)*) => {
        $(fn $method<V: Visitor<'de>>(self, v: V) -> Result<V::Value, D::Error> {
            self.0.$method(Wrap(v))
        })*
    };
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Proto<D> {
    type Error = D::Error;

    forward! {
        deserialize_any deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32
        deserialize_i64 deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32
        deserialize_u64 deserialize_u128 deserialize_f32 deserialize_f64 deserialize_char
        deserialize_str deserialize_string deserialize_bytes deserialize_byte_buf
        deserialize_option deserialize_unit deserialize_seq deserialize_map
        deserialize_identifier deserialize_ignored_any
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        v: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_unit_struct(name, Wrap(v))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        v: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_newtype_struct(name, Wrap(v))
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, v: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_tuple(len, Wrap(v))
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        v: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_tuple_struct(name, len, Wrap(v))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, D::Error> {
        self.0
            .deserialize_struct(name, fields, StructVisitor { visitor: v, fields })
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_enum(name, variants, Wrap(v))
    }

    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

/// What a [`Field`] was asked for, to ask again once it knows the value is not `null`.
#[derive(Clone, Copy)]
enum Ask {
    Bool,
    I64,
    U64,
    F64,
    Str,
    String,
    Seq,
    Map,
    Struct(&'static str, &'static [&'static str]),
    Enum(&'static str, &'static [&'static str]),
    NewtypeStruct(&'static str),
    Tuple(usize),
    TupleStruct(&'static str, usize),
}

/// Asks a field's deserializer for `Option` first; `None` (the JSON `null`) becomes the default
/// of what was asked for, `Some` asks again.
struct NullOr<V> {
    visitor: V,
    ask: Ask,
    /// The precise integer or float width, forwarded as it was asked.
    width: Width,
}

#[derive(Clone, Copy)]
enum Width {
    Any,
    I8,
    I16,
    I32,
    U8,
    U16,
    U32,
    F32,
}

impl<'de, V: Visitor<'de>> Visitor<'de> for NullOr<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.visitor.expecting(f)
    }

    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        let d = Defaults::<E>::new();
        let v = self.visitor;
        match self.ask {
            Ask::Bool => d.deserialize_bool(v),
            Ask::I64 => d.deserialize_i64(v),
            Ask::U64 => d.deserialize_u64(v),
            Ask::F64 => d.deserialize_f64(v),
            Ask::Str | Ask::String => d.deserialize_str(v),
            Ask::Seq | Ask::Tuple(_) | Ask::TupleStruct(..) => d.deserialize_seq(v),
            Ask::Map => d.deserialize_map(v),
            Ask::Struct(name, fields) => d.deserialize_struct(name, fields, v),
            Ask::Enum(name, variants) => d.deserialize_enum(name, variants, v),
            Ask::NewtypeStruct(name) => d.deserialize_newtype_struct(name, v),
        }
    }

    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.visit_none()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        let d = Proto(d);
        let v = self.visitor;
        match (self.ask, self.width) {
            (Ask::Bool, _) => d.deserialize_bool(v),
            (Ask::I64, Width::I8) => d.deserialize_i8(v),
            (Ask::I64, Width::I16) => d.deserialize_i16(v),
            (Ask::I64, Width::I32) => d.deserialize_i32(v),
            (Ask::I64, _) => d.deserialize_i64(v),
            (Ask::U64, Width::U8) => d.deserialize_u8(v),
            (Ask::U64, Width::U16) => d.deserialize_u16(v),
            (Ask::U64, Width::U32) => d.deserialize_u32(v),
            (Ask::U64, _) => d.deserialize_u64(v),
            (Ask::F64, Width::F32) => d.deserialize_f32(v),
            (Ask::F64, _) => d.deserialize_f64(v),
            (Ask::Str, _) => d.deserialize_str(v),
            (Ask::String, _) => d.deserialize_string(v),
            (Ask::Seq, _) => d.deserialize_seq(v),
            (Ask::Tuple(len), _) => d.deserialize_tuple(len, v),
            (Ask::TupleStruct(name, len), _) => d.deserialize_tuple_struct(name, len, v),
            (Ask::Map, _) => d.deserialize_map(v),
            (Ask::Struct(name, fields), _) => d.deserialize_struct(name, fields, v),
            (Ask::Enum(name, variants), _) => d.deserialize_enum(name, variants, v),
            (Ask::NewtypeStruct(name), _) => d.deserialize_newtype_struct(name, v),
        }
    }
}

macro_rules! null_or {
    ($($method:ident => $ask:expr, $width:expr;)*) => {
        $(fn $method<V: Visitor<'de>>(self, v: V) -> Result<V::Value, D::Error> {
            self.0.deserialize_option(NullOr { visitor: v, ask: $ask, width: $width })
        })*
    };
}

macro_rules! plain {
    ($($method:ident)*) => {
        $(fn $method<V: Visitor<'de>>(self, v: V) -> Result<V::Value, D::Error> {
            Proto(self.0).$method(v)
        })*
    };
}

impl<'de, D: Deserializer<'de>> Field<D> {
    /// Asks for `ask`, taking `null` (or a missing value) as the type's default.
    fn null_or<V: Visitor<'de>>(self, v: V, ask: Ask) -> Result<V::Value, D::Error> {
        self.0.deserialize_option(NullOr {
            visitor: v,
            ask,
            width: Width::Any,
        })
    }
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Field<D> {
    type Error = D::Error;

    null_or! {
        deserialize_bool => Ask::Bool, Width::Any;
        deserialize_i8 => Ask::I64, Width::I8;
        deserialize_i16 => Ask::I64, Width::I16;
        deserialize_i32 => Ask::I64, Width::I32;
        deserialize_i64 => Ask::I64, Width::Any;
        deserialize_u8 => Ask::U64, Width::U8;
        deserialize_u16 => Ask::U64, Width::U16;
        deserialize_u32 => Ask::U64, Width::U32;
        deserialize_u64 => Ask::U64, Width::Any;
        deserialize_f32 => Ask::F64, Width::F32;
        deserialize_f64 => Ask::F64, Width::Any;
        deserialize_str => Ask::Str, Width::Any;
        deserialize_string => Ask::String, Width::Any;
        deserialize_seq => Ask::Seq, Width::Any;
        deserialize_map => Ask::Map, Width::Any;
    }

    // `null` stays `null` for these: `Option` is `None`, `Value` is `Null`, and the rest has no
    // proto3 counterpart.
    plain! {
        deserialize_any deserialize_i128 deserialize_u128 deserialize_char deserialize_bytes
        deserialize_byte_buf deserialize_option deserialize_unit deserialize_identifier
        deserialize_ignored_any
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        v: V,
    ) -> Result<V::Value, D::Error> {
        Proto(self.0).deserialize_unit_struct(name, v)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        v: V,
    ) -> Result<V::Value, D::Error> {
        self.null_or(v, Ask::NewtypeStruct(name))
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, v: V) -> Result<V::Value, D::Error> {
        self.null_or(v, Ask::Tuple(len))
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        v: V,
    ) -> Result<V::Value, D::Error> {
        self.null_or(v, Ask::TupleStruct(name, len))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, D::Error> {
        self.null_or(v, Ask::Struct(name, fields))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, D::Error> {
        self.null_or(v, Ask::Enum(name, variants))
    }

    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

macro_rules! pass {
    ($($method:ident($ty:ty))*) => {
        $(fn $method<E: de::Error>(self, value: $ty) -> Result<V::Value, E> {
            self.0.$method(value)
        })*
    };
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Wrap<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.expecting(f)
    }

    pass! {
        visit_bool(bool) visit_i8(i8) visit_i16(i16) visit_i32(i32) visit_i64(i64)
        visit_i128(i128) visit_u8(u8) visit_u16(u16) visit_u32(u32) visit_u64(u64)
        visit_u128(u128) visit_f32(f32) visit_f64(f64) visit_char(char) visit_str(&str)
        visit_borrowed_str(&'de str) visit_string(String) visit_bytes(&[u8])
        visit_borrowed_bytes(&'de [u8]) visit_byte_buf(Vec<u8>)
    }

    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.0.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.0.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        self.0.visit_some(Proto(d))
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        self.0.visit_newtype_struct(Proto(d))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        self.0.visit_seq(Wrap(seq))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.0.visit_map(Wrap(map))
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
        self.0.visit_enum(Wrap(data))
    }
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Wrap<A> {
    type Error = A::Error;

    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, A::Error> {
        self.0.next_element_seed(ProtoSeed(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Wrap<A> {
    type Error = A::Error;

    fn next_key_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, A::Error> {
        self.0.next_key_seed(ProtoSeed(seed))
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, A::Error> {
        self.0.next_value_seed(ProtoSeed(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

impl<'de, A: EnumAccess<'de>> EnumAccess<'de> for Wrap<A> {
    type Error = A::Error;
    type Variant = Wrap<A::Variant>;

    fn variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, Self::Variant), A::Error> {
        let (value, variant) = self.0.variant_seed(ProtoSeed(seed))?;
        Ok((value, Wrap(variant)))
    }
}

impl<'de, A: VariantAccess<'de>> VariantAccess<'de> for Wrap<A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        self.0.unit_variant()
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value, A::Error> {
        self.0.newtype_variant_seed(ProtoSeed(seed))
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, v: V) -> Result<V::Value, A::Error> {
        self.0.tuple_variant(len, Wrap(v))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, A::Error> {
        self.0
            .struct_variant(fields, StructVisitor { visitor: v, fields })
    }
}

/// Visits a struct: only as a JSON object, through a [`StructMap`].
struct StructVisitor<V> {
    visitor: V,
    fields: &'static [&'static str],
}

impl<'de, V: Visitor<'de>> Visitor<'de> for StructVisitor<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.visitor.expecting(f)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.visitor.visit_map(StructMap::new(map, self.fields))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<V::Value, A::Error> {
        Err(de::Error::invalid_type(Unexpected::Seq, &"a JSON object"))
    }
}

/// The entries of a struct's JSON object: keys matched to the declared fields ignoring ASCII
/// case, values through [`Field`] (so `null` is the default), and, once the object ends, every
/// field it did not mention, with its default.
pub(crate) struct StructMap<A> {
    map: A,
    fields: &'static [&'static str],
    /// Which fields the object mentioned, by index; beyond 64 fields, the rest in `more`.
    seen: u64,
    more: Vec<usize>,
    /// Once the object is over: the next field to check for being missing.
    missing: Option<usize>,
}

impl<A> StructMap<A> {
    pub(crate) fn new(map: A, fields: &'static [&'static str]) -> Self {
        StructMap {
            map,
            fields,
            seen: 0,
            more: Vec::new(),
            missing: None,
        }
    }

    fn mark(&mut self, index: usize) {
        if index < 64 {
            self.seen |= 1 << index;
        } else {
            self.more.push(index);
        }
    }

    fn was_seen(&self, index: usize) -> bool {
        if index < 64 {
            self.seen & (1 << index) != 0
        } else {
            self.more.contains(&index)
        }
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for StructMap<A> {
    type Error = A::Error;

    fn next_key_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, A::Error> {
        let mut slot = Some(seed);
        if self.missing.is_none() {
            let key = KeySeed {
                slot: &mut slot,
                fields: self.fields,
            };
            if let Some((value, index)) = self.map.next_key_seed(key)? {
                if let Some(index) = index {
                    self.mark(index);
                }
                return Ok(Some(value));
            }
            self.missing = Some(0);
        }
        // The object is over: hand out the fields it did not mention, one by one.
        let mut next = self.missing.unwrap_or(0);
        while next < self.fields.len() && self.was_seen(next) {
            next += 1;
        }
        self.missing = Some(next + 1);
        let (Some(field), Some(seed)) = (self.fields.get(next), slot) else {
            return Ok(None);
        };
        let key: StrDeserializer<'_, A::Error> = field.into_deserializer();
        seed.deserialize(key).map(Some)
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, A::Error> {
        match self.missing {
            None => self.map.next_value_seed(FieldSeed(seed)),
            Some(_) => seed.deserialize(Defaults::new()),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        self.map.size_hint()
    }
}

/// A seed for a field's value: its deserializer is a [`Field`].
struct FieldSeed<S>(S);

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for FieldSeed<S> {
    type Value = S::Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S::Value, D::Error> {
        self.0.deserialize(Field(d))
    }
}

/// A seed for a struct's key: reads it as a string, matches it to a declared field (exactly,
/// else ignoring ASCII case) and hands the field's own name to the struct's seed, with the
/// field's index. The seed stays in its slot when the object has no more keys.
struct KeySeed<'s, S> {
    slot: &'s mut Option<S>,
    fields: &'static [&'static str],
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for KeySeed<'_, S> {
    type Value = (S::Value, Option<usize>);
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(KeyVisitor {
            seed: self.slot.take(),
            fields: self.fields,
        })
    }
}

struct KeyVisitor<S> {
    seed: Option<S>,
    fields: &'static [&'static str],
}

impl<'de, S: DeserializeSeed<'de>> Visitor<'de> for KeyVisitor<S> {
    type Value = (S::Value, Option<usize>);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Self::Value, E> {
        let index = self
            .fields
            .iter()
            .position(|field| *field == key)
            .or_else(|| {
                self.fields
                    .iter()
                    .position(|field| field.eq_ignore_ascii_case(key))
            });
        let seed = self.seed.ok_or_else(|| E::custom("a key was read twice"))?;
        let value = match index {
            Some(index) => {
                let name: StrDeserializer<'_, E> = self.fields[index].into_deserializer();
                seed.deserialize(name)?
            }
            None => {
                let name: StrDeserializer<'_, E> = key.into_deserializer();
                seed.deserialize(name)?
            }
        };
        Ok((value, index))
    }
}
