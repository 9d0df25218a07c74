//! API of `svc2`: `Req { param }` → `Resp { value }` and `GetReq {}` → `GetResp { value }`.

use super::string_message;

/// The service name `svc2` is registered under.
pub const NAME: &str = "svc2";

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
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct GetReq {}

string_message! {
    /// The answer to [`GetReq`].
    GetResp {
        /// `"svc2_"` followed by svc3's value.
        value
    }
}

impl nano::Request for Req {
    type Response = Resp;
    const NAME: &'static str = "svc2.Req";
}

impl nano::Request for GetReq {
    type Response = GetResp;
    const NAME: &'static str = "svc2.GetReq";
}

/// The HTTP endpoints of `svc2`: `POST /svc2/` with a [`Req`] body, and `GET /svc2/` (no body)
/// for [`GetReq`].
pub fn endpoints() -> Vec<nano_http::Endpoint> {
    vec![
        nano_http::Endpoint::post::<Req>("/"),
        nano_http::Endpoint::get::<GetReq>("/"),
    ]
}
