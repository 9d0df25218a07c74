#![doc = include_str!("../README.md")]

// One path per public item. The everyday types (sets, mocks, specs, snapshots, closures,
// fidelity, deployments and parity checks) live at the root and their modules are private. The namespaces of the three subsystems and of the
// error codes stay public, and their items are reachable through them only: `codes`,
// `property`, `scenario`, `sim`, `deploy` and `runner`.
mod closures;
pub mod codes;
mod deep;
#[cfg(feature = "http")]
pub mod deploy;
mod fidelity;
mod mock;
mod parity;
#[cfg(feature = "property")]
pub mod property;
#[cfg(feature = "runner")]
pub mod runner;
pub mod scenario;
mod set;
#[cfg(feature = "sim")]
pub mod sim;
#[cfg(feature = "snapshot")]
mod snapshot;
mod spec;

pub use closures::{RequestFn, ServiceFn, request_fn, service_fn};
pub use fidelity::TransportFidelity;
pub use mock::{Expectation, Mock, MockCall, MockService, Sequence, Times, VerificationError};
pub use nano_record::{
    CallNode, CallOutcome, CallRecord, CallRecorder, DEFAULT_RECORD_MAX_BYTES,
    DEFAULT_RECORD_QUEUE, DirectoryRecorder, Fragment, FragmentError, Json, RecordLimits,
    join_fragments, read_fragments, read_fragments_of,
};
pub use parity::{
    Delivery, Deployment, ParityCase, ParityCheck, ParityDifference, ParityError, ParityReport,
};
pub use set::{DEFAULT_CALLER, TestSet, TestSetBuilder};
#[cfg(feature = "snapshot")]
pub use snapshot::{Snapshot, ToSnapshot};
pub use spec::{
    Action, Matcher, Mismatch, MismatchKind, Mismatches, PathPattern, Rule, Segment, Spec, Target,
};

/// The snapshot library the [`snapshot!`] macros use, for its settings and review flow.
#[cfg(feature = "snapshot")]
pub use insta;
/// The HTTP transport [`Deployment::http`] serves and calls services with, for its
/// [`Endpoint`](nano_http::Endpoint) tables.
#[cfg(feature = "http")]
pub use nano_http;
/// The NATS transport the deployments of NATS layouts call services with, for
/// [`deploy::RunningLayout::nats`] and [`Deployment::remote_nats`].
#[cfg(feature = "nats")]
pub use nano_nats;
/// The property-testing library of [`property`], for strategies and `prop_assert!`.
#[cfg(feature = "property")]
pub use proptest;

#[doc(hidden)]
pub mod __private {
    pub use nano;

    #[cfg(feature = "snapshot")]
    pub use crate::snapshot::probe as snapshot_probe;
}

/// Compiles and runs the examples of the project's front page as doctests, so it cannot rot
/// (this crate is the one that sees every example's dependencies).
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
mod project_readme {}
