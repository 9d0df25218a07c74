//! [`Runner::tests`]: every recorded scenario × deployment as a cargo test case.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, OnceLock};

/// The test case type of [`Runner::trials`] (libtest-mimic's).
pub use libtest_mimic::Trial;
use libtest_mimic::{Arguments, Failed};

use crate::runner::Runner;
use crate::runner::catalog::{Catalog, registry};
use crate::runner::deployments::{
    Cluster, Target, Verdict, cell, needs_a_token, no_verdict, processes_to_stop,
    replay_in_process, server_binaries,
};
use crate::runner::{Config, ScratchDir};
use crate::scenario::{Registry, Scenario};

/// A layout started with some of its processes stopped, once, by the first trial that needs it.
type LazyCluster = Arc<tokio::sync::OnceCell<Result<Cluster, String>>>;

/// What the trials share: one runtime, and each layout started once, when the first trial that
/// needs it runs (so a filtered run starts only what it replays).
struct Shared {
    config: Config,
    registry: Registry,
    runtime: tokio::runtime::Runtime,
    work_dir: ScratchDir,
    binaries: OnceLock<Result<crate::deploy::Binaries, String>>,
    clusters: Mutex<BTreeMap<(String, Vec<String>), LazyCluster>>,
}

impl Shared {
    async fn verdict(&self, scenario: &Scenario, target: &Target) -> Verdict {
        cell(
            self.config.system(),
            scenario,
            self.replay(scenario, target),
        )
        .await
    }

    async fn replay(&self, scenario: &Scenario, target: &Target) -> Verdict {
        let system = self.config.system();
        match target {
            Target::InProcess => replay_in_process(system, scenario, &self.registry, false).await,
            Target::Fidelity => replay_in_process(system, scenario, &self.registry, true).await,
            Target::Layout(_, layout) => {
                let stop = match processes_to_stop(system, layout, scenario) {
                    Ok(stop) => stop,
                    Err(reason) => return Verdict::NotApplicable(reason),
                };
                let binaries = self.binaries.get_or_init(|| server_binaries(&self.config));
                let binaries = match binaries {
                    Ok(binaries) => binaries,
                    Err(reason) => return failed_to_start(scenario, target, reason),
                };
                let cell = {
                    let mut clusters = self.clusters.lock().unwrap_or_else(|p| p.into_inner());
                    Arc::clone(clusters.entry((layout.clone(), stop.clone())).or_default())
                };
                let cluster = cell
                    .get_or_init(|| async {
                        Cluster::start(system, layout, stop.clone(), binaries, self.work_dir.path())
                            .await
                            .map_err(|err| format!("{err:#}"))
                    })
                    .await;
                match cluster {
                    Ok(cluster) => cluster.replay(scenario, &self.registry).await,
                    Err(reason) => failed_to_start(scenario, target, reason),
                }
            }
        }
    }
}

fn failed_to_start(scenario: &Scenario, target: &Target, reason: &str) -> Verdict {
    Verdict::Fail(crate::scenario::ReplayFailure {
        scenario: scenario.name.clone(),
        mode: target.name().to_owned(),
        problems: vec![crate::scenario::ReplayProblem {
            call: scenario.name.clone(),
            detail: format!("the deployment could not be started: {reason}"),
        }],
    })
}

impl Runner {
    /// The body of a `harness = false` test target: every recorded scenario × deployment
    /// (in-process, fidelity, each layout) becomes its own test case named
    /// `SCENARIO::DEPLOYMENT`, so `cargo test` and `cargo nextest` list, filter and report them
    /// (libtest-mimic gives the usual flags: a name filter, `--list`, `--exact`,
    /// `--test-threads`). A failure prints the readable difference; a cell the deployment
    /// cannot decide is reported as ignored, with its reason in the name (run anyway with
    /// `--ignored` or `--include-ignored`, it fails: it has no verdict); a broken scenario
    /// file is a failing case. Layouts start once, when their first case runs, and stop at the
    /// end.
    ///
    /// ```no_run
    /// // tests/scenarios.rs, with `[[test]] name = "scenarios" harness = false` in Cargo.toml
    /// # fn my_system() -> nano_server::System { nano_server::System::new("mine") }
    /// fn main() -> std::process::ExitCode {
    ///     nano_test::runner::Runner::new(my_system())
    ///         .scenario_dir("scenarios")
    ///         .build_with_cargo("my-servers")
    ///         .tests()
    /// }
    /// ```
    pub fn tests(self) -> ExitCode {
        let arguments = Arguments::from_args();
        match self.trials() {
            Ok(trials) => libtest_mimic::run(&arguments, trials).exit_code(),
            Err(err) => {
                eprintln!("error: {err}");
                ExitCode::from(2)
            }
        }
    }

