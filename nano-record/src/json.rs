//! [`Json`]: a recorded body, held as its compact text.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// A JSON value held as its compact, canonical text: the request body or response of a recorded
/// call.
///
/// A call tree holds one per call and answer, and a scenario file holds thousands: as text, a
/// body takes about what its JSON takes, where a [`serde_json::Value`] takes several hundred
/// bytes per object. The text is canonical (compact, object keys sorted, as
/// [`serde_json::Value`] prints it), so two bodies of the same value have the same text.
///
/// It is read as a [`Value`] with [`to_value`](Json::to_value), and built from one with
/// [`From`]; in a file it is written as the JSON value itself, so scenario files are unchanged.
///
/// ```
/// use nano_record::Json;
/// use serde_json::json;
///
/// let body = Json::from(json!({"param": "x", "n": 1}));
/// assert_eq!(body.as_str(), r#"{"n":1,"param":"x"}"#);
/// assert_eq!(body.to_value()["param"], "x");
/// assert_eq!(body, Json::parse(r#"{ "param": "x", "n": 1 }"#).unwrap());
/// ```
#[derive(Clone)]
pub struct Json(Box<str>);

impl Json {
    /// The body of `value`.
    pub fn new(value: &Value) -> Json {
        // A `Value` always prints: its keys are strings and its numbers finite.
        Json(value.to_string().into_boxed_str())
    }

    /// Parses JSON text (any formatting) into its canonical form.
    ///
    /// # Errors
    ///
    /// When `text` is not one JSON value.
    pub fn parse(text: &str) -> Result<Json, serde_json::Error> {
        serde_json::from_str::<Value>(text).map(|value| Json::new(&value))
    }

    /// The compact, canonical text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The value, parsed from the text.
    pub fn to_value(&self) -> Value {
        let mut parser = serde_json::Deserializer::from_str(&self.0);
        // The text was printed from a value, however deeply that value nested.
        parser.disable_recursion_limit();
        Value::deserialize(&mut parser)
            .unwrap_or_else(|err| unreachable!("a body's text is the JSON it was made from: {err}"))
    }

    /// Whether the body is JSON `null`.
    pub fn is_null(&self) -> bool {
        &*self.0 == "null"
    }
}

impl Default for Json {
    /// The empty object, `{}`.
    fn default() -> Json {
        Json("{}".into())
    }
}

impl From<Value> for Json {
    fn from(value: Value) -> Json {
        Json::new(&value)
    }
}

impl From<&Value> for Json {
    fn from(value: &Value) -> Json {
        Json::new(value)
    }
}

impl PartialEq for Json {
    fn eq(&self, other: &Json) -> bool {
        // Equal text is equal value. Different text can still be the same value where the
        // printing is not canonical (serde_json's `preserve_order` keeps keys in their order).
        self.0 == other.0 || self.to_value() == other.to_value()
    }
}

impl PartialEq<Value> for Json {
    fn eq(&self, other: &Value) -> bool {
        self.to_value() == *other
    }
}

impl fmt::Display for Json {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Json {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Json {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // As the value, so that a pretty-printed file stays pretty inside bodies too.
        self.to_value().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Json {
    /// Any JSON value nested at most as deeply as the HTTP transport accepts (128 levels).
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Json, D::Error> {
        crate::deep::bounded_value(deserializer).map(Json::from)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_text_is_canonical_whatever_the_input_formatting() {
        let spaced = Json::parse("{ \"b\" : [1, 2],\n  \"a\": \"x\" }").unwrap();
        assert_eq!(spaced.as_str(), r#"{"a":"x","b":[1,2]}"#);
        assert_eq!(spaced, Json::from(json!({"a": "x", "b": [1, 2]})));
        assert_ne!(spaced, Json::from(json!({"a": "y", "b": [1, 2]})));
    }

    #[test]
    fn it_reads_and_writes_as_the_value_itself() {
        let body: Json = serde_json::from_str(r#"{"param": "x"}"#).unwrap();
        assert_eq!(body.to_value(), json!({"param": "x"}));
        assert_eq!(serde_json::to_value(&body).unwrap(), json!({"param": "x"}));
        assert_eq!(
            serde_json::to_string_pretty(&body).unwrap(),
            "{\n  \"param\": \"x\"\n}"
        );
    }

    #[test]
    fn a_body_nested_deeper_than_the_wire_takes_is_refused() {
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        // As the scenario loader reads: without serde_json's own limit, which is the same 128.
        let mut parser = serde_json::Deserializer::from_str(&deep);
        parser.disable_recursion_limit();
        let err = Json::deserialize(&mut parser).unwrap_err();
        assert!(err.to_string().contains("nested deeper than 128"), "{err}");
    }

    #[test]
    fn a_deep_value_made_in_process_reads_back() {
        let mut value = json!(1);
        for _ in 0..300 {
            value = json!([value]);
        }
        assert_eq!(Json::new(&value).to_value(), value);
    }

    #[test]
    fn text_that_is_not_json_is_an_error() {
        assert!(Json::parse("{").is_err());
        assert!(Json::parse("1 2").is_err());
        assert!(Json::default().as_str() == "{}" && !Json::default().is_null());
        assert!(Json::from(Value::Null).is_null());
    }
}
