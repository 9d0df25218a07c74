//! Generated requests, the async property runner and the ready-made properties.

use std::sync::{Arc, Mutex};

use nano::{AnyResponse, NanoError, ServiceSet, request_fn, service_fn};
use nano_test::property::{Calls, GeneratedCall, Property, answers_or_coded_error, same_outcome};
use nano_test::{Deployment, Spec};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, RngSeed};
use serde::{Deserialize, Serialize};
use services::api::{svc1, svc2, svc4};

/// Every request the example cluster takes, plus ones it must refuse with a coded error.
fn example_calls() -> SBoxedStrategy<GeneratedCall> {
    Calls::new()
        .with(
            svc2::NAME,
            any::<String>().prop_map(|param| svc2::Req { param }),
        )
        .with(svc2::NAME, Just(svc2::GetReq {}))
        .with(
            svc2::NAME,
            any::<String>().prop_map(|param| svc1::Req { param }),
        )
        .with(svc4::NAME, ".*".prop_map(|param| svc4::Req { param }))
        .with("no-such-service", Just(svc2::GetReq {}))
        .into_strategy()
        .unwrap()
}

fn examples() -> Deployment {
    Deployment::in_process(services::all(ServiceSet::builder())).unwrap()
}

/// A config for failure-path tests: reproducible, and writing nothing into the repository.
fn quiet(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(7),
        ..Config::default()
    }
}

#[tokio::test]
async fn every_generated_request_gets_a_response_or_a_coded_error() {
    let deployment = examples();
    Property::new(example_calls())
        .cases(128)
        .run(|call| answers_or_coded_error(&deployment, call))
        .await;
}

#[test]
fn the_runner_works_in_a_plain_test() {
    let deployment = examples();
    Property::new(example_calls())
        .cases(64)
        .run_blocking(|call| answers_or_coded_error(&deployment, call));
}

#[tokio::test]
async fn the_blocking_runner_also_works_when_called_inside_a_runtime() {
    let deployment = examples();
    let seen = Mutex::new(0);
    Property::new(example_calls())
        .cases(16)
        .run_blocking(|call| {
            *seen.lock().unwrap() += 1;
            answers_or_coded_error(&deployment, call)
        });
    assert_eq!(*seen.lock().unwrap(), 16);
}

