//! [`HttpListener`]: the server side, exposing chosen services of a set over HTTP.

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::header::{
    ALLOW, AUTHORIZATION, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, EXPECT, HeaderMap, LOCATION,
    WWW_AUTHENTICATE,
};
use http::request::Parts;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use nano::{AnyRequest, Api, Cancellation, Client, Ctx, NanoError, ServiceSet, codes};
use nano_server::{CallerClients, CancelOnDrop, Listener, Shutdown};
use nano_wire::EdgeAuth;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::endpoint::Endpoint;
use crate::incoming::{CallHeaders, check_content_type, decode_body};
use crate::wire::{
    HEALTH_CHECK_PATH, JSON_CONTENT_TYPE, JSON_CONTENT_TYPE_VALUE, NOT_PROCESSED_HEADER,
    NOT_PROCESSED_HEADER_NAME, REFUSAL_STATUS, REQ_ID_HEADER_NAME, REQUEST_TIMEOUT_CODE,
    error_body, status_for,
};

pub use nano_wire::DEFAULT_BODY_LIMIT;
/// The default time in-flight requests get to finish after shutdown was requested.
pub const DEFAULT_GRACE_PERIOD: Duration = Duration::from_secs(10);
/// The caller name services see when a request carries no `X-Nano-Client-Name`.
pub const DEFAULT_CALLER: &str = "http";
/// The default time a request may take to arrive: its head, and then its body. It is also how
/// long an idle keep-alive connection is kept (hyper's head timer runs while it waits for the
/// next request); 30 s is what hyper used for both before there was a body limit.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The default limit on open connections.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// The default limit on requests being read or handled at once.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 256;

/// After the `413` to a body declared or found larger than the limit, the rest of the body is
/// still read, and thrown away, up to this multiple of the limit (see [`discard_after_answer`]).
const DISCARD_FACTOR: usize = 8;
/// After shutdown was requested and nothing is in flight, connections that stay open get this
/// long to send one more request, which is refused with a `503` and `Connection: close`, before
/// idle ones are closed.
const DRAIN_LINGER: Duration = Duration::from_millis(500);
/// How long the answers to requests cut off by the end of the grace period get to be written.
const LAST_WRITE_TIME: Duration = Duration::from_secs(1);
/// How many connections over the limit are answered at once; beyond that they are closed
/// unanswered, so a flood cannot make the refusals themselves a cost without bound.
const MAX_REFUSING: usize = 64;
/// How long a refused connection is read (and the bytes discarded) after its refusal was
/// written, so that closing it does not reset the connection before the client read the answer.
const REFUSAL_LINGER: Duration = Duration::from_secs(1);

