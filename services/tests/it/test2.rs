//! "test2": svc2 with svc1 and svc3 replaced by closure mocks; svc4 is not in the set.

use nano::{Ctx, NanoError, ServiceSet, codes};
use nano_test::request_fn;
use services::api::{svc1, svc2, svc3};

fn set_with_mocks(svc1_fails: bool) -> ServiceSet {
    let svc1_mock = request_fn(svc1::NAME, move |_ctx, r: svc1::Req| async move {
        if svc1_fails {
            return Err(NanoError::not_found(format!("no record for {}", r.param)));
        }
        Ok(svc1::Resp {
            value: format!("svc1_{}", r.param),
        })
    });
    let svc3_mock = request_fn(svc3::NAME, |_ctx, r: svc3::Req| async move {
        Ok(svc3::Resp {
            value: format!("svc3_svc4_{}", r.param),
        })
    });
    ServiceSet::builder()
        .service(services::svc2::service())
        .service(svc1_mock)
        .service(svc3_mock)
        .build()
        .unwrap()
}

#[tokio::test]
async fn svc2_answers_the_same_with_mocked_dependencies() {
    let svc2 = set_with_mocks(false)
        .client("svc2-test2", svc2::NAME)
        .unwrap();
    let ctx = Ctx::new();
    let resp = svc2
        .call(
            &ctx,
            svc2::Req {
                param: "testval".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(resp.value, "svc2_svc1_testval");
    let resp = svc2.call(&ctx, svc2::GetReq {}).await.unwrap();
    assert_eq!(resp.value, "svc2_svc3_svc4_getparam");
}

#[tokio::test]
async fn a_failing_dependency_is_wrapped_and_keeps_its_code() {
    let svc2 = set_with_mocks(true)
        .client("svc2-test2", svc2::NAME)
        .unwrap();
    let err = svc2
        .call(&Ctx::new(), svc2::Req { param: "42".into() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::NOT_FOUND);
    assert_eq!(err.message(), "svc1 failure");
    assert_eq!(err.to_string(), "svc1 failure :: no record for 42");
}

#[tokio::test]
async fn the_real_svc3_needs_svc4_in_the_set() {
    let err = ServiceSet::builder()
        .service(services::svc3::service())
        .build()
        .unwrap_err();
    assert_eq!(err.code(), codes::MISSING_DEPENDENCY);
    assert!(err.to_string().contains("\"svc3\""), "{err}");
    assert!(err.to_string().contains("\"svc4\""), "{err}");
}
