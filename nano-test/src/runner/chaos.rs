//! `chaos --seed N [--plan FILE]`: every scenario under a seeded fault plan, with the invariants
//! that must hold whatever the network does.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::scenario::{Registry, Scenario, Unreachable, compare_outcome, send_root};
use crate::sim::{EdgeFaults, FaultPlan, Latency, Network, Simulation, TraceOutcome};
use crate::{CallOutcome, TransportFidelity};
use anyhow::Context;
use clap::Args;
use nano::{ServiceSet, ServiceSetBuilder, codes};

use crate::runner::Config;
use crate::runner::catalog::{Catalog, registry};
use crate::runner::out::outln;

/// The seed, the plan and the scenarios.
#[derive(Debug, Clone, Args)]
pub(crate) struct ChaosArgs {
    /// Seed of every random decision; the same seed prints the same output, byte for byte.
    #[arg(long)]
    pub(crate) seed: u64,
    /// A fault plan as JSON (see `nano_test::sim::FaultPlan`); its seed is replaced by --seed.
    /// Default: the runner's plan file, or 1–30 ms latency on every edge, 10% loss and a 500 ms
    /// transport timeout.
    #[arg(long, value_name = "FILE")]
    pub(crate) plan: Option<PathBuf>,
    /// The root request's deadline, in milliseconds of virtual time.
    #[arg(long, value_name = "MS", default_value_t = 2000)]
    pub(crate) deadline_ms: u64,
    /// How many times each scenario's root request is sent, one after the other.
    #[arg(long, value_name = "N", default_value_t = 20)]
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

/// What `chaos` checks of every replayed request, in the order [`check_invariants`] checks it.
pub(crate) const INVARIANTS: [&str; 5] = [
    "every call ends by the root request's deadline",
    "every failed call fails with an error code",
    "a failed root fails with the recorded code, a code a call below it failed with, a network \
     failure of the root call itself, or S-TIMEOUT once the deadline passed",
    "a root that succeeds answers as recorded (under the scenario's spec)",
    "the root call finishes",
];

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
    let catalog = Catalog::load(system, &dir, args.filter.as_deref())?;
    if let Some((path, err)) = catalog.broken.first() {
        anyhow::bail!("cannot load {}: {err}", path.display());
    }
    let registry = registry(system)?;
    let deadline = Duration::from_millis(args.deadline_ms);
    outln!(
        "chaos seed {} deadline {} ms, {} scenarios",
        args.seed,
        args.deadline_ms,
        catalog.scenarios.len()
    )?;
    outln!("invariants checked for every request:")?;
    for invariant in INVARIANTS {
        outln!("  - {invariant}")?;
    }
    let mut broken = 0;
    for scenario in &catalog.scenarios {
        let mut plan = plan.clone();
        plan.seed = scenario_seed(args.seed, &scenario.name);
        let outcomes = RefCell::new(BTreeMap::new());
        // The seed comes from --seed, never from NANO_SIM_SEED: each scenario derives its own.
        let simulation = Simulation::exact(plan).replay_hint(format!(
            "{} chaos --seed {} --filter {}{}",
            config.command(),
            args.seed,
            scenario.name,
            args.plan
                .as_ref()
                .map(|p| format!(" --plan {}", p.display()))
                .unwrap_or_default()
        ));
        let result = simulation.run_and_shrink(|sim| {
            let outcomes = &outcomes;
            let registry = &registry;
            async move {
                outcomes.borrow_mut().clear();
                for _ in 0..args.requests {
                    let services = system.all(ServiceSet::builder());
                    let (outcome, verdict) =
                        replay_under(&sim, services, scenario, registry, deadline).await;
                    let shown = match outcome {
                        CallOutcome::Response(_) => "ok".to_owned(),
                        CallOutcome::Error { code, .. } => code,
                        CallOutcome::Unfinished => "unfinished".to_owned(),
                    };
                    *outcomes.borrow_mut().entry(shown).or_insert(0_u32) += 1;
                    verdict?;
                }
                Ok(())
            }
        });
        let shown: Vec<String> = outcomes
            .borrow()
            .iter()
            .map(|(outcome, n)| format!("{n} {outcome}"))
            .collect();
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
    if broken == 0 {
        outln!("all invariants held")?;
        Ok(ExitCode::SUCCESS)
    } else {
        outln!("{broken} scenario(s) broke an invariant")?;
        Ok(ExitCode::FAILURE)
    }
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

/// Replays the root request of `scenario` through the simulated network and checks the
/// invariants; returns the outcome and the verdict.
async fn replay_under(
    sim: &Network,
    services: ServiceSetBuilder,
    scenario: &Scenario,
    registry: &Registry,
    deadline: Duration,
) -> (CallOutcome, Result<(), String>) {
    let root = &scenario.root;
    let set = services
        .hook(TransportFidelity::new())
        .hook(Unreachable::new(scenario.unreachable.iter().cloned()))
        .hook(sim.hook())
        .build();
    let set = match set {
        Ok(set) => set,
        Err(err) => {
            return (
                CallOutcome::from_error(&err),
                Err(format!("cannot build the set: {err}")),
            );
        }
    };
    let first_call = sim.trace().len();
    let started = sim.elapsed();
    let ctx = sim.ctx().with_timeout(deadline);
    let sent = match set.client(&root.caller, &root.service) {
        Ok(client) => send_root(scenario, registry, &client, &ctx).await,
        Err(err) => Err(err),
    };
    let outcome = match sent {
        Ok(outcome) => outcome,
        Err(err) => return (CallOutcome::from_error(&err), Err(err.to_string())),
    };
    let verdict = check_invariants(sim, first_call, started, scenario, &outcome, deadline);
    (outcome, verdict)
}

/// The invariants: every call ends by the deadline; every failure is coded; a failed root
/// carries the code of a failure below it (or the recorded one, or the deadline's); a
/// successful root answers what was recorded.
fn check_invariants(
    sim: &Network,
    first_call: usize,
    started: Duration,
    scenario: &Scenario,
    outcome: &CallOutcome,
    deadline: Duration,
) -> Result<(), String> {
    let deadline = started.saturating_add(deadline);
    let deadline_us = u64::try_from(deadline.as_micros()).unwrap_or(u64::MAX);
    // This request's calls; the first is the root call itself.
    let trace: Vec<_> = sim.trace().into_iter().skip(first_call).collect();
    if let Some(late) = trace.iter().find(|call| call.end_us > deadline_us) {
        return Err(format!(
            "{} ended at {} ms, after the {} ms deadline",
            late.call,
            late.end_us / 1000,
            deadline_us / 1000
        ));
    }
    if let Some(uncoded) = trace
        .iter()
        .find(|call| matches!(&call.outcome, TraceOutcome::Error { code } if code.is_empty()))
    {
        return Err(format!("{} failed with an uncoded error", uncoded.call));
    }
    match outcome {
        CallOutcome::Error { code, message } => {
            if code.is_empty() {
                return Err(format!("the root failed with an uncoded error: {message}"));
            }
            let recorded =
                matches!(&scenario.root.outcome, CallOutcome::Error { code: c, .. } if c == code);
            // The code must come from a failure below the root, or from the network failing
            // the root call itself.
            let from_below = trace
                .iter()
                .skip(1)
                .any(|call| matches!(&call.outcome, TraceOutcome::Error { code: c } if c == code));
            let from_root_edge = trace.first().is_some_and(|root| root.failed_by_network());
            let deadline_passed = code == codes::TIMEOUT && sim.elapsed() >= deadline;
            if !(recorded || from_below || from_root_edge || deadline_passed) {
                return Err(format!(
                    "the root failed with {code} ({message}), which no call below it failed with"
                ));
            }
            Ok(())
        }
        CallOutcome::Response(_) => {
            match compare_outcome(&scenario.spec, &scenario.root, outcome) {
                None => Ok(()),
                Some(problem) => Err(format!("the root succeeded with another answer: {problem}")),
            }
        }
        CallOutcome::Unfinished => Err("the root call did not finish".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CallRecorder;
    use crate::runner::test_system::{self, Ask, front, mid};

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

    /// The chain's root request, recorded in-process.
    fn recorded() -> Scenario {
        let recorder = CallRecorder::new();
        let set = test_system::system()
            .all(ServiceSet::builder())
            .hook(recorder.clone())
            .build()
            .unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime
            .block_on(
                set.client("test_client", front::NAME)
                    .unwrap()
                    .call(&nano::Ctx::new(), Ask { text: "x".into() }),
            )
            .unwrap();
        Scenario::new("front-ask", recorder.last_tree().unwrap())
    }

    #[test]
    fn an_error_that_loses_its_code_on_the_way_to_the_root_breaks_an_invariant() {
        let scenario = recorded();
        let plan = FaultPlan::new(1).edge("front", "mid", EdgeFaults::new().drop_rate(1.0));
        let system = test_system::system();
        let registry = registry(&system).unwrap();
        let run = |recode: bool| {
            let (scenario, registry, system) = (&scenario, &registry, &system);
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
                replay_under(&sim, services, scenario, registry, Duration::from_secs(1))
                    .await
                    .1
                    .map_err(Into::into)
            })
        };
        // The real front keeps mid's S-UNAVAILABLE.
        run(false).unwrap();
        let failure = run(true).unwrap_err();
        assert_eq!(
            failure.message,
            "the root failed with S-RECODED (mid failure :: request from front to mid was lost), \
             which no call below it failed with"
        );
    }

    #[test]
    fn scenario_seeds_differ_by_name_and_by_run_seed() {
        assert_ne!(scenario_seed(1, "a"), scenario_seed(1, "b"));
        assert_ne!(scenario_seed(1, "a"), scenario_seed(2, "a"));
        assert_eq!(scenario_seed(1, "a"), scenario_seed(1, "a"));
    }
}
