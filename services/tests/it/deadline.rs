//! Deadlines across real server processes: the `X-Nano-Deadline-Ms` a client sends to svc2
//! travels hop by hop (server3b → server3c → svc4), shrinking, and a chain that cannot finish in
//! time answers `S-TIMEOUT` instead of hanging.
//!
//! The example services answer at once, so no deadline but `0` is reliably too short for the
//! real layout 3: a short one may or may not expire depending on the machine. Here svc4 is
//! instead a stand-in at the end of the chain: one that reports the time it was given, or one
//! that never answers. server3a, server3b and server3c are the real executables.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nano::{Ctx, ErrorBody, NanoError, ServiceSet, codes};
use nano_http::{DEADLINE_HEADER, HttpListener};
use nano_server::Listener;
use nano_test::deploy::{ServerProcess, StartOptions};
use nano_test::request_fn;
use services::api::svc4;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::support::{PATIENCE, http};

/// server3a (svc1), server3c (svc3) and server3b (svc2) of layout 3, with svc4 at `svc4`.
///
/// Their transport timeout is far longer than any test waits, so a call to svc4 ends only by
/// its deadline.
async fn layout_3_with_svc4_at(svc4: SocketAddr) -> Vec<ServerProcess> {
    let options = StartOptions {
        args: vec!["--timeout".into(), "1h".into()],
        ..StartOptions::default()
    };
    let start = |name: &'static str, peers: Vec<String>| {
        let mut args = Vec::new();
        for peer in peers {
            args.push("--peer".to_owned());
            args.push(peer);
        }
        args.extend(options.args.iter().cloned());
        let options = options.clone();
        async move {
            let path = crate::support::binaries().path(name).unwrap();
            ServerProcess::start(name, &path, &args, &options)
                .await
                .unwrap()
        }
    };
    let server3a = start("server3a", vec![]).await;
    let server3c = start("server3c", vec![format!("svc4={svc4}")]).await;
    let server3b = start(
        "server3b",
        vec![
            format!("svc1={}", server3a.addr()),
            format!("svc3={}", server3c.addr()),
        ],
    )
    .await;
    vec![server3a, server3c, server3b]
}

/// A svc4 served from the test, answering with the time its context gives it; it keeps what it
/// saw.
struct StandIn {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Option<Duration>>>>,
    stop: oneshot::Sender<()>,
    server: JoinHandle<Result<(), NanoError>>,
}

impl StandIn {
    async fn start() -> StandIn {
        let seen: Arc<Mutex<Vec<Option<Duration>>>> = Arc::default();
        let svc4 = {
            let seen = Arc::clone(&seen);
            request_fn(svc4::NAME, move |ctx: Ctx, _r: svc4::Req| {
                let remaining = ctx.remaining();
                seen.lock().unwrap().push(remaining);
                async move {
                    Ok(svc4::Resp {
                        value: remaining.map_or("no-deadline".to_owned(), |left| {
                            format!("{}ms", left.as_millis())
                        }),
                    })
                }
            })
        };
        let set = ServiceSet::builder().service(svc4).build().unwrap();
        let listener = HttpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .expose_api(&svc4::API)
            .unwrap();
        let addr = listener.local_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(nano_server::serve_until(
            set,
            vec![listener.boxed()],
            async {
                let _ = stopped.await;
            },
        ));
        StandIn {
            addr,
            seen,
            stop,
            server,
        }
    }

    fn seen(&self) -> Vec<Option<Duration>> {
        self.seen.lock().unwrap().clone()
    }

    async fn stop(self) {
        drop(self.stop);
        tokio::time::timeout(PATIENCE, self.server)
            .await
            .expect("the stand-in stops")
            .unwrap()
            .unwrap();
    }
}

/// `GET /svc2/` (svc2 → svc3 → svc4) with `deadline_ms` in the header, if given.
async fn get_svc2(svc2: SocketAddr, deadline_ms: Option<u64>) -> reqwest::Response {
    let mut request = http().get(format!("http://{svc2}/svc2/"));
    if let Some(millis) = deadline_ms {
        request = request.header(DEADLINE_HEADER, millis.to_string());
    }
    request
        .send()
        .await
        .unwrap_or_else(|err| panic!("no answer from svc2: {err}"))
}

#[tokio::test]
async fn the_deadline_reaches_the_last_hop_across_processes_and_shrinks() {
    let svc4 = StandIn::start().await;
    let servers = layout_3_with_svc4_at(svc4.addr).await;
    let svc2 = servers[2].addr();

    // No header: no deadline anywhere down the chain.
    let response = get_svc2(svc2, None).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.text().await.unwrap(),
        r#"{"value":"svc2_svc3_no-deadline"}"#
    );

    // A minute for the whole chain: svc4, two processes further, gets what is left of it.
    let sent = 60_000;
    let response = get_svc2(svc2, Some(sent)).await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    let value = body["value"].as_str().unwrap();
    let left: u64 = value
        .strip_prefix("svc2_svc3_")
        .and_then(|rest| rest.strip_suffix("ms"))
        .and_then(|millis| millis.parse().ok())
        .unwrap_or_else(|| panic!("unexpected answer {value:?}"));
    assert!(left <= sent, "svc4 got {left} ms of the {sent} ms sent");

    // No time at all: svc2's server answers S-TIMEOUT before calling anything.
    let response = get_svc2(svc2, Some(0)).await;
    assert_eq!(response.status(), 500);
    let body: ErrorBody = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    assert_eq!(body.code, codes::TIMEOUT);
    assert_eq!(body.msg, r#"call from "http" to "svc2" ran out of time"#);

    let seen = svc4.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0], None);
    assert!(seen[1].is_some_and(|left| left <= Duration::from_millis(sent)));
    drop(servers);
    svc4.stop().await;
}

#[tokio::test]
async fn a_chain_that_cannot_finish_in_time_answers_s_timeout_instead_of_hanging() {
    // svc4's address takes connections (the kernel queues them) and never answers.
    let black_hole = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let servers = layout_3_with_svc4_at(black_hole.local_addr().unwrap()).await;

    // The servers' transport timeout is an hour and the test's own client gives up after 30 s:
    // only the deadline can end this call in time for the test to pass.
    let response = get_svc2(servers[2].addr(), Some(250)).await;
    assert_eq!(response.status(), 500);
    let body: ErrorBody = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    assert_eq!(body.code, codes::TIMEOUT, "{body:?}");
    // Whichever hop gave up first, its message says so.
    assert!(body.msg.ends_with("ran out of time"), "{body:?}");
}
