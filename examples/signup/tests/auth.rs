//! Authentication at the edge: the same requests — no token, a malformed header, a bad, forged,
//! expired or unknown token, a good one, one without the scope — sent to the monolith as a real
//! process over HTTP and to the same services in process through `TestSet::call_at_edge`, and
//! answered identically.

use std::time::{SystemTime, UNIX_EPOCH};

use nano::NanoError;
use nano_test::TestSet;
use nano_test::deploy::{Binaries, RunningLayout, StartOptions};
use serde_json::{Value, json};
use signup::api::signup::{self as api, SignUp, Stats, WhoAmI};
use signup::{ADMIN_SCOPE, Database, MailConfig, TokenSecret, USER_SCOPE};

type Result<T = (), E = Box<dyn std::error::Error + Send + Sync>> = std::result::Result<T, E>;

const SECRET: &str = "the token secret of the auth tests, 32+ bytes";

fn in_a_day() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 86_400
}

fn token(user: i64, scope: &str, expires: u64) -> String {
    TokenSecret::new(SECRET).unwrap().sign(user, scope, expires)
}

/// How a call was answered, in the wire's terms: the status, and the body or the error's code
/// and message.
#[derive(Debug, PartialEq)]
enum Answer {
    Ok(Value),
    Err(u16, String, String),
}

impl Answer {
    fn of<T: serde::Serialize>(result: std::result::Result<T, NanoError>) -> Answer {
        match result {
            Ok(value) => Answer::Ok(serde_json::to_value(value).unwrap()),
            Err(err) => Answer::Err(
                nano_test::nano_http::status_for(err.code()).as_u16(),
                err.code().to_owned(),
                err.to_string(),
            ),
        }
    }

    fn code(&self) -> &str {
        match self {
            Answer::Ok(_) => "",
            Answer::Err(_, code, _) => code,
        }
    }
}

/// The same services in process, behind the same edge.
fn in_process() -> Result<TestSet> {
    Ok(TestSet::builder()
        .service(signup::signup())
        .service(signup::users_on(Database::Memory))
        .service(signup::mailer_with(MailConfig::default()))
        .service(signup::auth_with(TokenSecret::new(SECRET)?))
        .edge_auth(signup::edge())
        .fidelity()
        .build()?)
}

async fn post_json(
    http: &reqwest::Client,
    url: &str,
    body: &impl serde::Serialize,
    authorization: Option<&str>,
) -> Result<reqwest::Response> {
    let mut request = http
        .post(url)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(body)?);
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    Ok(request.send().await?)
}