#[tokio::test]
async fn in_process_and_fidelity_agree_on_the_example_services() {
    let deployments = [
        examples(),
        Deployment::with_fidelity(services::all(ServiceSet::builder())).unwrap(),
    ];
    let spec = Spec::default();
    Property::new(example_calls())
        .cases(64)
        .run(|call| same_outcome(&deployments, &spec, call))
        .await;
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Shout {
    text: String,
}

impl nano::Request for Shout {
    type Response = Shout;
    const NAME: &'static str = "echo.Shout";
}

#[tokio::test]
async fn a_panicking_service_fails_the_property_with_a_shrunk_input() {
    let echo = request_fn("echo", |_ctx, r: Shout| async move {
        assert!(!r.text.contains('x'), "cannot shout {:?}", r.text);
        Ok(r)
    });
    let deployment = Deployment::in_process(ServiceSet::builder().service(echo)).unwrap();
    let calls = Calls::new()
        .with("echo", "[a-z]{0,12}".prop_map(|text| Shout { text }))
        .into_strategy()
        .unwrap();
    let failure = Property::new(calls)
        .config(quiet(512))
        .check(|call| answers_or_coded_error(&deployment, call))
        .await
        .unwrap_err();
    assert_eq!(
        failure.minimal_input.as_deref(),
        Some(r#"echo <- echo.Shout {"text":"x"}"#)
    );
    assert!(
        failure
            .reason
            .starts_with("the test panicked: cannot shout \""),
        "{failure}"
    );
    assert!(failure.shrink_steps > 0);
    let text = failure.to_string();
    assert!(text.contains("minimal failing input (after"), "{text}");
}

#[tokio::test]
async fn an_uncoded_error_or_a_wrong_response_type_fails_the_property() {
    let sloppy = request_fn("sloppy", |_ctx, r: Shout| async move {
        if r.text.len() > 2 {
            return Err(NanoError::msg("too long"));
        }
        Ok(r)
    });
    let confused = service_fn("confused", |_ctx, _req| async move {
        Ok(AnyResponse::new(1_u8))
    });
    let deployment =
        Deployment::in_process(ServiceSet::builder().service(sloppy).service(confused)).unwrap();
    let calls = Calls::new()
        .with("sloppy", "[a-z]{0,6}".prop_map(|text| Shout { text }))
        .into_strategy()
        .unwrap();
    let failure = Property::new(calls)
        .config(quiet(256))
        .check(|call| answers_or_coded_error(&deployment, call))
        .await
        .unwrap_err();
    assert_eq!(
        failure.minimal_input.as_deref(),
        Some(r#"sloppy <- echo.Shout {"text":"aaa"}"#)
    );
    assert_eq!(
        failure.reason,
        r#"sloppy answered with an uncoded error (in {"error":{"code":"","message":"too long"}}): too long"#
    );

    let calls = Calls::new()
        .with("confused", Just(Shout::default()))
        .into_strategy()
        .unwrap();
    let failure = Property::new(calls)
        .config(quiet(4))
        .check(|call| answers_or_coded_error(&deployment, call))
        .await
        .unwrap_err();
    assert_eq!(
        failure.reason,
        "confused answered echo.Shout with a u8, not the declared it::properties::Shout"
    );
}

/// A request generated by proptest-derive whose `tag` does not survive serde.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, proptest_derive::Arbitrary)]
struct Note {
    #[proptest(regex = "[a-z]{0,5}")]
    text: String,
    #[serde(skip)]
    #[proptest(regex = "[a-z]{1,3}")]
    tag: String,
}

impl nano::Request for Note {
    type Response = Shout;
    const NAME: &'static str = "notes.Note";
}

fn notes() -> nano::ServiceSetBuilder {
    ServiceSet::builder().service(request_fn("notes", |_ctx, r: Note| async move {
        Ok(Shout {
            text: format!("{}#{}", r.text, r.tag),
        })
    }))
}

#[tokio::test]
async fn a_field_lost_on_the_wire_fails_the_parity_property_with_a_diff() {
    let deployments = [
        Deployment::in_process(notes()).unwrap(),
        Deployment::with_fidelity(notes()).unwrap(),
    ];
    let spec = Spec::default();
    let calls = Calls::new()
        .arbitrary::<Note>("notes")
        .into_strategy()
        .unwrap();
    let failure = Property::new(calls)
        .config(quiet(32))
        .check(|call| same_outcome(&deployments, &spec, call))
        .await
        .unwrap_err();
    // The shrunk case: empty text, and the smallest tag (which the wire loses).
    assert_eq!(
        failure.minimal_input.as_deref(),
        Some(r#"notes <- notes.Note {"text":""}"#)
    );
    assert!(
        failure
            .reason
            .contains(r#""fidelity" differs from "in-process":"#),
        "{failure}"
    );
    assert!(
        failure
            .reason
            .contains(r##"$.text: expected "#a", found "#""##),
        "{failure}"
    );
    assert_eq!(failure.passed, 0);
}

#[test]
fn failures_are_persisted_and_replayed_first() {
    let file =
        std::env::temp_dir().join(format!("nano-test-regressions-{}.txt", std::process::id()));
    let _ = std::fs::remove_file(&file);
    // proptest's file persistence takes a `&'static str`: leak one small path per test run.
    let path: &'static str = Box::leak(file.display().to_string().into_boxed_str());
    let config = || Config {
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(path))),
        ..Config::default()
    };

    let failure = Property::new(0u32..1000)
        .config(config())
        .cases(256)
        .check_blocking(|n| async move {
            prop_assert!(n < 500, "{n} is too big");
            Ok(())
        })
        .unwrap_err();
    assert_eq!(failure.minimal_input.as_deref(), Some("500"));
    let saved = std::fs::read_to_string(&file).unwrap();
    assert!(
        saved.contains("cc ") && saved.contains("shrinks to 500"),
        "{saved}"
    );

    // With no new cases, only the persisted one runs: the original failing value.
    let seen = Arc::new(Mutex::new(Vec::new()));
    Property::new(0u32..1000)
        .config(config())
        .cases(0)
        .run_blocking(|n| {
            seen.lock().unwrap().push(n);
            async { Ok(()) }
        });
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert!(seen[0] >= 500, "{seen:?}");
    let _ = std::fs::remove_file(&file);
}

#[test]
fn too_many_rejections_fail_instead_of_passing_silently() {
    let failure = Property::new(any::<u8>())
        .config(Config {
            max_global_rejects: 10,
            ..quiet(5)
        })
        .check_blocking(|_| async { Err(TestCaseError::reject("never interesting")) })
        .unwrap_err();
    assert_eq!(
        failure.reason,
        "too many rejected cases (11) after 0 passed"
    );
    assert_eq!(failure.minimal_input, None);
}

#[test]
fn a_failing_property_panics_with_its_failure() {
    let message = crate::panic_message(|| {
        Property::new(Just(3))
            .config(quiet(1))
            .run_blocking(|n| async move {
                prop_assert_eq!(n, 4);
                Ok(())
            });
    });
    assert!(
        message.starts_with("property failed after 0 passing cases: assertion failed"),
        "{message}"
    );
    assert!(
        message.ends_with("minimal failing input (after 0 shrink steps): 3"),
        "{message}"
    );
}

#[test]
fn an_empty_call_strategy_is_a_coded_error() {
    let err = Calls::new().into_strategy().unwrap_err();
    assert_eq!(err.code(), nano_test::codes::BAD_USE);
}
