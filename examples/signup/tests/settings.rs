//! The sign-up executables take the system's own settings as flags: the database, the seed
//! accounts, the mail provider and the token secret, each with its variable as the fallback.

use std::path::PathBuf;
use std::process::Command;

use nano::Ctx;
use nano_test::deploy::{Binaries, RunningLayout, StartOptions};
use signup::api::codes;
use signup::api::signup::{self as api, SignUp};

type Result<T = (), E = Box<dyn std::error::Error + Send + Sync>> = std::result::Result<T, E>;

fn sign_up(email: &str) -> SignUp {
    SignUp {
        email: email.into(),
        password: "correct horse".into(),
        idempotency_key: String::new(),
    }
}

fn help_of(executable: &str) -> String {
    let output =
        Command::new(PathBuf::from(env!("CARGO_BIN_EXE_signup-all")).with_file_name(executable))
            .arg("--help")
            .output()
            .unwrap();
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn each_executable_lists_the_settings_of_the_services_it_runs() {
    let all = help_of("signup-all");
    for flag in [
        "--db <PATH>",
        "--seed",
        "--mail-url <URL>",
        "--mail-key",
        "--token-secret",
    ] {
        assert!(all.contains(flag), "signup-all --help lacks {flag}:\n{all}");
    }
    assert!(all.contains("[env: SIGNUP_DB=]"), "{all}");
    let users = help_of("signup-users");
    assert!(
        users.contains("--db <PATH>") && !users.contains("--token-secret"),
        "{users}"
    );
    let front = help_of("signup-front");
    assert!(
        front.contains("--token-secret") && !front.contains("--db"),
        "{front}"
    );
    let mailer = help_of("signup-mailer");
    assert!(
        mailer.contains("--mail-url") && !mailer.contains("--seed"),
        "{mailer}"
    );
}

#[test]
fn a_short_token_secret_given_as_a_flag_stops_the_server_with_the_reason() {
    let output = Command::new(env!("CARGO_BIN_EXE_signup-all"))
        .args(["--listen", "127.0.0.1:0", "--token-secret", "too short"])
        .env_remove(signup::SECRET_ENV)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("a token secret needs at least 32"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("too short"),
        "the secret is not echoed: {stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_database_and_seed_flags_keep_accounts_in_the_file_across_restarts() -> Result {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("signup-settings");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let db = dir.join("accounts.db");
    let options = StartOptions {
        args: vec![
            "--db".into(),
            db.display().to_string(),
            "--seed".into(),
            String::new(),
        ],
        ..StartOptions::default()
    };
    let binaries = Binaries::beside_current_exe()?;
    let system = signup::system();

    let deployment = RunningLayout::start(&system, "monolith", &binaries, &options)
        .await?
        .into_deployment()?;
    let client = deployment.client(api::NAME)?;
    // No seed: the demo address is free.
    client
        .call(&Ctx::new(), sign_up(signup::DEFAULT_SEED))
        .await?;
    client.call(&Ctx::new(), sign_up("ada@example.com")).await?;
    drop(deployment);
    assert!(db.exists(), "the database is the file --db named");

    let deployment = RunningLayout::start(&system, "monolith", &binaries, &options)
        .await?
        .into_deployment()?;
    let client = deployment.client(api::NAME)?;
    let err = client
        .call(&Ctx::new(), sign_up("ada@example.com"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::DUPLICATE_EMAIL, "{err}");
    Ok(())
}
