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
//! use nano::ServiceSet;
//! use nano_test::CallRecorder;
//! use nano_test::scenario::{Registry, Scenario, replay_set};
//! use services::api::svc2;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Record one request...
//! let recorder = CallRecorder::new();
//! let set = services::all(ServiceSet::builder()).hook(recorder.clone()).build()?;
//! set.client("test", svc2::NAME)?.call(&nano::Ctx::new(), svc2::GetReq {}).await?;
//! let scenario = Scenario::new("svc2-get", recorder.last_tree().unwrap());
//!
//! // ...and replay it, comparing the whole call tree.
//! let registry = Registry::new().with_all(services::api::request_types());
//! replay_set(&scenario, &registry, services::all(ServiceSet::builder()), true).await?;
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
    replay_set, send_root,
};
