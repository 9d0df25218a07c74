//! [`HttpListener`]: the server side, exposing chosen services of a set over HTTP.

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{ALLOW, CONTENT_LENGTH, CONTENT_TYPE, HeaderMap};
use http::request::Parts;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use nano::{
    AnyRequest, Cancellation, Client, Ctx, Listener, NanoError, RequestId, RequestType, ServiceSet,
    Shutdown, codes,
};
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use tokio::task::JoinSet;

use crate::endpoint::Endpoint;
use crate::wire::{
    CLIENT_NAME_HEADER, DEADLINE_HEADER, HEALTH_CHECK_PATH, JSON_CONTENT_TYPE_VALUE, REQ_ID_HEADER,
    REQ_ID_HEADER_NAME, check_json_content_type, check_json_depth, error_body, status_for,
};

/// The default limit on a request body: 1 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 1 << 20;
/// The default time in-flight requests get to finish after shutdown was requested.
pub const DEFAULT_GRACE_PERIOD: Duration = Duration::from_secs(10);
/// The caller name services see when a request carries no `X-Nano-Client-Name`.
pub const DEFAULT_CALLER: &str = "http";

/// Exposes chosen services of a [`ServiceSet`] over HTTP/JSON, speaking the Go original's
/// protocol.
///
/// Every exposed service answers its [`Endpoint`]s at `/<service><path>`; `GET /health-check`
/// answers `200`. Requests reach services through `set.client(caller, service)`, where the caller
/// is the request's `X-Nano-Client-Name` (or [`DEFAULT_CALLER`]), so the set's
/// [`ClientHook`](nano::ClientHook)s see incoming calls like any other. The root [`Ctx`] gets
/// the request id from `X-Nano-Req-Id` (generated when absent), a deadline from
/// `X-Nano-Deadline-Ms`, and a [`Cancellation`] that fires when the HTTP client goes away before
/// the answer is ready.
///
/// On shutdown the listener stops accepting, lets requests in flight finish for at most the
/// [grace period](HttpListener::grace_period), then drops what is left and returns.
///
/// ```no_run
/// use nano::{Listener, ServiceSet};
/// use nano_http::{Endpoint, HttpListener};
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Debug, Clone, Default, Serialize, Deserialize)] pub struct Req { pub param: String }
/// # #[derive(Debug, Clone, Default, Serialize, Deserialize)] pub struct Resp { pub value: String }
/// # impl nano::Request for Req { type Response = Resp; const NAME: &'static str = "svc1.Req"; }
///
/// # #[tokio::main] async fn main() -> Result<(), nano::NanoError> {
/// let svc1 = nano::request_fn("svc1", |_ctx, r: Req| async move {
///     Ok(Resp { value: format!("svc1_{}", r.param) })
/// });
/// let set = ServiceSet::builder().service(svc1).build()?;
/// let http = HttpListener::bind("127.0.0.1:8000")
///     .await?
///     .expose("svc1", [Endpoint::post::<Req>("/")])?;
/// nano::serve(set, vec![http.boxed()]).await
/// # }
/// ```
pub struct HttpListener {
    tcp: TcpListener,
    local_addr: SocketAddr,
    exposed: Vec<(String, Vec<Endpoint>)>,
    body_limit: usize,
    grace_period: Duration,
    default_caller: String,
}

impl HttpListener {
    /// Binds a TCP listener on `addr`; port 0 picks a free port (see
    /// [`local_addr`](HttpListener::local_addr)). Connections queue until the listener serves.
    ///
    /// # Errors
    ///
    /// `S-UNAVAILABLE` when the address cannot be bound (e.g. it is in use).
    pub async fn bind(addr: impl ToSocketAddrs + fmt::Display) -> Result<Self, NanoError> {
        let tcp = TcpListener::bind(&addr).await.map_err(|err| {
            NanoError::wrap(err, format!("cannot listen on {addr}")).with_code(codes::UNAVAILABLE)
        })?;
        Self::from_tcp(tcp)
    }

