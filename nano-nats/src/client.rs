//! [`NatsClient`]: the client side, a service that stands in for a remote one.

use std::collections::HashMap;
use std::fmt;

use async_nats::connection::State;
use async_nats::{HeaderMap, RequestErrorKind, Subject};
use bytes::Bytes;
use nano::{AnyRequest, Api, Ctx, ErrorBody, NanoError, Outcome, Service, codes};
use nano_wire::Endpoint;

use crate::protocol::{
    CLIENT_NAME_NAME, DEADLINE_NAME, ERROR_NAME, REQ_ID_NAME, check_subject_part, fits_header,
    subject,
};
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
/// | request larger than the broker's `max_payload` | `C-PAYLOAD-TOO-LARGE` |
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
        check_subject_part("service name", api.name())?;
        let mut routes = HashMap::new();
        for operation in api.operations() {
            let request = operation.request_type();
            check_subject_part("wire name", request.name())?;
            routes.entry(request.name()).or_insert_with(|| Route {
                subject: Subject::from(subject(&transport.prefix, api.name(), request.name())),
                endpoint: Endpoint::assumed(request),
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

    async fn send(&self, ctx: &Ctx, request: &AnyRequest) -> Outcome {
        let route = self
            .routes
            .get(request.name())
            .ok_or_else(|| NanoError::bad_request_type(request.name()))?;
        let payload = nano_wire::encode_request(&route.endpoint, request)?.unwrap_or_default();
        let caller = ctx.caller();
        let mut headers = HeaderMap::new();
        headers.insert(
            REQ_ID_NAME.clone(),
            self.header_value(ctx.request_id().as_str(), "request id")?,
        );
        if let Some(caller) = caller {
            headers.insert(
                CLIENT_NAME_NAME.clone(),
                self.header_value(caller, "caller name")?,
            );
        }
        let mut timeout = self.transport.timeout;
        let mut deadline_is_limit = false;
        if let Some(remaining) = ctx.remaining() {
            let Some(millis) = nano_wire::deadline_millis(remaining) else {
                return Err(nano_wire::out_of_time(
                    caller.unwrap_or_default(),
                    self.name(),
                ));
            };
            headers.insert(DEADLINE_NAME.clone(), millis.to_string());
            if remaining <= timeout {
                timeout = remaining;
                deadline_is_limit = true;
            }
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
                    RequestErrorKind::MaxPayloadExceeded => NanoError::wrap(
                        err,
                        format!(
                            "the request to {} is larger than the broker accepts",
                            self.describe(route)
                        ),
                    )
                    .with_code(codes::PAYLOAD_TOO_LARGE),
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
        nano_wire::decode_response(self.name(), &route.endpoint, None, &reply.payload)
    }

    /// A header value from text a caller chose (a request id, a service name).
    fn header_value(&self, text: &str, what: &str) -> Result<String, NanoError> {
        if fits_header(text) {
            Ok(text.to_owned())
        } else {
            Err(NanoError::new(
                codes::ENCODE,
                format!(
                    "cannot build the request to service {:?}: the {what} {text:?} cannot be sent in a header",
                    self.name()
                ),
            ))
        }
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
