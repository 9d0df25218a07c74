//! API of `svc2`: `Req { param }` → `Resp { value }` and `GetReq {}` → `GetResp { value }`.

use super::string_message;

string_message! {
    /// Asks svc2 to transform `param` through svc1.
    Req {
        /// Input passed on to svc1.
        param
    }
}

string_message! {
    /// The answer to [`Req`].
    Resp {
        /// `"svc2_"` followed by svc1's value.
        value
    }
}

/// Asks svc2 for the value svc3 computes for `"getparam"`.
#[derive(
    Debug,
    Clone,
    Default,
    PartialEq,
    Eq,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
pub struct GetReq {}

string_message! {
    /// The answer to [`GetReq`].
    GetResp {
        /// `"svc2_"` followed by svc3's value.
        value
    }
}

nano::api! {
    /// `svc2`: the entry point of the example cluster; calls svc1 and svc3.
    service "svc2", schemas = schemars;
    /// Transforms `param` through svc1: `POST /svc2/` with a [`Req`] body.
    fn req(Req) -> Resp = "svc2.Req", POST "/";
    /// The value svc3 computes for `"getparam"`: `GET /svc2/`, no body.
    fn get_req(GetReq) -> GetResp = "svc2.GetReq", GET "/";
}
