//! API of `svc1`: `Req { param }` answered with `Resp { value }`.

use super::string_message;

/// The service name `svc1` is registered under.
pub const NAME: &str = "svc1";

string_message! {
    /// The one request `svc1` handles.
    Req {
        /// Input echoed into the response.
        param
    }
}

string_message! {
    /// The answer to [`Req`].
    Resp {
        /// The computed value.
        value
    }
}

impl nano::Request for Req {
    type Response = Resp;
    const NAME: &'static str = "svc1.Req";
}

/// The HTTP endpoints of `svc1`: `POST /svc1/` with a [`Req`] body.
pub fn endpoints() -> Vec<nano_http::Endpoint> {
    vec![nano_http::Endpoint::post::<Req>("/")]
}
