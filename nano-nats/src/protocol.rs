//! The fixed parts of the NATS wire as async-nats holds them, and how a listener reads the
//! protocol headers of a request.

use std::time::Duration;

use async_nats::{HeaderMap, HeaderName};
use nano::{NanoError, RequestId};

// The wire's fixed parts are `nano_wire::nats`'s, which the transport-fidelity hook reads too.
pub use nano_wire::nats::{
    CLIENT_NAME_HEADER, DEADLINE_HEADER, DEFAULT_PREFIX, ERROR_HEADER, REQ_ID_HEADER,
};

// The header names as async-nats holds them, made once: naming a header by a `&str` copies the
// name into a fresh allocation on every insert and lookup.
pub(crate) static REQ_ID_NAME: HeaderName = HeaderName::from_static(REQ_ID_HEADER);
pub(crate) static CLIENT_NAME_NAME: HeaderName = HeaderName::from_static(CLIENT_NAME_HEADER);
pub(crate) static DEADLINE_NAME: HeaderName = HeaderName::from_static(DEADLINE_HEADER);
pub(crate) static ERROR_NAME: HeaderName = HeaderName::from_static(ERROR_HEADER);

/// What a listener takes from the headers of a request before calling a service.
#[derive(Debug)]
pub(crate) struct CallHeaders<'h> {
    pub(crate) request_id: RequestId,
    pub(crate) caller: Option<&'h str>,
    pub(crate) budget: Option<Duration>,
}

impl<'h> CallHeaders<'h> {
    /// Reads the protocol headers, by the rules of the HTTP wire: a missing or empty request id
    /// is generated, ids and caller names must satisfy [`is_valid_id`], and the deadline is whole
    /// milliseconds.
    ///
    /// # Errors
    ///
    /// `C-BAD-REQUEST` naming the header that is invalid.
    pub(crate) fn parse(headers: Option<&'h HeaderMap>) -> Result<Self, NanoError> {
        let Some(headers) = headers else {
            return Ok(CallHeaders {
                request_id: RequestId::generate(),
                caller: None,
                budget: None,
            });
        };
        // One pass over the map instead of a hashed lookup per header; the first value of a
        // repeated header counts, as with `HeaderMap::get`.
        let (mut request_id, mut caller, mut deadline) = (None, None, None);
        for (name, values) in headers.iter() {
            let slot = if *name == REQ_ID_NAME {
                &mut request_id
            } else if *name == CLIENT_NAME_NAME {
                &mut caller
            } else if *name == DEADLINE_NAME {
                &mut deadline
            } else {
                continue;
            };
            *slot = values.first().map(|value| value.as_str());
        }
        let request_id = match id_value(REQ_ID_HEADER, request_id)? {
            Some(id) => RequestId::from(id),
            None => RequestId::generate(),
        };
        let caller = id_value(CLIENT_NAME_HEADER, caller)?;
        let budget = match deadline {
            None => None,
            Some(text) => {
                let millis: u64 = text.trim().parse().map_err(|_| {
                    NanoError::bad_request(format!(
                        "invalid {DEADLINE_HEADER} header {:?}, expected whole milliseconds",
                        shown(text)
                    ))
                })?;
                Some(Duration::from_millis(millis))
            }
        };
        Ok(CallHeaders {
            request_id,
            caller,
            budget,
        })
    }
}

fn id_value<'h>(header: &str, value: Option<&'h str>) -> Result<Option<&'h str>, NanoError> {
    match value {
        Some(value) => nano_wire::id_value(header, value.as_bytes()),
        None => Ok(None),
    }
}

/// At most the first 32 characters of a header value, for a message.
fn shown(text: &str) -> String {
    let mut shown: String = text.chars().take(32).collect();
    if shown.len() < text.len() {
        shown.push('…');
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;
    use nano::codes;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, *value);
        }
        map
    }

    #[test]
    fn protocol_headers_are_read_by_the_rules_of_the_http_wire() {
        let map = headers(&[
            (REQ_ID_HEADER, "abc-1"),
            (CLIENT_NAME_HEADER, "svc2"),
            (DEADLINE_HEADER, "250"),
        ]);
        let call = CallHeaders::parse(Some(&map)).unwrap();
        assert_eq!(call.request_id.as_str(), "abc-1");
        assert_eq!(call.caller, Some("svc2"));
        assert_eq!(call.budget, Some(Duration::from_millis(250)));

        let none = CallHeaders::parse(None).unwrap();
        assert_eq!(none.request_id.as_str().len(), 32);
        assert_eq!((none.caller, none.budget), (None, None));

        for (name, value) in [
            (REQ_ID_HEADER, "x code=S-FAKE"),
            (CLIENT_NAME_HEADER, "a b"),
            (DEADLINE_HEADER, "-1"),
            (DEADLINE_HEADER, "1.5"),
        ] {
            let map = headers(&[(name, value)]);
            let err = CallHeaders::parse(Some(&map)).unwrap_err();
            assert_eq!(err.code(), codes::BAD_REQUEST, "{name}: {value}");
            assert!(err.to_string().contains(name), "{err}");
        }
    }
}
