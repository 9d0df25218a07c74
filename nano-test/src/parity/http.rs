//! [`Deployment::http`]: a set's services behind a real HTTP server on loopback.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use nano::{
    AnyRequest, ClientHook, Ctx, Edge, NanoError, Outcome, Service, ServiceSet, ServiceSetBuilder,
    SharedService, codes,
};
use nano_http::{Endpoint, HttpClient, HttpListener, HttpTransport};
use nano_server::Listener;
use tokio::sync::oneshot;

use futures_util::future::BoxFuture;

use super::{Deployment, JsonCall, Wire};
use crate::CallOutcome;

/// How long requests still in flight when a deployment is dropped may take to finish. A test
/// has stopped waiting for them by then, so shutdown does not hold up the test for long.
const GRACE_PERIOD: Duration = Duration::from_secs(1);

/// The endpoint table of a deployment: a service name to its endpoints.
type EndpointTable = dyn Fn(&str) -> Option<Vec<Endpoint>> + Send + Sync;

impl Deployment {
    /// A deployment that is already running elsewhere, reached over HTTP: `peers` says where
    /// each service is served, `endpoints(name)` how it is called. Named `remote`; calls as
    /// `"test"`. This is how scenarios are replayed against a live cluster from a test
    /// ([`scenario::replay_outcome`](crate::scenario::replay_outcome)).
    ///
    /// ```no_run
    /// use nano_http::Peers;
    /// use nano_test::Deployment;
    /// use nano_test::scenario::{Registry, Scenario, replay_outcome};
    ///
    /// # async fn live() -> Result<(), Box<dyn std::error::Error>> {
    /// let cluster = Deployment::remote("svc2=127.0.0.1:8000".parse::<Peers>()?, services::api::endpoints)?;
    /// let scenario = Scenario::load("scenarios/recorded/svc2-get.json")?;
    /// let registry = Registry::new().with_all(services::api::request_types());
    /// replay_outcome(&scenario, &registry, &cluster).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// `S-INIT-FAILED` when the HTTP client cannot be set up. Asking the deployment for a client
    /// of a service `peers` or `endpoints` do not know is `C-BAD-USE` / `S-UNKNOWN-SERVICE`.
    pub fn remote(
        peers: nano_http::Peers,
        endpoints: impl Fn(&str) -> Option<Vec<Endpoint>> + Send + Sync + 'static,
    ) -> Result<Self, NanoError> {
        Deployment::over_http("remote", peers, endpoints, ())
    }

    /// A deployment named `name` that reaches the services at `peers` over HTTP and keeps
    /// `keep` (e.g. the processes serving them) alive as long as it or a clone of it lives.
    pub(crate) fn over_http(
        name: impl Into<String>,
        peers: nano_http::Peers,
        endpoints: impl Fn(&str) -> Option<Vec<Endpoint>> + Send + Sync + 'static,
        keep: impl Send + Sync + 'static,
    ) -> Result<Self, NanoError> {
        let endpoints: Arc<EndpointTable> = Arc::new(endpoints);
        let keep: Keep = Arc::new(keep);
        let wire = Arc::new(HttpWire {
            transport: HttpTransport::new(peers)?,
            at: None,
            endpoints: Arc::clone(&endpoints),
            server: None,
            _keep: Some(Arc::clone(&keep)),
        });
        let clients = Arc::clone(&wire);
        Ok(
            Deployment::through_clients(name, keep, move |service| clients.client(service))
                .with_wire(wire),
        )
    }

