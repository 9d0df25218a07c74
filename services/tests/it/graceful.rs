//! SIGTERM against a real server process: it stops accepting, finishes what is in flight within
//! its grace period, and exits 0.

use std::time::Duration;

use nano_test::deploy::{ServerProcess, StartOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::PATIENCE;

async fn server1(extra_args: &[&str]) -> ServerProcess {
    let options = StartOptions {
        // The listener logs each request it starts at debug level; the test waits for that line.
        env: vec![("RUST_LOG".into(), "info,nano_http=debug".into())],
        ..StartOptions::default()
    };
    let args: Vec<String> = extra_args.iter().map(|a| (*a).to_owned()).collect();
    ServerProcess::start(
        "server1",
        env!("CARGO_BIN_EXE_server1").as_ref(),
        &args,
        &options,
    )
    .await
    .unwrap()
}

/// Sends the head of `POST /svc2/` and the first part of its body, and waits until the server
/// is handling it.
async fn half_sent_request(server: &ServerProcess, body: &str, sent: usize) -> TcpStream {
    let mut tcp = TcpStream::connect(server.addr()).await.unwrap();
    let head = format!(
        "POST /svc2/ HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    tcp.write_all(&body.as_bytes()[..sent]).await.unwrap();
    server.wait_for_log("http request", PATIENCE).await.unwrap();
    tcp
}

#[tokio::test]
async fn sigterm_lets_the_request_in_flight_finish_then_exits_0() {
    let mut server = server1(&[]).await;
    let body = r#"{"param":"late"}"#;
    let mut tcp = half_sent_request(&server, body, 9).await;

    server.terminate().unwrap();
    server
        .wait_for_log("http listener stopped accepting", PATIENCE)
        .await
        .unwrap();
    assert!(
        TcpStream::connect(server.addr()).await.is_err(),
        "still accepting"
    );

    tcp.write_all(&body.as_bytes()[9..]).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(PATIENCE, tcp.read_to_string(&mut answer))
        .await
        .unwrap()
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    assert!(
        answer.ends_with(r#"{"value":"svc2_svc1_late"}"#),
        "{answer}"
    );

    let status = server.wait(PATIENCE).await.unwrap();
    assert_eq!(status.code(), Some(0), "{:?}", server.logs());
}

#[tokio::test]
async fn the_grace_period_bounds_how_long_shutdown_waits() {
    let mut server = server1(&["--grace-period", "200ms"]).await;
    // The rest of the body never comes.
    let mut tcp = half_sent_request(&server, r#"{"param":"never"}"#, 5).await;

    server.terminate().unwrap();
    let status = server.wait(PATIENCE).await.unwrap();
    assert_eq!(status.code(), Some(0), "{:?}", server.logs());
    assert!(
        server
            .logs()
            .iter()
            .any(|l| l.contains("grace period over"))
    );

    // The connection was closed without an answer.
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(30), tcp.read_to_end(&mut answer)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "{read:?} {answer:?}"
    );
}
