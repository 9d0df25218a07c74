//! Services made of closures: [`service_fn`] and [`request_fn`], the basis of one-line mocks.

use std::future::Future;
use std::marker::PhantomData;

use nano::{AnyRequest, AnyResponse, Ctx, NanoError, Outcome, Request, Service};

/// A service made of a name and a closure over type-erased requests: see [`service_fn`].
pub struct ServiceFn<F> {
    name: String,
    handler: F,
}

/// Builds a service from a name and a closure `(Ctx, AnyRequest) -> impl Future<Output = Outcome>`.
///
/// This is how a whole service is mocked in one expression; [`nano::dispatch!`] inside
/// the closure handles several request types.
///
/// ```
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Debug, Clone, Default, Serialize, Deserialize)] pub struct Req { pub param: String }
/// # #[derive(Debug, Clone, Default, Serialize, Deserialize)] pub struct Resp { pub value: String }
/// # impl nano::Request for Req { type Response = Resp; const NAME: &'static str = "svc1.Req"; }
/// let mock = nano_test::service_fn("svc1", |_ctx, req| async move {
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
/// let mock = nano_test::request_fn("svc1", |_ctx, r: Req| async move {
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