    /// The services of `builder` behind a real HTTP server on a free loopback port, named `http`.
    ///
    /// One [`HttpListener`] on `127.0.0.1:0` serves every service of the set with the endpoints
    /// `endpoints(name)` gives it (e.g. `services::api::endpoints`, or a closure over the API
    /// modules' `endpoints()`); the deployment's clients are [`HttpClient`]s in a set of their
    /// own, calling as `"test"`. Calls between the services go over HTTP too, through the same
    /// listener, as if each service ran in a server of its own. So every hop crosses the wire,
    /// the same hops a [`TransportFidelity`](crate::TransportFidelity) hook simulates, and a
    /// [`with_fidelity`](Deployment::with_fidelity) deployment of the same services is expected
    /// to answer alike; where they differ, the difference is one the hook cannot see (e.g. an
    /// endpoint table that sends a request with fields as a body-less `GET`). Hooks of `builder`
    /// see a call between services twice: when the caller makes it and when the listener hands
    /// it to the callee.
    ///
    /// The server and the deployment's HTTP calls run on a thread with a runtime of its own, on
    /// real time, whatever the caller's runtime does: a `current_thread` test runtime blocked in
    /// `Property::run_blocking`, a paused clock (`start_paused`; give calls no deadline there, as
    /// the paused clock jumps to it while the server works), or no runtime at all. A caller that
    /// stops waiting hangs up, and the server cancels the request as it would for any client.
    /// The server lives as long as the deployment, a clone of it or a client it handed out; when
    /// the last of them is dropped, it stops accepting, gives requests in flight a short grace
    /// period and its thread is joined, so nothing of it outlives the deployment.
    ///
    /// ```
    /// use nano::ServiceSet;
    /// use nano_http::Endpoint;
    /// use nano_test::{Deployment, ParityCheck};
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Debug, Clone, Default, Serialize, Deserialize)] pub struct Req { pub param: String }
    /// # #[derive(Debug, Clone, Default, Serialize, Deserialize)] pub struct Resp { pub value: String }
    /// # impl nano::Request for Req { type Response = Resp; const NAME: &'static str = "svc1.Req"; }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), nano::NanoError> {
    /// let services = || {
    ///     ServiceSet::builder().service(nano_test::request_fn("svc1", |_ctx, r: Req| async move {
    ///         Ok(Resp { value: format!("svc1_{}", r.param) })
    ///     }))
    /// };
    /// let endpoints = |service: &str| match service {
    ///     "svc1" => Some(vec![Endpoint::post::<Req>("/")]),
    ///     _ => None,
    /// };
    /// let http = Deployment::http(services(), endpoints)?;
    /// let resp = http.client("svc1")?.call(&nano::Ctx::new(), Req { param: "x".into() }).await?;
    /// assert_eq!(resp.value, "svc1_x");
    ///
    /// // Does the fidelity hook predict what the wire does?
    /// ParityCheck::new([Deployment::with_fidelity(services())?, http])
    ///     .request("svc1", Req { param: "y".into() })
    ///     .run()
    ///     .await?
    ///     .assert_consistent();
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// `C-BAD-USE` when `endpoints` has no endpoints for a service of the set; `S-INIT-FAILED`
    /// for an invalid endpoint or when the server or the HTTP clients cannot be set up;
    /// `S-UNAVAILABLE` when no loopback port can be bound; what building the set reports.
    pub fn http(
        builder: ServiceSetBuilder,
        endpoints: impl Fn(&str) -> Option<Vec<Endpoint>> + Send + Sync + 'static,
    ) -> Result<Self, NanoError> {
        let endpoints: Arc<EndpointTable> = Arc::new(endpoints);
        // Bound here, before the set is built, so that the services' own clients know the
        // address; the server thread takes it over.
        let tcp = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|tcp| tcp.set_nonblocking(true).map(|()| tcp))
            .map_err(|err| {
                NanoError::wrap(err, "cannot listen on a loopback port")
                    .with_code(codes::UNAVAILABLE)
            })?;
        let addr = tcp.local_addr().map_err(|err| {
            NanoError::wrap(err, "cannot read the listening address").with_code(codes::UNAVAILABLE)
        })?;

        let building = Arc::new(AtomicBool::new(true));
        let set = builder
            .hook(OverHttp {
                building: Arc::clone(&building),
                transport: HttpTransport::builder().build()?,
                addr: addr.to_string(),
                endpoints: Arc::clone(&endpoints),
            })
            .build()?;
        building.store(false, Ordering::Release);

        let mut exposed = Vec::new();
        for name in set.names() {
            let table = endpoints(name).ok_or_else(|| {
                NanoError::new(
                    crate::codes::BAD_USE,
                    format!(
                        "service {name:?} has no HTTP endpoints; an HTTP deployment serves every service of the set"
                    ),
                )
            })?;
            exposed.push((name.to_owned(), table));
        }

        let transport = HttpTransport::builder().build()?;
        let clients = exposed
            .iter()
            .map(|(name, table)| transport.client_at(name, &addr.to_string(), table.clone()))
            .collect::<Result<Vec<HttpClient>, NanoError>>()?;
        let server = Arc::new(HttpServer::start(set, tcp, exposed)?);
        let mut remote = ServiceSet::builder();
        for client in clients {
            remote = remote.service(Served {
                client,
                server: Arc::clone(&server),
            });
        }
        let wire = Arc::new(HttpWire {
            transport,
            at: Some(addr.to_string()),
            endpoints,
            server: Some(server),
            _keep: None,
        });
        Ok(
            Deployment::from_set("http", remote.build()?, crate::set::DEFAULT_CALLER)
                .with_wire(wire),
        )
    }
}

