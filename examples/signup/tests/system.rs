//! The sign-up system's executables (the reusable server main) started as layouts, configured
//! through the environment as in production: a database file, and the mail provider stood in
//! by wiremock.

use std::path::PathBuf;

use nano::Ctx;
use nano_test::Deployment;
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
    // Kept apart from the layout, whose processes' logs are read at the end.
    let deployment = Deployment::remote(layout.peers(), |service| {
        let api = signup::system().api(service)?;
        nano_test::nano_http::Endpoint::table(api).ok()
    })?;
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
    let deployment = layout.into_deployment()?;
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
    Ok(())
}