async fn over_http(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    authorization: Option<&str>,
) -> Result<Answer> {
    let mut request = http.get(format!("{base}{path}"));
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    let answer = request.send().await?;
    let status = answer.status().as_u16();
    let body: Value = serde_json::from_slice(&answer.bytes().await?)?;
    Ok(if status == 200 {
        Answer::Ok(body)
    } else {
        Answer::Err(
            status,
            body["code"].as_str().unwrap_or_default().to_owned(),
            body["msg"].as_str().unwrap_or_default().to_owned(),
        )
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn every_token_case_is_answered_alike_in_process_and_over_http() -> Result {
    let options = StartOptions {
        env: vec![
            ("SIGNUP_TOKEN_SECRET".into(), SECRET.into()),
            // No demo account: user 1 is the first sign-up on both sides.
            ("SIGNUP_SEED".into(), String::new()),
            // Every call and every refusal logged, to show that none of them carries a token.
            ("RUST_LOG".into(), "debug".into()),
        ],
        ..StartOptions::default()
    };
    let layout = RunningLayout::start(
        &signup::system(),
        "monolith",
        &Binaries::beside_current_exe()?,
        &options,
    )
    .await?;
    let base = layout.url_of(api::NAME).expect("signup is exposed");
    let http = reqwest::Client::new();
    let t = in_process()?;

    // One account on each side, so that user 1 exists in both.
    let ada = SignUp {
        email: "ada@example.com".into(),
        password: "correct horse".into(),
        idempotency_key: String::new(),
    };
    let answer = post_json(&http, &format!("{base}/signup/"), &ada, None).await?;
    let signed_up: api::SignedUp = serde_json::from_slice(&answer.bytes().await?)?;
    let in_process = t.call(api::NAME, ada).await?;
    assert_eq!(
        (signed_up.user_id, in_process.user_id),
        (1, 1),
        "{signed_up:?}"
    );

    // The token the sign-up issued is good, in the process that issued it.
    let issued = format!("Bearer {}", signed_up.token);
    let me = over_http(&http, &base, "/signup/me", Some(&issued)).await?;
    assert_eq!(
        me,
        Answer::Ok(json!({"user_id": 1, "email": "ada@example.com"}))
    );

    let user = format!("Bearer {}", token(1, USER_SCOPE, in_a_day()));
    let admin = format!("Bearer {}", token(1, ADMIN_SCOPE, in_a_day()));
    let expired = format!("Bearer {}", token(1, USER_SCOPE, 1));
    let forged = user.replacen("v1.1.", "v1.2.", 1);
    let foreign = format!(
        "Bearer {}",
        TokenSecret::new("someone else's secret, 32 bytes long")?.sign(1, USER_SCOPE, in_a_day())
    );
    let unknown_user = format!("Bearer {}", token(99, USER_SCOPE, in_a_day()));
    let cases: Vec<(&str, Option<&str>, &str)> = vec![
        ("no token", None, "C-UNAUTHORIZED"),
        (
            "another scheme",
            Some("Basic YWRhOnNlY3JldA=="),
            "C-UNAUTHORIZED",
        ),
        ("an empty token", Some("Bearer "), "C-UNAUTHORIZED"),
        ("junk", Some("Bearer not-a-token"), "C-UNAUTHORIZED"),
        ("a forged claim", Some(&forged), "C-UNAUTHORIZED"),
        ("another secret", Some(&foreign), "C-UNAUTHORIZED"),
        ("an expired token", Some(&expired), "C-UNAUTHORIZED"),
        ("a good token", Some(&user), ""),
        ("an admin token", Some(&admin), ""),
        ("a token of no account", Some(&unknown_user), "C-NOT-FOUND"),
    ];
    for (case, authorization, code) in cases {
        let wire = over_http(&http, &base, "/signup/me", authorization).await?;
        let local = Answer::of(t.call_at_edge(authorization, api::NAME, WhoAmI {}).await);
        assert_eq!(wire, local, "{case}");
        assert_eq!(wire.code(), code, "{case}: {wire:?}");
    }
    let me = over_http(&http, &base, "/signup/me", Some(&user)).await?;
    assert_eq!(
        me,
        Answer::Ok(json!({"user_id": 1, "email": "ada@example.com"}))
    );

    // Authenticated but not allowed: a user's token on the operators' statistics.
    let cases: Vec<(&str, Option<&str>, &str)> = vec![
        ("no token", None, "C-UNAUTHORIZED"),
        ("a user's token", Some(&user), "C-FORBIDDEN"),
        ("an admin token", Some(&admin), ""),
    ];
    for (case, authorization, code) in cases {
        let wire = over_http(&http, &base, "/signup/stats", authorization).await?;
        let local = Answer::of(t.call_at_edge(authorization, api::NAME, Stats {}).await);
        assert_eq!(wire, local, "stats, {case}");
        assert_eq!(wire.code(), code, "stats, {case}: {wire:?}");
    }
    let forbidden = over_http(&http, &base, "/signup/stats", Some(&user)).await?;
    assert_eq!(
        forbidden,
        Answer::Err(
            403,
            "C-FORBIDDEN".into(),
            "a token with scope \"user\" may not call signup.Stats of \"signup\"".into()
        )
    );
    let stats = over_http(&http, &base, "/signup/stats", Some(&admin)).await?;
    assert_eq!(stats, Answer::Ok(json!({"accounts": 1})));

    // Unprotected endpoints need no token, and the sign-up's own is not looked at.
    let bo = json!({"email": "bo@example.com", "password": "12345678"});
    let answer = post_json(
        &http,
        &format!("{base}/signup/"),
        &bo,
        Some("Bearer not-a-token"),
    )
    .await?;
    assert_eq!(answer.status().as_u16(), 200);

    // No server logged a token.
    let logs: Vec<String> = layout.processes().iter().flat_map(|p| p.logs()).collect();
    assert!(
        !logs.iter().any(|line| line.contains("correct horse")),
        "{logs:#?}"
    );
    for secret in [&signed_up.token, &user, &admin] {
        let bare = secret.trim_start_matches("Bearer ");
        assert!(!logs.iter().any(|line| line.contains(bare)), "{logs:#?}");
    }
    Ok(())
}

#[tokio::test]
async fn without_the_edge_the_protected_endpoints_stay_closed() -> Result {
    // A set that forgot its edge: the business logic refuses on its own.
    let t = TestSet::builder()
        .service(signup::signup())
        .service(signup::users_on(Database::Memory))
        .service(signup::mailer_with(MailConfig::default()))
        .service(signup::auth_with(TokenSecret::new(SECRET)?))
        .build()?;
    // A call from inside the system carries no identity, whatever token a client had.
    let err = t.call(api::NAME, WhoAmI {}).await.unwrap_err();
    assert_eq!(err.code(), "C-UNAUTHORIZED");
    // And a test that asks for the edge of a set without one is told so, not answered.
    let user = format!("Bearer {}", token(1, USER_SCOPE, in_a_day()));
    let err = t
        .call_at_edge(Some(&user), api::NAME, WhoAmI {})
        .await
        .unwrap_err();
    assert!(err.to_string().contains("needs an edge"), "{err}");
    Ok(())
}

#[test]
fn the_system_declares_its_edge() {
    let system = signup::system();
    system.validate().unwrap();
    let edge = system
        .edge_auth()
        .expect("the sign-up system authenticates");
    assert_eq!(edge.service(), "auth");
    assert_eq!(edge.protected(), ["signup.WhoAmI", "signup.Stats"]);
}
