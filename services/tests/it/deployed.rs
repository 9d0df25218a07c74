//! The article's step 3 without Docker: each layout started as real processes, tested with
//! `test_client`, a typed nano client and plain HTTP requests.

use std::process::Command;

use nano::{Ctx, ErrorBody, codes};
use nano_http::{HttpTransport, JSON_CONTENT_TYPE};
use nano_test::deploy::{RunningLayout, ServerProcess, StartOptions};
use services::api::svc2;

use crate::support::{PATIENCE, binaries, http, test_client};

async fn check_layout(layout: &str) {
    let deployment = RunningLayout::start(
        &services::system(),
        layout,
        &binaries(),
        &StartOptions::default(),
    )
    .await
    .unwrap();
    let addr = deployment.addr_of("svc2").unwrap();

    // test_client, both requests.
    let out = test_client(addr, &["--req", "req"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        r#"{"value":"svc2_svc1_testval"}"#
    );
    let out = test_client(addr, &["--req", "getreq"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        r#"{"value":"svc2_svc3_svc4_getparam"}"#
    );

    // Plain HTTP, as a client in any language would call it.
    let http = http();
    let response = http
        .post(format!("{}/svc2/", deployment.url_of("svc2").unwrap()))
        .header("content-type", JSON_CONTENT_TYPE)
        .header("x-nano-req-id", "00000000000000000000000000000042")
        .body(r#"{"param":"direct"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["x-nano-req-id"],
        "00000000000000000000000000000042"
    );
    assert_eq!(
        response.text().await.unwrap(),
        r#"{"value":"svc2_svc1_direct"}"#
    );
    let response = http
        .get(format!("{}/svc2/", deployment.url_of("svc2").unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.text().await.unwrap(),
        r#"{"value":"svc2_svc3_svc4_getparam"}"#
    );

    // Bad input is refused at the edge with a coded error.
    let response = http
        .post(format!("{}/svc2/", deployment.url_of("svc2").unwrap()))
        .header("content-type", JSON_CONTENT_TYPE)
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: ErrorBody = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    assert_eq!(body.code, codes::BAD_REQUEST);

    // The typed client: the same call test1 makes in-process.
    let transport = HttpTransport::new(Default::default()).unwrap();
    let remote = transport
        .api_client_at(&svc2::API, &addr.to_string())
        .unwrap();
    let set = nano::ServiceSet::builder().service(remote).build().unwrap();
    let svc2_client = set.client("svc2-test3", svc2::NAME).unwrap();
    let resp = svc2_client
        .call(
            &Ctx::new(),
            svc2::Req {
                param: "typed".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(resp.value, "svc2_svc1_typed");
    let resp = svc2_client
        .call(&Ctx::new(), svc2::GetReq {})
        .await
        .unwrap();
    assert_eq!(resp.value, "svc2_svc3_svc4_getparam");
}

#[tokio::test]
async fn layout_1_one_process() {
    check_layout("server1").await;
}

#[tokio::test]
async fn layout_2_two_processes() {
    check_layout("server2").await;
}

#[tokio::test]
async fn layout_3_one_process_per_service() {
    check_layout("server3").await;
}

#[tokio::test]
async fn a_stopped_peer_makes_svc2_answer_a_coded_error_instead_of_hanging() {
    let mut deployment = RunningLayout::start(
        &services::system(),
        "server2",
        &binaries(),
        &StartOptions::default(),
    )
    .await
    .unwrap();
    let url = format!("{}/svc2/", deployment.url_of("svc2").unwrap());
    let http = http();
    let response = http.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 200);

    deployment.stop("server2b").unwrap();

    // svc3 is gone: connection refused, not a timeout.
    let response = http.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 500);
    let body: ErrorBody = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    assert_eq!(body.code, codes::UNAVAILABLE, "{body:?}");
    assert!(body.msg.starts_with("svc3 failure :: "), "{body:?}");
    assert!(body.msg.contains("service \"svc3\""), "{body:?}");
    // svc1 lives in server2a and still answers.
    let response = http
        .post(&url)
        .header("content-type", JSON_CONTENT_TYPE)
        .body(r#"{"param":"still"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.text().await.unwrap(),
        r#"{"value":"svc2_svc1_still"}"#
    );

    let out = test_client(deployment.addr_of("svc2").unwrap(), &["--req", "getreq"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("error S-UNAVAILABLE: svc3 failure :: "),
        "{stderr}"
    );
}

#[tokio::test]
async fn test_client_fails_when_svc2_is_unreachable() {
    let unused = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = unused.local_addr().unwrap();
    drop(unused);
    let out = test_client(addr, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("error S-UNAVAILABLE"));
    assert!(out.stdout.is_empty());
}

#[tokio::test]
async fn servers_take_their_settings_from_the_environment() {
    let server2b = ServerProcess::start(
        "server2b",
        env!("CARGO_BIN_EXE_server2b").as_ref(),
        &[],
        &StartOptions::default(),
    )
    .await
    .unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_server2a"));
    command.env("NANO_LISTEN", "127.0.0.1:0").env(
        "NANO_PEERS",
        format!("svc3={},svc1=127.0.0.1:1", server2b.addr()),
    );
    let server2a = ServerProcess::spawn("server2a", command, PATIENCE)
        .await
        .unwrap();
    let out = test_client(server2a.addr(), &["--req", "getreq"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn a_server_without_its_peer_exits_with_a_clear_error() {
    let mut command = Command::new(env!("CARGO_BIN_EXE_server2a"));
    command
        .args(["--listen", "127.0.0.1:0"])
        .env_remove("NANO_PEERS");
    let err = ServerProcess::spawn("server2a", command, PATIENCE)
        .await
        .unwrap_err();
    let err = err.to_string();
    assert!(
        err.contains("server2a exited before it was ready (exit status: 1)"),
        "{err}"
    );
    assert!(err.contains("--peer svc3=ADDR"), "{err}");

    let mut command = Command::new(env!("CARGO_BIN_EXE_server1"));
    command.args(["--listen", "127.0.0.1:0", "--peer", "nonsense"]);
    let err = ServerProcess::spawn("server1", command, PATIENCE)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("exit status: 2"), "{err}");
}

#[tokio::test]
async fn servers_record_what_they_serve_into_fragments_that_join_into_one_tree() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("record-layout3-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let options = StartOptions {
        args: vec!["--record".into(), dir.display().to_string()],
        ..StartOptions::default()
    };
    let mut deployment =
        RunningLayout::start(&services::system(), "server3", &binaries(), &options)
            .await
            .unwrap();
    let response = http()
        .get(format!("{}/svc2/", deployment.url_of("svc2").unwrap()))
        .header("x-nano-client-name", "recorder-test")
        .header("x-nano-req-id", "0000000000000000000000000000beef")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // Servers write fragments off the request path; a graceful stop writes what is queued.
    stop_gracefully(&mut deployment).await;
    let fragments = nano_record::read_fragments(&dir).unwrap();
    let mut processes: Vec<&str> = fragments.iter().map(|f| f.process.as_str()).collect();
    processes.sort_unstable();
    assert_eq!(processes, ["server3b", "server3c", "server3d"]);
    let trees = nano_record::join_fragments(fragments);
    assert_eq!(trees.len(), 1);
    let calls: Vec<String> = trees[0]
        .iter()
        .map(|n| {
            format!(
                "{} -> {} {} {}",
                n.caller, n.service, n.request, n.request_id
            )
        })
        .collect();
    assert_eq!(
        calls,
        [
            "recorder-test -> svc2 svc2.GetReq 0000000000000000000000000000beef",
            "svc2 -> svc3 svc3.Req 0000000000000000000000000000beef",
            "svc3 -> svc4 svc4.Req 0000000000000000000000000000beef",
        ]
    );
    assert_eq!(
        trees[0].outcome,
        nano_record::CallOutcome::Response(
            serde_json::json!({"value": "svc2_svc3_svc4_getparam"}).into()
        )
    );
}

#[tokio::test]
async fn recorded_scenarios_replay_live_against_a_deployed_cluster() {
    use nano_test::scenario::{Registry, Replayed, Scenario, replay_outcome};

    let deployment = RunningLayout::start(
        &services::system(),
        "server3",
        &binaries(),
        &StartOptions::default(),
    )
    .await
    .unwrap();
    let peers: nano_http::Peers = format!("svc2={}", deployment.addr_of("svc2").unwrap())
        .parse()
        .unwrap();
    let cluster = nano_test::Deployment::remote(peers, services::api::endpoints).unwrap();
    let registry = Registry::new().with_all(services::api::request_types());
    let recorded = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/recorded");
    for name in ["svc2-req", "svc2-get", "svc2-bad-request"] {
        let scenario = Scenario::load(recorded.join(format!("{name}.json"))).unwrap();
        let replayed = replay_outcome(&scenario, &registry, &cluster)
            .await
            .unwrap();
        assert_eq!(replayed, Replayed::Passed, "{name}");
    }
    // svc2 declares no endpoint for svc1.Req: the HTTP client would refuse it before sending,
    // so the cluster cannot decide this scenario.
    let scenario = Scenario::load(recorded.join("svc2-unknown-request-type.json")).unwrap();
    match replay_outcome(&scenario, &registry, &cluster)
        .await
        .unwrap()
    {
        Replayed::NotApplicable(reason) => assert!(
            reason.contains("svc2 declares no HTTP endpoint for svc1.Req"),
            "{reason}"
        ),
        other => panic!("{other:?}"),
    }

    // The cluster does not behave as this (altered) recording says: the difference is reported.
    let mut scenario = Scenario::load(recorded.join("svc2-req.json")).unwrap();
    scenario.root.outcome =
        nano_record::CallOutcome::Response(serde_json::json!({"value": "svc2_svc1_other"}).into());
    let failure = replay_outcome(&scenario, &registry, &cluster)
        .await
        .unwrap_err();
    assert_eq!(failure.mode, "remote");
    assert!(
        failure
            .to_string()
            .contains(r#"$.value: expected "svc2_svc1_other", found "svc2_svc1_testval""#),
        "{failure}"
    );
}

/// Stops every server of `deployment` with SIGTERM and waits for each to exit.
async fn stop_gracefully(deployment: &mut RunningLayout) {
    let names: Vec<String> = deployment
        .processes()
        .iter()
        .map(|p| p.name().to_owned())
        .collect();
    for name in &names {
        deployment.process(name).unwrap().terminate().unwrap();
    }
    for name in &names {
        let status = deployment
            .process_mut(name)
            .unwrap()
            .wait(std::time::Duration::from_secs(20))
            .await
            .unwrap();
        assert!(status.success(), "{name} exited with {status}");
    }
}
