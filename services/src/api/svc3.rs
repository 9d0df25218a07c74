//! API of `svc3`: `Req { param }` answered with `Resp { value }`.

use super::string_message;

/// The service name `svc3` is registered under.
pub const NAME: &str = "svc3";

string_message! {
    /// The one request `svc3` handles.
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
    const NAME: &'static str = "svc3.Req";
}

/// The HTTP endpoints of `svc3`: `POST /svc3/` with a [`Req`] body.
pub fn endpoints() -> Vec<nano_http::Endpoint> {
    vec![nano_http::Endpoint::post::<Req>("/")]
}
