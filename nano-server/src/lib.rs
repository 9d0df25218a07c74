//! Running nano services as a server process, and describing a whole system of them.
//!
//! A [`Listener`] is the server side of a transport (HTTP, NATS); this crate defines it and runs
//! listeners:
//! [`serve`] until SIGINT or SIGTERM (or [`serve_until`] any future) with graceful shutdown, and
//! [`TracingHook`], the client hook that opens one tracing span per call, which servers install
//! so that every log line of a request carries its request id, caller and service. [`System`]
//! describes a whole system: its services, its server executables and its layouts; the server
//! main, the test toolkit's deployments and the scenario runner read it. A [`Setting`] is a
//! configuration value of the system's own (a database path, a secret) that its server
//! executables take as a flag or an environment variable.
//!
//! ```no_run
//! # async fn run(http: impl nano_server::Listener) -> Result<(), nano::NanoError> {
//! use nano::ServiceSet;
//! use nano_server::Listener;
//!
//! let set = ServiceSet::builder().hook(nano_server::TracingHook).build()?;
//! nano_server::serve(set, vec![http.boxed()]).await
//! # }
//! ```

mod callers;
mod cancel;
mod listener;
mod ready;
mod serve;
mod setting;
mod system;
mod tracing_hook;

pub use callers::{CallerClients, MAX_KEPT_CALLERS};
pub use cancel::CancelOnDrop;
pub use listener::{BoxListener, Listener, Shutdown, ShutdownTrigger};
pub use ready::{READY_PREFIX, parse_ready_line, ready_line};
pub use serve::{serve, serve_until, shutdown_signal};
pub use setting::{Setting, set_given_settings};
pub use system::{Layout, PlannedServer, ServerSpec, System, Transport};
pub use tracing_hook::TracingHook;
