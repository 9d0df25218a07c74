//! `chaos --seed N [--plan FILE]`: every scenario under a seeded fault plan, with the invariants
//! that must hold whatever the network does: the runner's own, and the system's
//! ([`Runner::invariant`](crate::runner::Runner::invariant)).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use crate::scenario::{Registry, Scenario, Unreachable, compare_outcome, send_root_at_edge};
use crate::sim::invariant::Invariants;
use crate::sim::{
    EdgeFaults, FaultPlan, InvariantCount, Latency, Network, ShrunkFailure, SimReport, Simulation,
    TraceEntry, TraceOutcome,
};
use crate::{CallOutcome, TransportFidelity};
use anyhow::Context;
use clap::Args;
use nano::{Client, Ctx, NanoError, ServiceSet, ServiceSetBuilder, codes};
use nano_server::System;

use crate::runner::Config;
use crate::runner::catalog::{Catalog, registry};
use crate::runner::deployments::needs_a_token;
use crate::runner::out::outln;

/// The root request's deadline without `--deadline-ms`.
const DEFAULT_DEADLINE_MS: u64 = 2000;
/// How often each root request is sent without `--requests`.
const DEFAULT_REQUESTS: u32 = 20;

/// The seed, the plan and the scenarios.
#[derive(Debug, Clone, Args)]
pub(crate) struct ChaosArgs {
    /// Seed of every random decision; the same seed prints the same output, byte for byte.
    #[arg(long)]
    pub(crate) seed: u64,
    /// A fault plan as JSON (the format: docs/fault-plan-format.md, or `nano_test::sim::FaultPlan`);
    /// its seed is replaced by --seed. Default: the runner's plan file, or 1–30 ms latency on
    /// every edge, 10% loss and a 500 ms transport timeout.
    #[arg(long, value_name = "FILE")]
    pub(crate) plan: Option<PathBuf>,
    /// The root request's deadline, in milliseconds of virtual time.
    #[arg(long, value_name = "MS", default_value_t = DEFAULT_DEADLINE_MS)]
    pub(crate) deadline_ms: u64,
    /// How many times each scenario's root request is sent, one after the other.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_REQUESTS)]
    pub(crate) requests: u32,
    /// Directory of scenario files.
    #[arg(long, value_name = "DIR")]
    pub(crate) dir: Option<PathBuf>,
    /// Only scenarios whose name contains this text.
    #[arg(long, value_name = "TEXT")]
    pub(crate) filter: Option<String>,
}

/// The plan used without `--plan` when the runner names no plan file: faults on every edge,
/// none specific to a system.
pub fn generic_plan() -> FaultPlan {
    let ms = Duration::from_millis;
    FaultPlan::new(0).all_edges(
        EdgeFaults::new()
            .latency(Latency::uniform(ms(1), ms(30)))
            .drop_rate(0.1)
            .timeout(ms(500)),
    )
}

/// One request `chaos` sent, as the invariants see it once it has finished: the scenario it
/// replays, how the root call ended, every call it caused, and clients of the set that served it.
///
/// The set is the request's own (each request gets a fresh one), so what its services hold in
/// memory is what this request left there.
pub struct ChaosRequest {
    scenario: Arc<Scenario>,
    outcome: CallOutcome,
    trace: Vec<TraceEntry>,
    set: ServiceSet,
    net: Network,
    /// Virtual time when the root request was sent, and when it had to end.
    started: Duration,
    deadline: Duration,
    /// Virtual time when the root call ended.
    ended: Duration,
}

impl ChaosRequest {
    /// The scenario whose root request this was.
    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// How the root call ended.
    pub fn outcome(&self) -> &CallOutcome {
        &self.outcome
    }

    /// Every call of this request through the simulated network, the root call first, in the
    /// order they started.
    pub fn trace(&self) -> &[TraceEntry] {
        &self.trace
    }

    /// A client of `service` in the set that served this request, calling as `caller`. Its
    /// calls pass the simulated network untouched (no faults, no trace entries), so a check can
    /// look at the system without the faults under test failing the check itself; the scenario's
    /// unreachable services stay unreachable.
    ///
    /// # Errors
    ///
    /// `S-UNKNOWN-SERVICE` when the set has no such service.
    pub fn client(&self, caller: &str, service: &str) -> Result<Client, NanoError> {
        self.set.client(caller, service)
    }

