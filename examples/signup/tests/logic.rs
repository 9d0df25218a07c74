//! `signup`'s business logic, with `users` and `mailer` mocked, through the transport-fidelity
//! hook (so every message crosses the HTTP wire's encoding).

use nano::{Ctx, NanoError, codes as nano_codes};
use nano_test::{Mock, TestSet};
use signup::api::signup::{Mail, SignUp, SignedUp};
use signup::api::{codes, mailer, signup as api, users};

type Result<T = (), E = Box<dyn std::error::Error + Send + Sync>> = std::result::Result<T, E>;

fn request(email: &str, password: &str, key: &str) -> SignUp {
    SignUp {
        email: email.into(),
        password: password.into(),
        idempotency_key: key.into(),
    }
}

fn account(id: i64, email: &str, welcomed: bool, created: bool) -> users::Created {
    users::Created {
        user: users::User {
            id,
            email: email.into(),
            welcomed,
        },
        created,
    }
}

/// The token secret of these tests.
const SECRET: &str = "the token secret of the logic tests";

/// Signs up through a set of the real `signup` and `auth` and the two mocks; the mocks verify
/// when the set is dropped.
async fn check(users: Mock, mailer: Mock, req: SignUp) -> Result<SignedUp, NanoError> {
    let set = TestSet::builder()
        .service(signup::signup())
        .service(signup::auth_with(signup::TokenSecret::new(SECRET)?))
        .mock(users)
        .mock(mailer)
        .fidelity()
        .build()?;
    let answer = set.client(api::NAME)?.call(&Ctx::new(), req).await;
    for mock in set.into_mocks() {
        mock.finish()
            .map_err(|err| NanoError::msg(err.to_string()))?;
    }
    answer
}

#[tokio::test]
async fn a_sign_up_creates_the_account_sends_the_mail_and_marks_it() -> Result {
    let users = Mock::new(users::NAME);
    users
        .expect::<users::Create>()
        .with(users::Create {
            email: "ada@example.com".into(),
            password: "correct horse".into(),
            signup_key: "k-1".into(),
        })
        .returning(account(7, "ada@example.com", false, true))
        .once();
    users
        .expect::<users::MarkWelcomed>()
        .with(users::MarkWelcomed { id: 7 })
        .returning(account(7, "ada@example.com", true, false).user)
        .once();
    let mailer = Mock::new(mailer::NAME);
    mailer
        .expect::<mailer::SendWelcome>()
        .with(mailer::SendWelcome {
            to: "ada@example.com".into(),
            user_id: 7,
        })
        .returning(mailer::Sent {
            message_id: "m-1".into(),
        })
        .once();
    let signed_up = check(
        users,
        mailer,
        request("  Ada@Example.COM ", "correct horse", "k-1"),
    )
    .await?;
    assert!(signed_up.token.starts_with("v1.7.user."), "{signed_up:?}");
    assert_eq!(
        signed_up,
        SignedUp {
            user_id: 7,
            email: "ada@example.com".into(),
            mail: Mail::Sent,
            token: signed_up.token.clone(),
        }
    );
    Ok(())
}

#[tokio::test]
async fn when_the_mail_fails_the_account_exists_and_the_mail_is_pending() -> Result {
    let users = Mock::new(users::NAME);
    users
        .expect::<users::Create>()
        .returning(account(3, "bo@example.com", false, true))
        .once();
    users.expect::<users::MarkWelcomed>().never();
    let mailer = Mock::new(mailer::NAME);
    mailer
        .expect::<mailer::SendWelcome>()
        .returning_err(NanoError::new(
            codes::MAIL_PROVIDER,
            "the mail provider failed",
        ))
        .once();
    let signed_up = check(users, mailer, request("bo@example.com", "12345678", "")).await?;
    assert_eq!((signed_up.user_id, signed_up.mail), (3, Mail::Pending));
    Ok(())
}

#[tokio::test]
async fn a_retry_of_a_completed_sign_up_sends_no_second_mail() -> Result {
    let users = Mock::new(users::NAME);
    users
        .expect::<users::Create>()
        .returning(account(3, "bo@example.com", true, false))
        .once();
    let mailer = Mock::new(mailer::NAME);
    mailer.expect::<mailer::SendWelcome>().never();
    let signed_up = check(users, mailer, request("bo@example.com", "12345678", "k")).await?;
    assert_eq!((signed_up.user_id, signed_up.mail), (3, Mail::Sent));
    Ok(())
}

#[tokio::test]
async fn a_retry_of_a_sign_up_whose_mail_is_pending_sends_it() -> Result {
    let users = Mock::new(users::NAME);
    users
        .expect::<users::Create>()
        .returning(account(3, "bo@example.com", false, false))
        .once();
    users
        .expect::<users::MarkWelcomed>()
        .returning(account(3, "bo@example.com", true, false).user)
        .once();
    let mailer = Mock::new(mailer::NAME);
    mailer
        .expect::<mailer::SendWelcome>()
        .returning(mailer::Sent::default())
        .once();
    let signed_up = check(users, mailer, request("bo@example.com", "12345678", "k")).await?;
    assert_eq!(signed_up.mail, Mail::Sent);
    Ok(())
}

