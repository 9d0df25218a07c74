//! The toolkit against the real HTTP transport: HTTP deployments and their lifetime, parity
//! across in-process, fidelity and the wire, properties over the wire, and the divergences the
//! fidelity hook catches, caught by the wire the same way.

#[path = "../common/calls.rs"]
mod calls;
mod deployment;
#[path = "../common/divergent.rs"]
mod divergent;
mod parity;
mod properties;
mod wire;

use nano::ServiceSetBuilder;
use nano_test::Deployment;
use nano_test::nano_http::Endpoint;

use crate::divergent::{Charge, Transfer};

/// The endpoint tables of the services in [`divergent`].
fn divergent_endpoints(service: &str) -> Option<Vec<Endpoint>> {
    match service {
        "billing" | "quota" => Some(vec![Endpoint::post::<Charge>("/")]),
        "bank" => Some(vec![Endpoint::post::<Transfer>("/")]),
        _ => None,
    }
}

/// The billing example and the bank, in one set.
fn divergent_services(builder: ServiceSetBuilder) -> ServiceSetBuilder {
    divergent::billing_services(builder).service(divergent::bank())
}

/// The same services in-process, with fidelity and behind HTTP, in that order.
fn three_ways(services: impl Fn(ServiceSetBuilder) -> ServiceSetBuilder) -> [Deployment; 3] {
    let builder = || services(nano::ServiceSet::builder());
    [
        Deployment::in_process(builder()).unwrap(),
        Deployment::with_fidelity(builder()).unwrap(),
        Deployment::http(builder(), |service: &str| {
            services::api::endpoints(service).or_else(|| divergent_endpoints(service))
        })
        .unwrap(),
    ]
}
