//! API of `svc4`: `Req { param }` answered with `Resp { value }`.

use super::string_message;

string_message! {
    /// The one request `svc4` handles.
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

nano::api! {
    /// `svc4`: prefixes its input with `"svc4_"`.
    service "svc4", schemas = schemars;
    /// Computes the value for `param`: `POST /svc4/` with a [`Req`] body.
    fn req(Req) -> Resp = "svc4.Req", POST "/";
}
