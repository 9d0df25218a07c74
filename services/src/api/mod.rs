//! The request/response types of every example service, one module per service.
//!
//! Each module declares its service's API once, with [`nano::api!`]: the service name, and for
//! each request type its response type, its stable wire name and its HTTP route. The `Request`
//! impls, the HTTP endpoint tables the listeners serve and the clients call, the request types
//! recordings decode, the handler trait each service implements and the exported OpenAPI
//! document all come from that one declaration. These modules depend on nothing but `nano`,
//! `serde`, `schemars` and (for the endpoint table) `nano-http`, so a client program (or a service in another crate) can use a
//! service's API without its implementation. Field names and the "missing field decodes as
//! default, empty field is omitted" rules match the Go original's proto3 JSON, so recordings and
//! wire traffic agree with it.

pub mod svc1;
pub mod svc2;
pub mod svc3;
pub mod svc4;

use nano::Api;

/// Declares a message struct with one string field, serialised like a proto3 JSON message:
/// the field is omitted when empty and decodes as empty when missing.
macro_rules! string_message {
    ($(#[$meta:meta])* $name:ident { $(#[$field_meta:meta])* $field:ident }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
        #[serde(default)]
        pub struct $name {
            $(#[$field_meta])*
            #[serde(skip_serializing_if = "String::is_empty")]
            pub $field: String,
        }
    };
}
pub(crate) use string_message;

/// The declared APIs of the four example services.
pub static APIS: [&Api; 4] = [&svc1::API, &svc2::API, &svc3::API, &svc4::API];

/// The HTTP endpoints of the example service called `service`, derived from its declared API,
/// or `None` when it is not one of them. Its shape fits where an endpoint table is looked up by
/// service name, e.g. an HTTP deployment of a set in a test.
pub fn endpoints(service: &str) -> Option<Vec<nano_http::Endpoint>> {
    let api = APIS.iter().find(|api| api.name() == service)?;
    // The example APIs' routes are valid; a test checks every table.
    nano_http::Endpoint::table(api).ok()
}

/// Every request type of the example services, e.g. to decode recorded scenarios.
pub fn request_types() -> Vec<&'static nano::RequestType> {
    APIS.iter()
        .flat_map(|api| api.operations())
        .map(nano::Operation::request_type)
        .collect()
}
