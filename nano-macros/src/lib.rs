//! The macros of nano, re-exported by it: [`api!`] (a service's API declared once) and
//! [`dispatch!`] (a typed type switch over an erased request).
//!
//! This crate holds only the macros, so that the core crate stays small; the types it fills in
//! (`nano::Api`, `nano::Operation`, `nano::Route`) live in `nano`. The expansion names them by
//! the absolute path `::nano::…`, so the crate that invokes the macro must depend on `nano` under
//! that name (the default).

/// Declares a service's API once: its name and, for each request type, the response type, the
/// stable wire name and the HTTP route (or none).
///
/// Invoked in the service's API module, next to the message structs (ordinary serde structs), it
/// writes into that module:
///
/// - `NAME`, the service name, and `API`, the `nano::Api` everything else reads;
/// - the `nano::Request` impl of every request type;
/// - `Handler`, a trait with one async method per request type: a service implements it, so a
///   missing handler is a compile error and no undeclared type can be dispatched;
/// - `Served<H>`, the `nano::Service` that dispatches to a `Handler`, and
///   `service(construct)`, which builds it from the clients of its dependencies when the set is
///   built (see `nano::NewService::construct`).
///
/// Each operation reads `fn method(Request) -> Response = "wire.Name", METHOD "/path";`; leave the
/// route out for a request that is not served over HTTP. With `schemas = schemars` after the
/// service name, the messages must implement `schemars::JsonSchema`, and the API can be exported
/// as a language-independent description (OpenAPI).
///
/// ```
/// use nano::{Client, Ctx, NanoError, ServiceSet};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, Clone, Default, Serialize, Deserialize)]
/// #[serde(default)]
/// pub struct Greet { pub name: String }
/// #[derive(Debug, Clone, Default, Serialize, Deserialize)]
/// #[serde(default)]
/// pub struct Greeting { pub text: String }
///
/// mod greeter {
///     use super::*;
///     nano::api! {
///         /// Greets people.
///         service "greeter";
///         /// Says hello to `name`.
///         fn greet(Greet) -> Greeting = "greeter.Greet", POST "/";
///     }
/// }
///
/// struct Greeter { names: Client }
///
/// impl greeter::Handler for Greeter {
///     async fn greet(&self, ctx: &Ctx, req: Greet) -> Result<Greeting, NanoError> {
///         let name = self.names.call(ctx, req).await?;
///         Ok(Greeting { text: format!("hello {}", name.text) })
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), NanoError> {
/// let names = nano_test::request_fn("names", |_ctx, r: Greet| async move {
///     Ok(Greeting { text: r.name.to_uppercase() })
/// });
/// let set = ServiceSet::builder()
///     .service(greeter::service(|deps| Ok(Greeter { names: deps.client("names")? })))
///     .service(names)
///     .build()?;
/// let reply = set.client("test", greeter::NAME)?.call(&Ctx::new(), Greet { name: "ada".into() }).await?;
/// assert_eq!(reply.text, "hello ADA");
/// assert_eq!(set.dependencies(greeter::NAME), Some(&["names".to_owned()][..]));
/// # Ok(()) }
/// ```
///
/// A `Handler` that leaves out a declared operation does not compile:
///
/// ```compile_fail,E0046
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Debug, Clone, Default, Serialize, Deserialize)] pub struct A {}
/// # #[derive(Debug, Clone, Default, Serialize, Deserialize)] pub struct B {}
/// nano::api! {
///     service "svc";
///     fn a(A) -> B = "svc.A", POST "/a";
///     fn b(B) -> A = "svc.B", POST "/b";
/// }
/// struct Svc;
/// impl Handler for Svc {
///     async fn a(&self, _ctx: &nano::Ctx, _r: A) -> Result<B, nano::NanoError> { Ok(B {}) }
/// }
/// ```
#[macro_export]
macro_rules! api {
    (
        $(#[$meta:meta])*
        service $name:literal $(, schemas = $schemars:ident)?;
        $($operations:tt)+
    ) => {
        // The optional schema crate is passed on as one token tree so that the operations'
        // repetition below can use it.
        $crate::__api! { [$(#[$meta])*] $name [$($schemars)?] $($operations)+ }
    };
}

/// The expansion of [`api!`]; not public API.
#[doc(hidden)]
#[macro_export]
macro_rules! __api {
    (
        [$($meta:tt)*] $name:literal $schemas:tt
        $(
            $(#[doc = $doc:literal])*
            fn $method:ident($req:ty) -> $resp:ty = $wire:literal $(, $verb:ident $path:literal)?;
        )+
    ) => {
        $($meta)*
        pub const NAME: &str = $name;

        $(
            impl ::nano::Request for $req {
                type Response = $resp;
                const NAME: &'static str = $wire;
            }
        )+

        /// The declared API of this service.
        pub static API: ::nano::Api = ::nano::Api {
            name: NAME,
            operations: &[$(
                ::nano::Operation {
                    request: ::nano::RequestType::of::<$req>(),
                    route: $crate::__route!($($verb $path)?),
                    doc: concat!($($doc, "\n",)*),
                    schemas: $crate::__schemas!($schemas; $req, $resp),
                },
            )+],
        };

        $($meta)*
        ///
        /// Implement this trait to serve the API: one method per request type.
        pub trait Handler: Send + Sync + 'static {
            $(
                $(#[doc = $doc])*
                fn $method(
                    &self,
                    ctx: &::nano::Ctx,
                    req: $req,
                ) -> impl ::std::future::Future<
                    Output = ::std::result::Result<$resp, ::nano::NanoError>,
                > + Send;
            )+
        }

        /// The service that dispatches each declared request type to its [`Handler`] method.
        pub struct Served<H>(pub H);

        impl<H: Handler> ::nano::Service for Served<H> {
            fn name(&self) -> &str {
                NAME
            }

            fn api(&self) -> ::std::option::Option<&'static ::nano::Api> {
                ::std::option::Option::Some(&API)
            }

            async fn handle(&self, ctx: ::nano::Ctx, req: ::nano::AnyRequest) -> ::nano::Outcome {
                $(
                    let req = match req.downcast::<$req>() {
                        ::std::result::Result::Ok(req) => {
                            return self.0.$method(&ctx, req).await.map(::nano::AnyResponse::new);
                        }
                        ::std::result::Result::Err(other) => other,
                    };
                )+
                ::std::result::Result::Err(::nano::NanoError::bad_request_type(req.name()))
            }

            // A typed call moves the request from the caller's future into the handler's and the
            // answer back; the boxed future holds four references until its first poll, which
            // keeps it small enough to be written in place.
            fn handle_typed<'a>(
                &'a self,
                ctx: &'a ::nano::Ctx,
                call: &'a mut dyn ::std::any::Any,
            ) -> ::nano::Typed<'a> {
                $(
                    if call.is::<::nano::TypedCall<$req>>() {
                        let call = call.downcast_mut::<::nano::TypedCall<$req>>()?;
                        return ::std::option::Option::Some(::std::boxed::Box::pin(async move {
                            if let ::std::option::Option::Some(req) = call.0.take() {
                                call.1 = ::std::option::Option::Some(self.0.$method(ctx, req).await);
                            }
                        }));
                    }
                )+
                ::std::option::Option::None
            }
        }

        /// This service, built from the clients of its dependencies when the set is built.
        pub fn service<H: Handler>(
            construct: impl FnOnce(&mut ::nano::Dependencies<'_>) -> ::std::result::Result<H, ::nano::NanoError>
                + Send
                + Sync
                + 'static,
        ) -> ::nano::NewService {
            ::nano::NewService::construct(NAME, move |deps| construct(deps).map(Served))
        }
    };
}

/// Writes the route of one operation of [`api!`]; not public API.
#[doc(hidden)]
#[macro_export]
macro_rules! __route {
    () => {
        ::std::option::Option::None
    };
    ($verb:ident $path:literal) => {
        ::std::option::Option::Some(::nano::Route {
            method: stringify!($verb),
            path: $path,
        })
    };
}

/// Writes the schema function of one operation of [`api!`]; not public API.
#[doc(hidden)]
#[macro_export]
macro_rules! __schemas {
    ([]; $req:ty, $resp:ty) => {
        ::std::option::Option::None
    };
    ([$schemars:ident]; $req:ty, $resp:ty) => {
        ::std::option::Option::Some(|generator| {
            let generator = generator.downcast_mut::<$schemars::SchemaGenerator>()?;
            let request = generator.subschema_for::<$req>().to_value();
            let response = generator.subschema_for::<$resp>().to_value();
            ::std::option::Option::Some((request, response))
        })
    };
}

/// Dispatches a type-erased request to the arm of its type, like the Go original's type switch.
///
/// Each arm is `Type => |binding| expression`, where the expression (which may `.await`) evaluates
/// to `Result<<Type as Request>::Response, NanoError>`: answering with the wrong response type is a
/// compile error. A request of any other type evaluates to `Err` with `C-BAD-REQUEST-TYPE`. The
/// whole macro evaluates to an `nano::Outcome`.
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
        match ::nano::AnyRequest::downcast::<$ty>($req) {
            ::std::result::Result::Ok($bind) => {
                let outcome: ::std::result::Result<
                    <$ty as ::nano::Request>::Response,
                    ::nano::NanoError,
                > = $body;
                outcome.map(::nano::AnyResponse::new)
            }
            ::std::result::Result::Err(unhandled) => $crate::dispatch!(unhandled, { $($($rest)*)? }),
        }
    };
    ($req:expr, {}) => {
        ::std::result::Result::Err(::nano::NanoError::bad_request_type(
            ::nano::AnyRequest::name(&$req),
        ))
    };
}
