//! `--record` on a long-running server: many requests, ids of any length and content, a size cap
//! with rotation, and nothing lost when the server stops gracefully.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nano_test::deploy::{RunningLayout, ServerProcess, StartOptions};

use crate::support::{binaries, http};

fn record_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("recording-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

async fn start(dir: &Path, max_bytes: Option<u64>) -> RunningLayout {
    let mut args = vec!["--record".to_owned(), dir.display().to_string()];
    if let Some(max) = max_bytes {
        args.extend(["--record-max-bytes".to_owned(), max.to_string()]);
    }
    let options = StartOptions {
        args,
        ..StartOptions::default()
    };
    RunningLayout::start(&services::system(), "server1", &binaries(), &options)
        .await
        .unwrap()
}

/// Sends GET /svc2/ with each id, `parallel` at a time; every answer must be a 200.
async fn send_all(deployment: &RunningLayout, ids: &[String], parallel: usize) {
    let client = http();
    let url = format!("{}/svc2/", deployment.url_of("svc2").unwrap());
    for chunk in ids.chunks(parallel) {
        let mut requests = tokio::task::JoinSet::new();
        for id in chunk {
            let request = client
                .get(&url)
                .header("x-nano-client-name", "recording-test")
                .header("x-nano-req-id", id.as_str());
            let id = id.clone();
            requests.spawn(async move {
                let response = request.send().await.unwrap();
                assert_eq!(response.status(), 200, "request {id:?}");
            });
        }
        while let Some(done) = requests.join_next().await {
            done.unwrap();
        }
    }
}

/// Stops the server with SIGTERM and returns its logs once it exited.
async fn stop(server: &mut ServerProcess) -> Vec<String> {
    server.terminate().unwrap();
    let status = server.wait(Duration::from_secs(30)).await.unwrap();
    assert!(status.success(), "{status}");
    server.logs()
}

/// The value of `name=` in the last log line containing `message`.
fn logged(logs: &[String], message: &str, name: &str) -> u64 {
    let line = logs
        .iter()
        .rev()
        .find(|l| l.contains(message))
        .unwrap_or_else(|| panic!("no {message:?} in the logs:\n{}", logs.join("\n")));
    let value = line
        .split_whitespace()
        .find_map(|field| field.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name}= in {line}"));
    value.trim_matches('"').parse().unwrap()
}

/// The segment files in `dir` and their total size.
fn segments(dir: &Path) -> (Vec<String>, u64) {
    let mut names = Vec::new();
    let mut total = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        names.push(entry.file_name().to_string_lossy().into_owned());
        total += entry.metadata().unwrap().len();
    }
    names.sort();
    (names, total)
}

fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    kib * 1024
}

#[tokio::test]
async fn every_request_is_recorded_once_whatever_its_id() {
    let dir = record_dir("all-ids");
    let mut deployment = start(&dir, None).await;
    // Ids a file name could not hold: long ones, and ones with path characters.
    let mut ids: Vec<String> = (0..1_500).map(|i| format!("req-{i:05}")).collect();
    // The longest ids the listener accepts (128 characters), and ones that would be file-name
    // trouble if names depended on them: recording keys nothing on the id's text.
    ids.extend((0..5).map(|i| format!("{i}{}", "x".repeat(127))));
    ids.extend(["..", "...", "a.b.c", "con:", "-rf", "_:.-"].map(String::from));
    send_all(&deployment, &ids, 16).await;
    let server = deployment.process_mut("server1").unwrap();
    let peak = peak_rss(server.pid());
    let logs = stop(server).await;

    let fragments = nano_record::read_fragments(&dir).unwrap();
    let recorded: Vec<&str> = fragments
        .iter()
        .map(|f| f.tree.request_id.as_str())
        .collect();
    let unique: HashSet<&str> = recorded.iter().copied().collect();
    assert_eq!(unique.len(), recorded.len(), "an id was recorded twice");
    let missing: Vec<&String> = ids
        .iter()
        .filter(|id| !unique.contains(id.as_str()))
        .collect();
    assert!(missing.is_empty(), "not recorded: {missing:?}");
    assert_eq!(
        logged(&logs, "recording stopped", "written"),
        ids.len() as u64
    );
    assert_eq!(logged(&logs, "recording stopped", "dropped"), 0);
    // Each fragment is the whole tree the server saw, readable by id.
    let long = &ids[1_500];
    let of_long = nano_record::read_fragments_of(&dir, long).unwrap();
    assert_eq!(of_long.len(), 1);
    assert_eq!(of_long[0].tree.iter().count(), 3, "{}", of_long[0].tree);
    // File names depend on the process only, and lines are compact JSON.
    let (names, _) = segments(&dir);
    assert!(
        names
            .iter()
            .all(|n| n.starts_with("server1.") && n.ends_with(".jsonl")),
        "{names:?}"
    );
    let first = std::fs::read_to_string(dir.join(&names[0])).unwrap();
    assert!(!first.lines().next().unwrap().contains(": "), "not compact");
    assert!(peak < 200 << 20, "server1 peaked at {peak} bytes");
}

