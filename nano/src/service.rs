//! The [`Service`] trait, its type-erased form and closure-built services.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;

use crate::ctx::Ctx;
use crate::error::NanoError;
use crate::message::{AnyRequest, AnyResponse, Request};
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

    /// Handles one request.
    fn handle(&self, ctx: Ctx, req: AnyRequest) -> impl Future<Output = Outcome> + Send;
}

/// The object-safe form of [`Service`] the set stores.
pub(crate) trait DynService: Send + Sync + 'static {
    fn name(&self) -> &str;
    fn init(&mut self, deps: &mut Dependencies<'_>) -> Result<(), NanoError>;
    fn init_finished(&self) -> Result<(), NanoError>;
    fn handle(&self, ctx: Ctx, req: AnyRequest) -> BoxFuture<'_, Outcome>;
}

impl<S: Service> DynService for S {
    fn name(&self) -> &str {
        Service::name(self)
    }
    fn init(&mut self, deps: &mut Dependencies<'_>) -> Result<(), NanoError> {
        Service::init(self, deps)
    }
    fn init_finished(&self) -> Result<(), NanoError> {
        Service::init_finished(self)
    }
    fn handle(&self, ctx: Ctx, req: AnyRequest) -> BoxFuture<'_, Outcome> {
        Box::pin(Service::handle(self, ctx, req))
    }
}

/// A type-erased, shareable service: what clients call and what [`ClientHook`](crate::ClientHook)s
/// wrap.
#[derive(Clone)]
pub struct SharedService(pub(crate) Arc<dyn DynService>);

impl SharedService {
    /// Erases an initialised service. Its `init` phases do not run again.
    pub fn new<S: Service>(service: S) -> Self {
        SharedService(Arc::new(service))
    }

    /// The service's name.
    pub fn name(&self) -> &str {
        self.0.name()
    }

    /// Calls the handler directly, bypassing clients and hooks.
    pub fn handle(&self, ctx: Ctx, req: AnyRequest) -> BoxFuture<'_, Outcome> {
        self.0.handle(ctx, req)
    }
}

impl fmt::Debug for SharedService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SharedService").field(&self.name()).finish()
    }
}

/// A service made of a name and a closure over type-erased requests: see [`service_fn`].
pub struct ServiceFn<F> {
    name: String,
    handler: F,
}

/// Builds a service from a name and a closure `(Ctx, AnyRequest) -> impl Future<Output = Outcome>`.
///
/// This is how a whole service is mocked in one expression; [`dispatch!`](crate::dispatch) inside
/// the closure handles several request types.
///
/// ```
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Debug, Clone, Default, Serialize, Deserialize)] pub struct Req { pub param: String }
/// # #[derive(Debug, Clone, Default, Serialize, Deserialize)] pub struct Resp { pub value: String }
/// # impl nano::Request for Req { type Response = Resp; const NAME: &'static str = "svc1.Req"; }
/// let mock = nano::service_fn("svc1", |_ctx, req| async move {
///     nano::dispatch!(req, {
///         Req => |r| Ok(Resp { value: format!("mock_{}", r.param) }),
///     })
/// });
/// ```
pub fn service_fn<F, Fut>(name: impl Into<String>, handler: F) -> ServiceFn<F>
where
    F: Fn(Ctx, AnyRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send,
{
    ServiceFn {
        name: name.into(),
        handler,
    }
}

impl<F, Fut> Service for ServiceFn<F>
where
    F: Fn(Ctx, AnyRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send,
{
    fn name(&self) -> &str {
        &self.name
    }

    fn handle(&self, ctx: Ctx, req: AnyRequest) -> impl Future<Output = Outcome> + Send {
        (self.handler)(ctx, req)
    }
}

/// A service that handles exactly one request type with a typed closure: see [`request_fn`].
pub struct RequestFn<R, F> {
    name: String,
    handler: F,
    request: PhantomData<fn(R)>,
}

/// Builds a service that answers one request type `R` with a typed closure
/// `(Ctx, R) -> impl Future<Output = Result<R::Response, NanoError>>`; any other request type gets
/// `C-BAD-REQUEST-TYPE`.
///
/// ```
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Debug, Clone, Default, Serialize, Deserialize)] pub struct Req { pub param: String }
/// # #[derive(Debug, Clone, Default, Serialize, Deserialize)] pub struct Resp { pub value: String }
/// # impl nano::Request for Req { type Response = Resp; const NAME: &'static str = "svc1.Req"; }
/// let mock = nano::request_fn("svc1", |_ctx, r: Req| async move {
///     Ok(Resp { value: format!("mock_{}", r.param) })
/// });
/// ```
pub fn request_fn<R, F, Fut>(name: impl Into<String>, handler: F) -> RequestFn<R, F>
where
    R: Request,
    F: Fn(Ctx, R) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<R::Response, NanoError>> + Send,
{
    RequestFn {
        name: name.into(),
        handler,
        request: PhantomData,
    }
}

impl<R, F, Fut> Service for RequestFn<R, F>
where
    R: Request,
    F: Fn(Ctx, R) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<R::Response, NanoError>> + Send,
{
    fn name(&self) -> &str {
        &self.name
    }

    async fn handle(&self, ctx: Ctx, req: AnyRequest) -> Outcome {
        match req.downcast::<R>() {
            Ok(req) => (self.handler)(ctx, req).await.map(AnyResponse::new),
            Err(other) => Err(NanoError::bad_request_type(other.name())),
        }
    }
}

/// Dispatches a type-erased request to the arm of its type, like the Go original's type switch.
///
/// Each arm is `Type => |binding| expression`, where the expression (which may `.await`) evaluates
/// to `Result<<Type as Request>::Response, NanoError>`: answering with the wrong response type is a
/// compile error. A request of any other type evaluates to `Err` with `C-BAD-REQUEST-TYPE`. The
/// whole macro evaluates to an [`Outcome`].
///
/// ```
/// # use nano::{AnyRequest, Outcome};
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Debug, Clone, Default, Serialize, Deserialize)] pub struct Req { pub param: String }
/// # #[derive(Debug, Clone, Default, Serialize, Deserialize)] pub struct GetReq {}
/// # #[derive(Debug, Clone, Default, Serialize, Deserialize)] pub struct Resp { pub value: String }
/// # impl nano::Request for Req { type Response = Resp; const NAME: &'static str = "svc2.Req"; }
/// # impl nano::Request for GetReq { type Response = Resp; const NAME: &'static str = "svc2.GetReq"; }
/// async fn handle(req: AnyRequest) -> Outcome {
///     nano::dispatch!(req, {
///         Req => |r| Ok(Resp { value: r.param }),
///         GetReq => |_| Ok(Resp { value: "get".into() }),
///     })
/// }
/// ```
#[macro_export]
macro_rules! dispatch {
    ($req:expr, { $ty:ty => |$bind:pat_param| $body:expr $(, $($rest:tt)*)? }) => {
        match $crate::AnyRequest::downcast::<$ty>($req) {
            ::std::result::Result::Ok($bind) => {
                let outcome: ::std::result::Result<
                    <$ty as $crate::Request>::Response,
                    $crate::NanoError,
                > = $body;
                outcome.map($crate::AnyResponse::new)
            }
            ::std::result::Result::Err(unhandled) => $crate::dispatch!(unhandled, { $($($rest)*)? }),
        }
    };
    ($req:expr, {}) => {
        ::std::result::Result::Err($crate::NanoError::bad_request_type(
            $crate::AnyRequest::name(&$req),
        ))
    };
}