    /// Serves on an already bound TCP listener.
    ///
    /// # Errors
    ///
    /// `S-UNAVAILABLE` when the listener's address cannot be read.
    pub fn from_tcp(tcp: TcpListener) -> Result<Self, NanoError> {
        let local_addr = tcp.local_addr().map_err(|err| {
            NanoError::wrap(err, "cannot read the listening address").with_code(codes::UNAVAILABLE)
        })?;
        Ok(HttpListener {
            tcp,
            local_addr,
            exposed: Vec::new(),
            body_limit: DEFAULT_BODY_LIMIT,
            grace_period: DEFAULT_GRACE_PERIOD,
            default_caller: DEFAULT_CALLER.to_owned(),
        })
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Exposes `service` with its endpoints. The service must be in the set the listener serves.
    ///
    /// # Errors
    ///
    /// `S-INIT-FAILED` when an endpoint is invalid (a path not starting with `/`, a body-less
    /// request type that cannot be made from `{}`) or two endpoints share a method and path;
    /// `S-DUPLICATE-SERVICE` when the service is already exposed.
    pub fn expose(
        mut self,
        service: &str,
        endpoints: impl IntoIterator<Item = Endpoint>,
    ) -> Result<Self, NanoError> {
        if self.exposed.iter().any(|(name, _)| name == service) {
            return Err(NanoError::new(
                codes::DUPLICATE_SERVICE,
                format!("service {service:?} is already exposed"),
            ));
        }
        let endpoints: Vec<Endpoint> = endpoints.into_iter().collect();
        for (i, endpoint) in endpoints.iter().enumerate() {
            endpoint.validate(service)?;
            let clash = endpoints[..i]
                .iter()
                .any(|e| e.method() == endpoint.method() && e.path() == endpoint.path());
            if clash {
                return Err(NanoError::new(
                    codes::INIT_FAILED,
                    format!(
                        "service {service:?} declares {} {} twice",
                        endpoint.method(),
                        endpoint.url_path(service)
                    ),
                ));
            }
        }
        self.exposed.push((service.to_owned(), endpoints));
        Ok(self)
    }

    /// Sets the largest request body accepted (default [`DEFAULT_BODY_LIMIT`]); larger ones are
    /// answered `413` with `C-PAYLOAD-TOO-LARGE`.
    #[must_use]
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// Sets how long requests in flight may take to finish after shutdown was requested (default
    /// [`DEFAULT_GRACE_PERIOD`]).
    #[must_use]
    pub fn grace_period(mut self, grace_period: Duration) -> Self {
        self.grace_period = grace_period;
        self
    }

    /// Sets the caller name used for requests without `X-Nano-Client-Name` (default
    /// [`DEFAULT_CALLER`]).
    #[must_use]
    pub fn default_caller(mut self, caller: impl Into<String>) -> Self {
        self.default_caller = caller.into();
        self
    }

    fn routes(&self, set: &ServiceSet) -> Result<HashMap<String, PathRoutes>, NanoError> {
        let mut routes: HashMap<String, PathRoutes> = HashMap::new();
        for (service, endpoints) in &self.exposed {
            if !set.contains(service) {
                return Err(NanoError::new(
                    codes::UNKNOWN_SERVICE,
                    format!(
                        "the HTTP listener exposes service {service:?}, which is not in the set"
                    ),
                ));
            }
            let service_name: Arc<str> = Arc::from(service.as_str());
            for endpoint in endpoints {
                let path = routes
                    .entry(endpoint.url_path(service))
                    .or_insert_with(|| PathRoutes {
                        service: Arc::clone(&service_name),
                        methods: Vec::new(),
                    });
                path.methods.push((
                    endpoint.method(),
                    Route {
                        request: endpoint.request_type(),
                        body: endpoint.has_body(),
                        response: endpoint.has_response(),
                        client: set.client(&self.default_caller, service)?,
                    },
                ));
            }
        }
        Ok(routes)
    }
}

impl fmt::Debug for HttpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpListener")
            .field("local_addr", &self.local_addr)
            .field("exposed", &self.exposed)
            .field("body_limit", &self.body_limit)
            .field("grace_period", &self.grace_period)
            .field("default_caller", &self.default_caller)
            .finish()
    }
}

