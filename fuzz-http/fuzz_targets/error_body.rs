//! The client's reading of a non-2xx answer, through `nano_http::decode_error_response`.
//!
//! Input: two bytes of status, one byte choosing the content type (or, for 255, a content type
//! taken from the input up to the first newline), and the body. Invariants: no panic; the
//! result always names a code or a message.

#![no_main]

use http::{HeaderValue, StatusCode};
use libfuzzer_sys::fuzz_target;
use nano_http::decode_error_response;

const CONTENT_TYPES: [&str; 5] = [
    "application/json; charset=utf-8",
    "application/json",
    "Application/JSON; Charset=\"UTF-8\"",
    "application/json; charset=latin1",
    "text/html",
];

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let status = StatusCode::from_u16(400 + u16::from_le_bytes([data[0], data[1]]) % 200)
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut body = &data[3..];
    let content_type = match data[2] {
        255 => {
            let end = body.iter().position(|&b| b == b'\n').unwrap_or(body.len());
            let value = HeaderValue::from_bytes(&body[..end]).ok();
            body = body.get(end + 1..).unwrap_or(&[]);
            value
        }
        n => CONTENT_TYPES
            .get(usize::from(n) % (CONTENT_TYPES.len() + 1))
            .map(|t| HeaderValue::from_static(t)),
    };
    let err = decode_error_response(status, content_type.as_ref(), body, "service \"fuzz\"");
    assert!(!err.code().is_empty() || !err.message().is_empty());
});
