//! [`NanoError`]: the one error type that crosses service boundaries.

use std::borrow::Cow;
use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Error codes used by nano itself and by its transports.
///
/// Codes starting with [`CLIENT_PREFIX`](codes::CLIENT_PREFIX) (`C-`) mean the caller sent something wrong; every other
/// code (and an empty code) means the server failed.
pub mod codes {
    /// Prefix of every client-side ("the caller's fault") code.
    pub const CLIENT_PREFIX: &str = "C-";
    /// The request could not be decoded or is invalid.
    pub const BAD_REQUEST: &str = "C-BAD-REQUEST";
    /// The addressed service, endpoint or resource does not exist.
    pub const NOT_FOUND: &str = "C-NOT-FOUND";
    /// The request body has a missing or unsupported content type or charset.
    pub const BAD_CONTENT_TYPE: &str = "C-BAD-CONTENT-TYPE";
    /// The service does not handle the request type it was sent.
    pub const BAD_REQUEST_TYPE: &str = "C-BAD-REQUEST-TYPE";
    /// The endpoint exists but not with this method.
    pub const METHOD_NOT_ALLOWED: &str = "C-METHOD-NOT-ALLOWED";
    /// The request body is larger than the server accepts.
    pub const PAYLOAD_TOO_LARGE: &str = "C-PAYLOAD-TOO-LARGE";
    /// A generic server-side failure (the Go original's `S-ERROR`).
    pub const SERVER_ERROR: &str = "S-ERROR";
    /// The callee could not be reached (connection refused, partition, dropped request).
    pub const UNAVAILABLE: &str = "S-UNAVAILABLE";
    /// The call did not finish before its deadline.
    pub const TIMEOUT: &str = "S-TIMEOUT";
    /// The call was cancelled because its caller gave up.
    pub const CANCELLED: &str = "S-CANCELLED";
    /// A response did not decode, or had a type other than the request declares.
    pub const BAD_RESPONSE: &str = "S-BAD-RESPONSE";
    /// A message could not be encoded.
    pub const ENCODE: &str = "S-ENCODE";
    /// A service depends on a service that is not in its set.
    pub const MISSING_DEPENDENCY: &str = "S-MISSING-DEPENDENCY";
    /// Two services in one set have the same name.
    pub const DUPLICATE_SERVICE: &str = "S-DUPLICATE-SERVICE";
    /// A client was asked for a service that is not in the set.
    pub const UNKNOWN_SERVICE: &str = "S-UNKNOWN-SERVICE";
    /// A service's init or init-finished phase failed.
    pub const INIT_FAILED: &str = "S-INIT-FAILED";
}

/// The separator the Go original uses when it flattens an error chain into one message.
pub const CHAIN_SEPARATOR: &str = " :: ";

type Source = Arc<dyn StdError + Send + Sync + 'static>;

/// What [`NanoError::wrap`] and [`NanoError::with_source`] accept: any boxable error.
type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// An error with a code, a message and an optional source.
///
/// Only the code and the message cross a wire: [`NanoError::flatten`] turns the source chain into
/// one message joined by `" :: "`, outermost first, which is what a remote caller sees. `Display`
/// prints that same flattened chain.
///
/// Wrapping keeps the code of a wrapped `NanoError`, so a `C-…` code from deep in a call tree still
/// reaches the edge:
///
/// ```
/// use nano::{NanoError, codes};
///
/// let deep = NanoError::new(codes::NOT_FOUND, "no such user");
/// let wrapped = NanoError::wrap(deep, "svc1 failure");
/// assert_eq!(wrapped.code(), codes::NOT_FOUND);
/// assert_eq!(wrapped.to_string(), "svc1 failure :: no such user");
/// assert!(wrapped.is_client_error());
/// ```
#[derive(Clone)]
pub struct NanoError {
    inner: Box<Inner>,
}

#[derive(Clone)]
struct Inner {
    code: Cow<'static, str>,
    message: Cow<'static, str>,
    source: Option<Source>,
}

impl NanoError {
    /// An error with a code and a message.
    pub fn new(code: impl Into<Cow<'static, str>>, message: impl Into<Cow<'static, str>>) -> Self {
        NanoError {
            inner: Box::new(Inner {
                code: code.into(),
                message: message.into(),
                source: None,
            }),
        }
    }

    /// An error without a code. Transports answer it as a server error (HTTP 500).
    pub fn msg(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new("", message)
    }

    /// Wraps `source` with a message. The code is taken from `source` when it is a `NanoError`.
    pub fn wrap(source: impl Into<BoxError>, message: impl Into<Cow<'static, str>>) -> Self {
        let source: BoxError = source.into();
        let nano = source.downcast_ref::<NanoError>();
        let code = nano.map(|e| e.inner.code.clone()).unwrap_or_default();
        NanoError::new(code, message).with_source(source)
    }

    /// Replaces the code.
    #[must_use]
    pub fn with_code(mut self, code: impl Into<Cow<'static, str>>) -> Self {
        self.inner.code = code.into();
        self
    }

