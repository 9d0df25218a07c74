//! [`HttpTransport`] and [`HttpClient`]: the client side, a service that stands in for a remote
//! one.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use http::header::CONTENT_TYPE;
use http::{HeaderValue, Method};
use nano::{AnyRequest, AnyResponse, Ctx, NanoError, Outcome, Service, codes};
use reqwest::Url;

use crate::endpoint::Endpoint;
use crate::peers::Peers;
use crate::wire::{
    CLIENT_NAME_HEADER_NAME, DEADLINE_HEADER_NAME, JSON_CONTENT_TYPE_VALUE, REQ_ID_HEADER_NAME,
    check_json_content_type, decode_error_body, error_for_bare_status,
};

/// The default limit on one call, from connecting to the last byte of the response.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The default limit on establishing a connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A keep-alive connection pool, its settings and the [`Peers`] it resolves service names with;
/// makes [`HttpClient`]s. Cheap to clone; clones share the pool.
///
/// ```
/// use std::time::Duration;
/// use nano_http::{Endpoint, HttpTransport, Peers};
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Debug, Clone, Default, Serialize, Deserialize)] pub struct Req { pub param: String }
/// # #[derive(Debug, Clone, Default, Serialize, Deserialize)] pub struct Resp { pub value: String }
/// # impl nano::Request for Req { type Response = Resp; const NAME: &'static str = "svc3.Req"; }
///
/// let transport = HttpTransport::builder()
///     .peers("svc3=127.0.0.1:8001".parse()?)
///     .timeout(Duration::from_secs(2))
///     .build()?;
/// let svc3 = transport.client("svc3", [Endpoint::post::<Req>("/")])?;
/// // `svc3` is a `nano::Service` named "svc3": add it to a set in place of the real one.
/// let set = nano::ServiceSet::builder().service(svc3).build()?;
/// # Ok::<(), nano::NanoError>(())
/// ```
#[derive(Clone)]
pub struct HttpTransport {
    http: reqwest::Client,
    peers: Peers,
    timeout: Duration,
}

impl HttpTransport {
    /// A transport with default settings that resolves services with `peers`.
    ///
    /// # Errors
    ///
    /// `S-INIT-FAILED` when the HTTP client cannot be set up.
    pub fn new(peers: Peers) -> Result<Self, NanoError> {
        Self::builder().peers(peers).build()
    }

    /// Starts configuring a transport.
    pub fn builder() -> HttpTransportBuilder {
        HttpTransportBuilder::default()
    }

    /// The peers services are resolved with.
    pub fn peers(&self) -> &Peers {
        &self.peers
    }

    /// A client for `service` at the address [`peers`](HttpTransport::peers) gives it.
    ///
    /// # Errors
    ///
    /// `S-UNKNOWN-SERVICE` when there is no address for `service`; `S-INIT-FAILED` for an invalid
    /// endpoint.
    pub fn client(
        &self,
        service: &str,
        endpoints: impl IntoIterator<Item = Endpoint>,
    ) -> Result<HttpClient, NanoError> {
        let address = self.peers.get(service).ok_or_else(|| {
            NanoError::new(
                codes::UNKNOWN_SERVICE,
                format!("no address for service {service:?} (set one with --peer {service}=ADDR)"),
            )
        })?;
        self.client_at(service, address, endpoints)
    }

    /// A client for `service` served at `address` (`host:port` or `http://host:port[/prefix]`).
    ///
    /// # Errors
    ///
    /// `C-BAD-REQUEST` for an invalid address; `S-INIT-FAILED` for an invalid endpoint.
    pub fn client_at(
        &self,
        service: &str,
        address: &str,
        endpoints: impl IntoIterator<Item = Endpoint>,
    ) -> Result<HttpClient, NanoError> {
        let peer = crate::peers::Peer::new(service, address)?;
        let mut routes = HashMap::new();
        for endpoint in endpoints {
            endpoint.validate(service)?;
            let url = format!("{}{}", peer.base_url(), endpoint.url_path(service));
            let url = Url::parse(&url).map_err(|err| {
                NanoError::new(
                    codes::INIT_FAILED,
                    format!("invalid endpoint URL {url:?}: {err}"),
                )
            })?;
            // When two endpoints carry the same request type, the first one declared is used.
            routes
                .entry(endpoint.request_type().name())
                .or_insert(ClientRoute {
                    method: endpoint.method(),
                    url,
                    body: endpoint.has_body(),
                    response: endpoint.has_response(),
                });
        }
        Ok(HttpClient {
            name: peer.name().to_owned(),
            base_url: peer.base_url().to_owned(),
            routes,
            http: self.http.clone(),
            timeout: self.timeout,
        })
    }
}

impl fmt::Debug for HttpTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpTransport")
            .field("peers", &self.peers)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Configures an [`HttpTransport`]; see [`HttpTransport::builder`].
