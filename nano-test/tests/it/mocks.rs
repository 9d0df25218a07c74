//! Mocks: expectations, responses, counts, order, recorded calls, verification and failures.

use std::time::Duration;

use nano::{Ctx, NanoError, ServiceSet, codes};
use nano_test::{Mock, Sequence, Spec, TestSet, mock};
use services::api::{svc1, svc2, svc3, svc4};

use crate::{panic_message, panic_message_async};

fn req(param: &str) -> svc4::Req {
    svc4::Req {
        param: param.into(),
    }
}

fn resp(value: &str) -> svc4::Resp {
    svc4::Resp {
        value: value.into(),
    }
}

/// A test set with svc4 mocked by `mock`, called by the test directly.
fn svc4_set(mock: Mock) -> TestSet {
    TestSet::builder().mock(mock).build().unwrap()
}

#[tokio::test]
async fn the_article_test2_with_mocks_from_the_toolkit() {
    // svc1 mocked in one line from a typed closure, svc3 with the type-switch macro.
    let t = TestSet::builder()
        .service(services::svc2::service())
        .mock(Mock::answering(svc1::NAME, |_ctx, r: svc1::Req| {
            Ok(svc1::Resp {
                value: format!("svc1_{}", r.param),
            })
        }))
        .mock(mock!(svc3::NAME, {
            svc3::Req => |r| Ok(svc3::Resp { value: format!("svc3_svc4_{}", r.param) }),
        }))
        .caller("svc2-test2")
        .build()
        .unwrap();
    let resp = t
        .call(
            svc2::NAME,
            svc2::Req {
                param: "testval".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(resp.value, "svc2_svc1_testval");
    let resp = t.call(svc2::NAME, svc2::GetReq {}).await.unwrap();
    assert_eq!(resp.value, "svc2_svc3_svc4_getparam");

    let svc3_calls = t.mock(svc3::NAME).unwrap().calls();
    assert_eq!(svc3_calls.len(), 1);
    assert_eq!(svc3_calls[0].caller(), Some("svc2"));
    assert_eq!(
        svc3_calls[0].request_as::<svc3::Req>().unwrap().param,
        "getparam"
    );
    assert_eq!(svc3_calls[0].expectation, None, "answered by the fallback");
    t.verify().unwrap();
}

#[tokio::test]
async fn the_macro_mock_answers_other_types_with_a_coded_error_and_sees_the_ctx() {
    let t = svc4_set(mock!(svc4::NAME, |ctx| {
        svc4::Req => |r| Ok(svc4::Resp { value: format!("{}:{}", r.param, ctx.caller().unwrap_or("?")) }),
    }));
    assert_eq!(t.call(svc4::NAME, req("a")).await.unwrap().value, "a:test");
    let err = t.call(svc4::NAME, svc1::Req::default()).await.unwrap_err();
    assert_eq!(err.code(), codes::BAD_REQUEST_TYPE);
}

#[tokio::test]
async fn expectations_match_by_value_or_predicate_in_declaration_order() {
    let svc4 = Mock::new(svc4::NAME);
    svc4.expect::<svc4::Req>()
        .with(req("a"))
        .returning(resp("exact"))
        .named("by value");
    svc4.expect::<svc4::Req>()
        .matching(|r| r.param.len() > 3)
        .returning(resp("long"));
    svc4.expect::<svc4::Req>()
        .with(req("a"))
        .matching(|r| r.param == "a")
        .returning(resp("never reached"))
        .times(0..);
    let t = svc4_set(svc4);
    assert_eq!(t.call(svc4::NAME, req("a")).await.unwrap().value, "exact");
    assert_eq!(t.call(svc4::NAME, req("abcd")).await.unwrap().value, "long");
    let calls = t.mock(svc4::NAME).unwrap().calls();
    assert_eq!(
        calls[0].expectation.as_deref(),
        Some("expectation \"by value\" (svc4.Req)")
    );
    assert_eq!(
        calls[1].expectation.as_deref(),
        Some("expectation #2 (svc4.Req)")
    );
}

#[tokio::test]
async fn responses_can_be_errors_sequences_and_closures() {
    let svc4 = Mock::new(svc4::NAME);
    svc4.expect::<svc4::Req>()
        .with(req("err"))
        .returning_err(NanoError::not_found("nothing here"));
    svc4.expect::<svc4::Req>().with(req("seq")).returning_seq([
        Ok(resp("first")),
        Err(NanoError::unavailable("second fails")),
        Ok(resp("third")),
    ]);
    svc4.expect::<svc4::Req>()
        .with(req("fn"))
        .respond_with(|ctx, r| {
            Ok(svc4::Resp {
                value: format!("{}-{}", r.param, ctx.metadata("user").unwrap_or("anon")),
            })
        })
        .times(2);
    let t = svc4_set(svc4);

    let err = t.call(svc4::NAME, req("err")).await.unwrap_err();
    assert_eq!(
        (err.code(), err.message()),
        (codes::NOT_FOUND, "nothing here")
    );

    let first = t.call(svc4::NAME, req("seq")).await.unwrap();
    let second = t.call(svc4::NAME, req("seq")).await.unwrap_err();
    let third = t.call(svc4::NAME, req("seq")).await.unwrap();
    assert_eq!(first.value, "first");
    assert_eq!(second.code(), codes::UNAVAILABLE);
    assert_eq!(third.value, "third");

    let ctx = Ctx::new().with_metadata("user", "ada");
    for _ in 0..2 {
        let resp = t.call_with(&ctx, svc4::NAME, req("fn")).await.unwrap();
        assert_eq!(resp.value, "fn-ada");
    }
    t.verify().unwrap();
}

#[tokio::test(start_paused = true)]
async fn async_responders_see_the_deadline_of_the_caller() {
    let svc4 = Mock::new(svc4::NAME);
    svc4.expect::<svc4::Req>()
        .respond_with_async(|_ctx: Ctx, _r| async move {
            // Answers after the caller's deadline, which paused time reaches at once.
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok(resp("too late"))
        })
        .once();
    let t = svc4_set(svc4);
    let ctx = Ctx::new().with_timeout(Duration::from_secs(5));
    let err = t.call_with(&ctx, svc4::NAME, req("x")).await.unwrap_err();
    assert_eq!(err.code(), codes::TIMEOUT);
    let call = &t.mock(svc4::NAME).unwrap().calls()[0];
    assert_eq!(call.deadline(), ctx.deadline());
    assert_eq!(call.request_id(), ctx.request_id().as_str());
    assert_eq!(
        call.outcome, None,
        "the caller stopped waiting before the mock answered"
    );
}

#[tokio::test]
async fn every_call_is_recorded_with_caller_request_and_ctx() {
    let svc4 = Mock::answering(svc4::NAME, |_ctx, r: svc4::Req| Ok(resp(&r.param)));
    let set = ServiceSet::builder()
        .service(svc4.service())
        .build()
        .unwrap();
    let ctx = Ctx::with_request_id("0123456789abcdef0123456789abcdef").with_metadata("user", "ada");
    set.client("svc3", svc4::NAME)
        .unwrap()
        .call(&ctx, req("one"))
        .await
        .unwrap();
    set.client("svc9", svc4::NAME)
        .unwrap()
        .call(&ctx, req("two"))
        .await
        .unwrap();
    let calls = svc4.calls();
    assert_eq!(svc4.call_count(), 2);
    assert_eq!(calls[0].caller(), Some("svc3"));
    assert_eq!(calls[1].caller(), Some("svc9"));
    assert_eq!(calls[0].request_id(), "0123456789abcdef0123456789abcdef");
    assert_eq!(calls[0].metadata("user"), Some("ada"));
    assert_eq!(
        calls[1].outcome,
        Some(nano_test::CallOutcome::Response(
            serde_json::json!({"value": "two"}).into()
        ))
    );
    assert_eq!(svc4.calls_of::<svc4::Req>(), [req("one"), req("two")]);
    assert!(svc4.calls_of::<svc1::Req>().is_empty());
}

#[tokio::test]
async fn call_counts_are_exact_numbers_or_ranges() {
    let svc4 = Mock::new(svc4::NAME);
    svc4.expect::<svc4::Req>()
        .with(req("two"))
        .returning(resp("2"))
        .times(2);
    svc4.expect::<svc4::Req>()
        .with(req("some"))
        .returning(resp("s"))
        .times(1..=3);
    svc4.expect::<svc4::Req>()
        .with(req("none"))
        .returning(resp("n"))
        .never();
    svc4.expect::<svc4::Req>()
        .with(req("any"))
        .returning(resp("a"))
        .times(..);
    let t = svc4_set(svc4);
    for param in ["two", "two", "some", "some"] {
        t.call(svc4::NAME, req(param)).await.unwrap();
    }
    t.verify().unwrap();

    // A third call to an exhausted "exactly 2" expectation is unexpected, and says why.
    let err = t.call(svc4::NAME, req("two")).await.unwrap_err();
    assert_eq!(err.code(), nano_test::codes::UNEXPECTED_CALL);
    assert!(
        err.message()
            .contains("it already had all the calls it wants"),
        "{err}"
    );
    assert!(
        err.message().contains("wants exactly 2 calls and had 2"),
        "{err}"
    );
    let problems = t.into_mocks().pop().unwrap().finish().unwrap_err().problems;
    assert_eq!(
        problems.len(),
        1,
        "only the extra call is a problem: {problems:?}"
    );

    // A call to a `never` expectation fails verification.
    let svc4 = Mock::new(svc4::NAME);
    svc4.expect::<svc4::Req>().returning(resp("n")).never();
    let problems = verification_after(svc4, &[req("x")]).await;
    assert!(problems.contains("unexpected call"), "{problems}");
}

/// Calls the mock with `requests` (ignoring outcomes) and returns its verification message.
async fn verification_after(mock: Mock, requests: &[svc4::Req]) -> String {
    let set = ServiceSet::builder()
        .service(mock.service())
        .build()
        .unwrap();
    let client = set.client("svc3", svc4::NAME).unwrap();
    for request in requests {
        let _ = client.call(&Ctx::new(), request.clone()).await;
    }
    mock.finish().unwrap_err().to_string()
}

#[tokio::test]
async fn an_unmet_expectation_fails_verification_with_its_name_and_counts() {
    let svc4 = Mock::new(svc4::NAME);
    svc4.expect::<svc4::Req>()
        .with(req("a"))
        .returning(resp("a"))
        .named("lookup")
        .times(2..);
    let message = verification_after(svc4, &[req("a")]).await;
    assert_eq!(
        message,
        "mock \"svc4\" failed verification:\n\
         - expectation \"lookup\" (svc4.Req) wants at least 2 calls, got 1"
    );
}

#[tokio::test]
async fn an_unexpected_call_fails_with_the_request_and_the_closest_expectation_diff() {
    let svc4 = Mock::new(svc4::NAME);
    svc4.expect::<svc4::Req>()
        .with(req("getparam"))
        .returning(resp("x"))
        .named("far away")
        .times(0..);
    svc4.expect::<svc4::Req>()
        .with(req("getparan"))
        .returning(resp("x"))
        .named("closest")
        .times(0..);
    let set = ServiceSet::builder()
        .service(svc4.service())
        .build()
        .unwrap();
    let err = set
        .client("svc3", svc4::NAME)
        .unwrap()
        .call(&Ctx::with_request_id("feed"), req("getparam!"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), nano_test::codes::UNEXPECTED_CALL);
    let message = err.message().to_owned();
    assert!(
        message.starts_with(
            "mock \"svc4\" got an unexpected call from \"svc3\" (request id feed): \
             svc4.Req {\"param\":\"getparam!\"}\n"
        ),
        "{message}"
    );
    assert!(
        message.contains("closest: expectation \"far away\""),
        "{message}"
    );
    assert!(
        message.contains("$.param: expected \"getparam\", found \"getparam!\""),
        "{message}"
    );
    assert!(
        message.contains("-  \"param\": \"getparam\"\n+  \"param\": \"getparam!\""),
        "{message}"
    );

    // The failure is remembered even though the caller got (and might swallow) an error.
    let verification = svc4.finish().unwrap_err();
    assert_eq!(verification.problems.len(), 1);
    assert_eq!(verification.problems[0], message);
    // Returned with `?` from a test, the harness prints the error's Debug form: the same report.
    assert_eq!(format!("{verification:?}"), verification.to_string());
}

#[tokio::test]
async fn an_unexpected_request_type_names_what_the_mock_expects() {
    let svc4 = Mock::new(svc4::NAME);
    svc4.expect::<svc4::Req>()
        .returning(resp("x"))
        .named("only this")
        .times(0..);
    let set = ServiceSet::builder()
        .service(svc4.service())
        .build()
        .unwrap();
    let err = set
        .client("svc3", svc4::NAME)
        .unwrap()
        .call(&Ctx::new(), svc1::Req::default())
        .await
        .unwrap_err();
    assert!(
        err.message().ends_with(
            "no expectation takes svc1.Req; the mock expects: expectation \"only this\" (svc4.Req)"
        ),
        "{err}"
    );
    let empty = Mock::new(svc4::NAME);
    let message = verification_after(empty, &[req("x")]).await;
    assert!(
        message.contains("the mock has no expectations"),
        "{message}"
    );
    drop(svc4.finish());
}

#[tokio::test]
async fn a_matching_expectation_without_a_response_is_a_coded_failure() {
    let svc4 = Mock::new(svc4::NAME);
    svc4.expect::<svc4::Req>().named("forgot").once();
    let set = ServiceSet::builder()
        .service(svc4.service())
        .build()
        .unwrap();
    let err = set
        .client("svc3", svc4::NAME)
        .unwrap()
        .call(&Ctx::new(), req("x"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), nano_test::codes::NO_RESPONSE);
    let problems = svc4.finish().unwrap_err().problems;
    assert!(problems[0].contains("has no response"), "{problems:?}");
}

#[tokio::test]
async fn strict_ordering_across_mocks_with_a_sequence() {
    let seq = Sequence::new();
    let svc1 = Mock::new(svc1::NAME);
    let svc3 = Mock::new(svc3::NAME);
    svc1.expect::<svc1::Req>()
        .returning(svc1::Resp {
            value: "svc1".into(),
        })
        .named("first")
        .once()
        .in_sequence(&seq);
    svc3.expect::<svc3::Req>()
        .returning(svc3::Resp {
            value: "svc3".into(),
        })
        .named("second")
        .once()
        .in_sequence(&seq);
    let t = TestSet::builder()
        .service(services::svc2::service())
        .mock(svc1)
        .mock(svc3)
        .build()
        .unwrap();
    t.call(svc2::NAME, svc2::Req::default()).await.unwrap();
    t.call(svc2::NAME, svc2::GetReq {}).await.unwrap();
    t.verify().unwrap();

    // The other way round fails the call and the verification.
    let seq = Sequence::new();
    let svc1 = Mock::new(svc1::NAME);
    let svc3 = Mock::new(svc3::NAME);
    svc1.expect::<svc1::Req>()
        .returning(svc1::Resp::default())
        .named("first")
        .in_sequence(&seq);
    svc3.expect::<svc3::Req>()
        .returning(svc3::Resp::default())
        .named("second")
        .in_sequence(&seq);
    let t = TestSet::builder()
        .service(services::svc2::service())
        .mock(svc1)
        .mock(svc3)
        .build()
        .unwrap();
    let err = t.call(svc2::NAME, svc2::GetReq {}).await.unwrap_err();
    assert_eq!(err.code(), nano_test::codes::OUT_OF_ORDER);
    assert_eq!(err.message(), "svc3 failure");
    assert!(
        err.to_string().ends_with(
            "expectation \"second\" (svc3.Req) of mock \"svc3\" was called out of order: \
             expectation \"first\" (svc1.Req) of mock \"svc1\" must come first (called 0 of \
             at least 1 times)"
        ),
        "{err}"
    );
    let failures = t.verify().unwrap_err();
    assert_eq!(failures.mock, "svc1, svc3");
    let text = failures.to_string();
    assert!(text.contains("was called out of order"), "{text}");
    assert!(
        text.contains("expectation \"second\" (svc3.Req) wants at least 1 call, got 0"),
        "{text}"
    );
    assert!(
        text.contains("expectation \"first\" (svc1.Req) wants at least 1 call, got 0"),
        "{text}"
    );
    for mock in t.into_mocks() {
        let _ = mock.finish();
    }
}

#[test]
fn verification_on_drop_fails_the_test_with_the_problems() {
    let message = panic_message(|| {
        let svc4 = Mock::new(svc4::NAME);
        svc4.expect::<svc4::Req>()
            .returning(resp("x"))
            .named("lookup")
            .once();
    });
    assert_eq!(
        message,
        "mock \"svc4\" failed verification:\n\
         - expectation \"lookup\" (svc4.Req) wants exactly 1 call, got 0"
    );
}

#[test]
#[should_panic(expected = "expectation #1 (svc4.Req) wants exactly 1 call, got 0")]
fn a_test_set_verifies_its_mocks_on_drop() {
    let svc4 = Mock::new(svc4::NAME);
    svc4.expect::<svc4::Req>().returning(resp("x")).once();
    let _t = svc4_set(svc4);
}

#[test]
fn verification_on_drop_is_skipped_while_the_test_is_already_panicking() {
    // Without the skip, the drop would panic during unwinding and abort the whole test binary;
    // reaching the assertion shows the first panic is the one reported.
    let message = panic_message(|| {
        let svc4 = Mock::new(svc4::NAME);
        svc4.expect::<svc4::Req>().returning(resp("x")).once();
        panic!("the test's own failure");
    });
    assert_eq!(message, "the test's own failure");
}

#[tokio::test]
async fn explicit_verify_reports_the_problems_and_passes_when_met() {
    let svc4 = Mock::new(svc4::NAME);
    svc4.expect::<svc4::Req>().returning(resp("x")).once();
    let message = svc4.verify().unwrap_err().to_string();
    assert!(message.contains("wants exactly 1 call, got 0"), "{message}");
    let set = ServiceSet::builder()
        .service(svc4.service())
        .build()
        .unwrap();
    set.client("t", svc4::NAME)
        .unwrap()
        .call(&Ctx::new(), req("x"))
        .await
        .unwrap();
    svc4.verify().unwrap();
}

#[tokio::test]
async fn a_failed_build_does_not_turn_into_a_verification_panic() {
    let svc1 = Mock::new(svc1::NAME);
    svc1.expect::<svc1::Req>()
        .returning(svc1::Resp::default())
        .once();
    // svc2 needs svc3 too, which is missing.
    let err = TestSet::builder()
        .service(services::svc2::service())
        .mock(svc1)
        .build()
        .unwrap_err();
    assert_eq!(err.code(), codes::MISSING_DEPENDENCY);
}

#[tokio::test]
async fn with_values_are_compared_under_the_spec() {
    // A spec that ignores `param` makes every svc4 request equal to the expected one.
    let svc4 = Mock::new(svc4::NAME).with_spec(Spec::new().ignore("param").unwrap());
    svc4.expect::<svc4::Req>()
        .with(req("a"))
        .returning(resp("any"))
        .times(2);
    let t = svc4_set(svc4);
    t.call(svc4::NAME, req("b")).await.unwrap();
    t.call(svc4::NAME, req("c")).await.unwrap();
    t.verify().unwrap();
}

#[tokio::test]
async fn a_failing_test_inside_an_async_test_reports_its_own_panic() {
    let message = panic_message_async(async {
        let t = svc4_set(Mock::new(svc4::NAME));
        let _ = t.call(svc4::NAME, req("x")).await;
        panic!("own failure first");
    })
    .await;
    assert_eq!(message, "own failure first");
}