impl Listener for HttpListener {
    /// Accepts connections until `shutdown`, then drains them as described on [`HttpListener`].
    ///
    /// # Errors
    ///
    /// `S-UNKNOWN-SERVICE` when an exposed service is not in `set`.
    async fn listen(self, set: ServiceSet, shutdown: Shutdown) -> Result<(), NanoError> {
        let state = Arc::new(State {
            routes: self.routes(&set)?,
            set,
            body_limit: self.body_limit,
            default_caller: self.default_caller,
        });
        let services: Vec<&str> = self.exposed.iter().map(|(name, _)| name.as_str()).collect();
        tracing::info!(addr = %self.local_addr, services = ?services, "http listener serving");

        let graceful = GracefulShutdown::new();
        let mut connections = JoinSet::new();
        let stop = shutdown.requested();
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => break,
                accepted = self.tcp.accept() => match accepted {
                    Ok((stream, _)) => {
                        connections.spawn(serve_connection(&state, stream, &graceful));
                    }
                    Err(err) => {
                        // Accept fails on transient conditions such as running out of file
                        // descriptors; pausing keeps the loop from spinning until they pass.
                        tracing::warn!(error = %err, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                // Reaps finished connections so the set does not grow with the server's age.
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
        drop(self.tcp);
        let open = connections.len();
        tracing::info!(open, grace_period = ?self.grace_period, "http listener stopped accepting");
        if tokio::time::timeout(self.grace_period, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!(
                remaining = connections.len(),
                "grace period over, dropping requests still in flight"
            );
            connections.abort_all();
        }
        while connections.join_next().await.is_some() {}
        tracing::info!(addr = %self.local_addr, "http listener stopped");
        Ok(())
    }
}

/// One HTTP/1.1 connection (keep-alive), served until the peer closes it or shutdown asks it to
/// finish its current request and close.
fn serve_connection(
    state: &Arc<State>,
    stream: TcpStream,
    graceful: &GracefulShutdown,
) -> impl Future<Output = ()> + Send + 'static {
    // Responses are written in one piece; Nagle's algorithm would only delay them.
    let _ = stream.set_nodelay(true);
    let state = Arc::clone(state);
    let service = hyper::service::service_fn(move |request| {
        let state = Arc::clone(&state);
        async move { Ok::<_, Infallible>(state.serve(request).await) }
    });
    // The timer enables hyper's default header read timeout, which keeps half-sent request heads
    // from holding connections forever.
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .serve_connection(TokioIo::new(stream), service);
    let connection = graceful.watch(connection);
    async move {
        if let Err(err) = connection.await {
            tracing::debug!(error = %err, "http connection ended with an error");
        }
    }
}

/// What every connection shares: the set and the routing table.
struct State {
    set: ServiceSet,
    routes: HashMap<String, PathRoutes>,
    body_limit: usize,
    default_caller: String,
}

/// The endpoints at one URL path, all of one service.
struct PathRoutes {
    service: Arc<str>,
    methods: Vec<(Method, Route)>,
}

impl PathRoutes {
    fn allow(&self) -> HeaderValue {
        let methods: Vec<&str> = self.methods.iter().map(|(m, _)| m.as_str()).collect();
        HeaderValue::from_str(&methods.join(", ")).unwrap_or(HeaderValue::from_static(""))
    }
}

struct Route {
    request: &'static RequestType,
    body: bool,
    response: bool,
    /// The client for requests without `X-Nano-Client-Name`, made once.
    client: Client,
}

type HttpResponse = Response<Full<Bytes>>;

impl State {
    async fn serve(&self, request: Request<Incoming>) -> HttpResponse {
        let (parts, body) = request.into_parts();
        if parts.uri.path() == HEALTH_CHECK_PATH {
            return health_check(&parts.method);
        }
        let request_id = match request_id(&parts.headers) {
            Ok(id) => id,
            Err(err) => return error_response(&err),
        };
        tracing::debug!(
            method = %parts.method,
            path = parts.uri.path(),
            req_id = %request_id,
            "http request"
        );
        let mut response = match self.answer(&parts, body, &request_id).await {
            Ok(response) => response,
            Err(err) => {
                if err.is_server_error() {
                    tracing::warn!(req_id = %request_id, code = err.code(), error = %err, "request failed");
                } else {
                    tracing::debug!(req_id = %request_id, code = err.code(), error = %err, "request rejected");
                }
                let mut response = error_response(&err);
                if err.has_code(codes::METHOD_NOT_ALLOWED)
                    && let Some(routes) = self.routes.get(parts.uri.path())
                {
                    response.headers_mut().insert(ALLOW, routes.allow());
                }
                response
            }
        };
        if let Ok(value) = HeaderValue::from_str(request_id.as_str()) {
            response
                .headers_mut()
                .insert(REQ_ID_HEADER_NAME.clone(), value);
        }
        response
    }

    async fn answer(
        &self,
        parts: &Parts,
        body: Incoming,
        request_id: &RequestId,
    ) -> Result<HttpResponse, NanoError> {
        let path = parts.uri.path();
        let routes = self
            .routes
            .get(path)
            .ok_or_else(|| NanoError::not_found(format!("no endpoint at {path}")))?;
        let route = routes
            .methods
            .iter()
            .find_map(|(method, route)| (*method == parts.method).then_some(route))
            .ok_or_else(|| {
                NanoError::new(
                    codes::METHOD_NOT_ALLOWED,
                    format!("method {} is not allowed on {path}", parts.method),
                )
            })?;
        let caller = match header_text(&parts.headers, CLIENT_NAME_HEADER)? {
            Some(caller) if !caller.is_empty() => caller,
            _ => self.default_caller.as_str(),
        };
        let budget = deadline_budget(&parts.headers)?;
        let request = self.decode(route, &parts.headers, body).await?;

        let owned;
        let client = if caller == self.default_caller {
            &route.client
        } else {
            owned = self.set.client(caller, &routes.service)?;
            &owned
        };
        let cancellation = Cancellation::new();
        let mut ctx =
            Ctx::with_request_id(request_id.clone()).with_cancellation(cancellation.clone());
        if let Some(deadline) =
            budget.and_then(|budget| tokio::time::Instant::now().checked_add(budget))
        {
            ctx = ctx.with_deadline(deadline);
        }
        // Hyper drops this future when the client goes away; the guard then tells the request
        // tree, including work it spawned, to stop.
        let guard = CancelOnDrop(Some(cancellation));
        let outcome = client.call_any(&ctx, request).await;
        guard.disarm();
        let response = outcome?;
        if !route.response {
            return Ok(Response::new(Full::default()));
        }
        Ok(json_response(StatusCode::OK, response.to_json()?))
    }

    /// Reads and decodes the request, enforcing the content type, the body limit and "no body on
    /// a body-less endpoint".
    async fn decode(
        &self,
        route: &Route,
        headers: &HeaderMap,
        body: Incoming,
    ) -> Result<AnyRequest, NanoError> {
        if route.body {
            check_json_content_type(headers.get(CONTENT_TYPE))?;
            let bytes = self.read_body(headers, body).await?;
            check_json_depth(&bytes)?;
            route.request.decode_request(&bytes)
        } else {
            let bytes = self.read_body(headers, body).await?;
            if !bytes.is_empty() {
                return Err(NanoError::bad_request(
                    "this endpoint takes no request body",
                ));
            }
            route.request.decode_request(b"{}")
        }
    }

    async fn read_body(&self, headers: &HeaderMap, body: Incoming) -> Result<Bytes, NanoError> {
        let too_large = || {
            NanoError::new(
                codes::PAYLOAD_TOO_LARGE,
                format!("request body is larger than {} bytes", self.body_limit),
            )
        };
        let declared = headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > self.body_limit as u64) {
            return Err(too_large());
        }
        match Limited::new(body, self.body_limit).collect().await {
            Ok(collected) => Ok(collected.to_bytes()),
            Err(err) if err.is::<LengthLimitError>() => Err(too_large()),
            Err(err) => Err(NanoError::bad_request(format!(
                "cannot read the request body: {err}"
            ))),
        }
    }
}

/// Cancels a request tree when dropped before [`disarm`](CancelOnDrop::disarm).
struct CancelOnDrop(Option<Cancellation>);

impl CancelOnDrop {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(cancellation) = self.0.take() {
            tracing::debug!("http client went away, cancelling its request");
            cancellation.cancel();
        }
    }
}

