//! The transport-fidelity hook: what crosses the simulated wire, and the divergences it catches.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use nano::{AnyResponse, Cancellation, Ctx, NanoError, Request, Service, ServiceSet, codes};
use nano_test::{TestSet, TransportFidelity};
use nano_test::{request_fn, service_fn};
use serde::{Deserialize, Serialize};
use services::api::svc1;

use crate::divergent::{Charge, Charged, QuotaExceeded, Transfer, bank, billing_services};

#[tokio::test]
async fn downcasting_a_dependency_error_passes_in_process_and_fails_with_fidelity() {
    let in_process = TestSet::builder()
        .services(billing_services)
        .build()
        .unwrap();
    let resp = in_process
        .call("billing", Charge { amount: 5 })
        .await
        .unwrap();
    assert_eq!(resp.note, "retry tomorrow");

    let over_the_wire = TestSet::builder()
        .services(billing_services)
        .fidelity()
        .build()
        .unwrap();
    let err = over_the_wire
        .call("billing", Charge { amount: 5 })
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::SERVER_ERROR);
    assert_eq!(
        err.to_string(),
        "quota failure :: quota check failed :: quota exceeded"
    );
    // The caller of billing got a flat error too: nothing left to downcast.
    assert!(err.find_source::<QuotaExceeded>().is_none());
    assert!(std::error::Error::source(&err).is_none());
}

#[tokio::test]
async fn a_field_skipped_by_serde_passes_in_process_and_fails_with_fidelity() {
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

    let over_the_wire = TestSet::builder()
        .service(bank())
        .fidelity()
        .build()
        .unwrap();
    let err = over_the_wire.call("bank", transfer).await.unwrap_err();
    assert_eq!(err.code(), codes::BAD_REQUEST);
    assert_eq!(err.message(), "transfer without a currency");
}

/// A request whose value JSON cannot carry: serde_json writes NaN as `null`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Measure {
    value: f64,
}

impl Request for Measure {
    type Response = Charged;
    const NAME: &'static str = "meter.Measure";
}

#[tokio::test]
async fn a_lossy_value_passes_in_process_and_arrives_changed_with_fidelity() {
    let meter = || {
        request_fn("meter", |_ctx, r: Measure| async move {
            Ok(Charged {
                note: format!("{}", r.value),
            })
        })
    };
    let nan = Measure { value: f64::NAN };
    let in_process = TestSet::builder().service(meter()).build().unwrap();
    assert_eq!(
        in_process.call("meter", nan.clone()).await.unwrap().note,
        "NaN"
    );

    // JSON has no NaN: serde_json writes `null`, which the far side decodes as the default,
    // exactly as over the wire.
    let over_the_wire = TestSet::builder()
        .service(meter())
        .fidelity()
        .build()
        .unwrap();
    assert_eq!(over_the_wire.call("meter", nan).await.unwrap().note, "0");
}

/// What a handler saw of its context.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Seen {
    request_id: String,
    caller: Option<String>,
    has_deadline: bool,
    user: Option<String>,
    has_cancellation: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Look {}

impl Request for Look {
    type Response = Seen;
    const NAME: &'static str = "probe.Look";
}

fn probe() -> impl Service {
    request_fn("probe", |ctx: Ctx, _r: Look| async move {
        Ok(Seen {
            request_id: ctx.request_id().to_string(),
            caller: ctx.caller().map(str::to_owned),
            has_deadline: ctx.deadline().is_some(),
            user: ctx.metadata("user").map(str::to_owned),
            has_cancellation: ctx.cancellation().is_some(),
        })
    })
}

#[tokio::test]
async fn only_request_id_caller_and_deadline_cross_the_wire() {
    let ctx = Ctx::with_request_id("00112233445566778899aabbccddeeff")
        .with_timeout(Duration::from_secs(30))
        .with_metadata("user", "ada");
    let in_process = TestSet::builder().service(probe()).build().unwrap();
    let seen = in_process.call_with(&ctx, "probe", Look {}).await.unwrap();
    assert_eq!(seen.user.as_deref(), Some("ada"));
    assert!(!seen.has_cancellation);

    let over_the_wire = TestSet::builder()
        .service(probe())
        .fidelity()
        .build()
        .unwrap();
    let seen = over_the_wire
        .call_with(&ctx, "probe", Look {})
        .await
        .unwrap();
    assert_eq!(
        seen,
        Seen {
            request_id: "00112233445566778899aabbccddeeff".into(),
            caller: Some("test".into()),
            has_deadline: true,
            user: None,
            // Like a listener's per-connection cancellation.
            has_cancellation: true,
        }
    );

    let with_header = TestSet::builder()
        .service(probe())
        .with_fidelity(
            TransportFidelity::new()
                .keep_metadata("user")
                .keep_metadata("absent"),
        )
        .build()
        .unwrap();
    let seen = with_header.call_with(&ctx, "probe", Look {}).await.unwrap();
    assert_eq!(seen.user.as_deref(), Some("ada"));
}

