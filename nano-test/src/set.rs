//! [`TestSet`]: real services and mocks in one set, with a client for the test itself.

use std::fmt;
use std::sync::Arc;

use nano::{
    AnyRequest, AnyResponse, Client, ClientHook, Ctx, Edge, NanoError, Request, ServiceSet,
    ServiceSetBuilder, SharedService,
};
use nano_wire::EdgeAuth;

use crate::fidelity::TransportFidelity;
use crate::mock::{Mock, VerificationError};
use crate::spec::Spec;
use crate::{CallNode, CallRecorder};

/// The caller name a [`TestSet`] calls its services under unless told otherwise.
pub const DEFAULT_CALLER: &str = "test";

/// A set of real services and mocks for one test, built in one expression.
///
/// Every call through the set is recorded as a call tree (for
/// [`snapshot!`](crate::snapshot!) and assertions); [`fidelity`](TestSetBuilder::fidelity)
/// puts a simulated transport between every caller and callee. The mocks the set owns are
/// verified when it is dropped (unless the test is already panicking) or by
/// [`verify`](TestSet::verify).
///
/// [`call_at_edge`](TestSet::call_at_edge) sends a request the way a client of a server does: it
/// runs the edge steps the HTTP listener runs — with an [`EdgeAuth`]
/// ([`edge_auth`](TestSetBuilder::edge_auth)), the `Authorization` value goes to the auth
/// service and the identity into the callee's context — through the same `nano_wire` code, so a
/// business-logic test of a protected endpoint gets the server's `C-UNAUTHORIZED` and
/// `C-FORBIDDEN` without a server.
///
/// ```
/// use nano::{Ctx, NanoError};
/// use nano_test::{Mock, TestSet};
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)] pub struct Req { pub param: String }
/// # #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)] pub struct Resp { pub value: String }
/// # impl nano::Request for Req { type Response = Resp; const NAME: &'static str = "svc1.Req"; }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), NanoError> {
/// let t = TestSet::builder()
///     .mock(Mock::answering("svc1", |_ctx, r: Req| Ok(Resp { value: format!("svc1_{}", r.param) })))
///     .fidelity()
///     .build()?;
/// let resp = t.call("svc1", Req { param: "x".into() }).await?;
/// assert_eq!(resp.value, "svc1_x");
/// assert_eq!(t.mock("svc1").unwrap().calls()[0].caller(), Some("test"));
/// assert_eq!(t.last_call_tree().unwrap().service, "svc1");
/// # Ok(()) }
/// ```
pub struct TestSet {
    set: ServiceSet,
    caller: String,
    mocks: Vec<Mock>,
    recorder: CallRecorder,
    spec: Spec,
    edge: Option<EdgeAuth>,
}

/// A hook kept by the builder until the set is built.
struct SharedHook(Arc<dyn ClientHook>);

impl ClientHook for SharedHook {
    fn wrap(&self, edge: &Edge, next: SharedService) -> SharedService {
        self.0.wrap(edge, next)
    }
}

/// Builds a [`TestSet`]; see [`TestSet::builder`].
pub struct TestSetBuilder {
    builder: ServiceSetBuilder,
    hooks: Vec<SharedHook>,
    mocks: Vec<Mock>,
    fidelity: Option<TransportFidelity>,
    caller: String,
    spec: Spec,
    edge: Option<EdgeAuth>,
}

impl TestSet {
    /// Starts building a test set.
    pub fn builder() -> TestSetBuilder {
        TestSetBuilder {
            builder: ServiceSet::builder(),
            hooks: Vec::new(),
            mocks: Vec::new(),
            fidelity: None,
            caller: DEFAULT_CALLER.to_owned(),
            spec: Spec::default(),
            edge: None,
        }
    }

    /// A client for calls from the test (under its caller name) to `service`.
    ///
    /// # Errors
    ///
    /// `S-UNKNOWN-SERVICE` when `service` is not in the set.
    pub fn client(&self, service: &str) -> Result<Client, NanoError> {
        self.set.client(&self.caller, service)
    }

    /// Sends `request` to `service` under a fresh [`Ctx`].
    ///
    /// # Errors
    ///
    /// The call's error, or `S-UNKNOWN-SERVICE` when `service` is not in the set.
    pub async fn call<R: Request>(
        &self,
        service: &str,
        request: R,
    ) -> Result<R::Response, NanoError> {
        self.call_with(&Ctx::new(), service, request).await
    }

