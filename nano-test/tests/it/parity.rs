//! Parity checks across deployments, and how differences are reported.

use nano::{Ctx, NanoError, ServiceSet, codes};
use nano_test::request_fn;
use nano_test::{CallOutcome, Deployment, ParityCheck, Spec};
use services::api::{svc1, svc2};

use crate::divergent::{Charge, Charged, billing_services};
use crate::panic_message;

fn example_deployments() -> Vec<Deployment> {
    vec![
        Deployment::in_process(services::all(ServiceSet::builder())).unwrap(),
        Deployment::with_fidelity(services::all(ServiceSet::builder())).unwrap(),
    ]
}

#[tokio::test]
async fn the_example_services_answer_the_same_in_process_and_with_fidelity() {
    let report = ParityCheck::new(example_deployments())
        .request(svc2::NAME, svc2::Req { param: "x".into() })
        .request(svc2::NAME, svc2::GetReq {})
        .request(svc2::NAME, svc1::Req::default())
        .request("nope", svc2::GetReq {})
        .run()
        .await
        .unwrap();
    report.assert_consistent();
    assert_eq!(report.cases.len(), 4);
    let case = &report.cases[0];
    assert_eq!(
        (case.service.as_str(), case.request.as_str()),
        ("svc2", "svc2.Req")
    );
    assert_eq!(case.outcomes[0].0, "in-process");
    assert_eq!(case.outcomes[1].0, "fidelity");
    assert_eq!(
        case.outcomes[1].1,
        CallOutcome::Response(serde_json::json!({"value": "svc2_svc1_x"}).into())
    );
    assert!(matches!(
        &report.cases[2].outcomes[0].1,
        CallOutcome::Error { code, .. } if code == codes::BAD_REQUEST_TYPE
    ));
    assert!(matches!(
        &report.cases[3].outcomes[1].1,
        CallOutcome::Error { code, .. } if code == codes::UNKNOWN_SERVICE
    ));
}

