//! The [`Service`] trait, its type-erased form and closure-built services.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use crate::api::Api;
use crate::ctx::Ctx;
use crate::error::NanoError;
use crate::message::{AnyRequest, AnyResponse};
use crate::set::Dependencies;

/// A boxed, `Send` future, the currency of type-erased calls.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a handler returns: a type-erased response or an error.
pub type Outcome = Result<AnyResponse, NanoError>;

/// A unit of business logic: a name and one async handler.
///
/// A service never knows whether it is called in-process or through a transport. It may resolve
/// clients of the services it depends on in [`init`](Service::init); every service of a set is
/// initialised before any [`init_finished`](Service::init_finished) runs.
///
/// Handlers that take several request types dispatch with [`dispatch!`](crate::dispatch), which
/// checks at compile time that each arm answers with its request's declared response type.
///
/// ```
/// use nano::{AnyRequest, Ctx, NanoError, Outcome, Request, Service};
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Debug, Clone, Default, Serialize, Deserialize)] pub struct Req { pub param: String }
/// # #[derive(Debug, Clone, Default, Serialize, Deserialize)] pub struct Resp { pub value: String }
/// # impl Request for Req { type Response = Resp; const NAME: &'static str = "svc1.Req"; }
///
/// struct Svc1;
///
/// impl Service for Svc1 {
///     fn name(&self) -> &str {
///         "svc1"
///     }
///
///     async fn handle(&self, _ctx: Ctx, req: AnyRequest) -> Outcome {
///         nano::dispatch!(req, {
///             Req => |r| Ok(Resp { value: format!("svc1_{}", r.param) }),
///         })
///     }
/// }
/// ```
pub trait Service: Send + Sync + 'static {
    /// The name other services and transports address this service by.
    fn name(&self) -> &str;

    /// Resolves clients of other services. Runs once, when the set is built.
    ///
    /// # Errors
    ///
    /// A failed init (including a dependency missing from the set) fails the set's build.
    fn init(&mut self, deps: &mut Dependencies<'_>) -> Result<(), NanoError> {
        let _ = deps;
        Ok(())
    }

    /// Runs after every service of the set finished [`init`](Service::init).
    ///
    /// # Errors
    ///
    /// A failure fails the set's build.
    fn init_finished(&self) -> Result<(), NanoError> {
        Ok(())
    }

    /// The service's declared API, when it has one (services written with
    /// [`api!`](crate::api) do). The set checks that it names this service, and transports and
    /// recordings read their tables from it.
    fn api(&self) -> Option<&'static Api> {
        None
    }

    /// Handles one request.
    fn handle(&self, ctx: Ctx, req: AnyRequest) -> impl Future<Output = Outcome> + Send;

    /// Handles one request whose context the caller keeps until the returned future is done:
    /// what a [`Client`](crate::Client) calls when no hook stands between it and the service.
    /// The default clones the context into [`handle`](Service::handle)'s future; services
    /// written with [`api!`](crate::api) override it so that the boxed future holds only the
    /// matched handler's future, with the context borrowed.
    fn handle_ref<'a>(&'a self, ctx: &'a Ctx, req: AnyRequest) -> BoxFuture<'a, Outcome> {
        Box::pin(self.handle(ctx.clone(), req))
    }
}

/// The object-safe form of [`Service`] the set stores.
pub(crate) trait DynService: Send + Sync + 'static {
    fn name(&self) -> &str;
    fn init_finished(&self) -> Result<(), NanoError>;
    fn api(&self) -> Option<&'static Api>;
    fn handle(&self, ctx: Ctx, req: AnyRequest) -> BoxFuture<'_, Outcome>;
    fn handle_ref<'a>(&'a self, ctx: &'a Ctx, req: AnyRequest) -> BoxFuture<'a, Outcome>;
}

impl<S: Service> DynService for S {
    fn name(&self) -> &str {
        Service::name(self)
    }
    fn init_finished(&self) -> Result<(), NanoError> {
        Service::init_finished(self)
    }
    fn api(&self) -> Option<&'static Api> {
        Service::api(self)
    }
    fn handle(&self, ctx: Ctx, req: AnyRequest) -> BoxFuture<'_, Outcome> {
        Box::pin(Service::handle(self, ctx, req))
    }
    fn handle_ref<'a>(&'a self, ctx: &'a Ctx, req: AnyRequest) -> BoxFuture<'a, Outcome> {
        Service::handle_ref(self, ctx, req)
    }
}

/// A type-erased, shareable service: what clients call and what [`ClientHook`](crate::ClientHook)s
/// wrap.
#[derive(Clone)]
pub struct SharedService(Shared);

#[derive(Clone)]
enum Shared {
    Ready(Arc<dyn DynService>),
    /// A set's slot: clients are made while their callee is still being built.
    Slot(Arc<Slot>),
}

/// Where the clients of one service find it; the set fills it once every service is made.
pub(crate) struct Slot {
    pub(crate) name: String,
    pub(crate) service: OnceLock<SharedService>,
}

impl SharedService {
    /// Erases an initialised service. Its `init` phases do not run again.
    pub fn new<S: Service>(service: S) -> Self {
        SharedService(Shared::Ready(Arc::new(service)))
    }

    pub(crate) fn slot(slot: &Arc<Slot>) -> Self {
        SharedService(Shared::Slot(Arc::clone(slot)))
    }

    /// The service itself: `None` for a slot its set has not filled yet.
    pub(crate) fn ready(&self) -> Option<&dyn DynService> {
        let filled = match &self.0 {
            Shared::Slot(slot) => slot.service.get()?,
            Shared::Ready(_) => self,
        };
        match &filled.0 {
            Shared::Ready(service) => Some(&**service),
            Shared::Slot(_) => None,
        }
    }

    /// The service's name.
    pub fn name(&self) -> &str {
        match &self.0 {
            Shared::Ready(service) => service.name(),
            Shared::Slot(slot) => &slot.name,
        }
    }

    /// The service's declared API, if it has one.
    pub fn api(&self) -> Option<&'static Api> {
        self.ready()?.api()
    }

    /// Calls the handler directly, bypassing clients and hooks.
    pub fn handle(&self, ctx: Ctx, req: AnyRequest) -> BoxFuture<'_, Outcome> {
        match self.ready() {
            Some(service) => service.handle(ctx, req),
            None => self.not_ready(),
        }
    }

    /// Calls the handler with a borrowed context (see [`Service::handle_ref`]).
    pub fn handle_ref<'a>(&'a self, ctx: &'a Ctx, req: AnyRequest) -> BoxFuture<'a, Outcome> {
        match self.ready() {
            Some(service) => service.handle_ref(ctx, req),
            None => self.not_ready(),
        }
    }

    #[cold]
    fn not_ready(&self) -> BoxFuture<'static, Outcome> {
        let name = self.name();
        let err = format!("service {name:?} was called before its set finished initialising");
        Box::pin(std::future::ready(Err(NanoError::internal(err))))
    }
}

impl fmt::Debug for SharedService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SharedService").field(&self.name()).finish()
    }
}
