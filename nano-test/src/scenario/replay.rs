//! Replaying scenarios: against a whole set, against one service with its dependencies answered
//! from the recording, and against any deployment.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use nano::{
    AnyRequest, Client, ClientHook, Ctx, Edge, NanoError, NewService, Outcome, Service, ServiceSet,
    ServiceSetBuilder, SharedService,
};

use super::file::Scenario;
use super::registry::Registry;
use crate::parity::{Delivery, Deployment};
use crate::spec::{Spec, Target};
use crate::{CallNode, CallOutcome, CallRecorder};

/// How long a replayed request may take: replays never hang, even when the recording holds a
/// call that never finished.
pub const REPLAY_TIMEOUT: Duration = Duration::from_secs(10);

/// The root context of a replayed request.
fn replay_ctx() -> Ctx {
    Ctx::new().with_timeout(REPLAY_TIMEOUT)
}

/// One difference between a replay and its recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayProblem {
    /// The call it concerns, e.g. `svc2 -> svc1 svc1.Req`.
    pub call: String,
    /// What differs, with a field-level diff where there is one.
    pub detail: String,
}

impl fmt::Display for ReplayProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "call {}: {}", self.call, self.detail.trim_end())
    }
}

/// A replay that did not reproduce its recording.
#[derive(Clone, PartialEq, Eq)]
pub struct ReplayFailure {
    /// The scenario's name.
    pub scenario: String,
    /// How it was replayed: `whole set`, `isolated <service>`, or a deployment's name.
    pub mode: String,
    /// Every difference found.
    pub problems: Vec<ReplayProblem>,
}

impl ReplayFailure {
    fn new(scenario: &Scenario, mode: impl Into<String>, problems: Vec<ReplayProblem>) -> Self {
        ReplayFailure {
            scenario: scenario.name.clone(),
            mode: mode.into(),
            problems,
        }
    }

    /// The first problem, in one line (for tables).
    pub fn first_difference(&self) -> String {
        self.problems.first().map_or_else(String::new, |p| {
            let first_line = p
                .detail
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("");
            format!("{}: {}", p.call, first_line.trim())
        })
    }
}