/// Exposes chosen services of a [`ServiceSet`] over HTTP/JSON, speaking the Go original's
/// protocol.
///
/// Every exposed service answers its [`Endpoint`]s at `/<service><path>`; `GET /health-check`
/// answers `200`. Requests reach services through `set.client(caller, service)` (made once per
/// caller, see [`CallerClients`](nano_server::CallerClients)), where the caller
/// is the request's `X-Nano-Client-Name` (or [`DEFAULT_CALLER`]), so the set's
/// [`ClientHook`](nano::ClientHook)s see incoming calls like any other. The root [`Ctx`] gets
/// the request id from `X-Nano-Req-Id` (generated when absent), a deadline from
/// `X-Nano-Deadline-Ms`, and a [`Cancellation`] that fires when the HTTP client goes away before
/// the answer is ready.
///
/// Everything a client can make the listener hold is bounded: a body is read into one buffer of
/// at most the [body limit](HttpListener::body_limit), a request must arrive within the
/// [request timeout](HttpListener::request_timeout), and [connections](HttpListener::max_connections)
/// and [requests in flight](HttpListener::max_in_flight) are limited; the excess is refused at
/// once with `503` `S-UNAVAILABLE` and [`X-Nano-Not-Processed`](crate::NOT_PROCESSED_HEADER).
/// Request ids and caller names must satisfy [`is_valid_id`](crate::is_valid_id) (`400`
/// otherwise).
///
/// With [`auth`](HttpListener::auth), the request types its [`EdgeAuth`] protects need
/// `Authorization: Bearer <token>`: the listener asks the set's auth service about the token
/// before it reads the body, answers `401` `C-UNAUTHORIZED` or `403` `C-FORBIDDEN` when it is
/// refused, and otherwise calls the service with the authenticated user in the root context's
/// metadata. More than one `Authorization` header is a `401` too. Every `401` carries a
/// `WWW-Authenticate` challenge ([`bearer_challenge`](nano_wire::bearer_challenge)). Tokens are
/// never logged.
///
/// On shutdown the listener refuses every new request (also on connections the kernel had
/// already accepted) with that `503` and `Connection: close`, stops accepting, lets requests in
/// flight finish for at most the [grace period](HttpListener::grace_period), gives open
/// connections half a second more to send a request that gets the refusal, and closes idle ones.
/// Requests still running when the grace period ends are answered `503` `S-UNAVAILABLE` (without
/// the marker) and cancelled; whatever is left a second later is dropped.
///
/// ```no_run
/// use nano::{ServiceSet};
/// use nano_server::{Listener};
/// use nano_http::{Endpoint, HttpListener};
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Debug, Clone, Default, Serialize, Deserialize)] pub struct Req { pub param: String }
/// # #[derive(Debug, Clone, Default, Serialize, Deserialize)] pub struct Resp { pub value: String }
/// # impl nano::Request for Req { type Response = Resp; const NAME: &'static str = "svc1.Req"; }
///
/// # #[tokio::main] async fn main() -> Result<(), nano::NanoError> {
/// let svc1 = nano_test::request_fn("svc1", |_ctx, r: Req| async move {
///     Ok(Resp { value: format!("svc1_{}", r.param) })
/// });
/// let set = ServiceSet::builder().service(svc1).build()?;
/// let http = HttpListener::bind("127.0.0.1:8000")
///     .await?
///     .expose("svc1", [Endpoint::post::<Req>("/")])?;
/// nano_server::serve(set, vec![http.boxed()]).await
/// # }
/// ```
pub struct HttpListener {
    tcp: TcpListener,
    local_addr: SocketAddr,
    exposed: Vec<(String, Vec<Endpoint>)>,
    /// The declared APIs exposed with [`expose_api`](HttpListener::expose_api), checked against
    /// the set's services when serving starts.
    apis: Vec<&'static Api>,
    body_limit: usize,
    grace_period: Duration,
    default_caller: String,
    request_timeout: Duration,
    max_connections: usize,
    max_in_flight: usize,
    auth: Option<EdgeAuth>,
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
            apis: Vec::new(),
            body_limit: DEFAULT_BODY_LIMIT,
            grace_period: DEFAULT_GRACE_PERIOD,
            default_caller: DEFAULT_CALLER.to_owned(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            auth: None,
        })
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Exposes the service of a declared API with the endpoints its routes declare (see
    /// [`Endpoint::table`]); when serving starts, the set's service of that name must declare
    /// the same API.
    ///
    /// # Errors
    ///
    /// As [`Endpoint::table`] and [`expose`](HttpListener::expose).
    pub fn expose_api(self, api: &'static Api) -> Result<Self, NanoError> {
        let mut listener = self.expose(api.name(), Endpoint::table(api)?)?;
        listener.apis.push(api);
        Ok(listener)
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
    /// answered `413` with `C-PAYLOAD-TOO-LARGE` and `Connection: close`: at once when the
    /// `Content-Length` is over the limit, without waiting for the body, and as soon as a
    /// streamed body passes it. The request then no longer counts as in flight; the rest of the
    /// body is read and dropped (up to 8 times the limit, within the
    /// [request timeout](HttpListener::request_timeout)) so that the client reads the answer
    /// before the connection closes.
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

    /// Sets how long a request may take to arrive (default [`DEFAULT_REQUEST_TIMEOUT`]): its head
    /// must be complete within this time of the connection starting to wait for it, and its body
    /// within this time after the head. A late body is answered `408` with `C-REQUEST-TIMEOUT` and its connection
    /// closed; a late head, or no new request on an idle keep-alive connection within this time,
    /// closes the connection.
    #[must_use]
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Sets how many connections may be open at once (default [`DEFAULT_MAX_CONNECTIONS`], at
    /// least 1). A connection over the limit is answered `503` `S-UNAVAILABLE` with
    /// [`X-Nano-Not-Processed`](crate::NOT_PROCESSED_HEADER) and closed at once.
    #[must_use]
    pub fn max_connections(mut self, connections: usize) -> Self {
        self.max_connections = connections.max(1);
        self
    }

    /// Sets how many requests may be read or handled at once (default [`DEFAULT_MAX_IN_FLIGHT`],
    /// at least 1). A request over the limit is answered `503` `S-UNAVAILABLE` with
    /// [`X-Nano-Not-Processed`](crate::NOT_PROCESSED_HEADER) without being read. With the body
    /// limit this bounds the memory requests can hold: each holds at most one body.
    #[must_use]
    pub fn max_in_flight(mut self, requests: usize) -> Self {
        self.max_in_flight = requests.max(1);
        self
    }

    /// Sets the caller name used for requests without `X-Nano-Client-Name` (default
    /// [`DEFAULT_CALLER`]).
    #[must_use]
    pub fn default_caller(mut self, caller: impl Into<String>) -> Self {
        self.default_caller = caller.into();
        self
    }

    /// Authenticates the request types `auth` protects with the set's auth service, as the
    /// table on [`EdgeAuth`] says. When the listener exposes a protected request type, the auth
    /// service must be in the set it serves (it need not be exposed); a listener that exposes
    /// none needs no auth service.
    ///
    /// ```no_run
    /// # use nano_http::HttpListener;
    /// # use nano_wire::{AuthQuery, EdgeAuth};
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Debug, Clone, Default, Serialize, Deserialize)] pub struct Verify { pub token: String }
    /// # #[derive(Debug, Clone, Default, Serialize, Deserialize)] pub struct Verified { pub user: String }
    /// # #[derive(Debug, Clone, Default, Serialize, Deserialize)] pub struct WhoAmI {}
    /// # impl nano::Request for Verify { type Response = Verified; const NAME: &'static str = "auth.Verify"; }
    /// # impl nano::Request for WhoAmI { type Response = Verified; const NAME: &'static str = "front.WhoAmI"; }
    /// # async fn run() -> Result<(), nano::NanoError> {
    /// let edge = EdgeAuth::new("auth", |q: AuthQuery| Verify { token: q.token }, |v: Verified| v.user)
    ///     .protect::<WhoAmI>();
    /// let listener = HttpListener::bind("127.0.0.1:8000").await?.auth(edge);
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn auth(mut self, auth: EdgeAuth) -> Self {
        self.auth = Some(auth);
        self
    }

    fn routes(&self, set: &ServiceSet) -> Result<HashMap<String, PathRoutes>, NanoError> {
        for api in &self.apis {
            if let Some(held) = set
                .api(api.name())
                .filter(|held| !std::ptr::eq(*held, *api))
            {
                return Err(NanoError::new(
                    codes::INIT_FAILED,
                    format!(
                        "the HTTP listener exposes an API of service {:?} other than the one its service in the set declares ({} operations, the set's has {})",
                        api.name(),
                        api.operations().len(),
                        held.operations().len()
                    ),
                ));
            }
        }
        let guarded = |auth: &EdgeAuth| {
            self.exposed.iter().any(|(_, endpoints)| {
                endpoints
                    .iter()
                    .any(|e| auth.is_protected(e.request_type().name()))
            })
        };
        if let Some(auth) = &self.auth
            && guarded(auth)
            && !set.contains(auth.service())
        {
            return Err(NanoError::new(
                codes::UNKNOWN_SERVICE,
                format!(
                    "the HTTP listener authenticates with service {:?}, which is not in the set",
                    auth.service()
                ),
            ));
        }
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
            let clients = Arc::new(CallerClients::new(set, service, &self.default_caller)?);
            for endpoint in endpoints {
                let path = routes
                    .entry(endpoint.url_path(service))
                    .or_insert_with(|| PathRoutes {
                        service: Arc::clone(&service_name),
                        clients: Arc::clone(&clients),
                        methods: Vec::new(),
                    });
                path.methods.push((
                    endpoint.method(),
                    Route {
                        endpoint: endpoint.clone(),
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
            .field("request_timeout", &self.request_timeout)
            .field("max_connections", &self.max_connections)
            .field("max_in_flight", &self.max_in_flight)
            .field("auth", &self.auth)
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
            auth: self.auth,
            request_timeout: self.request_timeout,
            max_in_flight: self.max_in_flight,
            in_flight: AtomicUsize::new(0),
            idle: Notify::new(),
            draining: AtomicBool::new(false),
            cut_off: AtomicBool::new(false),
            cut_off_now: Notify::new(),
        });
        let services: Vec<&str> = self.exposed.iter().map(|(name, _)| name.as_str()).collect();
        tracing::info!(
            addr = %self.local_addr,
            services = ?services,
            max_connections = self.max_connections,
            max_in_flight = self.max_in_flight,
            request_timeout = ?self.request_timeout,
            "http listener serving"
        );

        let slots = Arc::new(Semaphore::new(self.max_connections));
        let refusing = Arc::new(Semaphore::new(MAX_REFUSING));
        let graceful = GracefulShutdown::new();
        let mut connections = JoinSet::new();
        let stop = shutdown.requested();
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => break,
                accepted = self.tcp.accept() => match accepted {
                    Ok((stream, _)) => accept(&state, stream, &slots, &refusing, &graceful, &mut connections),
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
        // From here on every new request is refused with a 503 that says it was not processed.
        state.draining.store(true, Ordering::SeqCst);
        // Connections the kernel already accepted would be reset when the socket closes; take
        // them so their requests get that answer too.
        loop {
            tokio::select! {
                biased;
                accepted = self.tcp.accept() => match accepted {
                    Ok((stream, _)) => accept(&state, stream, &slots, &refusing, &graceful, &mut connections),
                    Err(_) => break,
                },
                () = std::future::ready(()) => break,
            }
        }
        drop(self.tcp);
        let open = connections.len();
        tracing::info!(open, grace_period = ?self.grace_period, "http listener stopped accepting");

        let started = Instant::now();
        let grace_over = started + self.grace_period;
        let linger_over = started + DRAIN_LINGER.min(self.grace_period);
        let quiet = state.no_request_in_flight();
        tokio::pin!(quiet);
        let mut is_quiet = false;
        loop {
            tokio::select! {
                () = &mut quiet, if !is_quiet => is_quiet = true,
                joined = connections.join_next() => if joined.is_none() { break },
                () = tokio::time::sleep_until(linger_over.max(Instant::now())), if is_quiet => break,
                () = tokio::time::sleep_until(grace_over) => break,
            }
        }
        // Closes idle connections now and the others once their current answer is written.
        let closing = graceful.shutdown();
        if tokio::time::timeout_at(grace_over, closing).await.is_err() {
            tracing::warn!(
                remaining = connections.len(),
                "grace period over, answering requests still in flight with S-UNAVAILABLE"
            );
            state.cut_off.store(true, Ordering::SeqCst);
            state.cut_off_now.notify_waiters();
            let last_writes = async { while connections.join_next().await.is_some() {} };
            if tokio::time::timeout(LAST_WRITE_TIME, last_writes)
                .await
                .is_err()
            {
                connections.abort_all();
            }
        }
        while connections.join_next().await.is_some() {}
        tracing::info!(addr = %self.local_addr, "http listener stopped");
        Ok(())
    }
}

/// Serves an accepted connection, or refuses it when every connection slot is taken.
fn accept(
    state: &Arc<State>,
    stream: TcpStream,
    slots: &Arc<Semaphore>,
    refusing: &Arc<Semaphore>,
    graceful: &GracefulShutdown,
    connections: &mut JoinSet<()>,
) {
    match Arc::clone(slots).try_acquire_owned() {
        Ok(slot) => {
            connections.spawn(serve_connection(state, stream, graceful, slot));
        }
        Err(_) => match Arc::clone(refusing).try_acquire_owned() {
            Ok(permit) => {
                tracing::debug!("connection limit reached, refusing a connection");
                connections.spawn(refuse_connection(stream, permit));
            }
            // Dropping the stream closes it.
            Err(_) => tracing::debug!("connection limit reached, closing a connection"),
        },
    }
}

/// One HTTP/1.1 connection (keep-alive), served until the peer closes it or shutdown asks it to
/// finish its current request and close. Holds its connection slot until then.
fn serve_connection(
    state: &Arc<State>,
    stream: TcpStream,
    graceful: &GracefulShutdown,
    slot: OwnedSemaphorePermit,
) -> impl Future<Output = ()> + Send + 'static {
    // Responses are written in one piece; Nagle's algorithm would only delay them.
    let _ = stream.set_nodelay(true);
    let request_timeout = state.request_timeout;
    let state = Arc::clone(state);
    let service = hyper::service::service_fn(move |request| {
        let state = Arc::clone(&state);
        async move { Ok::<_, Infallible>(state.serve(request).await) }
    });
    // The header read timeout keeps half-sent request heads from holding connections; the body
    // has its own limit in `State::read_body`.
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(request_timeout)
        .serve_connection(TokioIo::new(stream), service);
    let connection = graceful.watch(connection);
    async move {
        if let Err(err) = connection.await {
            tracing::debug!(error = %err, "http connection ended with an error");
        }
        drop(slot);
    }
}

/// Answers a connection over the limit with a `503` and closes it, after reading what the client
/// sends for a moment so that the close does not reset the connection before the answer is read.
async fn refuse_connection(mut stream: TcpStream, permit: OwnedSemaphorePermit) {
    static REFUSAL: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let refusal = REFUSAL.get_or_init(|| {
        let body = error_body(
            "",
            &NanoError::unavailable("the server has too many connections open"),
        );
        let mut head = format!(
            "HTTP/1.1 {REFUSAL_STATUS}\r\ncontent-type: {JSON_CONTENT_TYPE}\r\n\
             {NOT_PROCESSED_HEADER}: true\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        head.extend_from_slice(&body);
        head
    });
    let _ = stream.set_nodelay(true);
    let linger = async {
        stream.write_all(refusal).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 4096];
        let mut read = 0usize;
        while read < 1 << 20 {
            match stream.read(&mut sink).await? {
                0 => break,
                n => read += n,
            }
        }
        Ok::<_, std::io::Error>(())
    };
    let _ = tokio::time::timeout(REFUSAL_LINGER, linger).await;
    drop(permit);
}

/// What every connection shares: the set, the routing table and the limits.
struct State {
    set: ServiceSet,
    routes: HashMap<String, PathRoutes>,
    body_limit: usize,
    default_caller: String,
    auth: Option<EdgeAuth>,
    request_timeout: Duration,
    max_in_flight: usize,
    /// Requests being read or handled. Counted with atomics rather than a semaphore, whose
    /// release takes a lock on every request.
    in_flight: AtomicUsize,
    /// Notified when `in_flight` drops to zero while draining.
    idle: Notify,
    /// Set once shutdown was requested: new requests are refused, answers close their connection.
    draining: AtomicBool,
    /// Set when the grace period is over: requests still running are answered `S-UNAVAILABLE`.
    cut_off: AtomicBool,
    cut_off_now: Notify,
}

/// A request counted in [`State::in_flight`] until dropped.
struct InFlight<'s>(&'s State);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let state = self.0;
        if state.in_flight.fetch_sub(1, Ordering::AcqRel) == 1
            && state.draining.load(Ordering::SeqCst)
        {
            state.idle.notify_waiters();
        }
    }
}

