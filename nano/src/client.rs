//! [`Client`]: how one service calls another.

use crate::ctx::{Ctx, Edge};
use crate::error::{NanoError, codes};
use crate::message::{AnyRequest, AnyResponse, Request};
use crate::service::SharedService;

/// Awaits a handler's future under the caller's limits: directly in the common case of neither
/// deadline nor cancellation (keeping the caller's future small), else through `limited`.
macro_rules! limited {
    ($client:expr, $ctx:expr, $handled:expr) => {
        if $ctx.deadline().is_none() && $ctx.cancellation().is_none() {
            $handled.await
        } else {
            $client.limited($ctx, $handled).await?
        }
    };
}

/// What a typed call of `R` ends with: the declared response or an error.
pub type Reply<R> = Result<<R as Request>::Response, NanoError>;

/// A typed call on its way to a callee that handles its request type natively (see
/// [`Service::handle_typed`](crate::Service::handle_typed)): the request, until the callee
/// takes it, and the callee's reply, once it gave one.
pub type TypedCall<R> = (Option<R>, Option<Reply<R>>);

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
    /// A callee served through [`api!`](crate::api) that declares `R`, reached without hooks,
    /// takes the request as it is and answers in place: one allocation for the handler's
    /// future, no envelopes. Any other callee gets an [`AnyRequest`].
    ///
    /// # Errors
    ///
    /// The callee's error; `S-TIMEOUT` or `S-CANCELLED` as described on [`Client`];
    /// `S-BAD-RESPONSE` when the callee answers with a type other than `R::Response`.
    pub fn call<R: Request>(&self, ctx: &Ctx, request: R) -> impl Future<Output = Reply<R>> + Send {
        // Made before the future, so that the request is moved once.
        let mut call: TypedCall<R> = (Some(request), None);
        async move {
            let callee_ctx = ctx.for_call(self.edge);
            if let Some(handled) = self.target.handle_typed(&callee_ctx, &mut call) {
                limited!(self, ctx, handled);
            }
            let request = match call {
                (_, Some(response)) => return response,
                (Some(request), None) => request,
                (None, None) => return Err(NanoError::internal("typed call left unanswered")),
            };
            let handled = self.target.handle(callee_ctx, AnyRequest::new(request));
            let response = limited!(self, ctx, handled)?;
            response.downcast::<R::Response>().map_err(|other| {
                let (callee, name, got) = (self.callee(), R::NAME, other.type_name());
                let want = std::any::type_name::<R::Response>();
                let msg = format!("service {callee:?} answered {name} with {got}, expected {want}");
                NanoError::new(codes::BAD_RESPONSE, msg)
            })
        }
    }

    /// Sends a type-erased request.
    ///
    /// # Errors
    ///
    /// As [`call`](Client::call), without the response type check.
    pub async fn call_any(&self, ctx: &Ctx, request: AnyRequest) -> Result<AnyResponse, NanoError> {
        let handled = self.target.handle(ctx.for_call(self.edge), request);
        limited!(self, ctx, handled)
    }

    /// Awaits `work` until the deadline passes or the request tree is cancelled.
    async fn limited<T>(&self, ctx: &Ctx, work: impl Future<Output = T>) -> Result<T, NanoError> {
        Box::pin(async {
            if !ctx.is_cancelled() && !ctx.is_expired() {
                // Dropping `work` when a limit fires cancels the in-process work under it.
                tokio::select! {
                    biased;
                    outcome = work => return Ok(outcome),
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
