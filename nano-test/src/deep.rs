//! Deep inputs: call trees are as deep as the call chains they record, so everything that walks
//! one recursively grows the thread's stack on demand (as `nano-record` does for the tree's own
//! walks).

use std::fmt;

use serde::Deserializer;
use serde::de::{IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// Runs one level of a recursive walk, on a fresh heap-allocated stack segment when the current
/// stack is nearly used up, so a walk over a tree of any depth cannot overflow the stack.
pub(crate) fn deep<R>(f: impl FnOnce() -> R) -> R {
    // 64 KiB is far more than one level of any walk takes; a new segment serves many levels.
    stacker::maybe_grow(64 * 1024, 1024 * 1024, f)
}

/// What a JSON value is, read without building it (for messages about a value of the wrong
/// kind, e.g. an unsupported version).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Scalar {
    /// A non-negative integer.
    Unsigned(u64),
    /// Anything else, as it reads in a message.
    Other(String),
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scalar::Unsigned(n) => write!(f, "{n}"),
            Scalar::Other(text) => f.write_str(text),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Scalar, D::Error> {
        deserializer.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Scalar, E> {
        Ok(Scalar::Other(v.to_string()))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Scalar, E> {
        Ok(Scalar::Other(v.to_string()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Scalar, E> {
        Ok(Scalar::Unsigned(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Scalar, E> {
        Ok(Scalar::Other(Value::from(v).to_string()))
    }

    fn visit_str<E>(self, v: &str) -> Result<Scalar, E> {
        Ok(Scalar::Other(Value::from(v).to_string()))
    }

    fn visit_unit<E>(self) -> Result<Scalar, E> {
        Ok(Scalar::Other("null".into()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar::Other("[…]".into()))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Other("{…}".into()))
    }
}
