//! The runner against inputs that used to break it, as a real process: a closed stdout, large
//! scenario files and deep call trees. Memory is read from `/proc/PID/status`; nothing passes or
//! fails on timing.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use nano_test::scenario::Scenario;
use nano_test::{CallNode, CallOutcome};
use serde_json::json;

fn scenarios() -> Command {
    Command::new(env!("CARGO_BIN_EXE_scenarios"))
}

fn recorded() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("recorded")
}

/// A fresh directory for one test (replaced on the next run).
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("scenarios-limits")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Copies one recorded scenario into `dir`.
fn copy_recorded(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(format!("{name}.json"));
    std::fs::copy(recorded().join(format!("{name}.json")), &path).unwrap();
    path
}

/// Runs `command` with its stdout a pipe whose reading end is already closed, as after
/// `| head -0`: the first write fails, whatever the size of the output.
fn with_closed_stdout(mut command: Command) -> Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    command
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .output()
        .expect("the runner starts")
}

fn assert_quiet_exit(what: &str, output: &Output) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{what} panicked: {stderr}");
    assert!(!stderr.contains("Broken pipe"), "{what}: {stderr}");
    assert_eq!(
        output.status.code(),
        Some(141),
        "{what} on a closed stdout: {stderr}"
    );
}

#[test]
fn every_command_ends_quietly_when_stdout_is_closed() {
    let dir = scratch("closed-stdout");
    let file = copy_recorded(&dir, "svc2-req");
    let file = file.to_str().unwrap();
    let dir_arg = dir.to_str().unwrap();
    let commands: Vec<(&str, Vec<&str>)> = vec![
        ("show", vec!["show", file]),
        ("show --mermaid", vec!["show", "--mermaid", file]),
        (
            "the default run",
            vec!["--dir", dir_arg, "--deployments", "in-process,fidelity"],
        ),
        (
            "--json /dev/stdout",
            vec![
                "--dir",
                dir_arg,
                "--deployments",
                "in-process",
                "--json",
                "/dev/stdout",
            ],
        ),
        (
            "--junit /dev/stdout",
            vec![
                "--dir",
                dir_arg,
                "--deployments",
                "in-process",
                "--junit",
                "/dev/stdout",
            ],
        ),
        (
            "record",
            vec![
                "record",
                "new-one",
                "--request",
                "svc2.Req",
                "--body",
                r#"{"param":"p"}"#,
                "--dir",
                dir_arg,
                "--force",
            ],
        ),
        ("chaos", vec!["chaos", "--seed", "3", "--dir", dir_arg]),
        // Nothing listens on port 1: the replay reports the failure, on a closed stdout.
        (
            "replay",
            vec!["replay", file, "--target", "http://127.0.0.1:1"],
        ),
    ];
    for (what, args) in &commands {
        let mut command = scenarios();
        command.args(args);
        assert_quiet_exit(what, &with_closed_stdout(command));
    }
    // The same commands with an open stdout succeed (replay fails: nothing listens), so the
    // exit code above is the closed pipe's.
    for (what, args) in &commands {
        let output = scenarios().args(args).output().unwrap();
        let expected = if *what == "replay" { 1 } else { 0 };
        assert_eq!(
            output.status.code(),
            Some(expected),
            "{what}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(!output.stdout.is_empty(), "{what} printed nothing");
    }
}

#[test]
fn show_stops_quietly_when_the_reader_goes_away_mid_output() {
    // `scenarios show FILE | head -1` on a scenario whose output is far larger than a pipe holds.
    let dir = scratch("head-1");
    let path = dir.join("wide.json");
    wide_scenario(2_000, 100).save(&path).unwrap();
    let mut child = scenarios()
        .args(["show", path.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert_eq!(first, "scenario wide\n");
    let output = child.wait_with_output().unwrap();
    assert_quiet_exit("show | head -1", &output);
}

/// A root call with `calls` calls below it, to `services` distinct services.
fn wide_scenario(calls: usize, services: usize) -> Scenario {
    let mut root = node("test_client", "svc2", 0);
    root.calls = (0..calls)
        .map(|i| node("svc2", &format!("service{}", i % services), i))
        .collect();
    Scenario::new("wide", root)
}

fn node(caller: &str, service: &str, i: usize) -> CallNode {
    CallNode {
        caller: caller.into(),
        service: service.into(),
        request: format!("{service}.Req"),
        request_id: String::new(),
        body: json!({"param": format!("p{i}"), "n": i}).into(),
        outcome: CallOutcome::Response(json!({"value": format!("v{i}")}).into()),
        calls: Vec::new(),
    }
}

/// The peak resident memory of a running process, in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM in /proc/PID/status");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap();
    kib * 1024
}

#[test]
fn a_large_scenario_with_many_services_shows_in_memory_a_few_times_its_size() {
    // 60,000 calls to 30,000 distinct services: a participant list scanned per call took
    // minutes here; loading kept a JSON tree of the file beside the scenario.
    let dir = scratch("large");
    let path = dir.join("wide.json");
    wide_scenario(60_000, 30_000).save(&path).unwrap();
    let size = std::fs::metadata(&path).unwrap().len();
    assert!(size > 10 << 20, "the file is {size} bytes");

    let mut child = scenarios()
        .args(["show", path.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    // The first line comes once the file is loaded; the process cannot end before the rest of
    // its output (megabytes, far more than a pipe holds) is read, so it is still there to be
    // measured.
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert_eq!(first, "scenario wide\n");
    let peak = peak_rss(child.id());
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(rest.matches(" -> service").count(), 60_000);
    assert_eq!(rest.matches("    participant service").count(), 30_000);
    // About 2x measured (bodies are kept as their compact text); the margin leaves room for
    // allocator differences.
    assert!(
        peak < 4 * size,
        "peak memory {peak} bytes for a file of {size} bytes ({:.1}x)",
        peak as f64 / size as f64
    );
}

/// A chain `depth` calls deep: svc2 -> svc2 -> ... each answering.
fn deep_scenario(depth: usize) -> Scenario {
    let mut leaf = node("svc2", "svc3", depth);
    for i in (0..depth).rev() {
        let mut parent = node(if i == 0 { "test_client" } else { "svc2" }, "svc2", i);
        parent.calls = vec![leaf];
        leaf = parent;
    }
    Scenario::new("deep", leaf)
}

#[test]
fn a_call_tree_a_thousand_levels_deep_loads_shows_and_replays() {
    let dir = scratch("deep");
    let path = dir.join("deep.json");
    // Pretty-printed, the file grows with the square of the depth: about 30 MB here.
    deep_scenario(1_000).save(&path).unwrap();

    let output = scenarios()
        .args(["show", path.to_str().unwrap()])
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Indentation stops growing; deeper lines carry their depth.
    assert!(
        shown.contains("[1000] svc2 -> svc3 svc3.Req"),
        "{shown:.2000}"
    );
    assert_eq!(shown.matches("->>+").count(), 1_001);
    assert_eq!(shown.matches("-->>-").count(), 1_001);

    // The replay runs the real services, whose tree is not this deep: it fails, naming the
    // difference, instead of crashing.
    let output = scenarios()
        .args([
            "--dir",
            dir.to_str().unwrap(),
            "--deployments",
            "in-process",
        ])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.status.code(), Some(1), "{text:.3000}");
    assert!(text.contains("deep"), "{text:.3000}");
    assert!(!text.contains("overflow"), "{text:.3000}");
}

#[test]
fn a_broken_deep_file_is_refused_with_its_place() {
    let dir = scratch("deep-broken");
    let path = dir.join("deep.json");
    let text = deep_scenario(1_500).to_json();
    // Truncated deep inside the tree.
    std::fs::write(&path, &text[..text.len() / 2]).unwrap();
    let output = scenarios()
        .args(["show", path.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("deep.json:") && stderr.contains("the file ends too early"),
        "{stderr}"
    );
    // A body nested deeper than a wire carries is refused, at its path.
    let mut scenario = deep_scenario(2);
    let mut body = json!(1);
    for _ in 0..200 {
        body = json!([body]);
    }
    scenario.root.calls[0].body = body.into();
    scenario.save(&path).unwrap();
    let output = scenarios()
        .args(["show", path.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("at `root.calls[0].body")
            && stderr.contains("nested deeper than 128 levels"),
        "{stderr}"
    );
}
