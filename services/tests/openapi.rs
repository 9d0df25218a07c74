//! The example cluster's language-independent description: `services/openapi.json`, exported
//! from the API declarations by `nano_http::openapi::document`.
//!
//! The checked-in file must be what the declarations export now (a stale file fails this test;
//! `NANO_UPDATE_OPENAPI=1 cargo test -p services --test openapi` rewrites it), it must be well
//! formed, and a tool in another language must be able to use it: `tools/replay_root.py`
//! replays the root request of every recorded scenario against real server processes with it.

use std::collections::HashSet;
use std::fs;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use nano_test::deploy::{ServerProcess, StartOptions};
use serde_json::Value;
use services::api::APIS;

/// Set to `1` to rewrite the checked-in document instead of comparing with it.
const UPDATE_ENV: &str = "NANO_UPDATE_OPENAPI";
const TITLE: &str = "nano example cluster (svc1..svc4)";

/// Recorded scenarios whose root request cannot be sent over HTTP at all, with the reason; the
/// script must refuse them (exit status 2). Every other scenario must be replayed and match.
const NOT_OVER_HTTP: &[(&str, &str)] = &[(
    "svc2-unknown-request-type",
    "it sends svc1.Req to svc2, which only an in-process caller can do: over HTTP, svc1.Req has \
     svc1's endpoint (POST /svc1/) and nothing else",
)];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("services is a workspace member")
        .to_path_buf()
}

fn checked_in_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.json")
}

/// The document the declarations export now, as it is checked in.
fn exported() -> Value {
    nano_http::openapi::document(&APIS, TITLE, env!("CARGO_PKG_VERSION")).unwrap()
}

fn exported_text() -> String {
    let mut text = serde_json::to_string_pretty(&exported()).unwrap();
    text.push('\n');
    text
}

/// `Err` naming the first line where the checked-in text differs from the exported one.
fn staleness(checked_in: &str, exported: &str) -> Result<(), String> {
    if checked_in == exported {
        return Ok(());
    }
    let mut old = checked_in.lines();
    let mut new = exported.lines();
    for number in 1.. {
        match (old.next(), new.next()) {
            (Some(a), Some(b)) if a == b => continue,
            (a, b) => {
                return Err(format!(
                    "line {number} is {:?}, the declarations export {:?}",
                    a.unwrap_or("(end of file)"),
                    b.unwrap_or("(end of file)")
                ));
            }
        }
    }
    unreachable!("two different texts differ in some line")
}

#[test]
fn the_checked_in_description_is_current() {
    let path = checked_in_path();
    let exported = exported_text();
    if std::env::var_os(UPDATE_ENV).is_some_and(|value| value == "1") {
        fs::write(&path, &exported).unwrap();
        return;
    }
    let update = format!("{UPDATE_ENV}=1 cargo test -p services --test openapi");
    let checked_in = fs::read_to_string(&path).unwrap_or_else(|err| {
        panic!(
            "cannot read {}: {err}; write it with `{update}`",
            path.display()
        )
    });
    if let Err(difference) = staleness(&checked_in, &exported) {
        panic!(
            "{} is stale: {difference}. The API declarations changed; rewrite it with `{update}` and check it in",
            path.display()
        );
    }
}

#[test]
fn a_stale_description_is_named_by_its_first_changed_line() {
    let exported = exported_text();
    assert_eq!(staleness(&exported, &exported), Ok(()));
    let edited = exported.replacen("svc2.GetReq", "svc2.GetRequest", 1);
    let err = staleness(&edited, &exported).unwrap_err();
    assert!(err.contains("svc2.GetRequest"), "{err}");
    let err = staleness(&exported[..exported.len() / 2], &exported).unwrap_err();
    assert!(err.contains("line "), "{err}");
}

