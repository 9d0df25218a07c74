//! Parity checks across in-process, fidelity and HTTP deployments.

use nano::codes;
use nano_test::{CallOutcome, ParityCheck};
use services::api::{svc1, svc2};

use crate::divergent::{Charge, Transfer};
use crate::{divergent_services, three_ways};

#[tokio::test]
async fn in_process_fidelity_and_http_agree_on_the_example_services() {
    let report = ParityCheck::new(three_ways(services::all))
        .request(svc2::NAME, svc2::Req { param: "x".into() })
        .request(svc2::NAME, svc2::GetReq {})
        // A request type svc2 does not handle; over HTTP its client has no endpoint for it.
        .request(svc2::NAME, svc1::Req { param: "y".into() })
        .request("nope", svc2::GetReq {})
        .run()
        .await
        .unwrap();
    report.assert_consistent();
    let names: Vec<&str> = report.cases[0]
        .outcomes
        .iter()
        .map(|(name, _)| name.as_str())
        .collect();
    assert_eq!(names, ["in-process", "fidelity", "http"]);
    let over_http = |case: usize| report.cases[case].outcomes[2].1.clone();
    assert_eq!(
        over_http(0),
        CallOutcome::Response(serde_json::json!({"value": "svc2_svc1_x"}).into())
    );
    assert_eq!(
        over_http(1),
        CallOutcome::Response(serde_json::json!({"value": "svc2_svc3_svc4_getparam"}).into())
    );
    assert_eq!(
        over_http(2),
        CallOutcome::Error {
            code: codes::BAD_REQUEST_TYPE.into(),
            message: "bad request type: svc1.Req".into(),
        }
    );
    assert!(matches!(
        over_http(3),
        CallOutcome::Error { code, .. } if code == codes::UNKNOWN_SERVICE
    ));
}

#[tokio::test]
async fn where_in_process_differs_from_the_wire_fidelity_predicts_the_wire() {
    let [in_process, fidelity, http] = three_ways(divergent_services);
    let transfer = Transfer {
        amount: 3,
        currency: "EUR".into(),
    };
    let report = ParityCheck::new([in_process, fidelity.clone(), http.clone()])
        .request("billing", Charge { amount: 5 })
        .request("bank", transfer.clone())
        .run()
        .await
        .unwrap();
    let billing_diff = r#"    outcome of service "billing", request billing.Charge: 1 field differs
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
    let bank_diff = r#"    outcome of service "bank", request bank.Transfer: 1 field differs
      $: expected {"response":{"note":"3 EUR"}}, found {"error":{"code":"C-BAD-REQUEST","message":"transfer without a currency"}}
    --- expected
    +++ actual
    @@ -1,5 +1,6 @@
     {
    -  "response": {
    -    "note": "3 EUR"
    +  "error": {
    +    "code": "C-BAD-REQUEST",
    +    "message": "transfer without a currency"
       }
     }
"#;
    // Fidelity and HTTP differ from in-process, both with the same diff.
    let expected = format!(
        "parity check: 2 of 2 requests answered differently\n\
         billing.Charge {{\"amount\":5}} sent to service \"billing\":\n  \
         \"fidelity\" differs from \"in-process\":\n{billing_diff}  \
         \"http\" differs from \"in-process\":\n{billing_diff}\
         bank.Transfer {{\"amount\":3}} sent to service \"bank\":\n  \
         \"fidelity\" differs from \"in-process\":\n{bank_diff}  \
         \"http\" differs from \"in-process\":\n{bank_diff}"
    );
    assert_eq!(report.to_string(), expected);

    // With fidelity as the baseline, the wire has nothing new to say.
    let report = ParityCheck::new([fidelity, http])
        .request("billing", Charge { amount: 5 })
        .request("bank", transfer)
        .run()
        .await
        .unwrap();
    report.assert_consistent();
    assert_eq!(
        report.to_string(),
        "parity check: 0 of 2 requests answered differently\n"
    );
}
