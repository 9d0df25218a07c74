//! [`Mock`]: a stand-in for a whole service, with expectations, recorded calls and verification.

mod expectation;

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use nano::{AnyRequest, BoxFuture, Ctx, NanoError, Outcome, Request, Service};
use serde_json::Value;
use tokio::time::Instant;

use crate::CallOutcome;
use crate::codes;
use crate::spec::{Spec, Target};

pub use expectation::{Expectation, Sequence, Times};
use expectation::{ExpectationState, Responder};

type Fallback = Box<dyn Fn(Ctx, AnyRequest) -> BoxFuture<'static, Outcome> + Send + Sync>;

/// A mock of a whole service: answers by [expectations](Mock::expect) (and, when built from a
/// closure, by that closure for everything no expectation takes), records every call, and fails
/// the test when it was not used as expected.
///
/// The `Mock` value is the test's handle; [`service`](Mock::service) gives the [`MockService`] to
/// put in a set (or hand it to a [`TestSet`](crate::TestSet) builder, which does both).
///
/// - A call that no expectation accepts answers `S-UNEXPECTED-CALL` with a message that shows the
///   request and the closest expectation with a field-level diff, and is remembered as a failure:
///   even if the service under test swallows the error, verification fails.
/// - [`verify`](Mock::verify) checks every expectation's call count and reports every failure; it
///   runs by itself when the `Mock` is dropped, unless the thread is already panicking (so a
///   failing test shows its own panic, not a second one).
///
/// ```
/// use nano::{Ctx, NanoError, ServiceSet};
/// use nano_test::Mock;
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)] pub struct Req { pub param: String }
/// # #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)] pub struct Resp { pub value: String }
/// # impl nano::Request for Req { type Response = Resp; const NAME: &'static str = "svc4.Req"; }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), NanoError> {
/// let svc4 = Mock::new("svc4");
/// svc4.expect::<Req>()
///     .with(Req { param: "a".into() })
///     .returning(Resp { value: "svc4_a".into() })
///     .once();
/// svc4.expect::<Req>()
///     .matching(|r| r.param.starts_with("missing"))
///     .returning_err(NanoError::not_found("no such param"))
///     .times(1..);
///
/// let set = ServiceSet::builder().service(svc4.service()).build()?;
/// let client = set.client("test", "svc4")?;
/// let ctx = Ctx::new();
/// assert_eq!(client.call(&ctx, Req { param: "a".into() }).await?.value, "svc4_a");
/// assert!(client.call(&ctx, Req { param: "missing-1".into() }).await.is_err());
///
/// assert_eq!(svc4.calls()[0].caller(), Some("test"));
/// assert_eq!(svc4.calls_of::<Req>()[1].param, "missing-1");
/// svc4.verify().unwrap();
/// # Ok(()) }
/// ```
pub struct Mock {
    shared: Arc<MockShared>,
    armed: bool,
}

pub(crate) struct MockShared {
    pub(crate) name: String,
    state: Mutex<MockState>,
    fallback: Option<Fallback>,
}

pub(crate) struct MockState {
    pub(crate) expectations: Vec<ExpectationState>,
    calls: Vec<MockCall>,
    failures: Vec<String>,
    spec: Spec,
    spec_set: bool,
}

impl MockShared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, MockState> {
        // A test that panicked while holding the lock must still be able to verify and report.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Mock {
    /// A strict mock named `name`: it answers only through expectations.
    pub fn new(name: impl Into<String>) -> Mock {
        Mock::build(name.into(), None)
    }

