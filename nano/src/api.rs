//! [`Api`]: a service's API declared once, and the [`api!`](crate::api) macro that declares it.

use std::any::Any;

use serde_json::Value;

use crate::message::RequestType;

/// The declared API of one service: its name and, for each request type it handles, the
/// [`Operation`] that says how the request travels.
///
/// An `Api` is plain data, written once per service by [`api!`](crate::api) (as a `static`) and
/// read by everything else: the set (a service built from a declaration is named after it and
/// dispatches exactly its operations), the transports (the HTTP endpoint table is derived from
/// the routes), recordings (the request types to decode) and the exported language-independent
/// description.
#[derive(Debug)]
pub struct Api {
    /// The name the service is registered and addressed under.
    pub name: &'static str,
    /// Every declared operation, in declaration order.
    pub operations: &'static [Operation],
}

/// One request type of an [`Api`]: the request (which names its response type and wire name),
/// its HTTP route if it has one, and optionally how to describe its messages as JSON Schemas.
#[derive(Debug)]
pub struct Operation {
    /// The request type, which names its response type and wire name.
    pub request: &'static RequestType,
    /// The HTTP route, or `None` when the operation is not reachable over HTTP.
    pub route: Option<Route>,
    /// The operation's documentation, from the doc comments on its declaration.
    pub doc: &'static str,
    /// Describes the request and response as JSON Schemas (see [`Operation::schemas`]).
    pub schemas: Option<SchemaFn>,
}

/// Fills a JSON Schema generator (passed as `&mut dyn Any` so the core does not depend on the
/// schema crate) with the request and response types, returning their two schemas.
pub type SchemaFn = fn(&mut dyn Any) -> Option<(Value, Value)>;

/// Where an operation is served over HTTP: `METHOD /<service><path>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// The HTTP method, upper case, e.g. `"POST"`.
    pub method: &'static str,
    /// The path below the service's prefix, starting with `/`.
    pub path: &'static str,
}

impl Api {
    /// The name the service is registered and addressed under.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Every declared operation, in declaration order.
    pub fn operations(&self) -> &'static [Operation] {
        self.operations
    }

    /// The operation of the request type with wire name `name`.
    pub fn operation(&self, name: &str) -> Option<&'static Operation> {
        self.operations.iter().find(|op| op.request.name() == name)
    }
}

impl Operation {
    /// The request type.
    pub fn request_type(&self) -> &'static RequestType {
        self.request
    }

    /// The HTTP route, or `None` when the operation is not reachable over HTTP.
    pub fn route(&self) -> Option<Route> {
        self.route
    }

    /// The operation's documentation, from the doc comments on its declaration.
    pub fn doc(&self) -> &'static str {
        self.doc
    }

    /// The JSON Schemas of the request and the response, made with `generator` (a
    /// `schemars::SchemaGenerator`, for an API declared with `schemas = schemars`).
    pub fn schemas(&self, generator: &mut dyn Any) -> Option<(Value, Value)> {
        self.schemas.and_then(|schemas| schemas(generator))
    }
}
