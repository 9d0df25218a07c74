//! `users` on a real SQLite file, alone and behind the real `signup` (with `mailer` mocked):
//! lookups, duplicates, a database error that leaves nothing behind, 50 concurrent sign-ups with
//! one address through five connections, and idempotent retries.

use std::path::{Path, PathBuf};

use nano::{Client, Ctx, NanoError, ServiceSet, codes as nano_codes};
use nano_test::Mock;
use signup::api::signup::{Mail, SignUp};
use signup::api::{codes, mailer, signup as api, users};
use signup::{Database, users_on};

type Result<T = (), E = Box<dyn std::error::Error + Send + Sync>> = std::result::Result<T, E>;

/// A fresh database file in the target's scratch directory.
fn database(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("signup-users")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("users.db")
}

fn users_client(db: &Path) -> Result<Client> {
    let set = ServiceSet::builder()
        .service(users_on(Database::File(db.to_owned())))
        .build()?;
    Ok(set.client("test", users::NAME)?)
}

/// The real `signup` over its own connection to `db`, with `mailer` answered by `mail`.
fn signup_client(db: &Path, mail: &Mock) -> Result<Client> {
    let set = ServiceSet::builder()
        .service(signup::signup())
        .service(users_on(Database::File(db.to_owned())))
        .service(mail.service())
        .service(signup::auth_with(signup::TokenSecret::random()?))
        .build()?;
    Ok(set.client("test", api::NAME)?)
}

fn create(email: &str, key: &str) -> users::Create {
    users::Create {
        email: email.into(),
        signup_key: key.into(),
    }
}

fn sign_up(email: &str, key: &str) -> SignUp {
    SignUp {
        email: email.into(),
        password: "correct horse".into(),
        idempotency_key: key.into(),
    }
}

fn mailer_sending() -> Mock {
    let mail = Mock::new(mailer::NAME);
    mail.expect::<mailer::SendWelcome>()
        .returning(mailer::Sent {
            message_id: "m".into(),
        })
        .times(0..);
    mail
}

#[tokio::test]
async fn accounts_are_created_found_and_kept_in_the_file() -> Result {
    let db = database("lookups");
    let users = users_client(&db)?;
    let ctx = Ctx::new();
    let ada = users.call(&ctx, create("ada@example.com", "")).await?;
    let bo = users.call(&ctx, create("bo@example.com", "")).await?;
    assert!(ada.created && bo.created && ada.user.id != bo.user.id);
    assert!(!ada.user.welcomed);

    // Another connection (as another process would) sees them.
    let other = users_client(&db)?;
    let found = other.call(&ctx, users::Get { id: bo.user.id }).await?;
    assert_eq!(found, bo.user);
    let by_email = other
        .call(
            &ctx,
            users::GetByEmail {
                email: "ADA@example.com".into(),
            },
        )
        .await?;
    assert_eq!(by_email, ada.user);
    let marked = other
        .call(&ctx, users::MarkWelcomed { id: ada.user.id })
        .await?;
    assert!(marked.welcomed);
    assert!(
        users
            .call(&ctx, users::Get { id: ada.user.id })
            .await?
            .welcomed
    );

    for err in [
        users.call(&ctx, users::Get { id: 999 }).await.unwrap_err(),
        users
            .call(
                &ctx,
                users::GetByEmail {
                    email: "cy@example.com".into(),
                },
            )
            .await
            .unwrap_err(),
        users
            .call(&ctx, users::MarkWelcomed { id: 999 })
            .await
            .unwrap_err(),
    ] {
        assert_eq!(
            (err.code(), err.to_string().as_str()),
            (nano_codes::NOT_FOUND, "no such account")
        );
    }
    let err = users.call(&ctx, create("", "")).await.unwrap_err();
    assert_eq!(err.code(), nano_codes::BAD_REQUEST);
    Ok(())
}

#[tokio::test]
async fn a_second_account_with_one_email_is_a_duplicate_whatever_its_case() -> Result {
    let users = users_client(&database("duplicates"))?;
    let ctx = Ctx::new();
    users.call(&ctx, create("ada@example.com", "")).await?;
    for (email, key) in [
        ("ada@example.com", ""),
        ("Ada@Example.com", ""),
        ("ada@example.com", "fresh-key"),
    ] {
        let err = users.call(&ctx, create(email, key)).await.unwrap_err();
        assert_eq!(err.code(), codes::DUPLICATE_EMAIL, "{email}");
        assert!(err.is_client_error());
        assert_eq!(
            err.to_string(),
            format!("an account with email {email:?} already exists")
        );
    }
    // The key of a refused sign-up was not kept: it still creates.
    let later = users
        .call(&ctx, create("bo@example.com", "fresh-key"))
        .await?;
    assert!(later.created);
    Ok(())
}

