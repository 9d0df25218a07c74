//! The runner as users run it: a real process, real files, real servers.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use nano_test::deploy::{Binaries, RunningLayout, StartOptions};

fn runner(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_scenarios"))
        .args(args)
        .output()
        .expect("the runner starts")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn recorded() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("recorded")
}

/// A scratch copy of the recorded scenarios, one per test (replaced on the next run).
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("scenarios-cli")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(recorded()).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
    }
    dir
}

#[test]
fn every_scenario_passes_in_every_deployment_and_results_are_written_for_ci() {
    let dir = scratch("ci-out");
    let (json, junit) = (dir.join("out.json.txt"), dir.join("out.xml"));
    let out = runner(&[
        "--json",
        json.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
    ]);
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert!(
        shown
            .contains("scenario                   in-process  fidelity  server1  server2  server3  server3-nats  server3-nats-x2"),
        "{shown}"
    );
    for name in [
        "svc2-req ",
        "svc2-get ",
        "svc2-bad-request",
        "svc2-unknown-request-type",
        "svc2-get-svc3-down",
    ] {
        assert!(
            shown.lines().any(|l| l.starts_with(name)),
            "{name} missing:\n{shown}"
        );
    }
    assert!(
        shown.contains("server1 runs svc2 and svc3, so svc3 cannot be made unreachable alone"),
        "{shown}"
    );
    assert!(shown.contains("wall time"), "{shown}");
    // A verdict the named deployment did not decide is never shown as a pass.
    let row = |name: &str| {
        shown
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap()
            .split_whitespace()
            .skip(1)
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(
        row("svc2-bad-request"),
        "n/a [1] n/a [1] pass pass pass pass pass",
        "{shown}"
    );
    assert_eq!(
        row("svc2-unknown-request-type"),
        "pass pass n/a [3] n/a [3] n/a [3] n/a [4] n/a [4]",
        "{shown}"
    );
    assert!(
        shown.contains("[1] n/a the recorded body does not decode as svc2.Req"),
        "{shown}"
    );
    assert!(
        shown.contains(
            "[3] n/a svc2 declares no HTTP endpoint for svc1.Req, so the HTTP client refuses it"
        ),
        "{shown}"
    );
    assert!(
        shown.contains(
            "[4] n/a svc2 declares no request type svc1.Req, so the NATS client refuses it before anything is sent"
        ),
        "{shown}"
    );
    // Over NATS, svc3 being down is decided too (no responders), in both layouts.
    assert_eq!(
        row("svc2-get-svc3-down"),
        "pass pass n/a [2] pass pass pass pass",
        "{shown}"
    );

    let document: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(document["passed"], true);
    assert_eq!(document["deployments"].as_array().unwrap().len(), 7);
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("<testsuite name=\"server2\" tests=\"6\" failures=\"0\" skipped=\"1\">"),
        "{xml}"
    );
    assert!(
        xml.contains("<skipped message=\"server1 runs svc2 and svc3"),
        "{xml}"
    );
    assert!(
        xml.contains(
            "<testsuite name=\"server3-nats-x2\" tests=\"6\" failures=\"0\" skipped=\"1\">"
        ),
        "{xml}"
    );
}

