//! Tests of the toolkit through its public API, on the example services.

#[path = "../common/calls.rs"]
mod calls;
mod calltree;
#[path = "../common/divergent.rs"]
mod divergent;
mod edge;
mod fidelity;
mod mocks;
mod parity;
mod properties;
mod scenario;
mod secrets;
mod snapshots;
mod spec;

use std::panic::AssertUnwindSafe;

/// Runs `f`, expecting it to panic, and returns the panic message.
fn panic_message(f: impl FnOnce()) -> String {
    // The closures under test only touch values they own or that die with the panic.
    let payload = std::panic::catch_unwind(AssertUnwindSafe(f)).expect_err("expected a panic");
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default()
}

/// Like [`panic_message`] for a future.
async fn panic_message_async(fut: impl std::future::Future<Output = ()>) -> String {
    use futures_util::FutureExt;
    let payload = AssertUnwindSafe(fut)
        .catch_unwind()
        .await
        .expect_err("expected a panic");
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default()
}
