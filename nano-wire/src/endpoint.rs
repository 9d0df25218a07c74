//! [`Endpoint`]: how one request type of a service travels over HTTP.

use std::any::TypeId;
use std::borrow::Cow;
use std::fmt;

use http::Method;
use nano::{Api, NanoError, Request, RequestType, codes};

/// One HTTP endpoint of a service: method, path, whether the request travels as a JSON body,
/// the request type, and whether there is a response body.
///
/// Each service declares its endpoints once, next to its API types; the listener serves them and
/// the client calls them, so both sides agree by construction. The URL of an endpoint is
/// `/<service><path>`, e.g. `POST /svc2/`.
///
/// A request type whose response type is `()` has no response body: the server answers `200` with
/// an empty body. An endpoint without a request body (e.g. a `GET`) is only for a request type
/// without fields (`struct GetReq {}`), because nothing of a request travels but its type:
/// declaring one for a type with fields is refused when the table, the listener or the client is
/// built ([`validate`](Endpoint::validate)).
///
/// ```
/// use nano_wire::{Endpoint, Method};
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Debug, Clone, Default, Serialize, Deserialize)] #[serde(default)] pub struct Req { pub param: String }
/// # #[derive(Debug, Clone, Default, Serialize, Deserialize)] pub struct GetReq {}
/// # #[derive(Debug, Clone, Default, Serialize, Deserialize)] pub struct Resp { pub value: String }
/// # impl nano::Request for Req { type Response = Resp; const NAME: &'static str = "svc2.Req"; }
/// # impl nano::Request for GetReq { type Response = Resp; const NAME: &'static str = "svc2.GetReq"; }
///
/// pub fn endpoints() -> Vec<Endpoint> {
///     vec![Endpoint::post::<Req>("/"), Endpoint::get::<GetReq>("/")]
/// }
///
/// let get = &endpoints()[1];
/// assert_eq!(get.method(), Method::GET);
/// assert!(!get.has_body());
/// assert_eq!(get.request_type().name(), "svc2.GetReq");
/// ```
#[derive(Clone)]
pub struct Endpoint {
    method: Method,
    path: Cow<'static, str>,
    body: bool,
    request: &'static RequestType,
    response: bool,
}

impl Endpoint {
    /// An endpoint for request type `R`. The request travels as a JSON body unless the method is
    /// `GET`, `HEAD`, `DELETE` or `OPTIONS`; [`with_body`](Endpoint::with_body) overrides that.
    pub fn new<R: Request>(method: Method, path: impl Into<Cow<'static, str>>) -> Self {
        let body = !matches!(
            method,
            Method::GET | Method::HEAD | Method::DELETE | Method::OPTIONS
        );
        Endpoint {
            method,
            path: path.into(),
            body,
            request: RequestType::of::<R>(),
            response: TypeId::of::<R::Response>() != TypeId::of::<()>(),
        }
    }

    /// The endpoint table of a declared API: one endpoint per operation that has a route, in
    /// declaration order. This is the table `nano_http::HttpListener::expose_api`
    /// serves and `nano_http::HttpTransport::api_client` calls.
    ///
    /// # Errors
    ///
    /// `S-INIT-FAILED` when a route's method is not an HTTP method or its path does not start
    /// with `/`, or a request type with fields is declared without a body.
    pub fn table(api: &Api) -> Result<Vec<Endpoint>, NanoError> {
        let mut table = Vec::new();
        for op in api.operations() {
            let Some(route) = op.route() else { continue };
            // Methods are case-sensitive; a lower-case one would be an extension method that no
            // client sends, so it is refused as the typo it almost certainly is.
            let method = Method::from_bytes(route.method.as_bytes())
                .ok()
                .filter(|_| route.method.bytes().all(|b| b.is_ascii_uppercase()))
                .ok_or_else(|| {
                    NanoError::new(
                        codes::INIT_FAILED,
                        format!(
                            "{} of service {:?} is declared with {:?}, which is not an upper-case HTTP method",
                            op.request_type().name(),
                            api.name(),
                            route.method
                        ),
                    )
                })?;
            let endpoint = Endpoint {
                body: !matches!(
                    method,
                    Method::GET | Method::HEAD | Method::DELETE | Method::OPTIONS
                ),
                method,
                path: Cow::Borrowed(route.path),
                request: op.request_type(),
                // `()` answers have no body; type names compare equal within one build.
                response: op.request_type().response_rust_name() != std::any::type_name::<()>(),
            };
            endpoint.validate(api.name())?;
            table.push(endpoint);
        }
        Ok(table)
    }

    /// `POST <path>` with the request as a JSON body.
    pub fn post<R: Request>(path: impl Into<Cow<'static, str>>) -> Self {
        Self::new::<R>(Method::POST, path)
    }

