//! The request/response types of every example service, one module per service.
//!
//! These modules depend on nothing but `nano`, `serde` and `nano-http`'s [`Endpoint`](nano_http::Endpoint) type, so a
//! client program (or a service in another crate) can use a service's API without its
//! implementation. Each module declares its service's HTTP endpoints once, in `endpoints()`; the
//! listeners and HTTP clients of the server executables both use that table. Field names and the
//! "missing field decodes as default, empty field is omitted" rules match the Go original's proto3
//! JSON, so recordings and wire traffic agree with it.

pub mod svc1;
pub mod svc2;
pub mod svc3;
pub mod svc4;

/// Declares a message struct with one string field, serialised like a proto3 JSON message:
/// the field is omitted when empty and decodes as empty when missing.
macro_rules! string_message {
    ($(#[$meta:meta])* $name:ident { $(#[$field_meta:meta])* $field:ident }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(default)]
        pub struct $name {
            $(#[$field_meta])*
            #[serde(skip_serializing_if = "String::is_empty")]
            pub $field: String,
        }
    };
}
pub(crate) use string_message;

/// The HTTP endpoints of the example service called `service` (its module's `endpoints()`), or
/// `None` when it is not one of them. Its shape fits where an endpoint table is looked up by
/// service name, e.g. an HTTP deployment of a set in a test.
pub fn endpoints(service: &str) -> Option<Vec<nano_http::Endpoint>> {
    match service {
        svc1::NAME => Some(svc1::endpoints()),
        svc2::NAME => Some(svc2::endpoints()),
        svc3::NAME => Some(svc3::endpoints()),
        svc4::NAME => Some(svc4::endpoints()),
        _ => None,
    }
}

/// Every request type of the example services, e.g. to decode recorded scenarios.
pub fn request_types() -> Vec<&'static nano::RequestType> {
    use nano::RequestType;
    vec![
        RequestType::of::<svc1::Req>(),
        RequestType::of::<svc2::Req>(),
        RequestType::of::<svc2::GetReq>(),
        RequestType::of::<svc3::Req>(),
        RequestType::of::<svc4::Req>(),
    ]
}
