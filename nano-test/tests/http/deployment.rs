//! `Deployment::http`: what it serves, how long its server lives, and its errors.

use std::sync::Arc;
use std::time::Duration;

use nano::{Ctx, ServiceSet, ServiceSetBuilder, codes};
use nano_test::nano_http::Endpoint;
use nano_test::property::{Property, same_outcome};
use nano_test::request_fn;
use nano_test::{Deployment, Spec};
use services::api::{svc1, svc2};
use tokio::sync::mpsc;

use crate::properties::{example_calls, fidelity_and_http};

/// svc1 alone, holding `token` for as long as its set lives.
fn svc1_holding(token: &Arc<()>) -> ServiceSetBuilder {
    let token = Arc::clone(token);
    ServiceSet::builder().service(request_fn(svc1::NAME, move |_ctx, r: svc1::Req| {
        let _held = &token;
        async move {
            Ok(svc1::Resp {
                value: format!("svc1_{}", r.param),
            })
        }
    }))
}

async fn ask(deployment: &Deployment, param: &str) -> String {
    deployment
        .client(svc1::NAME)
        .unwrap()
        .call(
            &Ctx::new(),
            svc1::Req {
                param: param.into(),
            },
        )
        .await
        .unwrap()
        .value
}

#[tokio::test]
async fn the_example_services_answer_over_http() {
    let http = Deployment::http(
        services::all(ServiceSet::builder()),
        services::api::endpoints,
    )
    .unwrap();
    assert_eq!(http.name(), "http");
    assert_eq!(http.caller(), "test");
    let svc2 = http.client(svc2::NAME).unwrap();
    let resp = svc2
        .call(&Ctx::new(), svc2::Req { param: "x".into() })
        .await
        .unwrap();
    assert_eq!(resp.value, "svc2_svc1_x");
    let resp = svc2.call(&Ctx::new(), svc2::GetReq {}).await.unwrap();
    assert_eq!(resp.value, "svc2_svc3_svc4_getparam");
    let err = http.client("nope").unwrap_err();
    assert_eq!(err.code(), codes::UNKNOWN_SERVICE);
}

#[tokio::test]
async fn the_server_lives_while_a_clone_or_a_client_does_and_stops_with_the_last() {
    let token = Arc::new(());
    let first = Deployment::http(svc1_holding(&token), services::api::endpoints).unwrap();
    let second = first.clone();
    let client = first.client(svc1::NAME).unwrap();
    assert_eq!(
        Arc::strong_count(&token),
        2,
        "the server's set holds the token"
    );

    drop(first);
    assert_eq!(ask(&second, "a").await, "svc1_a");
    drop(second);
    let resp = client
        .call(&Ctx::new(), svc1::Req { param: "b".into() })
        .await
        .unwrap();
    assert_eq!(resp.value, "svc1_b");

    // The last handle stops the server and joins its thread, which drops its set.
    drop(client);
    assert_eq!(Arc::strong_count(&token), 1);
}

#[test]
fn a_deployment_needs_no_runtime_and_outlives_the_ones_it_was_used_in() {
    let token = Arc::new(());
    let http = Deployment::http(svc1_holding(&token), services::api::endpoints).unwrap();
    for round in ["one", "two"] {
        // One runtime after the other, each gone before the next one calls.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        assert_eq!(runtime.block_on(ask(&http, round)), format!("svc1_{round}"));
    }
    drop(http);
    assert_eq!(Arc::strong_count(&token), 1);
}

#[tokio::test]
async fn the_blocking_property_runner_reaches_the_server_from_a_blocked_test_runtime() {
    // This test's current-thread runtime is blocked while the property runs on a helper
    // thread; the server answers from its own thread regardless.
    let deployments = fidelity_and_http();
    let spec = Spec::default();
    Property::new(example_calls())
        .cases(8)
        .run_blocking(|call| same_outcome(&deployments, &spec, call));
}

#[tokio::test]
async fn a_service_without_endpoints_is_a_coded_error() {
    let err = Deployment::http(services::all(ServiceSet::builder()), |service: &str| {
        (service != svc1::NAME)
            .then(|| services::api::endpoints(service))
            .flatten()
    })
    .unwrap_err();
    assert_eq!(err.code(), nano_test::codes::BAD_USE);
    assert_eq!(
        err.message(),
        "service \"svc1\" has no HTTP endpoints; an HTTP deployment serves every service of the set"
    );
}

