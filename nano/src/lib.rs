//! A transport-agnostic, testing-friendly microservice framework.
//!
//! A [`Service`] is a name and one async handler. Services call each other through [`Client`]s
//! that a [`ServiceSet`] hands out; a client reaches its callee in-process or through a transport
//! (a "fake service" standing in for a remote one), and the calling service cannot tell which. The
//! same services therefore run in a plain `cargo test`, in one server executable, or split across
//! many, without a line of service code changing.
//!
//! A service's API is declared once with [`api!`]: its name and, per request type, the response
//! type, a stable wire name and an HTTP route. That declaration gives the typed calls
//! (`client.call(&ctx, req)` returns the declared response type), a handler trait with one
//! method per request (a missing handler is a compile error), the endpoint table transports use
//! and the request types recordings decode. Services are built from the clients of their
//! dependencies when the set is built, so handlers use plain [`Client`] fields. Underneath,
//! requests travel as type-erased [`AnyRequest`]s, which is what transports, hooks and mocks
//! work with.
//!
//! ```
//! use nano::{Client, Ctx, NanoError, ServiceSet};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, Clone, Default, Serialize, Deserialize)]
//! #[serde(default)]
//! pub struct Greet { pub name: String }
//! #[derive(Debug, Clone, Default, Serialize, Deserialize)]
//! #[serde(default)]
//! pub struct Greeting { pub text: String }
//! #[derive(Debug, Clone, Default, Serialize, Deserialize)]
//! #[serde(default)]
//! pub struct Lookup { pub id: String }
//!
//! mod greeter {
//!     nano::api! {
//!         service "greeter";
//!         fn greet(super::Greet) -> super::Greeting = "greeter.Greet", POST "/";
//!     }
//! }
//! mod names {
//!     nano::api! {
//!         service "names";
//!         fn lookup(super::Lookup) -> super::Greeting = "names.Lookup";
//!     }
//! }
//!
//! struct Greeter { names: Client }
//! impl greeter::Handler for Greeter {
//!     async fn greet(&self, ctx: &Ctx, req: Greet) -> Result<Greeting, NanoError> {
//!         let name = self.names.call(ctx, Lookup { id: req.name }).await?;
//!         Ok(Greeting { text: format!("hello {}", name.text) })
//!     }
//! }
//!
//! struct Names;
//! impl names::Handler for Names {
//!     async fn lookup(&self, _ctx: &Ctx, req: Lookup) -> Result<Greeting, NanoError> {
//!         Ok(Greeting { text: req.id.to_uppercase() })
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), NanoError> {
//! let set = ServiceSet::builder()
//!     .service(greeter::service(|deps| Ok(Greeter { names: deps.client(names::NAME)? })))
//!     .service(names::service(|_| Ok(Names)))
//!     .build()?;
//! let greeter = set.client("test", greeter::NAME)?;
//! let reply = greeter.call(&Ctx::new(), Greet { name: "ada".into() }).await?;
//! assert_eq!(reply.text, "hello ADA");
//! # Ok(())
//! # }
//! ```
//!
//! | module content | what it is for |
//! |---|---|
//! | [`api!`], [`Api`], [`Operation`], [`Route`] | declaring a service's API once |
//! | [`Service`], [`NewService`], [`dispatch!`] | writing services (closure services and mocks are in `nano-test`) |
//! | [`Request`], [`AnyRequest`], [`AnyResponse`], [`RequestType`] | typed pairs and their erased envelopes |
//! | [`ServiceSet`], [`Client`], [`ClientHook`], [`Dependencies`] | composing services and calling them |
//! | [`Ctx`], [`RequestId`], [`Cancellation`] | what a handler knows about its request |
//! | [`NanoError`], [`codes`], [`ErrorBody`] | errors, their codes and their wire form |
//!
//! Running services as a server (listeners, signals, graceful shutdown, per-call tracing spans)
//! is `nano-server`'s job; transports are `nano-http` and their own crates.

mod api;
mod client;
mod ctx;
mod error;
mod message;
mod service;
mod set;

pub use api::{Api, Operation, Route, SchemaFn};
pub use client::{Client, Reply, TypedCall};
pub use ctx::{Cancellation, Ctx, Edge, RequestId};
pub use error::{CHAIN_SEPARATOR, ErrorBody, NanoError, codes};
pub use message::{AnyRequest, AnyResponse, Message, Request, RequestType};
pub use nano_macros::{api, dispatch};
pub use service::{BoxFuture, Outcome, Service, SharedService, Typed};
pub use set::{ClientHook, Dependencies, NewService, ServiceSet, ServiceSetBuilder};