/// The endpoints at one URL path, all of one service.
struct PathRoutes {
    service: Arc<str>,
    /// The clients the service is called through, by caller.
    clients: Arc<CallerClients>,
    methods: Vec<(Method, Route)>,
}

impl PathRoutes {
    /// The methods the path answers: its endpoints', and `OPTIONS`.
    fn allow(&self) -> HeaderValue {
        let mut methods: Vec<&str> = self.methods.iter().map(|(m, _)| m.as_str()).collect();
        if !methods.contains(&"OPTIONS") {
            methods.push("OPTIONS");
        }
        HeaderValue::from_str(&methods.join(", ")).unwrap_or(HeaderValue::from_static(""))
    }
}

struct Route {
    endpoint: Endpoint,
}

type HttpResponse = Response<Full<Bytes>>;

impl State {
    /// Counts a request in, unless the limit is reached.
    fn enter(&self) -> Option<InFlight<'_>> {
        let before = self.in_flight.fetch_add(1, Ordering::AcqRel);
        let guard = InFlight(self);
        (before < self.max_in_flight).then_some(guard)
    }

    /// Completes once no request is in flight; called after `draining` was set.
    async fn no_request_in_flight(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            // Registered before the check, so a last request ending in between is not missed.
            notified.as_mut().enable();
            if self.in_flight.load(Ordering::Acquire) == 0 {
                return;
            }
            notified.await;
        }
    }

    async fn serve(&self, request: Request<Incoming>) -> HttpResponse {
        let (parts, body) = request.into_parts();
        // Health checks too, so that a load balancer stops sending.
        if self.draining.load(Ordering::SeqCst) {
            return refusal("the server is shutting down", true);
        }
        if parts.uri.path() == HEALTH_CHECK_PATH {
            return health_check(&parts.method);
        }
        let Some(_in_flight) = self.enter() else {
            tracing::debug!(
                max_in_flight = self.max_in_flight,
                "in-flight limit reached, refusing a request"
            );
            return refusal("the server has too many requests in flight", false);
        };
        let call = match CallHeaders::parse(&parts.headers) {
            Ok(call) => call,
            Err(err) => {
                tracing::debug!(code = err.code(), error = ?err.message(), "request rejected");
                return error_response(&err);
            }
        };
        tracing::debug!(
            method = %parts.method,
            path = ?parts.uri.path(),
            req_id = ?call.request_id.as_str(),
            "http request"
        );
        let mut response = match self.answer(&parts, body, &call).await {
            Ok(response) => response,
            Err(err) => {
                // Untrusted text (paths, ids, decoder messages) only reaches the logs quoted and
                // escaped (`?`), so it cannot forge fields or lines.
                let req_id = call.request_id.as_str();
                if err.is_server_error() {
                    tracing::warn!(req_id = ?req_id, code = err.code(), error = ?err.to_string(), "request failed");
                } else {
                    tracing::debug!(req_id = ?req_id, code = err.code(), error = ?err.to_string(), "request rejected");
                }
                let routes = self.routes.get(parts.uri.path());
                let service = routes.map_or("", |routes| &*routes.service);
                let mut response = json_response(status_for(err.code()), error_body(service, &err));
                if err.has_code(codes::METHOD_NOT_ALLOWED)
                    && let Some(routes) = routes
                {
                    response.headers_mut().insert(ALLOW, routes.allow());
                }
                // RFC 9110 requires the challenge on every 401, whoever refused the call.
                if response.status() == StatusCode::UNAUTHORIZED {
                    let challenge = nano_wire::bearer_challenge(&authorization(&parts.headers));
                    response
                        .headers_mut()
                        .insert(WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
                }
                // The rest of the body may still be on its way; the connection cannot carry
                // another request.
                if err.has_code(codes::PAYLOAD_TOO_LARGE) || err.has_code(REQUEST_TIMEOUT_CODE) {
                    close_after(&mut response);
                }
                response
            }
        };
        if self.draining.load(Ordering::SeqCst) {
            close_after(&mut response);
        }
        // Valid ids are header-safe; see `is_valid_id`.
        if let Ok(value) = HeaderValue::from_str(call.request_id.as_str()) {
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
        call: &CallHeaders<'_>,
    ) -> Result<HttpResponse, NanoError> {
        let path = parts.uri.path();
        let Some(routes) = self.routes.get(path) else {
            // As the Go original's mux: `/svc2` is served at `/svc2/`, by a redirect.
            return match self.routes.get(&format!("{path}/")) {
                Some(_) if !path.ends_with('/') => Ok(redirect(parts, &parts.method)),
                _ => Err(NanoError::not_found(format!("no endpoint at {path:?}"))),
            };
        };
        let Some(route) = routes
            .methods
            .iter()
            .find_map(|(method, route)| (*method == parts.method).then_some(route))
        else {
            if parts.method == Method::OPTIONS {
                let mut response = Response::new(Full::default());
                response.headers_mut().insert(ALLOW, routes.allow());
                return Ok(response);
            }
            return Err(NanoError::new(
                codes::METHOD_NOT_ALLOWED,
                format!("method {} is not allowed on {path}", parts.method),
            ));
        };
        let caller = call.caller.unwrap_or(self.default_caller.as_str());
        let ctx = root_ctx(call);
        // Before the body is read: an unauthenticated client cannot make the server hold one.
        let request = route.endpoint.request_type().name();
        let ctx = match &self.auth {
            // An unprotected type passes without its Authorization values being collected.
            Some(auth) if auth.is_protected(request) => {
                let authorization = authorization(&parts.headers);
                auth.admit(&self.set, ctx, &routes.service, request, &authorization)
                    .await?
            }
            _ => ctx,
        };
        if route.endpoint.has_body() {
            // Refused before the body is read.
            check_content_type(&parts.headers)?;
        }
        let bytes = self.read_body(&parts.headers, body).await?;
        let request = decode_body(&route.endpoint, &parts.headers, bytes.as_slice())?;
        drop(bytes);

        let client = routes.clients.client(caller)?;
        let response = self.call(&client, &ctx, request).await?;
        match nano_wire::encode_response(&route.endpoint, &response)? {
            Some(json) => Ok(json_response(StatusCode::OK, json)),
            None => Ok(Response::new(Full::default())),
        }
    }

    /// Calls the service with the root context; the call is cut short when the client goes away
    /// or the grace period of a shutdown ends.
    async fn call(
        &self,
        client: &Client,
        ctx: &Ctx,
        request: AnyRequest,
    ) -> Result<nano::AnyResponse, NanoError> {
        // Hyper drops this future when the client goes away; the guard then tells the request
        // tree, including work it spawned, to stop.
        let guard = CancelOnDrop::new(ctx.cancellation().cloned())
            .noting("http client went away, cancelling its request");
        let cut_off = || NanoError::unavailable("the server shut down before the request finished");
        // Created before the flag is read: it sees every notification from then on, and costs
        // nothing (no lock) unless the call has to wait.
        let cut_off_now = self.cut_off_now.notified();
        if self.cut_off.load(Ordering::SeqCst) {
            return Err(cut_off());
        }
        let outcome = tokio::select! {
            biased;
            outcome = client.call_any(ctx, request) => outcome,
            () = cut_off_now => return Err(cut_off()),
        };
        guard.disarm();
        outcome
    }

    /// Reads the whole body into one buffer of at most the body limit, within the request
    /// timeout. Copying the chunks keeps the memory a body holds at its size, whatever the size
    /// of the segments it arrived in (each small chunk would otherwise pin a whole read buffer).
    ///
    /// A body declared larger than the limit is refused before a byte of it is read, and one
    /// that grows past the limit as soon as it does: the `413` does not wait for the rest,
    /// which [`discard_after_answer`] reads and throws away on the side.
    async fn read_body(&self, headers: &HeaderMap, body: Incoming) -> Result<BodyBytes, NanoError> {
        let limit = self.body_limit;
        let declared = headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let declared_len = declared.map(|len| usize::try_from(len).unwrap_or(usize::MAX));
        if let Some(Err(too_large)) = declared_len.map(|len| nano_wire::check_body_len(len, limit))
        {
            self.discard_rest(headers, body);
            return Err(too_large);
        }
        let reading = async {
            let mut body = body;
            let capacity = declared.map_or(0, |len| len.min(limit as u64) as usize);
            let mut bytes = BodyBytes::Empty;
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|err| {
                    NanoError::bad_request(format!("cannot read the request body: {err}"))
                })?;
                let Ok(data) = frame.into_data() else {
                    continue; // Trailers carry nothing of the protocol.
                };
                if let Err(too_large) = nano_wire::check_body_len(bytes.len() + data.len(), limit) {
                    self.discard_rest(headers, body);
                    return Err(too_large);
                }
                bytes.push(data, capacity);
            }
            Ok(bytes)
        };
        match tokio::time::timeout(self.request_timeout, reading).await {
            Ok(result) => result,
            Err(_) => Err(NanoError::new(
                REQUEST_TIMEOUT_CODE,
                format!(
                    "the request body did not arrive within {:?}",
                    self.request_timeout
                ),
            )),
        }
    }

    /// Hands the rest of an oversized body to [`discard_after_answer`], unless the client waits
    /// for `100 Continue` before sending it: reading would then ask it for the body it need not
    /// send, and dropping the body tells hyper not to.
    fn discard_rest(&self, headers: &HeaderMap, body: Incoming) {
        let waits_for_continue = headers
            .get(EXPECT)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
        if !waits_for_continue {
            discard_after_answer(
                body,
                self.body_limit.saturating_mul(DISCARD_FACTOR),
                self.request_timeout,
            );
        }
    }
}

