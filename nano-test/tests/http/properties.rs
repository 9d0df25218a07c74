//! The property "in-process with fidelity and the real transport give the same outcome".

use std::time::Duration;

use nano::{Ctx, NanoError, ServiceSet, ServiceSetBuilder};
use nano_test::nano_http::Endpoint;
use nano_test::property::{Property, same_outcome};
use nano_test::{Deployment, Spec};
use nano_test::{TransportFidelity, request_fn};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestCaseError};
use serde::{Deserialize, Serialize};

pub(crate) use crate::calls::example_calls;

/// Fidelity first (the prediction), then the wire.
pub(crate) fn fidelity_and_http() -> [Deployment; 2] {
    let builder = || services::all(ServiceSet::builder());
    [
        Deployment::with_fidelity(builder()).unwrap(),
        Deployment::http(builder(), services::api::endpoints).unwrap(),
    ]
}

#[tokio::test]
async fn fidelity_and_http_give_the_same_outcome_for_generated_requests() {
    let deployments = fidelity_and_http();
    let spec = Spec::default();
    Property::new(example_calls())
        .cases(64)
        .run(|call| same_outcome(&deployments, &spec, call))
        .await;
}

/// Looks a key up; declaring it as a body-less `GET` would lose the key on the way.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Lookup {
    key: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Found {
    value: String,
}

impl nano::Request for Lookup {
    type Response = Found;
    const NAME: &'static str = "dict.Lookup";
}

fn dict() -> ServiceSetBuilder {
    ServiceSet::builder().service(request_fn("dict", |_ctx, r: Lookup| async move {
        Ok(Found {
            value: format!("found <{}>", r.key),
        })
    }))
}

#[tokio::test]
async fn a_body_less_endpoint_for_a_type_with_fields_is_refused_when_the_listener_is_built() {
    let err = Deployment::http(dict(), |service: &str| {
        (service == "dict").then(|| vec![Endpoint::get::<Lookup>("/")])
    })
    .unwrap_err();
    assert_eq!(err.code(), nano::codes::INIT_FAILED);
    assert!(
        err.to_string().contains("dict.Lookup must have no fields"),
        "{err}"
    );
}

/// One generated call of the differential property: what the request carries and what the
/// handler does with it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Probe {
    text: String,
    note: Option<String>,
    nested: serde_json::Value,
    /// 0 answers, 1 a coded error, 2 an uncoded error with a source chain, 3 an empty error,
    /// 4 answers slowly (see `SLOW_ANSWER`).
    outcome: u8,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Probed {
    text: String,
    note: String,
}

