//! The sign-up system's executables (the reusable server main) started as layouts, configured
//! through the environment as in production: a database file, and the mail provider stood in
//! by wiremock.

use std::path::PathBuf;
use std::time::Duration;

use nano::Ctx;
use nano_test::deploy::{Binaries, RunningLayout, StartOptions};
use serde_json::json;
use signup::api::codes;
use signup::api::signup::{self as api, Mail, SignUp};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock as Stub, MockServer, ResponseTemplate};

type Result<T = (), E = Box<dyn std::error::Error + Send + Sync>> = std::result::Result<T, E>;

const KEY: &str = "sk-live-system-test-key";

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("signup-system")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn sign_up(email: &str, key: &str) -> SignUp {
    SignUp {
        email: email.into(),
        password: "correct horse".into(),
        idempotency_key: key.into(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_split_layout_signs_up_once_sends_one_mail_and_logs_no_key() -> Result {
    let provider = MockServer::start().await;
    Stub::given(method("POST"))
        .and(path("/messages"))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "msg-1"})))
        .expect(1)
        .mount(&provider)
        .await;
    let db = scratch("split").join("users.db");
    let options = StartOptions {
        env: vec![
            ("SIGNUP_DB".into(), db.to_str().unwrap().into()),
            ("SIGNUP_MAIL_URL".into(), provider.uri()),
            ("SIGNUP_MAIL_KEY".into(), KEY.into()),
            // Every call logged, to show that none of them carries the key.
            ("RUST_LOG".into(), "debug".into()),
        ],
        ..StartOptions::default()
    };
    let layout = RunningLayout::start(
        &signup::system(),
        "split",
        &Binaries::beside_current_exe()?,
        &options,
    )
    .await?;
    assert_eq!(layout.processes().len(), 3);
    // Clients only: the layout stays the test's, to read its processes' logs at the end.
    let deployment = layout.clients()?;
    let client = deployment.client(api::NAME)?;
    let ctx = Ctx::new();

    let first = client.call(&ctx, sign_up("Ada@Example.com", "k-1")).await?;
    assert_eq!(
        (first.email.as_str(), first.mail),
        ("ada@example.com", Mail::Sent)
    );
    let retried = client.call(&ctx, sign_up("ada@example.com", "k-1")).await?;
    assert_eq!((retried.user_id, retried.mail), (first.user_id, first.mail));
    let err = client
        .call(&ctx, sign_up("ada@example.com", ""))
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::DUPLICATE_EMAIL);
    let err = client
        .call(&ctx, sign_up("ada@example", ""))
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::INVALID_EMAIL);
    assert!(db.exists());

    let logs: Vec<String> = layout.processes().iter().flat_map(|p| p.logs()).collect();
    assert!(
        logs.iter().any(|line| line.contains("mailer.SendWelcome")),
        "the calls are logged: {logs:#?}"
    );
    assert!(!logs.iter().any(|line| line.contains(KEY)), "{logs:#?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn on_a_fresh_machine_the_monolith_signs_up_through_the_sandbox() -> Result {
    let layout = RunningLayout::start(
        &signup::system(),
        "monolith",
        &Binaries::beside_current_exe()?,
        &StartOptions::default(),
    )
    .await?;
    // Clients only: the layout stays the test's, to read its process's logs at the end.
    let deployment = layout.clients()?;
    let client = deployment.client(api::NAME)?;
    let signed_up = client
        .call(&Ctx::new(), sign_up("ada@example.com", ""))
        .await?;
    assert_eq!(signed_up.mail, Mail::Sent);
    // The demo account is there, and the sandbox is down for its own domain.
    let err = client
        .call(&Ctx::new(), sign_up(signup::DEFAULT_SEED, ""))
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::DUPLICATE_EMAIL);
    let down = format!("bo@{}", signup::SANDBOX_DOWN_DOMAIN);
    let signed_up = client.call(&Ctx::new(), sign_up(&down, "")).await?;
    assert_eq!(signed_up.mail, Mail::Pending);
    // The failed mail is logged at the default level, with its code, without the address.
    // The line reaches this process through a pipe after the answer did: wait for it.
    let monolith = &layout.processes()[0];
    let warning = &monolith
        .wait_for_log("the welcome mail is pending", Duration::from_secs(10))
        .await?;
    assert!(warning.contains("WARN"), "{warning}");
    assert!(warning.contains(codes::MAIL_UNAVAILABLE), "{warning}");
    assert!(
        warning.contains(&format!("user_id={}", signed_up.user_id)),
        "{warning}"
    );
    assert!(!warning.contains("bo@"), "{warning}");
    Ok(())
}

/// Starts `signup-mailer` with `env` (on top of the test's own environment), expecting it to
/// refuse; the error with the server's logs.
async fn mailer_refusing(env: &[(&str, &str)]) -> String {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_signup-mailer"));
    command.args(["--listen", "127.0.0.1:0"]);
    for (name, value) in env {
        command.env(name, value);
    }
    let err = nano_test::deploy::ServerProcess::spawn(
        "signup-mailer",
        command,
        std::time::Duration::from_secs(30),
    )
    .await
    .expect_err("the server started");
    err.to_string()
}

#[tokio::test]
async fn a_mistyped_mail_setting_stops_the_server_and_shows_no_credential() {
    let err = mailer_refusing(&[(signup::TIMEOUT_ENV, "abc")]).await;
    assert!(
        err.contains("signup-mailer exited before it was ready (exit status: 1)"),
        "{err}"
    );
    assert!(
        err.contains(r#"SIGNUP_MAIL_TIMEOUT_MS \"abc\" is not a number of milliseconds"#)
            || err.contains(r#"SIGNUP_MAIL_TIMEOUT_MS "abc" is not a number of milliseconds"#),
        "{err}"
    );

    for url in [
        "https://ops:hunter2@mail.example.com",
        "http://ops:hunter2@127.0.0.1:1",
    ] {
        let err = mailer_refusing(&[(signup::URL_ENV, url)]).await;
        assert!(err.contains("exit status: 1"), "{err}");
        assert!(err.contains("<redacted>@"), "{err}");
        assert!(!err.contains("hunter2"), "{url}: {err}");
    }
}
