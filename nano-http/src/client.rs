//! [`HttpTransport`] and [`HttpClient`]: the client side, a service that stands in for a remote
//! one.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::ResponseFuture;
use hyper_util::client::legacy::connect::HttpConnector;

use crate::connection::{ExchangeInfo, TrackingConnector};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use nano::{AnyRequest, AnyResponse, Api, Ctx, NanoError, Outcome, Service, codes};
use tokio::runtime::{Handle, Id};
use tokio::time::{Instant, Sleep};
use url::Url;

use crate::endpoint::Endpoint;
use crate::peers::Peers;
use crate::wire::{
    CLIENT_NAME_HEADER_NAME, DEADLINE_HEADER_NAME, JSON_CONTENT_TYPE_VALUE,
    NOT_PROCESSED_HEADER_NAME, REFUSAL_STATUS, REQ_ID_HEADER_NAME, check_json_content_type,
    decode_error_response,
};

/// The default limit on one call, from connecting to the last byte of the response.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The default limit on establishing a connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The default limit on the body of a peer's answer: 16 MiB.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 16 << 20;

/// The pooled HTTP/1.1 client every [`HttpClient`] of a transport shares.
///
/// hyper-util's client rather than a higher-level one: a call needs a fixed method and URL,
/// a few headers, a deadline and the whole body, and the layers a general-purpose client adds
/// per request (redirects, URL re-parsing, header copies) cost more than the call's own work
/// on loopback (see the HTTP transport section of `BENCHMARKS.md`).
type Pool = hyper_util::client::legacy::Client<TrackingConnector, Full<Bytes>>;

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
    http: Pool,
    timers: Timers,
    peers: Peers,
    timeout: Duration,
    max_response_bytes: usize,
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

    /// A client for the service of a declared API, at the address
    /// [`peers`](HttpTransport::peers) gives it, calling the endpoints its routes declare (see
    /// [`Endpoint::table`]). Request types the API declares without a route are refused with
    /// `C-BAD-REQUEST-TYPE`, as any request type without an endpoint.
    ///
    /// # Errors
    ///
    /// As [`client`](HttpTransport::client) and [`Endpoint::table`].
    pub fn api_client(&self, api: &'static Api) -> Result<HttpClient, NanoError> {
        let mut client = self.client(api.name(), Endpoint::table(api)?)?;
        client.api = Some(api);
        Ok(client)
    }

    /// Like [`api_client`](HttpTransport::api_client), at `address`.
    ///
    /// # Errors
    ///
    /// As [`client_at`](HttpTransport::client_at) and [`Endpoint::table`].
    pub fn api_client_at(&self, api: &'static Api, address: &str) -> Result<HttpClient, NanoError> {
        let mut client = self.client_at(api.name(), address, Endpoint::table(api)?)?;
        client.api = Some(api);
        Ok(client)
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
        let mut routes: Vec<ClientRoute> = Vec::new();
        for endpoint in endpoints {
            endpoint.validate(service)?;
            let url = format!("{}{}", peer.base_url(), endpoint.url_path(service));
            let invalid = |err: &dyn fmt::Display| {
                NanoError::new(
                    codes::INIT_FAILED,
                    format!("invalid endpoint URL {url:?}: {err}"),
                )
            };
            // Parsed (and percent-encoded where needed) once here, so a call only clones it.
            let parsed = Url::parse(&url).map_err(|err| invalid(&err))?;
            let uri = Uri::try_from(parsed.as_str()).map_err(|err| invalid(&err))?;
            // When two endpoints carry the same request type, the first one declared is used.
            let name = endpoint.request_type().name();
            if routes.iter().all(|route| route.name != name) {
                let method = endpoint.method();
                routes.push(ClientRoute {
                    name,
                    method,
                    uri,
                    endpoint,
                });
            }
        }
        Ok(HttpClient {
            name: peer.name().to_owned(),
            base_url: peer.base_url().to_owned(),
            routes,
            http: self.http.clone(),
            timers: self.timers.clone(),
            timeout: self.timeout,
            api: None,
            max_response_bytes: self.max_response_bytes,
        })
    }
}

impl fmt::Debug for HttpTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpTransport")
            .field("peers", &self.peers)
            .field("timeout", &self.timeout)
            .field("max_response_bytes", &self.max_response_bytes)
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
    max_response_bytes: usize,
}