impl nano::Request for Probe {
    type Response = Probed;
    const NAME: &'static str = "probe.Probe";
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Ping {}

impl nano::Request for Ping {
    type Response = ();
    const NAME: &'static str = "probe.Ping";
}

/// A request type the probe handles but no endpoint carries.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Hidden {}

impl nano::Request for Hidden {
    type Response = ();
    const NAME: &'static str = "probe.Hidden";
}

fn probe_endpoints(service: &str) -> Option<Vec<Endpoint>> {
    (service == "probe").then(|| vec![Endpoint::post::<Probe>("/"), Endpoint::get::<Ping>("/")])
}

fn probe() -> ServiceSetBuilder {
    let service = nano_test::service_fn("probe", |ctx: Ctx, req: nano::AnyRequest| async move {
        if req.is::<Ping>() || req.is::<Hidden>() {
            return Ok(nano::AnyResponse::new(()));
        }
        let probe = req
            .downcast::<Probe>()
            .map_err(|_| NanoError::msg("unexpected"))?;
        let err = |e| Err::<nano::AnyResponse, _>(e);
        match probe.outcome {
            1 => err(NanoError::new(
                "C-NO-SUCH-TEXT",
                format!("no {}", probe.text),
            )),
            2 => err(NanoError::wrap(
                NanoError::wrap(std::io::Error::other("disk full"), "cannot store"),
                "probe failure",
            )),
            3 => err(NanoError::msg("")),
            outcome => {
                if outcome == 4 {
                    // Slow: a second past the caller's deadline when there is one.
                    let pause = ctx
                        .remaining()
                        .map_or(SLOW_ANSWER, |left| left + SLOW_ANSWER);
                    tokio::time::sleep(pause).await;
                }
                Ok(nano::AnyResponse::new(Probed {
                    text: probe.text,
                    note: probe.note.unwrap_or_default(),
                }))
            }
        }
    });
    ServiceSet::builder().service(service)
}

/// A caller's deadline, long enough for a body near the limit to cross loopback on a busy
/// machine, so that only the slow answer runs out of time.
const DEADLINE: Duration = Duration::from_secs(1);

/// How long the slow answer takes without a deadline, and how far past a deadline it answers
/// with one, so that no case sits on the boundary.
const SLOW_ANSWER: Duration = Duration::from_millis(300);

/// The generated calls: bodies of every kind and every handler outcome, with or without a
/// deadline ([`DEADLINE`]; the slow answer takes [`SLOW_ANSWER`]).
fn probe_calls() -> impl Strategy<Value = (u8, Probe, bool)> {
    let limit = nano_wire::DEFAULT_BODY_LIMIT;
    let text = prop_oneof![
        4 => any::<String>(),
        1 => Just(String::new()),
        // Around the body limit, the JSON's own 100-odd bytes included.
        1 => (limit - 160..limit + 40).prop_map(|n| "x".repeat(n)),
    ];
    let nested = prop_oneof![
        Just(serde_json::Value::Null),
        // Arrays nested around the wire's depth limit (the request object adds a level). Built
        // by hand: parsing them would stop at serde_json's own limit of 127 levels.
        (120usize..136).prop_map(|depth| {
            let mut value = serde_json::Value::Array(Vec::new());
            for _ in 1..depth {
                value = serde_json::Value::Array(vec![value]);
            }
            value
        }),
    ];
    let probe = (text, proptest::option::of("\\PC{0,8}"), nested, 0u8..5).prop_map(
        |(text, note, nested, outcome)| Probe {
            text,
            note,
            nested,
            outcome,
        },
    );
    (0u8..6, probe, any::<bool>())
}

/// The outcome of one call as the caller sees it, in a comparable form.
async fn outcome(deployment: &Deployment, kind: u8, probe: &Probe, deadline: bool) -> String {
    let client = deployment.client("probe").unwrap();
    let mut ctx = Ctx::new();
    if deadline {
        ctx = ctx.with_deadline(tokio::time::Instant::now() + DEADLINE);
    }
    let shown = |result: Result<String, NanoError>| match result {
        Ok(ok) => format!("ok {ok}"),
        Err(err) => format!("error {:?} {:?}", err.code(), err.to_string()),
    };
    match kind {
        0 => shown(client.call(&ctx, Ping {}).await.map(|()| "()".to_owned())),
        1 => shown(client.call(&ctx, Hidden {}).await.map(|()| "()".to_owned())),
        _ => shown(
            client
                .call(&ctx, probe.clone())
                .await
                .map(|probed| format!("{probed:?}")),
        ),
    }
}

async fn differential(
    deployments: &[Deployment; 2],
    (kind, probe, deadline): (u8, Probe, bool),
) -> Result<(), TestCaseError> {
    let fidelity = outcome(&deployments[0], kind, &probe, deadline).await;
    let http = outcome(&deployments[1], kind, &probe, deadline).await;
    if fidelity == http {
        Ok(())
    } else {
        let cut = |s: &str| s.chars().take(300).collect::<String>();
        Err(TestCaseError::fail(format!(
            "fidelity: {}\nhttp:     {}",
            cut(&fidelity),
            cut(&http)
        )))
    }
}

fn probe_deployments(fidelity: TransportFidelity) -> [Deployment; 2] {
    let fidelity = fidelity.endpoints("probe", probe_endpoints("probe").unwrap());
    let set = probe().hook(fidelity).build().unwrap();
    [
        Deployment::from_set("fidelity", set, "test"),
        Deployment::http(probe(), probe_endpoints).unwrap(),
    ]
}

#[test]
fn fidelity_and_http_agree_on_generated_bodies_and_outcomes() {
    let deployments = probe_deployments(TransportFidelity::new());
    Property::new(probe_calls())
        .config(Config {
            cases: 48,
            failure_persistence: None,
            ..Config::default()
        })
        .run_blocking(|case| {
            let deployments = deployments.clone();
            async move { differential(&deployments, case).await }
        });
}

#[test]
fn bypassing_the_shared_body_limit_fails_the_differential_property() {
    // The broken variant: the simulated listener skips the body-limit decision.
    let deployments = probe_deployments(TransportFidelity::new().body_limit(usize::MAX));
    let failure = Property::new(probe_calls())
        .config(Config {
            cases: 256,
            failure_persistence: None,
            rng_seed: RngSeed::Fixed(11),
            ..Config::default()
        })
        .check_blocking(|case| {
            let deployments = deployments.clone();
            async move { differential(&deployments, case).await }
        })
        .unwrap_err();
    assert!(failure.reason.contains("C-PAYLOAD-TOO-LARGE"), "{failure}");
}
