//! [`Client`]: how one service calls another.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use tokio::time::Instant;

use crate::ctx::{Cancellation, Ctx, Edge};
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
#[derive(Clone)]
pub struct Client {
    edge: Arc<Edge>,
    target: SharedService,
}

impl Client {
    pub(crate) fn new(edge: Edge, target: SharedService) -> Self {
        Client {
            edge: Arc::new(edge),
            target,
        }
    }

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
            NanoError::new(
                codes::BAD_RESPONSE,
                format!(
                    "service {:?} answered {} with {}, expected {}",
                    self.callee(),
                    R::NAME,
                    other.type_name(),
                    std::any::type_name::<R::Response>()
                ),
            )
        })
    }

    /// Sends a type-erased request.
    ///
    /// # Errors
    ///
    /// As [`call`](Client::call), without the response type check.
    pub async fn call_any(&self, ctx: &Ctx, request: AnyRequest) -> Result<AnyResponse, NanoError> {
        let callee_ctx = ctx.for_call(&self.edge);
        let limits = Limits::of(&callee_ctx);
        let handled = self.target.handle(callee_ctx, request);
        match limits {
            // The common case awaits the handler directly, keeping this future small.
            None => handled.await,
            Some(limits) => Box::pin(self.within(limits, handled)).await,
        }
    }

    /// Awaits `handled` until it finishes, the deadline passes or the tree is cancelled. Dropping
    /// `handled` when a limit fires cancels the in-process work under this call.
    async fn within(
        &self,
        limits: Limits,
        handled: impl Future<Output = Result<AnyResponse, NanoError>>,
    ) -> Result<AnyResponse, NanoError> {
        if limits
            .cancellation
            .as_ref()
            .is_some_and(Cancellation::is_cancelled)
        {
            return Err(self.cancelled_error());
        }
        if limits
            .deadline
            .is_some_and(|deadline| deadline <= Instant::now())
        {
            return Err(self.timeout_error());
        }
        let expired = async {
            match limits.deadline {
                Some(deadline) => tokio::time::sleep_until(deadline).await,
                None => std::future::pending().await,
            }
        };
        let cancelled = async {
            match &limits.cancellation {
                Some(cancellation) => cancellation.cancelled().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            outcome = handled => outcome,
            () = expired => Err(self.timeout_error()),
            () = cancelled => Err(self.cancelled_error()),
        }
    }

    fn timeout_error(&self) -> NanoError {
        NanoError::timeout(format!(
            "call from {:?} to {:?} ran out of time",
            self.caller(),
            self.callee()
        ))
    }

    fn cancelled_error(&self) -> NanoError {
        NanoError::new(
            codes::CANCELLED,
            format!(
                "call from {:?} to {:?} was cancelled",
                self.caller(),
                self.callee()
            ),
        )
    }
}

/// What may end a call before its handler does.
struct Limits {
    deadline: Option<Instant>,
    cancellation: Option<Cancellation>,
}

impl Limits {
    fn of(ctx: &Ctx) -> Option<Limits> {
        let limits = Limits {
            deadline: ctx.deadline(),
            cancellation: ctx.cancellation().cloned(),
        };
        (limits.deadline.is_some() || limits.cancellation.is_some()).then_some(limits)
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("caller", &self.caller())
            .field("callee", &self.callee())
            .finish()
    }
}
