//! `mailer` against the mail provider's HTTP API, stood in by wiremock: every failure becomes
//! a coded error, and the API key appears in none of them.

use std::time::Duration;

use nano::{Ctx, NanoError, ServiceSet};
use serde_json::json;
use signup::api::{codes, mailer};
use signup::{MailConfig, Mailer};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock as Stub, MockServer, ResponseTemplate};

type Result<T = (), E = Box<dyn std::error::Error + Send + Sync>> = std::result::Result<T, E>;

const KEY: &str = "sk-live-0123456789abcdef";

fn welcome() -> mailer::SendWelcome {
    mailer::SendWelcome {
        to: "ada@example.com".into(),
        user_id: 7,
    }
}

/// Sends the welcome mail through a set holding `mailer` with `config`. Whatever the outcome,
/// the key is in neither form of an error.
async fn send(config: MailConfig) -> Result<mailer::Sent, NanoError> {
    let set = ServiceSet::builder()
        .service(signup::mailer_with(config))
        .build()?;
    let answer = set
        .client("test", mailer::NAME)?
        .call(&Ctx::new(), welcome())
        .await;
    if let Err(err) = &answer {
        assert!(!err.to_string().contains(KEY), "{err}");
        assert!(!format!("{err:?}").contains(KEY), "{err:?}");
    }
    answer
}

/// A provider at `server` that answers `answer` to every send.
async fn provider(answer: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Stub::given(method("POST"))
        .and(path("/v3/messages"))
        .respond_with(answer)
        .expect(1)
        .mount(&server)
        .await;
    server
}

fn config(server: &MockServer) -> MailConfig {
    MailConfig::new(format!("{}/v3", server.uri()), KEY)
}

#[tokio::test]
async fn a_send_posts_the_documented_json_with_the_key_and_the_idempotency_key() -> Result {
    let server = MockServer::start().await;
    Stub::given(method("POST"))
        .and(path("/v3/messages"))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .and(header("idempotency-key", "welcome-7"))
        .and(header("content-type", "application/json"))
        .and(body_json(json!({
            "to": "ada@example.com",
            "subject": "Welcome",
            "text": "Welcome! Your account ada@example.com is ready.",
        })))
        .respond_with(
            ResponseTemplate::new(202).set_body_json(json!({"id": "msg-1", "queued": true})),
        )
        .expect(1)
        .mount(&server)
        .await;
    // A trailing slash on the base URL makes no difference.
    let mut config = config(&server);
    config.url.push('/');
    assert_eq!(send(config).await?.message_id, "msg-1");
    Ok(())
}

#[tokio::test]
async fn a_4xx_is_a_rejection_quoting_the_answer_with_the_key_redacted() -> Result {
    let echo =
        json!({"error": "bad recipient", "request": {"authorization": format!("Bearer {KEY}")}});
    let server = provider(ResponseTemplate::new(422).set_body_json(echo)).await;
    let err = send(config(&server)).await.unwrap_err();
    assert_eq!(err.code(), codes::MAIL_REJECTED);
    let text = err.to_string();
    assert!(
        text.starts_with("the mail provider rejected the mail (422 Unprocessable Entity): "),
        "{text}"
    );
    assert!(
        text.contains("bad recipient") && text.contains("Bearer <redacted>"),
        "{text}"
    );
    Ok(())
}

#[tokio::test]
async fn a_refused_key_is_its_own_code() -> Result {
    for status in [401, 403] {
        let server =
            provider(ResponseTemplate::new(status).set_body_string(format!("bad key {KEY}"))).await;
        let err = send(config(&server)).await.unwrap_err();
        assert_eq!(err.code(), codes::MAIL_UNAUTHORIZED, "{err}");
        assert!(err.to_string().contains("bad key <redacted>"), "{err}");
    }
    Ok(())
}

#[tokio::test]
async fn a_5xx_is_a_provider_failure() -> Result {
    let server = provider(ResponseTemplate::new(503).set_body_string("maintenance")).await;
    let err = send(config(&server)).await.unwrap_err();
    assert_eq!(err.code(), codes::MAIL_PROVIDER);
    assert_eq!(
        err.to_string(),
        "the mail provider failed (503 Service Unavailable): maintenance"
    );
    assert!(err.is_server_error());
    Ok(())
}

#[tokio::test]
async fn a_slow_provider_is_a_timeout() -> Result {
    let slow = ResponseTemplate::new(200)
        .set_body_json(json!({"id": "late"}))
        .set_delay(Duration::from_secs(5));
    let server = provider(slow).await;
    let mut config = config(&server);
    config.timeout = Duration::from_millis(200);
    let err = send(config).await.unwrap_err();
    assert_eq!(err.code(), codes::MAIL_TIMEOUT);
    assert_eq!(
        err.to_string(),
        "the mail provider did not answer within 200ms"
    );
    Ok(())
}

