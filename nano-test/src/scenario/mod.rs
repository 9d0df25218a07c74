//! Scenarios: recorded request trees replayed as regression tests, as mocks, and against live
//! deployments.
//!
//! A [`Scenario`] is one root request and every call it caused, with outcomes, stored as a
//! reviewable JSON file (`docs/scenario-format.md` documents the format for other languages).
//!
//! - **Record** in-process with a [`CallRecorder`](crate::CallRecorder) on the set and
//!   [`Scenario::new`]; on running servers with a [`DirectoryRecorder`](crate::DirectoryRecorder)
//!   hook per process and [`join_fragments`](crate::join_fragments).
//! - **Replay the whole set** with [`replay_set`]: the root request again, the outcome and
//!   optionally the call tree compared.
//! - **Replay one service in isolation** with [`replay_isolated`]: its dependencies answer from
//!   the recording ([`RecordedService`]), unexpected and missing calls are reported.
//! - **Replay against any deployment** (e.g. a cluster over HTTP) with [`replay_outcome`].
//!
//! Every comparison uses the scenario's [`Spec`](crate::Spec), and every difference is reported
//! as a field-level diff naming the scenario and the call.
//!
//! ```
//! use nano::{Ctx, ServiceSet};
//! use nano_test::CallRecorder;
//! use nano_test::scenario::{Registry, Scenario, replay_set};
//! # use serde::{Deserialize, Serialize};
//! # #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)] #[serde(default)]
//! # pub struct Greet { pub user: String }
//! # #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)] #[serde(default)]
//! # pub struct Greeting { pub text: String }
//! # #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)] #[serde(default)]
//! # pub struct Lookup { pub id: String }
//! # #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)] #[serde(default)]
//! # pub struct User { pub name: String }
//! # mod greeter { use super::*; nano::api! { service "greeter"; fn greet(Greet) -> Greeting = "greeter.Greet", POST "/"; } }
//! # mod users { use super::*; nano::api! { service "users"; fn lookup(Lookup) -> User = "users.Lookup", POST "/"; } }
//! # struct Greeter { users: nano::Client }
//! # impl greeter::Handler for Greeter {
//! #     async fn greet(&self, ctx: &nano::Ctx, req: Greet) -> Result<Greeting, nano::NanoError> {
//! #         let user = self.users.call(ctx, Lookup { id: req.user }).await?;
//! #         Ok(Greeting { text: format!("hello {}", user.name) })
//! #     }
//! # }
//! # fn greeter() -> nano::NewService {
//! #     greeter::service(|deps| Ok(Greeter { users: deps.client(users::NAME)? }))
//! # }
//! # fn users() -> nano::NewService {
//! #     nano_test::request_fn(users::NAME, |_ctx, r: Lookup| async move {
//! #         Ok(User { name: r.id.to_uppercase() })
//! #     }).into()
//! # }
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // `greeter()` and `users()` build two small services; `greeter` calls `users`.
//! let services = || ServiceSet::builder().service(greeter()).service(users());
//!
//! // Record one request...
//! let recorder = CallRecorder::new();
//! let set = services().hook(recorder.clone()).build()?;
//! set.client("test", greeter::NAME)?.call(&Ctx::new(), Greet { user: "u1".into() }).await?;
//! let scenario = Scenario::new("greet-u1", recorder.last_tree().unwrap());
//!
//! // ...and replay it, comparing the whole call tree.
//! let registry = Registry::from_apis(&[&greeter::API, &users::API])?;
//! replay_set(&scenario, &registry, services(), true).await?;
//! # Ok(()) }
//! ```

mod file;
mod registry;
mod replay;

pub use file::{FORMAT_VERSION, LoadedFile, Scenario, ScenarioError, load_dir};
pub use registry::Registry;
pub use replay::{
    OnMiss, REPLAY_TIMEOUT, RecordedService, ReplayFailure, ReplayProblem, Replayed, Unreachable,
    compare_outcome, compare_trees, replay_isolated, replay_isolated_with, replay_outcome,
    replay_set, replay_set_at_edge, send_root, send_root_at_edge,
};