    /// A mock that answers every call no expectation takes with `handler`, the whole service in
    /// one closure. See also [`mock!`](crate::mock!) for a multi-request mock in the style of
    /// [`nano::dispatch!`].
    ///
    /// ```
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Debug, Clone, Default, Serialize, Deserialize)] pub struct Req { pub param: String }
    /// # #[derive(Debug, Clone, Default, Serialize, Deserialize)] pub struct Resp { pub value: String }
    /// # impl nano::Request for Req { type Response = Resp; const NAME: &'static str = "svc1.Req"; }
    /// let svc1 = nano_test::Mock::from_fn("svc1", |_ctx, req| async move {
    ///     nano::dispatch!(req, { Req => |r| Ok(Resp { value: format!("svc1_{}", r.param) }) })
    /// });
    /// ```
    pub fn from_fn<F, Fut>(name: impl Into<String>, handler: F) -> Mock
    where
        F: Fn(Ctx, AnyRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Outcome> + Send + 'static,
    {
        let fallback: Fallback = Box::new(move |ctx, req| Box::pin(handler(ctx, req)));
        Mock::build(name.into(), Some(fallback))
    }

    /// A mock that answers the request type `R` with a typed closure, in one line; other request
    /// types get `C-BAD-REQUEST-TYPE`.
    ///
    /// ```
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Debug, Clone, Default, Serialize, Deserialize)] pub struct Req { pub param: String }
    /// # #[derive(Debug, Clone, Default, Serialize, Deserialize)] pub struct Resp { pub value: String }
    /// # impl nano::Request for Req { type Response = Resp; const NAME: &'static str = "svc1.Req"; }
    /// let svc1 = nano_test::Mock::answering("svc1", |_ctx, r: Req| Ok(Resp { value: r.param }));
    /// ```
    pub fn answering<R, F>(name: impl Into<String>, handler: F) -> Mock
    where
        R: Request,
        F: Fn(&Ctx, R) -> Result<R::Response, NanoError> + Send + Sync + 'static,
    {
        Mock::from_fn(name, move |ctx, req| {
            std::future::ready(match req.downcast::<R>() {
                Ok(req) => handler(&ctx, req).map(nano::AnyResponse::new),
                Err(other) => Err(NanoError::bad_request_type(other.name())),
            })
        })
    }

    fn build(name: String, fallback: Option<Fallback>) -> Mock {
        Mock {
            shared: Arc::new(MockShared {
                name,
                state: Mutex::new(MockState {
                    expectations: Vec::new(),
                    calls: Vec::new(),
                    failures: Vec::new(),
                    spec: Spec::default(),
                    spec_set: false,
                }),
                fallback,
            }),
            armed: true,
        }
    }

    /// The name of the mocked service.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Compares [`with`](Expectation::with) values under `spec` instead of the default spec.
    #[must_use]
    pub fn with_spec(self, spec: Spec) -> Mock {
        {
            let mut state = self.shared.lock();
            state.spec = spec;
            state.spec_set = true;
        }
        self
    }

    /// Uses `spec` unless the mock was given one with [`with_spec`](Mock::with_spec).
    pub(crate) fn default_spec(&self, spec: &Spec) {
        let mut state = self.shared.lock();
        if !state.spec_set {
            state.spec = spec.clone();
        }
    }

    /// Adds an expectation for requests of type `R`; configure it through the returned value.
    pub fn expect<R: Request>(&self) -> Expectation<R> {
        let index = {
            let mut state = self.shared.lock();
            let index = state.expectations.len();
            state
                .expectations
                .push(ExpectationState::new(index, nano::RequestType::of::<R>()));
            index
        };
        Expectation::new(Arc::clone(&self.shared), index)
    }

    /// The service to put into a set; every clone feeds this mock.
    pub fn service(&self) -> MockService {
        MockService {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Every call so far, in the order they arrived.
    pub fn calls(&self) -> Vec<MockCall> {
        self.shared.lock().calls.clone()
    }

    /// The requests of type `R` received so far, in order.
    pub fn calls_of<R: Request>(&self) -> Vec<R> {
        self.shared
            .lock()
            .calls
            .iter()
            .filter_map(|call| call.request_as::<R>().cloned())
            .collect()
    }

    /// How many calls arrived so far.
    pub fn call_count(&self) -> usize {
        self.shared.lock().calls.len()
    }

    /// Checks every expectation's call count and reports every failed call, e.g.
    /// `mock.verify()?` in a test. The mock verifies again when it is dropped (and panics
    /// then, unless the thread is already panicking); [`finish`](Mock::finish) verifies once
    /// and stops that.
    ///
    /// # Errors
    ///
    /// A [`VerificationError`] listing every problem.
    pub fn verify(&self) -> Result<(), VerificationError> {
        let state = self.shared.lock();
        let mut problems = state.failures.clone();
        for expectation in &state.expectations {
            let calls = expectation.calls();
            if !expectation.times.contains(calls) {
                problems.push(format!(
                    "{} wants {}, got {calls}",
                    expectation.label(),
                    expectation.times
                ));
            }
            if let Some(Err(why)) = &expectation.expected {
                problems.push(format!("{}: {why}", expectation.label()));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(VerificationError {
                mock: self.shared.name.clone(),
                problems,
            })
        }
    }

    /// Verifies and consumes the mock, so it does not verify again on drop. Useful to assert on
    /// a failure instead of failing the test.
    ///
    /// # Errors
    ///
    /// As [`verify`](Mock::verify).
    pub fn finish(mut self) -> Result<(), VerificationError> {
        self.armed = false;
        self.verify()
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        // A second panic while unwinding would abort the test binary and hide the first failure.
        if self.armed
            && !std::thread::panicking()
            && let Err(err) = self.verify()
        {
            panic!("{err}");
        }
    }
}

impl fmt::Debug for Mock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.lock();
        f.debug_struct("Mock")
            .field("name", &self.shared.name)
            .field("expectations", &state.expectations.len())
            .field("calls", &state.calls.len())
            .finish()
    }
}

