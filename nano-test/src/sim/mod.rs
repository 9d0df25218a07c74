//! A deterministic, unreliable network for in-process tests.
//!
//! The simulator works at the level of service calls, not sockets: [`Network::hook`] is a
//! [`nano::ClientHook`] that stands between every caller and callee of a set and, following a
//! seeded [`FaultPlan`], delays requests and responses, loses requests (the caller sees
//! `S-UNAVAILABLE`, as from a real transport), cuts the network into partitions that can be healed
//! during a test, enforces transport timeouts (`S-TIMEOUT`) and injects scripted faults ("the 3rd
//! call to svc3 fails").
//!
//! It also injects the faults that break real systems, where a request's effects and what its
//! caller learns of them part ways:
//!
//! - a **lost response**: the callee handled the request and its effects happened, but the caller
//!   gets `S-UNAVAILABLE`, as from a connection that broke before the answer arrived;
//! - **duplicate delivery**: the callee handles the request twice, one copy after the other, as
//!   when a transport or client sends it again, and the caller gets the second answer;
//! - a **crash and restart** of a service the set runs through [`Network::restartable`]: every
//!   call in flight at it fails with `S-UNAVAILABLE`, its in-memory state is rebuilt from its
//!   constructor, and calls after the restart reach the new instance.
//!
//! What must hold whatever the network does can be stated as **named invariants**
//! ([`Simulation::invariant`]): async checks of what the body returns, run after every run and
//! reported by name with how often each held and broke ([`SimReport::invariants`]).
//!
//! Two types, two concepts. A [`Network`] is the simulated network of one run: the hook, its
//! partitions, its trace and fault counts; a test on a paused clock can make one directly. A
//! [`Simulation`] is the runner of a test body: it gives each run a fresh runtime on a paused
//! clock and a fresh `Network`, turns errors, panics and a virtual-time limit into failures, and
//! replays the body with fewer faults to shrink a failure. The body gets its run's `Network`.
//!
//! Everything runs on tokio's clock. On a paused clock (what [`Simulation`] sets up) a test with
//! thousands of calls at 200 ms of latency finishes in milliseconds of wall time, and the virtual
//! time it took is reported. Nothing on the simulated path reads the wall clock or an unseeded
//! random source, so the same seed gives the same [trace](Network::trace) of calls and outcomes.
//!
//! Every run counts the faults it injected by kind; a plan meant to inject faults that injected
//! none is reported (and fails [`Simulation::check`]), so a chaos test cannot pass by accident.
//! When a run breaks an invariant, [`Simulation::check`] shrinks the injected faults to a smallest
//! schedule that still breaks it and prints it with the seed; `NANO_SIM_SEED=<seed>` replays it.
//! Every fault kind, the new ones included, is drawn from the seed and is part of the schedule
//! that shrinking reduces and [`Network::replaying`] replays.

mod error;
pub(crate) mod invariant;
mod network;
mod plan;
mod restart;
mod run;
mod trace;

pub use error::{BoxError, SimError};
pub use network::Network;
pub use plan::{EdgeFaults, EdgeRule, Fault, FaultPlan, Latency, ScriptedFault};
pub use run::{SEED_ENV, ShrunkFailure, SimFailure, Simulation};
pub use trace::{
    CallKey, FaultCounts, InjectedFault, InvariantCount, ScheduledFault, SimReport, TraceEntry,
    TraceOutcome,
};
