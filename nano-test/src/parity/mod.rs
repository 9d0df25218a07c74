//! Parity checks: the same requests against several deployments of the same services, every
//! difference in outcome reported as a diff.

#[cfg(feature = "http")]
mod http;
#[cfg(feature = "nats")]
mod nats;

use std::fmt;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use nano::{AnyRequest, Client, Ctx, NanoError, Outcome, Request, ServiceSet, ServiceSetBuilder};
use serde_json::Value;

use crate::codes;
use crate::fidelity::TransportFidelity;
use crate::scenario::Registry;
use crate::spec::{Mismatches, Spec, Target};
use crate::{CallNode, CallOutcome};

/// Makes a client of a service (the second argument) calling as a caller (the first).
type Connect = dyn Fn(&str, &str) -> Result<Client, NanoError> + Send + Sync;

/// How a deployment whose services sit behind a transport takes a recorded request as it is:
/// the wire name and the JSON body, whether or not the body decodes.
pub(crate) trait Wire: Send + Sync {
    /// Why `request` cannot be sent to `service` over this wire at all (the sender would refuse
    /// it before anything is sent), if so.
    fn refuses(&self, service: &str, request: &str) -> Option<String>;

    /// Sends the recorded JSON and returns how the call ended.
    fn send_json(&self, call: JsonCall) -> BoxFuture<'static, CallOutcome>;
}

/// Why a request type the service does not declare cannot be sent over NATS: the client refuses
/// it before anything is sent (and no server subscribes to such a subject).
#[cfg_attr(not(any(feature = "runner", feature = "nats")), allow(dead_code))]
pub(crate) fn undeclared_over_nats(service: &str, request: &str) -> String {
    format!(
        "{service} declares no request type {request}, so the NATS client refuses it before \
         anything is sent"
    )
}

/// A recorded request for [`Wire::send_json`] (only the transports' wires read it).
#[cfg_attr(not(feature = "http"), allow(dead_code))]
pub(crate) struct JsonCall {
    pub(crate) ctx: Ctx,
    pub(crate) caller: String,
    pub(crate) service: String,
    pub(crate) request: String,
    pub(crate) body: Value,
}

/// What became of a recorded request sent to a deployment with [`Deployment::send_recorded`].
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    /// The deployment's services decided the outcome.
    Answered(CallOutcome),
    /// The request cannot reach the deployment as recorded, so any outcome would be decided by
    /// the sender rather than by the deployment; the reason says why.
    NotApplicable(String),
}

/// One way the services under test are deployed: a name, and a way to get a [`Client`] for a
/// service of it.
///
/// [`in_process`](Deployment::in_process) and [`with_fidelity`](Deployment::with_fidelity) build
/// in-process sets. Any other deployment, e.g. services behind a real transport listening on
/// loopback, is one [`Deployment::new`] away: a closure that returns a client (typically from a
/// set holding the transport's client services) and keeps whatever must stay alive (a server
/// handle) captured.
///
/// A layout of server executables running as child processes is a deployment too
/// ([`deploy::RunningLayout::into_deployment`](crate::deploy::RunningLayout::into_deployment),
/// feature `http`), as are services behind a real HTTP listener in this process
/// ([`Deployment::http`]) and a cluster running elsewhere ([`Deployment::remote`]).
#[derive(Clone)]
pub struct Deployment {
    name: String,
    caller: String,
    connect: Arc<Connect>,
    wire: Option<Arc<dyn Wire>>,
}

impl Deployment {
    /// A deployment named `name` whose clients `connect(service)` makes.
    pub fn new(
        name: impl Into<String>,
        connect: impl Fn(&str) -> Result<Client, NanoError> + Send + Sync + 'static,
    ) -> Self {
        Deployment {
            name: name.into(),
            caller: crate::set::DEFAULT_CALLER.to_owned(),
            connect: Arc::new(move |_caller: &str, service: &str| connect(service)),
            wire: None,
        }
    }

    /// Sends recorded requests whose body does not decode through `wire`.
    #[cfg_attr(not(feature = "http"), allow(dead_code))]
    pub(crate) fn with_wire(mut self, wire: Arc<dyn Wire>) -> Self {
        self.wire = Some(wire);
        self
    }

    /// A deployment over an existing set, calling as `caller`.
    pub fn from_set(name: impl Into<String>, set: ServiceSet, caller: impl Into<String>) -> Self {
        Deployment::with_callers(name, caller, move |caller, service| {
            set.client(caller, service)
        })
    }

