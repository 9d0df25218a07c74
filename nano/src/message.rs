//! Typed request/response pairs and their type-erased envelopes.

use std::any::{Any, TypeId};
use std::fmt::{self, Debug};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{NanoError, codes};

/// A value that can travel between services: cloneable, printable and JSON-encodable.
///
/// Implemented for every type with the required traits; there is nothing to implement by hand.
pub trait Message: Serialize + DeserializeOwned + Clone + Debug + Send + Sync + 'static {}

impl<T: Serialize + DeserializeOwned + Clone + Debug + Send + Sync + 'static> Message for T {}

/// A request type: names its response type and a stable wire name.
///
/// The wire name identifies the request in recordings and on transports that need one; keep it
/// stable when the Rust type is renamed. The convention is `"<service>.<Type>"`.
///
/// ```
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, Clone, Default, Serialize, Deserialize)]
/// #[serde(default)]
/// pub struct Req { pub param: String }
///
/// #[derive(Debug, Clone, Default, Serialize, Deserialize)]
/// #[serde(default)]
/// pub struct Resp { pub value: String }
///
/// impl nano::Request for Req {
///     type Response = Resp;
///     const NAME: &'static str = "svc1.Req";
/// }
/// ```
pub trait Request: Message {
    /// What the service answers to this request.
    type Response: Message;
    /// The stable wire name of the request type.
    const NAME: &'static str;
}

/// What is known about one request type without having a value of it: its wire name and how to
/// decode it and its response from JSON. Transports and recordings use it to turn bytes back into
/// typed values.
pub struct RequestType {
    name: &'static str,
    type_id: TypeId,
    rust_name: fn() -> &'static str,
    response_rust_name: fn() -> &'static str,
    decode_request: fn(&[u8]) -> Result<AnyRequest, NanoError>,
    decode_response: fn(&[u8]) -> Result<AnyResponse, NanoError>,
}

impl RequestType {
    /// The descriptor of `R`. A `const fn`, so API declarations can be statics.
    pub const fn of<R: Request>() -> &'static RequestType {
        const {
            &RequestType {
                name: R::NAME,
                type_id: TypeId::of::<R>(),
                rust_name: std::any::type_name::<R>,
                response_rust_name: std::any::type_name::<R::Response>,
                decode_request: |bytes| {
                    decode_json::<R>(bytes, R::NAME)
                        .map(AnyRequest::new)
                        .map_err(NanoError::bad_request)
                },
                decode_response: |bytes| {
                    decode_json::<R::Response>(bytes, &format!("the response to {}", R::NAME))
                        .map(AnyResponse::new)
                        .map_err(|message| NanoError::new(codes::BAD_RESPONSE, message))
                },
            }
        }
    }

    /// The wire name ([`Request::NAME`]).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The Rust type name of the request.
    pub fn rust_name(&self) -> &'static str {
        (self.rust_name)()
    }

    /// The Rust type name of the response.
    pub fn response_rust_name(&self) -> &'static str {
        (self.response_rust_name)()
    }

    /// Whether this describes `R`.
    pub fn is<R: Request>(&self) -> bool {
        self.type_id == TypeId::of::<R>()
    }

    /// Decodes a JSON request body the way proto3 JSON decodes: missing and `null` fields are
    /// defaults, keys match ignoring ASCII case, a message is an object (see `nano_json`).
    ///
    /// # Errors
    ///
    /// `C-BAD-REQUEST` when the bytes are not JSON of this request type.
    pub fn decode_request(&self, json: &[u8]) -> Result<AnyRequest, NanoError> {
        (self.decode_request)(json)
    }

    /// Decodes a JSON response body of this request type's response.
    ///
    /// # Errors
    ///
    /// `S-BAD-RESPONSE` when the bytes are not JSON of the response type.
    pub fn decode_response(&self, json: &[u8]) -> Result<AnyResponse, NanoError> {
        (self.decode_response)(json)
    }
}

impl fmt::Debug for RequestType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestType")
            .field("name", &self.name)
            .field("request", &self.rust_name())
            .field("response", &self.response_rust_name())
            .finish()
    }
}

impl PartialEq for RequestType {
    fn eq(&self, other: &Self) -> bool {
        self.type_id == other.type_id
    }
}

impl Eq for RequestType {}

