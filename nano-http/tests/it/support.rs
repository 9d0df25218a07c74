//! A small test API, a service implementing it, and a server running on a free loopback port.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nano::{AnyRequest, Ctx, Edge, NanoError, Outcome, Service, ServiceSet};
use nano_http::{Endpoint, HttpListener, HttpTransport, Method, Peers};
use nano_server::Listener;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// Echoes `text` with what the service saw of its context.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Echo {
    pub(crate) text: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Echoed {
    pub(crate) text: String,
    pub(crate) caller: String,
    pub(crate) req_id: String,
    pub(crate) remaining_ms: Option<u64>,
}

impl nano::Request for Echo {
    type Response = Echoed;
    const NAME: &'static str = "test.Echo";
}

/// A body-less request (`GET`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Peek {}

impl nano::Request for Peek {
    type Response = Echoed;
    const NAME: &'static str = "test.Peek";
}

/// A request without a response body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Fire {
    pub(crate) text: String,
}

impl nano::Request for Fire {
    type Response = ();
    const NAME: &'static str = "test.Fire";
}

/// Fails with `NanoError::wrap(NanoError::new(code, "inner"), msg)`; with neither code nor msg,
/// with an error that has neither either.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Fail {
    pub(crate) code: String,
    pub(crate) msg: String,
}

impl nano::Request for Fail {
    type Response = Echoed;
    const NAME: &'static str = "test.Fail";
}

/// Never answers: reports that it started, and spawns a watcher that reports, once the request
/// tree is done, whether it expired or was cancelled.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Stall {}

impl nano::Request for Stall {
    type Response = Echoed;
    const NAME: &'static str = "test.Stall";
}

/// A request type no endpoint declares.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Undeclared {}

impl nano::Request for Undeclared {
    type Response = Echoed;
    const NAME: &'static str = "test.Undeclared";
}

pub(crate) const ECHO: &str = "echo";

pub(crate) fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::post::<Echo>("/"),
        Endpoint::get::<Peek>("/"),
        Endpoint::post::<Fire>("/fire"),
        Endpoint::post::<Fail>("/fail"),
        Endpoint::new::<Stall>(Method::PUT, "/stall"),
    ]
}

/// How the tree of a stalled request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ended {
    pub(crate) expired: bool,
    pub(crate) cancelled: bool,
}

/// Reports of the `echo` service's `Stall` handler.
pub(crate) struct StallReports {
    pub(crate) started: mpsc::UnboundedReceiver<()>,
    pub(crate) ended: mpsc::UnboundedReceiver<Ended>,
}

/// The `echo` service.
pub(crate) struct EchoService {
    name: String,
    started: mpsc::UnboundedSender<()>,
    ended: mpsc::UnboundedSender<Ended>,
}

impl EchoService {
    pub(crate) fn new() -> (Self, StallReports) {
        Self::named(ECHO)
    }

    pub(crate) fn named(name: &str) -> (Self, StallReports) {
        let (started_tx, started) = mpsc::unbounded_channel();
        let (ended_tx, ended) = mpsc::unbounded_channel();
        let service = EchoService {
            name: name.to_owned(),
            started: started_tx,
            ended: ended_tx,
        };
        (service, StallReports { started, ended })
    }
}

fn echoed(ctx: &Ctx, text: String) -> Echoed {
    Echoed {
        text,
        caller: ctx.caller().unwrap_or_default().to_owned(),
        req_id: ctx.request_id().to_string(),
        remaining_ms: ctx.remaining().map(|d| d.as_millis() as u64),
    }
}

impl Service for EchoService {
    fn name(&self) -> &str {
        &self.name
    }

    async fn handle(&self, ctx: Ctx, req: AnyRequest) -> Outcome {
        nano::dispatch!(req, {
            Echo => |r| Ok(echoed(&ctx, r.text)),
            Peek => |_| Ok(echoed(&ctx, "peek".into())),
            Fire => |_| Ok(()),
            Fail => |r| Err(if r.code.is_empty() && r.msg.is_empty() {
                NanoError::new("", "")
            } else {
                NanoError::wrap(NanoError::new(r.code, "inner"), r.msg)
            }),
            Stall => |_| {
                let watched = ctx.clone();
                let ended = self.ended.clone();
                tokio::spawn(async move {
                    watched.done().await;
                    let _ = ended.send(Ended {
                        expired: watched.is_expired(),
                        cancelled: watched.is_cancelled(),
                    });
                });
                let _ = self.started.send(());
                std::future::pending::<Result<Echoed, NanoError>>().await
            },
        })
    }
}