    /// The test cases [`tests`](Runner::tests) runs, for a harness that runs them itself (e.g.
    /// with `libtest_mimic::run` and arguments of its own).
    ///
    /// # Errors
    ///
    /// The scenario directory cannot be read, or two declared APIs share a wire name.
    pub fn trials(self) -> Result<Vec<Trial>, Box<dyn std::error::Error + Send + Sync>> {
        let command = self
            .command
            .clone()
            .unwrap_or_else(|| "cargo test".to_owned());
        let config = Config {
            runner: self,
            command,
        };
        trials(config).map_err(|err| format!("{err:#}").into())
    }
}

/// Why `target` cannot decide `scenario`, known before replaying it — the same rules the
/// replay applies (a replay that still finds the cell not applicable fails, so the two cannot
/// drift apart unnoticed).
fn not_applicable(shared: &Shared, scenario: &Scenario, target: &Target) -> Option<String> {
    let system = shared.config.system();
    if let Some(reason) = needs_a_token(system, scenario) {
        return Some(reason);
    }
    let root = &scenario.root;
    let undecodable = shared.registry.get(&root.request).is_ok()
        && shared
            .registry
            .decode_request(&root.request, &root.body)
            .is_err();
    match target {
        Target::InProcess | Target::Fidelity => undecodable.then(|| {
            format!(
                "the recorded body does not decode as {}; in process only the sender's own \
                 decoding sees it, never {}",
                root.request, root.service
            )
        }),
        Target::Layout(_, layout) => {
            if let Err(reason) = processes_to_stop(system, layout, scenario) {
                return Some(reason);
            }
            let operation = system
                .api(&root.service)
                .and_then(|api| api.operation(&root.request));
            let over_nats = system
                .layout_spec(layout)
                .is_some_and(|spec| spec.transport == nano_server::Transport::Nats);
            if over_nats {
                // A NATS client sends every declared request type, by its wire name.
                return operation
                    .is_none()
                    .then(|| crate::parity::undeclared_over_nats(&root.service, &root.request));
            }
            let routed = operation.is_some_and(|op| op.route().is_some());
            (!routed).then(|| {
                format!(
                    "{} declares no HTTP endpoint for {}, so the HTTP client refuses it before \
                     anything is sent",
                    root.service, root.request
                )
            })
        }
    }
}

fn trials(config: Config) -> anyhow::Result<Vec<Trial>> {
    let system = config.system();
    let catalog = Catalog::load(system, &config.dir(None), None)?;
    let targets = Target::all(system);
    let registry = registry(system)?;
    let mut trials = Vec::new();
    for (path, err) in &catalog.broken {
        let message = format!("cannot load the scenario: {err}");
        trials.push(Trial::test(
            format!("{}::load", path.display()),
            move || Err(Failed::from(message.as_str())),
        ));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let shared = Arc::new(Shared {
        registry,
        runtime,
        work_dir: ScratchDir::new("nano-scenario-tests")?,
        binaries: OnceLock::new(),
        clusters: Mutex::default(),
        config,
    });
    for scenario in catalog.scenarios {
        let scenario = Arc::new(scenario);
        for target in &targets {
            let name = format!("{}::{}", scenario.name, target);
            // Known without replaying: a cell that is not applicable is shown as ignored, with
            // the reason, never as a pass.
            let not_applicable = not_applicable(&shared, &scenario, target);
            let trial = match not_applicable {
                // Ignored; run anyway (`--ignored`, `--include-ignored`), it fails: there is no
                // verdict, so it is no pass.
                Some(reason) => {
                    let why = no_verdict(target, &reason);
                    Trial::test(format!("{name} (n/a: {reason})"), move || Err(why.into()))
                        .with_ignored_flag(true)
                }
                None => {
                    let (shared, scenario, target) =
                        (Arc::clone(&shared), Arc::clone(&scenario), target.clone());
                    Trial::test(name, move || {
                        let verdict = shared.runtime.block_on(shared.verdict(&scenario, &target));
                        match verdict {
                            Verdict::Pass => Ok(()),
                            Verdict::Fail(failure) => Err(failure.to_string().into()),
                            Verdict::NotApplicable(reason) => {
                                Err(no_verdict(&target, &reason).into())
                            }
                        }
                    })
                }
            };
            trials.push(trial);
        }
    }
    Ok(trials)
}
