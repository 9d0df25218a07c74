//! Expectations of a mock: which requests it accepts, what it answers, how often and in which
//! order.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::ops::{Range, RangeFrom, RangeFull, RangeInclusive, RangeTo, RangeToInclusive};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use nano::{AnyRequest, AnyResponse, BoxFuture, Ctx, NanoError, Outcome, Request, RequestType};
use serde_json::Value;

use super::MockShared;
use crate::codes;

/// How many calls an expectation wants: an exact number or a range.
///
/// Built from `usize` (exactly), `a..b`, `a..=b`, `a..`, `..b`, `..=b` and `..`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Times {
    min: usize,
    /// Inclusive; `None` for no upper bound.
    max: Option<usize>,
}

impl Times {
    /// Whether `count` calls satisfy the expectation.
    pub fn contains(&self, count: usize) -> bool {
        count >= self.min && self.max.is_none_or(|max| count <= max)
    }

    /// Whether no further call is allowed after `count`.
    pub fn is_exhausted(&self, count: usize) -> bool {
        self.max.is_some_and(|max| count >= max)
    }

    /// The fewest calls that satisfy the expectation.
    pub fn min(&self) -> usize {
        self.min
    }

    /// The most calls allowed, if bounded.
    pub fn max(&self) -> Option<usize> {
        self.max
    }
}

fn calls(n: usize) -> &'static str {
    if n == 1 { "call" } else { "calls" }
}

impl fmt::Display for Times {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.min, self.max) {
            (min, Some(max)) if min == max => write!(f, "exactly {min} {}", calls(min)),
            (0, None) => f.write_str("any number of calls"),
            (min, None) => write!(f, "at least {min} {}", calls(min)),
            (0, Some(max)) => write!(f, "at most {max} {}", calls(max)),
            (min, Some(max)) => write!(f, "between {min} and {max} calls"),
        }
    }
}

impl From<usize> for Times {
    fn from(n: usize) -> Self {
        Times {
            min: n,
            max: Some(n),
        }
    }
}

impl From<Range<usize>> for Times {
    fn from(r: Range<usize>) -> Self {
        Times {
            min: r.start,
            max: Some(r.end.saturating_sub(1)),
        }
    }
}

impl From<RangeInclusive<usize>> for Times {
    fn from(r: RangeInclusive<usize>) -> Self {
        Times {
            min: *r.start(),
            max: Some(*r.end()),
        }
    }
}

impl From<RangeFrom<usize>> for Times {
    fn from(r: RangeFrom<usize>) -> Self {
        Times {
            min: r.start,
            max: None,
        }
    }
}

impl From<RangeTo<usize>> for Times {
    fn from(r: RangeTo<usize>) -> Self {
        Times {
            min: 0,
            max: Some(r.end.saturating_sub(1)),
        }
    }
}

impl From<RangeToInclusive<usize>> for Times {
    fn from(r: RangeToInclusive<usize>) -> Self {
        Times {
            min: 0,
            max: Some(r.end),
        }
    }
}

impl From<RangeFull> for Times {
    fn from(_: RangeFull) -> Self {
        Times { min: 0, max: None }
    }
}

/// The calls of one expectation, shared with the [`Sequence`]s it belongs to.
#[derive(Debug, Default)]
pub(crate) struct Counter {
    calls: AtomicUsize,
    min: AtomicUsize,
    /// How sequence errors name the expectation; kept current as it is configured.
    label: Mutex<String>,
}

impl Counter {
    fn label(&self) -> String {
        self.label
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// A strict order across expectations, also of different mocks.
///
/// Expectations added with [`Expectation::in_sequence`] must be called in the order they were
/// added: a call matching an expectation fails with `S-OUT-OF-ORDER` (and fails verification)
/// while an earlier expectation of the sequence has not had its minimum number of calls, or once a
/// later one was called.
///
/// ```
/// use nano_test::{Mock, Sequence};
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Debug, Clone, Default, Serialize, Deserialize)] pub struct Req { pub param: String }
/// # #[derive(Debug, Clone, Default, Serialize, Deserialize)] pub struct Resp { pub value: String }
/// # impl nano::Request for Req { type Response = Resp; const NAME: &'static str = "db.Req"; }
/// let seq = Sequence::new();
/// let db = Mock::new("db");
/// db.expect::<Req>().with(Req { param: "open".into() }).returning(Resp::default()).in_sequence(&seq);
/// db.expect::<Req>().with(Req { param: "close".into() }).returning(Resp::default()).in_sequence(&seq);
/// # db.finish().unwrap_err();
/// ```
#[derive(Clone, Default)]
pub struct Sequence {
    steps: Arc<Mutex<Vec<Arc<Counter>>>>,
}

