//! The property "in-process with fidelity and the real transport give the same outcome".

use nano::{ServiceSet, ServiceSetBuilder};
use nano_test::nano_http::Endpoint;
use nano_test::property::{Calls, Property, same_outcome};
use nano_test::request_fn;
use nano_test::{Deployment, Spec};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
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

/// Looks a key up; its endpoint below wrongly declares it as a body-less `GET`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
struct Lookup {
    key: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
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
async fn what_only_the_wire_shows_fails_the_property_with_a_shrunk_input() {
    // A GET carries no body: over HTTP the key never arrives. The fidelity hook encodes the
    // request as JSON and cannot know about the endpoint table, so only the wire shows this.
    let deployments = [
        Deployment::with_fidelity(dict()).unwrap(),
        Deployment::http(dict(), |service: &str| {
            (service == "dict").then(|| vec![Endpoint::get::<Lookup>("/")])
        })
        .unwrap(),
    ];
    let spec = Spec::default();
    let calls = Calls::new()
        .with("dict", "[a-z]{0,8}".prop_map(|key| Lookup { key }))
        .into_strategy()
        .unwrap();
    let failure = Property::new(calls)
        .config(Config {
            cases: 64,
            // Reproducible, and writing nothing into the repository.
            failure_persistence: None,
            rng_seed: RngSeed::Fixed(7),
            ..Config::default()
        })
        .check(|call| same_outcome(&deployments, &spec, call))
        .await
        .unwrap_err();
    // The shrunk case: the shortest key that is not the default.
    assert_eq!(
        failure.minimal_input.as_deref(),
        Some(r#"dict <- dict.Lookup {"key":"a"}"#)
    );
    assert!(failure.shrink_steps > 0, "{failure}");
    assert!(
        failure
            .reason
            .contains(r#""http" differs from "fidelity":"#),
        "{failure}"
    );
    assert!(
        failure
            .reason
            .contains(r#"$.value: expected "found <a>", found "found <>""#),
        "{failure}"
    );
}