impl Default for HttpTransportBuilder {
    fn default() -> Self {
        HttpTransportBuilder {
            peers: Peers::new(),
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            pool_idle_timeout: Some(Duration::from_secs(90)),
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
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

    /// Sets the largest response body accepted from a peer (default
    /// [`DEFAULT_MAX_RESPONSE_BYTES`]). A larger answer fails the call with `S-BAD-RESPONSE` as
    /// soon as it is known to be larger (from its `Content-Length`, or once the limit is passed
    /// while reading); nothing past the limit is buffered, and the connection is closed.
    #[must_use]
    pub fn max_response_bytes(mut self, bytes: usize) -> Self {
        self.max_response_bytes = bytes;
        self
    }

    /// Builds the transport. Connections are plain HTTP/1.1 with `TCP_NODELAY` and TCP
    /// keep-alive, made directly to the peer (no proxy).
    ///
    /// # Errors
    ///
    /// None with the settings above; the `Result` leaves room for settings that can be invalid
    /// (the error would be `S-INIT-FAILED`).
    pub fn build(self) -> Result<HttpTransport, NanoError> {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(self.connect_timeout));
        // Pooled connections to a peer that vanished without closing them are found out: idle
        // ones by TCP keep-alive probes (after 15 s, every 15 s, 3 of them), busy ones when sent
        // data stays unacknowledged for 30 s.
        connector.set_keepalive(Some(Duration::from_secs(15)));
        connector.set_keepalive_interval(Some(Duration::from_secs(15)));
        connector.set_keepalive_retries(Some(3));
        #[cfg(any(target_os = "android", target_os = "fuchsia", target_os = "linux"))]
        connector.set_tcp_user_timeout(Some(Duration::from_secs(30)));
        let http = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(self.pool_idle_timeout)
            .build(TrackingConnector(connector));
        Ok(HttpTransport {
            http,
            timers: Timers::default(),
            peers: self.peers,
            timeout: self.timeout,
            max_response_bytes: self.max_response_bytes,
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
/// | request id or caller name that cannot be sent as a header | `S-ENCODE` |
/// | connection refused, reset or dropped | `S-UNAVAILABLE` |
/// | timeout or caller's deadline reached | `S-TIMEOUT` |
/// | 2xx that is not JSON of the response type | `S-BAD-RESPONSE` |
/// | non-2xx without an error body | `S-ERROR` (`S-UNAVAILABLE` for 502/503, `S-TIMEOUT` for 408/504) |
/// | answer body over the transport's `max_response_bytes` | `S-BAD-RESPONSE` |
///
/// A request that a nano listener provably did not handle is sent once more, transparently,
/// within the same time limit:
///
/// - the answer is a `503` carrying [`X-Nano-Not-Processed: true`](crate::NOT_PROCESSED_HEADER)
///   (a nano listener refused it whole: shutting down, or too many requests in flight), or
/// - it went out on a reused keep-alive connection that the peer closed or reset before sending
///   a single byte of an answer (the peer closed the idle connection as the request was sent;
///   a running nano listener never closes a connection on a request it has read without
///   answering it). A server process that dies while handling a request (a crash, `SIGKILL`,
///   the OOM killer) closes its connections the same way, so such a request may have been
///   handled before it is sent again: a handler that must not run twice for one request should
///   be idempotent (e.g. keyed by its request id).
///
/// A second failure is reported as it is (`S-UNAVAILABLE` for both cases above).
///
/// Every call is limited, from connecting to the last byte of the response body, by the
/// transport's timeout or the caller's deadline, whichever comes first. Redirects are answers
/// like any other non-2xx status, not followed: a peer address names the server itself.
///
/// Made by [`HttpTransport::client`]. Cloning shares the connection pool.
#[derive(Clone)]
pub struct HttpClient {
    name: String,
    base_url: String,
    /// One route per request type, found by its wire name: a scan of a few names costs less
    /// than hashing one.
    routes: Vec<ClientRoute>,
    http: Pool,
    timers: Timers,
    timeout: Duration,
    /// The declared API the client was made from, if any.
    api: Option<&'static Api>,
    max_response_bytes: usize,
}

#[derive(Clone)]
struct ClientRoute {
    /// The wire name of the request type.
    name: &'static str,
    method: Method,
    uri: Uri,
    endpoint: Endpoint,
}

impl HttpClient {
    /// The base URL of the remote service's server.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    async fn send(&self, ctx: &Ctx, request: &AnyRequest) -> Outcome {
        let route = self.route(request.name())?;
        let body = nano_wire::encode_request(&route.endpoint, request)?.map(Bytes::from);
        let Some((content_type, bytes)) = self.exchange(ctx, ctx.caller(), route, body).await?
        else {
            return Ok(AnyResponse::new(()));
        };
        self.decode_response(route, content_type.as_ref(), &bytes)
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
        let body = route
            .endpoint
            .has_body()
            .then(|| Bytes::from(body.to_string().into_bytes()));
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
        let route = self.routes.iter().find(|route| route.name == request);
        route.ok_or_else(|| NanoError::bad_request_type(request))
    }

    /// Sends one request along `route` and returns the content type and body of a successful
    /// answer, or `None` for an endpoint without a response. Sends it a second time when the
    /// first attempt provably never reached the handler (see [`HttpClient`]).
    async fn exchange(
        &self,
        ctx: &Ctx,
        caller: Option<&str>,
        route: &ClientRoute,
        body: Option<Bytes>,
    ) -> Result<Option<(Option<HeaderValue>, Bytes)>, NanoError> {
        let (request, timeout) = self.request(ctx, caller, route, body.clone())?;
        // When the caller's deadline is the limit, running out of it reads as it does in-process.
        let timed_out = || match ctx.remaining() {
            Some(remaining) if remaining <= self.timeout => {
                nano_wire::out_of_time(caller.unwrap_or_default(), &self.name)
            }
            _ => self.timed_out(route),
        };
        // Handing the request over before the first await keeps it out of this future's state,
        // which nano boxes for every call; the sending itself starts at the first poll.
        let sent = self.http.request(request);
        // One limit from connecting to the last byte of the body, over both attempts: a peer
        // that hangs at any point ends the call with `S-TIMEOUT`.
        let mut limit = self.timers.take(Instant::now() + timeout);
        let Some(answer) = limit.within(self.answer(sent, route)).await else {
            return Err(timed_out());
        };
        let (status, content_type, bytes) = match answer {
            Answer::Complete(status, content_type, bytes) => (status, content_type, bytes),
            Answer::Failed(err) => return Err(err),
            Answer::NotProcessed(why) => {
                tracing::debug!(service = ?self.name, reason = why, "sending a request again");
                let (request, _) = self.request(ctx, caller, route, body)?;
                let sent = self.http.request(request);
                match limit.within(self.answer(sent, route)).await {
                    Some(Answer::Complete(status, content_type, bytes)) => {
                        (status, content_type, bytes)
                    }
                    Some(Answer::Failed(err)) => return Err(err),
                    Some(Answer::NotProcessed(_)) => {
                        return Err(NanoError::unavailable(format!(
                            "{} refused the request twice ({why})",
                            self.describe(route)
                        )));
                    }
                    None => return Err(timed_out()),
                }
            }
        };
        if !status.is_success() {
            return Err(decode_error_response(
                status,
                content_type.as_ref(),
                &bytes,
                &self.describe(route),
            ));
        }
        Ok(route
            .endpoint
            .has_response()
            .then_some((content_type, bytes)))
    }

    /// The HTTP request for a call along `route`, with the protocol's headers, and how long the
    /// call may take: the transport's limit, or the caller's remaining time when that is sooner.
    fn request(
        &self,
        ctx: &Ctx,
        caller: Option<&str>,
        route: &ClientRoute,
        body: Option<Bytes>,
    ) -> Result<(Request<Full<Bytes>>, Duration), NanoError> {
        let mut timeout = self.timeout;
        let json = body.is_some();
        let mut request = Request::new(body.map_or_else(Full::default, Full::new));
        *request.method_mut() = route.method.clone();
        *request.uri_mut() = route.uri.clone();
        let headers = request.headers_mut();
        let id = ctx.request_id().as_str();
        let id = self.header_value(
            id,
            Bytes::copy_from_slice(id.as_bytes()),
            "request id",
            route,
        )?;
        headers.insert(REQ_ID_HEADER_NAME.clone(), id);
        if let Some(caller) = caller {
            // A service's name lives as long as its edge, that is as long as the process: the
            // header shares it instead of copying it.
            let name = match ctx.edge().map(nano::Edge::caller) {
                Some(own) if std::ptr::eq(own, caller) => Bytes::from_static(own.as_bytes()),
                _ => Bytes::copy_from_slice(caller.as_bytes()),
            };
            let name = self.header_value(caller, name, "caller name", route)?;
            headers.insert(CLIENT_NAME_HEADER_NAME.clone(), name);
        }
        if let Some(remaining) = ctx.remaining() {
            let Some(millis) = nano_wire::deadline_millis(remaining) else {
                return Err(nano_wire::out_of_time(
                    caller.unwrap_or_default(),
                    &self.name,
                ));
            };
            headers.insert(DEADLINE_HEADER_NAME.clone(), HeaderValue::from(millis));
            timeout = timeout.min(remaining);
        }
        if json {
            headers.insert(CONTENT_TYPE, JSON_CONTENT_TYPE_VALUE.clone());
        }
        Ok((request, timeout))
    }

    /// Waits for the answer to a sent request and reads all of it, up to the response limit.
    async fn answer(&self, sent: ResponseFuture, route: &ClientRoute) -> Answer {
        let response = match sent.await {
            Ok(response) => response,
            Err(err) => {
                if !err.is_connect() && ExchangeInfo::unanswered_on_reused(err.connect_info()) {
                    return Answer::NotProcessed("a reused connection closed without an answer");
                }
                return Answer::Failed(self.transport_error(err.is_connect(), err, route));
            }
        };
        let status = response.status();
        if status == REFUSAL_STATUS
            && response
                .headers()
                .get(&NOT_PROCESSED_HEADER_NAME)
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"))
        {
            return Answer::NotProcessed("the peer refused it unprocessed");
        }
        let content_type = response.headers().get(CONTENT_TYPE).cloned();
        let limit = self.max_response_bytes;
        // hyper parsed the `Content-Length` already; its size hint is that length, exactly.
        let declared = hyper::body::Body::size_hint(response.body()).exact();
        if declared.is_some_and(|len| len > limit as u64) {
            return Answer::Failed(self.too_large(route, limit));
        }
        let mut body = response.into_body();
        let mut first: Option<Bytes> = None;
        let mut copied: Vec<u8> = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = match frame {
                Ok(frame) => frame,
                Err(err) => return Answer::Failed(self.transport_error(false, err, route)),
            };
            let Ok(data) = frame.into_data() else {
                continue;
            };
            let len = first.as_ref().map_or(0, Bytes::len) + copied.len();
            if len + data.len() > limit {
                // Dropping the body closes the connection: nothing more is read.
                return Answer::Failed(self.too_large(route, limit));
            }
            // The first chunk is kept as it is; later ones are copied into one buffer, so many
            // small chunks do not each pin a read buffer.
            match first.take() {
                None if copied.is_empty() => first = Some(data),
                None => copied.extend_from_slice(&data),
                Some(head) => {
                    let capacity = declared.map_or(0, |d| d.min(limit as u64) as usize);
                    copied.reserve(capacity.max(head.len() + data.len()));
                    copied.extend_from_slice(&head);
                    copied.extend_from_slice(&data);
                }
            }
        }
        let bytes = first.unwrap_or_else(|| Bytes::from(copied));
        Answer::Complete(status, content_type, bytes)
    }

    fn too_large(&self, route: &ClientRoute, limit: usize) -> NanoError {
        NanoError::new(
            codes::BAD_RESPONSE,
            format!(
                "{} answered with a body larger than {limit} bytes",
                self.describe(route)
            ),
        )
    }

    /// A header value of `bytes`, which hold `text` a caller chose (a request id, a service
    /// name).
    fn header_value(
        &self,
        text: &str,
        bytes: Bytes,
        what: &str,
        route: &ClientRoute,
    ) -> Result<HeaderValue, NanoError> {
        let to = || self.describe(route);
        nano_wire::check_header_value(what, text, to)?;
        // Checked above by the rule the transport-fidelity hook applies too.
        HeaderValue::from_maybe_shared(bytes).map_err(|_| {
            NanoError::new(
                codes::ENCODE,
                format!(
                    "cannot build the request to {}: the {what} {text:?} cannot be sent in a header",
                    to()
                ),
            )
        })
    }

    fn decode_response(
        &self,
        route: &ClientRoute,
        content_type: Option<&HeaderValue>,
        body: &[u8],
    ) -> Outcome {
        let problem = check_json_content_type(content_type).err();
        nano_wire::decode_response(&self.name, &route.endpoint, problem, body)
    }

    fn describe(&self, route: &ClientRoute) -> String {
        format!("service {:?} at {} {}", self.name, route.method, route.uri)
    }

    fn timed_out(&self, route: &ClientRoute) -> NanoError {
        NanoError::timeout(format!("call to {} ran out of time", self.describe(route)))
    }

    /// Codes a failure of the connection: `S-TIMEOUT` when the operating system gave up waiting
    /// (connecting, or a TCP user timeout), otherwise `S-UNAVAILABLE`.
    fn transport_error<E>(&self, connecting: bool, err: E, route: &ClientRoute) -> NanoError
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        if timed_out_in_os(&err) {
            return self.timed_out(route);
        }
        let what = if connecting {
            "cannot connect to"
        } else {
            "connection failed while calling"
        };
        NanoError::wrap(err, format!("{what} {}", self.describe(route)))
            .with_code(codes::UNAVAILABLE)
    }
}

/// Timers for the time limits of calls, kept between calls to be used again.
///
/// A new tokio timer that is due before every timer already armed wakes the runtime's driver, a
/// system call; for calls made one after the other that is every call, and on loopback it cost
/// 4% of a call. A kept timer moved to a later deadline costs one atomic operation instead.
/// A timer works only on the runtime that made it, so each is kept with that runtime's id.
#[derive(Clone, Default)]
struct Timers(Arc<Mutex<Vec<(Id, Timer)>>>);

/// A timer of a call's limit; boxed, so it can be kept after its call's future is gone.
type Timer = Pin<Box<Sleep>>;

impl Timers {
    /// How many timers are kept at most: enough for this many calls in flight at once.
    const KEPT: usize = 64;

    /// A limit at `deadline`, on a kept timer of this runtime or a new one.
    fn take(&self, deadline: Instant) -> Limit<'_> {
        let runtime = Handle::current().id();
        let kept = {
            let mut kept = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            let at = kept.iter().rposition(|(id, _)| *id == runtime);
            at.map(|at| kept.swap_remove(at).1)
        };
        let timer = match kept {
            Some(mut timer) => {
                timer.as_mut().reset(deadline);
                timer
            }
            None => Box::pin(tokio::time::sleep_until(deadline)),
        };
        Limit {
            timers: self,
            runtime,
            timer: Some(timer),
        }
    }
}

/// The time limit of one call; its timer goes back to the [`Timers`] when the call ends, however
/// it ends.
struct Limit<'a> {
    timers: &'a Timers,
    runtime: Id,
    timer: Option<Timer>,
}

