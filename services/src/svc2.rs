//! `svc2`: the service the example cluster exposes. `Req` goes through svc1, `GetReq` through
//! svc3; a failed dependency is wrapped with a message naming it ("svc1 failure").

use nano::{AnyRequest, Client, Ctx, Dependencies, NanoError, Outcome, Service};

use crate::api::{svc1, svc2, svc3};

/// The `svc2` service; depends on svc1 and svc3.
#[derive(Debug, Default)]
pub struct Svc2 {
    deps: Option<Deps>,
}

#[derive(Debug)]
struct Deps {
    svc1: Client,
    svc3: Client,
}

impl Svc2 {
    /// A new `svc2`; its clients are resolved when the set is built.
    pub fn new() -> Self {
        Self::default()
    }

    fn deps(&self) -> Result<&Deps, NanoError> {
        self.deps.as_ref().ok_or_else(crate::not_initialised)
    }

    async fn handle_req(&self, ctx: &Ctx, req: svc2::Req) -> Result<svc2::Resp, NanoError> {
        let resp = self
            .deps()?
            .svc1
            .call(ctx, svc1::Req { param: req.param })
            .await
            .map_err(|err| NanoError::wrap(err, "svc1 failure"))?;
        Ok(svc2::Resp {
            value: format!("svc2_{}", resp.value),
        })
    }

    async fn handle_get_req(&self, ctx: &Ctx) -> Result<svc2::GetResp, NanoError> {
        let param = "getparam".to_owned();
        let resp = self
            .deps()?
            .svc3
            .call(ctx, svc3::Req { param })
            .await
            .map_err(|err| NanoError::wrap(err, "svc3 failure"))?;
        Ok(svc2::GetResp {
            value: format!("svc2_{}", resp.value),
        })
    }
}

impl Service for Svc2 {
    fn name(&self) -> &str {
        svc2::NAME
    }

    fn init(&mut self, deps: &mut Dependencies<'_>) -> Result<(), NanoError> {
        self.deps = Some(Deps {
            svc1: deps.client(svc1::NAME)?,
            svc3: deps.client(svc3::NAME)?,
        });
        Ok(())
    }

    async fn handle(&self, ctx: Ctx, req: AnyRequest) -> Outcome {
        nano::dispatch!(req, {
            svc2::Req => |r| self.handle_req(&ctx, r).await,
            svc2::GetReq => |_| self.handle_get_req(&ctx).await,
        })
    }
}
