//! Calls: context propagation, typed responses, deadlines, cancellation and hooks.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nano::{
    AnyRequest, Cancellation, Client, Ctx, Dependencies, Edge, NanoError, Outcome, Service,
    ServiceSet, SharedService, codes,
};
use nano_test::{request_fn, service_fn};

use crate::{Hang, Hop, Probe, Seen, hang_forever};

/// Forwards a probe to the service it names and appends what it saw.
struct Relay {
    name: &'static str,
    next: Option<(&'static str, Option<Client>)>,
}

impl Relay {
    fn new(name: &'static str, next: Option<&'static str>) -> Self {
        Relay {
            name,
            next: next.map(|n| (n, None)),
        }
    }
}

impl Service for Relay {
    fn name(&self) -> &str {
        self.name
    }

    fn init(&mut self, deps: &mut Dependencies<'_>) -> Result<(), NanoError> {
        if let Some((name, client)) = &mut self.next {
            *client = Some(deps.client(name)?);
        }
        Ok(())
    }

    async fn handle(&self, ctx: Ctx, req: AnyRequest) -> Outcome {
        nano::dispatch!(req, {
            Probe => |probe| {
                let mut seen = match &self.next {
                    Some((_, Some(client))) => client.call(&ctx, probe).await?,
                    _ => Seen::default(),
                };
                seen.hops.push(Hop::of(&ctx));
                Ok(seen)
            },
        })
    }
}

fn chain() -> ServiceSet {
    ServiceSet::builder()
        .service(Relay::new("a", Some("b")))
        .service(Relay::new("b", Some("c")))
        .service(Relay::new("c", None))
        .build()
        .unwrap()
}

#[tokio::test]
async fn request_id_caller_service_and_metadata_propagate_across_hops() {
    let set = chain();
    let ctx = Ctx::with_request_id("0123456789abcdef0123456789abcdef").with_metadata("user", "ada");
    let seen = set
        .client("edge", "a")
        .unwrap()
        .call(&ctx, Probe::default())
        .await
        .unwrap();
    let hops: Vec<_> = seen
        .hops
        .iter()
        .map(|h| (h.caller.as_deref(), h.service.as_deref(), h.user.as_deref()))
        .collect();
    assert_eq!(
        hops,
        [
            (Some("b"), Some("c"), Some("ada")),
            (Some("a"), Some("b"), Some("ada")),
            (Some("edge"), Some("a"), Some("ada")),
        ]
    );
    assert!(
        seen.hops
            .iter()
            .all(|h| h.request_id == "0123456789abcdef0123456789abcdef")
    );
}

#[tokio::test]
async fn a_root_context_gets_a_generated_request_id_that_is_kept() {
    let set = chain();
    let ctx = Ctx::new();
    let seen = set
        .client("test", "a")
        .unwrap()
        .call(&ctx, Probe::default())
        .await
        .unwrap();
    assert_eq!(ctx.request_id().as_str().len(), 32);
    assert!(
        seen.hops
            .iter()
            .all(|h| h.request_id == ctx.request_id().as_str())
    );
    let other = Ctx::new();
    assert_ne!(other.request_id(), ctx.request_id());
}

#[tokio::test]
async fn a_wrong_response_type_is_a_coded_error_not_a_panic() {
    let liar = service_fn("liar", |_ctx, _req| async move {
        Ok(nano::AnyResponse::new(7_u32))
    });
    let set = ServiceSet::builder().service(liar).build().unwrap();
    let err = set
        .client("test", "liar")
        .unwrap()
        .call(&Ctx::new(), Probe::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::BAD_RESPONSE);
    assert!(err.to_string().contains("u32"), "{err}");
}

#[tokio::test]
async fn request_fn_rejects_other_request_types() {
    let only_probe = request_fn("p", |_ctx, _p: Probe| async move { Ok(Seen::default()) });
    let set = ServiceSet::builder().service(only_probe).build().unwrap();
    let err = set
        .client("test", "p")
        .unwrap()
        .call(&Ctx::new(), Hang)
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::BAD_REQUEST_TYPE);
    assert_eq!(err.to_string(), "bad request type: test.Hang");
}

#[tokio::test(start_paused = true)]
async fn an_expired_deadline_ends_the_call_with_timeout_and_drops_the_work() {
    let dropped = Arc::new(AtomicUsize::new(0));
    struct CountOnDrop(Arc<AtomicUsize>);
    impl Drop for CountOnDrop {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let counter = Arc::clone(&dropped);
    let slow = request_fn("slow", move |_ctx, _p: Probe| {
        let guard = CountOnDrop(Arc::clone(&counter));
        async move {
            tokio::time::sleep(Duration::from_secs(10)).await;
            drop(guard);
            Ok(Seen::default())
        }
    });
    let set = ServiceSet::builder().service(slow).build().unwrap();
    let client = set.client("test", "slow").unwrap();
    let ctx = Ctx::new().with_timeout(Duration::from_millis(100));
    let started = tokio::time::Instant::now();
    let err = client.call(&ctx, Probe::default()).await.unwrap_err();
    assert_eq!(err.code(), codes::TIMEOUT);
    assert!(err.is_server_error());
    assert_eq!(started.elapsed(), Duration::from_millis(100));
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        1,
        "the handler future was dropped"
    );

    // A call made after the deadline fails at once.
    let err = client.call(&ctx, Probe::default()).await.unwrap_err();
    assert_eq!(err.code(), codes::TIMEOUT);
    assert_eq!(started.elapsed(), Duration::from_millis(100));
}