/// The readable report, also when a test returns this error with `?` (the test harness prints
/// the `Debug` form of a returned error).
impl fmt::Debug for ReplayFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for ReplayFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.problems.len();
        writeln!(
            f,
            "scenario {:?} ({}): {count} difference{}",
            self.scenario,
            self.mode,
            if count == 1 { "" } else { "s" }
        )?;
        for problem in &self.problems {
            writeln!(f, "- {problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ReplayFailure {}

fn describe(caller: &str, service: &str, request: &str) -> String {
    format!("{caller} -> {service} {request}")
}

fn node_name(node: &CallNode) -> String {
    describe(&node.caller, &node.service, &node.request)
}

/// Sends the root request of `scenario` with `client` and returns how it ended. A body that does
/// not decode ends with the decoding error, as it would at a transport's edge.
///
/// # Errors
///
/// `C-BAD-SPEC` when the root request type is not in the registry.
pub async fn send_root(
    scenario: &Scenario,
    registry: &Registry,
    client: &Client,
    ctx: &Ctx,
) -> Result<CallOutcome, NanoError> {
    let root = &scenario.root;
    registry.get(&root.request)?;
    Ok(match registry.decode_request(&root.request, &root.body) {
        Ok(request) => CallOutcome::from_outcome(&client.call_any(ctx, request).await),
        Err(err) => CallOutcome::from_error(&err),
    })
}

/// [`send_root`] from a set, with the root request going through `edge` first when there is one,
/// as a server's listener sends it: a request type the edge protects needs a token, and a
/// scenario carries none, so such a root ends `C-UNAUTHORIZED` exactly as over HTTP. The
/// runner's recording, whole-set replay and chaos all send a scenario's root this way, so none
/// of them skips a system's edge. ([`replay_isolated`] replays one service from its recorded
/// calls and sends no root through an edge.)
///
/// # Errors
///
/// As [`send_root`], and the set's own error when it has no service `root.service`.
pub async fn send_root_at_edge(
    scenario: &Scenario,
    registry: &Registry,
    set: &ServiceSet,
    ctx: Ctx,
    edge: Option<&nano_wire::EdgeAuth>,
) -> Result<CallOutcome, NanoError> {
    let root = &scenario.root;
    let client = set.client(&root.caller, &root.service)?;
    let ctx = match edge {
        Some(edge) => match edge
            .admit(set, ctx, &root.service, &root.request, &[])
            .await
        {
            Ok(ctx) => ctx,
            Err(refused) => return Ok(CallOutcome::from_error(&refused)),
        },
        None => ctx,
    };
    send_root(scenario, registry, &client, &ctx).await
}

/// Compares an outcome of `node`'s call with the recorded one under `spec`.
pub fn compare_outcome(
    spec: &Spec,
    node: &CallNode,
    actual: &CallOutcome,
) -> Option<ReplayProblem> {
    spec.compare_outcomes(&Target::from(node), &node.outcome, actual)
        .err()
        .map(|mismatches| ReplayProblem {
            call: node_name(node),
            detail: mismatches.to_string(),
        })
}

/// Compares a replayed call tree with the recorded one under `spec`: the same calls (caller,
/// service, request type) in the same order under each call, equal bodies and outcomes. Calls
/// that were recorded but not made are reported as missing, calls made but not recorded as
/// unexpected.
pub fn compare_trees(spec: &Spec, expected: &CallNode, actual: &CallNode) -> Vec<ReplayProblem> {
    let mut problems = Vec::new();
    compare_node(spec, expected, actual, &mut problems);
    problems
}

fn same_call(a: &CallNode, b: &CallNode) -> bool {
    a.caller == b.caller && a.service == b.service && a.request == b.request
}

fn compare_node(spec: &Spec, expected: &CallNode, actual: &CallNode, out: &mut Vec<ReplayProblem>) {
    crate::deep::deep(|| compare_level(spec, expected, actual, out));
}

fn compare_level(
    spec: &Spec,
    expected: &CallNode,
    actual: &CallNode,
    out: &mut Vec<ReplayProblem>,
) {
    let target = Target::new(expected.service.clone(), expected.request.clone());
    if let Err(mismatches) =
        spec.compare(&target, &expected.body.to_value(), &actual.body.to_value())
    {
        out.push(ReplayProblem {
            call: node_name(expected),
            detail: mismatches.about("request").to_string(),
        });
    }
    if let Some(problem) = compare_outcome(spec, expected, &actual.outcome) {
        out.push(problem);
    }
    let mut used = vec![false; actual.calls.len()];
    for child in &expected.calls {
        let found = actual
            .calls
            .iter()
            .enumerate()
            .find(|(i, candidate)| !used[*i] && same_call(child, candidate));
        match found {
            Some((index, candidate)) => {
                used[index] = true;
                compare_node(spec, child, candidate, out);
            }
            None => out.push(ReplayProblem {
                call: node_name(child),
                detail: format!(
                    "missing: recorded with body {} but not made",
                    spec.secrets().redact_json(&child.body)
                ),
            }),
        }
    }
    for (index, extra) in actual.calls.iter().enumerate() {
        if !used[index] {
            out.push(ReplayProblem {
                call: node_name(extra),
                detail: format!(
                    "unexpected: made with body {} but not recorded",
                    spec.secrets().redact_json(&extra.body)
                ),
            });
        }
    }
}

/// A hook that makes calls to `services` fail with `S-UNAVAILABLE`, as a transport does when a
/// peer is down. This is how in-process replays honour [`Scenario::unreachable`].
#[derive(Debug, Clone)]
pub struct Unreachable {
    services: Arc<Vec<String>>,
}

impl Unreachable {
    /// Makes `services` unreachable.
    pub fn new(services: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Unreachable {
            services: Arc::new(services.into_iter().map(Into::into).collect()),
        }
    }
}

impl ClientHook for Unreachable {
    fn wrap(&self, edge: &Edge, next: SharedService) -> SharedService {
        if !self.services.iter().any(|s| s == edge.callee()) {
            return next;
        }
        let callee = edge.callee().to_owned();
        SharedService::new(crate::service_fn(callee.clone(), move |_ctx, _req| {
            let callee = callee.clone();
            async move { Err(NanoError::unavailable(format!("{callee} is unreachable"))) }
        }))
    }
}

/// Replays `scenario` against the services of `builder`: sends the recorded root request,
/// compares the outcome and, when `compare_tree` is set, the whole call tree.
///
/// # Errors
///
/// Every difference, or a problem building the set or decoding the scenario.
pub async fn replay_set(
    scenario: &Scenario,
    registry: &Registry,
    builder: ServiceSetBuilder,
    compare_tree: bool,
) -> Result<(), ReplayFailure> {
    replay_set_at_edge(scenario, registry, builder, compare_tree, None).await
}

/// [`replay_set`] with the root request going through `edge` first, as a server's listener
/// sends it: a request type the edge protects needs a token, and a scenario carries none, so
/// such a root is answered `C-UNAUTHORIZED` exactly as over HTTP. The runner replays this way
/// in process when the system has an edge (`nano_server::System::auth`).
///
/// # Errors
///
/// As [`replay_set`].
pub async fn replay_set_at_edge(
    scenario: &Scenario,
    registry: &Registry,
    builder: ServiceSetBuilder,
    compare_tree: bool,
    edge: Option<&nano_wire::EdgeAuth>,
) -> Result<(), ReplayFailure> {
    let mode = "whole set";
    let fail = |detail: String| {
        ReplayFailure::new(
            scenario,
            mode,
            vec![ReplayProblem {
                call: node_name(&scenario.root),
                detail,
            }],
        )
    };
    // The replayed tree stays in memory and is compared under the scenario's spec, which
    // redacts what it shows: recorded with its secrets, a secret the scenario keeps (or writes
    // out in an expectation) is compared by value, not against a placeholder.
    let recorder = CallRecorder::with_redaction(nano_record::Redaction::keep_secrets());
    let mut builder = builder.hook(recorder.clone());
    if !scenario.unreachable.is_empty() {
        builder = builder.hook(Unreachable::new(scenario.unreachable.iter().cloned()));
    }
    let set = builder
        .build()
        .map_err(|err| fail(format!("cannot build the set: {err}")))?;
    let root = &scenario.root;
    let outcome = send_root_at_edge(scenario, registry, &set, replay_ctx(), edge)
        .await
        .map_err(|err| fail(err.to_string()))?;

    let mut problems: Vec<ReplayProblem> = compare_outcome(&scenario.spec, root, &outcome)
        .into_iter()
        .collect();
    if compare_tree && problems.is_empty() {
        match recorder.last_tree() {
            Some(actual) => problems.extend(compare_trees(&scenario.spec, root, &actual)),
            // A request that did not decode never reached the set, as recorded.
            None if root.calls.is_empty() => {}
            None => problems.push(ReplayProblem {
                call: node_name(root),
                detail: "no call reached the set".into(),
            }),
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ReplayFailure::new(scenario, mode, problems))
    }
}

/// How a replay against a deployment ended when it found no difference.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Replayed {
    /// The deployment answered as recorded.
    Passed,
    /// The recorded request cannot reach this deployment as recorded, so the deployment cannot
    /// decide the scenario (see [`Deployment::send_recorded`]); the reason says why.
    NotApplicable(String),
}

/// Replays the root request of `scenario` against `deployment` and compares the outcome. The
/// request is sent with [`Deployment::send_recorded`], so over a transport a body that does not
/// decode reaches the server as recorded.
///
/// # Errors
///
/// The difference, or a problem reaching the deployment or decoding the scenario.
pub async fn replay_outcome(
    scenario: &Scenario,
    registry: &Registry,
    deployment: &Deployment,
) -> Result<Replayed, ReplayFailure> {
    let root = &scenario.root;
    let fail = |detail: String| {
        ReplayFailure::new(
            scenario,
            deployment.name(),
            vec![ReplayProblem {
                call: node_name(root),
                detail,
            }],
        )
    };
    let outcome = match deployment
        .send_recorded(&replay_ctx(), root, registry)
        .await
        .map_err(|e| fail(e.to_string()))?
    {
        Delivery::Answered(outcome) => outcome,
        Delivery::NotApplicable(reason) => return Ok(Replayed::NotApplicable(reason)),
    };
    match compare_outcome(&scenario.spec, root, &outcome) {
        None => Ok(Replayed::Passed),
        Some(problem) => Err(ReplayFailure::new(
            scenario,
            deployment.name(),
            vec![problem],
        )),
    }
}

/// A recorded call waiting to be replayed.
#[derive(Debug, Clone)]
struct Recorded {
    node: CallNode,
    /// The node's request body, parsed once: every call compares against it.
    body: serde_json::Value,
    used: bool,
}

/// A service that answers from a recording: each call is matched (request type and body, under
/// the spec) with the first unused recorded call of the same request, which answers with its
/// recorded outcome. Repeated identical requests therefore get their recorded answers in recorded
/// order, even when the dependency answered differently each time.
///
/// Calls that match nothing answer `S-UNEXPECTED-CALL` and are reported by
/// [`problems`](RecordedService::problems), as are recorded calls that were never made.
#[derive(Clone)]
pub struct RecordedService {
    name: String,
    registry: Registry,
    spec: Spec,
    on_miss: OnMiss,
    state: Arc<Mutex<RecordedState>>,
}

#[derive(Debug, Default)]
struct RecordedState {
    calls: Vec<Recorded>,
    unexpected: Vec<ReplayProblem>,
    /// Calls the recording did not hold that were passed through, with their outcomes.
    added: Vec<CallNode>,
}

/// What an isolated replay does with a call to a dependency that the recording does not hold.
#[derive(Clone, Debug, Default)]
pub enum OnMiss {
    /// Answer `S-UNEXPECTED-CALL` and report the call as a difference (the default).
    #[default]
    Fail,
    /// Send the call to the real dependency in this set (e.g. the whole system built
    /// in-process) and answer with what it answers; the call is not reported.
    PassThrough(ServiceSet),
    /// As [`PassThrough`](OnMiss::PassThrough), and add the call with its outcome to the
    /// scenario that [`replay_isolated_with`] returns, so recordings grow with the code instead
    /// of being recorded again from scratch. (The added call holds the dependency's answer, not
    /// the calls the dependency made in turn: an isolated replay never needs them.)
    Record(ServiceSet),
}

impl RecordedService {
    /// A stand-in for `name` answering the recorded `calls` (those of them addressed to `name`).
    pub fn new<'a>(
        name: impl Into<String>,
        calls: impl IntoIterator<Item = &'a CallNode>,
        registry: &Registry,
        spec: &Spec,
    ) -> Self {
        let name = name.into();
        let calls = calls
            .into_iter()
            .filter(|call| call.service == name)
            .map(|node| Recorded {
                body: node.body.to_value(),
                node: node.clone(),
                used: false,
            })
            .collect();
        RecordedService {
            name,
            registry: registry.clone(),
            spec: spec.clone(),
            on_miss: OnMiss::Fail,
            state: Arc::new(Mutex::new(RecordedState {
                calls,
                unexpected: Vec::new(),
                added: Vec::new(),
            })),
        }
    }

    /// The same stand-in, handling calls the recording does not hold as `on_miss` says.
    #[must_use]
    pub fn on_miss(mut self, on_miss: OnMiss) -> Self {
        self.on_miss = on_miss;
        self
    }

    /// The calls passed through under [`OnMiss::Record`], in the order they were made.
    pub fn added(&self) -> Vec<CallNode> {
        self.lock().added.clone()
    }

    fn lock(&self) -> MutexGuard<'_, RecordedState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Unexpected calls so far, and every recorded call not made (yet).
    pub fn problems(&self) -> Vec<ReplayProblem> {
        let state = self.lock();
        let mut problems = state.unexpected.clone();
        problems.extend(
            state
                .calls
                .iter()
                .filter(|c| !c.used)
                .map(|c| ReplayProblem {
                    call: node_name(&c.node),
                    detail: format!(
                        "missing: recorded with body {} but not made",
                        self.spec.secrets().redact_json(&c.node.body)
                    ),
                }),
        );
        problems
    }

    fn answer(&self, caller: &str, request: &AnyRequest) -> Result<CallNode, NanoError> {
        let report_miss = matches!(self.on_miss, OnMiss::Fail);
        let body = request.to_json_value()?;
        let target = Target::new(self.name.clone(), request.name());
        let mut state = self.lock();
        let found = state.calls.iter_mut().find(|c| {
            !c.used
                && c.node.request == request.name()
                && self.spec.compare(&target, &c.body, &body).is_ok()
        });
        if let Some(recorded) = found {
            recorded.used = true;
            return Ok(recorded.node.clone());
        }
        let closest = state
            .calls
            .iter()
            .find(|c| !c.used && c.node.request == request.name())
            .map(|c| match self.spec.compare(&target, &c.body, &body) {
                Err(mismatches) => {
                    format!("\nclosest recorded call:\n{}", mismatches.about("request"))
                }
                Ok(()) => String::new(),
            })
            .unwrap_or_default();
        let shown = self.spec.secrets().redacted(&body);
        let detail = format!("unexpected: made with body {shown} but not recorded{closest}");
        if report_miss {
            state.unexpected.push(ReplayProblem {
                call: describe(caller, &self.name, request.name()),
                detail: detail.clone(),
            });
        }
        Err(NanoError::new(
            crate::codes::UNEXPECTED_CALL,
            format!("{} has no recorded answer: {detail}", self.name),
        ))
    }
}