    /// A context for the calls of a check, with a request id derived from the run's seed.
    pub fn ctx(&self) -> Ctx {
        self.net.ctx()
    }
}

impl fmt::Debug for ChaosRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChaosRequest")
            .field("scenario", &self.scenario.name)
            .field("outcome", &self.outcome)
            .field("calls", &self.trace.len())
            .finish_non_exhaustive()
    }
}

/// What `chaos` itself checks of every request, in this order, before the system's own.
pub(crate) const INVARIANTS: [&str; 5] = [
    "every call ends by the root request's deadline",
    "every failed call fails with an error code",
    "a failed root fails with the recorded code, a code a call below it failed with, a network \
     failure of the root call itself, or S-TIMEOUT once the deadline passed",
    "a root that succeeds answers as recorded (under the scenario's spec)",
    "the root call finishes",
];

/// One of the runner's own checks: why the request breaks it, if it does.
type BuiltinCheck = fn(&ChaosRequest) -> Result<(), String>;

/// The checks of [`INVARIANTS`], in the same order.
const CHECKS: [BuiltinCheck; 5] = [
    ends_by_the_deadline,
    failures_are_coded,
    root_failures_come_from_below,
    root_answers_as_recorded,
    root_finishes,
];

/// The command that runs `scenario` again exactly as this run did: its seed comes from
/// `--seed` and its name, and the flags that change a request are repeated.
fn replay_command(config: &Config, args: &ChaosArgs, scenario: &Scenario) -> String {
    let mut command = format!(
        "{} chaos --seed {} --filter {}",
        config.command(),
        args.seed,
        scenario.name
    );
    if let Some(plan) = &args.plan {
        command.push_str(&format!(" --plan {}", plan.display()));
    }
    if let Some(dir) = &args.dir {
        command.push_str(&format!(" --dir {}", dir.display()));
    }
    if args.deadline_ms != DEFAULT_DEADLINE_MS {
        command.push_str(&format!(" --deadline-ms {}", args.deadline_ms));
    }
    if args.requests != DEFAULT_REQUESTS {
        command.push_str(&format!(" --requests {}", args.requests));
    }
    command
}

/// The runner's invariants, then the system's.
fn invariants(config: &Config) -> Invariants<ChaosRequest> {
    let mut all = Invariants::default();
    for (name, check) in INVARIANTS.into_iter().zip(CHECKS) {
        all.add(name, async move |request: &ChaosRequest| {
            check(request).map_err(Into::into)
        });
    }
    all.extend(config.invariants());
    all
}

