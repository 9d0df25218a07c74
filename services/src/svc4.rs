//! `svc4`: answers `Req { param }` with `"svc4_" + param`. It has no dependencies.

use nano::{Ctx, NanoError, NewService};

use crate::api::svc4::{self, Req, Resp};

/// The `svc4` service.
#[derive(Debug, Default, Clone, Copy)]
pub struct Svc4;

impl svc4::Handler for Svc4 {
    async fn req(&self, _ctx: &Ctx, req: Req) -> Result<Resp, NanoError> {
        Ok(Resp {
            value: format!("svc4_{}", req.param),
        })
    }
}

/// `svc4`, ready to add to a set.
pub fn service() -> NewService {
    svc4::service(|_| Ok(Svc4))
}
