//! [`TransportFidelity`]: a client hook that makes in-process calls behave as if a transport sat
//! between caller and callee.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use nano::{
    AnyRequest, Api, Cancellation, ClientHook, Ctx, Edge, ErrorBody, NanoError, Outcome, Service,
    ServiceSet, SharedService,
};
use nano_wire::Endpoint;
use nano_wire::nats::{self, Reply};

/// Makes every client of a set behave as if a transport sat between caller and callee: the
/// per-set form of the Go original's hooked `NewClient`.
///
/// Every decision on the way is the HTTP transport's own: the hook calls the same functions of
/// `nano-wire` that `nano-http`'s listener and client call, so the two cannot drift. With the
/// hook on, each call:
///
/// - finds the callee's endpoint for the request type in the callee's endpoint table (from its
///   declared API, see [`learn_apis`](TransportFidelity::learn_apis), or given with
///   [`api`](TransportFidelity::api) / [`endpoints`](TransportFidelity::endpoints)); a request
///   type without one is `C-BAD-REQUEST-TYPE`, as the HTTP client answers. A callee without a
///   known table is assumed to take every request type as `POST /` with a body;
/// - sends the request as the endpoint sends it — a JSON body, or nothing on a body-less endpoint
///   — holds the body to the [limit](TransportFidelity::body_limit) and the nesting depth, and
///   decodes it as the listener does (proto3 rules), so a field that does not survive serde
///   (`#[serde(skip)]`, a NaN, a lossy custom impl) shows up in tests. A request that does not
///   encode fails with `S-ENCODE`, one that does not decode with `C-BAD-REQUEST`, one over the
///   limit with `C-PAYLOAD-TOO-LARGE`;
/// - gives the callee the deadline the header carries: the caller's remaining time in whole
///   milliseconds, rounded down (less than one left: `S-TIMEOUT`, not sent), and stops the
///   callee with `S-TIMEOUT` when it passes, as the listener does;
/// - hands the callee a context with only what a transport carries: the request id, the caller's
///   name and the deadline. Metadata stays behind (unless named with
///   [`keep_metadata`](TransportFidelity::keep_metadata), for a transport that maps it to a
///   header), and the callee gets a cancellation of its own that fires when the caller stops
///   waiting, as a listener's does when its connection closes;
/// - encodes the response and decodes it as the request's declared response type (`S-BAD-RESPONSE`
///   when it does not decode), so a handler that answers the wrong type is caught the way the wire
///   would catch it;
/// - passes errors through their wire form (`{"code","msg"}`): the caller gets a plain
///   [`NanoError`] with the same code and the whole chain flattened into the message (an error
///   with neither is `S-ERROR`), and [`NanoError::find_source`] finds nothing, exactly as over a
///   wire;
/// - sends the request id and caller name as headers: one holding a control character (other
///   than a tab) is `S-ENCODE` (not sent), one outside [`nano_wire::is_valid_id`]'s alphabet
///   `C-BAD-REQUEST` naming the `x-nano-…` header, as the HTTP client and listener decide.
///
/// What it cannot show is what only a socket does: connection failures, the content-type check
/// (it always sends JSON), the listener's request timeout, connection and in-flight limits, and
/// the client's limit on answers. Its messages name the callee where the HTTP client's name its
/// address too. And a context's request id and caller cannot be changed on the way, so it
/// cannot show what the callee's context would carry after the listener read an id header with
/// spaces around it (it reads the value trimmed) or an empty one (a generated request id, the
/// listener's default caller); it checks such values by the listener's rule all the same.
///
/// # Over NATS
///
/// [`TransportFidelity::nats`] makes the calls go the way `nano-nats` would carry them, through
/// the same `nano_wire::nats` decisions its client and listener call. Where that differs from
/// HTTP:
///
/// - every request type a callee's API declares travels, with or without an HTTP route, and
///   always as a JSON body (there is no body-less `GET`); a type the API does not declare is
///   `C-BAD-REQUEST-TYPE`. An API whose service or wire name cannot be part of a NATS subject is
///   refused (`S-INIT-FAILED`) when the hook learns it, as the NATS client refuses it;
/// - the request id and caller name travel in headers: one holding a control character is
///   `S-ENCODE` (not sent), one outside [`nano_wire::is_valid_id`]'s alphabet `C-BAD-REQUEST`
///   naming the `Nano-…` header;
/// - a request larger than the broker's [`max_payload`](TransportFidelity::max_payload), headers
///   included, is `C-PAYLOAD-TOO-LARGE` before it is sent (the listener's body limit applies
///   after that), and a reply larger than it, response or error, becomes an `S-ERROR` saying so.
///
/// What it cannot show over NATS, besides what only a socket shows: the broker (no responders,
/// a broker restart: `S-UNAVAILABLE`), the client's limit on replies, and what the callee's
/// context would carry after the listener read a header with whitespace around it (it reads the
/// value trimmed) or an empty one (a generated request id, the listener's default caller): a
/// context's request id and caller cannot be changed on the way.
///
/// ```
/// use nano::{Ctx, NanoError, ServiceSet};
/// use nano_test::TransportFidelity;
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Debug, Clone, Default, Serialize, Deserialize)] pub struct Req { pub param: String }
/// # #[derive(Debug, Clone, Default, Serialize, Deserialize)] pub struct Resp { pub value: String }
/// # impl nano::Request for Req { type Response = Resp; const NAME: &'static str = "svc1.Req"; }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), NanoError> {
/// let svc1 = nano_test::request_fn("svc1", |ctx: Ctx, _r: Req| async move {
///     // Metadata does not cross the (simulated) wire.
///     assert_eq!(ctx.metadata("user"), None);
///     Err::<Resp, _>(NanoError::wrap(std::io::Error::other("disk full"), "cannot store"))
/// });
/// let set = ServiceSet::builder().service(svc1).hook(TransportFidelity::new()).build()?;
/// let ctx = Ctx::new().with_metadata("user", "alice");
/// let err = set.client("test", "svc1")?.call(&ctx, Req::default()).await.unwrap_err();
/// assert_eq!(err.to_string(), "cannot store :: disk full");
/// assert!(err.find_source::<std::io::Error>().is_none());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct TransportFidelity {
    wire: Wire,
    keep_metadata: Vec<String>,
    /// (caller, key): metadata that crosses on calls from that caller only.
    keep_metadata_from: Vec<(String, String)>,
    body_limit: usize,
    max_payload: usize,
    /// Endpoint tables by service; shared by clones, so a set's hook learns its APIs after the
    /// set is built.
    tables: Arc<RwLock<HashMap<String, Arc<[Endpoint]>>>>,
}

