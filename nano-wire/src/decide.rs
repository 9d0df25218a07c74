//! The decisions themselves: pure functions of the endpoint, the bytes and the error.

use std::time::Duration;

use nano::{AnyRequest, AnyResponse, ErrorBody, NanoError, Outcome, codes};

use crate::endpoint::Endpoint;

/// The default limit on a request body: 1 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 1 << 20;

/// How deep a request body may nest arrays and objects: serde_json's own limit for typed values,
/// applied to the whole document so that ignored fields are held to it too.
pub const MAX_JSON_DEPTH: usize = 128;

/// The longest request id or caller name a listener accepts, in bytes.
pub const MAX_ID_LEN: usize = 128;

/// Whether `id` may be used as a request id or caller name: 1 to [`MAX_ID_LEN`] bytes of ASCII
/// letters, digits and `.`, `_`, `:`, `-`. This covers the ids nano generates (32 lowercase hex
/// digits), UUIDs and service names, and keeps every id safe in a header, a log line and a file
/// name.
///
/// ```
/// use nano_wire::is_valid_id;
///
/// assert!(is_valid_id("0123456789abcdef0123456789abcdef"));
/// assert!(is_valid_id("6f1c2a9e-3b8d-4c55-9a0e-2f4b7d8c1e90"));
/// assert!(!is_valid_id("x code=S-FAKE"));
/// assert!(!is_valid_id(""));
/// assert!(!is_valid_id(&"a".repeat(129)));
/// ```
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// Carries the request id of a request tree over HTTP, in both directions.
pub const REQ_ID_HEADER: &str = "x-nano-req-id";
/// Carries the name of the calling service over HTTP.
pub const CLIENT_NAME_HEADER: &str = "x-nano-client-name";
/// Carries the caller's remaining time budget over HTTP, in whole milliseconds. An addition to
/// the original protocol, which ignores it.
pub const DEADLINE_HEADER: &str = "x-nano-deadline-ms";

/// Checks that `text` (a request id or caller name, `what`) can be sent as an HTTP header value:
/// no control character but the tab, byte by byte, as the HTTP client library requires. `to`
/// describes where the request was going, for the message; it is called only on failure.
///
/// ```
/// assert!(nano_wire::check_header_value("request id", "abc 1", || "svc1".into()).is_ok());
/// let err = nano_wire::check_header_value("caller name", "a\nb", || "service \"svc1\"".into());
/// assert_eq!(err.unwrap_err().code(), "S-ENCODE");
/// ```
///
/// # Errors
///
/// `S-ENCODE` naming `what` and `text`: the request is not sent.
pub fn check_header_value(
    what: &str,
    text: &str,
    to: impl FnOnce() -> String,
) -> Result<(), NanoError> {
    if text.bytes().all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f)) {
        return Ok(());
    }
    Err(NanoError::new(
        nano::codes::ENCODE,
        format!(
            "cannot build the request to {}: the {what} {text:?} cannot be sent in a header",
            to()
        ),
    ))
}

/// An HTTP header value as the listener reads it: without the spaces and tabs around it, which
/// HTTP/1.1 parsers drop. The listener then applies the id rule ([`id_value`]) to what is left.
pub fn header_value_as_received(sent: &str) -> &str {
    sent.trim_matches([' ', '\t'])
}

/// The value of the id header `header` (a request id or caller name) as every wire reads it:
/// `None` when empty, the id when [`is_valid_id`] accepts it, otherwise `C-BAD-REQUEST` naming
/// the header. The value is not repeated in the error beyond a short, escaped prefix: it is
/// untrusted and may be huge.
///
/// # Errors
///
/// `C-BAD-REQUEST` when the value is not an id.
pub fn id_value<'v>(header: &str, value: &'v [u8]) -> Result<Option<&'v str>, NanoError> {
    if value.is_empty() {
        return Ok(None);
    }
    match std::str::from_utf8(value) {
        Ok(text) if is_valid_id(text) => Ok(Some(text)),
        _ => {
            let shown = String::from_utf8_lossy(&value[..value.len().min(32)]);
            let more = if value.len() > 32 { "…" } else { "" };
            Err(NanoError::bad_request(format!(
                "invalid {header} header {shown:?}{more} ({} bytes): expected 1 to {MAX_ID_LEN} \
                 ASCII letters, digits, '.', '_', ':' or '-'",
                value.len()
            )))
        }
    }
}

/// The endpoint that carries `request` (a wire name): the first one declared for it.
///
/// # Errors
///
/// `C-BAD-REQUEST-TYPE` when no endpoint carries it: the caller asked for something the callee
/// does not serve on this transport.
pub fn find_endpoint<'e>(
    endpoints: &'e [Endpoint],
    request: &str,
) -> Result<&'e Endpoint, NanoError> {
    endpoints
        .iter()
        .find(|endpoint| endpoint.request_type().name() == request)
        .ok_or_else(|| NanoError::bad_request_type(request))
}

/// The body a request travels with: its JSON on an endpoint with a body, nothing otherwise.
///
/// # Errors
///
/// `S-ENCODE` when serde cannot encode the request.
pub fn encode_request(
    endpoint: &Endpoint,
    request: &AnyRequest,
) -> Result<Option<Vec<u8>>, NanoError> {
    if endpoint.has_body() {
        request.to_json().map(Some)
    } else {
        Ok(None)
    }
}

