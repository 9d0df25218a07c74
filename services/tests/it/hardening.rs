//! The server executables against hostile or unlucky clients and peers, over raw loopback
//! sockets: every resource a client can make a server hold is bounded, ids are checked at the
//! edge, and nothing is lost at shutdown. Memory is read from `/proc/PID/status`; the bounds are
//! generous and only the bounds that are the feature (the request timeout) involve time.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nano_test::deploy::{ServerProcess, StartOptions};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::PATIENCE;

async fn start(name: &str, args: &[&str], rust_log: &str) -> ServerProcess {
    let options = StartOptions {
        env: vec![("RUST_LOG".into(), rust_log.into())],
        ..StartOptions::default()
    };
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let path = match name {
        "server1" => env!("CARGO_BIN_EXE_server1"),
        "server2a" => env!("CARGO_BIN_EXE_server2a"),
        other => panic!("no executable {other}"),
    };
    ServerProcess::start(name, path.as_ref(), &args, &options)
        .await
        .unwrap()
}

/// A `/proc/PID/status` field in KiB (`VmRSS`, `VmHWM`).
fn memory_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// An HTTP/1.1 answer read off a raw socket.
#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then_some(value.trim())
        })
    }

    fn closes(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

/// Why no answer could be read.
#[derive(Debug, PartialEq)]
enum NoAnswer {
    /// The connection ended (EOF or reset) before a single byte of an answer.
    Nothing,
    /// It ended in the middle of one.
    Partial(String),
}

/// Reads one answer with a `Content-Length` body (what the servers send).
async fn read_answer(tcp: &mut (impl AsyncRead + Unpin)) -> Result<Answer, NoAnswer> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let status = head
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| NoAnswer::Partial(head.clone()))?;
            let mut answer = Answer {
                status,
                head,
                body: String::new(),
            };
            let len: usize = answer
                .header("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let mut body = buf[end + 4..].to_vec();
            while body.len() < len {
                match tcp.read(&mut chunk).await {
                    Ok(0) | Err(_) => return Err(NoAnswer::Partial(answer.head)),
                    Ok(n) => body.extend_from_slice(&chunk[..n]),
                }
            }
            answer.body = String::from_utf8_lossy(&body[..len]).into_owned();
            return Ok(answer);
        }
        match tcp.read(&mut chunk).await {
            Ok(0) | Err(_) if buf.is_empty() => return Err(NoAnswer::Nothing),
            Ok(0) | Err(_) => {
                return Err(NoAnswer::Partial(
                    String::from_utf8_lossy(&buf).into_owned(),
                ));
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn post_head(body_len: usize, extra_headers: &str) -> String {
    format!(
        "POST /svc2/ HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n\
         content-length: {body_len}\r\n{extra_headers}\r\n"
    )
}

/// Sends one whole request on a fresh connection and reads the answer.
async fn request(addr: SocketAddr, raw: &[u8]) -> Answer {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(raw).await.unwrap();
    tokio::time::timeout(PATIENCE, read_answer(&mut tcp))
        .await
        .expect("no answer in time")
        .expect("an answer")
}

fn svc2_request(param: &str, extra_headers: &str) -> Vec<u8> {
    let body = format!(r#"{{"param":"{param}"}}"#);
    format!("{}{body}", post_head(body.len(), extra_headers)).into_bytes()
}

#[tokio::test]
async fn a_body_in_one_byte_segments_costs_about_its_size_in_memory() {
    let server = start("server1", &["--request-timeout", "300s"], "warn").await;
    // Warm up: the first request allocates what every request shares.
    let warm = request(server.addr(), &svc2_request("warm", "")).await;
    assert_eq!(warm.status, 200, "{warm:?}");
    let before = memory_kib(server.pid(), "VmRSS");

    const BODY: usize = 1 << 20;
    let param = "a".repeat(BODY - r#"{"param":""}"#.len());
    let body = format!(r#"{{"param":"{param}"}}"#);
    let mut tcp = TcpStream::connect(server.addr()).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    tcp.write_all(post_head(body.len(), "").as_bytes())
        .await
        .unwrap();
    for byte in body.as_bytes() {
        tcp.write_all(std::slice::from_ref(byte)).await.unwrap();
    }
    let answer = tokio::time::timeout(Duration::from_secs(300), read_answer(&mut tcp))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(answer.status, 200, "{}", answer.head);
    let peak = memory_kib(server.pid(), "VmHWM");
    let grown = peak.saturating_sub(before);
    eprintln!("tiny segments: VmRSS before {before} KiB, VmHWM after {peak} KiB");
    // The body, its decoded copy, svc1..svc4's strings built from it and the answer: a few
    // times the body. Before bodies were copied into one buffer it was about 4 KiB per byte.
    assert!(
        grown < 32 * 1024,
        "peak memory grew by {grown} KiB for a {} KiB body",
        BODY / 1024
    );
}

#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_is_answered_408_and_its_connection_closed() {
    let server = start("server1", &["--request-timeout", "1s"], "warn").await;
    let body = r#"{"param":"slow"}"#;
    let mut tcp = TcpStream::connect(server.addr()).await.unwrap();
    tcp.write_all(post_head(body.len(), "").as_bytes())
        .await
        .unwrap();
    tcp.write_all(&body.as_bytes()[..4]).await.unwrap();
    let started = Instant::now();
    let answer = tokio::time::timeout(PATIENCE, read_answer(&mut tcp))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(answer.status, 408, "{answer:?}");
    assert!(
        answer.body.contains(r#""code":"C-REQUEST-TIMEOUT""#),
        "{answer:?}"
    );
    assert!(answer.closes(), "{answer:?}");
    // The bound is the feature: about a second, with a wide margin for a busy machine.
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(PATIENCE, tcp.read_to_end(&mut rest)).await;
    assert!(matches!(closed, Ok(Ok(0)) | Ok(Err(_))), "{closed:?}");
}

#[tokio::test]
async fn many_slow_bodies_are_refused_or_timed_out_and_all_closed() {
    const SLOW: usize = 200;
    let server = start(
        "server1",
        &["--request-timeout", "2s", "--max-in-flight", "50"],
        "warn",
    )
    .await;
    let before = memory_kib(server.pid(), "VmRSS");
    let body_len = 500_000;
    let mut slow = Vec::new();
    for _ in 0..SLOW {
        let addr = server.addr();
        slow.push(tokio::spawn(async move {
            let mut tcp = TcpStream::connect(addr).await.unwrap();
            tcp.write_all(post_head(body_len, "").as_bytes())
                .await
                .unwrap();
            // One byte now and then, never the whole body.
            let reading = async {
                loop {
                    if tcp.write_all(b" ").await.is_err() {
                        return Err(NoAnswer::Nothing);
                    }
                    tokio::select! {
                        answer = read_answer(&mut tcp) => return answer,
                        () = tokio::time::sleep(Duration::from_millis(200)) => {}
                    }
                }
            };
            let answer = reading.await;
            let mut rest = Vec::new();
            let closed = tokio::time::timeout(PATIENCE, tcp.read_to_end(&mut rest)).await;
            (answer, closed.is_ok())
        }));
    }
    let mut statuses = std::collections::BTreeMap::new();
    for task in slow {
        let (answer, closed) = tokio::time::timeout(PATIENCE, task)
            .await
            .expect("a slow connection was held")
            .unwrap();
        let answer = answer.expect("an answer");
        assert!(closed, "{answer:?}");
        *statuses.entry(answer.status).or_insert(0) += 1;
    }
    let peak = memory_kib(server.pid(), "VmHWM");
    eprintln!("slow bodies: {statuses:?}, VmRSS before {before} KiB, VmHWM after {peak} KiB");
    // At most 50 were read (and timed out); the others were refused at once.
    assert_eq!(statuses.keys().copied().collect::<Vec<u16>>(), [408, 503]);
    assert!(statuses[&408] <= 50, "{statuses:?}");
    assert!(
        peak.saturating_sub(before) < 64 * 1024,
        "{before} -> {peak} KiB"
    );
}

#[tokio::test]
async fn a_head_that_does_not_arrive_in_time_closes_the_connection() {
    let server = start("server1", &["--request-timeout", "1s"], "warn").await;
    let mut tcp = TcpStream::connect(server.addr()).await.unwrap();
    tcp.write_all(b"POST /svc2/ HTTP/1.1\r\nhost: te")
        .await
        .unwrap();
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(PATIENCE, tcp.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the connection stayed open");
}

/// Splits a log line of the fmt subscriber into its `key=value` fields, honouring quotes and
/// escapes, so that a test can tell a real field from text inside a quoted value.
fn log_fields(line: &str) -> Vec<(String, String)> {
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    let mut word = String::new();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                word.push(c);
                while let Some(c) = chars.next() {
                    word.push(c);
                    match c {
                        '\\' => word.extend(chars.next()),
                        '"' => break,
                        _ => {}
                    }
                }
            }
            ' ' => {
                if let Some((k, v)) = word.split_once('=') {
                    fields.push((k.to_owned(), v.to_owned()));
                }
                word.clear();
            }
            _ => word.push(c),
        }
    }
    if let Some((k, v)) = word.split_once('=') {
        fields.push((k.to_owned(), v.to_owned()));
    }
    fields
}

#[test]
fn log_fields_split_outside_quotes_only() {
    let fields = log_fields(r#"WARN x: code=S-A error="a code=S-FAKE \"q\" b" n=1"#);
    let keys: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["code", "error", "n"]);
    assert_eq!(fields[1].1, r#""a code=S-FAKE \"q\" b""#);
}

#[tokio::test]
async fn forged_and_oversized_ids_are_refused_naming_the_header_and_cannot_forge_log_fields() {
    let server = start("server1", &[], "info,nano_http=debug").await;
    let forged = request(
        server.addr(),
        &svc2_request("x", "x-nano-req-id: x code=S-FAKE error=\"forged\"\r\n"),
    )
    .await;
    assert_eq!(forged.status, 400, "{forged:?}");
    assert!(forged.body.contains("x-nano-req-id"), "{forged:?}");

    let long_id = format!("x-nano-req-id: {}\r\n", "a".repeat(300_000));
    let long = request(server.addr(), &svc2_request("x", &long_id)).await;
    // Refused by the id check (400) or already by hyper's limit on a head's size (431).
    assert!(matches!(long.status, 400 | 431), "{}", long.head);

    let caller = request(
        server.addr(),
        &svc2_request("x", "x-nano-client-name: svc1\nforged\r\n"),
    )
    .await;
    // A bare LF inside a header is refused by the HTTP parser itself; a space by the id check.
    assert_eq!(caller.status, 400, "{caller:?}");
    let caller = request(
        server.addr(),
        &svc2_request("x", "x-nano-client-name: svc1 admin\r\n"),
    )
    .await;
    assert_eq!(caller.status, 400, "{caller:?}");
    assert!(caller.body.contains("x-nano-client-name"), "{caller:?}");

    let valid = "6f1c2a9e-3b8d-4c55-9a0e-2f4b7d8c1e90";
    let ok = request(
        server.addr(),
        &svc2_request("x", &format!("x-nano-req-id: {valid}\r\n")),
    )
    .await;
    assert_eq!(ok.status, 200, "{ok:?}");
    assert_eq!(ok.header("x-nano-req-id"), Some(valid));

    server
        .wait_for_log("request rejected", PATIENCE)
        .await
        .unwrap();
    let logs = server.logs();
    for line in &logs {
        assert!(line.len() < 4096, "a log line of {} bytes", line.len());
        assert!(
            !log_fields(line)
                .iter()
                .any(|(k, v)| k == "code" && v == "S-FAKE" || k == "error" && v == "\"forged\""),
            "a forged field: {line}"
        );
    }
    assert!(
        logs.iter().any(|l| l.contains("S-FAKE")),
        "the rejection was not logged: {logs:?}"
    );
}

#[tokio::test]
async fn connections_over_the_limit_are_refused_at_once() {
    let server = start("server1", &["--max-connections", "2"], "warn").await;
    // The start-up health check's connection may still hold a slot for a moment.
    let mut held = Vec::new();
    tokio::time::timeout(PATIENCE, async {
        while held.len() < 2 {
            let mut tcp = TcpStream::connect(server.addr()).await.unwrap();
            tcp.write_all(&svc2_request("held", "")).await.unwrap();
            let answer = read_answer(&mut tcp).await.unwrap();
            if answer.status == 200 {
                held.push(tcp);
            } else {
                assert_eq!(answer.status, 503, "{answer:?}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    })
    .await
    .unwrap();
    let refused = request(server.addr(), &svc2_request("third", "")).await;
    assert_eq!(refused.status, 503, "{refused:?}");
    assert!(refused.body.contains("S-UNAVAILABLE"), "{refused:?}");
    assert_eq!(refused.header("x-nano-not-processed"), Some("true"));
    assert!(refused.closes());

    // A slot frees up once a held connection is closed.
    drop(held.pop());
    let again = tokio::time::timeout(PATIENCE, async {
        loop {
            let answer = request(server.addr(), &svc2_request("later", "")).await;
            if answer.status == 200 {
                return answer;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap();
    assert!(again.body.contains("svc2_svc1_later"), "{again:?}");
}

#[tokio::test]
async fn requests_over_the_in_flight_limit_are_refused_unprocessed() {
    let server = start("server1", &["--max-in-flight", "1"], "info,nano_http=debug").await;
    let body = r#"{"param":"first"}"#;
    let mut first = TcpStream::connect(server.addr()).await.unwrap();
    first
        .write_all(post_head(body.len(), "").as_bytes())
        .await
        .unwrap();
    first.write_all(&body.as_bytes()[..5]).await.unwrap();
    server.wait_for_log("http request", PATIENCE).await.unwrap();

    let refused = request(server.addr(), &svc2_request("second", "")).await;
    assert_eq!(refused.status, 503, "{refused:?}");
    assert_eq!(refused.header("x-nano-not-processed"), Some("true"));

    first.write_all(&body.as_bytes()[5..]).await.unwrap();
    let answer = read_answer(&mut first).await.unwrap();
    assert_eq!(answer.status, 200, "{answer:?}");
    let after = request(server.addr(), &svc2_request("third", "")).await;
    assert_eq!(after.status, 200, "{after:?}");
}

/// A stand-in for svc3 that answers every request with `answer` (head and the start of a body)
/// and then, for `endless`, body bytes until the connection is closed. Counts connections that
/// the client closed on it.
async fn fake_svc3(head: &'static str, endless: bool) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let closed = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&closed);
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let counter = Arc::clone(&counter);
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = tcp.read(&mut buf).await;
                let _ = tcp.write_all(head.as_bytes()).await;
                let chunk = vec![b'x'; 64 * 1024];
                let mut sent = 0usize;
                let limit = if endless { usize::MAX } else { 50 << 20 };
                while sent < limit {
                    let piece = if endless {
                        let mut piece = format!("{:x}\r\n", chunk.len()).into_bytes();
                        piece.extend_from_slice(&chunk);
                        piece.extend_from_slice(b"\r\n");
                        piece
                    } else {
                        chunk.clone()
                    };
                    if tcp.write_all(&piece).await.is_err() {
                        counter.fetch_add(1, Ordering::SeqCst);
                        return;
                    }
                    sent += chunk.len();
                }
            });
        }
    });
    (addr, closed)
}

async fn check_oversized_peer_answer(head: &'static str, endless: bool) {
    let (peer, closed) = fake_svc3(head, endless).await;
    let server = start(
        "server2a",
        &[
            "--peer",
            &format!("svc3={peer}"),
            "--max-response-bytes",
            "1048576",
        ],
        "warn",
    )
    .await;
    let before = memory_kib(server.pid(), "VmRSS");
    for _ in 0..4 {
        // `GET /svc2/` is the call that reaches svc3.
        let answer = request(server.addr(), b"GET /svc2/ HTTP/1.1\r\nhost: test\r\n\r\n").await;
        assert_eq!(answer.status, 500, "{answer:?}");
        assert!(answer.body.contains("S-BAD-RESPONSE"), "{answer:?}");
        assert!(
            answer.body.contains("larger than 1048576 bytes"),
            "{answer:?}"
        );
    }
    let peak = memory_kib(server.pid(), "VmHWM");
    eprintln!("peer answers: VmRSS before {before} KiB, VmHWM after {peak} KiB");
    assert!(
        peak.saturating_sub(before) < 32 * 1024,
        "{before} -> {peak} KiB"
    );
    // The client hung up on each answer instead of reading on.
    tokio::time::timeout(PATIENCE, async {
        while closed.load(Ordering::SeqCst) < 4 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the peer kept sending");
}

#[tokio::test]
async fn a_peer_answer_over_the_limit_is_a_coded_error_and_is_not_buffered() {
    check_oversized_peer_answer(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 52428800\r\n\r\n",
        false,
    )
    .await;
}

#[tokio::test]
async fn an_endless_peer_answer_is_cut_off_at_the_limit() {
    check_oversized_peer_answer(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n",
        true,
    )
    .await;
}

#[tokio::test]
async fn a_body_over_the_limit_is_answered_413_every_time() {
    // The default body limit (1 MiB), as a replay of a recorded oversized body meets it.
    let server = start("server1", &[], "warn").await;
    let transport = nano_http::HttpTransport::builder().build().unwrap();
    let client = transport
        .api_client_at(&services::api::svc2::API, &server.addr().to_string())
        .unwrap();
    let body = serde_json::json!({ "param": "p".repeat(3 << 20) });
    // Concurrent calls on pooled connections make the early answer race the body's last bytes
    // far more often than one call at a time.
    let calls = (0..16).map(|_| {
        let client = client.clone();
        let body = body.clone();
        tokio::spawn(async move {
            let mut codes = Vec::new();
            for _ in 0..4 {
                let err = client
                    .call_json(&nano::Ctx::new(), None, "svc2.Req", &body)
                    .await
                    .unwrap_err();
                codes.push(format!("{}: {err}", err.code()));
            }
            codes
        })
    });
    for call in calls {
        for code in call.await.unwrap() {
            assert!(code.starts_with(nano::codes::PAYLOAD_TOO_LARGE), "{code}");
        }
    }
}

#[test]
fn sigterm_right_after_the_ready_line_drains_instead_of_killing() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    for _ in 0..5 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_server1"))
            .args(["--listen", "127.0.0.1:0"])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let ready = lines
            .by_ref()
            .map_while(Result::ok)
            .find(|l| l.starts_with("NANO_LISTENING"));
        assert!(ready.is_some(), "no ready line");
        // At once: no health check or anything else in between.
        let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        let rest: Vec<String> = lines.map_while(Result::ok).collect();
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(0), "{status:?} {rest:?}");
    }
}

#[tokio::test]
async fn sigterm_under_load_leaves_no_request_without_an_answer() {
    const CONNECTIONS: usize = 50;
    let mut server = start("server1", &[], "warn").await;
    let served = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for i in 0..CONNECTIONS {
        let addr = server.addr();
        let served = Arc::clone(&served);
        clients.push(tokio::spawn(async move {
            let mut tcp = TcpStream::connect(addr).await.unwrap();
            let mut answers = Vec::new();
            loop {
                let raw = svc2_request(&format!("c{i}n{}", answers.len()), "");
                if tcp.write_all(&raw).await.is_err() {
                    // The server closed the connection between two requests without saying
                    // so first: this request never got an answer.
                    return (answers, Some(NoAnswer::Nothing));
                }
                match read_answer(&mut tcp).await {
                    Ok(answer) => {
                        served.fetch_add(1, Ordering::SeqCst);
                        let closes = answer.closes();
                        answers.push(answer);
                        if closes {
                            return (answers, None);
                        }
                    }
                    Err(lost) => return (answers, Some(lost)),
                }
            }
        }));
    }
    tokio::time::timeout(PATIENCE, async {
        while served.load(Ordering::SeqCst) < CONNECTIONS * 20 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the load did not get going");
    server.terminate().unwrap();

    let mut refused = 0;
    for client in clients {
        let (answers, lost) = tokio::time::timeout(PATIENCE, client)
            .await
            .expect("a client hung")
            .unwrap();
        assert_eq!(
            lost,
            None,
            "a request ended without an answer after {} answers",
            answers.len()
        );
        let last = answers.last().unwrap();
        assert!(last.closes(), "{last:?}");
        match last.status {
            200 => assert!(last.body.contains("svc2_svc1_c"), "{last:?}"),
            503 => {
                assert_eq!(
                    last.header("x-nano-not-processed"),
                    Some("true"),
                    "{last:?}"
                );
                refused += 1;
            }
            _ => panic!("unexpected last answer {last:?}"),
        }
        assert!(answers[..answers.len() - 1].iter().all(|a| a.status == 200));
    }
    eprintln!("{refused} of {CONNECTIONS} connections ended with a not-processed refusal");
    let status = server.wait(PATIENCE).await.unwrap();
    assert_eq!(status.code(), Some(0), "{:?}", server.logs());
}
