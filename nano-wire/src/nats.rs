//! What the NATS wire decides differently from HTTP, for the two parties that must decide it
//! alike: `nano-nats`'s client and listener, and the transport-fidelity hook of `nano-test` in
//! its NATS mode. Everything else (bodies, the body limit, the nesting depth, decoding, the
//! deadline, error coding, the accepted ids) is the same on both wires and lives in the crate
//! root.
//!
//! Where NATS differs:
//!
//! | decision | HTTP | NATS |
//! |---|---|---|
//! | which request types travel | those with a route ([`Endpoint::table`]) | every declared one, on its own subject ([`endpoints`]) |
//! | how a request travels | a JSON body, or none on a body-less route (`GET`) | always a JSON body ([`Endpoint::assumed`]) |
//! | names that cannot travel | a route that is not an HTTP method or path | a service or wire name that cannot be part of a subject ([`check_subject_part`]) |
//! | the protocol's header names | `x-nano-req-id`, … | [`REQ_ID_HEADER`], [`CLIENT_NAME_HEADER`], [`DEADLINE_HEADER`] |
//! | a header value the client cannot send | the `http` crate's rule | a control character ([`check_header_value`]) |
//! | the size of a request | the listener's body limit | also the broker's `max_payload`, headers included, checked by the client ([`check_request_size`]) |
//! | the size of a reply | unbounded on the server | the broker's `max_payload`: a larger reply becomes an `S-ERROR` reply ([`reply`]) |
//! | an error reply | a status and the error body | the error body and [`ERROR_HEADER`] |
//!
//! ```
//! use nano_wire::nats;
//!
//! assert_eq!(nats::subject("nano", "svc3", "svc3.Req"), "nano.svc3.svc3.Req");
//! assert_eq!(nats::queue_group("nano", "svc3"), "nano.svc3");
//! assert!(nats::check_subject_part("service name", "svc 3").is_err());
//! // "NATS/1.0\r\n", "Nano-Req-Id: abc\r\n", "\r\n"
//! assert_eq!(nats::header_len([(nats::REQ_ID_HEADER, "abc")]), 10 + 18 + 2);
//! ```

use nano::{Api, NanoError, codes};

use crate::endpoint::Endpoint;

/// The default first token of every subject and queue group.
pub const DEFAULT_PREFIX: &str = "nano";

/// The request id of the call tree, as HTTP's `x-nano-req-id`.
pub const REQ_ID_HEADER: &str = "Nano-Req-Id";
/// The calling service's name, as HTTP's `x-nano-client-name`.
pub const CLIENT_NAME_HEADER: &str = "Nano-Client-Name";
/// The time left to the caller's deadline in whole milliseconds, as HTTP's
/// `x-nano-deadline-ms`.
pub const DEADLINE_HEADER: &str = "Nano-Deadline-Ms";
/// Set (to `true`) on a reply whose payload is an error body `{"code","msg"}` rather than the
/// response.
pub const ERROR_HEADER: &str = "Nano-Error";

/// The broker's default limit on a message, headers included: `nats-server`'s `max_payload`
/// of 1 MiB.
pub const DEFAULT_MAX_PAYLOAD: usize = 1 << 20;

/// The subject a request type of a service is served on: `<prefix>.<service>.<wire name>`.
pub fn subject(prefix: &str, service: &str, wire_name: &str) -> String {
    format!("{prefix}.{service}.{wire_name}")
}

/// The queue group every replica of a service joins, so that the broker hands each request to
/// one of them: `<prefix>.<service>`.
pub fn queue_group(prefix: &str, service: &str) -> String {
    format!("{prefix}.{service}")
}

/// Checks that `text` (the `what` of a subject: a prefix, a service name, a wire name) can be
/// part of a subject: one or more tokens separated by `.`, none empty and none holding
/// whitespace, a control character or a wildcard (`*`, `>`).
///
/// # Errors
///
/// `S-INIT-FAILED` naming `what` and `text`.
pub fn check_subject_part(what: &str, text: &str) -> Result<(), NanoError> {
    let valid = !text.is_empty()
        && text.split('.').all(|token| {
            !token.is_empty()
                && token
                    .chars()
                    .all(|c| !c.is_whitespace() && !c.is_control() && c != '*' && c != '>')
        });
    if valid {
        Ok(())
    } else {
        Err(NanoError::new(
            codes::INIT_FAILED,
            format!("the {what} {text:?} cannot be part of a NATS subject"),
        ))
    }
}