pub(crate) fn main(args: ChaosArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let plan_file = args.plan.clone().or_else(|| config.chaos_plan());
    let plan = match &plan_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            FaultPlan::from_json(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
        }
        None => generic_plan(),
    };
    let system = config.system();
    let dir = config.dir(args.dir.as_ref());
    let catalog = Catalog::load_some(system, &dir, args.filter.as_deref())?;
    if let Some((path, err)) = catalog.broken.first() {
        anyhow::bail!("cannot load {}: {err}", path.display());
    }
    let registry = registry(system)?;
    let deadline = Duration::from_millis(args.deadline_ms);
    let invariants = invariants(config);
    // Only a plan that crashes services needs them restartable; the others keep the set as the
    // system builds it.
    let restartable = plan.may_crash().then(|| Arc::new(system.clone()));
    // Why each scenario cannot be sent, if it cannot.
    let unsendable: Vec<Option<String>> = catalog
        .scenarios
        .iter()
        .map(|scenario| needs_a_token(system, scenario))
        .collect();
    let not_applicable = unsendable.iter().flatten().count();
    if not_applicable == catalog.scenarios.len() {
        anyhow::bail!(
            "none of the {} scenario(s) selected can be sent: {}",
            not_applicable,
            unsendable
                .iter()
                .flatten()
                .next()
                .cloned()
                .unwrap_or_default()
        );
    }
    outln!(
        "chaos seed {} deadline {} ms, {} scenarios{}",
        args.seed,
        args.deadline_ms,
        catalog.scenarios.len(),
        if not_applicable > 0 {
            format!(" ({not_applicable} not applicable)")
        } else {
            String::new()
        }
    )?;
    outln!("invariants checked for every request:")?;
    for invariant in invariants.names() {
        outln!("  - {invariant}")?;
    }
    let run = ChaosRun {
        system,
        registry: &registry,
        invariants: &invariants,
        restartable,
        deadline,
        requests: args.requests,
    };
    let mut broken = 0;
    let mut totals: Vec<InvariantCount> = Vec::new();
    for (scenario, unsendable) in catalog.scenarios.iter().zip(&unsendable) {
        if let Some(reason) = unsendable {
            outln!("{}: n/a, not sent: {reason}", scenario.name)?;
            continue;
        }
        let mut plan = plan.clone();
        plan.seed = scenario_seed(args.seed, &scenario.name);
        // The seed comes from --seed, never from NANO_SIM_SEED: each scenario derives its own.
        let simulation =
            Simulation::exact(plan).replay_hint(replay_command(config, &args, scenario));
        let (result, outcomes) = run.scenario(&simulation, scenario);
        let shown: Vec<String> = outcomes
            .iter()
            .map(|(outcome, n)| format!("{n} {outcome}"))
            .collect();
        let checked = match &result {
            Ok(report) => &report.invariants,
            Err(failure) => &failure.original.report.invariants,
        };
        add_counts(&mut totals, checked);
        match result {
            Ok(report) => outln!(
                "{}: {}\n  faults: {}{}; virtual {:.3}s; trace {}",
                scenario.name,
                shown.join(", "),
                report.faults,
                if report.no_faults_injected {
                    " (the plan injected no fault)"
                } else {
                    ""
                },
                report.virtual_time().as_secs_f64(),
                report.trace_digest
            )?,
            Err(failure) => {
                broken += 1;
                outln!(
                    "{:<30} INVARIANT BROKEN faults: {}; trace {}",
                    scenario.name,
                    failure.original.report.faults,
                    failure.original.report.trace_digest
                )?;
                outln!("{failure}")?;
            }
        }
    }
    outln!("invariant checks:")?;
    for count in &totals {
        outln!(
            "  - {}: {} passed, {} failed",
            count.name,
            count.passed,
            count.failed
        )?;
    }
    if broken == 0 {
        outln!("all invariants held")?;
        Ok(ExitCode::SUCCESS)
    } else {
        outln!("{broken} scenario(s) broke an invariant")?;
        Ok(ExitCode::FAILURE)
    }
}

/// What every scenario of one `chaos` run shares.
struct ChaosRun<'a> {
    system: &'a System,
    registry: &'a Registry,
    invariants: &'a Invariants<ChaosRequest>,
    /// The system again, for restartable services, when the plan can crash them.
    restartable: Option<Arc<System>>,
    deadline: Duration,
    requests: u32,
}

impl ChaosRun<'_> {
    /// Sends the scenario's root request `requests` times under `simulation`, each in a fresh
    /// set, checking every invariant after each; the run's result (shrunk when it failed) and
    /// how the root calls of the last run ended, by outcome.
    fn scenario(
        &self,
        simulation: &Simulation,
        scenario: &Scenario,
    ) -> (Result<SimReport, Box<ShrunkFailure>>, BTreeMap<String, u32>) {
        let scenario = Arc::new(scenario.clone());
        let outcomes = RefCell::new(BTreeMap::new());
        let result = simulation.run_and_shrink(|sim| {
            let outcomes = &outcomes;
            let scenario = Arc::clone(&scenario);
            async move {
                outcomes.borrow_mut().clear();
                self.invariants.declare(&sim)?;
                for _ in 0..self.requests {
                    let services = match &self.restartable {
                        Some(system) => restartable_services(system, &sim),
                        None => self.system.all(ServiceSet::builder()),
                    };
                    let sent = replay_under(
                        &sim,
                        services,
                        Arc::clone(&scenario),
                        self.registry,
                        self.deadline,
                        self.system.edge_auth(),
                    )
                    .await;
                    let outcome = match &sent {
                        Ok(request) => &request.outcome,
                        Err((outcome, _)) => outcome,
                    };
                    let shown = match outcome {
                        CallOutcome::Response(_) => "ok".to_owned(),
                        CallOutcome::Error { code, .. } => code.clone(),
                        CallOutcome::Unfinished => "unfinished".to_owned(),
                    };
                    *outcomes.borrow_mut().entry(shown).or_insert(0_u32) += 1;
                    let request = sent.map_err(|(_, why)| why)?;
                    self.invariants.check(&request, &sim).await?;
                }
                Ok(())
            }
        });
        (result, outcomes.into_inner())
    }
}

