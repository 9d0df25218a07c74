//! Deep inputs: call trees are as deep as the call chains they record, so everything that walks
//! one recursively grows the thread's stack on demand, and JSON bodies inside a tree are bounded
//! in depth while they are parsed.

use std::fmt;

use serde::Deserializer;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// How deeply a request or response body in a call tree may nest (arrays and objects), as on the
/// HTTP transport: a body nested deeper never crossed a wire.
pub(crate) const MAX_BODY_DEPTH: usize = 128;

/// Runs one level of a recursive walk, on a fresh heap-allocated stack segment when the current
/// stack is nearly used up, so a walk over a tree of any depth cannot overflow the stack.
pub(crate) fn deep<R>(f: impl FnOnce() -> R) -> R {
    // 64 KiB is far more than one level of any walk takes; a new segment serves many levels.
    stacker::maybe_grow(64 * 1024, 1024 * 1024, f)
}

/// Deserializes a JSON body, refusing one nested deeper than [`MAX_BODY_DEPTH`] before it is
/// built: a deeper value would be dropped, cloned and compared recursively.
pub(crate) fn bounded_value<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
    Bounded(MAX_BODY_DEPTH).deserialize(deserializer)
}

/// A value seed allowing this many more levels of nesting.
struct Bounded(usize);

impl Bounded {
    fn nested<E: de::Error>(&self) -> Result<Bounded, E> {
        match self.0.checked_sub(1) {
            Some(left) => Ok(Bounded(left)),
            None => Err(E::custom(format!(
                "the body is nested deeper than {MAX_BODY_DEPTH} levels"
            ))),
        }
    }
}

impl<'de> DeserializeSeed<'de> for Bounded {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Bounded {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let inner = self.nested()?;
        let mut values = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(value) = seq.next_element_seed(Bounded(inner.0))? {
            values.push(value);
        }
        Ok(Value::Array(values))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let inner = self.nested()?;
        let mut values = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(Bounded(inner.0))?;
            values.insert(key, value);
        }
        Ok(Value::Object(values))
    }
}
