//! The server side against a plain HTTP client: the protocol, and every kind of bad input.

use nano::{ErrorBody, ServiceSet, codes};
use nano_http::{Endpoint, HttpListener, JSON_CONTENT_TYPE};
use nano_server::Listener;
use reqwest::StatusCode;
use reqwest::header::{ALLOW, CONTENT_TYPE};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{ECHO, Echo, EchoService, Echoed, EdgeLog, Server, bounded, endpoints};

/// What the server answered to one raw request.
struct Answer {
    status: StatusCode,
    content_type: Option<String>,
    req_id: Option<String>,
    allow: Option<String>,
    body: Vec<u8>,
}

impl Answer {
    fn error(&self) -> ErrorBody {
        assert_eq!(self.content_type.as_deref(), Some(JSON_CONTENT_TYPE));
        serde_json::from_slice(&self.body).unwrap_or_else(|err| {
            panic!(
                "not an error body ({err}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    fn echoed(&self) -> Echoed {
        assert_eq!(
            self.status,
            StatusCode::OK,
            "{}",
            String::from_utf8_lossy(&self.body)
        );
        assert_eq!(self.content_type.as_deref(), Some(JSON_CONTENT_TYPE));
        serde_json::from_slice(&self.body).unwrap()
    }

    /// Asserts the status and code, and that the message mentions `fragment`.
    fn assert_error(&self, status: u16, code: &str, fragment: &str) {
        let body = self.error();
        assert_eq!(self.status.as_u16(), status, "{body:?}");
        assert_eq!(body.code, code);
        assert!(
            body.msg.contains(fragment),
            "{:?} does not mention {fragment:?}",
            body.msg
        );
    }
}

async fn send(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.unwrap();
    let header = |name| {
        response
            .headers()
            .get(name)
            .map(|v: &reqwest::header::HeaderValue| v.to_str().unwrap().to_owned())
    };
    Answer {
        status: response.status(),
        content_type: header(CONTENT_TYPE.as_str()),
        req_id: header("x-nano-req-id"),
        allow: header(ALLOW.as_str()),
        body: response.bytes().await.unwrap().to_vec(),
    }
}

fn json_post(
    http: &reqwest::Client,
    url: String,
    body: impl Into<reqwest::Body>,
) -> reqwest::RequestBuilder {
    http.post(url)
        .header(CONTENT_TYPE, JSON_CONTENT_TYPE)
        .body(body)
}

#[tokio::test]
async fn health_check_answers_200_with_an_empty_body() {
    let (server, _) = Server::echo().await;
    let answer = send(reqwest::Client::new().get(server.url("/health-check"))).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(answer.body.is_empty());
    let answer = send(reqwest::Client::new().post(server.url("/health-check"))).await;
    answer.assert_error(405, codes::METHOD_NOT_ALLOWED, "/health-check");
}

#[tokio::test]
async fn errors_answer_500_with_their_code_and_chain_and_an_empty_one_is_s_error() {
    let (server, _) = Server::echo().await;
    let http = reqwest::Client::new();
    let answer = send(json_post(
        &http,
        server.url("/echo/fail"),
        r#"{"code":"S-CUSTOM","msg":"outer"}"#,
    ))
    .await;
    answer.assert_error(500, "S-CUSTOM", "outer :: inner");
    let answer = send(json_post(
        &http,
        server.url("/echo/fail"),
        r#"{"code":"C-CUSTOM","msg":"outer"}"#,
    ))
    .await;
    answer.assert_error(400, "C-CUSTOM", "outer :: inner");
    // Neither code nor message: the caller still gets a code and a message that say who failed.
    let answer = send(json_post(&http, server.url("/echo/fail"), "{}")).await;
    answer.assert_error(
        500,
        codes::SERVER_ERROR,
        "service \"echo\" failed without a message",
    );
}

#[tokio::test]
async fn requests_carry_the_request_id_and_caller_both_ways() {
    let (server, _) = Server::echo().await;
    let http = reqwest::Client::new();
    let answer = send(
        json_post(&http, server.url("/echo/"), r#"{"text":"hi"}"#)
            .header("X-Nano-Req-Id", "0123456789abcdef0123456789abcdef")
            .header("X-Nano-Client-Name", "svc9"),
    )
    .await;
    let echoed = answer.echoed();
    assert_eq!(echoed.text, "hi");
    assert_eq!(echoed.caller, "svc9");
    assert_eq!(echoed.req_id, "0123456789abcdef0123456789abcdef");
    assert_eq!(echoed.remaining_ms, None);
    assert_eq!(
        answer.req_id.as_deref(),
        Some("0123456789abcdef0123456789abcdef")
    );

    // Without the headers: a generated 32-hex id (echoed back) and the default caller.
    let answer = send(json_post(&http, server.url("/echo/"), "{}")).await;
    let echoed = answer.echoed();
    assert_eq!(echoed.caller, "http");
    assert_eq!(echoed.req_id.len(), 32);
    assert_eq!(answer.req_id, Some(echoed.req_id));
}

#[tokio::test]
async fn body_less_and_response_less_endpoints() {
    let (server, _) = Server::echo().await;
    let http = reqwest::Client::new();
    // GET: no body, no content type needed; the request is the type's default.
    assert_eq!(
        send(http.get(server.url("/echo/"))).await.echoed().text,
        "peek"
    );
    // A `()` response is an empty 200.
    let answer = send(json_post(
        &http,
        server.url("/echo/fire"),
        r#"{"text":"x"}"#,
    ))
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(answer.body.is_empty());
    // The query string is not part of the path.
    assert_eq!(
        send(http.get(server.url("/echo/?x=1"))).await.echoed().text,
        "peek"
    );
}

#[tokio::test]
async fn handler_errors_map_codes_to_statuses_and_flatten_the_chain() {
    let (server, _) = Server::echo().await;
    let http = reqwest::Client::new();
    let fail = |code: &str| {
        let body = serde_json::json!({ "code": code, "msg": "outer" }).to_string();
        send(json_post(&http, server.url("/echo/fail"), body))
    };
    fail(codes::NOT_FOUND)
        .await
        .assert_error(404, codes::NOT_FOUND, "outer :: inner");
    fail("C-CUSTOM")
        .await
        .assert_error(400, "C-CUSTOM", "outer :: inner");
    fail("S-CUSTOM")
        .await
        .assert_error(500, "S-CUSTOM", "outer :: inner");
    // An uncoded error is a 500 whose body has no code at all, like the original's.
    let answer = fail("").await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        String::from_utf8(answer.body).unwrap(),
        r#"{"msg":"outer :: inner"}"#
    );
}

#[tokio::test]
async fn bad_input_gets_a_coded_json_error_and_the_server_stays_up() {
    let (server, _) = Server::echo().await;
    let http = reqwest::Client::new();
    let url = server.url("/echo/");
    let check = |request, status, code, fragment: &'static str| async move {
        send(request).await.assert_error(status, code, fragment);
    };

    check(
        json_post(&http, url.clone(), r#"{"text":"#),
        400,
        codes::BAD_REQUEST,
        "invalid JSON",
    )
    .await;
    check(
        json_post(&http, url.clone(), r#"{"text":5}"#),
        400,
        codes::BAD_REQUEST,
        "invalid type",
    )
    .await;
    check(
        json_post(&http, url.clone(), b"{\"text\":\"\xff\xfe\"}".to_vec()),
        400,
        codes::BAD_REQUEST,
        "invalid JSON",
    )
    .await;
    let nested = format!(
        r#"{{"extra":{}{}}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    check(
        json_post(&http, url.clone(), nested),
        400,
        codes::BAD_REQUEST,
        "nested deeper than 128",
    )
    .await;

    check(
        http.post(&url).body("{}"),
        415,
        codes::BAD_CONTENT_TYPE,
        "missing content type",
    )
    .await;
    check(
        http.post(&url)
            .header(CONTENT_TYPE, "text/plain")
            .body("{}"),
        415,
        codes::BAD_CONTENT_TYPE,
        "text/plain",
    )
    .await;
    check(
        http.post(&url)
            .header(CONTENT_TYPE, "application/json; charset=iso-8859-1")
            .body("{}"),
        415,
        codes::BAD_CONTENT_TYPE,
        "iso-8859-1",
    )
    .await;

    check(
        http.get(server.url("/nope/")),
        404,
        codes::NOT_FOUND,
        "/nope/",
    )
    .await;
    check(http.get(server.url("/ech")), 404, codes::NOT_FOUND, "/ech").await;
    check(
        http.get(server.url("/echo/fire")),
        405,
        codes::METHOD_NOT_ALLOWED,
        "GET",
    )
    .await;
    let answer = send(http.delete(&url)).await;
    answer.assert_error(405, codes::METHOD_NOT_ALLOWED, "DELETE");
    assert_eq!(answer.allow.as_deref(), Some("POST, GET, OPTIONS"));

    check(
        http.get(&url).body("{}"),
        400,
        codes::BAD_REQUEST,
        "no request body",
    )
    .await;
    check(
        json_post(&http, url.clone(), "{}").header("X-Nano-Deadline-Ms", "soon"),
        400,
        codes::BAD_REQUEST,
        "x-nano-deadline-ms",
    )
    .await;
    check(
        json_post(&http, url.clone(), "{}").header("X-Nano-Client-Name", b"\xff".as_slice()),
        400,
        codes::BAD_REQUEST,
        "x-nano-client-name",
    )
    .await;

    // Still serving.
    let answer = send(json_post(&http, url, r#"{"text":"after"}"#)).await;
    assert_eq!(answer.echoed().text, "after");
}

#[tokio::test]
async fn a_decode_error_names_the_field_type_but_never_the_value() {
    let (server, _) = Server::echo().await;
    let http = reqwest::Client::new();
    for (body, expected) in [
        (
            r#"{"text":98765432123}"#,
            "invalid JSON for test.Echo: invalid type: integer, expected a string at line 1 column 19",
        ),
        (
            r#"{"text":["hunter2"]}"#,
            "invalid JSON for test.Echo: invalid type: sequence, expected a string at line 1 column 8",
        ),
    ] {
        let answer = send(json_post(&http, server.url("/echo/"), body)).await;
        let error = answer.error();
        assert_eq!(
            (
                answer.status.as_u16(),
                error.code.as_str(),
                error.msg.as_str()
            ),
            (400, codes::BAD_REQUEST, expected),
            "{body}"
        );
    }
}

#[tokio::test]
async fn bodies_over_the_limit_are_refused_whether_declared_or_streamed() {
    let (echo, _) = EchoService::new();
    let set = ServiceSet::builder().service(echo).build().unwrap();
    let server =
        Server::start_with(set, |l| l.expose(ECHO, endpoints()).unwrap().body_limit(64)).await;
    let http = reqwest::Client::new();
    let fits = format!(r#"{{"text":"{}"}}"#, "a".repeat(50));
    assert_eq!(
        send(json_post(&http, server.url("/echo/"), fits))
            .await
            .echoed()
            .text
            .len(),
        50
    );
    let too_big = format!(r#"{{"text":"{}"}}"#, "a".repeat(60));
    send(json_post(&http, server.url("/echo/"), too_big))
        .await
        .assert_error(413, codes::PAYLOAD_TOO_LARGE, "64 bytes");

    // Chunked, so the size is only known while reading.
    let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let chunk = "b".repeat(40);
    let request = format!(
        "POST /echo/ HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n\
         {len:x}\r\n{chunk}\r\n{len:x}\r\n{chunk}\r\n0\r\n\r\n",
        len = chunk.len()
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    bounded(tcp.read_to_string(&mut answer)).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 413 "), "{answer}");
    assert!(
        answer.contains(r#""code":"C-PAYLOAD-TOO-LARGE""#),
        "{answer}"
    );
}

/// A server with a 64-byte body limit, one request in flight at most, and a request timeout no
/// test waits for, so that an answer that waits for the body hangs the test.
async fn small_limit_server() -> Server {
    let (echo, _) = EchoService::new();
    let set = ServiceSet::builder().service(echo).build().unwrap();
    Server::start_with(set, |l| {
        l.expose(ECHO, endpoints())
            .unwrap()
            .body_limit(64)
            .max_in_flight(1)
            .request_timeout(std::time::Duration::from_secs(3600))
    })
    .await
}

/// Reads one answer (head and `Content-Length` body) without waiting for the connection to
/// close; the head in lowercase.
async fn read_answer(tcp: &mut tokio::net::TcpStream) -> (String, String) {
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&bytes[..end]).to_lowercase();
            let len: usize = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length: "))
                .map_or(0, |len| len.trim().parse().unwrap());
            if bytes.len() >= end + 4 + len {
                let body = String::from_utf8_lossy(&bytes[end + 4..end + 4 + len]).into_owned();
                return (head, body);
            }
        }
        let n = bounded(tcp.read(&mut buf)).await.unwrap();
        assert!(n > 0, "closed before a whole answer: {bytes:?}");
        bytes.extend_from_slice(&buf[..n]);
    }
}

/// Whether the server closed the connection (an end of stream or a reset), reading what is left.
async fn closed(tcp: &mut tokio::net::TcpStream) -> bool {
    let mut rest = Vec::new();
    match bounded(tcp.read_to_end(&mut rest)).await {
        Ok(_) => rest.is_empty(),
        Err(err) => err.kind() == std::io::ErrorKind::ConnectionReset,
    }
}

fn assert_too_large(head: &str, body: &str) {
    assert!(head.starts_with("http/1.1 413 "), "{head}");
    assert!(head.contains("\r\nconnection: close"), "{head}");
    assert!(body.contains(r#""code":"C-PAYLOAD-TOO-LARGE""#), "{body}");
}

#[tokio::test]
async fn a_declared_oversized_body_is_refused_before_it_arrives_and_frees_its_slot() {
    let server = small_limit_server().await;
    let head = |len: u64| {
        format!(
            "POST /echo/ HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {len}\r\n\r\n"
        )
    };
    // Ten of them held open, none sending a byte of its body: each is answered, and none keeps
    // the one in-flight slot.
    let mut held = Vec::new();
    for _ in 0..10 {
        let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        tcp.write_all(head(10_000_000_000).as_bytes())
            .await
            .unwrap();
        let (head, body) = read_answer(&mut tcp).await;
        assert_too_large(&head, &body);
        held.push(tcp);
    }
    let http = reqwest::Client::new();
    let answer = send(json_post(&http, server.url("/echo/"), r#"{"text":"next"}"#)).await;
    assert_eq!(answer.echoed().text, "next");

    // A client that sends its body anyway after the answer (up to 8 times the limit) is read to
    // the end and then closed, not reset with bytes unread.
    let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(head(100).as_bytes()).await.unwrap();
    let (head, body) = read_answer(&mut tcp).await;
    assert_too_large(&head, &body);
    tcp.write_all(&[b'a'; 100]).await.unwrap();
    let mut rest = Vec::new();
    bounded(tcp.read_to_end(&mut rest)).await.unwrap();
    assert!(rest.is_empty(), "{rest:?}");
    drop(held);
}

#[tokio::test]
async fn a_streamed_body_is_refused_as_soon_as_it_passes_the_limit() {
    let server = small_limit_server().await;
    let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let chunk = "b".repeat(40);
    let request = format!(
        "POST /echo/ HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n\
         {len:x}\r\n{chunk}\r\n{len:x}\r\n{chunk}\r\n",
        len = chunk.len()
    );
    // 80 bytes so far, and the body has not ended: the answer does not wait for its end.
    tcp.write_all(request.as_bytes()).await.unwrap();
    let (head, body) = read_answer(&mut tcp).await;
    assert_too_large(&head, &body);
    // The request is no longer in flight.
    let http = reqwest::Client::new();
    let answer = send(json_post(&http, server.url("/echo/"), r#"{"text":"next"}"#)).await;
    assert_eq!(answer.echoed().text, "next");
    // Once the body ends, the connection closes.
    tcp.write_all(b"0\r\n\r\n").await.unwrap();
    assert!(closed(&mut tcp).await);
}

#[tokio::test]
async fn a_client_waiting_to_continue_is_refused_without_being_asked_for_the_body() {
    let server = small_limit_server().await;
    let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(
        b"POST /echo/ HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
          content-length: 1000\r\nexpect: 100-continue\r\n\r\n",
    )
    .await
    .unwrap();
    let (head, body) = read_answer(&mut tcp).await;
    assert_too_large(&head, &body);
    assert!(!head.contains("100 continue"), "{head}");
    assert!(closed(&mut tcp).await);
}

#[tokio::test]
async fn the_default_limit_is_one_mebibyte() {
    let (server, _) = Server::echo().await;
    let http = reqwest::Client::new();
    let body = |len: usize| format!(r#"{{"text":"{}"}}"#, "a".repeat(len - 11));
    let answer = send(json_post(&http, server.url("/echo/"), body(1 << 20))).await;
    assert_eq!(answer.echoed().text.len(), (1 << 20) - 11);
    send(json_post(&http, server.url("/echo/"), body((1 << 20) + 1)))
        .await
        .assert_error(413, codes::PAYLOAD_TOO_LARGE, "1048576 bytes");
}

#[tokio::test]
async fn incoming_calls_go_through_the_sets_client_hooks() {
    let log = EdgeLog::default();
    let (echo, _) = EchoService::new();
    let set = ServiceSet::builder()
        .service(echo)
        .hook(log.clone())
        .build()
        .unwrap();
    let server = Server::start(set).await;
    let http = reqwest::Client::new();
    let request = || json_post(&http, server.url("/echo/"), "{}");
    send(request().header("X-Nano-Client-Name", "svc7"))
        .await
        .echoed();
    send(request()).await.echoed();
    let edges = log.edges();
    assert!(edges.contains(&"svc7 -> echo".to_owned()), "{edges:?}");
    assert!(edges.contains(&"http -> echo".to_owned()), "{edges:?}");
}

#[tokio::test]
async fn misconfigured_listeners_fail_with_coded_errors() {
    let (echo, _) = EchoService::new();
    let set = ServiceSet::builder().service(echo).build().unwrap();

    let listener = HttpListener::bind("127.0.0.1:0").await.unwrap();
    let err = HttpListener::bind(listener.local_addr()).await.unwrap_err();
    assert_eq!(err.code(), codes::UNAVAILABLE);
    assert!(err.to_string().contains("cannot listen on"), "{err}");

    let listener = listener.expose("svc9", endpoints()).unwrap();
    let (_trigger, shutdown) = nano_server::Shutdown::new();
    let err = bounded(listener.listen(set, shutdown)).await.unwrap_err();
    assert_eq!(err.code(), codes::UNKNOWN_SERVICE);
    assert!(err.to_string().contains("svc9"), "{err}");

    let listener = HttpListener::bind("127.0.0.1:0").await.unwrap();
    let err = listener
        .expose(
            ECHO,
            [Endpoint::post::<Echo>("/"), Endpoint::post::<Echo>("/")],
        )
        .unwrap_err();
    assert_eq!(err.code(), codes::INIT_FAILED);
    assert!(err.to_string().contains("POST /echo/ twice"), "{err}");
    let listener = HttpListener::bind("127.0.0.1:0").await.unwrap();
    let listener = listener.expose(ECHO, endpoints()).unwrap();
    let err = listener.expose(ECHO, endpoints()).unwrap_err();
    assert_eq!(err.code(), codes::DUPLICATE_SERVICE);
}
