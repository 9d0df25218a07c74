//! [`document`]: the OpenAPI 3.1 description of declared APIs, as the listener serves them.
//!
//! The document is derived from the same [`Api`] declarations the listener and the client use,
//! through [`Endpoint::table`], so what it describes (paths, methods, which requests carry a
//! body, which responses are empty) is what the wire does. It exists for tools in other
//! languages: a scenario names its root request by wire name (`svc2.GetReq`), and each operation
//! carries that name in `x-nano-wire-name` (and its service in `x-nano-service`), so a tool finds
//! the method and path without reading Rust code.

use std::collections::HashMap;

use http::Method;
use nano::{Api, NanoError, codes};
use schemars::SchemaGenerator;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

use crate::endpoint::Endpoint;
use crate::wire::{
    CLIENT_NAME_HEADER, DEADLINE_HEADER, HEALTH_CHECK_PATH, JSON_CONTENT_TYPE, REQ_ID_HEADER,
};

/// The OpenAPI version the document declares.
pub const OPENAPI_VERSION: &str = "3.1.0";

/// Where message schemas go in the document; every `$ref` to a message points below it.
const SCHEMAS_PATH: &str = "/components/schemas";

/// The OpenAPI 3.1 document of `apis`, titled `title` at document version `version`.
///
/// One path per route (`/<service><path>`, the method in lower case), plus
/// `GET`/`HEAD /health-check`. Each operation has:
///
/// - `operationId`: the wire name of its request type, and the extensions `x-nano-wire-name`
///   (the same) and `x-nano-service`, so that a tool can map a scenario's `request` to the
///   method and path;
/// - `summary` and `description` from the doc comments on the operation's declaration;
/// - the optional headers `X-Nano-Req-Id`, `X-Nano-Client-Name` and `X-Nano-Deadline-Ms`;
/// - a required `requestBody` (`application/json; charset=utf-8`) only when the endpoint takes a
///   body ([`Endpoint::has_body`]);
/// - `200` with the response schema, or with no content when the response type is `()`;
/// - the error responses the listener can answer on that endpoint: `400`, `404`, `413`, `415`
///   (body endpoints only) and `500`, each a `{"code","msg"}` body whose `code` is constrained to
///   the codes that status stands for (see [`status_for`](crate::status_for)).
///
/// The keys of every object are sorted, so the document's text (e.g. pretty-printed and checked
/// in) is the same in every build.
///
/// Message schemas are JSON Schema 2020-12 (schemars) under `#/components/schemas/`, named
/// `<service>.<type name>` so that equal type names of different services do not clash. An API
/// declared without `schemas = schemars` still exports, with `{}` (any JSON) as its message
/// schemas; so does one whose schemas were made with another major version of schemars than
/// this crate's, which cannot fill this crate's generator. Operations without a route are not
/// in the document: they cannot be reached over HTTP.
///
/// ```
/// mod greeter {
///     use serde::{Deserialize, Serialize};
///
///     #[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
///     #[serde(default)]
///     pub struct Greet { pub name: String }
///     #[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
///     #[serde(default)]
///     pub struct Greeting { pub text: String }
///
///     nano::api! {
///         service "greeter", schemas = schemars;
///         /// Says hello to `name`.
///         fn greet(Greet) -> Greeting = "greeter.Greet", POST "/";
///     }
/// }
///
/// let doc = nano_http::openapi::document(&[&greeter::API], "greeter", "1.0.0")?;
/// let post = &doc["paths"]["/greeter/"]["post"];
/// assert_eq!(post["x-nano-wire-name"], "greeter.Greet");
/// assert_eq!(post["description"], "Says hello to `name`.");
/// let body = &post["requestBody"]["content"]["application/json; charset=utf-8"]["schema"];
/// assert_eq!(body["$ref"], "#/components/schemas/greeter.Greet");
/// // `null` is accepted for every field: it decodes as the field's default.
/// assert_eq!(
///     doc["components"]["schemas"]["greeter.Greet"]["properties"]["name"]["type"],
///     serde_json::json!(["string", "null"])
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
///
/// `S-INIT-FAILED` when a route is invalid (as [`Endpoint::table`]), its method has no OpenAPI
/// field (OpenAPI 3.1 knows `get`, `put`, `post`, `delete`, `options`, `head`, `patch` and
/// `trace`), two operations share a method and path or a wire name, or a route collides with
/// `/health-check`.
pub fn document(apis: &[&'static Api], title: &str, version: &str) -> Result<Value, NanoError> {
    let mut paths = Map::new();
    paths.insert(HEALTH_CHECK_PATH.to_owned(), health_check());
    let mut schemas = Map::new();
    schemas.insert("ErrorBody".to_owned(), error_body_schema());
    let mut wire_names: HashMap<&str, &str> = HashMap::new();
    let mut tags = Vec::new();

    for api in apis {
        tags.push(json!({ "name": api.name() }));
        let prefix = component_prefix(api.name());
        let mut generator = SchemaSettings::draft2020_12()
            .with(|settings| settings.definitions_path = SCHEMAS_PATH.into())
            .into_generator();
        let mut operations = Vec::new();
        for endpoint in Endpoint::table(api)? {
            let name = endpoint.request_type().name();
            if let Some(other) = wire_names.insert(name, api.name()) {
                return Err(invalid(format!(
                    "wire name {name} is declared by service {other:?} and by service {:?}",
                    api.name()
                )));
            }
            let declared = api
                .operation(name)
                .ok_or_else(|| invalid(format!("{name} has an endpoint but no operation")))?;
            let (request, response) = declared
                .schemas(&mut generator as &mut dyn std::any::Any)
                .unwrap_or_else(|| (json!({}), json!({})));
            operations.push((endpoint, declared.doc(), request, response));
        }
        let renames = rename_definitions(&mut generator, &prefix, &mut schemas);
        for (endpoint, doc, mut request, mut response) in operations {
            rename_refs(&mut request, &renames);
            rename_refs(&mut response, &renames);
            let url = endpoint.url_path(api.name());
            if url == HEALTH_CHECK_PATH {
                return Err(invalid(format!(
                    "{} of service {:?} is routed at {HEALTH_CHECK_PATH}, which every listener answers itself",
                    endpoint.request_type().name(),
                    api.name()
                )));
            }
            let method = openapi_method(&endpoint, api.name())?;
            let item = paths
                .entry(url.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            let Value::Object(item) = item else {
                unreachable!("path items are objects")
            };
            if item.contains_key(method) {
                return Err(invalid(format!(
                    "service {:?} declares {} {url} twice",
                    api.name(),
                    endpoint.method()
                )));
            }
            item.insert(
                method.to_owned(),
                operation(api.name(), &endpoint, doc, request, response),
            );
        }
    }
    tags.push(json!({
        "name": "health",
        "description": "The health check every listener answers.",
    }));

    Ok(sorted(json!({
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": title,
            "version": version,
            "description": INFO_DESCRIPTION,
        },
        "tags": tags,
        "paths": paths,
        "components": {
            "schemas": schemas,
            "parameters": parameters(),
            "headers": {
                "RequestId": {
                    "description": "The request id of the request tree: the caller's, or a generated one.",
                    "schema": { "type": "string" },
                },
            },
            "responses": error_responses(),
        },
    })))
}

/// `value` with the keys of every object in sorted order, whether or not serde_json keeps
/// insertion order (its `preserve_order` feature, which another crate of a build may turn on),
/// so that the document's text is the same in every build.
fn sorted(value: Value) -> Value {
    match value {
        Value::Object(object) => {
            let mut entries: Vec<(String, Value)> = object.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

const INFO_DESCRIPTION: &str = "\
The HTTP/JSON protocol of nano services, generated from the services' API declarations.

Each service answers at `/<service><path>`. A request with a body is JSON with \
`Content-Type: application/json; charset=utf-8`; a request without one (e.g. `GET`) reaches the \
service as its type's defaults. Missing fields decode as defaults. Success is `200` with the \
response JSON, or an empty body when the operation has no response. An error is \
`{\"code\",\"msg\"}`: `C-…` codes are the caller's fault (`C-BAD-REQUEST` 400, `C-NOT-FOUND` 404, \
`C-METHOD-NOT-ALLOWED` 405, `C-PAYLOAD-TOO-LARGE` 413, `C-BAD-CONTENT-TYPE` 415, any other 400), \
everything else is 500. A method a path does not declare answers 405 with an `Allow` header, a \
path no service declares 404. Each operation's `x-nano-wire-name` is the wire name scenario \
files name its request by, `x-nano-service` the service that serves it.";

/// The prefix of a service's component names: its name, with every character a component name
/// cannot hold (OpenAPI allows `A-Z a-z 0-9 . - _`) replaced by `_`.
fn component_prefix(service: &str) -> String {
    service
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Moves the generator's definitions into `schemas` under `<prefix>.<name>`, returning the
/// renames (old reference → new reference).
fn rename_definitions(
    generator: &mut SchemaGenerator,
    prefix: &str,
    schemas: &mut Map<String, Value>,
) -> HashMap<String, String> {
    let definitions = generator.take_definitions(true);
    let renames: HashMap<String, String> = definitions
        .keys()
        .map(|name| {
            let new = format!("{prefix}.{}", component_prefix(name));
            (reference(&schemars_ref_name(name)), reference(&new))
        })
        .collect();
    for (name, mut schema) in definitions {
        rename_refs(&mut schema, &renames);
        nullable_fields(&mut schema);
        schemas.insert(format!("{prefix}.{}", component_prefix(&name)), schema);
    }
    renames
}

/// Lets every field of a message schema be `null`: nano decodes a `null` field as the field's
/// default (proto3 JSON, and the Go original), so a document that refused it would describe
/// less than the listener accepts.
fn nullable_fields(schema: &mut Value) {
    let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) else {
        return;
    };
    for field in properties.values_mut() {
        let Some(field) = field.as_object_mut() else {
            continue;
        };
        match field.get_mut("type") {
            Some(Value::String(kind)) if kind != "null" => {
                let kind = std::mem::take(kind);
                field.insert("type".into(), json!([kind, "null"]));
            }
            Some(Value::Array(kinds)) if !kinds.iter().any(|k| k == "null") => {
                kinds.push(json!("null"));
            }
            Some(_) => {}
            None => {
                let inner = Value::Object(std::mem::take(field));
                field.insert("anyOf".into(), json!([inner, { "type": "null" }]));
            }
        }
    }
}

/// A definition's name as schemars writes it in a `$ref`: JSON Pointer escapes, then
/// percent-encoding of what a URL fragment cannot hold.
fn schemars_ref_name(name: &str) -> String {
    let mut out = String::new();
    for byte in name.replace('~', "~0").replace('/', "~1").bytes() {
        match byte {
            b'!' | b'$' | b'&'..=b';' | b'=' | b'?'..=b'Z' | b'_' | b'a'..=b'z' | b'~' => {
                out.push(char::from(byte));
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

fn reference(name: &str) -> String {
    format!("#{SCHEMAS_PATH}/{name}")
}

/// Rewrites every `$ref` in `value` that `renames` knows.
fn rename_refs(value: &mut Value, renames: &HashMap<String, String>) {
    match value {
        Value::Object(object) => {
            for (key, value) in object.iter_mut() {
                if key == "$ref"
                    && let Value::String(target) = value
                    && let Some(new) = renames.get(target.as_str())
                {
                    *target = new.clone();
                } else {
                    rename_refs(value, renames);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| rename_refs(item, renames)),
        _ => {}
    }
}

fn openapi_method(endpoint: &Endpoint, service: &str) -> Result<&'static str, NanoError> {
    Ok(match endpoint.method() {
        Method::GET => "get",
        Method::PUT => "put",
        Method::POST => "post",
        Method::DELETE => "delete",
        Method::OPTIONS => "options",
        Method::HEAD => "head",
        Method::PATCH => "patch",
        Method::TRACE => "trace",
        other => {
            return Err(invalid(format!(
                "{} of service {service:?} uses method {other}, which OpenAPI 3.1 cannot describe",
                endpoint.request_type().name()
            )));
        }
    })
}

fn invalid(msg: String) -> NanoError {
    NanoError::new(codes::INIT_FAILED, msg)
}

/// The doc comment of a declaration as text: the one space after `///` removed from each line.
fn doc_text(doc: &str) -> String {
    let lines: Vec<&str> = doc
        .lines()
        .map(|line| line.strip_prefix(' ').unwrap_or(line).trim_end())
        .collect();
    lines.join("\n").trim().to_owned()
}

fn operation(
    service: &str,
    endpoint: &Endpoint,
    doc: &str,
    request: Value,
    response: Value,
) -> Value {
    let name = endpoint.request_type().name();
    let doc = doc_text(doc);
    let mut op = Map::new();
    op.insert("operationId".into(), name.into());
    if let Some(summary) = doc.lines().next().filter(|line| !line.is_empty()) {
        op.insert("summary".into(), summary.into());
    }
    if !doc.is_empty() {
        op.insert("description".into(), doc.into());
    }
    op.insert("tags".into(), json!([service]));
    op.insert(
        "parameters".into(),
        json!([
            { "$ref": "#/components/parameters/RequestId" },
            { "$ref": "#/components/parameters/ClientName" },
            { "$ref": "#/components/parameters/DeadlineMs" },
        ]),
    );
    if endpoint.has_body() {
        op.insert(
            "requestBody".into(),
            json!({
                "required": true,
                "content": { JSON_CONTENT_TYPE: { "schema": request } },
            }),
        );
    }
    let mut ok = json!({
        "description": if endpoint.has_response() {
            "The response."
        } else {
            "Done; the operation has no response, the body is empty."
        },
        "headers": { "X-Nano-Req-Id": { "$ref": "#/components/headers/RequestId" } },
    });
    if endpoint.has_response() {
        ok["content"] = json!({ JSON_CONTENT_TYPE: { "schema": response } });
    }
    let mut responses = Map::new();
    responses.insert("200".into(), ok);
    for (status, name) in [
        ("400", "BadRequest"),
        ("404", "NotFound"),
        ("413", "PayloadTooLarge"),
        ("415", "UnsupportedMediaType"),
        ("500", "ServerError"),
    ] {
        // Only a body endpoint checks the content type.
        if status == "415" && !endpoint.has_body() {
            continue;
        }
        responses.insert(
            status.into(),
            json!({ "$ref": format!("#/components/responses/{name}") }),
        );
    }
    op.insert("responses".into(), Value::Object(responses));
    op.insert("x-nano-service".into(), service.into());
    op.insert("x-nano-wire-name".into(), name.into());
    Value::Object(op)
}

fn health_check() -> Value {
    let answer = |method: &str| {
        json!({
            "operationId": format!("health-check.{method}"),
            "summary": "Answers 200 with an empty body while the server runs.",
            "tags": ["health"],
            "responses": {
                "200": { "description": "The server runs; the body is empty." },
            },
        })
    };
    json!({ "get": answer("get"), "head": answer("head") })
}

fn error_body_schema() -> Value {
    json!({
        "description": "An error: its code and its flattened message chain, outermost first, joined by ` :: `.",
        "type": "object",
        "properties": {
            "code": {
                "description": "The error code, left out for an uncoded error. Codes starting with `C-` are the caller's fault, everything else the server's.",
                "type": "string",
            },
            "msg": { "description": "The message.", "type": "string" },
        },
    })
}

/// An error response whose code matches `code` (a schema for the `code` property).
fn error_response(description: &str, code: Value, required: bool) -> Value {
    let mut constraint = json!({ "properties": { "code": code } });
    if required {
        constraint["required"] = json!(["code"]);
    }
    json!({
        "description": description,
        "headers": { "X-Nano-Req-Id": { "$ref": "#/components/headers/RequestId" } },
        "content": {
            JSON_CONTENT_TYPE: {
                "schema": {
                    "allOf": [{ "$ref": "#/components/schemas/ErrorBody" }, constraint],
                },
            },
        },
    })
}

fn error_responses() -> Value {
    json!({
        "BadRequest": error_response(
            "The request was refused: JSON that does not decode into the request type, a body on an operation that takes none, an invalid header, or another `C-…` code a service answered with.",
            json!({
                "type": "string",
                "pattern": "^C-",
                "not": { "enum": [
                    codes::NOT_FOUND,
                    codes::METHOD_NOT_ALLOWED,
                    codes::PAYLOAD_TOO_LARGE,
                    codes::BAD_CONTENT_TYPE,
                ] },
            }),
            true,
        ),
        "NotFound": error_response(
            "`C-NOT-FOUND`: the service found nothing for the request.",
            json!({ "const": codes::NOT_FOUND }),
            true,
        ),
        "MethodNotAllowed": error_response(
            "`C-METHOD-NOT-ALLOWED`: the path does not declare this method; `Allow` lists the ones it does.",
            json!({ "const": codes::METHOD_NOT_ALLOWED }),
            true,
        ),
        "PayloadTooLarge": error_response(
            "`C-PAYLOAD-TOO-LARGE`: the body is larger than the server's limit (1 MiB unless configured).",
            json!({ "const": codes::PAYLOAD_TOO_LARGE }),
            true,
        ),
        "UnsupportedMediaType": error_response(
            "`C-BAD-CONTENT-TYPE`: no `Content-Type`, a media type other than `application/json`, or a charset other than utf-8.",
            json!({ "const": codes::BAD_CONTENT_TYPE }),
            true,
        ),
        "ServerError": error_response(
            "A server-side error (any code not starting with `C-`, or none), e.g. `S-TIMEOUT` when the deadline passed or `S-UNAVAILABLE` when a dependency cannot be reached.",
            json!({ "type": "string", "not": { "pattern": "^C-" } }),
            false,
        ),
    })
}

fn parameters() -> Value {
    // What `is_valid_id` accepts; empty counts as absent.
    let id_pattern = format!("^[A-Za-z0-9._:-]{{0,{}}}$", crate::wire::MAX_ID_LEN);
    json!({
        "RequestId": {
            "name": "X-Nano-Req-Id",
            "in": "header",
            "required": false,
            "description": format!("The request id of the request tree, kept across every call it causes and answered in the response's `{REQ_ID_HEADER}` header; normally 32 lowercase hex characters. Generated when absent or empty; anything outside the id alphabet is refused with 400 `C-BAD-REQUEST`."),
            "schema": { "type": "string", "pattern": id_pattern },
        },
        "ClientName": {
            "name": "X-Nano-Client-Name",
            "in": "header",
            "required": false,
            "description": format!("The name of the calling service or client (`{CLIENT_NAME_HEADER}`); `http` when absent or empty; anything outside the id alphabet is refused with 400 `C-BAD-REQUEST`."),
            "schema": { "type": "string", "pattern": id_pattern },
        },
        "DeadlineMs": {
            "name": "X-Nano-Deadline-Ms",
            "in": "header",
            "required": false,
            "description": format!("The caller's remaining time budget in whole milliseconds (`{DEADLINE_HEADER}`). When it passes, the request tree is stopped and the answer is 500 with `S-TIMEOUT`."),
            "schema": { "type": "integer", "minimum": 0, "maximum": u64::MAX },
        },
    })
}

#[cfg(test)]
mod tests {
    // The declarations' types are `pub` as in an API module; these modules are private.
    #![allow(unreachable_pub)]

    use super::*;
    use serde::{Deserialize, Serialize};

    /// Messages of the APIs that declare no schemas.
    #[derive(Debug, Clone, Default, Serialize, Deserialize)]
    pub struct Ping {}
    #[derive(Debug, Clone, Default, Serialize, Deserialize)]
    pub struct Hidden {}
    #[derive(Debug, Clone, Default, Serialize, Deserialize)]
    pub struct Again {}

    mod plain {
        use super::{Hidden, Ping};
        nano::api! {
            service "plain";
            /// Pings.
            ///
            /// Answers nothing.
            fn ping(Ping) -> () = "plain.Ping", DELETE "/ping";
            fn hidden(Hidden) -> () = "plain.Hidden";
        }
    }

    #[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
    pub struct Item {
        pub id: u64,
    }

    /// Same type name as in `other`, which must not clash.
    #[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
    pub struct List {
        pub items: Vec<Item>,
    }

    mod typed {
        use super::{Item, List};
        nano::api! {
            service "typed", schemas = schemars;
            fn list(Item) -> List = "typed.List", POST "/list";
        }
    }

    mod other {
        use serde::{Deserialize, Serialize};
        #[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
        pub struct Item {
            pub name: String,
        }
        nano::api! {
            service "other", schemas = schemars;
            fn get(Item) -> Item = "other.Get", PUT "/";
        }
    }

    mod clash {
        use super::Again;
        nano::api! {
            service "clash";
            fn again(Again) -> () = "plain.Ping", POST "/";
        }
    }

    #[test]
    fn an_api_without_schemas_exports_with_any_json() {
        let doc = document(&[&plain::API], "t", "1").unwrap();
        let op = &doc["paths"]["/plain/ping"]["delete"];
        assert_eq!(op["operationId"], "plain.Ping");
        assert_eq!(op["summary"], "Pings.");
        assert_eq!(op["description"], "Pings.\n\nAnswers nothing.");
        // DELETE takes no body, and `()` answers none.
        assert!(op.get("requestBody").is_none(), "{op}");
        assert!(op["responses"]["200"].get("content").is_none(), "{op}");
        assert!(op["responses"].get("415").is_none(), "{op}");
        // The operation without a route is not described.
        assert_eq!(doc["paths"].as_object().unwrap().len(), 2, "{doc:#}");
    }

    #[test]
    fn messages_are_components_named_after_their_service() {
        let doc = document(&[&typed::API, &other::API], "t", "1").unwrap();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        let mut names: Vec<&str> = schemas.keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            ["ErrorBody", "other.Item", "typed.Item", "typed.List"]
        );
        // References between messages follow the rename.
        assert_eq!(
            schemas["typed.List"]["properties"]["items"]["items"]["$ref"],
            "#/components/schemas/typed.Item"
        );
        let put = &doc["paths"]["/other/"]["put"];
        assert_eq!(
            put["requestBody"]["content"][JSON_CONTENT_TYPE]["schema"]["$ref"],
            "#/components/schemas/other.Item"
        );
        assert_eq!(
            put["responses"]["200"]["content"][JSON_CONTENT_TYPE]["schema"]["$ref"],
            "#/components/schemas/other.Item"
        );
    }

    #[test]
    fn a_wire_name_declared_twice_is_refused() {
        let err = document(&[&plain::API, &clash::API], "t", "1").unwrap_err();
        assert_eq!(err.code(), codes::INIT_FAILED);
        assert!(err.to_string().contains("plain.Ping"), "{err}");
        assert!(err.to_string().contains("\"clash\""), "{err}");
    }
}