    /// A deployment named `name` whose clients `connect(caller, service)` makes; `caller` is
    /// what [`client`](Deployment::client) calls as, a recording's caller what
    /// [`send_recorded`](Deployment::send_recorded) calls as.
    /// A deployment whose callers reach each service through a set of their own holding only
    /// `client_of(service)`, a transport's client standing in for it; `keep` (the processes
    /// serving the services, their broker) lives as long as the deployment or a clone of it.
    #[cfg_attr(not(any(feature = "http", feature = "nats")), allow(dead_code))]
    pub(crate) fn through_clients<S: Into<nano::NewService>>(
        name: impl Into<String>,
        keep: Arc<dyn std::any::Any + Send + Sync>,
        client_of: impl Fn(&str) -> Result<S, NanoError> + Send + Sync + 'static,
    ) -> Self {
        let connect = move |caller: &str, service: &str| {
            let _alive = &keep;
            let set = ServiceSet::builder().service(client_of(service)?).build()?;
            set.client(caller, service)
        };
        Deployment::with_callers(name, crate::set::DEFAULT_CALLER, connect)
    }

    pub(crate) fn with_callers(
        name: impl Into<String>,
        caller: impl Into<String>,
        connect: impl Fn(&str, &str) -> Result<Client, NanoError> + Send + Sync + 'static,
    ) -> Self {
        Deployment {
            name: name.into(),
            caller: caller.into(),
            connect: Arc::new(connect),
            wire: None,
        }
    }

    /// The services of `builder` in one process, named `in-process`.
    ///
    /// # Errors
    ///
    /// What building the set reports.
    pub fn in_process(builder: ServiceSetBuilder) -> Result<Self, NanoError> {
        Ok(Deployment::from_set(
            "in-process",
            builder.build()?,
            crate::set::DEFAULT_CALLER,
        ))
    }

    /// The services of `builder` in one process with [`TransportFidelity`] on, named `fidelity`.
    ///
    /// # Errors
    ///
    /// What building the set reports.
    pub fn with_fidelity(builder: ServiceSetBuilder) -> Result<Self, NanoError> {
        let fidelity = TransportFidelity::new();
        let set = builder.hook(fidelity.clone()).build()?;
        fidelity.learn_apis(&set)?;
        Ok(Deployment::from_set(
            "fidelity",
            set,
            crate::set::DEFAULT_CALLER,
        ))
    }

    /// Renames the deployment.
    #[must_use]
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The deployment's name, as reports show it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The caller name the deployment's clients call under, when known.
    pub fn caller(&self) -> &str {
        &self.caller
    }

    /// A client for `service`.
    ///
    /// # Errors
    ///
    /// What the deployment reports, e.g. `S-UNKNOWN-SERVICE`.
    pub fn client(&self, service: &str) -> Result<Client, NanoError> {
        (self.connect)(&self.caller, service)
    }

    /// Sends `request` to `service` under `ctx`.
    ///
    /// # Errors
    ///
    /// The call's error, or the deployment's when it has no client for `service`.
    pub async fn send(&self, ctx: &Ctx, service: &str, request: AnyRequest) -> Outcome {
        self.client(service)?.call_any(ctx, request).await
    }

    /// Sends a recorded request (`node`'s caller, service, wire name and JSON body) the way a
    /// client of this deployment would, calling as the recorded caller where the deployment
    /// can (a deployment made with [`new`](Deployment::new) calls as its own caller), so that
    /// the deployment decides the outcome:
    ///
    /// - a body that decodes is sent as the typed request;
    /// - over a transport ([`http`](Deployment::http), [`remote`](Deployment::remote), a running
    ///   layout, a layout over NATS), a body that does not decode is sent as recorded, so the
    ///   server's own decoding answers; a request type the service declares no endpoint for (no
    ///   request type at all, over NATS) is [`NotApplicable`](Delivery::NotApplicable), as the
    ///   transport's client would refuse it before sending;
    /// - in process, a body that does not decode is `NotApplicable`: only the sender's own
    ///   decoding would see it.
    ///
    /// # Errors
    ///
    /// `C-BAD-SPEC` when the request type is not in `registry`.
    pub async fn send_recorded(
        &self,
        ctx: &Ctx,
        node: &CallNode,
        registry: &Registry,
    ) -> Result<Delivery, NanoError> {
        registry.get(&node.request)?;
        let decoded = registry.decode_request(&node.request, &node.body);
        if let Some(wire) = &self.wire {
            if let Some(reason) = wire.refuses(&node.service, &node.request) {
                return Ok(Delivery::NotApplicable(reason));
            }
            if decoded.is_err() {
                let call = JsonCall {
                    ctx: ctx.clone(),
                    caller: node.caller.clone(),
                    service: node.service.clone(),
                    request: node.request.clone(),
                    body: node.body.to_value(),
                };
                return Ok(Delivery::Answered(wire.send_json(call).await));
            }
        }
        match decoded {
            Ok(request) => {
                let outcome = match (self.connect)(&node.caller, &node.service) {
                    Ok(client) => client.call_any(ctx, request).await,
                    Err(err) => Err(err),
                };
                Ok(Delivery::Answered(CallOutcome::from_outcome(&outcome)))
            }
            Err(err) => Ok(Delivery::NotApplicable(format!(
                "the recorded body does not decode as {} ({err}); in process only the sender's \
                 own decoding sees it, never {}",
                node.request, node.service
            ))),
        }
    }
}

