//! The protocol's fixed parts: header names, the content type, and the mapping between error codes
//! and HTTP statuses (in both directions, in this one place).

use http::{HeaderName, HeaderValue, StatusCode};
use nano::{ErrorBody, NanoError, codes};

// The protocol's header names, and which request ids and caller names are accepted, are wire
// decisions the transport-fidelity hook shares.
pub use nano_wire::{CLIENT_NAME_HEADER, DEADLINE_HEADER, REQ_ID_HEADER};
/// The content type of every JSON body, request or response.
pub const JSON_CONTENT_TYPE: &str = "application/json; charset=utf-8";

/// The path every listener answers `200` with an empty body on `GET`.
pub const HEALTH_CHECK_PATH: &str = "/health-check";

/// Set (to `true`) by a listener on a `503` it answered without calling any handler: the request
/// was refused whole (too many requests in flight, or the server is shutting down), so a client
/// may send it again. An addition to the original protocol, which ignores it.
pub const NOT_PROCESSED_HEADER: &str = "x-nano-not-processed";

/// The code of a request that did not arrive whole within the listener's request timeout,
/// answered `408`.
pub const REQUEST_TIMEOUT_CODE: &str = "C-REQUEST-TIMEOUT";

pub use nano_wire::{MAX_ID_LEN, is_valid_id};

pub(crate) static JSON_CONTENT_TYPE_VALUE: HeaderValue =
    HeaderValue::from_static(JSON_CONTENT_TYPE);
// Typed once so that sending a request does not parse header names.
pub(crate) static REQ_ID_HEADER_NAME: HeaderName = HeaderName::from_static(REQ_ID_HEADER);
pub(crate) static CLIENT_NAME_HEADER_NAME: HeaderName = HeaderName::from_static(CLIENT_NAME_HEADER);
pub(crate) static DEADLINE_HEADER_NAME: HeaderName = HeaderName::from_static(DEADLINE_HEADER);
pub(crate) static NOT_PROCESSED_HEADER_NAME: HeaderName =
    HeaderName::from_static(NOT_PROCESSED_HEADER);