/// Every `Authorization` value of a request, in the order they came.
fn authorization(headers: &HeaderMap) -> Vec<&[u8]> {
    headers
        .get_all(AUTHORIZATION)
        .iter()
        .map(HeaderValue::as_bytes)
        .collect()
}

/// The root context of a request: its request id, its deadline, and a cancellation that
/// [`State::call`] fires when the client goes away.
fn root_ctx(call: &CallHeaders<'_>) -> Ctx {
    let cancellation = Cancellation::new();
    let mut ctx =
        Ctx::with_request_id(call.request_id.clone()).with_cancellation(cancellation.clone());
    if let Some(deadline) = call
        .budget
        .and_then(|budget| Instant::now().checked_add(budget))
    {
        ctx = ctx.with_deadline(deadline);
    }
    ctx
}

/// A request body read whole: usually one chunk, kept as it is; otherwise copied into one buffer.
enum BodyBytes {
    Empty,
    One(Bytes),
    Copied(Vec<u8>),
}

impl BodyBytes {
    fn len(&self) -> usize {
        match self {
            BodyBytes::Empty => 0,
            BodyBytes::One(bytes) => bytes.len(),
            BodyBytes::Copied(bytes) => bytes.len(),
        }
    }

    fn push(&mut self, data: Bytes, capacity: usize) {
        match self {
            BodyBytes::Empty => *self = BodyBytes::One(data),
            BodyBytes::One(first) => {
                let mut copied = Vec::with_capacity(capacity.max(first.len() + data.len()));
                copied.extend_from_slice(first);
                copied.extend_from_slice(&data);
                *self = BodyBytes::Copied(copied);
            }
            BodyBytes::Copied(copied) => copied.extend_from_slice(&data),
        }
    }