/// The error of a body over `limit` bytes: `413` `C-PAYLOAD-TOO-LARGE`.
pub fn too_large(limit: usize) -> NanoError {
    NanoError::new(
        codes::PAYLOAD_TOO_LARGE,
        format!("request body is larger than {limit} bytes"),
    )
}

/// Checks a body's length against the limit.
///
/// # Errors
///
/// [`too_large`] when `len` is over `limit`.
pub fn check_body_len(len: usize, limit: usize) -> Result<(), NanoError> {
    if len > limit {
        Err(too_large(limit))
    } else {
        Ok(())
    }
}

/// Rejects JSON nested deeper than [`MAX_JSON_DEPTH`], in one pass over the bytes. The syntax is
/// left to the decoder; this only tracks brackets outside strings.
///
/// # Errors
///
/// `C-BAD-REQUEST` when the limit is exceeded.
pub fn check_json_depth(json: &[u8]) -> Result<(), NanoError> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &byte in json {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_JSON_DEPTH {
                    return Err(NanoError::bad_request(format!(
                        "JSON nested deeper than {MAX_JSON_DEPTH} levels"
                    )));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Decodes a request body read whole (within the limit) for `endpoint`: on an endpoint with a
/// body, the nesting depth and then the JSON (proto3 rules, see `nano_json`); on one without, no
/// bytes at all, and the request type's one value (it has no fields, see
/// [`Endpoint::validate`]).
///
/// # Errors
///
/// `C-BAD-REQUEST` naming what is wrong.
pub fn decode_body(endpoint: &Endpoint, body: &[u8]) -> Result<AnyRequest, NanoError> {
    if endpoint.has_body() {
        check_json_depth(body)?;
        endpoint.request_type().decode_request(body)
    } else if body.is_empty() {
        endpoint.request_type().decode_request(b"")
    } else {
        Err(NanoError::bad_request(
            "this endpoint takes no request body",
        ))
    }
}

/// The whole milliseconds a deadline header carries for `remaining`: rounded down, so the callee
/// never gets more time than its caller waits; `None` when less than one is left, and the call is
/// not sent (see [`out_of_time`]).
pub fn deadline_millis(remaining: Duration) -> Option<u64> {
    let millis = u64::try_from(remaining.as_millis()).unwrap_or(u64::MAX);
    (millis > 0).then_some(millis)
}

/// `S-TIMEOUT` for a call from `caller` to `callee` that ran out of time, worded as the core's
/// `Client` words it, so a caller sees one message whichever side noticed first.
pub fn out_of_time(caller: &str, callee: &str) -> NanoError {
    NanoError::timeout(format!(
        "call from {caller:?} to {callee:?} ran out of time"
    ))
}

/// The `{"code","msg"}` body `service` answers `err` with: its code and its chain flattened. An
/// error with neither code nor message is `S-ERROR` naming the service, so that the caller gets
/// an error that says something, whoever reads the body.
pub fn error_body(service: &str, err: &NanoError) -> ErrorBody {
    let body = ErrorBody::from(err);
    if body.code.is_empty() && body.msg.is_empty() {
        return ErrorBody {
            code: codes::SERVER_ERROR.to_owned(),
            msg: format!("service {service:?} failed without a message"),
        };
    }
    body
}

/// The error a caller reads from an error body; `None` when the body has neither code nor
/// message (then the HTTP status is all there is).
pub fn error_from_body(body: ErrorBody) -> Option<NanoError> {
    if body.code.is_empty() && body.msg.is_empty() {
        return None;
    }
    Some(body.into())
}

/// The body a successful answer travels with: the response's JSON, or nothing when the endpoint
/// has no response body.
///
/// # Errors
///
/// `S-ENCODE` when serde cannot encode the response.
pub fn encode_response(
    endpoint: &Endpoint,
    response: &AnyResponse,
) -> Result<Option<Vec<u8>>, NanoError> {
    if endpoint.has_response() {
        response.to_json().map(Some)
    } else {
        Ok(None)
    }
}

/// What the caller makes of a successful answer from `service`: `()` on an endpoint without a
/// response body, else the body decoded as `request`'s response type. `problem`, when set, is
/// a reason found before decoding (e.g. the content type) that makes the answer unusable.
///
/// # Errors
///
/// `S-BAD-RESPONSE` naming the service and the request when the answer is unusable.
pub fn decode_response(
    service: &str,
    endpoint: &Endpoint,
    problem: Option<NanoError>,
    body: &[u8],
) -> Outcome {
    if !endpoint.has_response() {
        return Ok(AnyResponse::new(()));
    }
    let request = endpoint.request_type();
    let unusable = |err: NanoError| {
        NanoError::wrap(
            err,
            format!(
                "service {service:?} answered {} with an unusable response",
                request.name()
            ),
        )
        .with_code(codes::BAD_RESPONSE)
    };
    if let Some(problem) = problem {
        return Err(unusable(problem));
    }
    request.decode_response(body).map_err(unusable)
}
