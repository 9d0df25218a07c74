//! The test service `echo`, and serving it over NATS.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use nano::{Ctx, NanoError, ServiceSet};
use nano_nats::{NatsListener, NatsTransport};
use nano_server::Listener;
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;

pub(crate) type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Say {
    pub(crate) param: String,
    /// Answer this late.
    pub(crate) delay_ms: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Said {
    pub(crate) value: String,
    pub(crate) replica: String,
    pub(crate) request_id: String,
    pub(crate) caller: String,
    /// The callee's remaining time when it started, in whole milliseconds; 0 for none.
    pub(crate) remaining_ms: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Fail {}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Ping {}

pub(crate) mod echo {
    use super::*;
    nano::api! {
        service "echo";
        fn say(Say) -> Said = "echo.Say";
        fn fail(Fail) -> () = "echo.Fail";
        fn ping(Ping) -> () = "echo.Ping";
    }
}

/// One replica of `echo`: counts what it serves, tells when a request started and when the
/// context of a slow one was cancelled (seen by a task the handler spawned).
#[derive(Clone, Default)]
pub(crate) struct Echo {
    pub(crate) replica: String,
    pub(crate) served: Arc<AtomicUsize>,
    pub(crate) started: Arc<Notify>,
    pub(crate) cancelled: Arc<Notify>,
}

impl Echo {
    pub(crate) fn named(replica: &str) -> Echo {
        Echo {
            replica: replica.to_owned(),
            ..Echo::default()
        }
    }

    pub(crate) fn served(&self) -> usize {
        self.served.load(Ordering::SeqCst)
    }
}

impl echo::Handler for Echo {
    async fn say(&self, ctx: &Ctx, req: Say) -> Result<Said, NanoError> {
        let remaining_ms = ctx.remaining().map_or(0, |r| r.as_millis() as u64);
        self.started.notify_one();
        if let (true, Some(cancellation)) = (req.delay_ms > 0, ctx.cancellation()) {
            let (cancellation, cancelled) = (cancellation.clone(), Arc::clone(&self.cancelled));
            tokio::spawn(async move {
                cancellation.cancelled().await;
                cancelled.notify_one();
            });
        }
        if req.delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(req.delay_ms)).await;
        }
        self.served.fetch_add(1, Ordering::SeqCst);
        Ok(Said {
            value: format!("echo_{}", req.param),
            replica: self.replica.clone(),
            request_id: ctx.request_id().as_str().to_owned(),
            caller: ctx.caller().unwrap_or_default().to_owned(),
            remaining_ms,
        })
    }

    async fn fail(&self, _ctx: &Ctx, _req: Fail) -> Result<(), NanoError> {
        Err(NanoError::not_found("no such thing"))
    }

    async fn ping(&self, _ctx: &Ctx, _req: Ping) -> Result<(), NanoError> {
        Ok(())
    }
}

/// `echo` served over NATS in the background until [`Server::stop`].
pub(crate) struct Server {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), NanoError>>,
}

impl Server {
    /// Serves `echo` with `listener` and waits until its subscriptions reached the broker.
    pub(crate) async fn start(
        transport: &NatsTransport,
        echo: Echo,
        listener: impl FnOnce(NatsListener) -> NatsListener,
    ) -> Server {
        let set = ServiceSet::builder()
            .service(echo::service(move |_| Ok(echo)))
            .build()
            .unwrap();
        let listener = listener(transport.listener().expose_api(&echo::API).unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(nano_server::serve_until(
            set,
            vec![listener.boxed()],
            async {
                let _ = stopped.await;
            },
        ));
        let server = Server {
            stop: Some(stop),
            task,
        };
        // Serving has begun once a request is answered (the listener flushes its subscriptions
        // before it reads any).
        let client = client_set(transport);
        for _ in 0..200 {
            let probe = client
                .client("probe", "echo")
                .unwrap()
                .call(&Ctx::new(), Say::default())
                .await;
            if probe.is_ok() {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("echo was not served over NATS within 2 s");
    }

    /// Requests shutdown and returns what the listener returned.
    pub(crate) async fn stop(mut self) -> Result<(), NanoError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await.expect("the server task")
    }
}

/// A set that reaches `echo` over NATS.
pub(crate) fn client_set(transport: &NatsTransport) -> ServiceSet {
    ServiceSet::builder()
        .service(transport.api_client(&echo::API).unwrap())
        .build()
        .unwrap()
}