impl fmt::Debug for Deployment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Deployment").field(&self.name).finish()
    }
}

/// Runs the same requests against two or more [`Deployment`]s and reports every difference in
/// outcome (response body, error code, error message) under one [`Spec`].
///
/// The first deployment is the baseline every other one is compared with. Each request gets a
/// fresh context from the context factory (by default [`Ctx::new`]) per deployment, sharing one
/// request id.
///
/// ```
/// use nano::NanoError;
/// use nano_test::{Deployment, ParityCheck};
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Debug, Clone, Default, Serialize, Deserialize)] pub struct Req { pub param: String }
/// # #[derive(Debug, Clone, Default, Serialize, Deserialize)] pub struct Resp { pub value: String }
/// # impl nano::Request for Req { type Response = Resp; const NAME: &'static str = "svc1.Req"; }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), NanoError> {
/// let services = || {
///     nano::ServiceSet::builder().service(nano_test::request_fn("svc1", |_ctx, r: Req| async move {
///         Ok(Resp { value: format!("svc1_{}", r.param) })
///     }))
/// };
/// let report = ParityCheck::new([
///     Deployment::in_process(services())?,
///     Deployment::with_fidelity(services())?,
/// ])
/// .request("svc1", Req { param: "x".into() })
/// .run()
/// .await?;
/// report.assert_consistent();
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ParityCheck {
    deployments: Vec<Deployment>,
    spec: Spec,
    requests: Vec<(String, AnyRequest)>,
    ctx: Arc<dyn Fn() -> Ctx + Send + Sync>,
}

impl ParityCheck {
    /// A check over `deployments`; the first one is the baseline.
    pub fn new(deployments: impl IntoIterator<Item = Deployment>) -> Self {
        ParityCheck {
            deployments: deployments.into_iter().collect(),
            spec: Spec::default(),
            requests: Vec::new(),
            ctx: Arc::new(Ctx::new),
        }
    }

    /// Compares outcomes under `spec` instead of the default spec.
    #[must_use]
    pub fn spec(mut self, spec: Spec) -> Self {
        self.spec = spec;
        self
    }

    /// Makes each request's context with `ctx` (e.g. to set a timeout); the request id is then
    /// shared across deployments.
    #[must_use]
    pub fn ctx(mut self, ctx: impl Fn() -> Ctx + Send + Sync + 'static) -> Self {
        self.ctx = Arc::new(ctx);
        self
    }

    /// Adds a request to send to `service`.
    #[must_use]
    pub fn request<R: Request>(self, service: impl Into<String>, request: R) -> Self {
        self.any_request(service, AnyRequest::new(request))
    }

    /// Adds a type-erased request to send to `service`.
    #[must_use]
    pub fn any_request(mut self, service: impl Into<String>, request: AnyRequest) -> Self {
        self.requests.push((service.into(), request));
        self
    }

    /// Sends every request to every deployment, one after the other, and compares the outcomes.
    ///
    /// # Errors
    ///
    /// `C-BAD-USE` with fewer than two deployments. Differences are not errors: they are in the
    /// report.
    pub async fn run(&self) -> Result<ParityReport, NanoError> {
        let mut cases = Vec::with_capacity(self.requests.len());
        for (service, request) in &self.requests {
            cases.push(self.run_one(service, request).await?);
        }
        Ok(ParityReport { cases })
    }

