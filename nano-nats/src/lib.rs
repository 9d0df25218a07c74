//! NATS transport for nano: services scale out on a message broker, with the same semantics as
//! the HTTP transport.
//!
//! The server side is a [`NatsListener`]: a [`nano_server::Listener`] that subscribes each
//! request type of the services it exposes to `<prefix>.<service>.<wire name>`, in one queue
//! group per service (`<prefix>.<service>`), so any number of processes serve a service and the
//! broker balances between them; a replica that goes away simply stops receiving. The client side
//! is a [`NatsClient`]: a [`nano::Service`] that stands in for the remote service, so a set holds
//! it under that name and its callers cannot tell. Both are made from a [`NatsTransport`], one
//! broker connection that reconnects by itself.
//!
//! A server executable gets all of this from its command line: `nano_http::server::main` with
//! nano-http's feature `nats` takes `--nats URL` and serves its exposed services with a
//! [`NatsListener`] and reaches every remote service with a [`NatsClient`] (see the project's
//! `docs/deploying.md`).
//!
//! What the wire decides is the HTTP wire's, through `nano_wire`: request and response JSON,
//! the payload limit, the nesting depth, the deadline in whole milliseconds, and errors as
//! `{"code","msg"}` with the same codes. Request id, caller name and deadline travel in the
//! headers [`REQ_ID_HEADER`], [`CLIENT_NAME_HEADER`] and [`DEADLINE_HEADER`]; an error reply
//! carries [`ERROR_HEADER`].
//!
//! ```no_run
//! use nano::{Ctx, ServiceSet};
//! use nano_nats::NatsTransport;
//! use nano_server::Listener;
//! # use serde::{Deserialize, Serialize};
//! # #[derive(Debug, Clone, Default, Serialize, Deserialize)] pub struct Req { pub param: String }
//! # #[derive(Debug, Clone, Default, Serialize, Deserialize)] pub struct Resp { pub value: String }
//!
//! mod svc1 {
//!     use super::*;
//!     nano::api! {
//!         service "svc1";
//!         fn req(Req) -> Resp = "svc1.Req";
//!     }
//! }
//! struct Svc1;
//! impl svc1::Handler for Svc1 {
//!     async fn req(&self, _ctx: &Ctx, r: Req) -> Result<Resp, nano::NanoError> {
//!         Ok(Resp { value: format!("svc1_{}", r.param) })
//!     }
//! }
//!
//! # #[tokio::main] async fn main() -> Result<(), nano::NanoError> {
//! let nats = NatsTransport::connect("nats://127.0.0.1:4222").await?;
//!
//! // Server: svc1 on `nano.svc1.svc1.Req`, in the queue group `nano.svc1`; once `subscribe`
//! // returns, the broker has the subscription and requests wait for `serve_until`.
//! let server_set = ServiceSet::builder().service(svc1::service(|_| Ok(Svc1))).build()?;
//! let listener = nats.listener().expose_api(&svc1::API)?.subscribe().await?;
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let server = tokio::spawn(nano_server::serve_until(server_set, vec![listener.boxed()], async {
//!     let _ = stopped.await;
//! }));
//!
//! // Client: another set (usually another process) reaches svc1 under the same name.
//! let client_set = ServiceSet::builder().service(nats.api_client(&svc1::API)?).build()?;
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
//! | [`NatsTransport`], [`NatsTransportBuilder`] | the broker connection, subject prefix, timeouts |
//! | [`NatsListener`] | serving services of a set |
//! | [`NatsClient`] | a remote service, as a `nano::Service`; `call_json` for a JSON body as it is |
//! | the header constants, [`DEFAULT_PREFIX`] | the wire protocol's fixed parts |

mod client;
mod listener;
mod protocol;
mod transport;

pub use client::NatsClient;
pub use listener::{DEFAULT_CALLER, DEFAULT_GRACE_PERIOD, DEFAULT_MAX_IN_FLIGHT, NatsListener};
pub use protocol::{
    CLIENT_NAME_HEADER, DEADLINE_HEADER, DEFAULT_PREFIX, ERROR_HEADER, REQ_ID_HEADER,
};
pub use transport::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_PENDING_MESSAGES, DEFAULT_TIMEOUT,
    MAX_RECONNECT_DELAY, NatsTransport, NatsTransportBuilder,
};
