//! `svc1`: answers `Req { param }` with `"svc1_" + param`. It has no dependencies.

use nano::{AnyRequest, Ctx, Outcome, Service};

use crate::api::svc1::{NAME, Req, Resp};

/// The `svc1` service.
#[derive(Debug, Default, Clone, Copy)]
pub struct Svc1;

impl Svc1 {
    /// A new `svc1`.
    pub fn new() -> Self {
        Svc1
    }
}

impl Service for Svc1 {
    fn name(&self) -> &str {
        NAME
    }

    async fn handle(&self, _ctx: Ctx, req: AnyRequest) -> Outcome {
        nano::dispatch!(req, {
            Req => |r| Ok(Resp { value: format!("svc1_{}", r.param) }),
        })
    }
}
