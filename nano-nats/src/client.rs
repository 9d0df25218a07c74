//! [`NatsClient`]: the client side, a service that stands in for a remote one.

use std::collections::HashMap;
use std::fmt;

use async_nats::connection::State;
use async_nats::{HeaderMap, RequestErrorKind, Subject};
use bytes::Bytes;
use nano::{AnyRequest, Api, Ctx, ErrorBody, NanoError, Outcome, Service, codes};
use nano_wire::{Endpoint, nats};

use crate::protocol::{CLIENT_NAME_NAME, DEADLINE_NAME, ERROR_NAME, REQ_ID_NAME};
use crate::transport::NatsTransport;

/// A [`Service`] that forwards every request to a remote service over NATS request-reply, so the
/// calling service cannot tell it from the real one.
///
/// A request goes to `<prefix>.<service>.<wire name>` as JSON, with the request id
/// (`Nano-Req-Id`), the caller's name (`Nano-Client-Name`) and, when the caller has a deadline,
/// the remaining whole milliseconds (`Nano-Deadline-Ms`; the call is also limited to that time).
/// Whichever replica of the service the broker picks answers. Failures are coded as over HTTP and
/// never panic:
///
/// | what happened | code |
/// |---|---|
/// | request type the API does not declare | `C-BAD-REQUEST-TYPE` |
/// | request id or caller name that cannot be sent in a header | `S-ENCODE` |
/// | request larger than the broker's `max_payload`, headers included (refused unsent) | `C-PAYLOAD-TOO-LARGE` |
/// | not connected to the broker (e.g. while it restarts) | `S-UNAVAILABLE` |
/// | no replica of the service subscribed (no responders) | `S-UNAVAILABLE` |
/// | timeout or caller's deadline reached | `S-TIMEOUT` |
/// | reply that is not JSON of the response type, or larger than `max_response_bytes` | `S-BAD-RESPONSE` |
/// | error reply `{"code","msg"}` | that error |
///
/// Nothing is sent again: a request that reached the broker may have reached a handler.
///
/// Made by [`NatsTransport::api_client`]. Cloning shares the connection.
#[derive(Clone)]
pub struct NatsClient {
    transport: NatsTransport,
    api: &'static Api,
    routes: HashMap<&'static str, Route>,
}

#[derive(Clone)]
struct Route {
    /// Made once: a clone shares the bytes, where sending a `String` copies them on every call.
    subject: Subject,
    endpoint: Endpoint,
}

impl NatsClient {
    pub(crate) fn new(transport: NatsTransport, api: &'static Api) -> Result<Self, NanoError> {
        let mut routes = HashMap::new();
        for endpoint in nats::endpoints(api)? {
            let name = endpoint.request_type().name();
            routes.entry(name).or_insert_with(|| Route {
                subject: Subject::from(nats::subject(&transport.prefix, api.name(), name)),
                endpoint,
            });
        }
        Ok(NatsClient {
            transport,
            api,
            routes,
        })
    }

    /// The subject a request type is sent to, if the API declares it.
    pub fn subject(&self, wire_name: &str) -> Option<&str> {
        self.routes
            .get(wire_name)
            .map(|route| route.subject.as_str())
    }