#[tokio::test]
async fn a_call_within_its_deadline_succeeds() {
    let set = chain();
    let ctx = Ctx::new().with_timeout(Duration::from_secs(60));
    let seen = set
        .client("test", "a")
        .unwrap()
        .call(&ctx, Probe::default())
        .await
        .unwrap();
    assert_eq!(seen.hops.len(), 3);
}

#[tokio::test]
async fn cancelling_the_tree_ends_calls_with_cancelled() {
    let set = ServiceSet::builder()
        .service(service_fn("hang", hang_forever))
        .build()
        .unwrap();
    let cancellation = Cancellation::new();
    let ctx = Ctx::new().with_cancellation(cancellation.clone());
    let client = set.client("test", "hang").unwrap();
    let call = tokio::spawn(async move { client.call(&ctx, Hang).await });
    tokio::task::yield_now().await;
    cancellation.cancel();
    let err = call.await.unwrap().unwrap_err();
    assert_eq!(err.code(), codes::CANCELLED);
}

/// A hook service that records the edge and forwards.
struct Recorder {
    edge: Edge,
    next: SharedService,
    log: Arc<Mutex<Vec<String>>>,
    tag: &'static str,
}

impl Service for Recorder {
    fn name(&self) -> &str {
        self.next.name()
    }

    async fn handle(&self, ctx: Ctx, req: AnyRequest) -> Outcome {
        self.log
            .lock()
            .unwrap()
            .push(format!("{} {} {}", self.tag, self.edge, req.name()));
        self.next.handle(ctx, req).await
    }
}

#[tokio::test]
async fn hooks_wrap_every_client_in_order_including_clients_made_in_init() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let hook = |tag: &'static str| {
        let log = Arc::clone(&log);
        move |edge: &Edge, next: SharedService| {
            SharedService::new(Recorder {
                edge: edge.clone(),
                next,
                log: Arc::clone(&log),
                tag,
            })
        }
    };
    let set = ServiceSet::builder()
        .service(Relay::new("a", Some("b")))
        .service(Relay::new("b", None))
        .hook(hook("outer"))
        .hook(hook("inner"))
        .build()
        .unwrap();
    set.client("test", "a")
        .unwrap()
        .call(&Ctx::new(), Probe::default())
        .await
        .unwrap();
    assert_eq!(
        *log.lock().unwrap(),
        [
            "outer test -> a test.Probe",
            "inner test -> a test.Probe",
            "outer a -> b test.Probe",
            "inner a -> b test.Probe",
        ]
    );
}

#[tokio::test]
async fn a_hook_can_answer_instead_of_the_callee() {
    let set = ServiceSet::builder()
        .service(Relay::new("a", None))
        .hook(|edge: &Edge, _next: SharedService| {
            let callee = edge.callee().to_owned();
            SharedService::new(service_fn(callee.clone(), move |_ctx, _req| {
                let callee = callee.clone();
                async move {
                    Err(NanoError::unavailable(format!(
                        "{callee} is partitioned away"
                    )))
                }
            }))
        })
        .build()
        .unwrap();
    let err = set
        .client("test", "a")
        .unwrap()
        .call(&Ctx::new(), Probe::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::UNAVAILABLE);
    assert_eq!(err.to_string(), "a is partitioned away");
}

#[test]
fn public_types_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<nano::AnyRequest>();
    send_sync::<nano::AnyResponse>();
    send_sync::<nano::Cancellation>();
    send_sync::<nano::Client>();
    send_sync::<nano::Ctx>();
    send_sync::<nano::Edge>();
    send_sync::<nano::NanoError>();
    send_sync::<nano::RequestId>();
    send_sync::<nano::ServiceSet>();
    send_sync::<nano::SharedService>();
    send_sync::<nano_server::Shutdown>();
    send_sync::<nano_server::ShutdownTrigger>();
    send_sync::<&'static nano::RequestType>();
    fn send<T: Send>() {}
    send::<nano::ServiceSetBuilder>();
    send::<nano_server::BoxListener>();
}

#[tokio::test]
async fn call_futures_are_send() {
    fn assert_send<F: std::future::Future + Send>(f: F) -> F {
        f
    }
    let set = chain();
    let client = set.client("test", "a").unwrap();
    let ctx = Ctx::new();
    assert_send(client.call(&ctx, Probe::default()))
        .await
        .unwrap();
}
