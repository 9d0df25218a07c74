//! HTTP/JSON transport for nano, speaking the Go original's wire protocol.
//!
//! The server side is an [`HttpListener`]: a [`nano_server::Listener`] that exposes chosen services of a
//! [`ServiceSet`](nano::ServiceSet), each with the [`Endpoint`]s its API declares, at
//! `/<service><path>`. The client side is an [`HttpClient`]: a [`nano::Service`] that stands in
//! for a remote service, so a set can hold it under the remote service's name and its callers
//! cannot tell. [`Peers`] is the static discovery that maps service names to addresses, and
//! [`HttpTransport`] holds the shared connection pool that clients are made from.
//!
//! ```
//! use nano::{Ctx, ServiceSet};
//! use nano_server::{Listener};
//! use nano_http::{Endpoint, HttpListener, HttpTransport, Peers};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, Clone, Default, Serialize, Deserialize)]
//! #[serde(default)]
//! pub struct Req { pub param: String }
//! #[derive(Debug, Clone, Default, Serialize, Deserialize)]
//! #[serde(default)]
//! pub struct Resp { pub value: String }
//! impl nano::Request for Req {
//!     type Response = Resp;
//!     const NAME: &'static str = "svc1.Req";
//! }
//! // Declared once, next to the API types; both sides use it.
//! fn endpoints() -> Vec<Endpoint> {
//!     vec![Endpoint::post::<Req>("/")]
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), nano::NanoError> {
//! // Server: svc1 exposed on a free loopback port.
//! let svc1 = nano_test::request_fn("svc1", |_ctx, r: Req| async move {
//!     Ok(Resp { value: format!("svc1_{}", r.param) })
//! });
//! let server_set = ServiceSet::builder().service(svc1).build()?;
//! let listener = HttpListener::bind("127.0.0.1:0").await?.expose("svc1", endpoints())?;
//! let addr = listener.local_addr();
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let server = tokio::spawn(nano_server::serve_until(server_set, vec![listener.boxed()], async {
//!     let _ = stopped.await;
//! }));
//!
//! // Client: another set reaches svc1 through HTTP, under the same name.
//! let mut peers = Peers::new();
//! peers.insert("svc1", &addr.to_string())?;
//! let transport = HttpTransport::new(peers)?;
//! let client_set = ServiceSet::builder().service(transport.client("svc1", endpoints())?).build()?;
//! let resp = client_set.client("test", "svc1")?.call(&Ctx::new(), Req { param: "x".into() }).await?;
//! assert_eq!(resp.value, "svc1_x");
//!
//! let _ = stop.send(());
//! server.await.expect("server task")?;
//! # Ok(())
//! # }
//! ```
//!
//! | item | what it is for |
//! |---|---|
//! | [`Endpoint`], [`Method`] | declaring how a service's request types travel over HTTP |
//! | [`HttpListener`] | serving services, with limits on bodies, time, connections and requests in flight, and a shutdown that answers every request |
//! | [`HttpListener::auth`] with a `nano_wire::EdgeAuth` | bearer tokens on the request types it protects, checked by the set's auth service before the body is read: `401` `C-UNAUTHORIZED`, `403` `C-FORBIDDEN`, the user's id in the context's metadata |
//! | [`HttpTransport`], [`HttpClient`] | calling remote services through a keep-alive pool, with a limit on answers and one retry of requests that never reached a handler |
//! | [`Peers`], [`Peer`] | static discovery: service name → address, from code, flags or `NANO_PEERS` |
//! | [`status_for`], [`is_valid_id`], the header constants | the wire protocol's fixed parts |
//! | [`decode_request`], [`decode_error_response`] | the decoding of what a peer sends, without sockets (tests, fuzzing) |
//! | `openapi::document` (feature `openapi`) | the OpenAPI 3.1 description of declared APIs |
//! | `server::main` (feature `server`) | the whole `main` of a server executable of any [`nano_server::System`] |
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `openapi` | no | `openapi::document`: the OpenAPI 3.1 document of declared [`nano::Api`]s, with schemars message schemas |
//! | `server` | no | `server`: flags (`--listen`, `--peer`, limits, `--record`), `RUST_LOG` logging, the ready line and graceful shutdown for a server executable |
//! | `nats` | no | `server` plus `--nats URL`: the server serves and reaches services over a NATS broker through `nano-nats` (replicas share requests in queue groups) |
//!
//! The protocol, in short: a request with a body is JSON with `Content-Type: application/json;
//! charset=utf-8`; `X-Nano-Req-Id` and `X-Nano-Client-Name` carry the request id and the caller;
//! `X-Nano-Deadline-Ms` (an addition the original ignores) carries the caller's remaining time.
//! Success is `200` with the response JSON (empty for a `()` response); an error is
//! `{"code","msg"}` with the status [`status_for`] gives its code.
//!
//! # The API description
//!
//! With the `openapi` feature, `openapi::document` exports declared APIs as an OpenAPI 3.1
//! document, derived through [`Endpoint::table`] so that it describes exactly what the listener
//! serves: one operation per route, a request body only on body endpoints, the error answers
//! of the protocol, and `x-nano-wire-name` / `x-nano-service` on each operation, which map a
//! scenario's wire name (`svc2.GetReq`) to its method and path. Message schemas come from the
//! declaration's `schemas = schemars`; an API declared without it exports with `{}` schemas.
//! The example services check their document in (`services/openapi.json`), a test fails when
//! it is stale, and `tools/replay_root.py` and `.ci/schemathesis.sh` use it from Python; see
//! `docs/deploying.md`, "The API description".

mod client;
mod connection;
mod endpoint;
mod incoming;
mod listener;
#[cfg(feature = "openapi")]
pub mod openapi;
mod peers;
#[cfg(feature = "server")]
pub mod server;
mod wire;

pub use client::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_TIMEOUT, HttpClient,
    HttpTransport, HttpTransportBuilder,
};
pub use endpoint::Endpoint;
pub use http::Method;
pub use incoming::{DecodedRequest, decode_request};
pub use listener::{
    DEFAULT_BODY_LIMIT, DEFAULT_CALLER, DEFAULT_GRACE_PERIOD, DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_IN_FLIGHT, DEFAULT_REQUEST_TIMEOUT, HttpListener,
};
pub use peers::{PEERS_ENV, Peer, Peers};
pub use wire::{
    CLIENT_NAME_HEADER, DEADLINE_HEADER, HEALTH_CHECK_PATH, JSON_CONTENT_TYPE, MAX_ID_LEN,
    NOT_PROCESSED_HEADER, REQ_ID_HEADER, REQUEST_TIMEOUT_CODE, decode_error_response, is_valid_id,
    status_for,
};
