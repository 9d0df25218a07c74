//! Time limits of calls that come one after another: the client keeps the timers of finished
//! calls for the next ones, and every call is still limited, whatever came before it, on
//! whichever runtime it runs.

use std::time::Duration;

use nano::{Client, Ctx, codes};
use nano_http::HttpTransport;

use crate::support::{Echo, Server, Stall, bounded, remote_echo_with};

/// A client of `server` whose transport limits every call to `limit`.
fn client(server: &Server, limit: Duration) -> Client {
    let transport = HttpTransport::builder().timeout(limit);
    let set = remote_echo_with(server.addr, transport);
    set.client("test", crate::support::ECHO).unwrap()
}

async fn echo(client: &Client) {
    let echoed = client.call(&Ctx::new(), Echo { text: "hi".into() }).await;
    assert_eq!(echoed.unwrap().text, "hi");
}

#[tokio::test]
async fn every_call_is_limited_whatever_came_before_it() {
    let (server, _reports) = Server::echo().await;
    let client = client(&server, Duration::from_millis(300));
    for _ in 0..3 {
        echo(&client).await;
    }
    // The transport's limit, on a timer an earlier call used.
    let err = bounded(client.call(&Ctx::new(), Stall {}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::TIMEOUT);
    echo(&client).await;
    // A caller's deadline sooner than the limit the kept timer was last set to.
    let ctx = Ctx::new().with_timeout(Duration::from_millis(50));
    let err = bounded(client.call(&ctx, Stall {})).await.unwrap_err();
    assert_eq!(err.code(), codes::TIMEOUT);
    echo(&client).await;
}

#[tokio::test]
async fn a_call_dropped_midway_leaves_the_client_limited() {
    let (server, mut reports) = Server::echo().await;
    let client = client(&server, Duration::from_millis(300));
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.call(&Ctx::new(), Stall {}).await }
    });
    bounded(reports.started.recv()).await.unwrap();
    call.abort();
    assert!(call.await.unwrap_err().is_cancelled());
    echo(&client).await;
    let err = bounded(client.call(&Ctx::new(), Stall {}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::TIMEOUT);
}

#[tokio::test]
async fn more_calls_at_once_than_timers_are_kept_all_answer() {
    let (server, _reports) = Server::echo().await;
    let client = client(&server, Duration::from_secs(30));
    let calls: Vec<_> = (0..100)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { echo(&client).await })
        })
        .collect();
    for call in calls {
        bounded(call).await.unwrap();
    }
    echo(&client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_outlives_the_runtime_it_was_first_used_on() {
    // The server runs on this test's runtime; the client is used on two others, one after the
    // other, and the first is gone before the second starts.
    let (server, _reports) = Server::echo().await;
    let client = client(&server, Duration::from_millis(300));
    let on_a_runtime_of_its_own = |client: Client, stall: bool| {
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                echo(&client).await;
                if stall {
                    let err = client.call(&Ctx::new(), Stall {}).await.unwrap_err();
                    assert_eq!(err.code(), codes::TIMEOUT);
                }
            });
        })
    };
    let first = on_a_runtime_of_its_own(client.clone(), false);
    bounded(tokio::task::spawn_blocking(|| first.join().unwrap()))
        .await
        .unwrap();
    let second = on_a_runtime_of_its_own(client.clone(), true);
    bounded(tokio::task::spawn_blocking(|| second.join().unwrap()))
        .await
        .unwrap();
}