    /// Sets the source (the error this one was caused by).
    #[must_use]
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.inner.source = Some(Arc::from(source.into()));
        self
    }

    /// `C-BAD-REQUEST`: the request is malformed or invalid.
    pub fn bad_request(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(codes::BAD_REQUEST, message)
    }

    /// `C-NOT-FOUND`.
    pub fn not_found(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(codes::NOT_FOUND, message)
    }

    /// `C-BAD-REQUEST-TYPE`: what a service answers to a request type it does not handle.
    pub fn bad_request_type(request_name: &str) -> Self {
        let message = format!("bad request type: {request_name}");
        Self::new(codes::BAD_REQUEST_TYPE, message)
    }

    /// `S-UNAVAILABLE`: the callee could not be reached.
    pub fn unavailable(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(codes::UNAVAILABLE, message)
    }

    /// `S-TIMEOUT`: the deadline passed before the call finished.
    pub fn timeout(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(codes::TIMEOUT, message)
    }

    /// `S-ERROR`: a generic server-side failure.
    pub fn internal(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(codes::SERVER_ERROR, message)
    }

    /// The code; empty when the error is uncoded.
    pub fn code(&self) -> &str {
        &self.inner.code
    }

    /// This error's own message, without its sources.
    pub fn message(&self) -> &str {
        &self.inner.message
    }

    /// Whether the code starts with `C-`: the caller sent something wrong.
    pub fn is_client_error(&self) -> bool {
        self.code().starts_with(codes::CLIENT_PREFIX)
    }

    /// Whether this is the server's fault: every code that does not start with `C-`, and no code.
    pub fn is_server_error(&self) -> bool {
        !self.is_client_error()
    }

    /// Whether the code equals `code`.
    pub fn has_code(&self, code: &str) -> bool {
        self.code() == code
    }

    /// The first error in the source chain (this error excluded) of type `E`.
    ///
    /// After an error crossed a wire (or the transport-fidelity hook) the chain is gone and this
    /// returns `None`, which is exactly why business logic should branch on codes instead.
    pub fn find_source<E: StdError + 'static>(&self) -> Option<&E> {
        let mut chain = std::iter::successors(StdError::source(self), |&err| err.source());
        chain.find_map(|err| err.downcast_ref::<E>())
    }

    /// What crosses a wire: the same code, the whole chain as one message, no source.
    #[must_use]
    pub fn flatten(&self) -> NanoError {
        NanoError::new(self.inner.code.clone(), self.to_string())
    }
}

impl fmt::Display for NanoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.inner.message)?;
        for err in std::iter::successors(StdError::source(self), |&err| err.source()) {
            write!(f, "{CHAIN_SEPARATOR}{err}")?;
            if err.is::<NanoError>() {
                // A nested NanoError printed its own chain.
                break;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for NanoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("NanoError");
        d.field("code", &self.code())
            .field("message", &self.message());
        if let Some(source) = &self.inner.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl StdError for NanoError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(self.inner.source.as_deref()?)
    }
}

/// The JSON form of an error on every wire: `{"code":"…","msg":"…"}`, code omitted when empty.
///
/// ```
/// use nano::{ErrorBody, NanoError};
///
/// let body = ErrorBody::from(&NanoError::bad_request("missing field"));
/// assert_eq!(
///     serde_json::to_string(&body)?,
///     r#"{"code":"C-BAD-REQUEST","msg":"missing field"}"#
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error code, empty for an uncoded error.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub code: String,
    /// The flattened message chain.
    #[serde(default)]
    pub msg: String,
}

impl From<&NanoError> for ErrorBody {
    fn from(err: &NanoError) -> Self {
        let (code, msg) = (err.code().to_owned(), err.to_string());
        ErrorBody { code, msg }
    }
}

impl From<ErrorBody> for NanoError {
    fn from(body: ErrorBody) -> Self {
        NanoError::new(body.code, body.msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Boom;
    impl fmt::Display for Boom {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("boom")
        }
    }
    impl StdError for Boom {}

    #[test]
    fn chain_is_flattened_outermost_first() {
        let inner = NanoError::msg("svc4 failure").with_source(Boom);
        let err = NanoError::wrap(NanoError::wrap(inner, "svc3 failure"), "svc2 failure");
        assert_eq!(
            err.to_string(),
            "svc2 failure :: svc3 failure :: svc4 failure :: boom"
        );
        let flat = err.flatten();
        assert_eq!(flat.to_string(), err.to_string());
        assert!(StdError::source(&flat).is_none());
        assert!(err.find_source::<Boom>().is_some());
        assert!(flat.find_source::<Boom>().is_none());
    }

    #[test]
    fn wrapping_keeps_the_innermost_code_and_foreign_sources_are_uncoded() {
        let err = NanoError::wrap(NanoError::not_found("x"), "outer");
        assert_eq!(err.code(), codes::NOT_FOUND);
        assert_eq!(err.message(), "outer");
        let io = std::io::Error::other("disk");
        let err = NanoError::wrap(io, "read failed");
        assert_eq!(err.code(), "");
        assert!(err.is_server_error());
        assert_eq!(err.to_string(), "read failed :: disk");
    }

    #[test]
    fn error_body_omits_an_empty_code_and_round_trips() {
        let body = ErrorBody::from(&NanoError::msg("plain"));
        assert_eq!(serde_json::to_string(&body).unwrap(), r#"{"msg":"plain"}"#);
        let back: NanoError = serde_json::from_str::<ErrorBody>(r#"{"code":"C-X","msg":"m"}"#)
            .unwrap()
            .into();
        assert_eq!((back.code(), back.message()), ("C-X", "m"));
    }
}