    /// Sends one request to every deployment and compares the outcomes.
    ///
    /// # Errors
    ///
    /// As [`run`](ParityCheck::run).
    pub async fn run_one(
        &self,
        service: &str,
        request: &AnyRequest,
    ) -> Result<ParityCase, NanoError> {
        if self.deployments.len() < 2 {
            return Err(NanoError::new(
                codes::BAD_USE,
                format!(
                    "a parity check needs at least two deployments, got {}",
                    self.deployments.len()
                ),
            ));
        }
        let root = (self.ctx)();
        let mut outcomes = Vec::with_capacity(self.deployments.len());
        for deployment in &self.deployments {
            let ctx = derive_root(&root);
            let outcome = deployment.send(&ctx, service, request.clone()).await;
            outcomes.push((
                deployment.name().to_owned(),
                CallOutcome::from_outcome(&outcome),
            ));
        }
        let target = Target::new(service, request.name());
        let (baseline, baseline_outcome) = &outcomes[0];
        let differences = outcomes[1..]
            .iter()
            .filter_map(|(name, outcome)| {
                self.spec
                    .compare_outcomes(&target, baseline_outcome, outcome)
                    .err()
                    .map(|mismatches| ParityDifference {
                        baseline: baseline.clone(),
                        deployment: name.clone(),
                        mismatches,
                    })
            })
            .collect();
        Ok(ParityCase {
            service: service.to_owned(),
            request: request.name().to_owned(),
            body: request
                .to_json_value()
                .unwrap_or_else(|err| Value::String(format!("[cannot encode: {err}]"))),
            outcomes,
            differences,
        })
    }
}

/// A root context like `root` (request id, deadline, metadata) for one more deployment.
fn derive_root(root: &Ctx) -> Ctx {
    let mut ctx = Ctx::with_request_id(root.request_id().clone());
    if let Some(deadline) = root.deadline() {
        ctx = ctx.with_deadline(deadline);
    }
    for (key, value) in root.metadata_entries() {
        ctx = ctx.with_metadata(key, value);
    }
    ctx
}

impl fmt::Debug for ParityCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParityCheck")
            .field("deployments", &self.deployments)
            .field("requests", &self.requests.len())
            .finish()
    }
}

/// How one deployment's outcome differs from the baseline's.
#[derive(Debug, Clone, PartialEq)]
pub struct ParityDifference {
    /// The baseline deployment.
    pub baseline: String,
    /// The deployment that differs.
    pub deployment: String,
    /// What differs, with a diff (baseline as "expected").
    pub mismatches: Mismatches,
}

/// One request of a parity check: what each deployment answered, and the differences.
#[derive(Debug, Clone, PartialEq)]
pub struct ParityCase {
    /// The called service.
    pub service: String,
    /// The request's wire name.
    pub request: String,
    /// The request body.
    pub body: Value,
    /// Each deployment's outcome, in deployment order.
    pub outcomes: Vec<(String, CallOutcome)>,
    /// The deployments whose outcome differs from the baseline's.
    pub differences: Vec<ParityDifference>,
}

impl ParityCase {
    /// Whether every deployment gave the baseline's outcome.
    pub fn is_consistent(&self) -> bool {
        self.differences.is_empty()
    }
}

impl fmt::Display for ParityCase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} {} sent to service {:?}:",
            self.request, self.body, self.service
        )?;
        for difference in &self.differences {
            writeln!(
                f,
                "  {:?} differs from {:?}:",
                difference.deployment, difference.baseline
            )?;
            for line in difference.mismatches.to_string().lines() {
                writeln!(f, "    {line}")?;
            }
        }
        Ok(())
    }
}

/// What a [`ParityCheck`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct ParityReport {
    /// One case per request, in the order they were added.
    pub cases: Vec<ParityCase>,
}

impl ParityReport {
    /// Whether every deployment answered every request like the baseline.
    pub fn is_consistent(&self) -> bool {
        self.cases.iter().all(ParityCase::is_consistent)
    }

    /// The cases with differences.
    pub fn inconsistent(&self) -> impl Iterator<Item = &ParityCase> {
        self.cases.iter().filter(|case| !case.is_consistent())
    }

    /// The report as a result.
    ///
    /// # Errors
    ///
    /// A [`ParityError`] describing every difference.
    pub fn check(&self) -> Result<(), ParityError> {
        if self.is_consistent() {
            Ok(())
        } else {
            Err(ParityError {
                report: self.to_string(),
            })
        }
    }

    /// Panics with every difference unless the deployments agree.
    ///
    /// # Panics
    ///
    /// When a deployment answered a request differently from the baseline.
    #[track_caller]
    pub fn assert_consistent(&self) {
        if let Err(err) = self.check() {
            panic!("{err}");
        }
    }
}

impl fmt::Display for ParityReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bad = self.inconsistent().count();
        writeln!(
            f,
            "parity check: {bad} of {} requests answered differently",
            self.cases.len()
        )?;
        for case in self.inconsistent() {
            write!(f, "{case}")?;
        }
        Ok(())
    }
}

/// The failure of [`ParityReport::check`]: the rendered differences.
#[derive(Clone, PartialEq, Eq)]
pub struct ParityError {
    /// The report, with a diff per difference.
    pub report: String,
}

/// The readable report, also when a test returns this error with `?` (the test harness prints
/// the `Debug` form of a returned error).
impl fmt::Debug for ParityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for ParityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.report.trim_end())
    }
}

impl std::error::Error for ParityError {}
