//! Graceful shutdown of a listener inside one process (the executables' signal handling is tested
//! with real child processes in the `services` crate).

use std::time::Duration;

use nano::{Ctx, ServiceSet, codes};
use nano_http::HttpTransport;
use tokio::sync::oneshot;

use crate::support::{ECHO, Echo, EchoService, Server, Stall, bounded, endpoints, remote_echo};

/// A service that answers `Echo` only once released, after reporting that it started.
fn gated() -> (nano::ServiceSet, oneshot::Receiver<()>, oneshot::Sender<()>) {
    let (started_tx, started) = oneshot::channel::<()>();
    let (release, released) = oneshot::channel::<()>();
    let slots = std::sync::Mutex::new(Some((started_tx, released)));
    let gate = nano_test::request_fn(ECHO, move |_ctx, r: Echo| {
        let slot = slots.lock().unwrap().take();
        async move {
            if let Some((started, released)) = slot {
                let _ = started.send(());
                let _ = released.await;
            }
            Ok(crate::support::Echoed {
                text: r.text,
                ..Default::default()
            })
        }
    });
    (
        ServiceSet::builder().service(gate).build().unwrap(),
        started,
        release,
    )
}

#[tokio::test]
async fn requests_in_flight_finish_after_shutdown_was_requested() {
    let (set, started, release) = gated();
    let mut server = Server::start_with(set, |l| l.expose(ECHO, endpoints()).unwrap()).await;
    let addr = server.addr;
    let echo = remote_echo(addr).client("test", ECHO).unwrap();
    let call = tokio::spawn(async move {
        echo.call(
            &Ctx::new(),
            Echo {
                text: "late".into(),
            },
        )
        .await
    });
    bounded(started).await.unwrap();

    server.trigger_stop();
    release.send(()).unwrap();
    let echoed = bounded(call).await.unwrap().unwrap();
    assert_eq!(echoed.text, "late");
    server.stop().await.unwrap();

    // Stopped listening: a new call cannot connect.
    let fresh = remote_echo(addr).client("test", ECHO).unwrap();
    let err = fresh.call(&Ctx::new(), Echo::default()).await.unwrap_err();
    assert_eq!(err.code(), codes::UNAVAILABLE);
}

#[tokio::test]
async fn the_grace_period_bounds_the_wait_and_cancels_what_is_left() {
    let (echo, mut reports) = EchoService::new();
    let set = ServiceSet::builder().service(echo).build().unwrap();
    let mut server = Server::start_with(set, |l| {
        l.expose(ECHO, endpoints())
            .unwrap()
            .grace_period(Duration::from_millis(100))
    })
    .await;
    let transport = HttpTransport::builder().build().unwrap();
    let client = transport
        .client_at(ECHO, &server.addr.to_string(), endpoints())
        .unwrap();
    let set = ServiceSet::builder().service(client).build().unwrap();
    let echo = set.client("test", ECHO).unwrap();
    let call = tokio::spawn(async move { echo.call(&Ctx::new(), Stall {}).await });
    bounded(reports.started.recv()).await.unwrap();

    server.trigger_stop();
    server.stop().await.unwrap();
    let err = bounded(call).await.unwrap().unwrap_err();
    assert_eq!(err.code(), codes::UNAVAILABLE);
    // Answered, not dropped: the listener cut the call off itself.
    assert!(
        err.to_string()
            .contains("the server shut down before the request finished"),
        "{err}"
    );
    let ended = bounded(reports.ended.recv()).await.unwrap();
    assert!(ended.cancelled, "{ended:?}");
}

#[tokio::test]
async fn idle_keep_alive_connections_do_not_hold_up_shutdown() {
    let (echo, _) = EchoService::new();
    let set = ServiceSet::builder().service(echo).build().unwrap();
    let server = Server::start_with(set, |l| {
        l.expose(ECHO, endpoints())
            .unwrap()
            .grace_period(Duration::from_secs(3600))
    })
    .await;
    let echo = remote_echo(server.addr).client("test", ECHO).unwrap();
    echo.call(&Ctx::new(), Echo::default()).await.unwrap();
    // The pooled connection stays open on the client side; with an hour of grace, only closing
    // idle connections at once lets this finish within `bounded`.
    server.stop().await.unwrap();
}
