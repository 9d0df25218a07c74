//! Recording nano calls: a [`CallRecorder`] hook on a [`ServiceSet`](nano::ServiceSet) records
//! every call made through the set's clients as a tree of [`CallNode`]s (who called whom with
//! what, and how each call ended); on a server, a [`DirectoryRecorder`] writes each finished tree
//! as a [`Fragment`] to segment files in a directory, off the request path and under a size cap,
//! and [`read_fragments_of`] and [`join_fragments`] put the fragments several processes recorded
//! for one request back together into one tree.
//!
//! Every tree has its secrets redacted: the values of fields such as `password`, `token` or
//! `api_key` become `"[redacted]"` ([`Redaction`]), unless a test opts in with
//! [`CallRecorder::with_redaction`]`(Redaction::keep_secrets())`.
//!
//! This crate is what servers need to record (`--record`) without depending on the testing
//! toolkit; `nano-test` builds scenario files, comparisons and replays on the same model.
//!
//! ```
//! use nano::{Ctx, NanoError, ServiceSet};
//! use nano_record::{CallOutcome, DirectoryRecorder, join_fragments, read_fragments};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, Clone, Default, Serialize, Deserialize)]
//! pub struct Greet { pub name: String }
//! #[derive(Debug, Clone, Default, Serialize, Deserialize)]
//! pub struct Greeting { pub text: String }
//!
//! mod greeter {
//!     nano::api! {
//!         service "greeter";
//!         fn greet(super::Greet) -> super::Greeting = "greeter.Greet";
//!     }
//! }
//! struct Greeter;
//! impl greeter::Handler for Greeter {
//!     async fn greet(&self, _ctx: &Ctx, req: Greet) -> Result<Greeting, NanoError> {
//!         Ok(Greeting { text: format!("hello {}", req.name) })
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = std::env::temp_dir().join(format!("nano-record-doc-{}", std::process::id()));
//! # let _ = std::fs::remove_dir_all(&dir);
//! let recorder = DirectoryRecorder::new(&dir, "server1")?;
//! let set = ServiceSet::builder()
//!     .service(greeter::service(|_| Ok(Greeter)))
//!     .hook(recorder.clone())
//!     .build()?;
//! set.client("test", greeter::NAME)?.call(&Ctx::new(), Greet { name: "ada".into() }).await?;
//! recorder.flush();
//!
//! let trees = join_fragments(read_fragments(&dir)?);
//! assert_eq!(trees.len(), 1);
//! assert_eq!(trees[0].request, "greeter.Greet");
//! assert_eq!(trees[0].outcome, CallOutcome::Response(serde_json::json!({"text": "hello ada"}).into()));
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok(())
//! # }
//! ```
//!
//! | item | what it is for |
//! |---|---|
//! | [`CallRecorder`], [`CallRecord`] | recording the calls of a set, in memory, as flat records and as trees |
//! | [`CallNode`], [`CallOutcome`], [`FORMAT_VERSION`] | the call-tree model and its JSON form |
//! | [`Json`] | a recorded body, kept as its compact text |
//! | [`DirectoryRecorder`], [`RecordLimits`] | recording on servers: fragment files under a size cap |
//! | [`Fragment`], [`read_fragments`], [`read_fragments_of`], [`join_fragments`], [`FragmentError`] | reading a recording back and joining it by request id |

mod deep;
mod directory;
mod fragment;
mod json;
mod recorder;
mod redact;
mod tree;

pub use directory::{
    DEFAULT_RECORD_MAX_BYTES, DEFAULT_RECORD_QUEUE, DirectoryRecorder, RecordLimits,
};
pub use fragment::{Fragment, FragmentError, join_fragments, read_fragments, read_fragments_of};
pub use json::Json;
pub use recorder::{CallRecord, CallRecorder};
pub use redact::{REDACTED, Redaction, SECRET_FIELDS};
pub use tree::{CallNode, CallOutcome, FORMAT_VERSION};

#[cfg(test)]
mod tests {
    #[test]
    fn public_types_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<crate::CallRecorder>();
        check::<crate::CallRecord>();
        check::<crate::CallNode>();
        check::<crate::CallOutcome>();
        check::<crate::DirectoryRecorder>();
        check::<crate::Fragment>();
        check::<crate::FragmentError>();
    }
}
