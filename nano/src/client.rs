//! [`Client`]: how one service calls another.

use crate::ctx::{Ctx, Edge};
use crate::error::{NanoError, codes};
use crate::message::{AnyRequest, AnyResponse, Request};
use crate::service::SharedService;

/// Calls one service on behalf of one caller.
///
/// Each call derives the callee's [`Ctx`] from the caller's (request id, deadline, cancellation
/// and metadata kept; caller and service names set), runs the callee's handler (through the
/// set's [hooks](crate::ClientHook), e.g. one that opens a tracing span), and stops waiting with `S-TIMEOUT` when the
/// deadline passes or `S-CANCELLED` when the request tree is cancelled. The callee may be
/// in-process or behind a transport: the client cannot tell and does not care.
///
/// Cloning is cheap.
#[derive(Clone, Debug)]
pub struct Client {
    /// The process's one copy of this caller → callee edge (see `Edge::interned`).
    pub(crate) edge: &'static Edge,
    /// The outermost hook's service, or the callee's slot when the set has no hooks.
    pub(crate) target: SharedService,
}

impl Client {
    /// The name of the caller this client calls on behalf of.
    pub fn caller(&self) -> &str {
        self.edge.caller()
    }

    /// The name of the called service.
    pub fn callee(&self) -> &str {
        self.edge.callee()
    }

    /// Sends a typed request and returns its typed response.
    ///
    /// # Errors
    ///
    /// The callee's error; `S-TIMEOUT` or `S-CANCELLED` as described on [`Client`];
    /// `S-BAD-RESPONSE` when the callee answers with a type other than `R::Response`.
    pub async fn call<R: Request>(&self, ctx: &Ctx, request: R) -> Result<R::Response, NanoError> {
        let response = self.call_any(ctx, AnyRequest::new(request)).await?;
        response.downcast::<R::Response>().map_err(|other| {
            let (callee, name, got) = (self.callee(), R::NAME, other.type_name());
            let want = std::any::type_name::<R::Response>();
            let message = format!("service {callee:?} answered {name} with {got}, expected {want}");
            NanoError::new(codes::BAD_RESPONSE, message)
        })
    }

    /// Sends a type-erased request.
    ///
    /// # Errors
    ///
    /// As [`call`](Client::call), without the response type check.
    pub async fn call_any(&self, ctx: &Ctx, request: AnyRequest) -> Result<AnyResponse, NanoError> {
        let handled = self.target.handle(ctx.for_call(self.edge), request);
        if ctx.deadline().is_none() && ctx.cancellation().is_none() {
            // The common case awaits the handler directly, keeping this future small.
            return handled.await;
        }
        Box::pin(async {
            if !ctx.is_cancelled() && !ctx.is_expired() {
                // Dropping `handled` when a limit fires cancels the in-process work under it.
                tokio::select! {
                    biased;
                    outcome = handled => return outcome,
                    () = ctx.done() => {}
                }
            }
            let (code, what) = if ctx.is_cancelled() {
                (codes::CANCELLED, "was cancelled")
            } else {
                (codes::TIMEOUT, "ran out of time")
            };
            let (caller, callee) = (self.caller(), self.callee());
            let message = format!("call from {caller:?} to {callee:?} {what}");
            Err(NanoError::new(code, message))
        })
        .await
    }
}
