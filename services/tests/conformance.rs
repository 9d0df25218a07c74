//! Runs the language-independent wire cases of `conformance/cases.json` (see
//! `docs/conformance.md`) against a real listener serving the example cluster, over raw TCP so
//! that nothing between the case and the wire interprets it (no redirects followed, no headers
//! added but `Host`, `Content-Length` and `Connection: close`).

use nano::ServiceSet;
use nano_http::HttpListener;
use nano_server::Listener;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn body_of(request: &Value) -> Vec<u8> {
    if let Some(text) = request["body"].as_str() {
        return text.as_bytes().to_vec();
    }
    if let Some(hex) = request["body_hex"].as_str() {
        return (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
    }
    if let Some(repeat) = request.get("body_repeat") {
        let count = usize::try_from(repeat["count"].as_u64().unwrap()).unwrap();
        let mut body = repeat["prefix"].as_str().unwrap().to_owned();
        body.push_str(&repeat["fill"].as_str().unwrap().repeat(count));
        body.push_str(&repeat["close"].as_str().unwrap_or_default().repeat(count));
        body.push_str(repeat["suffix"].as_str().unwrap());
        return body.into_bytes();
    }
    Vec::new()
}

/// Sends one case's request; returns status, lower-cased headers and body.
async fn exchange(addr: &str, request: &Value) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let body = body_of(request);
    let mut head = format!(
        "{} {} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n",
        request["method"].as_str().unwrap(),
        request["path"].as_str().unwrap()
    );
    if request["json"].as_bool() == Some(true) {
        head.push_str("content-type: application/json; charset=utf-8\r\n");
    }
    if let Some(headers) = request["headers"].as_object() {
        for (name, value) in headers {
            head.push_str(&format!("{name}: {}\r\n", value.as_str().unwrap()));
        }
    }
    if !body.is_empty() {
        head.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&answer[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    (status, headers, answer[split + 4..].to_vec())
}

#[tokio::test]
async fn the_listener_passes_every_wire_case() {
    let set = services::all(ServiceSet::builder()).build().unwrap();
    let mut listener = HttpListener::bind("127.0.0.1:0").await.unwrap();
    for api in services::api::APIS {
        listener = listener.expose_api(api).unwrap();
    }
    let addr = listener.local_addr().to_string();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(nano_server::serve_until(
        set,
        vec![listener.boxed()],
        async {
            let _ = stopped.await;
        },
    ));

    let file: Value = serde_json::from_str(include_str!("../conformance/cases.json")).unwrap();
    let cases = file["cases"].as_array().unwrap();
    let mut failures = Vec::new();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let expect = &case["expect"];
        let (status, headers, body) = exchange(&addr, &case["request"]).await;
        let header = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        let mut wrong = Vec::new();
        if Some(u64::from(status)) != expect["status"].as_u64() {
            wrong.push(format!("status {status}"));
        }
        for (name, value) in expect["headers"].as_object().into_iter().flatten() {
            if header(name) != value.as_str() {
                wrong.push(format!("header {name}: {:?}", header(name)));
            }
        }
        if let Some(text) = expect["body"].as_str()
            && body != text.as_bytes()
        {
            wrong.push(format!("body {:?}", String::from_utf8_lossy(&body)));
        }
        let json = || serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null);
        if let Some(want) = expect.get("json")
            && json() != *want
        {
            wrong.push(format!("json {}", json()));
        }
        if let Some(code) = expect["code"].as_str() {
            if header("content-type") != Some(nano_http::JSON_CONTENT_TYPE) {
                wrong.push(format!("error content type {:?}", header("content-type")));
            }
            if json()["code"].as_str() != Some(code) || !json()["msg"].is_string() {
                wrong.push(format!("error body {}", json()));
            }
        }
        if !wrong.is_empty() {
            failures.push(format!("{name}: {}", wrong.join(", ")));
        }
    }
    let _ = stop.send(());
    server.await.unwrap().unwrap();
    assert!(cases.len() >= 25);
    assert!(
        failures.is_empty(),
        "{} failing cases:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The first cells of the table "Differences from the Go original" in `docs/deploying.md`,
/// without their backticks.
fn difference_rows() -> Vec<String> {
    let doc = include_str!("../../docs/deploying.md");
    let table = doc
        .split("### Differences from the Go original")
        .nth(1)
        .expect("docs/deploying.md has the table of differences");
    table
        .lines()
        .skip_while(|line| !line.starts_with("| input"))
        .skip(2)
        .take_while(|line| line.starts_with('|'))
        .map(|line| {
            line.split(" | ")
                .next()
                .unwrap()
                .trim_start_matches("| ")
                .replace('`', "")
        })
        .collect()
}

/// The row no case of the suite can pin: it needs a handler that fails with neither code nor
/// message, which the example cluster has not. `nano-http/tests/it/listener.rs`
/// (`errors_answer_500_with_their_code_and_chain_and_an_empty_one_is_s_error`) pins it against a
/// real listener instead.
const PINNED_ELSEWHERE: &str = "an error with neither code nor message";

#[test]
fn every_row_of_the_differences_table_is_pinned_by_a_case() {
    let file: Value = serde_json::from_str(include_str!("../conformance/cases.json")).unwrap();
    assert_eq!(file["format_version"], 2, "this runner reads format 2");
    let pinned: Vec<&str> = file["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|case| case["row"].as_str())
        .collect();
    let rows = difference_rows();
    assert!(rows.len() >= 10, "{rows:?}");
    for row in &pinned {
        assert!(
            rows.iter().any(|cell| cell.contains(row)),
            "a case pins {row:?}, which is no row of the table: {rows:?}"
        );
    }
    for cell in &rows {
        let is_pinned = pinned.iter().any(|row| cell.contains(row));
        assert_eq!(
            is_pinned,
            cell != PINNED_ELSEWHERE,
            "the row {cell:?} is {}pinned by a case",
            if is_pinned { "" } else { "not " }
        );
    }
}