    /// `GET <path>` without a body.
    pub fn get<R: Request>(path: impl Into<Cow<'static, str>>) -> Self {
        Self::new::<R>(Method::GET, path)
    }

    /// Sets whether the request travels as a JSON body.
    #[must_use]
    pub fn with_body(mut self, body: bool) -> Self {
        self.body = body;
        self
    }

    /// The HTTP method.
    pub fn method(&self) -> Method {
        self.method.clone()
    }

    /// The path below the service's prefix, starting with `/`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Whether the request travels as a JSON body.
    pub fn has_body(&self) -> bool {
        self.body
    }

    /// Whether a successful response carries a JSON body (the response type is not `()`).
    pub fn has_response(&self) -> bool {
        self.response
    }

    /// The request type this endpoint carries.
    pub fn request_type(&self) -> &'static RequestType {
        self.request
    }

    /// The full URL path of this endpoint of `service`: `/<service><path>`.
    pub fn url_path(&self, service: &str) -> String {
        format!("/{service}{}", self.path)
    }

    /// The endpoint assumed for a request type when no table is known (the transport-fidelity
    /// hook for a callee without a declared API): `POST /` with a body, and a response body
    /// unless the response type is `()`.
    pub fn assumed(request: &'static RequestType) -> Self {
        Endpoint {
            method: Method::POST,
            path: Cow::Borrowed("/"),
            body: true,
            request,
            response: request.response_rust_name() != std::any::type_name::<()>(),
        }
    }

    /// Checks what can be checked before serving: the path is absolute, and an endpoint without
    /// a body carries a request type without fields (otherwise its fields would be lost on the
    /// way, silently).
    ///
    /// # Errors
    ///
    /// `S-INIT-FAILED` naming the endpoint, the service and the problem.
    pub fn validate(&self, service: &str) -> Result<(), NanoError> {
        let invalid = |msg: String| NanoError::new(codes::INIT_FAILED, msg);
        if !self.path.starts_with('/') {
            return Err(invalid(format!(
                "endpoint {} {:?} of service {service:?} must start with '/'",
                self.method, self.path
            )));
        }
        if !self.body {
            self.request.decode_request(b"").map_err(|err| {
                invalid(format!(
                    "endpoint {} {} of service {service:?} has no request body, so {} must have no fields (declare it with a body, e.g. POST, or without fields): {err}",
                    self.method,
                    self.url_path(service),
                    self.request.name()
                ))
            })?;
        }
        Ok(())
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("body", &self.body)
            .field("request", &self.request.name())
            .field("response", &self.response)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Clone, Serialize, Deserialize)]
    struct Strict {
        id: u64,
    }
    impl Request for Strict {
        type Response = ();
        const NAME: &'static str = "test.Strict";
    }

    #[test]
    fn body_follows_the_method_unless_overridden() {
        assert!(Endpoint::post::<Strict>("/").has_body());
        assert!(!Endpoint::new::<Strict>(Method::DELETE, "/").has_body());
        assert!(
            Endpoint::new::<Strict>(Method::DELETE, "/")
                .with_body(true)
                .has_body()
        );
        assert!(!Endpoint::post::<Strict>("/").has_response());
    }

    #[derive(Debug, Clone, Default, Serialize, Deserialize)]
    #[serde(default)]
    struct Lookup {
        key: String,
    }
    impl Request for Lookup {
        type Response = ();
        const NAME: &'static str = "test.Lookup";
    }

    #[derive(Debug, Clone, Default, Serialize, Deserialize)]
    struct List {}
    impl Request for List {
        type Response = ();
        const NAME: &'static str = "test.List";
    }

    #[test]
    fn a_body_less_endpoint_is_only_for_a_type_without_fields() {
        // Even with defaults for every field: the fields would not travel.
        let err = Endpoint::get::<Lookup>("/").validate("svc").unwrap_err();
        assert_eq!(err.code(), codes::INIT_FAILED);
        assert!(
            err.to_string().contains("test.Lookup must have no fields"),
            "{err}"
        );
        assert!(Endpoint::get::<List>("/").validate("svc").is_ok());
        assert!(Endpoint::post::<Lookup>("/").validate("svc").is_ok());
    }

    #[test]
    fn declarations_that_cannot_work_are_rejected() {
        let err = Endpoint::post::<Strict>("x").validate("svc").unwrap_err();
        assert_eq!(err.code(), codes::INIT_FAILED);
        assert!(err.to_string().contains("must start with '/'"), "{err}");
        let err = Endpoint::get::<Strict>("/").validate("svc").unwrap_err();
        assert!(err.to_string().contains("test.Strict"), "{err}");
        assert!(Endpoint::post::<Strict>("/").validate("svc").is_ok());
    }
}