/// The wire whose decisions a hook applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wire {
    Http,
    Nats,
}

impl Default for TransportFidelity {
    fn default() -> Self {
        TransportFidelity {
            wire: Wire::Http,
            keep_metadata: Vec::new(),
            keep_metadata_from: Vec::new(),
            body_limit: nano_wire::DEFAULT_BODY_LIMIT,
            max_payload: nats::DEFAULT_MAX_PAYLOAD,
            tables: Arc::default(),
        }
    }
}

impl TransportFidelity {
    /// The hook of the HTTP wire, with nothing but the protocol's fields crossing.
    pub fn new() -> Self {
        Self::default()
    }

    /// The hook of the NATS wire (`nano-nats`): the HTTP wire's decisions where NATS shares
    /// them, `nano_wire::nats`'s where it does not; see [Over NATS](#over-nats).
    ///
    /// ```
    /// use nano::{Ctx, NanoError};
    /// use nano_test::{TestSet, TransportFidelity};
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Debug, Clone, Default, Serialize, Deserialize)] pub struct Req { pub param: String }
    /// # #[derive(Debug, Clone, Default, Serialize, Deserialize)] pub struct Resp { pub value: String }
    ///
    /// mod svc1 {
    ///     use super::*;
    ///     nano::api! {
    ///         service "svc1";
    ///         // No HTTP route: over HTTP a caller gets C-BAD-REQUEST-TYPE, over NATS it travels.
    ///         fn req(Req) -> Resp = "svc1.Req";
    ///     }
    /// }
    /// struct Svc1;
    /// impl svc1::Handler for Svc1 {
    ///     async fn req(&self, _ctx: &Ctx, r: Req) -> Result<Resp, NanoError> {
    ///         Ok(Resp { value: format!("svc1_{}", r.param) })
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), NanoError> {
    /// let over = |fidelity| TestSet::builder().service(svc1::service(|_| Ok(Svc1))).with_fidelity(fidelity).build();
    /// let nats = over(TransportFidelity::nats())?;
    /// let resp = nats.client("svc1")?.call(&Ctx::new(), Req { param: "x".into() }).await?;
    /// assert_eq!(resp.value, "svc1_x");
    ///
    /// let http = over(TransportFidelity::new())?;
    /// let err = http.client("svc1")?.call(&Ctx::new(), Req { param: "x".into() }).await.unwrap_err();
    /// assert_eq!(err.code(), "C-BAD-REQUEST-TYPE");
    ///
    /// // A caller name outside the id alphabet is refused by the NATS listener.
    /// let err = nats.set().client("a caller", "svc1")?.call(&Ctx::new(), Req::default()).await.unwrap_err();
    /// assert_eq!(err.code(), "C-BAD-REQUEST");
    /// assert!(err.message().contains("Nano-Client-Name"), "{err}");
    /// # Ok(()) }
    /// ```
    pub fn nats() -> Self {
        TransportFidelity {
            wire: Wire::Nats,
            ..Self::default()
        }
    }

    /// Sets the broker's `max_payload` a hook made with [`nats`](TransportFidelity::nats) holds
    /// requests (headers included) and replies to (default
    /// `nano_wire::nats::DEFAULT_MAX_PAYLOAD`, `nats-server`'s 1 MiB); set it to what the
    /// broker in use is configured with. The HTTP wire has no such limit: on a hook made with
    /// [`new`](TransportFidelity::new) it changes nothing.
    #[must_use]
    pub fn max_payload(mut self, bytes: usize) -> Self {
        self.max_payload = bytes;
        self
    }

    /// Lets the metadata entry `key` cross, for a transport that carries it as a header.
    #[must_use]
    pub fn keep_metadata(mut self, key: impl Into<String>) -> Self {
        self.keep_metadata.push(key.into());
        self
    }

    /// Lets the metadata entry `key` cross on calls from `caller` only: for a caller that stands
    /// for the clients of a server whose listener sets the entry on its side of the wire, such
    /// as the identity an edge authenticated ([`TestSet::call_at_edge`](crate::TestSet::call_at_edge)
    /// sets this up). Calls between services still lose it, as they do over a wire.
    #[must_use]
    pub fn keep_metadata_from(mut self, caller: impl Into<String>, key: impl Into<String>) -> Self {
        self.keep_metadata_from.push((caller.into(), key.into()));
        self
    }

    /// Sets the largest request body the simulated listener accepts (default
    /// `nano_wire::DEFAULT_BODY_LIMIT`, the listener's default).
    #[must_use]
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// Uses the endpoint table of a declared API for its service: its routes over HTTP
    /// ([`Endpoint::table`]), every declared request type over NATS
    /// (`nano_wire::nats::endpoints`).
    ///
    /// # Errors
    ///
    /// What [`Endpoint::table`] or `nano_wire::nats::endpoints` reports for the API.
    pub fn api(self, api: &'static Api) -> Result<Self, NanoError> {
        let table = self.table_of(api)?;
        Ok(self.endpoints(api.name(), table))
    }

    /// The endpoint table the hook's wire gives a declared API.
    fn table_of(&self, api: &Api) -> Result<Vec<Endpoint>, NanoError> {
        match self.wire {
            Wire::Http => Endpoint::table(api),
            Wire::Nats => nats::endpoints(api),
        }
    }

    /// Uses `endpoints` as the endpoint table of `service`.
    #[must_use]
    pub fn endpoints(self, service: &str, endpoints: impl IntoIterator<Item = Endpoint>) -> Self {
        self.set_table(service, endpoints.into_iter().collect());
        self
    }

    /// Takes the endpoint table of every service of `set` that declares an API and has no table
    /// yet. [`TestSet`](crate::TestSet) and [`Deployment::with_fidelity`](crate::Deployment::with_fidelity)
    /// call it once the set is built; the hook's clones share what it learns.
    ///
    /// # Errors
    ///
    /// What [`api`](TransportFidelity::api) reports for a declared API.
    pub fn learn_apis(&self, set: &ServiceSet) -> Result<(), NanoError> {
        for name in set.names() {
            let Some(api) = set.api(name) else { continue };
            if self.table(name).is_none() {
                self.set_table(name, self.table_of(api)?);
            }
        }
        Ok(())
    }

    fn set_table(&self, service: &str, endpoints: Vec<Endpoint>) {
        let mut tables = self
            .tables
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        tables.insert(service.to_owned(), endpoints.into());
    }

    fn table(&self, service: &str) -> Option<Arc<[Endpoint]>> {
        let tables = self
            .tables
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        tables.get(service).cloned()
    }

    /// The context the callee gets: the caller's context without what a wire does not carry.
    fn wire_ctx(&self, caller: &str, ctx: &Ctx, cancellation: Cancellation) -> Ctx {
        let from_caller = self
            .keep_metadata_from
            .iter()
            .filter(|(from, _)| from == caller)
            .map(|(_, key)| key);
        let kept: Vec<(String, String)> = self
            .keep_metadata
            .iter()
            .chain(from_caller)
            .filter_map(|key| Some((key.clone(), ctx.metadata(key)?.to_owned())))
            .collect();
        let mut wire = ctx
            .clone()
            .without_metadata()
            .with_cancellation(cancellation);
        for (key, value) in kept {
            wire = wire.with_metadata(key, value);
        }
        wire
    }
}

