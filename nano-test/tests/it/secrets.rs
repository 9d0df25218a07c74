//! Secrets in everything the toolkit writes — snapshots, recorded trees, comparison diffs, mock
//! failures, replay reports — absent by default and present when a test opts in.

use nano::{Ctx, NanoError};
use nano_test::scenario::{RecordedService, Registry, Scenario};
use nano_test::{Mock, Spec, Target, TestSet};
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Login {
    pub(crate) email: String,
    pub(crate) password: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Session {
    pub(crate) token: String,
}

mod vault {
    nano::api! { service "vault"; fn login(super::Login) -> super::Session = "vault.Login", POST "/"; }
}

const PASSWORD: &str = "pw-hunter2-horse";
const TOKEN: &str = "tok-55aa66bb";

fn login(password: &str) -> Login {
    Login {
        email: "ada@example.com".into(),
        password: password.into(),
    }
}

fn vault() -> Mock {
    Mock::answering(vault::NAME, |_ctx, _r: Login| {
        Ok(Session {
            token: TOKEN.into(),
        })
    })
}

#[test]
fn snapshots_show_a_placeholder_unless_the_spec_keeps_secrets() {
    let value = json!({"email": "ada@example.com", "password": PASSWORD, "api_key": "k"});
    nano_test::snapshot!(value, @r#"
    api_key: "[redacted]"
    email: ada@example.com
    password: "[redacted]"
    "#);
    nano_test::snapshot!(value, &Spec::default().keep_secrets(), @r#"
    api_key: k
    email: ada@example.com
    password: pw-hunter2-horse
    "#);
}

#[tokio::test]
async fn recorded_trees_and_their_snapshots_hold_no_secret_unless_kept() -> Result<(), NanoError> {
    let t = TestSet::builder().mock(vault()).build()?;
    t.call(vault::NAME, login(PASSWORD)).await?;
    let tree = t.last_call_tree().unwrap().to_string();
    assert!(!tree.contains(PASSWORD) && !tree.contains(TOKEN), "{tree}");
    nano_test::snapshot!(t.last_call_tree(), @r#"
    caller: test
    service: vault
    request: vault.Login
    request_id: "[req-1]"
    body:
      email: ada@example.com
      password: "[redacted]"
    outcome:
      response:
        token: "[redacted]"
    "#);

    let kept = TestSet::builder()
        .mock(vault())
        .spec(Spec::default().keep_secrets())
        .build()?;
    kept.call(vault::NAME, login(PASSWORD)).await?;
    let tree = kept.last_call_tree().unwrap().to_string();
    assert!(tree.contains(PASSWORD) && tree.contains(TOKEN), "{tree}");
    Ok(())
}

#[test]
fn a_secret_is_compared_by_presence_and_never_shown_in_a_diff() {
    let target = Target::new("vault", "vault.Login");
    let spec = Spec::default();
    let recorded = json!({"email": "ada@example.com", "password": "[redacted]"});
    assert!(
        spec.compare(&target, &recorded, &json!(login(PASSWORD)))
            .is_ok()
    );
    let missing = spec
        .compare(&target, &recorded, &json!({"email": "ada@example.com"}))
        .unwrap_err();
    assert_eq!(missing.mismatches[0].path, "$.password");
    let other = spec
        .compare(
            &target,
            &json!(login("pw-one")),
            &json!({"email": "bo@example.com", "password": "pw-two"}),
        )
        .unwrap_err()
        .to_string();
    assert!(
        !other.contains("pw-one") && !other.contains("pw-two"),
        "{other}"
    );
    assert!(other.contains("bo@example.com"), "{other}");

    let kept = Spec::default().keep_secrets();
    let err = kept
        .compare(&target, &json!(login("pw-one")), &json!(login("pw-two")))
        .unwrap_err()
        .to_string();
    assert!(err.contains("pw-one") && err.contains("pw-two"), "{err}");
}

#[tokio::test]
async fn a_mock_failure_names_the_call_without_its_secrets() -> Result<(), NanoError> {
    for keep in [false, true] {
        let mock = if keep {
            Mock::new(vault::NAME).with_spec(Spec::default().keep_secrets())
        } else {
            Mock::new(vault::NAME)
        };
        mock.expect::<Login>()
            .with(login("pw-expected"))
            .returning(Session::default());
        let t = TestSet::builder().mock(mock).build()?;
        let err = t.call(vault::NAME, login(PASSWORD)).await.unwrap_err();
        let report = t.into_mocks().remove(0).finish().unwrap_err().to_string();
        for text in [err.to_string(), report] {
            assert_eq!(text.contains(PASSWORD), keep, "{text}");
            assert_eq!(text.contains("pw-expected"), keep, "{text}");
            assert!(text.contains("ada@example.com"), "{text}");
        }
    }
    Ok(())
}

#[tokio::test]
async fn a_replay_report_shows_no_secret() -> Result<(), NanoError> {
    let recorded: nano_test::CallNode = serde_json::from_value(json!({
        "caller": "front", "service": "vault", "request": "vault.Login",
        "body": {"email": "bo@example.com", "password": "[redacted]"},
        "outcome": {"response": {"token": "[redacted]"}}
    }))
    .unwrap();
    let registry = Registry::from_apis(&[&vault::API])?;
    let scenario = Scenario::new("s", recorded);
    let stand_in = RecordedService::new("vault", [&scenario.root], &registry, &scenario.spec);
    let set = nano::ServiceSet::builder()
        .service(stand_in.clone())
        .build()?;
    // The recorded call answers a sign-in whatever its password, and its token stays redacted.
    let answer = set
        .client("front", "vault")?
        .call(
            &Ctx::new(),
            Login {
                email: "bo@example.com".into(),
                password: PASSWORD.into(),
            },
        )
        .await?;
    assert_eq!(answer.token, "[redacted]");
    // A call the recording does not hold is reported without its password.
    let err = set
        .client("front", "vault")?
        .call(&Ctx::new(), login(PASSWORD))
        .await
        .unwrap_err();
    let problems: Vec<String> = stand_in
        .problems()
        .iter()
        .map(ToString::to_string)
        .collect();
    for text in problems.iter().chain([&err.to_string()]) {
        assert!(!text.contains(PASSWORD), "{text}");
        assert!(text.contains("ada@example.com"), "{text}");
    }
    Ok(())
}

/// A `vault` that answers a login with [`TOKEN`] only for [`PASSWORD`].
struct CheckingVault;

impl vault::Handler for CheckingVault {
    async fn login(&self, _ctx: &Ctx, r: Login) -> Result<Session, NanoError> {
        if r.password == PASSWORD {
            Ok(Session {
                token: TOKEN.into(),
            })
        } else {
            Err(NanoError::new("C-WRONG-PASSWORD", "wrong password"))
        }
    }
}

fn checking_vault() -> nano::ServiceSetBuilder {
    nano::ServiceSet::builder().service(vault::service(|_| Ok(CheckingVault)))
}

/// The scenario of one login, recorded by a test set under `spec`.
async fn recorded_login(spec: Spec) -> Result<Scenario, NanoError> {
    let t = TestSet::builder()
        .mock(vault())
        .spec(spec.clone())
        .build()?;
    t.call(vault::NAME, login(PASSWORD)).await?;
    let mut scenario = Scenario::new("login", t.last_call_tree().unwrap());
    scenario.spec = spec;
    Ok(scenario)
}

#[tokio::test]
async fn a_scenario_that_keeps_its_secrets_replays_them_by_value() -> Result<(), NanoError> {
    let registry = Registry::from_apis(&[&vault::API])?;
    let kept = recorded_login(Spec::default().keep_secrets()).await?;
    assert!(kept.to_json().contains(PASSWORD), "{}", kept.to_json());
    // The whole tree, secrets included, is compared with what the replay made.
    nano_test::scenario::replay_set(&kept, &registry, checking_vault(), true)
        .await
        .map_err(|failure| NanoError::internal(failure.to_string()))?;

    // A kept secret that the replay answers differently is a mismatch, shown as it is kept.
    let mut other_token = kept.clone();
    other_token.root.outcome =
        nano_test::CallOutcome::Response(json!({"token": "tok-other"}).into());
    let failure = nano_test::scenario::replay_set(&other_token, &registry, checking_vault(), true)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        failure.contains("tok-other") && failure.contains(TOKEN),
        "{failure}"
    );
    Ok(())
}

#[tokio::test]
async fn a_secret_written_out_in_a_redacting_scenario_is_compared_by_value() -> Result<(), NanoError>
{
    let registry = Registry::from_apis(&[&vault::API])?;
    let mut scenario = recorded_login(Spec::default()).await?;
    assert!(
        !scenario.to_json().contains(PASSWORD),
        "{}",
        scenario.to_json()
    );
    scenario.root.body = json!(login(PASSWORD)).into();
    // The recorded token is a placeholder, compared by presence: any token passes.
    nano_test::scenario::replay_set(&scenario, &registry, checking_vault(), true)
        .await
        .map_err(|failure| NanoError::internal(failure.to_string()))?;

    // The token written out is compared by value, and the report shows neither value.
    scenario.root.outcome = nano_test::CallOutcome::Response(json!({"token": "tok-other"}).into());
    let failure = nano_test::scenario::replay_set(&scenario, &registry, checking_vault(), true)
        .await
        .unwrap_err()
        .to_string();
    assert!(failure.contains("$.token"), "{failure}");
    assert!(
        !failure.contains("tok-other") && !failure.contains(TOKEN),
        "{failure}"
    );
    Ok(())
}