#[tokio::test(start_paused = true)]
async fn the_callee_is_cancelled_when_its_caller_stops_waiting_and_not_after_success() {
    let seen: Arc<Mutex<Vec<Cancellation>>> = Arc::default();
    let slow = {
        let seen = Arc::clone(&seen);
        request_fn("slow", move |ctx: Ctx, r: Look| {
            let seen = Arc::clone(&seen);
            async move {
                seen.lock().unwrap().extend(ctx.cancellation().cloned());
                if r == Look::default() && ctx.deadline().is_some() {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                }
                Ok(Seen::default())
            }
        })
    };
    let t = TestSet::builder().service(slow).fidelity().build().unwrap();

    t.call("slow", Look {}).await.unwrap();
    let ctx = Ctx::new().with_timeout(Duration::from_secs(1));
    let err = t.call_with(&ctx, "slow", Look {}).await.unwrap_err();
    assert_eq!(err.code(), codes::TIMEOUT);

    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    assert!(
        !seen[0].is_cancelled(),
        "a completed call does not hang up on its callee"
    );
    assert!(
        seen[1].is_cancelled(),
        "a caller that gives up hangs up on its callee"
    );
}

#[tokio::test]
async fn errors_cross_as_code_and_flattened_message_only() {
    let failing = request_fn("failing", |_ctx, r: Look| async move {
        let _ = r;
        let io = std::io::Error::other("disk full");
        Err::<Seen, _>(
            NanoError::wrap(NanoError::wrap(io, "write failed"), "cannot save")
                .with_code("S-STORAGE"),
        )
    });
    let uncoded = request_fn("uncoded", |_ctx, _r: Look| async move {
        Err::<Seen, _>(NanoError::msg("plain failure"))
    });
    let t = TestSet::builder()
        .service(failing)
        .service(uncoded)
        .fidelity()
        .build()
        .unwrap();
    let err = t.call("failing", Look {}).await.unwrap_err();
    assert_eq!(err.code(), "S-STORAGE");
    assert_eq!(err.message(), "cannot save :: write failed :: disk full");
    assert!(err.find_source::<std::io::Error>().is_none());
    let err = t.call("uncoded", Look {}).await.unwrap_err();
    assert_eq!((err.code(), err.message()), ("", "plain failure"));
}

#[tokio::test]
async fn a_response_that_does_not_decode_as_the_declared_type_is_a_bad_response() {
    // Answers svc1.Req with a number instead of an svc1.Resp object.
    let confused = || {
        service_fn(svc1::NAME, |_ctx, _req| async move {
            Ok(AnyResponse::new(42_u32))
        })
    };
    let in_process = ServiceSet::builder().service(confused()).build().unwrap();
    let err = in_process
        .client("test", svc1::NAME)
        .unwrap()
        .call(&Ctx::new(), svc1::Req::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::BAD_RESPONSE);

    let t = TestSet::builder()
        .service(confused())
        .fidelity()
        .build()
        .unwrap();
    // Even the type-erased call, which in-process would hand back the number, gets an error.
    let err = t
        .call_any(
            &Ctx::new(),
            svc1::NAME,
            nano::AnyRequest::new(svc1::Req::default()),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::BAD_RESPONSE);
    assert!(
        err.message()
            .starts_with("service \"svc1\" answered svc1.Req with an unusable response"),
        "{err}"
    );
}

/// A request that cannot be encoded at all.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Unencodable {
    #[serde(serialize_with = "refuse")]
    secret: String,
}

fn refuse<S: serde::Serializer>(_: &str, _: S) -> Result<S::Ok, S::Error> {
    Err(serde::ser::Error::custom("secrets do not serialise"))
}

impl Request for Unencodable {
    type Response = Charged;
    const NAME: &'static str = "vault.Unencodable";
}

#[tokio::test]
async fn a_request_that_does_not_encode_fails_on_the_callers_side() {
    let vault = request_fn("vault", |_ctx, _r: Unencodable| async move {
        Ok(Charged::default())
    });
    let t = TestSet::builder()
        .service(vault)
        .fidelity()
        .build()
        .unwrap();
    let err = t.call("vault", Unencodable::default()).await.unwrap_err();
    assert_eq!(err.code(), codes::ENCODE);
    assert!(err.message().contains("secrets do not serialise"), "{err}");
}

#[tokio::test]
async fn the_example_services_behave_the_same_with_fidelity() {
    let t = TestSet::builder()
        .services(services::all)
        .fidelity()
        .build()
        .unwrap();
    let resp = t
        .call("svc2", services::api::svc2::Req { param: "x".into() })
        .await
        .unwrap();
    assert_eq!(resp.value, "svc2_svc1_x");
    let resp = t
        .call("svc2", services::api::svc2::GetReq {})
        .await
        .unwrap();
    assert_eq!(resp.value, "svc2_svc3_svc4_getparam");
}