/// What a reader of the document relies on: the required top-level keys, operations that are
/// complete and unique, every `$ref` resolving, and one operation per declared route with the
/// method, path, body and response the listener serves.
fn validate(doc: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let mut problem = |text: String| problems.push(text);
    if !doc["openapi"]
        .as_str()
        .is_some_and(|v| v.starts_with("3.1."))
    {
        problem(format!("openapi is {}, expected 3.1.x", doc["openapi"]));
    }
    for key in ["title", "version"] {
        if !doc["info"][key].is_string() {
            problem(format!("info.{key} is missing"));
        }
    }
    let Some(paths) = doc["paths"].as_object().filter(|paths| !paths.is_empty()) else {
        problem("paths is missing or empty".into());
        return problems;
    };

    let mut operation_ids = HashSet::new();
    let mut described = HashSet::new();
    for (path, item) in paths {
        if !path.starts_with('/') {
            problem(format!("path {path:?} does not start with /"));
        }
        for (method, op) in item.as_object().into_iter().flatten() {
            let at = format!("{method} {path}");
            match op["operationId"].as_str() {
                Some(id) if operation_ids.insert(id.to_owned()) => {}
                Some(id) => problem(format!("{at}: operationId {id} is not unique")),
                None => problem(format!("{at}: no operationId")),
            }
            if !op["responses"]["200"].is_object() {
                problem(format!("{at}: no 200 response"));
            }
            if let Some(wire_name) = op["x-nano-wire-name"].as_str() {
                described.insert((method.clone(), path.clone(), wire_name.to_owned()));
            } else if path != nano_http::HEALTH_CHECK_PATH {
                problem(format!("{at}: no x-nano-wire-name"));
            }
        }
    }

    let mut declared = HashSet::new();
    for api in APIS {
        for endpoint in nano_http::Endpoint::table(api).unwrap() {
            let method = endpoint.method().as_str().to_lowercase();
            let path = endpoint.url_path(api.name());
            let name = endpoint.request_type().name();
            declared.insert((method.clone(), path.clone(), name.to_owned()));
            let op = &doc["paths"][&path][&method];
            let at = format!("{method} {path}");
            if op["x-nano-wire-name"] != name || op["x-nano-service"] != api.name() {
                problem(format!("{at}: not described as {name} of {}", api.name()));
            }
            if op.get("requestBody").is_some() != endpoint.has_body() {
                problem(format!(
                    "{at}: requestBody {}, but the endpoint {} a body",
                    if op.get("requestBody").is_some() {
                        "present"
                    } else {
                        "absent"
                    },
                    if endpoint.has_body() {
                        "takes"
                    } else {
                        "takes no"
                    }
                ));
            }
            if op["responses"]["200"].get("content").is_some() != endpoint.has_response() {
                problem(format!(
                    "{at}: 200 content does not match the response type"
                ));
            }
        }
    }
    for extra in described.difference(&declared) {
        problem(format!(
            "{} {} ({}) is described but not declared",
            extra.0, extra.1, extra.2
        ));
    }

    for name in doc["components"]["schemas"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, _)| k)
    {
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        {
            problem(format!(
                "component name {name:?} is not a valid OpenAPI component name"
            ));
        }
    }
    let mut refs = Vec::new();
    collect_refs(doc, &mut refs);
    if refs.is_empty() {
        problem("no $ref at all".into());
    }
    for target in refs {
        let resolved = target
            .strip_prefix('#')
            .and_then(|pointer| doc.pointer(pointer));
        if resolved.is_none() {
            problem(format!("$ref {target} does not resolve"));
        }
    }
    problems
}

