//! `svc2`: the service the example cluster exposes. `Req` goes through svc1, `GetReq` through
//! svc3; a failed dependency is wrapped with a message naming it ("svc1 failure").

use nano::{Client, Ctx, NanoError, NewService};

use crate::api::{svc1, svc2, svc3};

/// The `svc2` service; depends on svc1 and svc3.
#[derive(Debug)]
pub struct Svc2 {
    svc1: Client,
    svc3: Client,
}

impl Svc2 {
    /// svc2 calling svc1 and svc3 through these clients.
    pub fn new(svc1: Client, svc3: Client) -> Self {
        Svc2 { svc1, svc3 }
    }
}

impl svc2::Handler for Svc2 {
    async fn req(&self, ctx: &Ctx, req: svc2::Req) -> Result<svc2::Resp, NanoError> {
        let resp = self
            .svc1
            .call(ctx, svc1::Req { param: req.param })
            .await
            .map_err(|err| NanoError::wrap(err, "svc1 failure"))?;
        Ok(svc2::Resp {
            value: format!("svc2_{}", resp.value),
        })
    }

    async fn get_req(&self, ctx: &Ctx, _req: svc2::GetReq) -> Result<svc2::GetResp, NanoError> {
        let param = "getparam".to_owned();
        let resp = self
            .svc3
            .call(ctx, svc3::Req { param })
            .await
            .map_err(|err| NanoError::wrap(err, "svc3 failure"))?;
        Ok(svc2::GetResp {
            value: format!("svc2_{}", resp.value),
        })
    }
}

/// `svc2`, built with its clients of svc1 and svc3 when the set is built.
pub fn service() -> NewService {
    svc2::service(|deps| {
        Ok(Svc2::new(
            deps.client(svc1::NAME)?,
            deps.client(svc3::NAME)?,
        ))
    })
}