impl Limit<'_> {
    /// `answer`, or `None` when the limit is reached first.
    async fn within(&mut self, answer: impl Future<Output = Answer>) -> Option<Answer> {
        let timer = self.timer.as_mut()?;
        tokio::select! {
            biased;
            answer = answer => Some(answer),
            () = timer => None,
        }
    }
}

impl Drop for Limit<'_> {
    fn drop(&mut self) {
        let Some(timer) = self.timer.take() else {
            return;
        };
        let mut kept = self.timers.0.lock().unwrap_or_else(PoisonError::into_inner);
        if kept.len() == Timers::KEPT {
            // The oldest may belong to a runtime that is gone.
            drop(kept.remove(0));
        }
        kept.push((self.runtime, timer));
    }
}

/// How one attempt at a call ended.
enum Answer {
    /// A whole answer: status, content type and body.
    Complete(StatusCode, Option<HeaderValue>, Bytes),
    /// The request provably never reached a handler, for this reason; it may be sent again.
    NotProcessed(&'static str),
    Failed(NanoError),
}

/// Whether `err` or one of its sources is an I/O timeout.
fn timed_out_in_os(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(err) = next {
        if err
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return true;
        }
        next = err.source();
    }
    false
}

impl Service for HttpClient {
    fn name(&self) -> &str {
        &self.name
    }

    fn api(&self) -> Option<&'static Api> {
        self.api
    }

    async fn handle(&self, ctx: Ctx, request: AnyRequest) -> Outcome {
        self.send(&ctx, &request).await
    }
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut requests: Vec<&str> = self.routes.iter().map(|route| route.name).collect();
        requests.sort_unstable();
        f.debug_struct("HttpClient")
            .field("name", &self.name)
            .field("base_url", &self.base_url)
            .field("requests", &requests)
            .field("timeout", &self.timeout)
            .field("max_response_bytes", &self.max_response_bytes)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error whose source is `inner`, like the client's errors around an I/O error.
    #[derive(Debug)]
    struct Outer(std::io::Error);

    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("client error (Connect)")
        }
    }

    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn io_timeouts_are_found_anywhere_in_the_chain() {
        let io = |kind| std::io::Error::new(kind, "tcp connect error");
        assert!(timed_out_in_os(&io(std::io::ErrorKind::TimedOut)));
        assert!(timed_out_in_os(&Outer(io(std::io::ErrorKind::TimedOut))));
        assert!(!timed_out_in_os(&Outer(io(
            std::io::ErrorKind::ConnectionRefused
        ))));
    }
}