impl fmt::Debug for RecordedService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordedService")
            .field("name", &self.name)
            .finish()
    }
}

impl Service for RecordedService {
    fn name(&self) -> &str {
        &self.name
    }

    async fn handle(&self, ctx: Ctx, req: AnyRequest) -> Outcome {
        let caller = ctx.caller().unwrap_or_default().to_owned();
        let recorded = match (self.answer(&caller, &req), &self.on_miss) {
            (Ok(recorded), _) => recorded,
            (Err(err), OnMiss::Fail) => return Err(err),
            (Err(_), OnMiss::PassThrough(real) | OnMiss::Record(real)) => {
                return self.pass_through(real, &caller, &ctx, req).await;
            }
        };
        match self
            .registry
            .decode_outcome(&recorded.request, &recorded.outcome)
        {
            Ok(outcome) => outcome,
            // The caller gave up on this call when it was recorded: it waits until the caller
            // gives up again (at once when nothing would ever end the wait).
            Err(_) if recorded.outcome == CallOutcome::Unfinished => {
                if ctx.deadline().is_some() || ctx.cancellation().is_some() {
                    ctx.done().await;
                }
                Err(NanoError::timeout(format!(
                    "{} was recorded as unfinished",
                    self.name
                )))
            }
            Err(err) => Err(err),
        }
    }
}

