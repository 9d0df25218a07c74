//! The client against servers that speak the protocol (as the Go original does) and servers that
//! misbehave, mocked with wiremock.

use std::time::Duration;

use nano::{Client, Ctx, NanoError, ServiceSet, codes};
use nano_http::{HttpTransport, JSON_CONTENT_TYPE};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wiremock::matchers::{body_json, body_string, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{ECHO, Echo, Echoed, Fire, Peek, bounded, endpoints};

fn echo_client(base_url: &str, timeout: Duration) -> Client {
    let transport = HttpTransport::builder().timeout(timeout).build().unwrap();
    let client = transport.client_at(ECHO, base_url, endpoints()).unwrap();
    let set = ServiceSet::builder().service(client).build().unwrap();
    set.client("svc1", ECHO).unwrap()
}

/// Calls `echo` on a mock that answers every request with `response`.
async fn call_answered_with(response: ResponseTemplate) -> Result<Echoed, NanoError> {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(response)
        .mount(&server)
        .await;
    echo_client(&server.uri(), Duration::from_secs(30))
        .call(&Ctx::new(), Echo { text: "x".into() })
        .await
}

#[tokio::test]
async fn requests_follow_the_protocol_of_the_original() {
    let server = MockServer::start().await;
    let ctx = Ctx::with_request_id("0123456789abcdef0123456789abcdef");
    Mock::given(method("POST"))
        .and(path("/echo/"))
        .and(header("content-type", JSON_CONTENT_TYPE))
        .and(header("x-nano-req-id", "0123456789abcdef0123456789abcdef"))
        .and(header("x-nano-client-name", "svc1"))
        .and(body_json(serde_json::json!({ "text": "hi" })))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(r#"{"text":"hello"}"#, JSON_CONTENT_TYPE),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/echo/"))
        .and(body_string(""))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(r#"{"text":"peeked"}"#, "application/json"),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/echo/fire"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;

    let echo = echo_client(&server.uri(), Duration::from_secs(30));
    let echoed = echo.call(&ctx, Echo { text: "hi".into() }).await.unwrap();
    assert_eq!(echoed.text, "hello");
    assert_eq!(echo.call(&ctx, Peek {}).await.unwrap().text, "peeked");
    echo.call(&ctx, Fire::default()).await.unwrap();

    let requests = server.received_requests().await.unwrap();
    let get = requests
        .iter()
        .find(|r| r.method.as_str() == "GET")
        .unwrap();
    assert!(get.headers.get("content-type").is_none());
    assert!(
        requests
            .iter()
            .all(|r| r.headers.get("x-nano-deadline-ms").is_none())
    );
}

#[tokio::test]
async fn error_bodies_of_the_original_become_the_same_error() {
    let body = r#"{"code":"C-NOT-FOUND","msg":"svc3 failure :: no such thing"}"#;
    let err = call_answered_with(ResponseTemplate::new(404).set_body_raw(body, JSON_CONTENT_TYPE))
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::NOT_FOUND);
    assert_eq!(err.to_string(), "svc3 failure :: no such thing");
    // An uncoded error body (the original omits an empty code).
    let err = call_answered_with(
        ResponseTemplate::new(500).set_body_raw(r#"{"msg":"boom"}"#, "application/json"),
    )
    .await
    .unwrap_err();
    assert_eq!((err.code(), err.message()), ("", "boom"));
}

#[tokio::test]
async fn a_success_with_the_wrong_content_type_is_a_bad_response() {
    let err = call_answered_with(
        ResponseTemplate::new(200).set_body_raw(r#"{"text":"x"}"#, "text/plain"),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), codes::BAD_RESPONSE);
    assert!(err.to_string().contains("text/plain"), "{err}");
    let err = call_answered_with(ResponseTemplate::new(200))
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::BAD_RESPONSE);
    assert!(err.to_string().contains("missing content type"), "{err}");
}

#[tokio::test]
async fn a_success_that_does_not_decode_is_a_bad_response() {
    for body in ["\"just a string\"", "{\"text\":", "{\"text\":7}"] {
        let err =
            call_answered_with(ResponseTemplate::new(200).set_body_raw(body, JSON_CONTENT_TYPE))
                .await
                .unwrap_err();
        assert_eq!(err.code(), codes::BAD_RESPONSE, "{body}");
        assert!(err.to_string().contains("unusable response"), "{err}");
    }
}

#[tokio::test]
async fn non_json_error_pages_name_the_status() {
    let page = || ResponseTemplate::new(500).set_body_raw("<html>oops</html>", "text/html");
    let err = call_answered_with(page()).await.unwrap_err();
    assert_eq!(err.code(), codes::SERVER_ERROR);
    assert!(
        err.to_string().contains("HTTP 500 Internal Server Error"),
        "{err}"
    );
    // A JSON body that is not an error body is no better than a page.
    let err = call_answered_with(
        ResponseTemplate::new(400).set_body_raw(r#"{"error":"x"}"#, JSON_CONTENT_TYPE),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), codes::SERVER_ERROR);
    assert!(err.to_string().contains("HTTP 400"), "{err}");
    let err =
        call_answered_with(ResponseTemplate::new(502).set_body_raw("bad gateway", "text/plain"))
            .await
            .unwrap_err();
    assert_eq!(err.code(), codes::UNAVAILABLE);
}

#[tokio::test]
async fn a_5xx_without_a_body_is_a_server_side_error() {
    let err = call_answered_with(ResponseTemplate::new(500))
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::SERVER_ERROR);
    let err = call_answered_with(ResponseTemplate::new(503))
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::UNAVAILABLE);
    assert!(
        err.to_string()
            .contains("HTTP 503 Service Unavailable without an error body"),
        "{err}"
    );
    let err = call_answered_with(ResponseTemplate::new(504))
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::TIMEOUT);
}

#[tokio::test]
async fn a_slow_server_times_out() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(60)))
        .mount(&server)
        .await;
    // The transport's own limit.
    let echo = echo_client(&server.uri(), Duration::from_millis(100));
    let err = bounded(echo.call(&Ctx::new(), Echo::default()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::TIMEOUT);
    assert!(err.to_string().contains("ran out of time"), "{err}");

    // The caller's deadline, sooner than the transport's limit, which is also sent along.
    let echo = echo_client(&server.uri(), Duration::from_secs(60));
    let ctx = Ctx::new().with_timeout(Duration::from_millis(100));
    let err = bounded(echo.call(&ctx, Echo::default())).await.unwrap_err();
    assert_eq!(err.code(), codes::TIMEOUT);
    let requests = server.received_requests().await.unwrap();
    let budget: u64 = requests
        .last()
        .unwrap()
        .headers
        .get("x-nano-deadline-ms")
        .expect("deadline header sent")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(budget <= 100, "{budget}");
}

#[tokio::test]
async fn a_dropped_connection_is_unavailable() {
    // A server that reads the request and hangs up without answering.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buf = [0u8; 1024];
            let _ = stream.read(&mut buf).await;
            drop(stream);
        }
    });
    let echo = echo_client(&format!("http://{addr}"), Duration::from_secs(30));
    let err = bounded(echo.call(&Ctx::new(), Echo::default()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::UNAVAILABLE);
    assert!(
        err.to_string().contains("connection failed while calling"),
        "{err}"
    );
}