fn collect_refs(value: &Value, refs: &mut Vec<String>) {
    match value {
        Value::Object(object) => {
            for (key, value) in object {
                match value {
                    Value::String(target) if key == "$ref" => refs.push(target.clone()),
                    _ => collect_refs(value, refs),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_refs(item, refs)),
        _ => {}
    }
}

#[test]
fn the_description_is_well_formed() {
    let checked_in: Value =
        serde_json::from_str(&fs::read_to_string(checked_in_path()).unwrap()).unwrap();
    let problems = validate(&checked_in);
    assert!(problems.is_empty(), "{problems:#?}");
    // svc2's two operations, one path: the example a scenario tool needs.
    let get = &checked_in["paths"]["/svc2/"]["get"];
    assert_eq!(get["x-nano-wire-name"], "svc2.GetReq");
    assert!(get.get("requestBody").is_none());
    assert!(checked_in["paths"]["/svc2/"]["post"]["requestBody"]["required"] == true);
}

#[test]
fn the_validation_finds_what_is_wrong() {
    let mut doc = exported();
    doc["components"]["schemas"]
        .as_object_mut()
        .unwrap()
        .remove("svc2.GetResp");
    doc["paths"]["/svc2/"]["get"]["requestBody"] = serde_json::json!({ "content": {} });
    doc["paths"]["/svc4/"]
        .as_object_mut()
        .unwrap()
        .remove("post");
    let problems = validate(&doc).join("\n");
    assert!(
        problems.contains("$ref #/components/schemas/svc2.GetResp does not resolve"),
        "{problems}"
    );
    assert!(
        problems.contains("get /svc2/: requestBody present"),
        "{problems}"
    );
    assert!(
        problems.contains("post /svc4/: not described as svc4.Req"),
        "{problems}"
    );
}

/// Runs the replay script on `scenario` against `base_url` with the checked-in document.
fn replay_root(scenario: &Path, base_url: &str) -> Output {
    let script = repo_root().join("tools/replay_root.py");
    Command::new("python3")
        .arg(&script)
        .arg(scenario)
        .arg(checked_in_path())
        .arg(base_url)
        .env_remove("http_proxy")
        .env_remove("HTTP_PROXY")
        .output()
        .unwrap_or_else(|err| panic!("cannot run python3 {}: {err}", script.display()))
}

fn show(output: &Output) -> String {
    format!(
        "status {}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A loopback address nothing listens on.
fn closed_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_script_replays_every_recorded_scenario_over_http() {
    let options = StartOptions::default();
    let server1 = ServerProcess::start(
        "server1",
        Path::new(env!("CARGO_BIN_EXE_server1")),
        &[],
        &options,
    )
    .await
    .unwrap();
    // svc1 and svc2 whose svc3 is down: its peer address is a port nothing listens on.
    let svc3_down = ServerProcess::start(
        "server2a",
        Path::new(env!("CARGO_BIN_EXE_server2a")),
        &["--peer".to_owned(), format!("svc3={}", closed_port())],
        &options,
    )
    .await
    .unwrap();

    let dir = repo_root().join("scenarios/recorded");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    let mut replayed = 0;
    let mut refused = HashSet::new();
    for file in &files {
        let name = file.file_stem().unwrap().to_string_lossy().into_owned();
        let scenario: Value = serde_json::from_str(&fs::read_to_string(file).unwrap()).unwrap();
        let unreachable: Vec<&str> = scenario["unreachable"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let server = match unreachable[..] {
            [] => &server1,
            ["svc3"] => &svc3_down,
            _ => panic!(
                "{name}: no server of this test runs with {unreachable:?} down; start one, or list the scenario in NOT_OVER_HTTP with the reason"
            ),
        };
        let output = replay_root(file, &server.url());
        if let Some((_, reason)) = NOT_OVER_HTTP.iter().find(|(listed, _)| *listed == name) {
            assert_eq!(
                output.status.code(),
                Some(2),
                "{name} is listed as not replayable over HTTP ({reason}), so the script must refuse it:\n{}",
                show(&output)
            );
            assert!(
                String::from_utf8_lossy(&output.stderr).contains("cannot replay"),
                "{}",
                show(&output)
            );
            refused.insert(name);
        } else {
            assert!(
                output.status.success(),
                "replaying {name} against {} failed:\n{}",
                server.name(),
                show(&output)
            );
            replayed += 1;
        }
    }
    for (listed, _) in NOT_OVER_HTTP {
        assert!(
            refused.contains(*listed),
            "NOT_OVER_HTTP lists {listed}, which is not in {}",
            dir.display()
        );
    }
    assert_eq!(replayed + refused.len(), files.len());
    assert!(replayed >= 5, "only {replayed} scenarios were replayed");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_script_reports_an_outcome_that_differs() {
    let server1 = ServerProcess::start(
        "server1",
        Path::new(env!("CARGO_BIN_EXE_server1")),
        &[],
        &StartOptions::default(),
    )
    .await
    .unwrap();
    let recorded = repo_root().join("scenarios/recorded");

    // A response that changed.
    let mut scenario: Value =
        serde_json::from_str(&fs::read_to_string(recorded.join("svc2-req.json")).unwrap()).unwrap();
    scenario["root"]["outcome"]["response"]["value"] = "svc2_svc1_other".into();
    let changed = Path::new(env!("CARGO_TARGET_TMPDIR")).join("svc2-req-changed.json");
    fs::write(&changed, serde_json::to_string_pretty(&scenario).unwrap()).unwrap();
    let output = replay_root(&changed, &server1.url());
    assert_eq!(output.status.code(), Some(1), "{}", show(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(r#"value: expected "svc2_svc1_other", got "svc2_svc1_testval""#),
        "{stderr}"
    );

    // A recorded error that a server with every service in it does not answer: svc3 is up.
    let output = replay_root(&recorded.join("svc2-get-svc3-down.json"), &server1.url());
    assert_eq!(output.status.code(), Some(1), "{}", show(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("S-UNAVAILABLE"),
        "{}",
        show(&output)
    );
}