/// Decodes `bytes` as a `T` the way proto3 JSON decodes (see `nano-json`); the error message
/// names `what` by its wire name, because it may cross a wire to a caller in another language.
fn decode_json<T: Message>(bytes: &[u8], what: &str) -> Result<T, String> {
    nano_json::from_slice(bytes).map_err(|err| format!("invalid JSON for {what}: {err}"))
}

/// Bytes that serde_json just wrote, as a JSON value.
fn json_value(json: &[u8]) -> Result<serde_json::Value, NanoError> {
    serde_json::from_slice(json).map_err(|err| NanoError::new(codes::ENCODE, err.to_string()))
}

/// The object-safe view of a [`Message`] that the envelopes hold.
trait ErasedMessage: Any + Send + Sync + fmt::Debug {
    fn type_name(&self) -> &'static str;
    fn clone_box(&self) -> Box<dyn ErasedMessage>;
    fn to_json(&self) -> Result<Vec<u8>, NanoError>;
}

impl<T: Message> ErasedMessage for T {
    fn type_name(&self) -> &'static str {
        std::any::type_name::<T>()
    }
    fn clone_box(&self) -> Box<dyn ErasedMessage> {
        Box::new(self.clone())
    }
    fn to_json(&self) -> Result<Vec<u8>, NanoError> {
        serde_json::to_vec(self).map_err(|err| {
            let message = format!("cannot encode {}: {err}", std::any::type_name::<T>());
            NanoError::new(codes::ENCODE, message)
        })
    }
}

/// A message of any type behind one pointer: what both envelopes hold.
type Erased = Box<dyn ErasedMessage>;

impl Clone for Erased {
    fn clone(&self) -> Self {
        (**self).clone_box()
    }
}

/// The value of `erased`, which the caller checked is a `T`.
fn unbox<T: 'static>(erased: Erased) -> T {
    let value = (erased as Box<dyn Any>).downcast::<T>();
    *value.unwrap_or_else(|_| unreachable!("type checked before the downcast"))
}

/// A request of any type, as services and transports see it.
///
/// ```
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
/// # pub struct Req { pub param: String }
/// # impl nano::Request for Req { type Response = String; const NAME: &'static str = "svc1.Req"; }
/// use nano::AnyRequest;
///
/// let req = AnyRequest::new(Req { param: "x".into() });
/// assert_eq!(req.name(), "svc1.Req");
/// assert_eq!(req.to_json()?, br#"{"param":"x"}"#);
/// assert_eq!(req.downcast::<Req>().unwrap().param, "x");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct AnyRequest {
    ty: &'static RequestType,
    value: Erased,
}

impl AnyRequest {
    /// Erases a typed request.
    pub fn new<R: Request>(request: R) -> Self {
        let (ty, value) = (RequestType::of::<R>(), Box::new(request));
        AnyRequest { ty, value }
    }

    /// The wire name of the request type.
    pub fn name(&self) -> &'static str {
        self.ty.name
    }

    /// The descriptor of the request type.
    pub fn request_type(&self) -> &'static RequestType {
        self.ty
    }

    /// The Rust type name of the request.
    pub fn type_name(&self) -> &'static str {
        self.value.type_name()
    }

    /// Whether the request is an `R`.
    pub fn is<R: Request>(&self) -> bool {
        self.ty.is::<R>()
    }

    /// A reference to the typed request, if it is an `R`.
    pub fn downcast_ref<R: Request>(&self) -> Option<&R> {
        (&*self.value as &dyn Any).downcast_ref()
    }

    /// The typed request, or the envelope back when it is not an `R`.
    ///
    /// # Errors
    ///
    /// Returns `self` unchanged when the request is of another type.
    pub fn downcast<R: Request>(self) -> Result<R, Self> {
        if !self.is::<R>() {
            return Err(self);
        }
        Ok(unbox(self.value))
    }

    /// The request as JSON bytes, as transports send it.
    ///
    /// # Errors
    ///
    /// `S-ENCODE` when serde cannot encode the value.
    pub fn to_json(&self) -> Result<Vec<u8>, NanoError> {
        self.value.to_json()
    }

    /// The request as a JSON value.
    ///
    /// # Errors
    ///
    /// `S-ENCODE` when serde cannot encode the value.
    pub fn to_json_value(&self) -> Result<serde_json::Value, NanoError> {
        json_value(&self.to_json()?)
    }

    /// Encodes and decodes the request the way a transport would, returning what the far side
    /// would see.
    ///
    /// # Errors
    ///
    /// `S-ENCODE` or `C-BAD-REQUEST` when the value does not survive the round trip.
    pub fn json_round_trip(&self) -> Result<AnyRequest, NanoError> {
        self.ty.decode_request(&self.to_json()?)
    }

    /// Decodes a JSON response to this request into its declared response type.
    ///
    /// # Errors
    ///
    /// `S-BAD-RESPONSE` when the bytes are not JSON of the response type.
    pub fn decode_response(&self, json: &[u8]) -> Result<AnyResponse, NanoError> {
        self.ty.decode_response(json)
    }
}

