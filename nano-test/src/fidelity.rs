//! [`TransportFidelity`]: a client hook that makes in-process calls behave as if a transport sat
//! between caller and callee.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use nano::{
    AnyRequest, Api, Cancellation, ClientHook, Ctx, Edge, ErrorBody, NanoError, Outcome, Service,
    ServiceSet, SharedService,
};
use nano_wire::Endpoint;

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
///   wire.
///
/// What it cannot show is what only a socket does: connection failures, the content-type check
/// (it always sends JSON), the listener's request timeout, connection and in-flight limits, and
/// the client's limit on answers.
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
    keep_metadata: Vec<String>,
    /// (caller, key): metadata that crosses on calls from that caller only.
    keep_metadata_from: Vec<(String, String)>,
    body_limit: usize,
    /// Endpoint tables by service; shared by clones, so a set's hook learns its APIs after the
    /// set is built.
    tables: Arc<RwLock<HashMap<String, Arc<[Endpoint]>>>>,
}

impl Default for TransportFidelity {
    fn default() -> Self {
        TransportFidelity {
            keep_metadata: Vec::new(),
            keep_metadata_from: Vec::new(),
            body_limit: nano_wire::DEFAULT_BODY_LIMIT,
            tables: Arc::default(),
        }
    }
}

impl TransportFidelity {
    /// The hook with nothing but the protocol's fields crossing.
    pub fn new() -> Self {
        Self::default()
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

    /// Uses the endpoint table of a declared API for its service.
    ///
    /// # Errors
    ///
    /// What [`Endpoint::table`] reports for the API.
    pub fn api(self, api: &'static Api) -> Result<Self, NanoError> {
        Ok(self.endpoints(api.name(), Endpoint::table(api)?))
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
    /// What [`Endpoint::table`] reports for a declared API.
    pub fn learn_apis(&self, set: &ServiceSet) -> Result<(), NanoError> {
        for name in set.names() {
            let Some(api) = set.api(name) else { continue };
            if self.table(name).is_none() {
                self.set_table(name, Endpoint::table(api)?);
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

/// Cancels the callee's context when the caller stops waiting, like a closed connection.
struct HangUpOnDrop(Option<Cancellation>);

impl Drop for HangUpOnDrop {
    fn drop(&mut self) {
        if let Some(cancellation) = self.0.take() {
            cancellation.cancel();
        }
    }
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
        nano_wire::check_body_len(body.len(), self.hook.body_limit)?;
        let req = nano_wire::decode_body(endpoint, body)?;
        let cancellation = Cancellation::new();
        let mut hang_up = HangUpOnDrop(Some(cancellation.clone()));
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
        hang_up.0 = None;
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
        let deadline = match ctx.remaining() {
            None => None,
            Some(remaining) => {
                let millis = nano_wire::deadline_millis(remaining)
                    .ok_or_else(|| nano_wire::out_of_time(caller, callee))?;
                tokio::time::Instant::now().checked_add(std::time::Duration::from_millis(millis))
            }
        };
        let served = self
            .serve(
                &ctx,
                endpoint,
                body.as_deref().unwrap_or_default(),
                deadline,
            )
            .await;
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
