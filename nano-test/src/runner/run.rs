//! The main job: every scenario in every deployment, a table of the results.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use crate::scenario::{ReplayFailure, ReplayProblem};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use crate::runner::Config;
use crate::runner::catalog::{Catalog, registry};
use crate::runner::deployments::{
    Cluster, Target, Verdict, cell, processes_to_stop, replay_in_process, server_binaries,
};
use crate::runner::out::{out, outln};
use crate::runner::report::{Results, Row};

/// What to replay, where, and where to write the results.
#[derive(Debug, Clone, Args)]
pub(crate) struct RunArgs {
    /// Directory of scenario files [default: the runner's, found from the working directory].
    #[arg(long, value_name = "DIR")]
    pub(crate) dir: Option<PathBuf>,
    /// Only scenarios whose name contains this text.
    #[arg(long, value_name = "TEXT")]
    pub(crate) filter: Option<String>,
    /// Only these deployments (comma-separated): in-process, fidelity, or a layout's name.
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub(crate) deployments: Vec<String>,
    /// Also write the results as JUnit XML to this file.
    #[arg(long, value_name = "PATH")]
    pub(crate) junit: Option<PathBuf>,
    /// Also write the results as JSON to this file.
    #[arg(long, value_name = "PATH")]
    pub(crate) json: Option<PathBuf>,
}

pub(crate) fn main(args: RunArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new()?;
    let results = runtime.block_on(run(&args, config))?;
    // The files first: a reader of stdout that goes away early does not lose them.
    if let Some(path) = &args.json {
        results.write_json(path)?;
    }
    if let Some(path) = &args.junit {
        results.write_junit(path)?;
    }
    out!("{}", results.render())?;
    if results.nothing_decided() {
        outln!("\nno cell was decided (each one is not applicable), so the run checked nothing")?;
    }
    outln!("\n{}", results.render_timings())?;
    Ok(if results.failed() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Replays the selected scenarios in the selected deployments.
pub(crate) async fn run(args: &RunArgs, config: &Config) -> anyhow::Result<Results> {
    let system = config.system();
    let all = Target::all(system);
    let targets: Vec<Target> = if args.deployments.is_empty() {
        all
    } else {
        let mut chosen = args
            .deployments
            .iter()
            .map(|name| Target::parse(&all, name))
            .collect::<Result<Vec<_>, _>>()
            .map_err(anyhow::Error::msg)?;
        chosen.sort();
        chosen.dedup();
        chosen
    };
    let dir = config.dir(args.dir.as_ref());
    let mut results = Results {
        targets: targets.clone(),
        ..Results::default()
    };
    let started = Instant::now();
    let catalog = Catalog::load_some(system, &dir, args.filter.as_deref())?;
    results.timings.push(("loading".into(), started.elapsed()));

    let layouts: Vec<&str> = targets.iter().filter_map(Target::layout).collect();
    // A deployment that cannot be started fails its cells with the reason, never skips them.
    let binaries = if layouts.is_empty() {
        Err(String::new())
    } else {
        server_binaries(config)
    };

    // Every (layout, processes to stop) a scenario needs, started in parallel.
    let started = Instant::now();
    let mut plans: BTreeSet<(String, Vec<String>)> = BTreeSet::new();
    for scenario in &catalog.scenarios {
        for layout in &layouts {
            if let Ok(stop) = processes_to_stop(system, layout, scenario) {
                plans.insert(((*layout).to_owned(), stop));
            }
        }
    }
    let work_dir = crate::runner::ScratchDir::new("nano-scenarios")?;
    let mut clusters: BTreeMap<(String, Vec<String>), Result<Cluster, String>> = BTreeMap::new();
    if let Ok(binaries) = &binaries {
        let spinner = spinner(&format!("starting {} deployments", plans.len()));
        let starts = plans.iter().map(|(layout, stop)| {
            let work_dir = work_dir.path();
            async move {
                let cluster =
                    Cluster::start(system, layout, stop.clone(), binaries, work_dir).await;
                (
                    (layout.clone(), stop.clone()),
                    cluster.map_err(|e| format!("{e:#}")),
                )
            }
        });
        clusters.extend(futures_util::future::join_all(starts).await);
        spinner.finish_and_clear();
        results
            .timings
            .push(("starting servers".into(), started.elapsed()));
    }

    let started = Instant::now();
    let registry = registry(system)?;
    let progress = ProgressBar::new((catalog.scenarios.len() * targets.len()) as u64);
    progress.set_style(
        ProgressStyle::with_template("{spinner} replaying [{bar:30}] {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    for scenario in &catalog.scenarios {
        let mut cells = Vec::with_capacity(targets.len());
        for target in &targets {
            progress.set_message(format!("{} in {target}", scenario.name));
            let replay = async {
                match target {
                    Target::InProcess => {
                        replay_in_process(system, scenario, &registry, false).await
                    }
                    Target::Fidelity => replay_in_process(system, scenario, &registry, true).await,
                    Target::Layout(_, layout) => {
                        match (&binaries, processes_to_stop(system, layout, scenario)) {
                            (Err(reason), _) => failure(
                                &scenario.name,
                                target.name(),
                                format!("the deployment could not be started: {reason}"),
                            ),
                            (_, Err(reason)) => Verdict::NotApplicable(reason),
                            (Ok(_), Ok(stop)) => match clusters.get(&(layout.clone(), stop)) {
                                Some(Ok(cluster)) => cluster.replay(scenario, &registry).await,
                                Some(Err(err)) => failure(
                                    &scenario.name,
                                    target.name(),
                                    format!("the deployment could not be started: {err}"),
                                ),
                                None => failure(
                                    &scenario.name,
                                    target.name(),
                                    "no deployment was planned".into(),
                                ),
                            },
                        }
                    }
                }
            };
            cells.push(cell(system, scenario, replay).await);
            progress.inc(1);
        }
        results.rows.push(Row {
            scenario: scenario.name.clone(),
            cells,
        });
    }
    progress.finish_and_clear();
    results
        .timings
        .push(("replaying".into(), started.elapsed()));

    for (path, err) in &catalog.broken {
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let cells = targets
            .iter()
            .map(|t| failure(&name, t.name(), format!("cannot load the scenario: {err}")))
            .collect();
        results.rows.push(Row {
            scenario: name,
            cells,
        });
    }
    results.rows.sort_by(|a, b| a.scenario.cmp(&b.scenario));

    if !clusters.is_empty() {
        let started = Instant::now();
        drop(clusters);
        results
            .timings
            .push(("stopping servers".into(), started.elapsed()));
    }
    drop(work_dir);
    Ok(results)
}

fn failure(scenario: &str, mode: &str, detail: String) -> Verdict {
    Verdict::Fail(ReplayFailure {
        scenario: scenario.into(),
        mode: mode.into(),
        problems: vec![ReplayProblem {
            call: scenario.into(),
            detail,
        }],
    })
}

pub(crate) fn spinner(message: &str) -> ProgressBar {
    let spinner = ProgressBar::new_spinner();
    spinner.set_message(message.to_owned());
    spinner.enable_steady_tick(Duration::from_millis(100));
    spinner
}
