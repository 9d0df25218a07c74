//! Deadlines and cancellation across real HTTP hops: one time budget for the whole tree, and a
//! client that goes away stops the work it started.

use std::time::Duration;

use nano::{Client, Ctx, ServiceSet, codes};
use nano_http::{Endpoint, HttpTransport, Method};

use crate::support::{
    ECHO, Echo, Echoed, Ended, Front, Server, Stall, bounded, endpoints, remote_echo,
};

#[tokio::test]
async fn the_callers_remaining_time_becomes_the_servers_deadline() {
    let (server, _) = Server::echo().await;
    let echo = remote_echo(server.addr).client("test", ECHO).unwrap();
    let ctx = Ctx::new().with_timeout(Duration::from_secs(20));
    let echoed = echo.call(&ctx, Echo::default()).await.unwrap();
    let remaining = echoed.remaining_ms.expect("the server saw a deadline");
    assert!(remaining > 0 && remaining <= 20_000, "{remaining}");
    // No deadline, no header, no server deadline.
    let echoed = echo.call(&Ctx::new(), Echo::default()).await.unwrap();
    assert_eq!(echoed.remaining_ms, None);
}

fn front_endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::post::<Echo>("/"),
        Endpoint::new::<Stall>(Method::PUT, "/stall"),
    ]
}

/// test --HTTP--> front --HTTP--> echo
async fn two_hops() -> (Client, Server, Server, crate::support::StallReports) {
    let (back, reports) = Server::echo().await;
    let transport = HttpTransport::new(Default::default()).unwrap();
    let remote_echo = transport
        .client_at(ECHO, &back.addr.to_string(), endpoints())
        .unwrap();
    let set = ServiceSet::builder()
        .service(Front::default())
        .service(remote_echo)
        .build()
        .unwrap();
    let front = Server::start_with(set, |l| l.expose("front", front_endpoints()).unwrap()).await;
    let remote_front = transport
        .client_at("front", &front.addr.to_string(), front_endpoints())
        .unwrap();
    let client_set = ServiceSet::builder().service(remote_front).build().unwrap();
    (
        client_set.client("test", "front").unwrap(),
        front,
        back,
        reports,
    )
}

#[tokio::test]
async fn the_whole_tree_shares_one_budget() {
    let (front, _front_server, _back_server, _) = two_hops().await;
    let ctx = Ctx::new().with_timeout(Duration::from_secs(20));
    let echoed: Echoed = front
        .call(
            &ctx,
            Echo {
                text: "deep".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(echoed.text, "deep");
    assert_eq!(echoed.caller, "front");
    assert_eq!(echoed.req_id, ctx.request_id().as_str());
    let remaining = echoed.remaining_ms.expect("the last hop saw the deadline");
    assert!(remaining > 0 && remaining <= 20_000, "{remaining}");
}

#[tokio::test]
async fn an_exhausted_budget_times_out_everywhere() {
    let (front, _front_server, _back_server, mut reports) = two_hops().await;
    let ctx = Ctx::new().with_timeout(Duration::from_millis(300));
    let err = bounded(front.call(&ctx, Stall {})).await.unwrap_err();
    assert_eq!(err.code(), codes::TIMEOUT);
    // The last hop's own context expired: its deadline came from the header.
    let ended = bounded(reports.ended.recv()).await.unwrap();
    assert!(ended.expired, "{ended:?}");
}

#[tokio::test]
async fn a_client_that_goes_away_cancels_the_server_side_work() {
    let (server, mut reports) = Server::echo().await;
    let echo = remote_echo(server.addr).client("test", ECHO).unwrap();
    let call = tokio::spawn(async move { echo.call(&Ctx::new(), Stall {}).await });
    bounded(reports.started.recv()).await.unwrap();
    call.abort();
    let ended = bounded(reports.ended.recv()).await.unwrap();
    assert_eq!(
        ended,
        Ended {
            expired: false,
            cancelled: true
        }
    );
}

#[tokio::test]
async fn cancellation_travels_down_every_http_hop() {
    let (front, _front_server, _back_server, mut reports) = two_hops().await;
    let call = tokio::spawn(async move { front.call(&Ctx::new(), Stall {}).await });
    bounded(reports.started.recv()).await.unwrap();
    call.abort();
    // The first hop's handler is dropped, which drops its HTTP call, which the last hop sees.
    let ended = bounded(reports.ended.recv()).await.unwrap();
    assert!(ended.cancelled && !ended.expired, "{ended:?}");
}
