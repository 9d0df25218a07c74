//! Typed calls: a client that reaches a service declaring its request type (without a hook in
//! between) hands it the request as it is and takes the reply back in place; everything else
//! goes through the envelopes, and both ways keep the context, the deadline and the cancellation.

use std::any::Any;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nano::{
    AnyRequest, Cancellation, Client, Ctx, Edge, NanoError, Outcome, Service, ServiceSet,
    SharedService, Typed, TypedCall, codes,
};
use serde::{Deserialize, Serialize};

use crate::{Hang, Hop, Probe, Seen};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Look {}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Wait {
    seconds: u64,
}

mod watcher {
    use super::*;
    nano::api! {
        service "watcher";
        fn look(Look) -> Hop = "watcher.Look";
        fn wait(Wait) -> () = "watcher.Wait";
    }
}

/// Answers `Look` with the context it was given and `Wait` by sleeping, counting the waits that
/// were dropped before they finished.
#[derive(Default)]
struct Watcher {
    dropped: Arc<AtomicUsize>,
}

struct CountOnDrop(Arc<AtomicUsize>);

impl Drop for CountOnDrop {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

impl watcher::Handler for Watcher {
    async fn look(&self, ctx: &Ctx, _req: Look) -> Result<Hop, NanoError> {
        Ok(Hop::of(ctx))
    }

    async fn wait(&self, _ctx: &Ctx, req: Wait) -> Result<(), NanoError> {
        let guard = CountOnDrop(Arc::clone(&self.dropped));
        tokio::time::sleep(Duration::from_secs(req.seconds)).await;
        std::mem::forget(guard);
        Ok(())
    }
}

fn watcher_set(dropped: &Arc<AtomicUsize>) -> Client {
    let dropped = Arc::clone(dropped);
    let set = ServiceSet::builder()
        .service(watcher::service(|_| Ok(Watcher { dropped })))
        .build()
        .unwrap();
    set.client("test", watcher::NAME).unwrap()
}

#[tokio::test]
async fn a_declared_service_answers_a_typed_call_with_the_derived_context() {
    let client = watcher_set(&Arc::default());
    let ctx = Ctx::with_request_id("0123456789abcdef0123456789abcdef").with_metadata("user", "ada");
    let seen = client.call(&ctx, Look {}).await.unwrap();
    assert_eq!(
        seen,
        Hop {
            request_id: "0123456789abcdef0123456789abcdef".into(),
            caller: Some("test".into()),
            service: Some("watcher".into()),
            user: Some("ada".into()),
        }
    );
}

#[tokio::test(start_paused = true)]
async fn a_typed_call_ends_at_the_deadline_and_drops_the_work() {
    let dropped = Arc::default();
    let client = watcher_set(&dropped);
    let ctx = Ctx::new().with_timeout(Duration::from_millis(100));
    let err = client.call(&ctx, Wait { seconds: 10 }).await.unwrap_err();
    assert_eq!(err.code(), codes::TIMEOUT);
    assert_eq!(
        err.message(),
        r#"call from "test" to "watcher" ran out of time"#
    );
    assert_eq!(dropped.load(Ordering::SeqCst), 1, "the handler was dropped");

    // Within the deadline the same call answers.
    let ctx = Ctx::new().with_timeout(Duration::from_secs(60));
    client.call(&ctx, Wait { seconds: 1 }).await.unwrap();
    assert_eq!(dropped.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_typed_call_ends_when_its_tree_is_cancelled() {
    let dropped = Arc::default();
    let client = watcher_set(&dropped);
    let cancellation = Cancellation::new();
    let ctx = Ctx::new().with_cancellation(cancellation.clone());
    let call = tokio::spawn(async move { client.call(&ctx, Wait { seconds: 3600 }).await });
    tokio::task::yield_now().await;
    cancellation.cancel();
    let err = call.await.unwrap().unwrap_err();
    assert_eq!(err.code(), codes::CANCELLED);
    assert_eq!(dropped.load(Ordering::SeqCst), 1, "the handler was dropped");
}

/// Answers `Probe` both ways, recording which way each call came.
struct TwoWays {
    log: Arc<Mutex<Vec<&'static str>>>,
}

impl Service for TwoWays {
    fn name(&self) -> &str {
        "two-ways"
    }

    async fn handle(&self, ctx: Ctx, req: AnyRequest) -> Outcome {
        self.log.lock().unwrap().push("erased");
        nano::dispatch!(req, {
            Probe => |_| Ok(Seen { hops: vec![Hop::of(&ctx)] }),
        })
    }

    fn handle_typed<'a>(&'a self, ctx: &'a Ctx, call: &'a mut dyn Any) -> Typed<'a> {
        let call = call.downcast_mut::<TypedCall<Probe>>()?;
        self.log.lock().unwrap().push("typed");
        Some(Box::pin(async move {
            if call.0.take().is_some() {
                call.1 = Some(Ok(Seen {
                    hops: vec![Hop::of(ctx)],
                }));
            }
        }))
    }
}

#[tokio::test]
async fn typed_calls_go_typed_unless_a_hook_or_the_request_type_is_in_the_way() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let two_ways = || TwoWays {
        log: Arc::clone(&log),
    };
    let set = ServiceSet::builder().service(two_ways()).build().unwrap();
    let client = set.client("test", "two-ways").unwrap();
    let seen = client.call(&Ctx::new(), Probe::default()).await.unwrap();
    assert_eq!(seen.hops[0].service.as_deref(), Some("two-ways"));
    assert_eq!(seen.hops[0].caller.as_deref(), Some("test"));
    client
        .call_any(&Ctx::new(), AnyRequest::new(Probe::default()))
        .await
        .unwrap();
    // A type the service does not take typed goes erased, and is refused there.
    let err = client.call(&Ctx::new(), Hang).await.unwrap_err();
    assert_eq!(err.code(), codes::BAD_REQUEST_TYPE);
    assert_eq!(*log.lock().unwrap(), ["typed", "erased", "erased"]);

