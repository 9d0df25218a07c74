//! [`TransportFidelity`]: a client hook that makes in-process calls behave as if a transport sat
//! between caller and callee.

use nano::{
    AnyRequest, Cancellation, ClientHook, Ctx, Edge, ErrorBody, NanoError, Outcome, Service,
    SharedService, codes,
};

/// Makes every client of a set behave as if a transport sat between caller and callee: the
/// per-set form of the Go original's hooked `NewClient`.
///
/// With the hook on, each call:
///
/// - encodes the request to JSON and decodes it as its declared type, the way a transport's client
///   and listener do, so a field that does not survive serde (`#[serde(skip)]`, a NaN, a lossy
///   custom impl) shows up in tests. A request that does not encode fails with `S-ENCODE`, one
///   that does not decode with `C-BAD-REQUEST`;
/// - hands the callee a context with only what a transport carries: the request id, the caller's
///   name and the deadline. Metadata stays behind (unless named with
///   [`keep_metadata`](TransportFidelity::keep_metadata), for a transport that maps it to a
///   header), and the callee gets a cancellation of its own that fires when the caller stops
///   waiting, as a listener's does when its connection closes;
/// - encodes the response and decodes it as the request's declared response type (`S-BAD-RESPONSE`
///   when it does not decode), so a handler that answers the wrong type is caught the way the wire
///   would catch it;
/// - passes errors through their wire form (`{"code","msg"}`): the caller gets a plain
///   [`NanoError`] with the same code and the whole chain flattened into the message, and
///   [`NanoError::find_source`] finds nothing, exactly as over a wire.
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
#[derive(Debug, Clone, Default)]
pub struct TransportFidelity {
    keep_metadata: Vec<String>,
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

    /// The context the callee gets: the caller's context without what a wire does not carry.
    fn wire_ctx(&self, ctx: &Ctx, cancellation: Cancellation) -> Ctx {
        let kept: Vec<(String, String)> = self
            .keep_metadata
            .iter()
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

/// What a transport turns an error into: its wire body, encoded and decoded.
pub(crate) fn wire_error(err: &NanoError) -> NanoError {
    let body = ErrorBody::from(err);
    match serde_json::to_vec(&body).and_then(|json| serde_json::from_slice::<ErrorBody>(&json)) {
        Ok(body) => NanoError::from(body),
        // An `ErrorBody` is two strings and always round-trips; keep the flat error regardless.
        Err(_) => err.flatten(),
    }
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

impl Service for OverTheWire {
    fn name(&self) -> &str {
        self.edge.callee()
    }

    async fn handle(&self, ctx: Ctx, req: AnyRequest) -> Outcome {
        let request_type = req.request_type();
        // The caller's side encodes; a failure there is the caller's transport error.
        let json = req.to_json()?;
        // The listener decodes; its failure travels back as an error body.
        let req = request_type
            .decode_request(&json)
            .map_err(|err| wire_error(&err))?;
        let cancellation = Cancellation::new();
        let mut hang_up = HangUpOnDrop(Some(cancellation.clone()));
        let outcome = self
            .next
            .handle(self.hook.wire_ctx(&ctx, cancellation), req)
            .await;
        // The call ended normally: the connection is not dropped under the callee.
        hang_up.0 = None;
        match outcome {
            Ok(response) => {
                let json = response.to_json().map_err(|err| {
                    wire_error(&NanoError::wrap(
                        err,
                        format!(
                            "service {:?} cannot encode its response",
                            self.edge.callee()
                        ),
                    ))
                })?;
                request_type.decode_response(&json).map_err(|err| {
                    NanoError::new(
                        codes::BAD_RESPONSE,
                        format!(
                            "service {:?} answered {} with a body that is not a {}: {}",
                            self.edge.callee(),
                            request_type.name(),
                            request_type.response_rust_name(),
                            err.message()
                        ),
                    )
                })
            }
            Err(err) => Err(wire_error(&err)),
        }
    }
}
