//! Proto3-style JSON decoding for any serde type, the way the Go original's messages decode.
//!
//! [`from_slice`] decodes like `serde_json::from_slice`, through a deserializer adapter that
//! applies the proto3 JSON mapping to every struct, at any depth, without attributes on the
//! types:
//!
//! | input | result |
//! |---|---|
//! | a field is missing | the field's type default (`""`, `0`, `false`, empty list, a message of defaults) |
//! | a field is `null` | the same default |
//! | a key differs from the field's name only in ASCII case | matched to that field |
//! | an array where a struct is expected | an error: a message is a JSON object |
//! | a key twice (also in two spellings) | an error, as serde reports it |
//! | the empty document | the value of a type without fields (`struct Get {}`, `()`); an error for any other type |
//! | a value of the wrong type or out of range | an error naming the kind of value and what was expected, never the value (it may be a secret) |
//!
//! Everything else — unknown keys ignored, `Option` fields, maps, `serde_json::Value`, enums,
//! `#[serde(rename)]` — behaves as with serde_json. A struct's own `#[serde(default = …)]`
//! values are not used: a missing field is its type's default, as in proto3.
//!
//! ```
//! #[derive(Debug, PartialEq, serde::Deserialize)]
//! struct Req { param: String, n: u32 }
//!
//! let req: Req = nano_json::from_slice(br#"{"PARAM":"x","n":null}"#)?;
//! assert_eq!(req, Req { param: "x".into(), n: 0 });
//! assert_eq!(nano_json::from_slice::<Req>(b"{}")?, Req { param: String::new(), n: 0 });
//! assert!(nano_json::from_slice::<Req>(br#"["x", 1]"#).is_err());
//! assert!(nano_json::from_slice::<Req>(b"").is_err());
//! # Ok::<(), serde_json::Error>(())
//! ```

mod adapter;
mod defaults;
mod quiet;

use serde::de::DeserializeOwned;

/// Decodes JSON `bytes` as a `T` under the proto3 rules of the crate documentation.
///
/// # Errors
///
/// serde_json's error for input that is not JSON of `T` (including invalid UTF-8 and unpaired
/// surrogate escapes), or an error naming the problem: an array for a struct, an empty document
/// for a type with fields. The error never quotes a value of the input, which may be a secret:
/// where serde's message would (`invalid type: integer `5`, expected a string`), it names the
/// kind of value only (`invalid type: integer, expected a string`), with the position.
///
/// ```
/// #[derive(Debug, serde::Deserialize)]
/// struct Login { password: String }
///
/// let err = nano_json::from_slice::<Login>(br#"{"password":98765432123}"#).unwrap_err();
/// assert_eq!(err.to_string(), "invalid type: integer, expected a string at line 1 column 23");
/// ```
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, serde_json::Error> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return T::deserialize(defaults::NoFields);
    }
    let mut json = serde_json::Deserializer::from_slice(bytes);
    let value = T::deserialize(adapter::Proto(&mut json)).map_err(quiet::without_values)?;
    json.end()?;
    Ok(value)
}

/// Whether `T` is a type without fields, whose only value an empty request carries: a struct
/// with no fields, a unit struct or `()`.
pub fn has_no_fields<T: DeserializeOwned>() -> bool {
    T::deserialize(defaults::NoFields).is_ok()
}