#[tokio::test]
async fn a_duplicate_email_reaches_the_caller_with_its_code_and_sends_nothing() -> Result {
    let users = Mock::new(users::NAME);
    users
        .expect::<users::Create>()
        .returning_err(NanoError::new(
            codes::DUPLICATE_EMAIL,
            r#"an account with email "bo@example.com" already exists"#,
        ))
        .once();
    let mailer = Mock::new(mailer::NAME);
    mailer.expect::<mailer::SendWelcome>().never();
    let err = check(users, mailer, request("bo@example.com", "12345678", ""))
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::DUPLICATE_EMAIL);
    assert_eq!(
        err.to_string(),
        r#"cannot create the account :: an account with email "bo@example.com" already exists"#
    );
    Ok(())
}

#[tokio::test]
async fn users_down_is_a_server_error_and_no_mail() -> Result {
    let users = Mock::new(users::NAME);
    users
        .expect::<users::Create>()
        .returning_err(NanoError::unavailable("users is unreachable"))
        .once();
    let mailer = Mock::new(mailer::NAME);
    mailer.expect::<mailer::SendWelcome>().never();
    let err = check(users, mailer, request("bo@example.com", "12345678", ""))
        .await
        .unwrap_err();
    assert_eq!(err.code(), nano_codes::UNAVAILABLE);
    assert!(err.is_server_error());
    Ok(())
}

#[tokio::test]
async fn invalid_sign_ups_are_client_errors_with_clear_messages_and_touch_nothing() -> Result {
    let long_local = format!("{}@example.com", "a".repeat(250));
    let cases: &[(SignUp, &str, &str)] = &[
        (
            request("", "12345678", ""),
            codes::INVALID_EMAIL,
            "an email address is needed",
        ),
        (
            request("ada.example.com", "12345678", ""),
            codes::INVALID_EMAIL,
            r#""ada.example.com" is not an email address like name@example.com: it has no @"#,
        ),
        (
            request("@example.com", "12345678", ""),
            codes::INVALID_EMAIL,
            r#""@example.com" is not an email address like name@example.com: it needs one @ with a name before it"#,
        ),
        (
            request("a@b@example.com", "12345678", ""),
            codes::INVALID_EMAIL,
            r#""a@b@example.com" is not an email address like name@example.com: it needs one @ with a name before it"#,
        ),
        (
            request("ada@localhost", "12345678", ""),
            codes::INVALID_EMAIL,
            r#""ada@localhost" is not an email address like name@example.com: the part after @ must be a domain like example.com"#,
        ),
        (
            request("ada@example..com", "12345678", ""),
            codes::INVALID_EMAIL,
            r#""ada@example..com" is not an email address like name@example.com: the part after @ must be a domain like example.com"#,
        ),
        (
            request("a da@example.com", "12345678", ""),
            codes::INVALID_EMAIL,
            r#""a da@example.com" is not an email address like name@example.com: it contains a space"#,
        ),
        (
            request(&long_local, "12345678", ""),
            codes::INVALID_EMAIL,
            "an email address has at most 254 bytes in UTF-8",
        ),
        (
            request("ada\u{7}@example.com", "12345678", ""),
            codes::INVALID_EMAIL,
            r#""ada\u{7}@example.com" is not an email address like name@example.com: it contains a control character"#,
        ),
        (
            request("ada@example.com", "1234567", ""),
            codes::BAD_PASSWORD,
            "a password has at least 8 characters",
        ),
        (
            request("ada@example.com", &"p".repeat(129), ""),
            codes::BAD_PASSWORD,
            "a password has at most 128 characters",
        ),
        (
            request("ada@example.com", "12345678", "no spaces"),
            codes::BAD_IDEMPOTENCY_KEY,
            "an idempotency key has at most 64 of the characters A-Z a-z 0-9 . _ -",
        ),
        (
            request("ada@example.com", "12345678", &"k".repeat(65)),
            codes::BAD_IDEMPOTENCY_KEY,
            "an idempotency key has at most 64 of the characters A-Z a-z 0-9 . _ -",
        ),
    ];
    for (req, code, message) in cases {
        // No expectations: any call to either mock fails the check.
        let err = check(Mock::new(users::NAME), Mock::new(mailer::NAME), req.clone())
            .await
            .unwrap_err();
        assert_eq!(
            (err.code(), err.to_string().as_str()),
            (*code, *message),
            "{req:?}"
        );
        assert!(err.is_client_error());
    }
    // Characters are counted, not bytes: eight two-byte characters are enough.
    let users = Mock::new(users::NAME);
    users
        .expect::<users::Create>()
        .returning(account(1, "ada@example.com", true, true))
        .once();
    check(
        users,
        Mock::new(mailer::NAME),
        request("ada@example.com", "éééééééé", ""),
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn an_unexpected_call_fails_the_check() {
    // The harness itself: a mock without expectations rejects a real sign-up's call.
    let err = check(
        Mock::new(users::NAME),
        Mock::new(mailer::NAME),
        request("ada@example.com", "12345678", ""),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("got an unexpected call"), "{err}");
}