impl fmt::Debug for AnyRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.value, f)
    }
}

/// A response of any type, as services and transports see it.
#[derive(Clone)]
pub struct AnyResponse(Erased);

impl AnyResponse {
    /// Erases a typed response.
    pub fn new<T: Message>(response: T) -> Self {
        AnyResponse(Box::new(response))
    }

    /// The Rust type name of the response.
    pub fn type_name(&self) -> &'static str {
        self.0.type_name()
    }

    /// Whether the response is a `T`.
    pub fn is<T: Message>(&self) -> bool {
        self.downcast_ref::<T>().is_some()
    }

    /// A reference to the typed response, if it is a `T`.
    pub fn downcast_ref<T: Message>(&self) -> Option<&T> {
        (&*self.0 as &dyn Any).downcast_ref()
    }

    /// The typed response, or the envelope back when it is not a `T`.
    ///
    /// # Errors
    ///
    /// Returns `self` unchanged when the response is of another type.
    pub fn downcast<T: Message>(self) -> Result<T, Self> {
        if !self.is::<T>() {
            return Err(self);
        }
        Ok(unbox(self.0))
    }

    /// The response as JSON bytes, as transports send it.
    ///
    /// # Errors
    ///
    /// `S-ENCODE` when serde cannot encode the value.
    pub fn to_json(&self) -> Result<Vec<u8>, NanoError> {
        self.0.to_json()
    }

    /// The response as a JSON value.
    ///
    /// # Errors
    ///
    /// `S-ENCODE` when serde cannot encode the value.
    pub fn to_json_value(&self) -> Result<serde_json::Value, NanoError> {
        json_value(&self.to_json()?)
    }
}

impl fmt::Debug for AnyResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    struct Ping {
        n: u32,
    }
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    struct Pong {
        n: u32,
    }
    impl Request for Ping {
        type Response = Pong;
        const NAME: &'static str = "test.Ping";
    }

    #[test]
    fn request_types_are_static_and_decode_missing_fields_as_defaults() {
        let ty = RequestType::of::<Ping>();
        assert!(std::ptr::eq(ty, RequestType::of::<Ping>()));
        assert_eq!(ty.name(), "test.Ping");
        let req = ty.decode_request(b"{}").unwrap();
        assert_eq!(req.downcast_ref::<Ping>(), Some(&Ping { n: 0 }));
    }

    #[test]
    fn decode_errors_are_coded() {
        let ty = RequestType::of::<Ping>();
        let err = ty.decode_request(b"{\"n\":").unwrap_err();
        assert_eq!(err.code(), codes::BAD_REQUEST);
        let err = ty.decode_response(b"[]").unwrap_err();
        assert_eq!(err.code(), codes::BAD_RESPONSE);
        assert_eq!(
            err.message(),
            "invalid JSON for the response to test.Ping: invalid type: sequence, expected a JSON object at line 1 column 2"
        );
        let err = ty.decode_request(br#"{"n":"x"}"#).unwrap_err();
        assert!(
            err.message()
                .starts_with("invalid JSON for test.Ping: invalid type"),
            "{err}"
        );
    }

    #[test]
    fn downcast_to_the_wrong_type_returns_the_envelope() {
        let resp = AnyResponse::new(Pong { n: 3 });
        let resp = resp.downcast::<String>().unwrap_err();
        assert_eq!(resp.downcast::<Pong>().unwrap(), Pong { n: 3 });
    }

    #[test]
    fn round_trip_and_response_decoding_use_the_declared_types() {
        let req = AnyRequest::new(Ping { n: 7 });
        let again = req.json_round_trip().unwrap();
        assert_eq!(again.downcast::<Ping>().unwrap(), Ping { n: 7 });
        let resp = req.decode_response(br#"{"n":8}"#).unwrap();
        assert_eq!(resp.downcast::<Pong>().unwrap(), Pong { n: 8 });
        assert_eq!(format!("{req:?}"), "Ping { n: 7 }");
    }
}
