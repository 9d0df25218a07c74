//! nano-nats against a real `nats-server` that each test starts on its own loopback port.

mod broker;
mod calls;
mod fidelity;
mod lifecycle;
mod support;
