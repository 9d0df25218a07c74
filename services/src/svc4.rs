//! `svc4`: answers `Req { param }` with `"svc4_" + param`. It has no dependencies.

use nano::{AnyRequest, Ctx, Outcome, Service};

use crate::api::svc4::{NAME, Req, Resp};

/// The `svc4` service.
#[derive(Debug, Default, Clone, Copy)]
pub struct Svc4;

impl Svc4 {
    /// A new `svc4`.
    pub fn new() -> Self {
        Svc4
    }
}

impl Service for Svc4 {
    fn name(&self) -> &str {
        NAME
    }

    async fn handle(&self, _ctx: Ctx, req: AnyRequest) -> Outcome {
        nano::dispatch!(req, {
            Req => |r| Ok(Resp { value: format!("svc4_{}", r.param) }),
        })
    }
}
