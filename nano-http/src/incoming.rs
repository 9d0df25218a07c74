//! What the listener takes from an incoming request before calling a service: the protocol's
//! headers, validated, and the body decoded into the endpoint's request type. Pure functions, so
//! the decoding path can be tested and fuzzed without sockets.

use std::time::Duration;

use http::HeaderMap;
use http::header::CONTENT_TYPE;
use nano::{AnyRequest, NanoError, RequestId};

use crate::endpoint::Endpoint;
use crate::wire::{CLIENT_NAME_HEADER, DEADLINE_HEADER, REQ_ID_HEADER, check_json_content_type};

/// The protocol headers of a request, validated.
#[derive(Debug)]
pub(crate) struct CallHeaders<'h> {
    /// From `X-Nano-Req-Id`, generated when absent or empty.
    pub(crate) request_id: RequestId,
    /// From `X-Nano-Client-Name`; `None` when absent or empty.
    pub(crate) caller: Option<&'h str>,
    /// From `X-Nano-Deadline-Ms`.
    pub(crate) budget: Option<Duration>,
}

impl<'h> CallHeaders<'h> {
    /// Reads and checks the protocol's headers.
    ///
    /// # Errors
    ///
    /// `C-BAD-REQUEST` naming the header when a request id or caller name is not an id (see
    /// [`is_valid_id`](crate::is_valid_id)) or a deadline is not whole milliseconds.
    pub(crate) fn parse(headers: &'h HeaderMap) -> Result<Self, NanoError> {
        let request_id = match id_header(headers, REQ_ID_HEADER)? {
            Some(id) => RequestId::from(id),
            None => RequestId::generate(),
        };
        let caller = id_header(headers, CLIENT_NAME_HEADER)?;
        let budget = deadline_budget(headers)?;
        Ok(CallHeaders {
            request_id,
            caller,
            budget,
        })
    }
}

/// Decodes a request body read whole: the content type (endpoints with a body) is HTTP's part,
/// everything else is [`nano_wire::decode_body`], which the transport-fidelity hook uses too.
///
/// # Errors
///
/// `C-BAD-CONTENT-TYPE` or `C-BAD-REQUEST` naming what is wrong.
pub(crate) fn decode_body(
    endpoint: &Endpoint,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<AnyRequest, NanoError> {
    if endpoint.has_body() {
        check_content_type(headers)?;
    }
    nano_wire::decode_body(endpoint, body)
}

/// The content-type check of an endpoint with a body, done before its body is read.
pub(crate) fn check_content_type(headers: &HeaderMap) -> Result<(), NanoError> {
    check_json_content_type(headers.get(CONTENT_TYPE))
}

/// An incoming request as a listener decodes it for `endpoint`: what [`decode_request`] returns.
#[derive(Debug)]
pub struct DecodedRequest {
    /// The request id (`X-Nano-Req-Id`, or a fresh one).
    pub request_id: RequestId,
    /// The caller's name (`X-Nano-Client-Name`), when it sent one.
    pub caller: Option<String>,
    /// The caller's remaining time (`X-Nano-Deadline-Ms`).
    pub budget: Option<Duration>,
    /// The decoded request.
    pub request: AnyRequest,
}

/// Decodes a request for `endpoint` from its headers and whole body exactly as
/// [`HttpListener`](crate::HttpListener) does once it has routed and read it, without a socket:
/// the protocol headers are validated first, then the content type, the JSON depth and the body.
/// Reading the body (its size limit and time limit) is the listener's part.
///
/// Request ids and caller names must satisfy [`is_valid_id`](crate::is_valid_id); an empty one counts as absent.
///
/// ```
/// use nano_http::{Endpoint, decode_request};
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Debug, Clone, Default, Serialize, Deserialize)] pub struct Req { pub param: String }
/// # #[derive(Debug, Clone, Default, Serialize, Deserialize)] pub struct Resp { pub value: String }
/// # impl nano::Request for Req { type Response = Resp; const NAME: &'static str = "svc1.Req"; }
///
/// let endpoint = Endpoint::post::<Req>("/");
/// let mut headers = http::HeaderMap::new();
/// headers.insert("content-type", "application/json".parse()?);
/// headers.insert("x-nano-req-id", "x code=S-FAKE".parse()?);
/// let err = decode_request(&endpoint, &headers, br#"{"param":"a"}"#).unwrap_err();
/// assert_eq!(err.code(), "C-BAD-REQUEST");
/// assert!(err.message().contains("x-nano-req-id"));
///
/// headers.remove("x-nano-req-id");
/// let decoded = decode_request(&endpoint, &headers, br#"{"param":"a"}"#)?;
/// assert_eq!(decoded.request.downcast_ref::<Req>().unwrap().param, "a");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
///
/// `C-BAD-REQUEST` naming the header or the problem with the body, `C-BAD-CONTENT-TYPE`; never a
/// panic, whatever the input.
pub fn decode_request(
    endpoint: &Endpoint,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<DecodedRequest, NanoError> {
    let call = CallHeaders::parse(headers)?;
    let request = decode_body(endpoint, headers, body)?;
    Ok(DecodedRequest {
        request_id: call.request_id,
        caller: call.caller.map(str::to_owned),
        budget: call.budget,
        request,
    })
}

/// The value of an id header: `None` when absent or empty, an error naming the header when it is
/// not an id (the rule every wire shares, `nano_wire::id_value`).
fn id_header<'h>(headers: &'h HeaderMap, name: &str) -> Result<Option<&'h str>, NanoError> {
    match headers.get(name) {
        Some(value) => nano_wire::id_value(name, value.as_bytes()),
        None => Ok(None),
    }
}

