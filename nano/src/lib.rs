//! A transport-agnostic, testing-friendly microservice framework.
//!
//! A [`Service`] is a name and one async handler. Services call each other through [`Client`]s
//! that a [`ServiceSet`] hands out; a client reaches its callee in-process or through a transport
//! (a "fake service" standing in for a remote one), and the calling service cannot tell which. The
//! same services therefore run in a plain `cargo test`, in one server executable, or split across
//! many, without a line of service code changing.
//!
//! Requests are typed: each [`Request`] type names its response type and a stable wire name, so a
//! call returns the right type and a mismatch is a compile error. Underneath, requests travel as
//! type-erased [`AnyRequest`]s, which is what transports, hooks and mocks work with.
//!
//! ```
//! use nano::{AnyRequest, Ctx, Dependencies, NanoError, Outcome, Client, Service, ServiceSet};
//! use serde::{Deserialize, Serialize};
//!
//! // The API: one request type and its response.
//! #[derive(Debug, Clone, Default, Serialize, Deserialize)]
//! #[serde(default)]
//! pub struct Greet { pub name: String }
//! #[derive(Debug, Clone, Default, Serialize, Deserialize)]
//! #[serde(default)]
//! pub struct Greeting { pub text: String }
//! impl nano::Request for Greet {
//!     type Response = Greeting;
//!     const NAME: &'static str = "greeter.Greet";
//! }
//!
//! // A service that depends on another one, mocked here with a closure.
//! #[derive(Default)]
//! struct Greeter { names: Option<Client> }
//!
//! impl Service for Greeter {
//!     fn name(&self) -> &str { "greeter" }
//!
//!     fn init(&mut self, deps: &mut Dependencies<'_>) -> Result<(), NanoError> {
//!         self.names = Some(deps.client("names")?);
//!         Ok(())
//!     }
//!
//!     async fn handle(&self, ctx: Ctx, req: AnyRequest) -> Outcome {
//!         let names = self.names.as_ref().expect("resolved in init");
//!         nano::dispatch!(req, {
//!             Greet => |r| {
//!                 let name = names.call(&ctx, r).await?;
//!                 Ok(Greeting { text: format!("hello {}", name.text) })
//!             },
//!         })
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), NanoError> {
//! let names = nano::request_fn("names", |_ctx, r: Greet| async move {
//!     Ok(Greeting { text: r.name.to_uppercase() })
//! });
//! let set = ServiceSet::builder().service(Greeter::default()).service(names).build()?;
//! let greeter = set.client("test", "greeter")?;
//! let reply = greeter.call(&Ctx::new(), Greet { name: "ada".into() }).await?;
//! assert_eq!(reply.text, "hello ADA");
//! # Ok(())
//! # }
//! ```
//!
//! | module content | what it is for |
//! |---|---|
//! | [`Service`], [`service_fn`], [`request_fn`], [`dispatch!`] | writing services and one-line mocks |
//! | [`Request`], [`AnyRequest`], [`AnyResponse`], [`RequestType`] | typed pairs and their erased envelopes |
//! | [`ServiceSet`], [`Client`], [`ClientHook`] | composing services and calling them |
//! | [`Ctx`], [`RequestId`], [`Cancellation`] | what a handler knows about its request |
//! | [`NanoError`], [`codes`], [`ErrorBody`] | errors, their codes and their wire form |
//! | [`Listener`], [`serve`] | running a server with graceful shutdown |

mod client;
mod ctx;
mod error;
mod message;
mod serve;
mod service;
mod set;

pub use client::Client;
pub use ctx::{Cancellation, Ctx, Edge, RequestId};
pub use error::{CHAIN_SEPARATOR, ErrorBody, NanoError, codes};
pub use message::{AnyRequest, AnyResponse, Message, Request, RequestType};
pub use serve::{
    BoxListener, Listener, Shutdown, ShutdownTrigger, serve, serve_until, shutdown_signal,
};
pub use service::{
    BoxFuture, Outcome, RequestFn, Service, ServiceFn, SharedService, request_fn, service_fn,
};
pub use set::{ClientHook, Dependencies, ServiceSet, ServiceSetBuilder};
