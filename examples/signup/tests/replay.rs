//! `signup` replayed in isolation: the real service, with `users`, `mailer` and `auth` answered
//! from each recorded scenario — also where the recording redacted the password and the token.

use nano_test::scenario::{Registry, Scenario, replay_isolated};

type Result<T = (), E = Box<dyn std::error::Error + Send + Sync>> = std::result::Result<T, E>;

fn load(name: &str) -> Result<Scenario> {
    let path = format!("{}/scenarios/{name}.json", env!("CARGO_MANIFEST_DIR"));
    Ok(Scenario::load(path)?)
}

fn registry() -> Result<Registry> {
    Ok(Registry::from_apis(&signup::system().apis())?)
}

#[tokio::test]
async fn signup_replays_in_isolation_from_every_recording_that_reaches_it() -> Result {
    for name in [
        "signup-success",
        "signup-duplicate-email",
        "signup-mail-provider-down",
    ] {
        let scenario = load(name)?;
        // The recording holds no secret, and the replay still reproduces it.
        let text = std::fs::read_to_string(format!(
            "{}/scenarios/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        ))?;
        assert!(!text.contains("correct horse"), "{name}");
        assert!(!text.contains("v1."), "{name} holds a token");
        replay_isolated(&scenario, &registry()?, signup::signup)
            .await
            .map_err(|failure| failure.to_string())?;
    }
    Ok(())
}

#[tokio::test]
async fn an_isolated_replay_fails_when_the_service_changes_what_it_asks() -> Result {
    // The recorded mailer answers the address it was asked; a signup that asked for another
    // would be told so. Here: the recording of a successful sign-up, edited to expect another
    // recipient.
    let mut scenario = load("signup-success")?;
    let mail = scenario
        .root
        .calls
        .iter_mut()
        .find(|call| call.service == "mailer")
        .expect("the recording sends a mail");
    mail.body = serde_json::json!({"to": "someone@example.com", "user_id": 2}).into();
    let failure = replay_isolated(&scenario, &registry()?, signup::signup)
        .await
        .unwrap_err()
        .to_string();
    assert!(failure.contains("mailer.SendWelcome"), "{failure}");
    Ok(())
}