/// The caller's remaining time from `X-Nano-Deadline-Ms`.
fn deadline_budget(headers: &HeaderMap) -> Result<Option<Duration>, NanoError> {
    let Some(value) = headers.get(DEADLINE_HEADER) else {
        return Ok(None);
    };
    let invalid = || {
        let bytes = value.as_bytes();
        let shown = String::from_utf8_lossy(&bytes[..bytes.len().min(32)]);
        NanoError::bad_request(format!(
            "invalid {DEADLINE_HEADER} header {shown:?}, expected whole milliseconds"
        ))
    };
    let text = value.to_str().map_err(|_| invalid())?;
    let millis: u64 = text.trim().parse().map_err(|_| invalid())?;
    Ok(Some(Duration::from_millis(millis)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::MAX_ID_LEN;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &[u8])]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_bytes(value).unwrap());
        }
        map
    }

    fn check(pairs: &[(&'static str, &[u8])]) -> Result<(String, Option<String>), String> {
        let map = headers(pairs);
        CallHeaders::parse(&map)
            .map(|call| {
                (
                    call.request_id.as_str().to_owned(),
                    call.caller.map(str::to_owned),
                )
            })
            .map_err(|err| {
                assert_eq!(err.code(), nano::codes::BAD_REQUEST);
                err.to_string()
            })
    }

    #[test]
    fn ids_of_the_allowed_alphabet_are_kept() {
        let uuid = "6f1c2a9e-3b8d-4c55-9a0e-2f4b7d8c1e90";
        let (id, caller) = check(&[
            (REQ_ID_HEADER, uuid.as_bytes()),
            (CLIENT_NAME_HEADER, b"svc_1.eu:a"),
        ])
        .unwrap();
        assert_eq!(id, uuid);
        assert_eq!(caller.as_deref(), Some("svc_1.eu:a"));
        let longest = "a".repeat(MAX_ID_LEN);
        assert_eq!(
            check(&[(REQ_ID_HEADER, longest.as_bytes())]).unwrap().0,
            longest
        );
    }

    #[test]
    fn absent_or_empty_ids_are_replaced() {
        let (id, caller) = check(&[(REQ_ID_HEADER, b""), (CLIENT_NAME_HEADER, b"")]).unwrap();
        assert_eq!(id.len(), 32);
        assert_eq!(caller, None);
        assert_eq!(check(&[]).unwrap().0.len(), 32);
    }

    #[test]
    fn forged_long_or_binary_ids_are_refused_naming_the_header() {
        let long = "a".repeat(MAX_ID_LEN + 1);
        let huge = "b".repeat(300_000);
        for (name, value) in [
            (REQ_ID_HEADER, &b"x code=S-FAKE error=\"forged\""[..]),
            (REQ_ID_HEADER, long.as_bytes()),
            (REQ_ID_HEADER, huge.as_bytes()),
            (REQ_ID_HEADER, b"caf\xc3\xa9"),
            (REQ_ID_HEADER, b"a/../b"),
            (CLIENT_NAME_HEADER, b"svc1 admin"),
            (CLIENT_NAME_HEADER, b"\xff\xfe"),
        ] {
            let err = check(&[(name, value)]).unwrap_err();
            assert!(err.contains(name), "{err}");
            // The message stays short whatever the value.
            assert!(err.len() < 300, "{} bytes", err.len());
        }
    }

    #[test]
    fn deadlines_are_whole_milliseconds() {
        let map = headers(&[(DEADLINE_HEADER, b" 250 ")]);
        let call = CallHeaders::parse(&map).unwrap();
        assert_eq!(call.budget, Some(Duration::from_millis(250)));
        for bad in [&b"-1"[..], b"1.5", b"", b"\xff"] {
            let map = headers(&[(DEADLINE_HEADER, bad)]);
            let err = CallHeaders::parse(&map).unwrap_err();
            assert!(err.to_string().contains(DEADLINE_HEADER), "{err}");
        }
    }
}