fn health_check(method: &Method) -> HttpResponse {
    if *method == Method::GET || *method == Method::HEAD {
        return Response::new(Full::default());
    }
    let err = NanoError::new(
        codes::METHOD_NOT_ALLOWED,
        format!("method {method} is not allowed on {HEALTH_CHECK_PATH}"),
    );
    let mut response = error_response(&err);
    response
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
    response
}

/// The request id from `X-Nano-Req-Id`, or a fresh one when the header is absent or empty.
fn request_id(headers: &HeaderMap) -> Result<RequestId, NanoError> {
    match header_text(headers, REQ_ID_HEADER)? {
        Some(id) if !id.is_empty() => Ok(RequestId::from(id)),
        _ => Ok(RequestId::generate()),
    }
}

/// The caller's remaining time from `X-Nano-Deadline-Ms`.
fn deadline_budget(headers: &HeaderMap) -> Result<Option<Duration>, NanoError> {
    let Some(text) = header_text(headers, DEADLINE_HEADER)? else {
        return Ok(None);
    };
    let millis: u64 = text.trim().parse().map_err(|_| {
        NanoError::bad_request(format!(
            "invalid {DEADLINE_HEADER} header {text:?}, expected whole milliseconds"
        ))
    })?;
    Ok(Some(Duration::from_millis(millis)))
}

fn header_text<'h>(headers: &'h HeaderMap, name: &str) -> Result<Option<&'h str>, NanoError> {
    headers
        .get(name)
        .map(|value| {
            value
                .to_str()
                .map_err(|_| NanoError::bad_request(format!("header {name} is not valid text")))
        })
        .transpose()
}

fn json_response(status: StatusCode, body: Vec<u8>) -> HttpResponse {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, JSON_CONTENT_TYPE_VALUE.clone());
    response
}

fn error_response(err: &NanoError) -> HttpResponse {
    json_response(status_for(err.code()), error_body(err))
}