impl RecordedService {
    /// Sends a call the recording does not hold to the real dependency, keeping it under
    /// [`OnMiss::Record`].
    async fn pass_through(
        &self,
        real: &ServiceSet,
        caller: &str,
        ctx: &Ctx,
        req: AnyRequest,
    ) -> Outcome {
        let body = req.to_json_value()?;
        let name = req.name();
        let outcome = real.client(caller, &self.name)?.call_any(ctx, req).await;
        if matches!(self.on_miss, OnMiss::Record(_)) {
            self.lock().added.push(CallNode {
                caller: caller.to_owned(),
                service: self.name.clone(),
                request: name.to_owned(),
                request_id: String::new(),
                body: body.into(),
                outcome: CallOutcome::from_outcome(&outcome),
                calls: Vec::new(),
            });
        }
        outcome
    }
}

/// Replays every recorded call *to* one service in isolation: the service under test is real, all
/// its dependencies answer from the recording ([`RecordedService`]), each recorded incoming
/// request is sent again and its outcome compared. Unexpected extra calls to dependencies and
/// recorded calls that were not made are reported too.
///
/// `make_service` builds a fresh service under test for each incoming call (e.g. a function
/// returning `my_api::service(|deps| …)`); every service it asks for a client of while the set builds it
/// gets a recorded stand-in, so no list of its dependencies is needed.
///
/// # Errors
///
/// Every difference, or a problem building the set or decoding the scenario.
pub async fn replay_isolated<S: Into<NewService>>(
    scenario: &Scenario,
    registry: &Registry,
    make_service: impl Fn() -> S,
) -> Result<(), ReplayFailure> {
    replay_isolated_with(scenario, registry, make_service, &OnMiss::Fail)
        .await
        .map(|_| ())
}