#[tokio::test]
async fn a_database_error_leaves_no_half_created_account() -> Result {
    let db = database("rollback");
    let users = users_client(&db)?;
    // The account's row is written first, its idempotency key second; make the second fail.
    let admin = rusqlite::Connection::open(&db)?;
    admin.execute_batch(
        "CREATE TRIGGER disk_full BEFORE INSERT ON signup_keys \
         BEGIN SELECT RAISE(ABORT, 'disk full'); END;",
    )?;
    let ctx = Ctx::new();
    let err = users
        .call(&ctx, create("ada@example.com", "k-1"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::DATABASE);
    assert!(
        err.to_string().starts_with("database failure :: disk full"),
        "{err}"
    );
    let err = users
        .call(
            &ctx,
            users::GetByEmail {
                email: "ada@example.com".into(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        nano_codes::NOT_FOUND,
        "the account was rolled back"
    );

    admin.execute_batch("DROP TRIGGER disk_full;")?;
    assert!(
        users
            .call(&ctx, create("ada@example.com", "k-1"))
            .await?
            .created
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_50_concurrent_sign_ups_with_one_email_exactly_one_wins() -> Result {
    let db = database("race");
    let mail = mailer_sending();
    // Five connections to one file, as five processes of `signup-users` would have.
    let clients = (0..5)
        .map(|_| signup_client(&db, &mail))
        .collect::<Result<Vec<_>>>()?;
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let client = clients[i % clients.len()].clone();
            // Half retry with keys of their own, half without: neither gets a second account.
            let key = if i % 2 == 0 {
                format!("key-{i}")
            } else {
                String::new()
            };
            tokio::spawn(async move {
                client
                    .call(&Ctx::new(), sign_up("race@example.com", &key))
                    .await
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        match task.await? {
            Ok(signed_up) => winners.push(signed_up),
            Err(err) => assert_eq!(err.code(), codes::DUPLICATE_EMAIL, "{err}"),
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    assert_eq!(winners[0].mail, Mail::Sent);
    assert_eq!(mail.calls_of::<mailer::SendWelcome>().len(), 1);
    let account = users_client(&db)?
        .call(
            &Ctx::new(),
            users::GetByEmail {
                email: "race@example.com".into(),
            },
        )
        .await?;
    assert_eq!(account.id, winners[0].user_id);
    Ok(())
}

#[tokio::test]
async fn retries_with_one_idempotency_key_create_one_account_and_send_one_mail() -> Result {
    let db = database("retries");
    let mail = mailer_sending();
    let signup = signup_client(&db, &mail)?;
    let ctx = Ctx::new();
    let first = signup.call(&ctx, sign_up("ada@example.com", "k-1")).await?;
    // Retried, also through another process's connection and with the address cased otherwise.
    let again = signup.call(&ctx, sign_up("ada@example.com", "k-1")).await?;
    let elsewhere = signup_client(&db, &mail)?
        .call(&ctx, sign_up("ADA@example.com", "k-1"))
        .await?;
    // The same answer, with a token issued each time.
    let account = |s: &signup::api::signup::SignedUp| (s.user_id, s.email.clone(), s.mail);
    assert_eq!(account(&first), account(&again));
    assert_eq!(account(&first), account(&elsewhere));
    assert!(!again.token.is_empty() && !elsewhere.token.is_empty());
    assert_eq!(first.mail, Mail::Sent);
    assert_eq!(mail.calls_of::<mailer::SendWelcome>().len(), 1);

    // Without the key, or with another one, it is a duplicate; the key with another address is
    // refused.
    for req in [
        sign_up("ada@example.com", ""),
        sign_up("ada@example.com", "k-2"),
    ] {
        let err = signup.call(&ctx, req).await.unwrap_err();
        assert_eq!(err.code(), codes::DUPLICATE_EMAIL);
    }
    let err = signup
        .call(&ctx, sign_up("bo@example.com", "k-1"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::KEY_REUSED);
    assert_eq!(mail.calls_of::<mailer::SendWelcome>().len(), 1);
    Ok(())
}

#[tokio::test]
async fn a_retry_sends_the_mail_that_was_pending_and_only_once() -> Result {
    let db = database("pending");
    let mail = Mock::new(mailer::NAME);
    mail.expect::<mailer::SendWelcome>()
        .returning_seq([
            Err(NanoError::new(
                codes::MAIL_PROVIDER,
                "the mail provider failed",
            )),
            Ok(mailer::Sent {
                message_id: "m".into(),
            }),
        ])
        .times(2);
    let signup = signup_client(&db, &mail)?;
    let ctx = Ctx::new();
    let first = signup.call(&ctx, sign_up("ada@example.com", "k-1")).await?;
    assert_eq!(first.mail, Mail::Pending);
    let users = users_client(&db)?;
    let account = users.call(&ctx, users::Get { id: first.user_id }).await?;
    assert!(!account.welcomed, "the account exists, its mail pending");
    let second = signup.call(&ctx, sign_up("ada@example.com", "k-1")).await?;
    assert_eq!((second.user_id, second.mail), (first.user_id, Mail::Sent));
    let third = signup.call(&ctx, sign_up("ada@example.com", "k-1")).await?;
    assert_eq!(third, second);
    assert!(
        users
            .call(&ctx, users::Get { id: first.user_id })
            .await?
            .welcomed
    );
    mail.verify()?;
    Ok(())
}

#[test]
fn the_database_comes_from_signup_db_and_defaults_to_memory() {
    assert_eq!(Database::from_value(None), Database::Memory);
    assert_eq!(Database::from_value(Some(" ")), Database::Memory);
    assert_eq!(Database::from_value(Some(":memory:")), Database::Memory);
    assert_eq!(
        Database::from_value(Some("/var/lib/signup.db")),
        Database::File("/var/lib/signup.db".into())
    );
}

#[test]
fn a_database_that_cannot_be_opened_fails_the_build() {
    let err = ServiceSet::builder()
        .service(users_on(Database::File(
            "/nonexistent-dir/x/users.db".into(),
        )))
        .build()
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("cannot open /nonexistent-dir/x/users.db"),
        "{err}"
    );
}
