//! What the nano wires decide about a call, in one place, for the parties that must decide it
//! alike: the transports (`nano-http`'s and `nano-nats`'s listener and client) and the
//! transport-fidelity hook of `nano-test`, which makes an in-process call behave like one over
//! a wire. None of them decides any of this on its own, so they cannot drift.
//!
//! The crate root holds the HTTP wire's decisions, most of which the NATS wire shares; the
//! [`nats`] module holds where NATS decides differently (which request types travel, header
//! names, the broker's `max_payload` on requests and replies, subjects).
//!
//! | decision | item |
//! |---|---|
//! | which endpoint carries a request type, and whether it has a body or a response body | [`Endpoint`], [`find_endpoint`] |
//! | a body-less endpoint only for a request type without fields | [`Endpoint::validate`] |
//! | the body sent for a request | [`encode_request`] |
//! | the body limit, the nesting depth and how a body decodes | [`check_body_len`], [`check_json_depth`], [`decode_body`] |
//! | the protocol's HTTP header names, which ids and caller names can be sent and which are accepted | [`REQ_ID_HEADER`], [`CLIENT_NAME_HEADER`], [`DEADLINE_HEADER`], [`check_header_value`], [`header_value_as_received`], [`id_value`], [`is_valid_id`], [`MAX_ID_LEN`] |
//! | the deadline a callee gets: whole milliseconds, rounded down | [`deadline_millis`], [`out_of_time`] |
//! | how an error is coded and flattened on its way back | [`error_body`], [`error_from_body`] |
//! | the body sent for a response and how the caller decodes it | [`encode_response`], [`decode_response`] |
//! | which calls need a bearer token, how it is read, and what the caller is told | [`EdgeAuth`], [`bearer_token`], [`bearer_challenge`], [`codes`] |
//!
//! Depends on `nano`, serde_json and the `http` crate's types only; no sockets, no runtime.

/// The codes of the edge's decisions that the core does not define.
pub mod codes {
    /// The call needs a bearer token and came without one the auth service accepts (HTTP 401).
    pub const UNAUTHORIZED: &str = "C-UNAUTHORIZED";
    /// The token is good but not for this call (HTTP 403).
    pub const FORBIDDEN: &str = "C-FORBIDDEN";
}

mod auth;
mod decide;
mod endpoint;
pub mod nats;

pub use auth::{
    AuthQuery, DEFAULT_IDENTITY_KEY, EdgeAuth, MAX_TOKEN_LEN, bearer_challenge, bearer_token,
};
pub use decide::{
    CLIENT_NAME_HEADER, DEADLINE_HEADER, DEFAULT_BODY_LIMIT, MAX_ID_LEN, MAX_JSON_DEPTH,
    REQ_ID_HEADER, check_body_len, check_header_value, check_json_depth, deadline_millis,
    decode_body, decode_response, encode_request, encode_response, error_body, error_from_body,
    find_endpoint, header_value_as_received, id_value, is_valid_id, out_of_time, too_large,
};
pub use endpoint::Endpoint;
pub use http::Method;