/// How each request type of a declared API travels over NATS, in declaration order: every
/// operation has a subject, whether or not it declares an HTTP route, and every request is a
/// JSON body ([`Endpoint::assumed`]; there is no body-less request, so a `GET` route's type
/// with fields loses nothing either).
///
/// # Errors
///
/// `S-INIT-FAILED` when the service name or a wire name cannot be part of a subject.
pub fn endpoints(api: &Api) -> Result<Vec<Endpoint>, NanoError> {
    check_subject_part("service name", api.name())?;
    api.operations()
        .iter()
        .map(|operation| {
            let request = operation.request_type();
            check_subject_part("wire name", request.name())?;
            Ok(Endpoint::assumed(request))
        })
        .collect()
}

/// Checks that the client can send `text` (the `what` of the call: its request id or caller
/// name) as a header value: NATS headers are lines, so it must hold no control character. What
/// the listener then accepts is [`is_valid_id`](crate::is_valid_id)'s rule.
///
/// # Errors
///
/// `S-ENCODE` naming `service`, `what` and `text`: the request is not sent.
pub fn check_header_value(service: &str, what: &str, text: &str) -> Result<(), NanoError> {
    if text.chars().any(char::is_control) {
        return Err(NanoError::new(
            codes::ENCODE,
            format!(
                "cannot build the request to service {service:?}: the {what} {text:?} cannot be sent in a header"
            ),
        ));
    }
    Ok(())
}

/// A header value as the listener reads it: without the whitespace around it, which the NATS
/// client library drops when it parses a message. The listener then applies the id rule
/// ([`id_value`](crate::id_value)) to what is left.
pub fn header_value_as_received(sent: &str) -> &str {
    sent.trim()
}

/// The bytes a header block of `headers` (name, value) takes in a message: `NATS/1.0\r\n`,
/// `<name>: <value>\r\n` for each, and the closing `\r\n`; nothing at all without headers.
/// This is what the broker counts against `max_payload`.
pub fn header_len<'a>(headers: impl IntoIterator<Item = (&'a str, &'a str)>) -> usize {
    let mut headers = headers.into_iter().peekable();
    if headers.peek().is_none() {
        return 0;
    }
    let lines: usize = headers
        .map(|(name, value)| name.len() + 2 + value.len() + 2)
        .sum();
    b"NATS/1.0\r\n".len() + lines + b"\r\n".len()
}

/// The header block of a request as the client sends it: the request id, the caller's name
/// when there is one, and the deadline in whole milliseconds when there is one.
pub fn request_header_len(
    request_id: &str,
    caller: Option<&str>,
    deadline_ms: Option<u64>,
) -> usize {
    let headers = [
        Some((REQ_ID_HEADER, request_id)),
        caller.map(|caller| (CLIENT_NAME_HEADER, caller)),
    ];
    // The request id makes the block; the deadline line is counted without formatting it.
    let deadline_line = deadline_ms.map_or(0, |millis| {
        let digits = millis.checked_ilog10().map_or(1, |d| d as usize + 1);
        DEADLINE_HEADER.len() + 2 + digits + 2
    });
    header_len(headers.into_iter().flatten()) + deadline_line
}

/// The error of a request to `service` of `size` bytes (payload and headers) that the broker
/// would refuse.
pub fn request_too_large(service: &str, size: usize, max_payload: usize) -> NanoError {
    NanoError::new(
        codes::PAYLOAD_TOO_LARGE,
        format!(
            "the request to service {service:?} takes {size} bytes with its headers, more than the NATS broker's max_payload of {max_payload}"
        ),
    )
}

/// Checks a request's size, its payload and its header block, against the broker's
/// `max_payload` (0 when not known yet: nothing is checked), before it is sent.
///
/// # Errors
///
/// [`request_too_large`]: `C-PAYLOAD-TOO-LARGE`, the request is not sent.
pub fn check_request_size(
    service: &str,
    header_len: usize,
    payload_len: usize,
    max_payload: usize,
) -> Result<(), NanoError> {
    let size = header_len + payload_len;
    if max_payload > 0 && size > max_payload {
        Err(request_too_large(service, size, max_payload))
    } else {
        Ok(())
    }
}

/// A reply as a listener publishes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// The response's payload (empty for a response without a body), without headers.
    Response(Vec<u8>),
    /// An error body `{"code","msg"}`, published with [`ERROR_HEADER`] set to `true`.
    Error(Vec<u8>),
}

impl Reply {
    /// The payload.
    pub fn payload(&self) -> &[u8] {
        match self {
            Reply::Response(payload) | Reply::Error(payload) => payload,
        }
    }