#[tokio::test]
async fn a_difference_in_outcome_is_reported_as_a_readable_diff() {
    let report = ParityCheck::new([
        Deployment::in_process(billing_services(ServiceSet::builder())).unwrap(),
        Deployment::with_fidelity(billing_services(ServiceSet::builder())).unwrap(),
    ])
    .request("billing", Charge { amount: 5 })
    .run()
    .await
    .unwrap();
    assert!(!report.is_consistent());
    let text = report.to_string();
    let expected = r#"parity check: 1 of 1 requests answered differently
billing.Charge {"amount":5} sent to service "billing":
  "fidelity" differs from "in-process":
    outcome of service "billing", request billing.Charge: 1 field differs
      $: expected {"response":{"note":"retry tomorrow"}}, found {"error":{"code":"S-ERROR","message":"quota failure :: quota check failed :: quota exceeded"}}
    --- expected
    +++ actual
    @@ -1,5 +1,6 @@
     {
    -  "response": {
    -    "note": "retry tomorrow"
    +  "error": {
    +    "code": "S-ERROR",
    +    "message": "quota failure :: quota check failed :: quota exceeded"
       }
     }
"#;
    assert_eq!(text, expected);
    let err = report.check().unwrap_err();
    assert_eq!(err.to_string(), expected.trim_end());
    let message = panic_message(|| report.assert_consistent());
    assert_eq!(message, expected.trim_end());
}

/// A deployment whose quota service words its error differently.
fn reworded() -> Deployment {
    let set = ServiceSet::builder()
        .service(request_fn("quota", |_ctx, _r: Charge| async move {
            Err::<Charged, _>(NanoError::internal("quota check broke"))
        }))
        .build()
        .unwrap();
    Deployment::new("reworded", move |service| set.client("test", service))
}

#[tokio::test]
async fn differences_in_error_message_alone_are_found_field_by_field() {
    let original = Deployment::with_fidelity(billing_services(ServiceSet::builder())).unwrap();
    let report = ParityCheck::new([original, reworded()])
        .request("quota", Charge { amount: 1 })
        .run()
        .await
        .unwrap();
    // Returned with `?` from a test, the harness prints the error's Debug form: the same report.
    let error = report.check().unwrap_err();
    assert_eq!(format!("{error:?}"), error.to_string());
    assert!(error.to_string().contains("quota check broke"), "{error}");
    let case = &report.cases[0];
    let mismatches = &case.differences[0].mismatches;
    assert_eq!(case.differences[0].deployment, "reworded");
    assert_eq!(mismatches.mismatches.len(), 1);
    assert_eq!(mismatches.mismatches[0].path, "$.message");
    let text = mismatches.to_string();
    assert!(
        text.starts_with("error of service \"quota\", request billing.Charge: 1 field differs\n"),
        "{text}"
    );
    assert!(
        text.contains("$.message: expected \"quota check failed :: quota exceeded\", found \"quota check broke\""),
        "{text}"
    );

    // The same spec rule that would keep the message out of a snapshot makes them agree.
    let report = ParityCheck::new([
        Deployment::with_fidelity(billing_services(ServiceSet::builder())).unwrap(),
        reworded(),
    ])
    .spec(Spec::new().ignore("message").unwrap())
    .request("quota", Charge { amount: 1 })
    .run()
    .await
    .unwrap();
    report.assert_consistent();
}

#[tokio::test]
async fn volatile_fields_do_not_count_as_differences() {
    #[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
    struct Made {
        id: String,
        name: String,
    }
    #[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
    struct Make {
        name: String,
    }
    impl nano::Request for Make {
        type Response = Made;
        const NAME: &'static str = "maker.Make";
    }
    let deployment = |name: &str| {
        let maker = request_fn("maker", |_ctx, r: Make| async move {
            Ok(Made {
                id: nano::RequestId::generate().to_string(),
                name: r.name,
            })
        });
        Deployment::from_set(
            name,
            ServiceSet::builder().service(maker).build().unwrap(),
            "test",
        )
    };
    let check = ParityCheck::new([deployment("a"), deployment("b")])
        .request("maker", Make { name: "x".into() });
    let report = check.run().await.unwrap();
    assert_eq!(
        report.cases[0].differences[0].mismatches.mismatches[0].path,
        "$.id"
    );
    let report = check
        .spec(Spec::new().volatile("id").unwrap())
        .run()
        .await
        .unwrap();
    report.assert_consistent();
}

#[tokio::test]
async fn a_parity_check_needs_two_deployments() {
    let err = ParityCheck::new(example_deployments().into_iter().take(1))
        .request(svc2::NAME, svc2::GetReq {})
        .run()
        .await
        .unwrap_err();
    assert_eq!(err.code(), nano_test::codes::BAD_USE);
    assert_eq!(
        err.message(),
        "a parity check needs at least two deployments, got 1"
    );
}

#[tokio::test]
async fn every_deployment_gets_the_same_request_id_and_deadline() {
    let echo = || {
        let svc = request_fn("echo", |ctx: Ctx, _r: svc2::GetReq| async move {
            Ok(svc2::GetResp {
                value: format!("{} {}", ctx.request_id(), ctx.deadline().is_some()),
            })
        });
        ServiceSet::builder().service(svc)
    };
    let root = Ctx::new().with_timeout(std::time::Duration::from_secs(9));
    let expected = format!("{} true", root.request_id());
    let report = ParityCheck::new([
        Deployment::in_process(echo()).unwrap(),
        Deployment::with_fidelity(echo()).unwrap(),
    ])
    .ctx(move || root.clone())
    .request("echo", svc2::GetReq {})
    .run()
    .await
    .unwrap();
    report.assert_consistent();
    assert_eq!(
        report.cases[0].outcomes[1].1,
        CallOutcome::Response(serde_json::json!({ "value": expected }).into())
    );
}