/// A server that accepts connections, answers each request with `answer` (nothing at all when
/// empty) and then keeps the connection open without another byte.
async fn hanging_server(answer: &'static str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf).await;
            let _ = stream.write_all(answer.as_bytes()).await;
            open.push(stream);
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn a_call_without_a_deadline_is_still_bounded_by_the_transport() {
    // The server never answers; the caller sets no deadline, or a later one.
    let echo = echo_client(&hanging_server("").await, Duration::from_millis(100));
    for ctx in [
        Ctx::new(),
        Ctx::new().with_timeout(Duration::from_secs(3600)),
    ] {
        let err = bounded(echo.call(&ctx, Echo::default())).await.unwrap_err();
        assert_eq!(err.code(), codes::TIMEOUT);
        assert!(err.to_string().contains("ran out of time"), "{err}");
    }
}

#[tokio::test]
async fn the_transport_limit_covers_reading_the_body() {
    // Headers arrive at once, the body stops halfway.
    let base_url = hanging_server(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"te",
    )
    .await;
    let transport = HttpTransport::builder()
        .timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let client = transport.client_at(ECHO, &base_url, endpoints()).unwrap();
    let err = bounded(client.call_json(&Ctx::new(), None, "test.Echo", &serde_json::json!({})))
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::TIMEOUT);
    let set = ServiceSet::builder().service(client).build().unwrap();
    let err = bounded(
        set.client("svc1", ECHO)
            .unwrap()
            .call(&Ctx::new(), Echo::default()),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), codes::TIMEOUT);
}