    /// Sends a request of type `request` (a wire name the API declares) with the JSON `body`
    /// as it is, whether or not it decodes as that type, and returns the response JSON: what a
    /// client in another language sends, and how a recorded request is replayed over NATS.
    /// `caller` is sent as the caller's name (default: the context's caller). A response of
    /// type `()` is `null`. The request is checked and sent as a typed call's is.
    ///
    /// # Errors
    ///
    /// As a typed call: the remote service's error (a body that does not decode is
    /// `C-BAD-REQUEST` from the listener), `C-BAD-REQUEST-TYPE` for a request type the API does
    /// not declare, and the other failures of [`NatsClient`]; a reply that is not JSON is
    /// `S-BAD-RESPONSE`.
    pub async fn call_json(
        &self,
        ctx: &Ctx,
        caller: Option<&str>,
        request: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, NanoError> {
        let route = self
            .routes
            .get(request)
            .ok_or_else(|| NanoError::bad_request_type(request))?;
        let payload = body.to_string().into_bytes();
        let reply = self
            .exchange(ctx, caller.or(ctx.caller()), route, payload)
            .await?;
        if reply.is_empty() && !route.endpoint.has_response() {
            return Ok(serde_json::Value::Null);
        }
        serde_json::from_slice(&reply).map_err(|err| {
            NanoError::new(
                codes::BAD_RESPONSE,
                format!(
                    "{} answered {request} with a reply that is not JSON: {err}",
                    self.describe(route)
                ),
            )
        })
    }

    async fn send(&self, ctx: &Ctx, request: &AnyRequest) -> Outcome {
        let route = self
            .routes
            .get(request.name())
            .ok_or_else(|| NanoError::bad_request_type(request.name()))?;
        let payload = nano_wire::encode_request(&route.endpoint, request)?.unwrap_or_default();
        let reply = self.exchange(ctx, ctx.caller(), route, payload).await?;
        nano_wire::decode_response(self.name(), &route.endpoint, None, &reply)
    }

    /// Sends one request along `route` as `caller` and returns the payload of a successful
    /// reply: the header values and the size are checked before anything is sent, and one
    /// timer covers the whole exchange.
    async fn exchange(
        &self,
        ctx: &Ctx,
        caller: Option<&str>,
        route: &Route,
        payload: Vec<u8>,
    ) -> Result<Bytes, NanoError> {
        let request_id = ctx.request_id().as_str();
        nats::check_header_value(self.name(), "request id", request_id)?;
        if let Some(caller) = caller {
            nats::check_header_value(self.name(), "caller name", caller)?;
        }
        let mut timeout = self.transport.timeout;
        let mut deadline_is_limit = false;
        let mut deadline_ms = None;
        if let Some(remaining) = ctx.remaining() {
            let Some(millis) = nano_wire::deadline_millis(remaining) else {
                return Err(nano_wire::out_of_time(
                    caller.unwrap_or_default(),
                    self.name(),
                ));
            };
            deadline_ms = Some(millis);
            if remaining <= timeout {
                timeout = remaining;
                deadline_is_limit = true;
            }
        }
        // The broker refuses a message over its `max_payload`, headers included; the caller
        // learns it before anything is sent.
        let header_len = nats::request_header_len(request_id, caller, deadline_ms);
        let payload_len = payload.len();
        let max_payload = self.transport.nats.max_payload();
        nats::check_request_size(self.name(), header_len, payload_len, max_payload)?;
        let mut headers = HeaderMap::new();
        headers.insert(REQ_ID_NAME.clone(), request_id.to_owned());
        if let Some(caller) = caller {
            headers.insert(CLIENT_NAME_NAME.clone(), caller.to_owned());
        }
        if let Some(millis) = deadline_ms {
            headers.insert(DEADLINE_NAME.clone(), millis.to_string());
        }
        let timed_out = || {
            if deadline_is_limit {
                nano_wire::out_of_time(caller.unwrap_or_default(), self.name())
            } else {
                NanoError::timeout(format!("call to {} ran out of time", self.describe(route)))
            }
        };
        // While the connection is down, publishing would only queue the request until it is
        // back; the caller learns at once instead.
        if self.transport.nats.connection_state() != State::Connected {
            return Err(NanoError::unavailable(format!(
                "cannot call {}: not connected to the NATS broker at {}",
                self.describe(route),
                self.transport.url()
            )));
        }
        // One timer covers handing the request to the connection and waiting for the reply, so
        // the request is sent without async-nats's own.
        let sent = self.transport.nats.send_request(
            route.subject.clone(),
            async_nats::Request::new()
                .payload(Bytes::from(payload))
                .headers(headers)
                .timeout(None),
        );
        let reply = match tokio::time::timeout(timeout, sent).await {
            Err(_elapsed) => return Err(timed_out()),
            Ok(Err(err)) => {
                return Err(match err.kind() {
                    RequestErrorKind::TimedOut => timed_out(),
                    RequestErrorKind::NoResponders => NanoError::unavailable(format!(
                        "no server serves {} (no responders)",
                        self.describe(route)
                    )),
                    // Checked above; the broker's limit may have changed since.
                    RequestErrorKind::MaxPayloadExceeded => {
                        nats::request_too_large(self.name(), header_len + payload_len, max_payload)
                    }
                    RequestErrorKind::InvalidSubject => {
                        NanoError::wrap(err, format!("cannot send to {}", self.describe(route)))
                            .with_code(codes::ENCODE)
                    }
                    _ => NanoError::wrap(
                        err,
                        format!(
                            "the broker connection failed calling {}",
                            self.describe(route)
                        ),
                    )
                    .with_code(codes::UNAVAILABLE),
                });
            }
            Ok(Ok(reply)) => reply,
        };
        let bad = |what: String| {
            NanoError::new(
                codes::BAD_RESPONSE,
                format!("{} answered with {what}", self.describe(route)),
            )
        };
        if let Some(status) = reply.status {
            return Err(bad(format!("the broker status {status}")));
        }
        let limit = self.transport.max_response_bytes;
        if reply.payload.len() > limit {
            return Err(bad(format!("a reply larger than {limit} bytes")));
        }
        let is_error = reply
            .headers
            .as_ref()
            .and_then(|headers| headers.get(ERROR_NAME.clone()))
            .is_some_and(|value| value.as_str().eq_ignore_ascii_case("true"));
        if is_error {
            return Err(serde_json::from_slice::<ErrorBody>(&reply.payload)
                .ok()
                .and_then(nano_wire::error_from_body)
                .unwrap_or_else(|| bad("an error reply that is not an error body".to_owned())));
        }
        Ok(reply.payload)
    }

    fn describe(&self, route: &Route) -> String {
        format!(
            "service {:?} at NATS subject {}",
            self.name(),
            route.subject
        )
    }
}

impl Service for NatsClient {
    fn name(&self) -> &str {
        self.api.name()
    }

    fn api(&self) -> Option<&'static Api> {
        Some(self.api)
    }

    async fn handle(&self, ctx: Ctx, request: AnyRequest) -> Outcome {
        self.send(&ctx, &request).await
    }
}

impl fmt::Debug for NatsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut subjects: Vec<&str> = self.routes.values().map(|r| r.subject.as_str()).collect();
        subjects.sort_unstable();
        f.debug_struct("NatsClient")
            .field("name", &self.name())
            .field("subjects", &subjects)
            .field("transport", &self.transport)
            .finish()
    }
}
