//! Integration tests of the nano core through its public API.

mod api;
mod client;
mod set;
mod typed;

use nano::{AnyRequest, Ctx, Outcome, Request};
use serde::{Deserialize, Serialize};

/// A request whose handler reports what it saw of its context.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Probe {
    /// Where to forward the probe next, if anywhere.
    forward_to: Option<String>,
}

/// What each service along the chain saw, innermost first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Seen {
    hops: Vec<Hop>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Hop {
    request_id: String,
    caller: Option<String>,
    service: Option<String>,
    user: Option<String>,
}

impl Request for Probe {
    type Response = Seen;
    const NAME: &'static str = "test.Probe";
}

impl Hop {
    fn of(ctx: &Ctx) -> Hop {
        Hop {
            request_id: ctx.request_id().to_string(),
            caller: ctx.caller().map(str::to_owned),
            service: ctx.service().map(str::to_owned),
            user: ctx.metadata("user").map(str::to_owned),
        }
    }
}

/// A request that never gets an answer unless cancelled.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Hang;

impl Request for Hang {
    type Response = ();
    const NAME: &'static str = "test.Hang";
}

/// Answers `Hang` by waiting for the context to be done, and reports nothing.
async fn hang_forever(ctx: Ctx, req: AnyRequest) -> Outcome {
    nano::dispatch!(req, {
        Hang => |_| {
            ctx.done().await;
            std::future::pending::<()>().await;
            Ok(())
        },
    })
}
