//! The divergences of the fidelity tests, over the real transport: what passes in-process fails
//! over HTTP, with the very error the fidelity hook predicts.

use nano::{Ctx, NanoError, codes};
use nano_test::{Deployment, TestSet};

use crate::divergent::{Charge, QuotaExceeded, Transfer, bank, billing_services};
use crate::divergent_endpoints;

/// The error a request gets from the fidelity hook, and over HTTP.
async fn fidelity_and_wire<R: nano::Request>(
    services: impl Fn(nano::ServiceSetBuilder) -> nano::ServiceSetBuilder,
    service: &str,
    request: R,
) -> (NanoError, NanoError) {
    let fidelity = TestSet::builder()
        .services(&services)
        .fidelity()
        .build()
        .unwrap();
    let predicted = fidelity.call(service, request.clone()).await.unwrap_err();
    let http =
        Deployment::http(services(nano::ServiceSet::builder()), divergent_endpoints).unwrap();
    let actual = http
        .client(service)
        .unwrap()
        .call(&Ctx::new(), request)
        .await
        .unwrap_err();
    (predicted, actual)
}

#[tokio::test]
async fn downcasting_a_dependency_error_passes_in_process_and_fails_over_http_as_predicted() {
    let in_process = TestSet::builder()
        .services(billing_services)
        .build()
        .unwrap();
    let resp = in_process
        .call("billing", Charge { amount: 5 })
        .await
        .unwrap();
    assert_eq!(resp.note, "retry tomorrow");

    let (predicted, actual) =
        fidelity_and_wire(billing_services, "billing", Charge { amount: 5 }).await;
    // billing reached quota over HTTP: nothing was left to downcast.
    assert_eq!(actual.code(), codes::SERVER_ERROR);
    assert_eq!(
        actual.message(),
        "quota failure :: quota check failed :: quota exceeded"
    );
    assert!(actual.find_source::<QuotaExceeded>().is_none());
    assert_eq!(
        (predicted.code(), predicted.message()),
        (actual.code(), actual.message())
    );
}

#[tokio::test]
async fn a_field_skipped_by_serde_passes_in_process_and_fails_over_http_as_predicted() {
    let transfer = Transfer {
        amount: 3,
        currency: "EUR".into(),
    };
    let in_process = TestSet::builder().service(bank()).build().unwrap();
    assert_eq!(
        in_process
            .call("bank", transfer.clone())
            .await
            .unwrap()
            .note,
        "3 EUR"
    );

    let (predicted, actual) = fidelity_and_wire(
        |builder: nano::ServiceSetBuilder| builder.service(bank()),
        "bank",
        transfer,
    )
    .await;
    assert_eq!(actual.code(), codes::BAD_REQUEST);
    assert_eq!(actual.message(), "transfer without a currency");
    assert_eq!(
        (predicted.code(), predicted.message()),
        (actual.code(), actual.message())
    );
}