/// Why a [`Mock`] failed verification: every unmet expectation and every failed call.
#[derive(Clone, PartialEq, Eq)]
pub struct VerificationError {
    /// The mocked service.
    pub mock: String,
    /// One message per problem, in the order they happened (failed calls first).
    pub problems: Vec<String>,
}

/// The readable report, also when a test returns this error with `?` (the test harness prints
/// the `Debug` form of a returned error).
impl fmt::Debug for VerificationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for VerificationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "mock {:?} failed verification:", self.mock)?;
        for problem in &self.problems {
            write!(f, "\n- {}", problem.replace('\n', "\n  "))?;
        }
        Ok(())
    }
}

impl std::error::Error for VerificationError {}

/// One call a mock received: the context as the mock saw it, the request, the expectation that
/// took it and how it ended.
#[derive(Debug, Clone)]
pub struct MockCall {
    /// The context the mock's handler got (request id, caller, deadline, metadata…).
    pub ctx: Ctx,
    /// The request.
    pub request: AnyRequest,
    /// The label of the expectation that answered, `None` for the fallback handler or a failure.
    pub expectation: Option<String>,
    /// How the call ended; `None` while it runs.
    pub outcome: Option<CallOutcome>,
}

impl MockCall {
    /// The caller's name.
    pub fn caller(&self) -> Option<&str> {
        self.ctx.caller()
    }

    /// The request id.
    pub fn request_id(&self) -> &str {
        self.ctx.request_id().as_str()
    }

    /// A metadata entry of the context.
    pub fn metadata(&self, key: &str) -> Option<&str> {
        self.ctx.metadata(key)
    }

    /// The deadline of the context.
    pub fn deadline(&self) -> Option<Instant> {
        self.ctx.deadline()
    }

    /// The request, if it is an `R`.
    pub fn request_as<R: Request>(&self) -> Option<&R> {
        self.request.downcast_ref()
    }
}

/// The service side of a [`Mock`]: put it in a set with `.service(mock.service())`.
#[derive(Clone)]
pub struct MockService {
    shared: Arc<MockShared>,
}

impl fmt::Debug for MockService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("MockService")
            .field(&self.shared.name)
            .finish()
    }
}

enum Decision {
    Respond(Responder, usize),
    Fallback,
    Fail(NanoError),
}