/// [`replay_isolated`] with a policy for calls the recording does not hold; returns the
/// scenario with the calls [`OnMiss::Record`] added (unchanged under the other policies), ready
/// to be saved.
///
/// ```
/// use nano::{Ctx, ServiceSet};
/// use nano_test::scenario::{OnMiss, Registry, Scenario, replay_isolated_with};
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
/// # struct Greeter { users: nano::Client }
/// # impl greeter::Handler for Greeter {
/// #     async fn greet(&self, ctx: &nano::Ctx, req: Greet) -> Result<Greeting, nano::NanoError> {
/// #         let user = self.users.call(ctx, Lookup { id: req.user }).await?;
/// #         Ok(Greeting { text: format!("hello {}", user.name) })
/// #     }
/// # }
/// # fn greeter() -> nano::NewService {
/// #     greeter::service(|deps| Ok(Greeter { users: deps.client(users::NAME)? }))
/// # }
/// # fn users() -> nano::NewService {
/// #     nano_test::request_fn(users::NAME, |_ctx, r: Lookup| async move {
/// #         Ok(User { name: r.id.to_uppercase() })
/// #     }).into()
/// # }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let recorder = nano_test::CallRecorder::new();
/// # let set = ServiceSet::builder().service(greeter()).service(users()).hook(recorder.clone()).build()?;
/// # set.client("test", greeter::NAME)?.call(&Ctx::new(), Greet { user: "u1".into() }).await?;
/// # let scenario = Scenario::new("greet-u1", recorder.last_tree().unwrap());
/// // `greeter()` builds the service under test; a call to `users` that the recording lacks
/// // goes to the real `users` and is added to the scenario.
/// let registry = Registry::from_apis(&[&greeter::API, &users::API])?;
/// let real = ServiceSet::builder().service(users()).build()?;
/// let grown = replay_isolated_with(&scenario, &registry, greeter, &OnMiss::Record(real)).await?;
/// grown.save(std::env::temp_dir().join("greet-u1.json"))?;
/// # Ok(()) }
/// ```
///
/// # Errors
///
/// As [`replay_isolated`]; under the pass-through policies a call the recording does not hold
/// is not a difference.
pub async fn replay_isolated_with<S: Into<NewService>>(
    scenario: &Scenario,
    registry: &Registry,
    make_service: impl Fn() -> S,
    on_miss: &OnMiss,
) -> Result<Scenario, ReplayFailure> {
    let service_name = make_service().into().name().to_owned();
    let mode = format!("isolated {service_name}");
    let incoming: Vec<&CallNode> = scenario
        .root
        .iter()
        .filter(|node| node.service == service_name)
        .collect();
    if incoming.is_empty() {
        return Err(ReplayFailure::new(
            scenario,
            mode,
            vec![ReplayProblem {
                call: node_name(&scenario.root),
                detail: format!("the recording has no call to {service_name}"),
            }],
        ));
    }
    let mut problems = Vec::new();
    let mut added: Vec<Vec<CallNode>> = Vec::new();
    for node in incoming {
        let stand_ins: Arc<Mutex<Vec<RecordedService>>> = Arc::default();
        let builder = {
            let (stand_ins, calls) = (Arc::clone(&stand_ins), node.calls.clone());
            let policy = on_miss.clone();
            let (registry, spec) = (registry.clone(), scenario.spec.clone());
            nano::ServiceSet::builder()
                .service(make_service())
                .fallback(move |name| {
                    let stand_in = RecordedService::new(name, &calls, &registry, &spec)
                        .on_miss(policy.clone());
                    stand_ins
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(stand_in.clone());
                    Ok(SharedService::new(stand_in))
                })
        };
        let result = async {
            let set = builder.build()?;
            let client = set.client(&node.caller, &node.service)?;
            let request = registry.decode_request(&node.request, &node.body);
            Ok::<_, NanoError>(match request {
                Ok(request) => {
                    CallOutcome::from_outcome(&client.call_any(&replay_ctx(), request).await)
                }
                Err(err) => CallOutcome::from_error(&err),
            })
        }
        .await;
        match result {
            Ok(outcome) => problems.extend(compare_outcome(&scenario.spec, node, &outcome)),
            Err(err) => problems.push(ReplayProblem {
                call: node_name(node),
                detail: format!("cannot replay: {err}"),
            }),
        }
        let mut stand_ins = stand_ins.lock().unwrap_or_else(|p| p.into_inner()).clone();
        // A recorded callee the service never asked for: all its recorded calls are missing.
        for call in &node.calls {
            if !stand_ins
                .iter()
                .any(|s| nano::Service::name(s) == call.service)
            {
                let unasked =
                    RecordedService::new(&call.service, &node.calls, registry, &scenario.spec);
                stand_ins.push(unasked);
            }
        }
        problems.extend(stand_ins.iter().flat_map(RecordedService::problems));
        added.push(stand_ins.iter().flat_map(RecordedService::added).collect());
    }
    if !problems.is_empty() {
        return Err(ReplayFailure::new(scenario, mode, problems));
    }
    let mut grown = scenario.clone();
    let mut added = added.into_iter();
    // The incoming calls in the order `iter` visited them (depth first, in call order).
    let mut stack = vec![&mut grown.root];
    while let Some(node) = stack.pop() {
        if node.service == service_name
            && let Some(calls) = added.next()
        {
            node.calls.extend(calls);
        }
        stack.extend(node.calls.iter_mut().rev());
    }
    Ok(grown)
}
