//! [`TracingHook`]: one tracing span per call.

use nano::{AnyRequest, BoxFuture, ClientHook, Ctx, Edge, Outcome, Service, SharedService};
use tracing::Instrument;

/// A [`ClientHook`] that runs every call in an `info` span named `nano.handle` (target
/// `nano::call`, so a log filter can leave it out: `RUST_LOG=info,nano::call=warn`) with the fields
/// `service`, `caller`, `request` (the wire name) and `req_id`, so every event a handler logs
/// says which request it belongs to.
///
/// Install it first (outermost) so the span covers the other hooks too.
#[derive(Debug, Clone, Copy, Default)]
pub struct TracingHook;

impl ClientHook for TracingHook {
    fn wrap(&self, edge: &Edge, next: SharedService) -> SharedService {
        SharedService::new(Traced {
            name: edge.callee().to_owned(),
            next,
        })
    }
}

/// The service a [`TracingHook`] puts in front of a callee.
struct Traced {
    name: String,
    next: SharedService,
}

impl Service for Traced {
    fn name(&self) -> &str {
        &self.name
    }

    fn handle(&self, ctx: Ctx, req: AnyRequest) -> impl Future<Output = Outcome> + Send {
        let span = tracing::info_span!(
            target: "nano::call",
            "nano.handle",
            service = ctx.service().unwrap_or_default(),
            caller = ctx.caller().unwrap_or_default(),
            request = req.name(),
            req_id = %ctx.request_id(),
        );
        let handled: BoxFuture<'_, Outcome> = self.next.handle(ctx, req);
        handled.instrument(span)
    }
}