/// Whatever a deployment must keep alive.
type Keep = Arc<dyn std::any::Any + Send + Sync>;

/// Recorded requests over HTTP, as the deployment's own clients send them.
struct HttpWire {
    transport: HttpTransport,
    /// Where every service is, when one server serves them all; else the transport's peers.
    at: Option<String>,
    endpoints: Arc<EndpointTable>,
    /// The server thread whose runtime makes the calls, for [`Deployment::http`].
    server: Option<Arc<HttpServer>>,
    _keep: Option<Keep>,
}

impl HttpWire {
    fn client(&self, service: &str) -> Result<HttpClient, NanoError> {
        let table = (self.endpoints)(service).ok_or_else(|| {
            NanoError::new(
                crate::codes::BAD_USE,
                format!("no endpoints are declared for service {service:?}"),
            )
        })?;
        match &self.at {
            Some(addr) => self.transport.client_at(service, addr, table),
            None => self.transport.client(service, table),
        }
    }
}

impl Wire for HttpWire {
    fn refuses(&self, service: &str, request: &str) -> Option<String> {
        let table = (self.endpoints)(service)?;
        if table.iter().any(|e| e.request_type().name() == request) {
            None
        } else {
            Some(format!(
                "{service} declares no HTTP endpoint for {request}, so the HTTP client refuses it \
                 before anything is sent"
            ))
        }
    }

    fn send_json(&self, call: JsonCall) -> BoxFuture<'static, CallOutcome> {
        let client = match self.client(&call.service) {
            Ok(client) => client,
            Err(err) => return Box::pin(std::future::ready(CallOutcome::from_error(&err))),
        };
        let sent = async move {
            match client
                .call_json(&call.ctx, Some(&call.caller), &call.request, &call.body)
                .await
            {
                Ok(body) => CallOutcome::Response(body.into()),
                Err(err) => CallOutcome::from_error(&err),
            }
        };
        match &self.server {
            None => Box::pin(sent),
            Some(server) => {
                let mut call = AbortOnDrop(server.runtime.spawn(sent));
                Box::pin(async move {
                    match (&mut call.0).await {
                        Ok(outcome) => outcome,
                        Err(err) => CallOutcome::from_error(&NanoError::internal(format!(
                            "the call over HTTP ended abnormally: {err}"
                        ))),
                    }
                })
            }
        }
    }
}

/// Sends the services' calls to each other over HTTP: the clients a set hands out while it is
/// being built are the ones services ask for in `init`, i.e. their dependencies; those reach the
/// callee through the listener. Clients made afterwards, which is how the listener reaches the
/// services, call them in-process.
struct OverHttp {
    building: Arc<AtomicBool>,
    transport: HttpTransport,
    addr: String,
    endpoints: Arc<EndpointTable>,
}

impl ClientHook for OverHttp {
    fn wrap(&self, edge: &Edge, next: SharedService) -> SharedService {
        if !self.building.load(Ordering::Acquire) {
            return next;
        }
        // A callee without endpoints or with invalid ones fails the deployment once the set is
        // built (with the same checks), so the in-process path is never used then.
        let Some(endpoints) = (self.endpoints)(edge.callee()) else {
            return next;
        };
        match self
            .transport
            .client_at(edge.callee(), &self.addr, endpoints)
        {
            Ok(client) => SharedService::new(client),
            Err(_) => next,
        }
    }
}

/// A client of the deployment's set: the HTTP client, and the server it must keep running.
struct Served {
    // Dropped before the server, so that its idle connections are gone when the server stops.
    client: HttpClient,
    server: Arc<HttpServer>,
}

