//! `svc1`: answers `Req { param }` with `"svc1_" + param`. It has no dependencies.

use nano::{Ctx, NanoError, NewService};

use crate::api::svc1::{self, Req, Resp};

/// The `svc1` service.
#[derive(Debug, Default, Clone, Copy)]
pub struct Svc1;

impl svc1::Handler for Svc1 {
    async fn req(&self, _ctx: &Ctx, req: Req) -> Result<Resp, NanoError> {
        Ok(Resp {
            value: format!("svc1_{}", req.param),
        })
    }
}

/// `svc1`, ready to add to a set.
pub fn service() -> NewService {
    svc1::service(|_| Ok(Svc1))
}