#[derive(Debug, Clone)]
pub struct HttpTransportBuilder {
    peers: Peers,
    timeout: Duration,
    connect_timeout: Duration,
    pool_idle_timeout: Option<Duration>,
}

impl Default for HttpTransportBuilder {
    fn default() -> Self {
        HttpTransportBuilder {
            peers: Peers::new(),
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            pool_idle_timeout: Some(Duration::from_secs(90)),
        }
    }
}

impl HttpTransportBuilder {
    /// Sets the peers services are resolved with.
    #[must_use]
    pub fn peers(mut self, peers: Peers) -> Self {
        self.peers = peers;
        self
    }

    /// Sets the limit on one call (default [`DEFAULT_TIMEOUT`]). A caller's deadline that comes
    /// sooner wins.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the limit on establishing a connection (default [`DEFAULT_CONNECT_TIMEOUT`]).
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets how long an idle pooled connection is kept (default 90 s; `None` keeps it forever).
    #[must_use]
    pub fn pool_idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.pool_idle_timeout = timeout;
        self
    }

    /// Builds the transport.
    ///
    /// # Errors
    ///
    /// `S-INIT-FAILED` when the HTTP client cannot be set up.
    pub fn build(self) -> Result<HttpTransport, NanoError> {
        let http = reqwest::Client::builder()
            // Services talk to their peers directly; a proxy from the environment would only
            // add a hop.
            .no_proxy()
            .tcp_nodelay(true)
            .connect_timeout(self.connect_timeout)
            .pool_idle_timeout(self.pool_idle_timeout)
            .build()
            .map_err(|err| {
                NanoError::wrap(err, "cannot set up the HTTP client").with_code(codes::INIT_FAILED)
            })?;
        Ok(HttpTransport {
            http,
            peers: self.peers,
            timeout: self.timeout,
        })
    }
}

/// A [`Service`] that forwards every request to a remote service over HTTP, so the calling
/// service cannot tell it from the real one.
///
/// It finds the endpoint by the request's wire name, sends `X-Nano-Req-Id`, the caller's name as
/// `X-Nano-Client-Name` and, when the caller has a deadline, the remaining milliseconds as
/// `X-Nano-Deadline-Ms` (the call is also limited to that time). Responses decode into the
/// request's declared response type; `{"code","msg"}` error bodies become the same
/// [`NanoError`]. Failures are coded and never panic:
///
/// | what happened | code |
/// |---|---|
/// | request type without an endpoint | `C-BAD-REQUEST-TYPE` |
/// | connection refused, reset or dropped | `S-UNAVAILABLE` |
/// | timeout or caller's deadline reached | `S-TIMEOUT` |
/// | 2xx that is not JSON of the response type | `S-BAD-RESPONSE` |
/// | non-2xx without an error body | `S-ERROR` (`S-UNAVAILABLE` for 502/503, `S-TIMEOUT` for 408/504) |
///
/// Made by [`HttpTransport::client`]. Cloning shares the connection pool.
#[derive(Clone)]
pub struct HttpClient {
    name: String,
    base_url: String,
    routes: HashMap<&'static str, ClientRoute>,
    http: reqwest::Client,
    timeout: Duration,
}

#[derive(Clone)]
struct ClientRoute {
    method: Method,
    url: Url,
    body: bool,
    response: bool,
}