/// What the caller reads of an error `service` answered: its wire body, encoded and decoded.
fn wire_error(service: &str, err: &NanoError) -> NanoError {
    let body = nano_wire::error_body(service, err);
    let decoded = serde_json::to_vec(&body)
        .and_then(|json| serde_json::from_slice::<ErrorBody>(&json))
        .ok()
        .and_then(nano_wire::error_from_body);
    // An `ErrorBody` is two strings and always round-trips; keep the flat error regardless.
    decoded.unwrap_or_else(|| err.flatten())
}

impl ClientHook for TransportFidelity {
    fn wrap(&self, edge: &Edge, next: SharedService) -> SharedService {
        SharedService::new(OverTheWire {
            hook: self.clone(),
            edge: edge.clone(),
            next,
        })
    }
}

/// The service the hook puts in front of each callee.
struct OverTheWire {
    hook: TransportFidelity,
    edge: Edge,
    next: SharedService,
}

impl OverTheWire {
    /// The listener's part: limit, decoding, the callee under its deadline, the response body.
    async fn serve(
        &self,
        ctx: &Ctx,
        endpoint: &Endpoint,
        body: &[u8],
        deadline: Option<tokio::time::Instant>,
    ) -> Result<Option<Vec<u8>>, NanoError> {
        let (caller, callee) = (self.edge.caller(), self.edge.callee());
        // The listener reads the id headers first, by the rule every wire shares.
        let read = |header: &str, sent: &str| {
            let received = match self.hook.wire {
                Wire::Nats => nats::header_value_as_received(sent),
                Wire::Http => nano_wire::header_value_as_received(sent),
            };
            nano_wire::id_value(header, received.as_bytes()).map(|_| ())
        };
        let (req_id_header, client_name_header) = match self.hook.wire {
            Wire::Nats => (nats::REQ_ID_HEADER, nats::CLIENT_NAME_HEADER),
            Wire::Http => (nano_wire::REQ_ID_HEADER, nano_wire::CLIENT_NAME_HEADER),
        };
        read(req_id_header, ctx.request_id().as_str())?;
        if let Some(caller) = ctx.caller() {
            read(client_name_header, caller)?;
        }
        nano_wire::check_body_len(body.len(), self.hook.body_limit)?;
        let req = nano_wire::decode_body(endpoint, body)?;
        let cancellation = Cancellation::new();
        // Cancels the callee's context when the caller stops waiting, like a closed connection.
        let hang_up = nano_server::CancelOnDrop::new(Some(cancellation.clone()));
        let mut wire_ctx = self.hook.wire_ctx(caller, ctx, cancellation);
        if let Some(deadline) = deadline {
            wire_ctx = wire_ctx.with_deadline(deadline);
        }
        let outcome = tokio::select! {
            biased;
            outcome = self.next.handle(wire_ctx.clone(), req) => outcome,
            // Stopped by its deadline, the callee is also told to stop what it spawned.
            () = wire_ctx.done(), if deadline.is_some() => {
                return Err(nano_wire::out_of_time(caller, callee));
            }
        };
        // The call ended normally: the connection is not dropped under the callee.
        hang_up.disarm();
        nano_wire::encode_response(endpoint, &outcome?)
    }
}