    /// The bytes the reply's header block takes (only an error reply has one).
    pub fn header_len(&self) -> usize {
        match self {
            Reply::Response(_) => 0,
            Reply::Error(_) => header_len([(ERROR_HEADER, "true")]),
        }
    }
}

/// The reply a listener publishes for `service`'s outcome: the response payload, or the error
/// body ([`error_body`](crate::error_body)); and, when that is larger than the broker's
/// `max_payload` (0 when not known: nothing is checked), an `S-ERROR` reply saying so instead,
/// so that the caller gets an answer rather than a timeout.
pub fn reply(service: &str, outcome: Result<Vec<u8>, NanoError>, max_payload: usize) -> Reply {
    let reply = match outcome {
        Ok(payload) => Reply::Response(payload),
        Err(err) => error_reply(service, &err),
    };
    let size = reply.payload().len() + reply.header_len();
    if max_payload > 0 && size > max_payload {
        let err = NanoError::new(
            codes::SERVER_ERROR,
            format!(
                "service {service:?} answered with {} bytes, more than the NATS broker's max_payload of {max_payload}",
                reply.payload().len()
            ),
        );
        return error_reply(service, &err);
    }
    reply
}

fn error_reply(service: &str, err: &NanoError) -> Reply {
    // An `ErrorBody` is two strings; it always serializes.
    Reply::Error(serde_json::to_vec(&crate::error_body(service, err)).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_must_fit_in_a_subject() {
        for good in ["nano", "a.b", "svc-1_x"] {
            assert!(check_subject_part("prefix", good).is_ok(), "{good}");
        }
        for bad in ["", "a..b", ".a", "a b", "a*", "a.>", "a\n"] {
            let err = check_subject_part("prefix", bad).unwrap_err();
            assert_eq!(err.code(), codes::INIT_FAILED, "{bad:?}");
        }
    }

    #[test]
    fn header_values_with_control_characters_cannot_be_sent() {
        assert!(check_header_value("svc", "caller name", "a b").is_ok());
        assert!(check_header_value("svc", "caller name", "café").is_ok());
        let err = check_header_value("svc", "caller name", "a\nb").unwrap_err();
        assert_eq!(err.code(), codes::ENCODE);
        assert!(err.to_string().contains("caller name"), "{err}");
    }

    #[test]
    fn a_header_block_counts_every_line() {
        assert_eq!(header_len([]), 0);
        let len = request_header_len("abc", Some("svc2"), Some(250));
        let text = "NATS/1.0\r\nNano-Req-Id: abc\r\nNano-Client-Name: svc2\r\nNano-Deadline-Ms: 250\r\n\r\n";
        assert_eq!(len, text.len());
        assert_eq!(
            request_header_len("abc", None, None),
            "NATS/1.0\r\nNano-Req-Id: abc\r\n\r\n".len()
        );
    }

    #[test]
    fn sizes_are_checked_against_max_payload_headers_included() {
        assert!(check_request_size("svc", 30, 70, 100).is_ok());
        let err = check_request_size("svc", 30, 71, 100).unwrap_err();
        assert_eq!(err.code(), codes::PAYLOAD_TOO_LARGE);
        assert!(err.to_string().contains("101 bytes"), "{err}");
        assert!(
            check_request_size("svc", 30, 71, 0).is_ok(),
            "0: not known yet"
        );
    }

    #[test]
    fn a_reply_over_max_payload_becomes_an_error_reply() {
        assert_eq!(
            reply("svc", Ok(b"{}".to_vec()), 2),
            Reply::Response(b"{}".to_vec())
        );
        let Reply::Error(body) = reply("svc", Ok(b"{}".to_vec()), 1) else {
            panic!("an oversized response is an error reply");
        };
        let body: nano::ErrorBody = serde_json::from_slice(&body).unwrap();
        assert_eq!(body.code, codes::SERVER_ERROR);
        assert!(body.msg.contains("max_payload of 1"), "{}", body.msg);

        let err = NanoError::not_found("x".repeat(100));
        let small = reply("svc", Err(err.clone()), 0);
        assert!(matches!(&small, Reply::Error(body) if body.len() > 100));
        // The error header counts too.
        let exact = small.payload().len() + small.header_len();
        assert_eq!(reply("svc", Err(err.clone()), exact), small);
        let Reply::Error(body) = reply("svc", Err(err), exact - 1) else {
            panic!("an error reply stays one");
        };
        assert!(String::from_utf8_lossy(&body).contains(codes::SERVER_ERROR));
    }
}