impl Sequence {
    /// An empty sequence.
    pub fn new() -> Self {
        Self::default()
    }

    fn push(&self, counter: Arc<Counter>) -> usize {
        let mut steps = self.lock();
        steps.push(counter);
        steps.len() - 1
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Arc<Counter>>> {
        self.steps
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Checks that step `at` may be called now.
    fn check(&self, at: usize) -> Result<(), String> {
        let steps = self.lock();
        let label = steps[at].label();
        for counter in &steps[..at] {
            let (calls, min) = (
                counter.calls.load(Ordering::SeqCst),
                counter.min.load(Ordering::SeqCst),
            );
            if calls < min {
                return Err(format!(
                    "{label} was called out of order: {} must come first \
                     (called {calls} of at least {min} times)",
                    counter.label()
                ));
            }
        }
        for counter in &steps[at + 1..] {
            if counter.calls.load(Ordering::SeqCst) > 0 {
                return Err(format!(
                    "{label} was called out of order: {}, which comes after it, was already \
                     called",
                    counter.label()
                ));
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Sequence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let labels: Vec<String> = self.lock().iter().map(|c| c.label()).collect();
        f.debug_tuple("Sequence").field(&labels).finish()
    }
}

pub(crate) type Responder =
    Arc<dyn Fn(Ctx, AnyRequest, usize) -> BoxFuture<'static, Outcome> + Send + Sync>;
type Predicate = Arc<dyn Fn(&AnyRequest) -> bool + Send + Sync>;

/// The type-erased state of one expectation, kept by its mock.
pub(crate) struct ExpectationState {
    pub(crate) name: Option<String>,
    pub(crate) index: usize,
    pub(crate) request_type: &'static RequestType,
    /// The expected request as JSON, or why it could not be encoded.
    pub(crate) expected: Option<Result<Value, String>>,
    pub(crate) predicate: Option<Predicate>,
    pub(crate) responder: Option<Responder>,
    pub(crate) times: Times,
    pub(crate) times_set: bool,
    pub(crate) counter: Arc<Counter>,
    pub(crate) sequences: Vec<(Sequence, usize)>,
}

impl ExpectationState {
    pub(crate) fn new(index: usize, request_type: &'static RequestType) -> Self {
        let state = ExpectationState {
            name: None,
            index,
            request_type,
            expected: None,
            predicate: None,
            responder: None,
            times: Times::from(1..),
            times_set: false,
            counter: Arc::default(),
            sequences: Vec::new(),
        };
        state.counter.min.store(1, Ordering::SeqCst);
        state
    }

    /// How reports name the expectation: `"lookup" (svc3.Req)` or `#2 (svc3.Req)`.
    pub(crate) fn label(&self) -> String {
        match &self.name {
            Some(name) => format!("expectation {name:?} ({})", self.request_type.name()),
            None => format!(
                "expectation #{} ({})",
                self.index + 1,
                self.request_type.name()
            ),
        }
    }

    pub(crate) fn calls(&self) -> usize {
        self.counter.calls.load(Ordering::SeqCst)
    }

    pub(crate) fn record_call(&self) -> usize {
        self.counter.calls.fetch_add(1, Ordering::SeqCst)
    }

    pub(crate) fn check_order(&self) -> Result<(), String> {
        self.sequences
            .iter()
            .try_for_each(|(seq, at)| seq.check(*at))
    }

    fn set_times(&mut self, times: Times) {
        self.times = times;
        self.times_set = true;
        self.counter.min.store(times.min, Ordering::SeqCst);
    }
}

/// Configures one expectation of a [`Mock`](crate::Mock); made by
/// [`Mock::expect`](crate::Mock::expect).
///
/// An expectation accepts requests of type `R` that equal [`with`](Expectation::with)'s value
/// (compared under the mock's [`Spec`](crate::Spec)) and satisfy
/// [`matching`](Expectation::matching)'s predicate, when given; it answers with what
/// `returning…`/`respond_with…` configure. Unless [`times`](Expectation::times) says otherwise it
/// wants at least one call. Each method applies at once: there is nothing to finish.
pub struct Expectation<R> {
    shared: Arc<MockShared>,
    index: usize,
    request: PhantomData<fn(R)>,
}

impl<R: Request> Expectation<R> {
    pub(crate) fn new(shared: Arc<MockShared>, index: usize) -> Self {
        Expectation {
            shared,
            index,
            request: PhantomData,
        }
    }

    fn update(self, change: impl FnOnce(&mut ExpectationState)) -> Self {
        {
            let mut state = self.shared.lock();
            let expectation = &mut state.expectations[self.index];
            change(expectation);
            let label = format!("{} of mock {:?}", expectation.label(), self.shared.name);
            *expectation
                .counter
                .label
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = label;
        }
        self
    }

    /// Accepts only requests equal to `request`, compared as JSON under the mock's spec (so
    /// volatile fields such as ids need not match).
    pub fn with(self, request: R) -> Self {
        let expected = serde_json::to_value(&request)
            .map_err(|err| format!("cannot encode the expected {}: {err}", R::NAME));
        self.update(|state| state.expected = Some(expected))
    }

    /// Accepts only requests for which `predicate` is true.
    pub fn matching(self, predicate: impl Fn(&R) -> bool + Send + Sync + 'static) -> Self {
        let predicate: Predicate =
            Arc::new(move |req: &AnyRequest| req.downcast_ref::<R>().is_some_and(&predicate));
        self.update(|state| state.predicate = Some(predicate))
    }

    /// Answers every matching call with `response`.
    pub fn returning(self, response: R::Response) -> Self {
        self.responder(move |_, _, _| Ok(response.clone()))
    }

    /// Answers every matching call with `error`.
    pub fn returning_err(self, error: NanoError) -> Self {
        self.responder(move |_, _, _| Err(error.clone()))
    }

    /// Answers the n-th matching call with the n-th outcome (the last one repeats). Unless
    /// [`times`](Expectation::times) was set, the expectation then wants exactly as many calls as
    /// there are outcomes.
    pub fn returning_seq(
        self,
        outcomes: impl IntoIterator<Item = Result<R::Response, NanoError>>,
    ) -> Self {
        let outcomes: Vec<_> = outcomes.into_iter().collect();
        let count = outcomes.len();
        let this = self.update(|state| {
            if !state.times_set {
                state.set_times(Times::from(count));
                state.times_set = false;
            }
        });
        this.responder(move |_, _, n| match outcomes.get(n).or(outcomes.last()) {
            Some(outcome) => outcome.clone(),
            None => Err(NanoError::new(
                codes::NO_RESPONSE,
                "the mock's response sequence is empty",
            )),
        })
    }

    /// Answers each matching call with `respond(&ctx, request)`.
    pub fn respond_with(
        self,
        respond: impl Fn(&Ctx, R) -> Result<R::Response, NanoError> + Send + Sync + 'static,
    ) -> Self {
        self.responder(move |ctx, req, _| respond(ctx, req))
    }

    /// Answers each matching call with the future `respond(ctx, request)` returns, e.g. one that
    /// waits for [`Ctx::done`].
    pub fn respond_with_async<F, Fut>(self, respond: F) -> Self
    where
        F: Fn(Ctx, R) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R::Response, NanoError>> + Send + 'static,
    {
        let responder: Responder = Arc::new(move |ctx, req, _| match req.downcast::<R>() {
            Ok(req) => {
                let fut = respond(ctx, req);
                Box::pin(async move { fut.await.map(AnyResponse::new) })
            }
            Err(other) => {
                let err = NanoError::bad_request_type(other.name());
                Box::pin(async move { Err(err) })
            }
        });
        self.update(|state| state.responder = Some(responder))
    }

    fn responder(
        self,
        respond: impl Fn(&Ctx, R, usize) -> Result<R::Response, NanoError> + Send + Sync + 'static,
    ) -> Self {
        let responder: Responder = Arc::new(move |ctx, req, n| {
            let outcome = match req.downcast::<R>() {
                Ok(req) => respond(&ctx, req, n).map(AnyResponse::new),
                Err(other) => Err(NanoError::bad_request_type(other.name())),
            };
            Box::pin(std::future::ready(outcome))
        });
        self.update(|state| state.responder = Some(responder))
    }

    /// How many calls the expectation wants: `2`, `1..=3`, `1..`, `..`.
    pub fn times(self, times: impl Into<Times>) -> Self {
        let times = times.into();
        self.update(|state| state.set_times(times))
    }

    /// Exactly one call.
    pub fn once(self) -> Self {
        self.times(1)
    }

    /// No call at all: a matching call fails verification.
    pub fn never(self) -> Self {
        self.times(0)
    }

    /// Names the expectation in reports.
    pub fn named(self, name: impl Into<String>) -> Self {
        let name = name.into();
        self.update(|state| state.name = Some(name))
    }

    /// Puts the expectation at the end of `sequence`.
    pub fn in_sequence(self, sequence: &Sequence) -> Self {
        let sequence = sequence.clone();
        self.update(|state| {
            let at = sequence.push(Arc::clone(&state.counter));
            state.sequences.push((sequence, at));
        })
    }
}

impl<R> fmt::Debug for Expectation<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Expectation")
            .field("mock", &self.shared.name)
            .field("index", &self.index)
            .finish()
    }
}