#[tokio::test]
async fn malformed_json_is_a_bad_response() -> Result {
    for body in ["{\"id\": ", "<html>ok</html>", "{\"message\": \"no id\"}"] {
        let server = provider(ResponseTemplate::new(200).set_body_string(body)).await;
        let err = send(config(&server)).await.unwrap_err();
        assert_eq!(err.code(), codes::MAIL_BAD_RESPONSE, "{body}: {err}");
        assert!(
            err.to_string()
                .starts_with("the mail provider's answer is not the documented JSON: "),
            "{err}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn an_unreachable_provider_is_unavailable() -> Result {
    // A port nobody listens on: bound, then closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let err = send(MailConfig::new(format!("http://127.0.0.1:{port}"), KEY))
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::MAIL_UNAVAILABLE);
    assert!(
        err.to_string()
            .starts_with("the mail provider is unreachable: "),
        "{err}"
    );
    Ok(())
}

#[tokio::test]
async fn without_a_provider_every_send_fails_at_once() -> Result {
    let err = send(MailConfig::new(signup::NO_PROVIDER, ""))
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::MAIL_UNCONFIGURED);
    assert_eq!(
        err.to_string(),
        "no mail provider is configured (SIGNUP_MAIL_URL=none)"
    );
    Ok(())
}

#[tokio::test]
async fn the_sandbox_answers_deterministically_and_is_down_for_its_domain() -> Result {
    let sent = send(MailConfig::default()).await?;
    assert_eq!(sent.message_id, "sandbox-welcome-7");
    let set = nano::ServiceSet::builder()
        .service(signup::mailer_with(MailConfig::default()))
        .build()?;
    let down = mailer::SendWelcome {
        to: format!("ada@{}", signup::SANDBOX_DOWN_DOMAIN),
        user_id: 7,
    };
    let err = set
        .client("test", mailer::NAME)?
        .call(&nano::Ctx::new(), down)
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::MAIL_UNAVAILABLE);
    Ok(())
}

#[test]
fn a_url_that_is_not_http_is_refused_when_the_service_is_made() {
    for url in ["https://mail.example.com", "not a url", "ftp://x"] {
        let err = Mailer::new(MailConfig::new(url, KEY)).unwrap_err();
        assert_eq!(err.code(), codes::MAIL_UNCONFIGURED, "{url}");
        assert!(err.to_string().starts_with("SIGNUP_MAIL_URL "), "{err}");
        assert!(!err.to_string().contains(KEY));
    }
}

#[test]
fn credentials_in_the_url_are_refused_and_never_shown() {
    for (url, shown) in [
        (
            "https://user:hunter2@mail.example.com",
            "https://<redacted>@mail.example.com",
        ),
        (
            "http://user:hunter2@mail.example.com/v1",
            "http://<redacted>@mail.example.com/v1",
        ),
        (
            "http://hunter2@mail.example.com",
            "http://<redacted>@mail.example.com",
        ),
        ("http://us@er:hunter2@[::1", "http://<redacted>@[::1"),
        ("user:hunter2@mail", "<redacted>@mail"),
    ] {
        let err = Mailer::new(MailConfig::new(url, KEY)).unwrap_err();
        assert_eq!(err.code(), codes::MAIL_UNCONFIGURED, "{url}");
        let text = err.to_string();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains(&format!("{shown:?}")), "{text}");
    }
}

#[test]
fn a_timeout_that_is_not_a_number_stops_the_service_from_starting() {
    for bad in ["abc", "-5", "0", "1.5", "5000ms"] {
        let err = MailConfig::from_lookup(|name| (name == signup::TIMEOUT_ENV).then(|| bad.into()))
            .unwrap_err();
        assert_eq!(err.code(), codes::MAIL_UNCONFIGURED, "{bad}");
        assert_eq!(
            err.to_string(),
            format!(
                "SIGNUP_MAIL_TIMEOUT_MS {bad:?} is not a number of milliseconds above zero (e.g. 5000)"
            )
        );
    }
}

#[test]
fn the_key_never_shows_in_debug_output() -> Result {
    let config = MailConfig::new("http://127.0.0.1:1", KEY);
    let mailer = Mailer::new(config.clone())?;
    for shown in [
        format!("{config:?}"),
        format!("{mailer:?}"),
        format!("{:#?}", mailer),
    ] {
        assert!(!shown.contains(KEY), "{shown}");
        assert!(shown.contains("ApiKey(<redacted>)"), "{shown}");
    }
    Ok(())
}

#[test]
fn the_configuration_comes_from_the_environment_with_defaults() {
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    };
    let none = MailConfig::from_lookup(env(&[])).unwrap();
    assert_eq!(
        none,
        MailConfig::default().with_timeout(signup::DEFAULT_TIMEOUT)
    );
    let set = MailConfig::from_lookup(env(&[
        (signup::URL_ENV, " http://mail:8025 "),
        (signup::KEY_ENV, KEY),
        (signup::TIMEOUT_ENV, "250"),
    ]))
    .unwrap();
    assert_eq!(
        set,
        MailConfig::new("http://mail:8025", KEY).with_timeout(Duration::from_millis(250))
    );
}
