//! Calls over NATS: round trips, the protocol headers, and every failure as a code.

use std::time::Duration;

use bytes::Bytes;
use nano::{AnyRequest, Ctx, ErrorBody, NanoError, Service, codes};
use nano_nats::{DEADLINE_HEADER, ERROR_HEADER, NatsTransport, REQ_ID_HEADER};
use serde::{Deserialize, Serialize};

use crate::broker::Broker;
use crate::support::{Echo, Fail, Say, Server, TestResult, client_set, echo};

async fn say(
    transport: &NatsTransport,
    ctx: &Ctx,
    req: Say,
) -> Result<crate::support::Said, NanoError> {
    client_set(transport)
        .client("caller", "echo")?
        .call(ctx, req)
        .await
}

#[tokio::test]
async fn a_call_goes_to_the_service_with_its_request_id_and_caller() -> TestResult {
    let broker = Broker::start();
    let transport = NatsTransport::connect(&broker.url()).await?;
    let server = Server::start(&transport, Echo::named("a"), |l| l).await;

    let ctx = Ctx::with_request_id("req-42");
    let said = say(
        &transport,
        &ctx,
        Say {
            param: "x".into(),
            delay_ms: 0,
        },
    )
    .await?;
    assert_eq!(said.value, "echo_x");
    assert_eq!(said.request_id, "req-42");
    assert_eq!(said.caller, "caller");
    assert_eq!(said.remaining_ms, 0, "no deadline was set");

    let client = transport.api_client(&echo::API)?;
    assert_eq!(client.subject("echo.Say"), Some("nano.echo.echo.Say"));
    server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn errors_come_back_with_their_code_and_message() -> TestResult {
    let broker = Broker::start();
    let transport = NatsTransport::connect(&broker.url()).await?;
    let server = Server::start(&transport, Echo::default(), |l| l).await;
    let set = client_set(&transport);

    let err = set
        .client("caller", "echo")?
        .call(&Ctx::new(), Fail {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::NOT_FOUND);
    assert!(err.to_string().contains("no such thing"), "{err}");

    // A request type the API does not declare is refused before anything is sent.
    #[derive(Debug, Clone, Default, Serialize, Deserialize)]
    struct Other {}
    impl nano::Request for Other {
        type Response = ();
        const NAME: &'static str = "echo.Other";
    }
    let client = transport.api_client(&echo::API)?;
    let err = client
        .handle(Ctx::new(), AnyRequest::new(Other {}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::BAD_REQUEST_TYPE);

    // A caller name that cannot be a header line is refused unsent.
    let err = set
        .client("bad\nname", "echo")?
        .call(&Ctx::new(), Say::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::ENCODE, "{err}");
    server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn a_service_nobody_serves_is_unavailable_at_once() -> TestResult {
    let broker = Broker::start();
    let transport = NatsTransport::builder()
        .timeout(Duration::from_secs(20))
        .connect(&broker.url())
        .await?;
    let started = std::time::Instant::now();
    let err = say(&transport, &Ctx::new(), Say::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::UNAVAILABLE, "{err}");
    assert!(err.to_string().contains("no responders"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "no responders is not a timeout"
    );
    Ok(())
}

#[tokio::test]
async fn a_slow_answer_times_out_by_the_transport_limit_or_the_callers_deadline() -> TestResult {
    let broker = Broker::start();
    let transport = NatsTransport::builder()
        .timeout(Duration::from_millis(300))
        .connect(&broker.url())
        .await?;
    let server = Server::start(&transport, Echo::default(), |l| l).await;
    let slow = Say {
        param: "x".into(),
        delay_ms: 2_000,
    };

    let err = say(&transport, &Ctx::new(), slow.clone())
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::TIMEOUT, "{err}");
    assert!(err.to_string().contains("nano.echo.echo.Say"), "{err}");

    let ctx = Ctx::new().with_timeout(Duration::from_millis(100));
    let err = say(&transport, &ctx, slow).await.unwrap_err();
    assert_eq!(err.code(), codes::TIMEOUT, "{err}");
    server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn the_callers_remaining_time_reaches_the_callee_in_whole_milliseconds() -> TestResult {
    let broker = Broker::start();
    let transport = NatsTransport::connect(&broker.url()).await?;
    let server = Server::start(&transport, Echo::default(), |l| l).await;

    let ctx = Ctx::new().with_timeout(Duration::from_secs(5));
    let said = say(&transport, &ctx, Say::default()).await?;
    assert!(
        (4_000..=5_000).contains(&said.remaining_ms),
        "the callee had {} ms left",
        said.remaining_ms
    );

    // A raw request: the header is what the callee gets.
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(DEADLINE_HEADER, "1234");
    let reply = transport
        .nats()
        .request_with_headers("nano.echo.echo.Say", headers, Bytes::from_static(b"{}"))
        .await?;
    let said: crate::support::Said = serde_json::from_slice(&reply.payload)?;
    assert!(
        (1_200..=1_234).contains(&said.remaining_ms),
        "{}",
        said.remaining_ms
    );
    server.stop().await?;
    Ok(())
}

/// Sends `payload` with `headers` to `echo.Say` as any NATS client could, and returns the error
/// the listener answered with.
async fn raw_error(
    transport: &NatsTransport,
    headers: async_nats::HeaderMap,
    payload: &'static [u8],
) -> Result<NanoError, Box<dyn std::error::Error + Send + Sync>> {
    let reply = transport
        .nats()
        .request_with_headers("nano.echo.echo.Say", headers, Bytes::from_static(payload))
        .await?;
    let marked = reply
        .headers
        .as_ref()
        .and_then(|h| h.get(ERROR_HEADER))
        .map(|v| v.as_str().to_owned());
    assert_eq!(marked.as_deref(), Some("true"), "an error reply is marked");
    let body: ErrorBody = serde_json::from_slice(&reply.payload)?;
    Ok(body.into())
}

#[tokio::test]
async fn undecodable_oversized_and_forged_requests_are_answered_with_codes() -> TestResult {
    let broker = Broker::start();
    let transport = NatsTransport::connect(&broker.url()).await?;
    let server = Server::start(&transport, Echo::default(), |l| l.body_limit(1_000)).await;
    let none = async_nats::HeaderMap::new;

    let err = raw_error(&transport, none(), b"{not json").await?;
    assert_eq!(err.code(), codes::BAD_REQUEST, "{err}");
    let err = raw_error(&transport, none(), b"[1]").await?;
    assert_eq!(err.code(), codes::BAD_REQUEST, "{err}");
    let deep: &'static [u8] = Box::leak(
        format!("{}{}", "[".repeat(200), "]".repeat(200))
            .into_bytes()
            .into_boxed_slice(),
    );
    let err = raw_error(&transport, none(), deep).await?;
    assert_eq!(err.code(), codes::BAD_REQUEST, "{err}");
    assert!(err.to_string().contains("nested deeper"), "{err}");

    let mut forged = none();
    forged.insert(REQ_ID_HEADER, "x code=S-FAKE");
    let err = raw_error(&transport, forged, b"{}").await?;
    assert_eq!(err.code(), codes::BAD_REQUEST, "{err}");
    let mut bad_deadline = none();
    bad_deadline.insert(DEADLINE_HEADER, "soon");
    let err = raw_error(&transport, bad_deadline, b"{}").await?;
    assert_eq!(err.code(), codes::BAD_REQUEST, "{err}");

    // Over the listener's limit, through the typed client.
    let big = Say {
        param: "x".repeat(2_000),
        delay_ms: 0,
    };
    let err = say(&transport, &Ctx::new(), big).await.unwrap_err();
    assert_eq!(err.code(), codes::PAYLOAD_TOO_LARGE, "{err}");

    // Over the broker's max_payload (1 MiB by default): refused before it is sent.
    let huge = Say {
        param: "x".repeat(2 << 20),
        delay_ms: 0,
    };
    let err = say(&transport, &Ctx::new(), huge).await.unwrap_err();
    assert_eq!(err.code(), codes::PAYLOAD_TOO_LARGE, "{err}");

    // The service still answers.
    say(&transport, &Ctx::new(), Say::default()).await?;
    server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn an_unusable_reply_is_a_bad_response() -> TestResult {
    let broker = Broker::start();
    let transport = NatsTransport::builder()
        .max_response_bytes(1_000)
        .connect(&broker.url())
        .await?;
    // A responder that is not a nano listener.
    let mut impostor = transport
        .nats()
        .queue_subscribe("nano.echo.>", "nano.echo".to_owned())
        .await?;
    let nats = transport.nats().clone();
    let replies = tokio::spawn(async move {
        use futures_util::StreamExt;
        let answers: [&'static [u8]; 3] = [b"not json", b"[]", &[b'"'; 2_000]];
        for answer in answers {
            let Some(message) = impostor.next().await else {
                return;
            };
            let _ = nats
                .publish(message.reply.unwrap(), Bytes::from_static(answer))
                .await;
        }
        let Some(message) = impostor.next().await else {
            return;
        };
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(ERROR_HEADER, "true");
        let _ = nats
            .publish_with_headers(message.reply.unwrap(), headers, Bytes::from_static(b"oops"))
            .await;
    });
    transport.nats().flush().await?;
    for _ in 0..4 {
        let err = say(&transport, &Ctx::new(), Say::default())
            .await
            .unwrap_err();
        assert_eq!(err.code(), codes::BAD_RESPONSE, "{err}");
    }
    replies.await?;
    Ok(())
}

#[test]
fn public_types_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<NatsTransport>();
    check::<nano_nats::NatsClient>();
    check::<nano_nats::NatsListener>();
}

#[tokio::test]
async fn a_json_body_is_sent_as_it_is_and_the_listener_decides_what_it_means() -> TestResult {
    let broker = Broker::start();
    let transport = NatsTransport::connect(&broker.url()).await?;
    let server_echo = Echo::named("a");
    let server = Server::start(&transport, server_echo.clone(), |l| l).await;
    let client = transport.api_client(&echo::API)?;
    let ctx = Ctx::with_request_id("json-1");

    let said = client
        .call_json(
            &ctx,
            Some("replayer"),
            "echo.Say",
            &serde_json::json!({"param": "x"}),
        )
        .await?;
    assert_eq!(said["value"], "echo_x");
    assert_eq!(
        said["caller"], "replayer",
        "the caller given, not the context's"
    );
    assert_eq!(said["request_id"], "json-1");

    let nothing = client
        .call_json(&ctx, None, "echo.Ping", &serde_json::json!({}))
        .await?;
    assert_eq!(nothing, serde_json::Value::Null, "a () response is null");

    // A body that does not decode reaches the listener, whose decoding answers.
    let err = client
        .call_json(&ctx, None, "echo.Say", &serde_json::json!({"param": 42}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::BAD_REQUEST, "{err}");
    assert!(err.to_string().contains("echo.Say"), "{err}");

    let err = client
        .call_json(&ctx, None, "echo.Fail", &serde_json::json!({}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::NOT_FOUND, "{err}");

    // A request type the API does not declare is refused before anything is sent.
    let err = client
        .call_json(&ctx, None, "echo.Nope", &serde_json::json!({}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::BAD_REQUEST_TYPE, "{err}");

    // The checks of a typed call: a caller name that cannot be a header value, and a body
    // over the broker's max_payload (1 MiB by default), are refused before anything is sent.
    let served = server_echo.served();
    let err = client
        .call_json(
            &ctx,
            Some("bad\ncaller"),
            "echo.Say",
            &serde_json::json!({}),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::ENCODE, "{err}");
    let huge = serde_json::json!({"param": "x".repeat(2 << 20)});
    let err = client
        .call_json(&ctx, None, "echo.Say", &huge)
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::PAYLOAD_TOO_LARGE, "{err}");
    assert!(
        err.to_string().contains("max_payload"),
        "the client's check: {err}"
    );
    assert_eq!(server_echo.served(), served, "nothing reached the service");
    server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn connecting_to_no_broker_or_a_silent_one_fails_with_a_code_in_bounded_time() -> TestResult {
    // Nothing listens on a port that was just free.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let err = NatsTransport::connect(&format!("nats://{closed}"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::UNAVAILABLE, "{err}");
    assert!(err.to_string().contains(&closed.to_string()), "{err}");

    // A port that accepts connections but never speaks NATS: the connect timeout ends it.
    let silent = std::net::TcpListener::bind("127.0.0.1:0")?;
    let err = NatsTransport::builder()
        .connect_timeout(Duration::from_millis(300))
        .connect(&format!("nats://{}", silent.local_addr()?))
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::UNAVAILABLE, "{err}");

    let err = NatsTransport::connect("nats://[not an address")
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::INIT_FAILED, "{err}");
    Ok(())
}

#[tokio::test]
async fn the_clients_size_check_counts_headers_as_the_broker_does() -> TestResult {
    let broker = Broker::start();
    let transport = NatsTransport::connect(&broker.url()).await?;
    let max = transport.nats().max_payload();
    assert_eq!(
        max,
        nano_wire::nats::DEFAULT_MAX_PAYLOAD,
        "the broker's default"
    );
    let (id, caller, millis) = ("0123456789abcdef0123456789abcdef", "caller", 1234_u64);
    let header_len = nano_wire::nats::request_header_len(id, Some(caller), Some(millis));
    // async-nats refuses what it counts as over the limit; the same headers and a payload that
    // makes exactly the limit by nano-wire's count must pass, one byte more must not.
    for (extra, refused) in [(0, false), (1, true)] {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(REQ_ID_HEADER, id);
        headers.insert(nano_nats::CLIENT_NAME_HEADER, caller);
        headers.insert(DEADLINE_HEADER, millis.to_string());
        let payload = Bytes::from(vec![b'x'; max - header_len + extra]);
        let request = async_nats::Request::new()
            .headers(headers)
            .payload(payload)
            .timeout(Some(Duration::from_secs(5)));
        let err = transport
            .nats()
            .send_request("nano.nobody.Here", request)
            .await
            .unwrap_err();
        let expected = if refused {
            async_nats::RequestErrorKind::MaxPayloadExceeded
        } else {
            async_nats::RequestErrorKind::NoResponders
        };
        assert_eq!(err.kind(), expected, "{extra} byte(s) over: {err}");
    }
    Ok(())
}

#[tokio::test]
async fn each_caller_is_the_callees_caller_however_many_there_are() -> TestResult {
    let broker = Broker::start();
    let transport = NatsTransport::connect(&broker.url()).await?;
    let server = Server::start(&transport, Echo::default(), |l| l).await;
    let set = client_set(&transport);
    // More callers than the listener keeps clients for, some of them again.
    let callers: Vec<String> = (0..300)
        .map(|i| format!("caller-{i}"))
        .chain(["caller-0".to_owned(), "caller-299".to_owned()])
        .collect();
    for caller in &callers {
        let said = set
            .client(caller, "echo")?
            .call(&Ctx::new(), Say::default())
            .await?;
        assert_eq!(&said.caller, caller);
    }
    // Without a caller name, the listener's default caller.
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(REQ_ID_HEADER, "r-1");
    let reply = transport
        .nats()
        .request_with_headers("nano.echo.echo.Say", headers, Bytes::from_static(b"{}"))
        .await?;
    let said: crate::support::Said = serde_json::from_slice(&reply.payload)?;
    assert_eq!(said.caller, nano_nats::DEFAULT_CALLER);
    server.stop().await?;
    Ok(())
}