#[tokio::test]
async fn the_recording_stays_under_its_cap_by_removing_the_oldest_segments() {
    let dir = record_dir("cap");
    let cap: u64 = 64 * 1024;
    let mut deployment = start(&dir, Some(cap)).await;
    let ids: Vec<String> = (0..3_000).map(|i| format!("cap-{i:05}")).collect();
    // One at a time, so the order of the fragments is the order of the ids.
    send_all(&deployment, &ids, 1).await;
    let logs = stop(deployment.process_mut("server1").unwrap()).await;

    let (names, total) = segments(&dir);
    assert!(total <= cap, "{total} bytes on disk for a cap of {cap}");
    assert!(names.len() >= 2, "{names:?}");
    assert_ne!(
        names[0], "server1.00000001.jsonl",
        "nothing was rotated out"
    );
    assert!(logs.iter().any(|l| l.contains("recording cap reached")));

    let written = logged(&logs, "recording stopped", "written");
    let dropped = logged(&logs, "recording stopped", "dropped");
    let removed = logged(&logs, "recording stopped", "removed");
    assert_eq!(written + dropped, ids.len() as u64);
    let kept: Vec<String> = nano_record::read_fragments(&dir)
        .unwrap()
        .into_iter()
        .map(|f| f.tree.request_id.clone())
        .collect();
    assert_eq!(kept.len() as u64, written - removed);
    // What is kept is the newest requests, in order, without a hole.
    let oldest = ids.iter().position(|id| *id == kept[0]).unwrap();
    assert_eq!(kept.len() as u64 + dropped, (ids.len() - oldest) as u64);
    if dropped == 0 {
        assert_eq!(kept, ids[oldest..]);
    }

    // A restarted server goes on after the segments it left, under the same cap.
    let mut deployment = start(&dir, Some(cap)).await;
    send_all(&deployment, &ids[..200], 4).await;
    stop(deployment.process_mut("server1").unwrap()).await;
    let (after, total) = segments(&dir);
    assert!(total <= cap, "{total} bytes after a restart");
    assert!(after.last() > names.last(), "{after:?} after {names:?}");
}

#[tokio::test]
async fn a_cap_smaller_than_one_fragment_drops_and_counts_every_fragment() {
    let dir = record_dir("tiny-cap");
    let mut deployment = start(&dir, Some(10)).await;
    let ids: Vec<String> = (0..20).map(|i| format!("tiny-{i}")).collect();
    send_all(&deployment, &ids, 4).await;
    let logs = stop(deployment.process_mut("server1").unwrap()).await;
    assert_eq!(logged(&logs, "recording stopped", "dropped"), 20);
    assert_eq!(logged(&logs, "recording stopped", "written"), 0);
    assert_eq!(segments(&dir).1, 0);
}
