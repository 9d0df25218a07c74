//! `svc3`: answers `Req { param }` by asking svc4 with the same param and prefixing `"svc3_"`.

use nano::{Client, Ctx, NanoError, NewService};

use crate::api::{svc3, svc4};

/// The `svc3` service; depends on svc4.
#[derive(Debug)]
pub struct Svc3 {
    svc4: Client,
}

impl svc3::Handler for Svc3 {
    async fn req(&self, ctx: &Ctx, req: svc3::Req) -> Result<svc3::Resp, NanoError> {
        let resp = self
            .svc4
            .call(ctx, svc4::Req { param: req.param })
            .await
            .map_err(|err| NanoError::wrap(err, "svc4 failure"))?;
        Ok(svc3::Resp {
            value: format!("svc3_{}", resp.value),
        })
    }
}

/// `svc3`, built with its client of svc4 when the set is built.
pub fn service() -> NewService {
    svc3::service(|deps| {
        Ok(Svc3 {
            svc4: deps.client(svc4::NAME)?,
        })
    })
}