#[tokio::test]
async fn an_invalid_endpoint_or_a_set_that_does_not_build_is_a_coded_error() {
    let err = Deployment::http(svc1_holding(&Arc::new(())), |_: &str| {
        Some(vec![Endpoint::post::<svc1::Req>("no-slash")])
    })
    .unwrap_err();
    assert_eq!(err.code(), codes::INIT_FAILED);
    assert!(err.message().contains("must start with '/'"), "{err}");

    // svc2 without its dependencies.
    let err = Deployment::http(
        ServiceSet::builder().service(services::svc2::service()),
        services::api::endpoints,
    )
    .unwrap_err();
    assert_eq!(err.code(), codes::MISSING_DEPENDENCY);
}

#[tokio::test(start_paused = true)]
async fn a_test_with_paused_time_can_call_it() {
    // The HTTP calls run on the deployment's own runtime, on real time; this test's clock is
    // paused and would otherwise jump to the transport's timeout while the socket is read.
    let http = Deployment::http(
        services::all(ServiceSet::builder()),
        services::api::endpoints,
    )
    .unwrap();
    let resp = http
        .client(svc2::NAME)
        .unwrap()
        .call(&Ctx::new(), svc2::GetReq {})
        .await
        .unwrap();
    assert_eq!(resp.value, "svc2_svc3_svc4_getparam");
}

#[tokio::test]
async fn a_caller_that_stops_waiting_hangs_up_on_the_server() {
    let (started_tx, mut started) = mpsc::unbounded_channel();
    let (ended_tx, mut ended) = mpsc::unbounded_channel();
    let stall = request_fn(svc1::NAME, move |ctx: Ctx, _r: svc1::Req| {
        // Reports how the request's context ended, from a task of its own: the handler itself
        // is dropped when that happens.
        let ended_tx = ended_tx.clone();
        tokio::spawn(async move {
            ctx.done().await;
            let _ = ended_tx.send(ctx.is_cancelled());
        });
        let _ = started_tx.send(());
        std::future::pending::<Result<svc1::Resp, nano::NanoError>>()
    });
    let http = Deployment::http(
        ServiceSet::builder().service(stall),
        services::api::endpoints,
    )
    .unwrap();
    let client = http.client(svc1::NAME).unwrap();
    let call = tokio::spawn(async move { client.call(&Ctx::new(), svc1::Req::default()).await });
    bounded(started.recv()).await.unwrap();
    call.abort();
    // Hanging up takes a moment; the bound only has to stay below the transport's 30 s timeout,
    // which would end the request as well.
    let ended = tokio::time::timeout(Duration::from_secs(10), ended.recv()).await;
    assert_eq!(
        ended,
        Ok(Some(true)),
        "the server's request was not cancelled"
    );
}

/// Bounds a wait that would otherwise hang a broken test; it never decides a passing one.
async fn bounded<F: std::future::Future>(future: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(30), future)
        .await
        .expect("the operation hung")
}

#[tokio::test]
async fn a_recorded_body_that_does_not_decode_reaches_the_server_as_recorded() {
    use nano_test::scenario::Registry;
    use nano_test::{CallNode, CallOutcome, Delivery};

    let http = Deployment::http(
        services::all(ServiceSet::builder()),
        services::api::endpoints,
    )
    .unwrap();
    let registry = Registry::new().with_all(services::api::request_types());
    let node = |request: &str, body: serde_json::Value| CallNode {
        caller: "test".into(),
        service: "svc2".into(),
        request: request.into(),
        request_id: String::new(),
        body: body.into(),
        outcome: CallOutcome::Unfinished,
        calls: Vec::new(),
    };
    let bad = node("svc2.Req", serde_json::json!({"param": 42}));
    match http
        .send_recorded(&Ctx::new(), &bad, &registry)
        .await
        .unwrap()
    {
        // The server's decoding answered: its message names where in the body it failed.
        Delivery::Answered(CallOutcome::Error { code, message }) => {
            assert_eq!(code, codes::BAD_REQUEST);
            assert!(message.contains("line 1 column"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let fine = node("svc2.Req", serde_json::json!({"param": "x"}));
    assert_eq!(
        http.send_recorded(&Ctx::new(), &fine, &registry)
            .await
            .unwrap(),
        Delivery::Answered(CallOutcome::Response(
            serde_json::json!({"value": "svc2_svc1_x"}).into()
        ))
    );
    // svc2 declares no endpoint for svc1.Req: the HTTP client would refuse it unsent.
    let undeclared = node("svc1.Req", serde_json::json!({"param": "x"}));
    assert_eq!(
        http.send_recorded(&Ctx::new(), &undeclared, &registry)
            .await
            .unwrap(),
        Delivery::NotApplicable(
            "svc2 declares no HTTP endpoint for svc1.Req, so the HTTP client refuses it before \
             anything is sent"
                .into()
        )
    );
}