#[test]
fn a_behaviour_change_fails_every_deployment_with_the_first_difference() {
    let dir = scratch("changed");
    let path = dir.join("svc2-req.json");
    let changed = std::fs::read_to_string(&path)
        .unwrap()
        .replace("\"svc2_svc1_testval\"", "\"svc2_svc1_TESTVAL\"");
    std::fs::write(&path, changed).unwrap();
    let out = runner(&["--dir", dir.to_str().unwrap(), "--filter", "svc2-req"]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    let row = shown.lines().find(|l| l.starts_with("svc2-req ")).unwrap();
    assert_eq!(row.matches("FAIL").count(), 7, "{shown}");
    assert!(
        shown.contains(r#"$.value: expected "svc2_svc1_TESTVAL", found "svc2_svc1_testval""#),
        "{shown}"
    );
    assert!(
        shown.contains(
            "scenario \"svc2-req\" (in-process, fidelity, server1, server2, server3, server3-nats, server3-nats-x2): 1 difference"
        ),
        "{shown}"
    );
    // The other scenario the filter selects still passes.
    let other = shown
        .lines()
        .find(|l| l.starts_with("svc2-req-empty"))
        .unwrap();
    assert_eq!(other.matches("pass").count(), 7, "{shown}");
}

#[test]
fn a_broken_scenario_file_fails_the_run_naming_the_file_and_the_place() {
    let dir = scratch("broken");
    std::fs::write(
        dir.join("svc2-zz.json"),
        "{\"version\": 1, \"name\": \"svc2-zz\", \"root\": {",
    )
    .unwrap();
    let out = runner(&[
        "--dir",
        dir.to_str().unwrap(),
        "--deployments",
        "in-process",
    ]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(shown.contains("svc2-zz.json:1:"), "{shown}");
    assert!(shown.contains("ends too early (truncated?)"), "{shown}");
    assert_eq!(
        shown.matches("ends too early").count(),
        2,
        "one note, one report:\n{shown}"
    );

    // A service the cluster does not have fails the scenario in every deployment alike.
    std::fs::remove_file(dir.join("svc2-zz.json")).unwrap();
    let typo = std::fs::read_to_string(dir.join("svc2-get-svc3-down.json"))
        .unwrap()
        .replace("\"svc3\"\n  ]", "\"svc33\"\n  ]");
    std::fs::write(dir.join("svc2-get-svc3-down.json"), typo).unwrap();
    let out = runner(&["--dir", dir.to_str().unwrap(), "--filter", "svc3-down"]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains("`unreachable` names unknown service \"svc33\""),
        "{shown}"
    );
    let row = shown
        .lines()
        .find(|l| l.starts_with("svc2-get-svc3-down"))
        .unwrap();
    assert_eq!(row.matches("FAIL").count(), 7, "{shown}");

    let out = runner(&[
        "--dir",
        dir.to_str().unwrap(),
        "--filter",
        "nothing-matches",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("no scenario in"), "{}", text(&out));
    let out = runner(&["--deployments", "server9"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("unknown deployment \"server9\""),
        "{}",
        text(&out)
    );
}

#[test]
fn show_prints_the_tree_and_a_mermaid_diagram() {
    // A scenario can be named instead of given as a path.
    let out = runner(&["show", "svc2-get"]);
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert!(shown.contains("    svc3 -> svc4 svc4.Req {\"param\":\"getparam\"} => response {\"value\":\"svc4_getparam\"}"), "{shown}");
    assert!(
        shown.contains("```mermaid\nsequenceDiagram\n    participant test_client"),
        "{shown}"
    );
    assert!(
        shown.contains("svc3->>+svc4: svc4.Req {\"param\":\"getparam\"}"),
        "{shown}"
    );
    assert!(
        shown.contains("svc4-->>-svc3: {\"value\":\"svc4_getparam\"}"),
        "{shown}"
    );
}

#[test]
fn record_then_replay_round_trips_and_update_reports_unchanged() {
    let dir = scratch("record");
    let dir_arg = dir.to_str().unwrap();
    let out = runner(&[
        "record",
        "svc2-new",
        "--request",
        "svc2.Req",
        "--body",
        r#"{"param":"new"}"#,
        "--dir",
        dir_arg,
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let out = runner(&[
        "record",
        "svc2-new",
        "--request",
        "svc2.Req",
        "--dir",
        dir_arg,
    ]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "an existing scenario is not overwritten"
    );
    assert!(
        text(&out).contains("use --update svc2-new"),
        "{}",
        text(&out)
    );

    let out = runner(&["--dir", dir_arg, "--filter", "svc2-new"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = runner(&["record", "--update", "svc2-new", "--dir", dir_arg]);
    assert!(text(&out).contains("svc2-new: unchanged"), "{}", text(&out));

    // Re-recorded on real servers of layout 3 the scenario is the same.
    let out = runner(&[
        "record", "--update", "svc2-new", "--layout", "server3", "--dir", dir_arg,
    ]);
    assert!(text(&out).contains("svc2-new: unchanged"), "{}", text(&out));
}

#[test]
fn a_recording_made_over_nats_replays_identically_over_http_and_in_process() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("scenarios-cli")
        .join("nats-recorded");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let dir_arg = dir.to_str().unwrap();
    // Recorded on servers started with --nats and --record, the fragments of every process
    // joined by request id; once on server3's executables, once on two replicas of each.
    for (name, request, body, layout) in [
        ("nats-get", "svc2.GetReq", "{}", "server3-nats"),
        (
            "nats-req",
            "svc2.Req",
            r#"{"param":"nats"}"#,
            "server3-nats-x2",
        ),
        ("nats-bad", "svc2.Req", r#"{"param":42}"#, "server3-nats"),
    ] {
        let out = runner(&[
            "record",
            name,
            "--request",
            request,
            "--body",
            body,
            "--layout",
            layout,
            "--dir",
            dir_arg,
        ]);
        assert!(out.status.success(), "{name}: {}", text(&out));
    }
    let load = |name: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap())
            .unwrap()
    };
    let get = load("nats-get");
    assert_eq!(
        get["root"]["outcome"]["response"]["value"],
        "svc2_svc3_svc4_getparam"
    );
    let svc3 = &get["root"]["calls"][0];
    assert_eq!(svc3["service"], "svc3", "{get}");
    assert_eq!(svc3["calls"][0]["service"], "svc4", "{get}");
    let req = load("nats-req");
    assert_eq!(req["root"]["calls"][0]["service"], "svc1", "{req}");
    assert_eq!(
        load("nats-bad")["root"]["outcome"]["error"]["code"],
        "C-BAD-REQUEST"
    );

    // Replayed in process and on every HTTP layout, tree and outcome compared.
    let out = runner(&[
        "--dir",
        dir_arg,
        "--deployments",
        "in-process,fidelity,server1,server2,server3",
    ]);
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    for (name, cells) in [
        ("nats-get", "pass pass pass pass pass"),
        ("nats-req", "pass pass pass pass pass"),
        ("nats-bad", "n/a [1] n/a [1] pass pass pass"),
    ] {
        let row = shown
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap();
        assert_eq!(
            row.split_whitespace().skip(1).collect::<Vec<_>>().join(" "),
            cells,
            "{shown}"
        );
    }
    // Recorded again over HTTP, the scenario is the same file.
    let out = runner(&[
        "record", "--update", "nats-get", "--layout", "server3", "--dir", dir_arg,
    ]);
    assert!(text(&out).contains("nats-get: unchanged"), "{}", text(&out));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn update_shows_what_changed() {
    let dir = scratch("update");
    let path = dir.join("svc2-get.json");
    let old = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, old.replace("svc4_getparam\"", "svc4_old\"")).unwrap();
    let out = runner(&[
        "record",
        "--update",
        "svc2-get",
        "--dir",
        dir.to_str().unwrap(),
    ]);
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert!(
        shown.contains("-        \"value\": \"svc2_svc3_svc4_old\""),
        "{shown}"
    );
    assert!(
        shown.contains("+        \"value\": \"svc2_svc3_svc4_getparam\""),
        "{shown}"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), old);
}

fn server_binaries() -> Binaries {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    build.args(["build", "--quiet", "-p", "services", "--bins"]);
    // As the runner does: what cargo set for this test describes the scenarios package, and
    // build scripts that watch it (ring's) would otherwise run again, here and in the next
    // outer build.
    for (name, _) in std::env::vars() {
        let package = [
            "CARGO_PKG_",
            "CARGO_MANIFEST_",
            "CARGO_BIN_",
            "CARGO_CRATE_",
        ]
        .iter()
        .any(|prefix| name.starts_with(prefix));
        if package
            || ["CARGO_PRIMARY_PACKAGE", "CARGO_TARGET_TMPDIR", "OUT_DIR"].contains(&name.as_str())
        {
            build.env_remove(name);
        }
    }
    let status = build.status().unwrap();
    assert!(status.success());
    Binaries::beside_current_exe().unwrap()
}

#[tokio::test]
async fn live_replay_against_a_running_deployment() {
    let deployment = RunningLayout::start(
        &services::system(),
        "server2",
        &server_binaries(),
        &StartOptions::default(),
    )
    .await
    .unwrap();
    let url = deployment.url_of("svc2").unwrap();
    for name in ["svc2-req", "svc2-get", "svc2-bad-request"] {
        let file = recorded().join(format!("{name}.json"));
        let out = runner(&["replay", file.to_str().unwrap(), "--target", &url]);
        assert!(out.status.success(), "{name}: {}", text(&out));
        assert!(
            text(&out).starts_with(&format!("pass: {name} against {url}")),
            "{}",
            text(&out)
        );
    }
    // svc2 declares no HTTP endpoint for svc1.Req: the client refuses it before sending, so
    // the server cannot decide it and the replay says so instead of passing.
    let file = recorded().join("svc2-unknown-request-type.json");
    let out = runner(&["replay", file.to_str().unwrap(), "--target", &url]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).starts_with(&format!(
            "n/a: svc2-unknown-request-type against {url}: svc2 declares no HTTP endpoint for svc1.Req"
        )),
        "{}",
        text(&out)
    );
    // svc3 is up, so the scenario that expects it down fails, with the difference.
    let file = recorded().join("svc2-get-svc3-down.json");
    let out = runner(&["replay", file.to_str().unwrap(), "--target", &url]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("FAIL: scenario \"svc2-get-svc3-down\""),
        "{}",
        text(&out)
    );

    let out = runner(&["replay", file.to_str().unwrap(), "--target", "not a url"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));

    drop(deployment);
    let out = runner(&["replay", "svc2-req", "--target", &url]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("note: the target could not be reached"),
        "{}",
        text(&out)
    );
}

#[test]
fn chaos_is_deterministic_per_seed() {
    let first = runner(&["chaos", "--seed", "7"]);
    // NANO_SIM_SEED does not override the runner's own seeds.
    let with_env = Command::new(env!("CARGO_BIN_EXE_scenarios"))
        .args(["chaos", "--seed", "7"])
        .env("NANO_SIM_SEED", "99")
        .output()
        .unwrap();
    assert_eq!(first.stdout, with_env.stdout);
    assert!(first.status.success(), "{}", text(&first));
    let again = runner(&["chaos", "--seed", "7"]);
    assert_eq!(first.stdout, again.stdout);
    let other = runner(&["chaos", "--seed", "8"]);
    assert_ne!(first.stdout, other.stdout);
    let shown = text(&first);
    assert!(shown.contains("all invariants held"), "{shown}");
    assert!(
        shown.contains(
            "invariants checked for every request:\n  - every call ends by the root request's deadline\n"
        ),
        "{shown}"
    );
    assert!(shown.contains("svc2-get: "), "{shown}");
    // The example's own invariant is listed after the runner's, and every invariant is counted.
    assert!(
        shown.contains(
            "  - the root call finishes\n  - svc2 answers a new request once the faults stop\n"
        ),
        "{shown}"
    );
    assert!(
        shown.contains("invariant checks:\n  - every call ends by the root request's deadline: 120 passed, 0 failed\n"),
        "{shown}"
    );
    assert!(
        shown.contains(
            "  - svc2 answers a new request once the faults stop: 120 passed, 0 failed\n"
        ),
        "{shown}"
    );
    // The example plan injects every kind of fault it names.
    for fault in ["dropped", "responses lost", "duplicated", "crashed"] {
        assert!(
            shown
                .lines()
                .any(|l| l.contains(fault) && !l.contains(&format!("{fault} 0"))),
            "no {fault}: {shown}"
        );
    }
}

#[test]
fn chaos_reports_a_broken_system_invariant_by_name_with_its_counts() {
    // svc1 crashes on its 3rd call and stays down for longer than the rest of the run: svc2
    // cannot answer the probe after that request, which the example's invariant catches.
    let dir = scratch("chaos-crash");
    let plan = dir.join("plan.json");
    std::fs::write(
        &plan,
        r#"{"default": {"latency": {"kind": "uniform", "min_ms": 1, "max_ms": 9}, "duplicate_rate": 0.1},
            "scripted": [{"callee": "svc1", "nth": 3, "fault": {"kind": "crash", "down_ms": 60000}}]}"#,
    )
    .unwrap();
    let out = runner(&[
        "chaos",
        "--seed",
        "5",
        "--plan",
        plan.to_str().unwrap(),
        "--filter",
        "svc2-req",
    ]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains(
            "simulation broke an invariant: svc2 answers a new request once the faults stop: \
             svc1 failure :: svc1 is down: it crashed and has not restarted yet"
        ),
        "{shown}"
    );
    assert!(
        shown.contains(
            r#"invariant "svc2 answers a new request once the faults stop" passed 2, failed 1"#
        ),
        "{shown}"
    );
    assert!(
        shown.contains("smallest fault schedule that still breaks it (1 of"),
        "{shown}"
    );
    assert!(
        shown.contains("svc2 -> svc1 call #3: callee crashed, down 60000 ms"),
        "{shown}"
    );
    // Both scenarios the filter picks (svc2-req, svc2-req-empty) break it once, in the totals.
    assert!(
        shown.contains("  - svc2 answers a new request once the faults stop: 4 passed, 2 failed"),
        "{shown}"
    );
    assert!(
        shown.contains("2 scenario(s) broke an invariant"),
        "{shown}"
    );
}

#[test]
fn chaos_reports_a_broken_invariant_with_the_shrunk_schedule() {
    let dir = scratch("chaos-plan");
    let plan = dir.join("plan.json.txt");
    std::fs::write(
        &plan,
        r#"{"default": {"latency": {"kind": "uniform", "min_ms": 1, "max_ms": 9}, "drop_rate": 0.05},
            "scripted": [{"callee": "svc1", "nth": 3, "fault": {"kind": "error", "code": "", "message": "disk on fire"}}]}"#,
    )
    .unwrap();
    let out = runner(&[
        "chaos",
        "--seed",
        "3",
        "--plan",
        plan.to_str().unwrap(),
        "--filter",
        "svc2-req",
    ]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(shown.contains("INVARIANT BROKEN"), "{shown}");
    assert!(shown.contains("failed with an uncoded error"), "{shown}");
    assert!(
        shown.contains("smallest fault schedule that still breaks it (1 of"),
        "{shown}"
    );
    assert!(
        shown.contains("svc2 -> svc1 call #3: error : disk on fire"),
        "{shown}"
    );

    std::fs::write(&plan, "{\"seed\": 1, \"edges\": 5}").unwrap();
    let out = runner(&["chaos", "--seed", "3", "--plan", plan.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("invalid fault plan"), "{}", text(&out));
}

#[test]
fn every_recorded_scenario_matches_the_published_json_schema() {
    let schema_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/scenario.schema.json");
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(schema_path).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let mut checked = 0;
    for entry in std::fs::read_dir(recorded()).unwrap() {
        let path = entry.unwrap().path();
        let value: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{}: {errors:?}", path.display());
        checked += 1;
    }
    assert!(checked >= 6);
    // The schema rejects what the loader rejects.
    let bad = serde_json::json!({"version": 2, "name": "x", "root": {}});
    assert!(!validator.is_valid(&bad));
    let mut misspelt: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(recorded().join("svc2-get-svc3-down.json")).unwrap(),
    )
    .unwrap();
    misspelt["spec"]["rules"][0]["servce"] = serde_json::json!("svc2");
    assert!(!validator.is_valid(&misspelt));
}

/// A copy of the runner's executable in a directory of its own, without the server executables
/// cargo built beside the original.
fn runner_elsewhere(name: &str) -> (PathBuf, PathBuf) {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("scenarios-elsewhere")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    let checkout = dir.join("checkout");
    std::fs::create_dir_all(checkout.join("scenarios/recorded")).unwrap();
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    let exe = dir
        .join("bin")
        .join(format!("scenarios{}", std::env::consts::EXE_SUFFIX));
    std::fs::copy(env!("CARGO_BIN_EXE_scenarios"), &exe).unwrap();
    for name in ["svc2-req.json", "svc2-get.json"] {
        std::fs::copy(
            recorded().join(name),
            checkout.join("scenarios/recorded").join(name),
        )
        .unwrap();
    }
    (exe, checkout)
}

/// Runs a freshly copied executable. A process another test forks while the copy is still open
/// for writing holds it open a moment longer, and executing it then fails with "text file busy"
/// (ETXTBSY); that clears as soon as the fork execs, so the start is tried again.
fn run_copy(command: &mut Command) -> Output {
    for _ in 0..50 {
        match command.output() {
            Err(err) if err.raw_os_error() == Some(26) => {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            result => return result.unwrap(),
        }
    }
    command.output().unwrap()
}

#[test]
fn paths_resolve_from_the_working_directory_and_a_deployment_that_cannot_start_fails() {
    let (exe, checkout) = runner_elsewhere("paths");
    // Run from a subdirectory of another checkout, not through cargo: the scenarios are that
    // checkout's, found from the working directory, and nothing builds the servers.
    let sub = checkout.join("src");
    std::fs::create_dir_all(&sub).unwrap();
    let out = run_copy(Command::new(&exe).current_dir(&sub).env_remove("CARGO"));
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    let row = shown.lines().find(|l| l.starts_with("svc2-get ")).unwrap();
    assert_eq!(row.matches("pass").count(), 2, "{shown}");
    assert_eq!(row.matches("FAIL").count(), 5, "{shown}");
    assert!(
        !shown.contains("svc2-bad-request"),
        "only the copied scenarios:\n{shown}"
    );
    assert!(
        shown.contains("the deployment could not be started: executable \"server1\" not found at"),
        "{shown}"
    );
    assert!(!shown.contains("skip"), "{shown}");

    // The in-process deployments need no server, and --dir overrides the directory.
    let out = run_copy(
        Command::new(&exe)
            .current_dir(&sub)
            .args(["--deployments", "in-process,fidelity", "--dir"])
            .arg(recorded())
            .env_remove("CARGO"),
    );
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert!(shown.contains("svc2-bad-request"), "{shown}");
}

#[test]
fn the_cargo_test_cases_fail_on_a_behaviour_change_and_list_every_cell() {
    use nano_test::runner::Runner;
    let dir = scratch("harness");
    let path = dir.join("svc2-req.json");
    let changed = std::fs::read_to_string(&path)
        .unwrap()
        .replace("\"svc2_svc1_testval\"", "\"svc2_svc1_TESTVAL\"");
    std::fs::write(&path, changed).unwrap();
    let trials = || {
        Runner::new(services::system())
            .scenario_dir(&dir)
            .root_service("svc2")
            .trials()
            .unwrap()
    };
    let names: Vec<String> = trials().iter().map(|t| t.name().to_owned()).collect();
    assert_eq!(names.len(), 6 * 7, "{names:?}");
    assert!(
        names.contains(&"svc2-req::in-process".to_owned()),
        "{names:?}"
    );
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("svc2-bad-request::in-process (n/a: ")),
        "{names:?}"
    );
    // Only the in-process cells, so no server is started: the changed scenario fails there,
    // the others pass or are not applicable.
    // The inner run reports into a file, so its summary line is not mistaken for this test
    // binary's own.
    let log = Path::new(env!("CARGO_TARGET_TMPDIR")).join("scenarios-cli/harness.log");
    let arguments = libtest_mimic::Arguments {
        filter: Some("::in-process".into()),
        test_threads: Some(1),
        logfile: Some(log.display().to_string()),
        ..libtest_mimic::Arguments::default()
    };
    let conclusion = libtest_mimic::run(&arguments, trials());
    assert_eq!(conclusion.num_failed, 1, "{conclusion:?}");
    assert_eq!(conclusion.num_passed, 4, "{conclusion:?}");
    assert_eq!(conclusion.num_ignored, 1, "{conclusion:?}");
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("svc2-req::in-process") && logged.contains("failed"),
        "{logged}"
    );
}

#[test]
fn the_example_plan_is_the_generic_plan_with_lost_responses_duplicates_a_hang_and_a_crash() {
    use nano_test::sim::{Fault, FaultPlan};
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/default.json");
    let mut example = FaultPlan::from_json(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut generic = nano_test::runner::generic_plan();
    generic.default = generic
        .default
        .lose_response_rate(0.05)
        .duplicate_rate(0.05);
    assert_eq!(
        example,
        generic
            .clone()
            .nth_call_to("svc4", 2, Fault::Hang)
            .nth_call_to(
                "svc3",
                5,
                Fault::Crash {
                    down_ms: std::time::Duration::from_millis(100)
                }
            ),
        "scenarios/plans/default.json"
    );
    example.scripted.clear();
    assert_eq!(example, generic);
}