impl HttpClient {
    /// The base URL of the remote service's server.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    async fn send(&self, ctx: &Ctx, request: &AnyRequest) -> Outcome {
        let route = self.route(request.name())?;
        let body = if route.body {
            Some(request.to_json()?)
        } else {
            None
        };
        let Some((content_type, bytes)) = self.exchange(ctx, ctx.caller(), route, body).await?
        else {
            return Ok(AnyResponse::new(()));
        };
        self.decode_response(request, route, content_type.as_ref(), &bytes)
    }

    /// Sends a request given as raw JSON, e.g. a recorded body that may not even decode, as
    /// `caller` (the `X-Nano-Client-Name`; the context's caller when `None`), and returns the
    /// response body as JSON (`null` for an endpoint without a response). This is
    /// what a client in another language does; replay tools use it to send recordings as they
    /// are.
    ///
    /// # Errors
    ///
    /// As for typed calls: the server's error (a body that does not decode gets the server's
    /// `C-BAD-REQUEST`), `C-BAD-REQUEST-TYPE` when the service has no endpoint for `request`,
    /// transport failures as `S-UNAVAILABLE` / `S-TIMEOUT`, and `S-BAD-RESPONSE` when the answer
    /// is not JSON.
    pub async fn call_json(
        &self,
        ctx: &Ctx,
        caller: Option<&str>,
        request: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, NanoError> {
        let route = self.route(request)?;
        let body = route.body.then(|| body.to_string().into_bytes());
        let caller = caller.or(ctx.caller());
        let Some((content_type, bytes)) = self.exchange(ctx, caller, route, body).await? else {
            return Ok(serde_json::Value::Null);
        };
        let bad = |err: NanoError| {
            NanoError::wrap(
                err,
                format!(
                    "{} answered {request} with an unusable response",
                    self.describe(route)
                ),
            )
            .with_code(codes::BAD_RESPONSE)
        };
        check_json_content_type(content_type.as_ref()).map_err(bad)?;
        serde_json::from_slice(&bytes)
            .map_err(|err| bad(NanoError::msg(format!("invalid JSON: {err}"))))
    }

    fn route(&self, request: &str) -> Result<&ClientRoute, NanoError> {
        self.routes
            .get(request)
            .ok_or_else(|| NanoError::bad_request_type(request))
    }

    /// Sends one request along `route` and returns the content type and body of a successful
    /// answer, or `None` for an endpoint without a response.
    async fn exchange(
        &self,
        ctx: &Ctx,
        caller: Option<&str>,
        route: &ClientRoute,
        body: Option<Vec<u8>>,
    ) -> Result<Option<(Option<HeaderValue>, bytes::Bytes)>, NanoError> {
        let mut timeout = self.timeout;
        let mut call = self
            .http
            .request(route.method.clone(), route.url.clone())
            .header(REQ_ID_HEADER_NAME.clone(), ctx.request_id().as_str());
        if let Some(caller) = caller {
            call = call.header(CLIENT_NAME_HEADER_NAME.clone(), caller);
        }
        if let Some(remaining) = ctx.remaining() {
            // Whole milliseconds, rounded down, so the callee never gets more time than we wait.
            let millis = u64::try_from(remaining.as_millis()).unwrap_or(u64::MAX);
            if millis == 0 {
                return Err(self.timed_out(route));
            }
            call = call.header(DEADLINE_HEADER_NAME.clone(), millis);
            timeout = timeout.min(remaining);
        }
        if let Some(body) = body {
            call = call
                .header(CONTENT_TYPE, JSON_CONTENT_TYPE_VALUE.clone())
                .body(body);
        }
        let response = call
            .timeout(timeout)
            .send()
            .await
            .map_err(|err| self.transport_error(err, route))?;
        let status = response.status();
        let content_type = response.headers().get(CONTENT_TYPE).cloned();
        let bytes = response
            .bytes()
            .await
            .map_err(|err| self.transport_error(err, route))?;
        if !status.is_success() {
            return Err(decode_error_body(content_type.as_ref(), &bytes)
                .unwrap_or_else(|| error_for_bare_status(status, &self.describe(route))));
        }
        Ok(route.response.then_some((content_type, bytes)))
    }

    fn decode_response(
        &self,
        request: &AnyRequest,
        route: &ClientRoute,
        content_type: Option<&HeaderValue>,
        body: &[u8],
    ) -> Outcome {
        let bad = |err: NanoError| {
            NanoError::wrap(
                err,
                format!(
                    "{} answered {} with an unusable response",
                    self.describe(route),
                    request.name()
                ),
            )
            .with_code(codes::BAD_RESPONSE)
        };
        check_json_content_type(content_type).map_err(bad)?;
        request.decode_response(body).map_err(bad)
    }

    fn describe(&self, route: &ClientRoute) -> String {
        format!("service {:?} at {} {}", self.name, route.method, route.url)
    }

    fn timed_out(&self, route: &ClientRoute) -> NanoError {
        NanoError::timeout(format!("call to {} ran out of time", self.describe(route)))
    }

    fn transport_error(&self, err: reqwest::Error, route: &ClientRoute) -> NanoError {
        if err.is_timeout() {
            return self.timed_out(route);
        }
        if err.is_builder() {
            return NanoError::wrap(
                err,
                format!("cannot build the request to {}", self.describe(route)),
            )
            .with_code(codes::ENCODE);
        }
        let what = if err.is_connect() {
            "cannot connect to"
        } else {
            "connection failed while calling"
        };
        NanoError::wrap(err, format!("{what} {}", self.describe(route)))
            .with_code(codes::UNAVAILABLE)
    }
}

impl Service for HttpClient {
    fn name(&self) -> &str {
        &self.name
    }

    async fn handle(&self, ctx: Ctx, request: AnyRequest) -> Outcome {
        self.send(&ctx, &request).await
    }
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut requests: Vec<&str> = self.routes.keys().copied().collect();
        requests.sort_unstable();
        f.debug_struct("HttpClient")
            .field("name", &self.name)
            .field("base_url", &self.base_url)
            .field("requests", &requests)
            .field("timeout", &self.timeout)
            .finish()
    }
}