impl Service for OverTheWire {
    fn name(&self) -> &str {
        self.edge.callee()
    }

    async fn handle(&self, ctx: Ctx, req: AnyRequest) -> Outcome {
        let (caller, callee) = (self.edge.caller(), self.edge.callee());
        // The caller's side: the endpoint, the body, the deadline header.
        let table = self.hook.table(callee);
        let assumed;
        let endpoint = match &table {
            Some(table) => nano_wire::find_endpoint(table, req.name())?,
            None => {
                assumed = Endpoint::assumed(req.request_type());
                &assumed
            }
        };
        let body = nano_wire::encode_request(endpoint, &req)?;
        let body = body.as_deref().unwrap_or_default();
        let nats = self.hook.wire == Wire::Nats;
        // What the client cannot put in a header, it does not send.
        let ids = [
            ("request id", Some(ctx.request_id().as_str())),
            ("caller name", ctx.caller()),
        ];
        for (what, text) in ids {
            let Some(text) = text else { continue };
            if nats {
                nats::check_header_value(callee, what, text)?;
            } else {
                nano_wire::check_header_value(what, text, || format!("service {callee:?}"))?;
            }
        }
        let mut deadline_ms = None;
        let deadline = match ctx.remaining() {
            None => None,
            Some(remaining) => {
                let millis = nano_wire::deadline_millis(remaining)
                    .ok_or_else(|| nano_wire::out_of_time(caller, callee))?;
                deadline_ms = Some(millis);
                tokio::time::Instant::now().checked_add(std::time::Duration::from_millis(millis))
            }
        };
        if nats {
            let header_len =
                nats::request_header_len(ctx.request_id().as_str(), ctx.caller(), deadline_ms);
            nats::check_request_size(callee, header_len, body.len(), self.hook.max_payload)?;
        }
        let served = self.serve(&ctx, endpoint, body, deadline).await;
        if nats {
            let outcome = served.map(Option::unwrap_or_default);
            return match nats::reply(callee, outcome, self.hook.max_payload) {
                Reply::Response(json) => nano_wire::decode_response(callee, endpoint, None, &json),
                Reply::Error(json) => Err(read_error_reply(&json)),
            };
        }
        match served {
            Ok(json) => nano_wire::decode_response(
                callee,
                endpoint,
                None,
                json.as_deref().unwrap_or_default(),
            ),
            Err(err) => Err(wire_error(callee, &err)),
        }
    }
}

/// What the caller reads of a NATS error reply: the error its body carries.
fn read_error_reply(json: &[u8]) -> NanoError {
    serde_json::from_slice::<ErrorBody>(json)
        .ok()
        .and_then(nano_wire::error_from_body)
        // `nats::reply` writes a body with a code and a message, which always reads back.
        .unwrap_or_else(|| {
            NanoError::new(
                nano::codes::BAD_RESPONSE,
                "an error reply that is not an error body",
            )
        })
}