/// The request as a failure report shows it: its JSON with the secrets redacted unless `spec`
/// keeps them.
fn describe_request(req: &AnyRequest, spec: &Spec) -> String {
    match req.to_json_value() {
        Ok(json) => format!("{} {}", req.name(), spec.secrets().redacted(&json)),
        Err(_) => format!("{} {req:?}", req.name()),
    }
}

impl MockState {
    fn accepts(
        &self,
        expectation: &ExpectationState,
        target: &Target,
        req: &AnyRequest,
        json: Option<&Value>,
    ) -> bool {
        expectation.request_type == req.request_type()
            && match (&expectation.expected, json) {
                (None, _) => true,
                (Some(Ok(expected)), Some(json)) => {
                    self.spec.compare(target, expected, json).is_ok()
                }
                _ => false,
            }
            && expectation.predicate.as_ref().is_none_or(|p| p(req))
    }

    /// Why the closest expectation did not take `req`, for the unexpected-call message.
    fn closest(&self, target: &Target, req: &AnyRequest, json: Option<&Value>) -> String {
        let same_type: Vec<&ExpectationState> = self
            .expectations
            .iter()
            .filter(|e| e.request_type == req.request_type())
            .collect();
        if same_type.is_empty() {
            return if self.expectations.is_empty() {
                "the mock has no expectations".to_owned()
            } else {
                let names: Vec<String> = self.expectations.iter().map(|e| e.label()).collect();
                format!(
                    "no expectation takes {}; the mock expects: {}",
                    req.name(),
                    names.join(", ")
                )
            };
        }
        let mut best: Option<(usize, String)> = None;
        for expectation in same_type {
            let header = format!(
                "closest: {}, which wants {} and had {}",
                expectation.label(),
                expectation.times,
                expectation.calls()
            );
            let predicate_fails = expectation.predicate.as_ref().is_some_and(|p| !p(req));
            let (score, why) = match (&expectation.expected, json) {
                (Some(Ok(expected)), Some(json)) => {
                    match self.spec.compare(target, expected, json) {
                        Err(mismatches) => (
                            mismatches.mismatches.len(),
                            mismatches.about("request").to_string(),
                        ),
                        Ok(()) if predicate_fails => (
                            0,
                            "the request equals its value but its predicate is false".into(),
                        ),
                        // Accepted but exhausted: the most relevant explanation of all.
                        Ok(()) => (0, "it already had all the calls it wants".into()),
                    }
                }
                (Some(Err(why)), _) => (usize::MAX - 1, why.clone()),
                (Some(Ok(_)), None) => (usize::MAX - 1, "the request does not encode".into()),
                (None, _) if predicate_fails => (usize::MAX - 1, "its predicate is false".into()),
                (None, _) => (0, "it already had all the calls it wants".into()),
            };
            if best.as_ref().is_none_or(|(s, _)| score < *s) {
                best = Some((score, format!("{header}:\n{}", why.trim_end())));
            }
        }
        best.map(|(_, text)| text).unwrap_or_default()
    }
}

impl MockShared {
    fn decide(&self, ctx: &Ctx, req: &AnyRequest) -> (Decision, usize) {
        let mut state = self.lock();
        let target = Target::new(self.name.clone(), req.name());
        let json = req.to_json_value().ok();
        let call_index = state.calls.len();
        state.calls.push(MockCall {
            ctx: ctx.clone(),
            request: req.clone(),
            expectation: None,
            outcome: None,
        });
        let chosen = state.expectations.iter().position(|e| {
            state.accepts(e, &target, req, json.as_ref()) && !e.times.is_exhausted(e.calls())
        });
        let decision = match chosen {
            Some(index) => {
                let expectation = &state.expectations[index];
                let label = expectation.label();
                if let Err(why) = expectation.check_order() {
                    state.failures.push(why.clone());
                    Decision::Fail(NanoError::new(codes::OUT_OF_ORDER, why))
                } else {
                    let n = expectation.record_call();
                    let responder = expectation.responder.clone();
                    state.calls[call_index].expectation = Some(label.clone());
                    match responder {
                        Some(responder) => Decision::Respond(responder, n),
                        None => {
                            let why = format!(
                                "{label} of mock {:?} took a call but has no response: use \
                                 returning, returning_err, returning_seq or respond_with",
                                self.name
                            );
                            state.failures.push(why.clone());
                            Decision::Fail(NanoError::new(codes::NO_RESPONSE, why))
                        }
                    }
                }
            }
            None if self.fallback.is_some() => Decision::Fallback,
            None => {
                let why = format!(
                    "mock {:?} got an unexpected call from {:?} (request id {}): {}\n{}",
                    self.name,
                    ctx.caller().unwrap_or("nobody"),
                    ctx.request_id(),
                    describe_request(req, &state.spec),
                    state.closest(&target, req, json.as_ref())
                );
                state.failures.push(why.clone());
                Decision::Fail(NanoError::new(codes::UNEXPECTED_CALL, why))
            }
        };
        (decision, call_index)
    }

