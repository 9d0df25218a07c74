//! Snapshots of responses, errors and call trees, with the spec's redactions.
//!
//! The `.snap` files next to this file are reviewed and committed; with `CI=true` insta refuses
//! to write new ones, so a missing or changed snapshot fails the run.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use nano::{AnyRequest, Ctx, NanoError};
use nano_test::Matcher;
use nano_test::{Mock, Rule, Spec, TestSet, snapshot, snapshot_json};
use services::api::{svc1, svc2, svc3, svc4};

use crate::panic_message;

fn example_set() -> TestSet {
    TestSet::builder().services(services::all).build().unwrap()
}

#[tokio::test]
async fn a_typed_response() {
    let t = example_set();
    snapshot!(t.call(svc2::NAME, svc2::Req { param: "x".into() }).await);
}

#[tokio::test]
async fn a_plain_response_body_in_json() {
    let t = example_set();
    let resp = t.call(svc2::NAME, svc2::GetReq {}).await.unwrap();
    snapshot_json!(resp);
}

#[tokio::test]
async fn an_error_with_code_and_flattened_message() {
    let t = TestSet::builder()
        .service(services::svc2::service())
        .mock(Mock::answering(svc1::NAME, |_ctx, r: svc1::Req| {
            Err::<svc1::Resp, _>(NanoError::not_found(format!("no record for {}", r.param)))
        }))
        .mock(Mock::new(svc3::NAME))
        .build()
        .unwrap();
    let err = t
        .call(svc2::NAME, svc2::Req { param: "42".into() })
        .await
        .unwrap_err();
    snapshot!(err);
}

#[tokio::test]
async fn type_erased_outcomes_and_responses() {
    let t = example_set();
    let ctx = Ctx::new();
    let outcome = t
        .call_any(&ctx, svc2::NAME, AnyRequest::new(svc1::Req::default()))
        .await;
    snapshot!(outcome, @r#"
    error:
      code: C-BAD-REQUEST-TYPE
      message: "bad request type: svc1.Req"
    "#);
    let response = t
        .call_any(
            &ctx,
            svc4::NAME,
            AnyRequest::new(svc4::Req { param: "p".into() }),
        )
        .await
        .unwrap();
    snapshot!(response, @"value: svc4_p");
}

#[tokio::test]
async fn the_call_tree_a_request_caused() {
    let t = example_set();
    t.call(svc2::NAME, svc2::GetReq {}).await.unwrap();
    snapshot!(t.last_call_tree());
}

#[tokio::test]
async fn call_trees_in_json_number_their_request_ids() {
    let t = example_set();
    let shared = Ctx::new();
    t.call_with(&shared, svc2::NAME, svc2::Req { param: "a".into() })
        .await
        .unwrap();
    t.call_with(&shared, svc4::NAME, svc4::Req { param: "b".into() })
        .await
        .unwrap();
    t.call(svc1::NAME, svc1::Req { param: "c".into() })
        .await
        .unwrap();
    // The first two trees share [req-1]; the third has its own id.
    snapshot_json!("three_trees", t.call_trees());
}

#[tokio::test]
async fn a_failing_call_tree_shows_where_it_failed() {
    let svc4_mock = Mock::new(svc4::NAME);
    svc4_mock
        .expect::<svc4::Req>()
        .returning_err(NanoError::unavailable("svc4 is down"))
        .once();
    let t = TestSet::builder()
        .service(services::svc2::service())
        .service(services::svc1::service())
        .service(services::svc3::service())
        .mock(svc4_mock)
        .fidelity()
        .build()
        .unwrap();
    let _ = t.call(svc2::NAME, svc2::GetReq {}).await.unwrap_err();
    snapshot!(t.last_call_tree());
}

#[tokio::test]
async fn extra_redactions_apply_per_service_and_request() {
    let spec = Spec::new()
        .rule(
            Rule::matching("value", Matcher::regex("^svc4_").unwrap())
                .unwrap()
                .for_service(svc4::NAME),
        )
        .rule(Rule::ignore("param").unwrap().for_request("svc3.Req"));
    let t = TestSet::builder()
        .services(services::all)
        .spec(spec.clone())
        .build()
        .unwrap();
    t.call(svc2::NAME, svc2::GetReq {}).await.unwrap();
    // svc4's value becomes a placeholder, svc3's request param disappears; svc2's and svc3's
    // values stay as they are.
    snapshot!(t.last_call_tree(), t.spec());
    snapshot!(
        "redacted_typed_response",
        t.call(svc4::NAME, svc4::Req { param: "z".into() }).await,
        &Spec::new().matching("value", Matcher::AnyString).unwrap()
    );
}

static SCRATCH: AtomicUsize = AtomicUsize::new(0);

/// A scratch snapshot folder outside the repository, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Self {
        let n = SCRATCH.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("nano-test-snap-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn a_snapshot_mismatch_fails_the_test_and_keeps_the_stored_snapshot() {
    let scratch = Scratch::new();
    let stored = scratch.0.join("mismatch.snap");
    let old = "---\nsource: nano-test/tests/it/snapshots.rs\n---\nresponse:\n  value: svc4_old\n";
    std::fs::write(&stored, old).unwrap();

    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(&scratch.0);
    settings.set_prepend_module_to_snapshot(false);

    // The same value passes...
    let same: Result<svc4::Resp, NanoError> = Ok(svc4::Resp {
        value: "svc4_old".into(),
    });
    settings.bind(|| snapshot!("mismatch", same));

    // ...a different one fails, naming the snapshot; insta prints the diff with the failure.
    let changed: Result<svc4::Resp, NanoError> = Ok(svc4::Resp {
        value: "svc4_new".into(),
    });
    if std::env::var("INSTA_FORCE_PASS").as_deref() == Ok("1") {
        // Under `cargo insta test` mismatches are collected for review instead of failing.
        settings.bind(|| snapshot!("mismatch", changed));
        let pending = std::fs::read_to_string(scratch.0.join("mismatch.snap.new")).unwrap();
        assert!(
            pending.ends_with("response:\n  value: svc4_new\n"),
            "{pending}"
        );
    } else {
        let message = panic_message(|| settings.bind(|| snapshot!("mismatch", changed)));
        assert!(
            message.contains("snapshot assertion for 'mismatch' failed"),
            "{message}"
        );
    }
    assert_eq!(std::fs::read_to_string(&stored).unwrap(), old);
}

#[test]
fn a_value_that_cannot_be_encoded_fails_with_a_clear_message() {
    #[derive(Debug, serde::Serialize)]
    struct Bad {
        #[serde(serialize_with = "refuse")]
        field: u8,
    }
    fn refuse<S: serde::Serializer>(_: &u8, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("no"))
    }
    let message = panic_message(|| snapshot!(Bad { field: 1 }, @""));
    assert_eq!(
        message,
        "cannot snapshot Bad { field: 1 }: cannot encode the value: no"
    );
}
