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

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
struct WhoCalls {}

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
struct Called {
    req_id: String,
    caller: String,
}

impl nano::Request for WhoCalls {
    type Response = Called;
    const NAME: &'static str = "ids.WhoCalls";
}

/// Answers with the request id and caller its context carries.
fn ids_service(builder: nano::ServiceSetBuilder) -> nano::ServiceSetBuilder {
    builder.service(nano_test::request_fn(
        "ids",
        |ctx: Ctx, _: WhoCalls| async move {
            Ok(Called {
                req_id: ctx.request_id().to_string(),
                caller: ctx.caller().unwrap_or_default().to_owned(),
            })
        },
    ))
}

#[tokio::test]
async fn request_ids_and_caller_names_are_refused_alike_in_process_and_over_http() {
    use nano_server::Listener;
    use nano_test::nano_http::{Endpoint, HttpListener, HttpTransport, Peers};
    let endpoints = || vec![Endpoint::post::<WhoCalls>("/")];
    let fidelity = TestSet::builder()
        .services(ids_service)
        .with_fidelity(nano_test::TransportFidelity::new().endpoints("ids", endpoints()))
        .build()
        .unwrap();
    // The same service behind a real listener, and a set that reaches it through a real client.
    let listener = HttpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .expose("ids", endpoints())
        .unwrap();
    let addr = listener.local_addr().to_string();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(nano_server::serve_until(
        ids_service(nano::ServiceSet::builder()).build().unwrap(),
        vec![listener.boxed()],
        async {
            let _ = stopped.await;
        },
    ));
    let remote = nano::ServiceSet::builder()
        .service(
            HttpTransport::new(Peers::new())
                .unwrap()
                .client_at("ids", &addr, endpoints())
                .unwrap(),
        )
        .build()
        .unwrap();
    // (request id, caller name, the code both must answer: "" for an answer)
    let long = "a".repeat(129);
    let cases = [
        ("abc-1", "svc2", ""),
        ("a b", "svc2", codes::BAD_REQUEST),
        ("x code=S-FAKE", "svc2", codes::BAD_REQUEST),
        ("abc", "two words", codes::BAD_REQUEST),
        ("caf\u{e9}", "svc2", codes::BAD_REQUEST),
        (long.as_str(), "svc2", codes::BAD_REQUEST),
        ("a\nb", "svc2", codes::ENCODE),
        ("a\u{7f}b", "svc2", codes::ENCODE),
        ("abc", "line\rbreak", codes::ENCODE),
    ];
    for (id, caller, code) in cases {
        let ctx = Ctx::with_request_id(id);
        let call = |set: &nano::ServiceSet| set.client(caller, "ids").unwrap();
        let predicted = call(fidelity.set()).call(&ctx, WhoCalls {}).await;
        let actual = call(&remote).call(&ctx, WhoCalls {}).await;
        let shown = |result: &Result<Called, NanoError>| match result {
            Ok(called) => (String::new(), format!("{called:?}")),
            // The client's S-ENCODE names the peer's address too; the listener's refusals read
            // alike.
            Err(err) if err.code() == codes::ENCODE => (err.code().to_owned(), String::new()),
            Err(err) => (err.code().to_owned(), err.message().to_owned()),
        };
        assert_eq!(shown(&predicted), shown(&actual), "{id:?} as {caller:?}");
        assert_eq!(shown(&actual).0, code, "{id:?} as {caller:?}: {actual:?}");
    }
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}
