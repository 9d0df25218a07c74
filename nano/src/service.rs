//! The [`Service`] trait, its type-erased form and closure-built services.

use std::any::Any;
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

/// What [`Service::handle_typed`] returns: the future of a typed call it started, if it did.
pub type Typed<'a> = Option<BoxFuture<'a, ()>>;

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

    /// Starts a typed call when this service handles its request type natively: `call` is the
    /// [`TypedCall`](crate::TypedCall) of some request type `R`, and the returned future takes
    /// the request out of it and leaves the reply in it, with no envelope either way; `ctx` is
    /// the callee's context. `None` (the default, and the answer for a request type the service
    /// does not handle natively) has the client send the request erased, to
    /// [`handle`](Service::handle).
    ///
    /// Services written with [`api!`](crate::api) start every declared request type this way;
    /// clients take this path when they reach such a service without a hook in between. By
    /// hand it reads:
    ///
    /// ```
    /// use std::any::Any;
    /// use nano::{AnyRequest, Ctx, NanoError, Outcome, Service, Typed, TypedCall};
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Debug, Clone, Default, Serialize, Deserialize)] pub struct Req { pub param: String }
    /// # #[derive(Debug, Clone, Default, Serialize, Deserialize)] pub struct Resp { pub value: String }
    /// # impl nano::Request for Req { type Response = Resp; const NAME: &'static str = "svc1.Req"; }
    ///
    /// struct Svc1;
    ///
    /// impl Service for Svc1 {
    ///     fn name(&self) -> &str {
    ///         "svc1"
    ///     }
    ///
    ///     async fn handle(&self, _ctx: Ctx, req: AnyRequest) -> Outcome {
    ///         nano::dispatch!(req, { Req => |r| Ok(Resp { value: r.param }) })
    ///     }
    ///
    ///     fn handle_typed<'a>(&'a self, _ctx: &'a Ctx, call: &'a mut dyn Any) -> Typed<'a> {
    ///         let call = call.downcast_mut::<TypedCall<Req>>()?;
    ///         Some(Box::pin(async move {
    ///             if let Some(req) = call.0.take() {
    ///                 call.1 = Some(Ok(Resp { value: req.param }));
    ///             }
    ///         }))
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), NanoError> {
    /// let set = nano::ServiceSet::builder().service(Svc1).build()?;
    /// let resp = set.client("test", "svc1")?.call(&Ctx::new(), Req { param: "x".into() }).await?;
    /// assert_eq!(resp.value, "x");
    /// # Ok(()) }
    /// ```
    fn handle_typed<'a>(&'a self, _ctx: &'a Ctx, _call: &'a mut dyn Any) -> Typed<'a> {
        None
    }
}

/// The object-safe form of [`Service`] the set stores.
pub(crate) trait DynService: Send + Sync + 'static {
    fn init_finished(&self) -> Result<(), NanoError>;
    fn api(&self) -> Option<&'static Api>;
    fn handle(&self, ctx: Ctx, req: AnyRequest) -> BoxFuture<'_, Outcome>;
    fn handle_typed<'a>(&'a self, ctx: &'a Ctx, call: &'a mut dyn Any) -> Typed<'a>;
}

impl<S: Service> DynService for S {
    fn init_finished(&self) -> Result<(), NanoError> {
        Service::init_finished(self)
    }
    fn api(&self) -> Option<&'static Api> {
        Service::api(self)
    }
    fn handle(&self, ctx: Ctx, req: AnyRequest) -> BoxFuture<'_, Outcome> {
        Box::pin(Service::handle(self, ctx, req))
    }
    fn handle_typed<'a>(&'a self, ctx: &'a Ctx, call: &'a mut dyn Any) -> Typed<'a> {
        Service::handle_typed(self, ctx, call)
    }
}

/// A type-erased, shareable service: what clients call and what [`ClientHook`](crate::ClientHook)s
/// wrap.
///
/// It is a slot: a name and, once it is filled, the service. A set hands out clients of its
/// services' slots while the services are still being built, and fills each slot once its
/// service is made; [`SharedService::new`] makes a filled one.
#[derive(Clone)]
pub struct SharedService(Arc<Slot>);

struct Slot {
    name: String,
    service: OnceLock<Arc<dyn DynService>>,
}

impl SharedService {
    /// Erases an initialised service. Its `init` phases do not run again.
    pub fn new<S: Service>(service: S) -> Self {
        let filled = SharedService::slot(Service::name(&service));
        let _ = filled.0.service.set(Arc::new(service));
        filled
    }

    /// An empty slot for the service named `name`.
    pub(crate) fn slot(name: &str) -> Self {
        let (name, service) = (name.to_owned(), OnceLock::new());
        SharedService(Arc::new(Slot { name, service }))
    }

    /// Fills this slot, if it is empty, with the service `with` holds.
    pub(crate) fn fill(&self, with: &SharedService) -> Result<(), NanoError> {
        let _ = self.0.service.set(Arc::clone(with.ready()?));
        Ok(())
    }

    /// The service itself; an error for a slot its set has not filled yet.
    #[inline]
    pub(crate) fn ready(&self) -> Result<&Arc<dyn DynService>, NanoError> {
        let Some(service) = self.0.service.get() else {
            let name = self.name();
            let err = format!("service {name:?} was called before its set finished initialising");
            return Err(NanoError::internal(err));
        };
        Ok(service)
    }

    /// The service's name.
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// The service's declared API, if it has one.
    pub fn api(&self) -> Option<&'static Api> {
        self.ready().ok()?.api()
    }

    /// Starts a typed call when the service handles its request type natively (see
    /// [`Service::handle_typed`]).
    #[inline]
    pub(crate) fn handle_typed<'a>(&'a self, ctx: &'a Ctx, call: &'a mut dyn Any) -> Typed<'a> {
        self.ready().ok()?.handle_typed(ctx, call)
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
