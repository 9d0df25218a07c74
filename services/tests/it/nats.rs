//! The executables on a real NATS broker (each test starts its own `nats-server` through
//! `nano_test::deploy`): serving and calling over it, a broker that cannot be reached, and two
//! replicas of svc3 sharing requests, losing one under load and getting it back.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use nano::{Ctx, NanoError, codes};
use nano_test::deploy::{RunningLayout, ServerProcess, StartOptions};
use services::api::{svc2, svc3};

use crate::support::{PATIENCE, binaries, http};

/// Runs `test_client` over the broker at `url`.
fn test_client_over_nats(url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_test_client"))
        .args(["--nats", url, "--timeout", "5s"])
        .args(args)
        .env_remove("NANO_NATS")
        .env_remove("NANO_PEERS")
        .output()
        .expect("test_client runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_executables_serve_and_call_over_nats_and_come_back_after_a_broker_restart() {
    let mut layout = RunningLayout::start(
        &services::system(),
        "server3-nats",
        &binaries(),
        &StartOptions::default(),
    )
    .await
    .unwrap();
    let url = layout.broker().unwrap().url();
    assert_eq!(
        layout.exposed().collect::<Vec<_>>(),
        ["svc1", "svc2", "svc3", "svc4"]
    );
    assert_eq!(
        layout.addr_of("svc2"),
        None,
        "no service is served over HTTP"
    );

    // test_client over the broker, both requests: svc2 reaches svc1, svc3 and svc4 there too.
    let out = test_client_over_nats(&url, &["--req", "req", "--param", "n"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), r#"{"value":"svc2_svc1_n"}"#);
    let out = test_client_over_nats(&url, &["--req", "getreq"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), r#"{"value":"svc2_svc3_svc4_getparam"}"#);

    // The layout's own clients, as a deployment.
    let clients = layout.clients().unwrap();
    let resp = clients
        .client(svc2::NAME)
        .unwrap()
        .call(&Ctx::new(), svc2::Req { param: "d".into() })
        .await
        .unwrap();
    assert_eq!(resp.value, "svc2_svc1_d");

    // --listen answers the health check and nothing else.
    let server3b = layout.process("server3b").unwrap().url();
    let http = http();
    let health = http
        .get(format!("{server3b}/health-check"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let svc2_over_http = http
        .post(format!("{server3b}/svc2/"))
        .header("content-type", nano_http::JSON_CONTENT_TYPE)
        .body(r#"{"param":"x"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(svc2_over_http.status(), 404);

    // The broker goes away: calls fail with a code; it comes back: the same processes serve.
    layout.broker_mut().unwrap().stop();
    let out = test_client_over_nats(&url, &["--req", "getreq"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out)
            .contains("test_client: error S-UNAVAILABLE: cannot connect to the NATS broker"),
        "{}",
        stderr(&out)
    );
    layout.broker_mut().unwrap().restart().await.unwrap();
    let until = Instant::now() + PATIENCE;
    loop {
        let out = test_client_over_nats(&url, &["--req", "getreq"]);
        if out.status.success() {
            assert_eq!(stdout(&out), r#"{"value":"svc2_svc3_svc4_getparam"}"#);
            break;
        }
        // Until every server has reconnected and renewed its subscriptions, a call is coded.
        let err = stderr(&out);
        assert!(
            err.contains("error S-UNAVAILABLE") || err.contains("error S-TIMEOUT"),
            "{err}"
        );
        assert!(Instant::now() < until, "service did not resume: {err}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let names: Vec<String> = layout
        .processes()
        .iter()
        .map(|p| p.name().to_owned())
        .collect();
    for name in names {
        let process = layout.process_mut(&name).unwrap();
        assert!(process.is_running(), "{name} was not restarted");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_peer_given_next_to_nats_is_called_over_http_and_the_rest_over_the_broker() {
    let mut layout = RunningLayout::start(
        &services::system(),
        "server3-nats",
        &binaries(),
        &StartOptions::default(),
    )
    .await
    .unwrap();
    let url = layout.broker().unwrap().url();
    // svc1 leaves the broker and is served over HTTP only; svc2 moves to a server that reaches
    // it there, and svc3 still over the broker.
    layout.stop("server3a").unwrap();
    layout.stop("server3b").unwrap();
    let options = StartOptions {
        echo_logs: false,
        ..StartOptions::default()
    };
    let svc1 = ServerProcess::start(
        "server3a-http",
        &binaries().path("server3a").unwrap(),
        &[],
        &options,
    )
    .await
    .unwrap();
    let peer = format!("svc1={}", svc1.addr());
    let _svc2 = ServerProcess::start(
        "server3b-mixed",
        &binaries().path("server3b").unwrap(),
        &["--nats".into(), url.clone(), "--peer".into(), peer],
        &options,
    )
    .await
    .unwrap();
    let out = test_client_over_nats(&url, &["--req", "req", "--param", "m"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), r#"{"value":"svc2_svc1_m"}"#);
    let out = test_client_over_nats(&url, &["--req", "getreq"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), r#"{"value":"svc2_svc3_svc4_getparam"}"#);
}

/// Runs a server executable that is expected to fail at start, bounded by [`PATIENCE`].
fn failing_server(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_server3a"));
    command
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .env_remove("NANO_NATS")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = command.spawn().expect("server3a starts");
    let (done, outcome) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    outcome
        .recv_timeout(PATIENCE)
        .expect("the server ends by itself")
        .expect("its output")
}

#[test]
fn a_broker_that_cannot_be_reached_ends_the_server_with_a_coded_error() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let url = format!("nats://{closed}");
    for (args, env) in [
        (vec!["--nats", url.as_str()], vec![]),
        // The variable works as the flag does.
        (vec![], vec![("NANO_NATS", url.as_str())]),
    ] {
        let out = failing_server(&args, &env);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains("code=\"S-UNAVAILABLE\""), "{err}");
        assert!(
            err.contains(&format!("cannot connect to the NATS broker at {url}")),
            "{err}"
        );
        assert!(!err.contains("NANO_LISTENING"), "never ready: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }

    // A port that accepts connections and never speaks NATS: the connect timeout ends it.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_url = format!("nats://{}", silent.local_addr().unwrap());
    let out = failing_server(
        &["--nats", &silent_url, "--nats-connect-timeout", "300ms"],
        &[],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "cannot connect to the NATS broker at {silent_url}"
        )),
        "{err}"
    );

    let out = failing_server(&["--nats", "nats://[not-an-address"], &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("code=\"S-INIT-FAILED\""), "{err}");

    let out = failing_server(&["--nats", &url, "--nats-prefix", "two..dots"], &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(r#"the prefix "two..dots" cannot be part of a NATS subject"#),
        "{err}"
    );
}

/// How many svc3 requests with ids starting with `phase` each process recorded in `dir`.
fn served(dir: &Path, phase: &str) -> BTreeMap<String, usize> {
    let mut by_process = BTreeMap::new();
    for fragment in nano_test::read_fragments(dir).unwrap() {
        if fragment.tree.service == svc3::NAME && fragment.tree.request_id.starts_with(phase) {
            *by_process.entry(fragment.process).or_default() += 1;
        }
    }
    by_process
}

/// Reads the recording until `done` holds for what it shows (the servers write off the
/// request path); a wait that never decides a passing run, only bounds a broken one.
async fn settled(
    dir: &Path,
    phase: &str,
    done: impl Fn(&BTreeMap<String, usize>) -> bool,
) -> BTreeMap<String, usize> {
    let until = Instant::now() + PATIENCE;
    loop {
        let counts = served(dir, phase);
        if done(&counts) || Instant::now() > until {
            return counts;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What became of the requests of one phase.
#[derive(Debug, Default)]
struct Outcomes {
    answered: usize,
    /// Request id → error code.
    failed: BTreeMap<String, String>,
}

/// Sends `count` svc3 requests with ids `PHASE-N`, 32 at a time; with `kill_after` `(n, layout,
/// process)`, kills `process` (SIGKILL) once `n` have finished, while the rest are in flight.
async fn load(
    client: &nano::Client,
    phase: &str,
    count: usize,
    kill_after: Option<(usize, &mut RunningLayout, &str)>,
) -> Outcomes {
    let mut outcomes = Outcomes::default();
    let mut kill = kill_after;
    let mut calls = tokio::task::JoinSet::<(String, Result<svc3::Resp, NanoError>)>::new();
    let mut finished = 0;
    let mut record = |id: String, outcome: Result<svc3::Resp, NanoError>, n: &str| match outcome {
        Ok(resp) => {
            assert_eq!(resp.value, format!("svc3_svc4_{n}"), "{id}");
            outcomes.answered += 1;
        }
        Err(err) => {
            outcomes.failed.insert(id, err.code().to_owned());
        }
    };
    for i in 0..count {
        while calls.len() >= 32 {
            let (id, outcome) = calls.join_next().await.unwrap().unwrap();
            let n = id.rsplit('-').next().unwrap().to_owned();
            record(id, outcome, &n);
            finished += 1;
            if kill.as_ref().is_some_and(|(at, _, _)| finished >= *at)
                && let Some((_, layout, process)) = kill.take()
            {
                layout.stop(process).unwrap();
            }
        }
        let client = client.clone();
        let id = format!("{phase}-{i}");
        calls.spawn(async move {
            let outcome = client
                .call(
                    &Ctx::with_request_id(id.as_str()),
                    svc3::Req {
                        param: i.to_string(),
                    },
                )
                .await;
            (id, outcome)
        });
    }
    while let Some(joined) = calls.join_next().await {
        let (id, outcome) = joined.unwrap();
        let n = id.rsplit('-').next().unwrap().to_owned();
        record(id, outcome, &n);
    }
    outcomes
}

#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_of_svc3_share_requests_lose_only_the_killed_ones_in_flight_and_rejoin() {
    let dir = std::env::temp_dir().join(format!("nano-nats-replicas-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    // Two processes of the svc3 server in one queue group, and the svc4 server they call.
    let system =
        services::system().nats_layout("svc3-twice", &["server3c", "server3c", "server3d"]);
    let options = StartOptions {
        args: vec!["--record".into(), dir.display().to_string()],
        echo_logs: false,
        ..StartOptions::default()
    };
    let mut layout = RunningLayout::start(&system, "svc3-twice", &binaries(), &options)
        .await
        .unwrap();
    let names: Vec<&str> = layout.processes().iter().map(|p| p.name()).collect();
    assert_eq!(names, ["server3c-1", "server3c-2", "server3d"]);
    // A short call timeout: a request the killed replica took is never answered, and its
    // caller learns so after this long.
    let nats = nano_nats::NatsTransport::builder()
        .timeout(Duration::from_secs(3))
        .connect(&layout.broker().unwrap().url())
        .await
        .unwrap();
    let set = nano::ServiceSet::builder()
        .service(nats.api_client(&svc3::API).unwrap())
        .build()
        .unwrap();
    let client = set.client("test", svc3::NAME).unwrap();

    // Both replicas serve a share of 1,000 requests, each request once.
    let first = load(&client, "share", 1_000, None).await;
    assert_eq!(first.answered, 1_000, "{:?}", first.failed);
    let counts = settled(&dir, "share-", |c| c.values().sum::<usize>() >= 1_000).await;
    let share = |name: &str| counts.get(name).copied().unwrap_or(0);
    let (one, two) = (share("server3c-1"), share("server3c-2"));
    println!("1,000 requests: server3c-1 served {one}, server3c-2 served {two}");
    assert_eq!(one + two, 1_000, "{counts:?}");
    assert!(one >= 100 && two >= 100, "{counts:?}");

    // SIGKILL one replica after 300 of 1,000 requests finished, the rest in flight.
    let under_load = load(
        &client,
        "kill",
        1_000,
        Some((300, &mut layout, "server3c-1")),
    )
    .await;
    let lost = under_load.failed.len();
    println!(
        "killing server3c-1 under load: {} answered, {lost} lost in flight to it: {:?}",
        under_load.answered,
        under_load.failed.values().collect::<BTreeSet<_>>()
    );
    assert_eq!(under_load.answered + lost, 1_000);
    for (id, code) in &under_load.failed {
        assert!(
            code == codes::TIMEOUT || code == codes::UNAVAILABLE,
            "{id} failed with {code}"
        );
    }
    // At most one request per caller slot was with the dead replica; the kill landed while it
    // held some.
    assert!((1..=32).contains(&lost), "{lost} lost");

    // From now on the survivor serves everything, and never saw a lost request.
    let alone = load(&client, "alone", 200, None).await;
    assert_eq!(alone.answered, 200, "{:?}", alone.failed);
    let counts = settled(&dir, "alone-", |c| c.values().sum::<usize>() >= 200).await;
    assert_eq!(counts.get("server3c-2").copied(), Some(200), "{counts:?}");
    assert_eq!(counts.get("server3c-1"), None, "{counts:?}");
    let survivor_saw: BTreeSet<String> = nano_test::read_fragments(&dir)
        .unwrap()
        .into_iter()
        .filter(|f| f.process == "server3c-2")
        .map(|f| f.tree.request_id.clone())
        .collect();
    for id in under_load.failed.keys() {
        assert!(
            !survivor_saw.contains(id),
            "{id} reached the survivor yet failed"
        );
    }

    // The killed replica comes back, joins the queue group and serves again.
    layout.restart("server3c-1").await.unwrap();
    let back = load(&client, "back", 1_000, None).await;
    assert_eq!(back.answered, 1_000, "{:?}", back.failed);
    let counts = settled(&dir, "back-", |c| c.values().sum::<usize>() >= 1_000).await;
    let share = |name: &str| counts.get(name).copied().unwrap_or(0);
    let (one, two) = (share("server3c-1"), share("server3c-2"));
    println!("after the restart: server3c-1 served {one}, server3c-2 served {two}");
    assert_eq!(one + two, 1_000, "{counts:?}");
    assert!(one >= 100 && two >= 100, "{counts:?}");

    drop(layout);
    std::fs::remove_dir_all(&dir).unwrap();
}
