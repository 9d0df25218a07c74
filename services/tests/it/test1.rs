//! "test1": the four real services in one set, called by the test.

use nano::{AnyRequest, Client, Ctx, ServiceSet, codes};
use services::api::{svc1, svc2};

fn svc2_client() -> Client {
    let set = services::all(ServiceSet::builder()).build().unwrap();
    set.client("svc2-test1", svc2::NAME).unwrap()
}

#[tokio::test]
async fn req_goes_through_svc1() {
    let resp = svc2_client()
        .call(
            &Ctx::new(),
            svc2::Req {
                param: "testval".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(resp.value, "svc2_svc1_testval");
}

#[tokio::test]
async fn get_req_goes_through_svc3_and_svc4() {
    let resp = svc2_client()
        .call(&Ctx::new(), svc2::GetReq {})
        .await
        .unwrap();
    assert_eq!(resp.value, "svc2_svc3_svc4_getparam");
}

#[tokio::test]
async fn unknown_request_type_is_a_coded_client_error() {
    let err = svc2_client()
        .call_any(&Ctx::new(), AnyRequest::new(svc1::Req::default()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::BAD_REQUEST_TYPE);
    assert!(err.is_client_error());
    assert!(err.to_string().contains("svc1.Req"), "{err}");
}

#[tokio::test]
async fn messages_use_the_proto3_json_field_names() {
    let json = serde_json::to_string(&svc2::Req { param: "p".into() }).unwrap();
    assert_eq!(json, r#"{"param":"p"}"#);
    // Empty fields are omitted and missing fields decode as defaults, like proto3 JSON.
    assert_eq!(serde_json::to_string(&svc2::Resp::default()).unwrap(), "{}");
    let decoded: svc2::Resp = serde_json::from_str("{}").unwrap();
    assert_eq!(decoded, svc2::Resp::default());
}