impl Service for Served {
    fn name(&self) -> &str {
        self.client.name()
    }

    /// Makes the HTTP call on the server thread's runtime: the connection pool and the
    /// transport's timers then never belong to the caller's runtime, which may be paused, be
    /// blocked or end before the deployment does.
    async fn handle(&self, ctx: Ctx, req: AnyRequest) -> Outcome {
        let client = self.client.clone();
        let mut call = AbortOnDrop(
            self.server
                .runtime
                .spawn(async move { client.handle(ctx, req).await }),
        );
        (&mut call.0).await.map_err(|err| {
            NanoError::internal(format!(
                "the call to {:?} over HTTP ended abnormally: {err}",
                self.client.name()
            ))
        })?
    }
}

/// Aborts the HTTP call when its caller stops waiting, which closes its connection as a real
/// client giving up does.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The server thread: stopped and joined when dropped. Its runtime also runs the
/// deployment's HTTP calls.
struct HttpServer {
    runtime: tokio::runtime::Handle,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl HttpServer {
    /// Starts serving `set` on `tcp` on a thread of its own and waits until the listener is set
    /// up (connections queue on the bound socket until it accepts them).
    fn start(
        set: ServiceSet,
        tcp: std::net::TcpListener,
        exposed: Vec<(String, Vec<Endpoint>)>,
    ) -> Result<Self, NanoError> {
        let (ready_tx, ready_rx) = mpsc::sync_channel(1);
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("nano-test-http".to_owned())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(err) => {
                        let _ = ready_tx.send(Err(NanoError::wrap(
                            err,
                            "cannot start the HTTP server's runtime",
                        )
                        .with_code(codes::INIT_FAILED)));
                        return;
                    }
                };
                let handle = runtime.handle().clone();
                runtime.block_on(async move {
                    let listener = match listener(tcp, exposed) {
                        Ok(listener) => listener,
                        Err(err) => {
                            let _ = ready_tx.send(Err(err));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(handle));
                    let served = nano_server::serve_until(set, vec![listener.boxed()], async {
                        // A dropped sender stops the server as well.
                        let _ = stopped.await;
                    })
                    .await;
                    if let Err(err) = served {
                        tracing::warn!(error = %err, "the HTTP deployment's server failed");
                    }
                });
            })
            .map_err(|err| {
                NanoError::wrap(err, "cannot start the HTTP server's thread")
                    .with_code(codes::INIT_FAILED)
            })?;
        let ready = ready_rx.recv();
        let stop = Some(stop);
        let thread = Some(thread);
        match ready {
            Ok(Ok(runtime)) => Ok(HttpServer {
                runtime,
                stop,
                thread,
            }),
            Ok(Err(err)) => {
                stop_and_join(stop, thread);
                Err(err)
            }
            // The thread ended without a word, which only a panic does.
            Err(_) => {
                stop_and_join(stop, thread);
                Err(NanoError::new(
                    codes::INIT_FAILED,
                    "the HTTP server's thread ended before it was ready",
                ))
            }
        }
    }
}

/// The listener, on the server thread's runtime (a socket belongs to the runtime that
/// registers it).
fn listener(
    tcp: std::net::TcpListener,
    exposed: Vec<(String, Vec<Endpoint>)>,
) -> Result<HttpListener, NanoError> {
    let tcp = tokio::net::TcpListener::from_std(tcp).map_err(|err| {
        NanoError::wrap(err, "cannot serve on the loopback port").with_code(codes::UNAVAILABLE)
    })?;
    let mut listener = HttpListener::from_tcp(tcp)?.grace_period(GRACE_PERIOD);
    for (name, table) in exposed {
        listener = listener.expose(&name, table)?;
    }
    Ok(listener)
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        stop_and_join(self.stop.take(), self.thread.take());
    }
}

/// Tells the server to stop and waits for its thread to end.
fn stop_and_join(stop: Option<oneshot::Sender<()>>, thread: Option<JoinHandle<()>>) {
    drop(stop);
    if let Some(thread) = thread {
        // Joining from the server's own thread would never return; that happens only if a
        // service of the deployment held the last client of it.
        if thread.thread().id() != std::thread::current().id() {
            let _ = thread.join();
        }
    }
}
