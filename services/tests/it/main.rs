//! The article's workflow: step 1, business logic tested in-process with no servers (`test1`,
//! `test2`); step 3, the same services deployed as real server processes on loopback ports and
//! tested over HTTP (`deployed`, `graceful`, `deadline`) and over a NATS broker with replicas
//! (`nats`).

mod deadline;
mod deployed;
mod graceful;
mod hardening;
mod nats;
mod recording;
mod support;
mod test1;
mod test2;