/// Adds the counts of one scenario's run to the totals, by name, keeping the first order seen.
fn add_counts(totals: &mut Vec<InvariantCount>, counts: &[InvariantCount]) {
    for count in counts {
        match totals.iter_mut().find(|total| total.name == count.name) {
            Some(total) => {
                total.passed += count.passed;
                total.failed += count.failed;
            }
            None => totals.push(count.clone()),
        }
    }
}

/// Every service of `system`, each able to crash and restart on `sim`.
fn restartable_services(system: &Arc<System>, sim: &Network) -> ServiceSetBuilder {
    let mut builder = ServiceSet::builder();
    for name in system.service_names() {
        let system = Arc::clone(system);
        builder = builder.service(sim.restartable(move || {
            system
                .new_service(name)
                .expect("a service the system lists has a constructor")
        }));
    }
    builder
}

/// Mixes the run's seed with the scenario's name, so that scenarios get different but
/// reproducible faults.
fn scenario_seed(seed: u64, name: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
    for byte in name.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// Replays the root request of `scenario` through the simulated network, and through `edge`
/// first when the system has one; the request for the invariants, or the outcome and why it
/// could not be sent.
async fn replay_under(
    sim: &Network,
    services: ServiceSetBuilder,
    scenario: Arc<Scenario>,
    registry: &Registry,
    deadline: Duration,
    edge: Option<&nano_wire::EdgeAuth>,
) -> Result<ChaosRequest, (CallOutcome, String)> {
    let set = services
        .hook(TransportFidelity::new())
        .hook(Unreachable::new(scenario.unreachable.iter().cloned()))
        .hook(sim.hook())
        .build()
        .map_err(|err| {
            (
                CallOutcome::from_error(&err),
                format!("cannot build the set: {err}"),
            )
        })?;
    let first_call = sim.trace().len();
    let started = sim.elapsed();
    let ctx = sim.ctx().with_timeout(deadline);
    let outcome = send_root_at_edge(&scenario, registry, &set, ctx, edge)
        .await
        .map_err(|err| (CallOutcome::from_error(&err), err.to_string()))?;
    Ok(ChaosRequest {
        trace: sim.trace().into_iter().skip(first_call).collect(),
        ended: sim.elapsed(),
        scenario,
        outcome,
        set,
        net: sim.clone(),
        started,
        deadline,
    })
}

/// The request's deadline in microseconds of virtual time.
fn deadline_us(request: &ChaosRequest) -> u64 {
    let deadline = request.started.saturating_add(request.deadline);
    u64::try_from(deadline.as_micros()).unwrap_or(u64::MAX)
}

fn ends_by_the_deadline(request: &ChaosRequest) -> Result<(), String> {
    let deadline_us = deadline_us(request);
    match request.trace.iter().find(|call| call.end_us > deadline_us) {
        Some(late) => Err(format!(
            "{} ended at {} ms, after the {} ms deadline",
            late.call,
            late.end_us / 1000,
            deadline_us / 1000
        )),
        None => Ok(()),
    }
}

fn failures_are_coded(request: &ChaosRequest) -> Result<(), String> {
    if let Some(uncoded) = request
        .trace
        .iter()
        .find(|call| matches!(&call.outcome, TraceOutcome::Error { code } if code.is_empty()))
    {
        return Err(format!("{} failed with an uncoded error", uncoded.call));
    }
    match &request.outcome {
        CallOutcome::Error { code, message } if code.is_empty() => {
            Err(format!("the root failed with an uncoded error: {message}"))
        }
        _ => Ok(()),
    }
}

fn root_failures_come_from_below(request: &ChaosRequest) -> Result<(), String> {
    let CallOutcome::Error { code, message } = &request.outcome else {
        return Ok(());
    };
    if code.is_empty() {
        // The coding invariant reports it.
        return Ok(());
    }
    let recorded =
        matches!(&request.scenario.root.outcome, CallOutcome::Error { code: c, .. } if c == code);
    // The code must come from a failure below the root, or from the network failing the root
    // call itself.
    let from_below = request
        .trace
        .iter()
        .skip(1)
        .any(|call| matches!(&call.outcome, TraceOutcome::Error { code: c } if c == code));
    let from_root_edge = request
        .trace
        .first()
        .is_some_and(TraceEntry::failed_by_network);
    let deadline_passed =
        code == codes::TIMEOUT && request.ended >= request.started.saturating_add(request.deadline);
    if recorded || from_below || from_root_edge || deadline_passed {
        Ok(())
    } else {
        Err(format!(
            "the root failed with {code} ({message}), which no call below it failed with"
        ))
    }
}

fn root_answers_as_recorded(request: &ChaosRequest) -> Result<(), String> {
    match &request.outcome {
        CallOutcome::Response(_) => {
            match compare_outcome(
                &request.scenario.spec,
                &request.scenario.root,
                &request.outcome,
            ) {
                None => Ok(()),
                Some(problem) => Err(format!("the root succeeded with another answer: {problem}")),
            }
        }
        _ => Ok(()),
    }
}

fn root_finishes(request: &ChaosRequest) -> Result<(), String> {
    match request.outcome {
        CallOutcome::Unfinished => Err("the root call did not finish".into()),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CallRecorder;
    use crate::runner::Runner;
    use crate::runner::test_system::{self, Ask, front, mid};
    use crate::sim::{Fault, InjectedFault};
    use std::sync::atomic::{AtomicU64, Ordering};

    /// `front` with its errors recoded: what the propagation invariant must catch.
    struct Recoding(front::Served<test_system::Front>);

    impl nano::Service for Recoding {
        fn name(&self) -> &str {
            front::NAME
        }
        async fn handle(&self, ctx: nano::Ctx, req: nano::AnyRequest) -> nano::Outcome {
            nano::Service::handle(&self.0, ctx, req)
                .await
                .map_err(|err| err.with_code("S-RECODED"))
        }
    }

    /// The root request of `system`'s `root` service, recorded in-process.
    fn record(system: &System, root: &str, request: impl nano::Request) -> Scenario {
        let recorder = CallRecorder::new();
        let set = system
            .all(ServiceSet::builder())
            .hook(recorder.clone())
            .build()
            .unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime
            .block_on(
                set.client("test_client", root)
                    .unwrap()
                    .call(&nano::Ctx::new(), request),
            )
            .unwrap();
        Scenario::new(format!("{root}-scenario"), recorder.last_tree().unwrap())
    }

    /// What the edge answers a protected request without a token, as a recording holds it.
    fn edge_refusal() -> CallOutcome {
        CallOutcome::from_error(&nano_wire::bearer_token(None).unwrap_err())
    }

    /// The chain's root request, recorded in-process.
    fn recorded() -> Scenario {
        record(
            &test_system::system(),
            front::NAME,
            Ask { text: "x".into() },
        )
    }

    /// The runner's own invariants, without any of a system.
    fn builtins() -> Invariants<ChaosRequest> {
        let config = Config {
            runner: Runner::new(test_system::system()),
            command: "chaos-test".into(),
        };
        invariants(&config)
    }

    #[test]
    fn an_error_that_loses_its_code_on_the_way_to_the_root_breaks_an_invariant() {
        let scenario = Arc::new(recorded());
        let plan = FaultPlan::new(1).edge("front", "mid", EdgeFaults::new().drop_rate(1.0));
        let system = test_system::system();
        let registry = registry(&system).unwrap();
        let invariants = builtins();
        let run = |recode: bool| {
            let (scenario, registry, system, invariants) =
                (&scenario, &registry, &system, &invariants);
            Simulation::exact(plan.clone()).run(move |sim| async move {
                let mut services = ServiceSet::builder();
                if recode {
                    services = services.service(nano::NewService::construct(front::NAME, |deps| {
                        let front = test_system::Front(deps.client(mid::NAME)?);
                        Ok(Recoding(front::Served(front)))
                    }));
                    for name in ["mid", "leaf"] {
                        services = services.service(system.new_service(name).unwrap());
                    }
                } else {
                    services = system.all(services);
                }
                let request = replay_under(
                    &sim,
                    services,
                    Arc::clone(scenario),
                    registry,
                    Duration::from_secs(1),
                    None,
                )
                .await
                .map_err(|(_, why)| why)?;
                invariants.check(&request, &sim).await
            })
        };
        // The real front keeps mid's S-UNAVAILABLE.
        let report = run(false).unwrap();
        assert!(
            report
                .invariants
                .iter()
                .all(|c| (c.passed, c.failed) == (1, 0))
        );
        let failure = run(true).unwrap_err();
        assert_eq!(
            failure.message,
            format!(
                "{}: the root failed with S-RECODED (mid failure :: request from front to mid \
                 was lost), which no call below it failed with",
                INVARIANTS[2]
            )
        );
        // Every invariant was checked; only that one broke.
        let counts: Vec<_> = failure
            .report
            .invariants
            .iter()
            .map(|c| (c.name.as_str(), c.passed, c.failed))
            .collect();
        assert_eq!(
            counts,
            [
                (INVARIANTS[0], 1, 0),
                (INVARIANTS[1], 1, 0),
                (INVARIANTS[2], 0, 1),
                (INVARIANTS[3], 1, 0),
                (INVARIANTS[4], 1, 0),
            ]
        );
    }

    #[test]
    fn chaos_sends_each_root_through_the_systems_edge() {
        // Recorded behind the edge: a scenario carries no token, so the root was refused.
        let guarded = test_system::guarded_system();
        let mut scenario = recorded();
        scenario.root.outcome = edge_refusal();
        scenario.root.calls.clear();
        let registry = registry(&guarded).unwrap();
        let config = Config {
            runner: Runner::new(guarded.clone()),
            command: "edge-chaos".into(),
        };
        let invariants = invariants(&config);
        let run = ChaosRun {
            system: &guarded,
            registry: &registry,
            invariants: &invariants,
            restartable: None,
            deadline: Duration::from_secs(1),
            requests: 5,
        };
        let plan = FaultPlan::new(6).all_edges(EdgeFaults::new().latency(Latency::uniform(
            Duration::from_millis(1),
            Duration::from_millis(5),
        )));
        let (result, outcomes) = run.scenario(&Simulation::exact(plan), &scenario);
        result.unwrap();
        assert_eq!(outcomes, BTreeMap::from([("C-UNAUTHORIZED".to_owned(), 5)]));
    }

    #[test]
    fn the_replay_command_repeats_every_flag_that_changes_a_request() {
        let config = Config {
            runner: Runner::new(test_system::system()),
            command: "runner".into(),
        };
        let scenario = recorded();
        let mut args = ChaosArgs {
            seed: 7,
            plan: None,
            deadline_ms: DEFAULT_DEADLINE_MS,
            requests: DEFAULT_REQUESTS,
            dir: None,
            filter: None,
        };
        assert_eq!(
            replay_command(&config, &args, &scenario),
            "runner chaos --seed 7 --filter front-scenario"
        );
        args.plan = Some("plan.json".into());
        args.dir = Some("s1".into());
        args.deadline_ms = 500;
        args.requests = 3;
        assert_eq!(
            replay_command(&config, &args, &scenario),
            "runner chaos --seed 7 --filter front-scenario --plan plan.json --dir s1 \
             --deadline-ms 500 --requests 3"
        );
    }

    #[test]
    fn a_root_recorded_past_the_edge_is_not_applicable_anywhere() {
        let guarded = test_system::guarded_system();
        let answered = recorded();
        let reason = crate::runner::deployments::needs_a_token(&guarded, &answered).unwrap();
        assert!(
            reason.contains("front.Ask") && reason.contains("bearer token"),
            "{reason}"
        );
        // Past the edge: a refusal of the handler's own, or of the auth service, is no replay.
        let needs =
            |scenario: &Scenario| crate::runner::deployments::needs_a_token(&guarded, scenario);
        let mut forbidden = answered.clone();
        forbidden.root.calls.clear();
        forbidden.root.outcome = CallOutcome::Error {
            code: nano_wire::codes::FORBIDDEN.into(),
            message: "not for this user".into(),
        };
        assert!(needs(&forbidden).is_some());
        let mut handler_refused = forbidden.clone();
        handler_refused.root.outcome = CallOutcome::Error {
            code: nano_wire::codes::UNAUTHORIZED.into(),
            message: "the session ended".into(),
        };
        assert!(needs(&handler_refused).is_some());
        // Refused at the edge as recorded, an unprotected root, or a system without an edge:
        // replayable.
        let mut refused = forbidden.clone();
        refused.root.outcome = edge_refusal();
        assert!(needs(&refused).is_none());
        let mut unprotected = answered.clone();
        unprotected.root.request = "front.Other".into();
        assert!(needs(&unprotected).is_none());
        let open = test_system::system();
        assert!(crate::runner::deployments::needs_a_token(&open, &answered).is_none());
    }

    #[test]
    fn a_chaos_run_that_can_send_nothing_fails() {
        let dir = crate::runner::ScratchDir::new("nano-chaos-test").unwrap();
        let mut admitted = recorded();
        admitted.name = "admitted".into();
        admitted.save(dir.path().join("admitted.json")).unwrap();
        let config = Config {
            runner: Runner::new(test_system::guarded_system()),
            command: "edge-chaos".into(),
        };
        let args = |filter: Option<&str>| ChaosArgs {
            seed: 1,
            plan: None,
            deadline_ms: DEFAULT_DEADLINE_MS,
            requests: 1,
            dir: Some(dir.path().to_owned()),
            filter: filter.map(str::to_owned),
        };
        // The only scenario was admitted by the edge when it was recorded: nothing can be sent.
        let err = main(args(None), &config).unwrap_err().to_string();
        assert!(
            err.contains("none of the 1 scenario(s) selected can be sent"),
            "{err}"
        );
        assert!(err.contains("bearer token"), "{err}");
        // A filter that selects nothing is no pass either.
        let err = main(args(Some("nosuch")), &config).unwrap_err().to_string();
        assert!(err.contains("matches \"nosuch\""), "{err}");
    }

    #[test]
    fn scenario_seeds_differ_by_name_and_by_run_seed() {
        assert_ne!(scenario_seed(1, "a"), scenario_seed(1, "b"));
        assert_ne!(scenario_seed(1, "a"), scenario_seed(2, "a"));
        assert_eq!(scenario_seed(1, "a"), scenario_seed(1, "a"));
    }

    // A system with state: `adder` asks `tally` to add one, and `tally` counts in memory.
    #[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
    #[serde(default)]
    struct Bump {}
    #[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
    #[serde(default)]
    struct Add {}
    #[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
    #[serde(default)]
    struct Total {}
    #[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
    #[serde(default)]
    struct Count {
        n: u64,
    }

    mod adder {
        nano::api! { service "adder"; fn bump(super::Bump) -> super::Count = "adder.Bump", POST "/"; }
    }
    mod tally {
        nano::api! {
            service "tally";
            fn add(super::Add) -> super::Count = "tally.Add", POST "/";
            fn total(super::Total) -> super::Count = "tally.Total", POST "/total";
        }
    }

    struct Adder(Client);
    impl adder::Handler for Adder {
        async fn bump(&self, ctx: &Ctx, _req: Bump) -> Result<Count, NanoError> {
            self.0.call(ctx, Add {}).await
        }
    }

    struct Tally(AtomicU64);
    impl tally::Handler for Tally {
        async fn add(&self, _ctx: &Ctx, _req: Add) -> Result<Count, NanoError> {
            Ok(Count {
                n: self.0.fetch_add(1, Ordering::Relaxed) + 1,
            })
        }
        async fn total(&self, _ctx: &Ctx, _req: Total) -> Result<Count, NanoError> {
            Ok(Count {
                n: self.0.load(Ordering::Relaxed),
            })
        }
    }

    fn counting_system() -> System {
        System::new("the tally")
            .service(&adder::API, || {
                adder::service(|deps| Ok(Adder(deps.client(tally::NAME)?)))
            })
            .service(&tally::API, || {
                tally::service(|_| Ok(Tally(AtomicU64::new(0))))
            })
    }

    /// A check through the request's set: the tally counted at most one addition per request.
    async fn counted_at_most_once(request: &ChaosRequest) -> Result<(), crate::sim::BoxError> {
        let tally = request.client("check", tally::NAME)?;
        let total = tally.call(&request.ctx(), Total {}).await?;
        if total.n > 1 {
            return Err(format!("the tally counted {} additions for one request", total.n).into());
        }
        Ok(())
    }

    const AT_MOST_ONCE: &str = "one request adds at most once";

    /// `chaos` of the tally's recorded root request under `plan`, with the system's invariant.
    fn chaos_tally(
        plan: FaultPlan,
    ) -> (Result<SimReport, Box<ShrunkFailure>>, BTreeMap<String, u32>) {
        let system = counting_system();
        let scenario = record(&system, adder::NAME, Bump {});
        let registry = registry(&system).unwrap();
        let config = Config {
            runner: Runner::new(system.clone()).invariant(AT_MOST_ONCE, counted_at_most_once),
            command: "tally-chaos".into(),
        };
        let invariants = invariants(&config);
        assert_eq!(invariants.names().last(), Some(AT_MOST_ONCE));
        let run = ChaosRun {
            system: &system,
            registry: &registry,
            invariants: &invariants,
            restartable: plan.may_crash().then(|| Arc::new(system.clone())),
            deadline: Duration::from_secs(2),
            requests: 20,
        };
        let simulation = Simulation::exact(plan).replay_hint("tally-chaos --seed 1");
        run.scenario(&simulation, &scenario)
    }

    #[test]
    fn a_system_invariant_is_checked_after_every_request_without_faults_of_its_own() {
        // Every call between services is lost, the invariant's own calls are not.
        let plan = FaultPlan::new(3).all_edges(EdgeFaults::new().drop_rate(1.0));
        let (result, outcomes) = chaos_tally(plan);
        let report = result.unwrap();
        assert_eq!(outcomes, BTreeMap::from([("S-UNAVAILABLE".to_owned(), 20)]));
        let count = report.invariant(AT_MOST_ONCE).unwrap();
        assert_eq!((count.passed, count.failed), (20, 0));
        assert_eq!(report.invariants.len(), 6);
        // The checks left no trace: one call per request, the lost root call.
        assert_eq!(report.calls, 20);
    }

    #[test]
    fn a_broken_system_invariant_is_shrunk_to_the_duplicate_that_breaks_it() {
        let plan = FaultPlan::new(4)
            .all_edges(EdgeFaults::new().latency(Latency::uniform(
                Duration::from_millis(1),
                Duration::from_millis(20),
            )))
            .edge("adder", "tally", EdgeFaults::new().duplicate_rate(0.2));
        let (result, _) = chaos_tally(plan);
        let failure = result.unwrap_err();
        // The answer differs from the recording too, so the runner's own invariant breaks with it.
        assert!(
            failure
                .original
                .message
                .contains("; one request adds at most once: the tally counted 2 additions"),
            "{failure}"
        );
        assert_eq!(
            failure
                .original
                .report
                .invariant(INVARIANTS[3])
                .unwrap()
                .failed,
            1
        );
        assert_eq!(
            failure
                .original
                .report
                .invariant(AT_MOST_ONCE)
                .unwrap()
                .failed,
            1
        );
        assert_eq!(failure.minimal.schedule.len(), 1, "{failure}");
        let only = &failure.minimal.schedule[0];
        assert_eq!(only.fault, InjectedFault::Duplicate);
        assert_eq!(
            (only.call.caller.as_str(), only.call.callee.as_str()),
            ("adder", "tally")
        );
        assert!(
            failure
                .to_string()
                .contains("replay with tally-chaos --seed 1"),
            "{failure}"
        );
    }

    #[test]
    fn a_crash_plan_runs_the_system_restartable_and_the_invariants_hold() {
        // The tally crashes on every 3rd call: the request in flight fails with the wire's
        // code, and the next request reaches a new tally that counts from zero.
        let mut plan = FaultPlan::new(5);
        for nth in [3, 6, 9] {
            plan = plan.nth_call_to(
                tally::NAME,
                nth,
                Fault::Crash {
                    down_ms: Duration::ZERO,
                },
            );
        }
        let (result, outcomes) = chaos_tally(plan);
        let report = result.unwrap();
        assert_eq!(report.faults.crashed, 3);
        assert_eq!(
            outcomes,
            BTreeMap::from([("S-UNAVAILABLE".to_owned(), 3), ("ok".to_owned(), 17)])
        );
        assert!(report.invariants.iter().all(|c| c.failed == 0), "{report}");
    }

    #[test]
    fn two_invariants_with_one_name_fail_the_run() {
        let system = counting_system();
        let scenario = record(&system, adder::NAME, Bump {});
        let registry = registry(&system).unwrap();
        let config = Config {
            runner: Runner::new(system.clone())
                .invariant(INVARIANTS[0], async |_: &ChaosRequest| Ok(())),
            command: "tally-chaos".into(),
        };
        let invariants = invariants(&config);
        let run = ChaosRun {
            system: &system,
            registry: &registry,
            invariants: &invariants,
            restartable: None,
            deadline: Duration::from_secs(2),
            requests: 1,
        };
        let (result, _) = run.scenario(&Simulation::exact(FaultPlan::new(1)), &scenario);
        let failure = result.unwrap_err();
        assert_eq!(
            failure.original.message,
            format!("two invariants are named {:?}", INVARIANTS[0])
        );
    }
}
