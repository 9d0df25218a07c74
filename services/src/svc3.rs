//! `svc3`: answers `Req { param }` by asking svc4 with the same param and prefixing `"svc3_"`.

use nano::{AnyRequest, Client, Ctx, Dependencies, NanoError, Outcome, Service};

use crate::api::{svc3, svc4};

/// The `svc3` service; depends on svc4.
#[derive(Debug, Default)]
pub struct Svc3 {
    svc4: Option<Client>,
}

impl Svc3 {
    /// A new `svc3`; its svc4 client is resolved when the set is built.
    pub fn new() -> Self {
        Self::default()
    }

    async fn handle_req(&self, ctx: &Ctx, req: svc3::Req) -> Result<svc3::Resp, NanoError> {
        let svc4 = self.svc4.as_ref().ok_or_else(crate::not_initialised)?;
        let resp = svc4
            .call(ctx, svc4::Req { param: req.param })
            .await
            .map_err(|err| NanoError::wrap(err, "svc4 failure"))?;
        Ok(svc3::Resp {
            value: format!("svc3_{}", resp.value),
        })
    }
}

impl Service for Svc3 {
    fn name(&self) -> &str {
        svc3::NAME
    }

    fn init(&mut self, deps: &mut Dependencies<'_>) -> Result<(), NanoError> {
        self.svc4 = Some(deps.client(svc4::NAME)?);
        Ok(())
    }

    async fn handle(&self, ctx: Ctx, req: AnyRequest) -> Outcome {
        nano::dispatch!(req, {
            svc3::Req => |r| self.handle_req(&ctx, r).await,
        })
    }
}