/// The HTTP status an error with `code` is answered with.
///
/// `C-BAD-REQUEST` 400, `C-UNAUTHORIZED` 401, `C-FORBIDDEN` 403, `C-NOT-FOUND` 404, `C-METHOD-NOT-ALLOWED` 405, `C-REQUEST-TIMEOUT` 408,
/// `C-PAYLOAD-TOO-LARGE` 413, `C-BAD-CONTENT-TYPE` 415, any other `C-…` 400; everything else,
/// including an empty code, 500. The one exception is the listener's own refusal of a request
/// it never handed to a service ([`NOT_PROCESSED_HEADER`]), which is `503` with `S-UNAVAILABLE`.
///
/// ```
/// use nano_http::status_for;
///
/// assert_eq!(status_for("C-NOT-FOUND").as_u16(), 404);
/// assert_eq!(status_for("C-UNAUTHORIZED").as_u16(), 401);
/// assert_eq!(status_for("C-FORBIDDEN").as_u16(), 403);
/// assert_eq!(status_for("C-ANYTHING").as_u16(), 400);
/// assert_eq!(status_for("S-TIMEOUT").as_u16(), 500);
/// assert_eq!(status_for("").as_u16(), 500);
/// ```
pub fn status_for(code: &str) -> StatusCode {
    match code {
        codes::BAD_REQUEST => StatusCode::BAD_REQUEST,
        nano_wire::codes::UNAUTHORIZED => StatusCode::UNAUTHORIZED,
        nano_wire::codes::FORBIDDEN => StatusCode::FORBIDDEN,
        codes::NOT_FOUND => StatusCode::NOT_FOUND,
        codes::METHOD_NOT_ALLOWED => StatusCode::METHOD_NOT_ALLOWED,
        REQUEST_TIMEOUT_CODE => StatusCode::REQUEST_TIMEOUT,
        codes::PAYLOAD_TOO_LARGE => StatusCode::PAYLOAD_TOO_LARGE,
        codes::BAD_CONTENT_TYPE => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        code if code.starts_with(codes::CLIENT_PREFIX) => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The error a client reports for a non-2xx response that carries no `{"code","msg"}` body (an
/// error page of a proxy, an empty 5xx). Always a server-side code: the caller did nothing wrong
/// that it could fix by changing its request to the callee.
pub(crate) fn error_for_bare_status(status: StatusCode, what: &str) -> NanoError {
    let code = match status {
        StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE => codes::UNAVAILABLE,
        StatusCode::GATEWAY_TIMEOUT | StatusCode::REQUEST_TIMEOUT => codes::TIMEOUT,
        _ => codes::SERVER_ERROR,
    };
    NanoError::new(
        code,
        format!("{what} answered HTTP {status} without an error body"),
    )
}

/// The status of a refusal: a request the listener did not hand to any service.
pub(crate) const REFUSAL_STATUS: StatusCode = StatusCode::SERVICE_UNAVAILABLE;

/// The JSON body of an error response of `service` (empty when the error is not a service's).
pub(crate) fn error_body(service: &str, err: &NanoError) -> Vec<u8> {
    // `ErrorBody` is two strings; encoding it cannot fail.
    serde_json::to_vec(&nano_wire::error_body(service, err)).unwrap_or_default()
}

/// The error a client reports for a non-2xx answer from `what` (e.g. `service "svc3" at POST
/// http://…`): the `{"code","msg"}` body turned back into the same [`NanoError`] when there is
/// one (JSON content type, a string `code` or `msg`), otherwise an error naming the status (see
/// the table on [`HttpClient`](crate::HttpClient)). Never panics, whatever the bytes.
///
/// ```
/// use nano_http::decode_error_response;
/// use http::{HeaderValue, StatusCode};
///
/// let json = HeaderValue::from_static("application/json");
/// let body = br#"{"code":"C-NOT-FOUND","msg":"no such user"}"#;
/// let err = decode_error_response(StatusCode::NOT_FOUND, Some(&json), body, "svc1");
/// assert_eq!((err.code(), err.message()), ("C-NOT-FOUND", "no such user"));
///
/// let err = decode_error_response(StatusCode::BAD_GATEWAY, None, b"<html>", "svc1");
/// assert_eq!(err.code(), "S-UNAVAILABLE");
/// ```
pub fn decode_error_response(
    status: StatusCode,
    content_type: Option<&HeaderValue>,
    body: &[u8],
    what: &str,
) -> NanoError {
    decode_error_body(content_type, body).unwrap_or_else(|| error_for_bare_status(status, what))
}

/// Decodes an error response body, if it is one: JSON with a string `code` or `msg`.
fn decode_error_body(content_type: Option<&HeaderValue>, body: &[u8]) -> Option<NanoError> {
    check_json_content_type(content_type).ok()?;
    let body: ErrorBody = serde_json::from_slice(body).ok()?;
    nano_wire::error_from_body(body)
}

/// Checks that a body is declared as JSON in UTF-8: media type `application/json` and either no
/// charset or `utf-8` (any case, quoted or not).
///
/// # Errors
///
/// `C-BAD-CONTENT-TYPE` naming what is wrong.
pub(crate) fn check_json_content_type(value: Option<&HeaderValue>) -> Result<(), NanoError> {
    let bad = |msg: String| NanoError::new(codes::BAD_CONTENT_TYPE, msg);
    let value =
        value.ok_or_else(|| bad("missing content type, expected application/json".into()))?;
    // The common cases are exactly what our own clients and servers send, or the bare media type
    // most other servers send; skip parsing them.
    if value == JSON_CONTENT_TYPE_VALUE || value.as_bytes() == b"application/json" {
        return Ok(());
    }
    let text = value
        .to_str()
        .map_err(|_| bad("content type is not valid text".into()))?;
    let media: mime::Mime = text
        .parse()
        .map_err(|err| bad(format!("invalid content type {text:?}: {err}")))?;
    if media.essence_str() != "application/json" {
        return Err(bad(format!(
            "unsupported content type {:?}, expected application/json",
            media.essence_str()
        )));
    }
    match media.get_param(mime::CHARSET) {
        None => Ok(()),
        Some(charset) if charset.as_str().eq_ignore_ascii_case("utf-8") => Ok(()),
        Some(charset) => Err(bad(format!(
            "unsupported charset {:?}, expected utf-8",
            charset.as_str()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(value: Option<&str>) -> Result<(), String> {
        let value = value.map(|v| HeaderValue::from_str(v).unwrap());
        check_json_content_type(value.as_ref()).map_err(|err| {
            assert_eq!(err.code(), codes::BAD_CONTENT_TYPE);
            err.to_string()
        })
    }

    #[test]
    fn json_content_types_are_accepted_in_any_spelling() {
        assert_eq!(check(Some(JSON_CONTENT_TYPE)), Ok(()));
        assert_eq!(check(Some("application/json")), Ok(()));
        assert_eq!(check(Some("Application/JSON; Charset=\"UTF-8\"")), Ok(()));
    }

    #[test]
    fn other_content_types_are_rejected_with_a_reason() {
        assert!(check(None).unwrap_err().contains("missing"));
        assert!(
            check(Some("text/plain"))
                .unwrap_err()
                .contains("text/plain")
        );
        assert!(
            check(Some("application/json; charset=latin1"))
                .unwrap_err()
                .contains("latin1")
        );
        assert!(check(Some("not a type")).unwrap_err().contains("invalid"));
    }

    #[test]
    fn bare_statuses_map_to_server_side_codes() {
        let code = |status| error_for_bare_status(status, "svc").code().to_owned();
        assert_eq!(code(StatusCode::SERVICE_UNAVAILABLE), codes::UNAVAILABLE);
        assert_eq!(code(StatusCode::GATEWAY_TIMEOUT), codes::TIMEOUT);
        assert_eq!(code(StatusCode::NOT_FOUND), codes::SERVER_ERROR);
        let err = error_for_bare_status(StatusCode::INTERNAL_SERVER_ERROR, "svc3");
        assert_eq!(
            err.to_string(),
            "svc3 answered HTTP 500 Internal Server Error without an error body"
        );
    }

    #[test]
    fn every_client_code_is_a_4xx_and_everything_else_a_500() {
        for code in [
            codes::BAD_REQUEST,
            codes::NOT_FOUND,
            codes::BAD_CONTENT_TYPE,
            codes::BAD_REQUEST_TYPE,
            codes::METHOD_NOT_ALLOWED,
            codes::PAYLOAD_TOO_LARGE,
        ] {
            assert!(status_for(code).is_client_error(), "{code}");
        }
        for code in ["", codes::SERVER_ERROR, codes::TIMEOUT, "X-OTHER"] {
            assert_eq!(
                status_for(code),
                StatusCode::INTERNAL_SERVER_ERROR,
                "{code}"
            );
        }
    }
}