    /// Sends `request` to `service` under `ctx`.
    ///
    /// # Errors
    ///
    /// As [`call`](TestSet::call).
    pub async fn call_with<R: Request>(
        &self,
        ctx: &Ctx,
        service: &str,
        request: R,
    ) -> Result<R::Response, NanoError> {
        self.client(service)?.call(ctx, request).await
    }

    /// Sends `request` to `service` as a client of a server would, with the `Authorization`
    /// value `authorization` (e.g. `Some("Bearer abc")`, or `None` for none): through the
    /// set's edge, exactly as the HTTP listener runs it. A request type the
    /// [`EdgeAuth`] protects is answered `C-UNAUTHORIZED` or `C-FORBIDDEN` when its token is
    /// refused, and otherwise reaches the service with the identity in the context's metadata.
    /// The set needs an edge: [`edge_auth`](TestSetBuilder::edge_auth), or
    /// [`system`](TestSetBuilder::system) of a system with one.
    ///
    /// ```
    /// use nano::{Ctx, NanoError};
    /// use nano_test::{TestSet, request_fn};
    /// use nano_wire::{AuthQuery, EdgeAuth};
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Debug, Clone, Default, Serialize, Deserialize)] pub struct Verify { pub token: String }
    /// # #[derive(Debug, Clone, Default, Serialize, Deserialize)] pub struct User { pub name: String }
    /// # #[derive(Debug, Clone, Default, Serialize, Deserialize)] pub struct WhoAmI {}
    /// # impl nano::Request for Verify { type Response = User; const NAME: &'static str = "auth.Verify"; }
    /// # impl nano::Request for WhoAmI { type Response = User; const NAME: &'static str = "front.WhoAmI"; }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), NanoError> {
    /// let auth = request_fn("auth", |_ctx, r: Verify| async move {
    ///     if r.token == "t-ada" { Ok(User { name: "ada".into() }) }
    ///     else { Err(NanoError::new(nano_wire::codes::UNAUTHORIZED, "unknown token")) }
    /// });
    /// let front = request_fn("front", |ctx: Ctx, _r: WhoAmI| async move {
    ///     Ok(User { name: ctx.metadata("user").unwrap_or_default().to_owned() })
    /// });
    /// let edge = EdgeAuth::new("auth", |q: AuthQuery| Verify { token: q.token }, |u: User| u.name)
    ///     .protect::<WhoAmI>();
    /// let t = TestSet::builder().service(auth).service(front).edge_auth(edge).build()?;
    ///
    /// assert_eq!(t.call_at_edge(Some("Bearer t-ada"), "front", WhoAmI {}).await?.name, "ada");
    /// let err = t.call_at_edge(None, "front", WhoAmI {}).await.unwrap_err();
    /// assert_eq!(err.code(), "C-UNAUTHORIZED");
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// The edge's refusal, the call's error, `S-UNKNOWN-SERVICE` when `service` is not in the
    /// set, or `S-ERROR` when the set has no edge.
    pub async fn call_at_edge<R: Request>(
        &self,
        authorization: Option<&str>,
        service: &str,
        request: R,
    ) -> Result<R::Response, NanoError> {
        let client = self.client(service)?;
        let ctx = self
            .admit(Ctx::new(), service, R::NAME, authorization)
            .await?;
        client.call(&ctx, request).await
    }

    /// The type-erased form of [`call_at_edge`](TestSet::call_at_edge), under `ctx`.
    ///
    /// # Errors
    ///
    /// As [`call_at_edge`](TestSet::call_at_edge).
    pub async fn call_any_at_edge(
        &self,
        ctx: &Ctx,
        authorization: Option<&str>,
        service: &str,
        request: AnyRequest,
    ) -> Result<AnyResponse, NanoError> {
        let client = self.client(service)?;
        let ctx = self
            .admit(ctx.clone(), service, request.name(), authorization)
            .await?;
        client.call_any(&ctx, request).await
    }

    /// The edge's admission of a call: the context the callee gets, or the refusal.
    async fn admit(
        &self,
        ctx: Ctx,
        service: &str,
        request: &str,
        authorization: Option<&str>,
    ) -> Result<Ctx, NanoError> {
        match &self.edge {
            Some(edge) => {
                // One value or none: what an HTTP client sends with one header or without.
                let authorization = authorization.map(str::as_bytes);
                edge.admit(&self.set, ctx, service, request, authorization.as_slice())
                    .await
            }
            // A test that asks for the edge and silently got none would check nothing.
            None => Err(NanoError::internal(
                "call_at_edge needs an edge: build the TestSet with edge_auth(..), or with \
                 system(..) of a system that has System::auth",
            )),
        }
    }

    /// Sends a type-erased request to `service` under `ctx`.
    ///
    /// # Errors
    ///
    /// As [`call`](TestSet::call).
    pub async fn call_any(
        &self,
        ctx: &Ctx,
        service: &str,
        request: AnyRequest,
    ) -> Result<AnyResponse, NanoError> {
        self.client(service)?.call_any(ctx, request).await
    }

    /// The underlying set.
    pub fn set(&self) -> &ServiceSet {
        &self.set
    }

    /// The caller name the test calls under.
    pub fn caller(&self) -> &str {
        &self.caller
    }

    /// The mock of `service`, if the set owns one.
    pub fn mock(&self, service: &str) -> Option<&Mock> {
        self.mocks.iter().find(|mock| mock.name() == service)
    }

    /// The spec snapshots and mocks of this set use.
    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    /// The recorder of every call made through the set.
    pub fn recorder(&self) -> &CallRecorder {
        &self.recorder
    }

    /// Every call tree so far, one per call the test made, in order.
    pub fn call_trees(&self) -> Vec<CallNode> {
        self.recorder.trees()
    }

    /// The call tree of the test's most recent call.
    pub fn last_call_tree(&self) -> Option<CallNode> {
        self.recorder.last_tree()
    }

    /// Verifies every mock the set owns, e.g. `t.verify()?` in a test.
    ///
    /// # Errors
    ///
    /// The problems of the mock that fails verification; when several fail, one error names
    /// them all and lists every problem, each prefixed with its mock.
    pub fn verify(&self) -> Result<(), VerificationError> {
        let mut failures: Vec<VerificationError> = self
            .mocks
            .iter()
            .filter_map(|mock| mock.verify().err())
            .collect();
        match failures.len() {
            0 => Ok(()),
            1 => Err(failures.remove(0)),
            _ => Err(VerificationError {
                mock: failures
                    .iter()
                    .map(|f| f.mock.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                problems: failures
                    .iter()
                    .flat_map(|f| f.problems.iter().map(move |p| format!("{}: {p}", f.mock)))
                    .collect(),
            }),
        }
    }

    /// Takes the mocks out of the set, so the set no longer verifies them when it is dropped.
    /// Each [`Mock`] still verifies itself when it is dropped; consume it with
    /// [`Mock::finish`] to check its result without that.
    pub fn into_mocks(mut self) -> Vec<Mock> {
        std::mem::take(&mut self.mocks)
    }
}