    fn finish(&self, call_index: usize, outcome: &Outcome) {
        if let Some(call) = self.lock().calls.get_mut(call_index) {
            call.outcome = Some(CallOutcome::from_outcome(outcome));
        }
    }
}

impl Service for MockService {
    fn name(&self) -> &str {
        &self.shared.name
    }

    async fn handle(&self, ctx: Ctx, req: AnyRequest) -> Outcome {
        let (decision, call_index) = self.shared.decide(&ctx, &req);
        let outcome = match decision {
            Decision::Respond(responder, n) => responder(ctx, req, n).await,
            Decision::Fallback => match &self.shared.fallback {
                Some(fallback) => fallback(ctx, req).await,
                None => unreachable!("decided on the fallback only when there is one"),
            },
            Decision::Fail(err) => Err(err),
        };
        self.shared.finish(call_index, &outcome);
        outcome
    }
}

/// A mock of a whole service from [`nano::dispatch!`]-style arms, like the Go original's type
/// switch: `mock!("users", { Lookup => |r| Ok(User { .. }), Other => … })`.
///
/// The result is a [`Mock`] whose fallback handler dispatches on the request type (any other type
/// gets `C-BAD-REQUEST-TYPE`); expectations can still be added to it, and every call is recorded.
/// Arms are evaluated synchronously and may borrow what the closure captured; name the context
/// with `mock!("users", |ctx| { ... })` to use it. For arms that need `.await`, use
/// [`Mock::from_fn`].
///
/// ```
/// use nano_test::mock;
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)] #[serde(default)]
/// # pub struct Greet { pub user: String }
/// # #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)] #[serde(default)]
/// # pub struct Greeting { pub text: String }
/// # #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)] #[serde(default)]
/// # pub struct Lookup { pub id: String }
/// # #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)] #[serde(default)]
/// # pub struct User { pub name: String }
/// # mod greeter { use super::*; nano::api! { service "greeter"; fn greet(Greet) -> Greeting = "greeter.Greet", POST "/"; } }
/// # mod users { use super::*; nano::api! { service "users"; fn lookup(Lookup) -> User = "users.Lookup", POST "/"; } }
/// # fn main() {
/// let prefix = "user ";
/// let users = mock!(users::NAME, |ctx| {
///     Lookup => |r| Ok(User { name: format!("{prefix}{} ({})", r.id, ctx.request_id()) }),
/// });
/// # drop(users);
/// # }
/// ```
#[macro_export]
macro_rules! mock {
    ($name:expr, |$ctx:pat_param| { $($arms:tt)* }) => {
        $crate::Mock::from_fn(
            $name,
            move |$ctx: $crate::__private::nano::Ctx, req: $crate::__private::nano::AnyRequest| {
                ::std::future::ready($crate::__private::nano::dispatch!(req, { $($arms)* }))
            },
        )
    };
    ($name:expr, { $($arms:tt)* }) => {
        $crate::mock!($name, |_| { $($arms)* })
    };
}