#[tokio::test]
async fn redirects_are_answers_not_detours() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/echo/"))
        .respond_with(ResponseTemplate::new(307).insert_header("location", "/moved/"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/moved/"))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(r#"{"text":"moved"}"#, JSON_CONTENT_TYPE),
        )
        .expect(0)
        .mount(&server)
        .await;
    let err = echo_client(&server.uri(), Duration::from_secs(30))
        .call(&Ctx::new(), Echo::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::SERVER_ERROR);
    assert!(err.to_string().contains("HTTP 307"), "{err}");
}

#[tokio::test]
async fn header_text_that_cannot_be_sent_is_refused_before_any_traffic() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&server)
        .await;
    let ctx = Ctx::with_request_id("line\nbreak");
    let err = echo_client(&server.uri(), Duration::from_secs(30))
        .call(&ctx, Echo::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::ENCODE);
    assert!(err.to_string().contains("request id"), "{err}");
}

#[tokio::test]
async fn a_caller_name_that_cannot_be_sent_is_refused_before_any_traffic() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&server)
        .await;
    // The caller's own name, as the set's client gives it.
    let transport = HttpTransport::new(Default::default()).unwrap();
    let remote = transport
        .client_at(ECHO, &server.uri(), endpoints())
        .unwrap();
    let set = ServiceSet::builder()
        .service(remote.clone())
        .build()
        .unwrap();
    let err = set
        .client("bad\nname", ECHO)
        .unwrap()
        .call(&Ctx::new(), Echo::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::ENCODE);
    assert!(
        err.to_string().contains(r#"caller name "bad\nname""#),
        "{err}"
    );
    // A name given for one raw call.
    let body = serde_json::json!({"text": "x"});
    let err = remote
        .call_json(&Ctx::new(), Some("also\rbad"), "test.Echo", &body)
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::ENCODE);
    assert!(
        err.to_string().contains(r#"caller name "also\rbad""#),
        "{err}"
    );
}

#[tokio::test]
async fn of_two_endpoints_for_one_request_type_the_first_declared_is_called() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/echo/first"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            r#"{"text":"first","caller":"","req_id":""}"#,
            JSON_CONTENT_TYPE,
        ))
        .expect(1)
        .mount(&server)
        .await;
    let transport = HttpTransport::new(Default::default()).unwrap();
    let endpoints = [
        nano_http::Endpoint::post::<Echo>("/first"),
        nano_http::Endpoint::post::<Echo>("/second"),
    ];
    let remote = transport.client_at(ECHO, &server.uri(), endpoints).unwrap();
    let set = ServiceSet::builder().service(remote).build().unwrap();
    let echoed = set
        .client("test", ECHO)
        .unwrap()
        .call(&Ctx::new(), Echo::default())
        .await
        .unwrap();
    assert_eq!(echoed.text, "first");
}