impl fmt::Debug for TestSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestSet")
            .field("set", &self.set)
            .field("caller", &self.caller)
            .field("mocks", &self.mocks)
            .finish()
    }
}

impl TestSetBuilder {
    /// Adds a real service.
    #[must_use]
    pub fn service(mut self, service: impl Into<nano::NewService>) -> Self {
        self.builder = self.builder.service(service);
        self
    }

    /// Adds an already erased service.
    #[must_use]
    pub fn shared(mut self, service: SharedService) -> Self {
        self.builder = self.builder.shared(service);
        self
    }

    /// Adds services with a function over the builder, e.g. one that adds a whole system's services.
    #[must_use]
    pub fn services(mut self, add: impl FnOnce(ServiceSetBuilder) -> ServiceSetBuilder) -> Self {
        self.builder = add(self.builder);
        self
    }

    /// Adds every service of `system` and, when it has one, its edge
    /// ([`System::auth`](nano_server::System::auth)) for
    /// [`call_at_edge`](TestSet::call_at_edge): the services as the system's servers run them.
    ///
    /// ```
    /// # use nano::{Ctx, NanoError};
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Debug, Clone, Default, Serialize, Deserialize)] pub struct Hello { pub name: String }
    /// # mod greeter { nano::api! { service "greeter"; fn hello(super::Hello) -> super::Hello = "greeter.Hello"; } }
    /// # struct Greeter;
    /// # impl greeter::Handler for Greeter {
    /// #     async fn hello(&self, _: &Ctx, r: Hello) -> Result<Hello, NanoError> { Ok(r) }
    /// # }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), NanoError> {
    /// let system = nano_server::System::new("greetings")
    ///     .service(&greeter::API, || greeter::service(|_| Ok(Greeter)));
    /// let t = nano_test::TestSet::builder().system(&system).build()?;
    /// assert_eq!(t.call("greeter", Hello { name: "ada".into() }).await?.name, "ada");
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn system(mut self, system: &nano_server::System) -> Self {
        self.builder = system.all(self.builder);
        if let Some(edge) = system.edge_auth() {
            self.edge = Some(edge.clone());
        }
        self
    }

    /// Adds a mock; the set owns it, verifies it on drop and gives it back with
    /// [`TestSet::mock`].
    #[must_use]
    pub fn mock(mut self, mock: Mock) -> Self {
        self.builder = self.builder.service(mock.service());
        self.mocks.push(mock);
        self
    }

    /// Puts a simulated transport between every caller and callee; see [`TransportFidelity`].
    #[must_use]
    pub fn fidelity(self) -> Self {
        self.with_fidelity(TransportFidelity::new())
    }

    /// Like [`fidelity`](TestSetBuilder::fidelity) with a configured hook.
    #[must_use]
    pub fn with_fidelity(mut self, fidelity: TransportFidelity) -> Self {
        self.fidelity = Some(fidelity);
        self
    }

    /// Adds a client hook. It sits inside the call recorder and outside the fidelity hook.
    #[must_use]
    pub fn hook(mut self, hook: impl ClientHook) -> Self {
        self.hooks.push(SharedHook(Arc::new(hook)));
        self
    }

    /// The caller name the test calls under (default [`DEFAULT_CALLER`]).
    #[must_use]
    pub fn caller(mut self, caller: impl Into<String>) -> Self {
        self.caller = caller.into();
        self
    }

    /// Runs the edge steps of `auth` for the calls made with
    /// [`call_at_edge`](TestSet::call_at_edge), as `nano_http::HttpListener` with the same
    /// [`EdgeAuth`] does. Its auth service must be in the set (real or a mock).
    #[must_use]
    pub fn edge_auth(mut self, auth: EdgeAuth) -> Self {
        self.edge = Some(auth);
        self
    }

    /// The spec for snapshots, for the recorded call trees and for mocks that were not given
    /// their own; with [`Spec::keep_secrets`] the trees keep their secrets too.
    #[must_use]
    pub fn spec(mut self, spec: Spec) -> Self {
        self.spec = spec;
        self
    }

    /// Builds the set: the call recorder outermost, then the added hooks, then the fidelity hook
    /// next to the callee, so recordings show what the caller sent and got back.
    ///
    /// # Errors
    ///
    /// What [`ServiceSetBuilder::build`] reports (a missing dependency, a duplicate name, a
    /// failed init).
    pub fn build(self) -> Result<TestSet, NanoError> {
        // The spec's opt-in to secrets is the recorder's too.
        let recorder = CallRecorder::with_redaction(self.spec.secrets());
        let mut builder = self.builder.hook(recorder.clone());
        for hook in self.hooks {
            builder = builder.hook(hook);
        }
        // The edge runs where the listener would, behind the simulated wire from the test.
        let fidelity = match (self.fidelity, &self.edge) {
            (Some(fidelity), Some(edge)) => {
                Some(fidelity.keep_metadata_from(self.caller.clone(), edge.key()))
            }
            (fidelity, _) => fidelity,
        };
        if let Some(fidelity) = &fidelity {
            builder = builder.hook(fidelity.clone());
        }
        for mock in &self.mocks {
            mock.default_spec(&self.spec);
        }
        let set = match builder.build() {
            Ok(set) => set,
            Err(err) => {
                // The set never ran: its mocks have nothing to verify, and a verification panic
                // would hide the build error.
                for mock in self.mocks {
                    let _ = mock.finish();
                }
                return Err(err);
            }
        };
        if let Some(fidelity) = &fidelity {
            fidelity.learn_apis(&set)?;
        }
        Ok(TestSet {
            set,
            caller: self.caller,
            mocks: self.mocks,
            recorder,
            spec: self.spec,
            edge: self.edge,
        })
    }
}

impl fmt::Debug for TestSetBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestSetBuilder")
            .field("mocks", &self.mocks)
            .field("fidelity", &self.fidelity)
            .field("caller", &self.caller)
            .finish()
    }
}