/// A listener serving a set on a free loopback port, stopped when dropped.
pub(crate) struct Server {
    pub(crate) addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), NanoError>>>,
}

impl Server {
    /// Serves `set`, exposing `echo` unless `configure` says otherwise.
    pub(crate) async fn start(set: ServiceSet) -> Server {
        Self::start_with(set, |listener| listener.expose(ECHO, endpoints()).unwrap()).await
    }

    pub(crate) async fn start_with(
        set: ServiceSet,
        configure: impl FnOnce(HttpListener) -> HttpListener,
    ) -> Server {
        let listener = configure(HttpListener::bind("127.0.0.1:0").await.unwrap());
        let addr = listener.local_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(nano_server::serve_until(
            set,
            vec![listener.boxed()],
            async {
                let _ = stopped.await;
            },
        ));
        Server {
            addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// The echo service alone, with the receivers of its stall reports.
    pub(crate) async fn echo() -> (Server, StallReports) {
        let (echo, reports) = EchoService::new();
        let set = ServiceSet::builder().service(echo).build().unwrap();
        (Server::start(set).await, reports)
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Requests shutdown without waiting for it.
    pub(crate) fn trigger_stop(&mut self) {
        self.stop.take();
    }

    /// Requests shutdown and waits until the listener returned.
    pub(crate) async fn stop(mut self) -> Result<(), NanoError> {
        self.trigger_stop();
        let task = self.task.take().unwrap();
        bounded(task).await.unwrap()
    }
}

/// A set holding an HTTP client named `echo` for the server at `addr`.
pub(crate) fn remote_echo(addr: SocketAddr) -> ServiceSet {
    remote_echo_with(addr, HttpTransport::builder())
}

pub(crate) fn remote_echo_with(
    addr: SocketAddr,
    builder: nano_http::HttpTransportBuilder,
) -> ServiceSet {
    let peers: Peers = format!("{ECHO}={addr}").parse().unwrap();
    let transport = builder.peers(peers).build().unwrap();
    let client = transport.client(ECHO, endpoints()).unwrap();
    ServiceSet::builder().service(client).build().unwrap()
}

/// Bounds a wait that would otherwise hang a broken test forever. Generous: it only turns a hang
/// into a failure and never decides a passing case.
pub(crate) async fn bounded<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(30), future)
        .await
        .expect("the operation hung")
}

/// A hook that records every edge it wraps.
#[derive(Clone, Default)]
pub(crate) struct EdgeLog(pub Arc<Mutex<Vec<Edge>>>);

impl EdgeLog {
    pub(crate) fn edges(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect()
    }
}

impl nano::ClientHook for EdgeLog {
    fn wrap(&self, edge: &Edge, next: nano::SharedService) -> nano::SharedService {
        self.0.lock().unwrap().push(edge.clone());
        next
    }
}

/// An address nothing listens on: bound, then released.
pub(crate) async fn closed_port() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

/// `front`, a local service that reaches `echo` (remote in these tests): it forwards `Echo` and
/// `Stall` as they are, and wraps the error of a forwarded `Fail` with "front failure".
#[derive(Default)]
pub(crate) struct Front {
    echo: Option<nano::Client>,
}

impl Service for Front {
    fn name(&self) -> &str {
        "front"
    }

    fn init(&mut self, deps: &mut nano::Dependencies<'_>) -> Result<(), NanoError> {
        self.echo = Some(deps.client(ECHO)?);
        Ok(())
    }

    async fn handle(&self, ctx: Ctx, req: AnyRequest) -> Outcome {
        let echo = self.echo.as_ref().expect("initialised");
        nano::dispatch!(req, {
            Echo => |r| echo.call(&ctx, r).await,
            Stall => |r| echo.call(&ctx, r).await,
            Fail => |r| echo.call(&ctx, r).await.map_err(|err| NanoError::wrap(err, "front failure")),
        })
    }
}
