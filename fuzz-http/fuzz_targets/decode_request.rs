//! The listener's decoding of a routed request: protocol headers, content type and body →
//! request type, through `nano_http::decode_request`.
//!
//! Input: one byte choosing the endpoint, then header lines `NAME: VALUE` (NAME one of the
//! protocol's headers or any other), a blank line, and the body. Invariants: no panic; every
//! failure is a coded client error; a request id that is kept is a valid id.

#![no_main]

use libfuzzer_sys::fuzz_target;
use nano_http::{Endpoint, decode_request, is_valid_id};
use serde::{Deserialize, Serialize};

/// A request shaped like the example services' ones, with the nesting and types JSON can get
/// wrong.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
struct Req {
    param: String,
    count: u32,
    ratio: f64,
    flags: Vec<bool>,
    tags: std::collections::BTreeMap<String, String>,
    next: Option<Box<Req>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
struct Resp {
    value: String,
}

impl nano::Request for Req {
    type Response = Resp;
    const NAME: &'static str = "fuzz.Req";
}

/// A body-less request (decoded from `{}`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Get {}

impl nano::Request for Get {
    type Response = Resp;
    const NAME: &'static str = "fuzz.Get";
}

fuzz_target!(|data: &[u8]| {
    let Some((&choice, rest)) = data.split_first() else {
        return;
    };
    let endpoint = if choice % 2 == 0 {
        Endpoint::post::<Req>("/")
    } else {
        Endpoint::get::<Get>("/")
    };
    let split = rest.windows(2).position(|w| w == b"\n\n");
    let (head, body) = match split {
        Some(at) => (&rest[..at], &rest[at + 2..]),
        None => (rest, &[][..]),
    };
    let mut headers = http::HeaderMap::new();
    for line in head.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = match &line[..colon] {
            b"i" => http::HeaderName::from_static("x-nano-req-id"),
            b"c" => http::HeaderName::from_static("x-nano-client-name"),
            b"d" => http::HeaderName::from_static("x-nano-deadline-ms"),
            b"t" => http::header::CONTENT_TYPE,
            other => match http::HeaderName::from_bytes(other) {
                Ok(name) => name,
                Err(_) => continue,
            },
        };
        let value = line[colon + 1..].strip_prefix(b" ").unwrap_or(&line[colon + 1..]);
        if let Ok(value) = http::HeaderValue::from_bytes(value) {
            headers.append(name, value);
        }
    }
    match decode_request(&endpoint, &headers, body) {
        Ok(decoded) => {
            assert!(is_valid_id(decoded.request_id.as_str()));
            if let Some(caller) = &decoded.caller {
                assert!(is_valid_id(caller));
            }
        }
        Err(err) => {
            assert!(err.is_client_error(), "{}: {err}", err.code());
            assert!(err.message().len() < 4096, "a message of {} bytes", err.message().len());
        }
    }
});
