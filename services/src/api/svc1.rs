//! API of `svc1`: `Req { param }` answered with `Resp { value }`.

use super::string_message;

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

nano::api! {
    /// `svc1`: prefixes its input with `"svc1_"`.
    service "svc1", schemas = schemars;
    /// Computes the value for `param`: `POST /svc1/` with a [`Req`] body.
    fn req(Req) -> Resp = "svc1.Req", POST "/";
}
