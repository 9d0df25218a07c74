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
    fn init(&mut self, _deps: &mut Dependencies<'_>) -> Result<(), NanoError> {
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

    /// [`handle`](Service::handle) with its future boxed: how clients and hooks call every
    /// service. Services written with [`api!`](crate::api) override it to box only the future
    /// of the matched request type's handler.
    fn handle_boxed(&self, ctx: Ctx, req: AnyRequest) -> BoxFuture<'_, Outcome> {
        Box::pin(self.handle(ctx, req))
    }
}

/// The object-safe form of [`Service`] the set stores.
pub(crate) trait DynService: Send + Sync + 'static {
    fn name(&self) -> &str;
    fn init_finished(&self) -> Result<(), NanoError>;
    fn api(&self) -> Option<&'static Api>;
    fn handle(&self, ctx: Ctx, req: AnyRequest) -> BoxFuture<'_, Outcome>;
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
        Service::handle_boxed(self, ctx, req)
    }
}

/// A type-erased, shareable service: what clients call and what [`ClientHook`](crate::ClientHook)s
/// wrap.
#[derive(Clone)]
pub struct SharedService(pub(crate) Shared);

#[derive(Clone)]
pub(crate) enum Shared {
    Ready(Arc<dyn DynService>),
    /// A set's slot: clients are made while their callee is still being built.
    Slot(Arc<Slot>),
}

/// Where the clients of one service find it; the set fills it once that service is made.
pub(crate) struct Slot {
    pub(crate) name: String,
    pub(crate) service: OnceLock<SharedService>,
}

impl SharedService {
    /// Erases an initialised service. Its `init` phases do not run again.
    pub fn new<S: Service>(service: S) -> Self {
        SharedService(Shared::Ready(Arc::new(service)))
    }

    /// The service itself; an error for a slot its set has not filled yet.
    pub(crate) fn ready(&self) -> Result<&dyn DynService, NanoError> {
        let filled = match &self.0 {
            Shared::Slot(slot) => slot.service.get(),
            Shared::Ready(_) => Some(self),
        };
        if let Some(SharedService(Shared::Ready(service))) = filled {
            return Ok(&**service);
        }
        let name = self.name();
        let err = format!("service {name:?} was called before its set finished initialising");
        Err(NanoError::internal(err))
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
        self.ready().ok()?.api()
    }

    /// Calls the handler directly, bypassing clients and hooks.
    pub fn handle(&self, ctx: Ctx, req: AnyRequest) -> BoxFuture<'_, Outcome> {
        match self.ready() {
            Ok(service) => service.handle(ctx, req),
            Err(err) => Box::pin(std::future::ready(Err(err))),
        }
    }
}

impl fmt::Debug for SharedService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SharedService").field(&self.name()).finish()
    }
}
