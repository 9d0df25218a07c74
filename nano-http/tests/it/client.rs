//! The client side against our own listener: a remote service looks like a local one.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use nano::{AnyRequest, Ctx, ServiceSet, codes};
use nano_http::{HttpTransport, Peers};
use tokio::net::{TcpListener, TcpStream};

use crate::support::{
    ECHO, Echo, Fail, Fire, Front, Peek, Server, Undeclared, closed_port, endpoints, remote_echo,
};

#[tokio::test]
async fn typed_calls_reach_the_remote_service_with_request_id_and_caller() {
    let (server, _) = Server::echo().await;
    let echo = remote_echo(server.addr).client("svc1", ECHO).unwrap();
    let ctx = Ctx::new();
    let echoed = echo.call(&ctx, Echo { text: "hi".into() }).await.unwrap();
    assert_eq!(echoed.text, "hi");
    assert_eq!(echoed.caller, "svc1");
    assert_eq!(echoed.req_id, ctx.request_id().as_str());
    assert_eq!(echoed.remaining_ms, None);

    assert_eq!(echo.call(&ctx, Peek {}).await.unwrap().text, "peek");
    echo.call(&ctx, Fire { text: "x".into() }).await.unwrap();
}

#[tokio::test]
async fn remote_errors_come_back_as_the_same_nano_error() {
    let (server, _) = Server::echo().await;
    let echo = remote_echo(server.addr).client("test", ECHO).unwrap();
    for code in [codes::NOT_FOUND, "C-CUSTOM", "S-CUSTOM", ""] {
        let fail = Fail {
            code: code.into(),
            msg: "outer".into(),
        };
        let err = echo.call(&Ctx::new(), fail).await.unwrap_err();
        assert_eq!(err.code(), code);
        assert_eq!(err.to_string(), "outer :: inner");
    }
}

#[tokio::test]
async fn a_local_caller_wraps_a_remote_error_and_keeps_its_code() {
    let (server, _) = Server::echo().await;
    let transport = HttpTransport::new(Peers::new()).unwrap();
    let remote = transport
        .client_at(ECHO, &server.addr.to_string(), endpoints())
        .unwrap();
    let set = ServiceSet::builder()
        .service(Front::default())
        .service(remote)
        .build()
        .unwrap();
    let err = set
        .client("test", "front")
        .unwrap()
        .call(
            &Ctx::new(),
            Fail {
                code: codes::NOT_FOUND.into(),
                msg: "echo failure".into(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::NOT_FOUND);
    assert_eq!(err.to_string(), "front failure :: echo failure :: inner");
}

#[tokio::test]
async fn a_request_type_without_an_endpoint_is_refused_before_any_traffic() {
    let echo = remote_echo(closed_port().await)
        .client("test", ECHO)
        .unwrap();
    let err = echo
        .call_any(&Ctx::new(), AnyRequest::new(Undeclared {}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::BAD_REQUEST_TYPE);
    assert!(err.to_string().contains("test.Undeclared"), "{err}");
}

#[tokio::test]
async fn an_unreachable_peer_is_unavailable() {
    let addr = closed_port().await;
    let echo = remote_echo(addr).client("test", ECHO).unwrap();
    let err = echo.call(&Ctx::new(), Echo::default()).await.unwrap_err();
    assert_eq!(err.code(), codes::UNAVAILABLE);
    assert!(err.is_server_error());
    assert!(
        err.to_string().contains(&format!(
            "cannot connect to service \"echo\" at POST http://{addr}/echo/"
        )),
        "{err}"
    );
}

#[tokio::test]
async fn a_service_without_a_peer_address_is_a_coded_error() {
    let transport = HttpTransport::new("svc3=127.0.0.1:1".parse().unwrap()).unwrap();
    let err = transport.client("svc4", endpoints()).unwrap_err();
    assert_eq!(err.code(), codes::UNKNOWN_SERVICE);
    assert!(err.to_string().contains("--peer svc4=ADDR"), "{err}");
    let err = transport
        .client_at("svc4", "ftp://host", endpoints())
        .unwrap_err();
    assert_eq!(err.code(), codes::BAD_REQUEST);
}

/// Forwards TCP connections to `upstream`, counting them.
async fn counting_proxy(upstream: SocketAddr) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&count);
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut outbound = TcpStream::connect(upstream).await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            });
        }
    });
    (addr, count)
}

#[tokio::test]
async fn sequential_calls_reuse_one_kept_alive_connection() {
    let (server, _) = Server::echo().await;
    let (proxy, connections) = counting_proxy(server.addr).await;
    let echo = remote_echo(proxy).client("test", ECHO).unwrap();
    for i in 0..20 {
        let text = format!("call {i}");
        let echoed = echo
            .call(&Ctx::new(), Echo { text: text.clone() })
            .await
            .unwrap();
        assert_eq!(echoed.text, text);
    }
    assert_eq!(connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn raw_json_calls_send_bodies_as_they_are() {
    let (server, _) = Server::echo().await;
    let peers: Peers = format!("{ECHO}={}", server.addr).parse().unwrap();
    let transport = HttpTransport::new(peers).unwrap();
    let echo = transport.client(ECHO, endpoints()).unwrap();
    let ctx = Ctx::new();

    let answer = echo
        .call_json(
            &ctx,
            Some("replayer"),
            "test.Echo",
            &serde_json::json!({"text": "raw"}),
        )
        .await
        .unwrap();
    assert_eq!(answer["text"], "raw");
    assert_eq!(answer["req_id"], ctx.request_id().as_str());
    assert_eq!(answer["caller"], "replayer");

    // A body that does not decode gets the server's decoding error, exactly as a typed
    // in-process decode would produce it.
    let bad = serde_json::json!({"text": 5});
    let err = echo
        .call_json(&ctx, None, "test.Echo", &bad)
        .await
        .unwrap_err();
    let local = nano::RequestType::of::<Echo>()
        .decode_request(bad.to_string().as_bytes())
        .unwrap_err();
    assert_eq!(
        (err.code(), err.to_string()),
        (codes::BAD_REQUEST, local.to_string())
    );

    // An endpoint without a response answers null; an undeclared request type is refused.
    let fired = echo
        .call_json(&ctx, None, "test.Fire", &serde_json::json!({"text": "x"}))
        .await
        .unwrap();
    assert_eq!(fired, serde_json::Value::Null);
    let err = echo
        .call_json(&ctx, None, "test.Nope", &serde_json::json!({}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::BAD_REQUEST_TYPE);
}