    // A hook's service sees every call as an envelope.
    log.lock().unwrap().clear();
    let hooked = ServiceSet::builder()
        .service(two_ways())
        .hook(|_: &Edge, next: SharedService| SharedService::new(PassOn(next)))
        .build()
        .unwrap();
    let client = hooked.client("test", "two-ways").unwrap();
    let seen = client.call(&Ctx::new(), Probe::default()).await.unwrap();
    assert_eq!(seen.hops[0].service.as_deref(), Some("two-ways"));
    assert_eq!(*log.lock().unwrap(), ["erased"]);
}

/// A hook's service that passes every call on.
struct PassOn(SharedService);

impl Service for PassOn {
    fn name(&self) -> &str {
        self.0.name()
    }

    async fn handle(&self, ctx: Ctx, req: AnyRequest) -> Outcome {
        self.0.handle(ctx, req).await
    }
}

/// Takes every typed `Probe` and never replies to it.
struct Forgetful;

impl Service for Forgetful {
    fn name(&self) -> &str {
        "forgetful"
    }

    async fn handle(&self, _ctx: Ctx, req: AnyRequest) -> Outcome {
        Err(NanoError::bad_request_type(req.name()))
    }

    fn handle_typed<'a>(&'a self, _ctx: &'a Ctx, call: &'a mut dyn Any) -> Typed<'a> {
        let call = call.downcast_mut::<TypedCall<Probe>>()?;
        Some(Box::pin(async move {
            call.0.take();
        }))
    }
}

#[tokio::test]
async fn a_typed_call_left_without_a_reply_is_an_error_not_a_panic() {
    let set = ServiceSet::builder().service(Forgetful).build().unwrap();
    let client = set.client("test", "forgetful").unwrap();
    let err = client
        .call(&Ctx::new(), Probe::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::SERVER_ERROR);
    assert_eq!(err.message(), "typed call left unanswered");
}

#[tokio::test]
async fn a_client_of_a_service_that_was_never_made_answers_with_an_error() {
    // The first service keeps a client of the second and fails, so the second is never made.
    let kept = Arc::new(Mutex::new(None));
    let keep = Arc::clone(&kept);
    let first = nano::NewService::construct("first", move |deps| {
        *keep.lock().unwrap() = Some(deps.client(watcher::NAME)?);
        Err::<Forgetful, _>(NanoError::msg("no"))
    });
    let second = watcher::service(|_| Ok(Watcher::default()));
    let built = ServiceSet::builder().service(first).service(second).build();
    assert_eq!(built.unwrap_err().code(), codes::INIT_FAILED);
    let client = kept.lock().unwrap().take().unwrap();
    for err in [
        client.call(&Ctx::new(), Look {}).await.unwrap_err(),
        client
            .call_any(&Ctx::new(), AnyRequest::new(Look {}))
            .await
            .unwrap_err(),
    ] {
        assert_eq!(err.code(), codes::SERVER_ERROR);
        assert_eq!(
            err.message(),
            r#"service "watcher" was called before its set finished initialising"#
        );
    }
}
