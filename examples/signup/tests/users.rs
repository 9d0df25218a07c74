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
        password: "correct horse".into(),
        signup_key: key.into(),
    }
}

fn sign_up(email: &str, key: &str) -> SignUp {
    sign_up_with(email, "correct horse", key)
}

fn sign_up_with(email: &str, password: &str, key: &str) -> SignUp {
    SignUp {
        email: email.into(),
        password: password.into(),
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
    // The same answer; the token may differ (its expiry counts seconds).
    assert_eq!(
        (third.user_id, &third.email, third.mail),
        (second.user_id, &second.email, second.mail)
    );
    assert!(
        third
            .token
            .starts_with(&format!("v1.{}.user.", first.user_id))
    );
    assert!(
        users
            .call(&ctx, users::Get { id: first.user_id })
            .await?
            .welcomed
    );
    mail.verify()?;
    Ok(())
}

#[tokio::test]
async fn a_retry_with_the_key_but_another_password_gets_no_token_and_no_account() -> Result {
    let db = database("takeover");
    let mail = mailer_sending();
    let signup = signup_client(&db, &mail)?;
    let ctx = Ctx::new();
    let first = signup
        .call(
            &ctx,
            sign_up_with("ada@example.com", "correct horse", "k-1"),
        )
        .await?;
    // The owner's retry, in any case of the address: the account, and a token.
    let again = signup
        .call(
            &ctx,
            sign_up_with("ADA@example.com", "correct horse", "k-1"),
        )
        .await?;
    assert_eq!((again.user_id, again.mail), (first.user_id, first.mail));
    assert!(
        again
            .token
            .starts_with(&format!("v1.{}.user.", first.user_id))
    );
    // Someone with the key and the address but not the password: refused, no token.
    for (email, password) in [
        ("ada@example.com", "battery staple"),
        ("Ada@Example.com", "correct horsE"),
        ("ada@example.com", "correct horse "),
    ] {
        let err = signup
            .call(&ctx, sign_up_with(email, password, "k-1"))
            .await
            .unwrap_err();
        assert_eq!(err.code(), codes::KEY_REUSED, "{password:?}");
        assert!(err.is_client_error());
        assert!(!err.to_string().contains("v1."), "{err}");
        assert!(!err.to_string().contains(password), "{err}");
    }
    // Nothing was created or mailed by the refused retries.
    let counted = users_client(&db)?.call(&ctx, users::Count {}).await?;
    assert_eq!(counted.accounts, 1);
    assert_eq!(mail.calls_of::<mailer::SendWelcome>().len(), 1);
    Ok(())
}

#[tokio::test]
async fn only_a_hash_of_the_password_is_stored() -> Result {
    let db = database("hash");
    let users = users_client(&db)?;
    let ctx = Ctx::new();
    users.call(&ctx, create("ada@example.com", "k-1")).await?;
    let stored: String = rusqlite::Connection::open(&db)?.query_row(
        "SELECT password_hash FROM accounts WHERE email = 'ada@example.com'",
        [],
        |row| row.get(0),
    )?;
    assert!(stored.starts_with("pbkdf2-sha256$600000$"), "{stored}");
    assert!(!stored.contains("correct horse"));
    // `users` refuses an account without a password, and a retry against a stored hash that is
    // damaged is a database error, not a pass.
    let mut without = create("bo@example.com", "");
    without.password.clear();
    let err = users.call(&ctx, without).await.unwrap_err();
    assert_eq!(err.code(), nano_codes::BAD_REQUEST);
    rusqlite::Connection::open(&db)?.execute(
        "UPDATE accounts SET password_hash = 'plain' WHERE id = 1",
        [],
    )?;
    let err = users
        .call(&ctx, create("ada@example.com", "k-1"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::DATABASE);
    // Debug output shows no password either.
    assert!(!format!("{:?}", create("ada@example.com", "k-1")).contains("correct horse"));
    assert!(!format!("{:?}", sign_up("ada@example.com", "k-1")).contains("correct horse"));
    Ok(())
}

#[tokio::test]
async fn a_database_from_before_passwords_gains_the_column_and_refuses_retries() -> Result {
    let db = database("old-schema");
    rusqlite::Connection::open(&db)?.execute_batch(
        "CREATE TABLE accounts (id INTEGER PRIMARY KEY, \
         email TEXT NOT NULL UNIQUE COLLATE NOCASE, welcomed INTEGER NOT NULL DEFAULT 0); \
         CREATE TABLE signup_keys (key TEXT PRIMARY KEY, \
         account_id INTEGER NOT NULL REFERENCES accounts(id)); \
         INSERT INTO accounts (email, welcomed) VALUES ('old@example.com', 1); \
         INSERT INTO signup_keys VALUES ('k-old', 1);",
    )?;
    let users = users_client(&db)?;
    // Opened twice, as two processes would: the column is added once.
    let _again = users_client(&db)?;
    let ctx = Ctx::new();
    // The old account has no password to compare: its key's retry is refused.
    let err = users
        .call(&ctx, create("old@example.com", "k-old"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::KEY_REUSED);
    assert!(
        users
            .call(&ctx, create("new@example.com", "k-new"))
            .await?
            .created
    );
    assert!(
        !users
            .call(&ctx, create("new@example.com", "k-new"))
            .await?
            .created
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_retries_of_one_key_share_one_account_and_only_the_password_wins() -> Result {
    let db = database("race-key");
    let mail = mailer_sending();
    let clients = (0..4)
        .map(|_| signup_client(&db, &mail))
        .collect::<Result<Vec<_>>>()?;
    // The first sign-up and its retries all at once: some create, the others find the account.
    let tasks: Vec<_> = (0..12)
        .map(|i| {
            let client = clients[i % clients.len()].clone();
            let password = if i % 3 == 2 {
                "battery staple"
            } else {
                "correct horse"
            };
            tokio::spawn(async move {
                let answer = client
                    .call(
                        &Ctx::new(),
                        sign_up_with("race@example.com", password, "k-race"),
                    )
                    .await;
                (password, answer)
            })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await?);
    }
    // Whichever password's call created the account, only that password gets tokens.
    let (winner, _) = answers
        .iter()
        .find(|(_, answer)| answer.is_ok())
        .expect("one sign-up succeeds");
    let winner = *winner;
    let mut ids = Vec::new();
    for (password, answer) in answers {
        match answer {
            Ok(signed_up) => {
                assert_eq!(password, winner);
                assert!(!signed_up.token.is_empty());
                ids.push(signed_up.user_id);
            }
            Err(err) => {
                assert_ne!(password, winner, "{err}");
                assert_eq!(err.code(), codes::KEY_REUSED, "{err}");
            }
        }
    }
    let expected = if winner == "correct horse" { 8 } else { 4 };
    assert_eq!(ids.len(), expected);
    ids.dedup();
    assert_eq!(ids.len(), 1, "one account: {ids:?}");
    let counted = users_client(&db)?
        .call(&Ctx::new(), users::Count {})
        .await?;
    assert_eq!(counted.accounts, 1);
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
