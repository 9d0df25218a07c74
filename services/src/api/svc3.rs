//! API of `svc3`: `Req { param }` answered with `Resp { value }`.

use super::string_message;

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

nano::api! {
    /// `svc3`: prefixes its input with `"svc3_"` after asking svc4.
    service "svc3", schemas = schemars;
    /// Computes the value for `param`: `POST /svc3/` with a [`Req`] body.
    fn req(Req) -> Resp = "svc3.Req", POST "/";
}