    fn as_slice(&self) -> &[u8] {
        match self {
            BodyBytes::Empty => &[],
            BodyBytes::One(bytes) => bytes,
            BodyBytes::Copied(bytes) => bytes,
        }
    }
}

/// Reads and drops up to `budget` more bytes of a refused body, for at most `time`, on a task
/// of its own, so that the answer is not held up and the request leaves the in-flight count at
/// once. The connection (whose answer says `Connection: close`) closes when this ends: at the
/// body's end, or once the budget or the time is spent. A client that writes its whole body
/// before it reads (most do) then finds the answer, where closing with its bytes unread would
/// reset the connection and destroy the answer in its receive buffer.
fn discard_after_answer(mut body: Incoming, budget: usize, time: Duration) {
    tokio::spawn(async move {
        let discarding = async {
            let mut read = 0usize;
            while read < budget {
                match body.frame().await {
                    Some(Ok(frame)) => read += frame.data_ref().map_or(0, Bytes::len),
                    Some(Err(_)) | None => break,
                }
            }
        };
        let _ = tokio::time::timeout(time, discarding).await;
    });
}

/// The redirect from a service's path without its trailing slash (`/svc2`) to the path with it:
/// `301` for `GET` and `HEAD`, `307` (which keeps the method and the body) for the rest.
fn redirect(parts: &Parts, method: &Method) -> HttpResponse {
    let mut location = format!("{}/", parts.uri.path());
    if let Some(query) = parts.uri.query() {
        location.push('?');
        location.push_str(query);
    }
    let mut response = Response::new(Full::default());
    *response.status_mut() = if *method == Method::GET || *method == Method::HEAD {
        StatusCode::MOVED_PERMANENTLY
    } else {
        StatusCode::TEMPORARY_REDIRECT
    };
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(LOCATION, value);
    }
    response
}

fn health_check(method: &Method) -> HttpResponse {
    if *method == Method::GET || *method == Method::HEAD {
        return Response::new(Full::default());
    }
    if *method == Method::OPTIONS {
        let mut response = Response::new(Full::default());
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD, OPTIONS"));
        return response;
    }
    let err = NanoError::new(
        codes::METHOD_NOT_ALLOWED,
        format!("method {method} is not allowed on {HEALTH_CHECK_PATH}"),
    );
    let mut response = error_response(&err);
    response
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static("GET, HEAD, OPTIONS"));
    response
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
    json_response(status_for(err.code()), error_body("", err))
}

/// A `503` for a request no service saw, marked so that clients know it is safe to send again.
fn refusal(msg: &'static str, close: bool) -> HttpResponse {
    let mut response = json_response(REFUSAL_STATUS, error_body("", &NanoError::unavailable(msg)));
    response.headers_mut().insert(
        NOT_PROCESSED_HEADER_NAME.clone(),
        HeaderValue::from_static("true"),
    );
    if close {
        close_after(&mut response);
    }
    response
}

fn close_after(response: &mut HttpResponse) {
    response
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
}
