//! The deployments scenarios replay in: in-process sets, and the article's layouts as real
//! server processes on loopback with recording on.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;

use nano::{Ctx, ServiceSet, codes};
use nano_test::deploy::{Binaries, RunningLayout, StartOptions};
use nano_test::scenario::{
    Registry, ReplayFailure, ReplayProblem, Scenario, compare_outcome, compare_trees, replay_set,
};
use nano_test::{
    CallOutcome, Delivery, Deployment, TransportFidelity, join_fragments, read_fragments_of,
};

/// Where a scenario is replayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Target {
    /// The four services in one set, called directly.
    InProcess,
    /// The same with the transport-fidelity hook on every client.
    Fidelity,
    /// A layout of real server processes, called over HTTP.
    Layout(LayoutId),
}

/// The layouts, orderable for tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum LayoutId {
    One,
    Two,
    Three,
}

impl LayoutId {
    /// The layout's name in the example cluster's system.
    pub(crate) fn layout(self) -> &'static str {
        match self {
            LayoutId::One => "server1",
            LayoutId::Two => "server2",
            LayoutId::Three => "server3",
        }
    }
}

impl Target {
    /// Every target, in table order.
    pub(crate) const ALL: [Target; 5] = [
        Target::InProcess,
        Target::Fidelity,
        Target::Layout(LayoutId::One),
        Target::Layout(LayoutId::Two),
        Target::Layout(LayoutId::Three),
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Target::InProcess => "in-process",
            Target::Fidelity => "fidelity",
            Target::Layout(LayoutId::One) => "server1",
            Target::Layout(LayoutId::Two) => "server2",
            Target::Layout(LayoutId::Three) => "server3",
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Target {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Target::ALL
            .into_iter()
            .find(|t| t.name() == text)
            .ok_or_else(|| {
                let names: Vec<_> = Target::ALL.iter().map(|t| t.name()).collect();
                format!("unknown deployment {text:?} (known: {})", names.join(", "))
            })
    }
}

/// What replaying one scenario in one deployment gave.
#[derive(Debug, Clone)]
pub(crate) enum Verdict {
    Pass,
    Fail(ReplayFailure),
    Skip(String),
}

/// Replays `scenario` in an in-process set, comparing the outcome and the call tree.
pub(crate) async fn replay_in_process(
    scenario: &Scenario,
    registry: &Registry,
    fidelity: bool,
) -> Verdict {
    let mut builder = services::all(ServiceSet::builder());
    if fidelity {
        builder = builder.hook(TransportFidelity::new());
    }
    match replay_set(scenario, registry, builder, true).await {
        Ok(()) => Verdict::Pass,
        Err(mut failure) => {
            failure.mode = if fidelity { "fidelity" } else { "in-process" }.into();
            Verdict::Fail(failure)
        }
    }
}

/// Which processes of `layout` must be down for `scenario`, or why the layout cannot run it: a
/// process hosting an unreachable service is stopped, which is only right when no other service
/// it hosts takes part in the recorded request.
pub(crate) fn processes_to_stop(layout: &str, scenario: &Scenario) -> Result<Vec<String>, String> {
    let plan = services::system()
        .plan(layout)
        .map_err(|err| err.to_string())?;
    let unreachable = |name: &str| scenario.unreachable.iter().any(|u| u == name);
    let mut stop = Vec::new();
    for planned in plan {
        let spec = planned.server;
        let down: Vec<&str> = spec
            .local
            .iter()
            .map(String::as_str)
            .filter(|name| unreachable(name))
            .collect();
        if down.is_empty() {
            continue;
        }
        let needed = scenario
            .root
            .iter()
            .find(|node| !unreachable(&node.service) && spec.local.contains(&node.service));
        if let Some(needed) = needed {
            return Err(format!(
                "{} runs {} and {}, so {} cannot be made unreachable alone",
                spec.name,
                needed.service,
                down.join(", "),
                down.join(", ")
            ));
        }
        stop.push(spec.name);
    }
    Ok(stop)
}

/// One running layout: its processes (some possibly stopped), the directory they record into,
/// and the layout as a deployment.
pub(crate) struct Cluster {
    layout: LayoutId,
    deployment: Deployment,
    record_dir: PathBuf,
}

impl Cluster {
    /// Starts `layout` with recording into a fresh directory under `work_dir`, then stops
    /// `stopped`.
    pub(crate) async fn start(
        layout: LayoutId,
        stopped: Vec<String>,
        binaries: &Binaries,
        work_dir: &Path,
    ) -> anyhow::Result<Cluster> {
        let record_dir = work_dir.join(format!(
            "{}{}",
            Target::Layout(layout).name(),
            stopped
                .iter()
                .map(|s| format!("-without-{s}"))
                .collect::<String>()
        ));
        let _ = std::fs::remove_dir_all(&record_dir);
        std::fs::create_dir_all(&record_dir)?;
        let options = StartOptions {
            args: vec!["--record".into(), record_dir.display().to_string()],
            echo_logs: false,
            ..StartOptions::default()
        };
        let mut running =
            RunningLayout::start(&services::system(), layout.layout(), binaries, &options).await?;
        for name in &stopped {
            running.stop(name)?;
        }
        Ok(Cluster {
            layout,
            deployment: running.into_deployment()?,
            record_dir,
        })
    }

    /// Sends the root request of `scenario` over HTTP as a client would — typed when its body
    /// decodes, the recorded JSON as it is when it does not — and compares the outcome and the
    /// call tree the servers recorded.
    pub(crate) async fn replay(&self, scenario: &Scenario, registry: &Registry) -> Verdict {
        let root = &scenario.root;
        let mode = Target::Layout(self.layout).name();
        let fail = |problems: Vec<ReplayProblem>| {
            Verdict::Fail(ReplayFailure {
                scenario: scenario.name.clone(),
                mode: mode.into(),
                problems,
            })
        };
        let problem = |detail: String| ReplayProblem {
            call: format!("{} -> {} {}", root.caller, root.service, root.request),
            detail,
        };
        let ctx = Ctx::new();
        let outcome = match self.deployment.send_recorded(&ctx, root, registry).await {
            Ok(Delivery::Answered(outcome)) => outcome,
            Ok(Delivery::NotApplicable(reason)) => return Verdict::Skip(reason),
            Err(err) => return fail(vec![problem(err.to_string())]),
        };
        if let Some(difference) = compare_outcome(&scenario.spec, root, &outcome) {
            return fail(vec![difference]);
        }
        let id = ctx.request_id().as_str();
        // The servers write what they recorded off the request path, so the answer can come
        // before the last fragment is on disk: the recording is read again until it matches or
        // a few seconds have passed. A match never depends on timing; a difference is reported once
        // the recording had time to settle.
        let settle = std::time::Duration::from_secs(5);
        let started = std::time::Instant::now();
        loop {
            let fragments = match read_fragments_of(&self.record_dir, id) {
                Ok(fragments) => fragments,
                Err(err) => {
                    return fail(vec![problem(format!("cannot read the recording: {err}"))]);
                }
            };
            let mut trees = join_fragments(fragments);
            let verdict = match trees.len() {
                // Refused before reaching a service (bad request, undeclared type): nothing
                // recorded.
                0 if root.calls.is_empty() && outcome_is_client_error(&outcome) => Verdict::Pass,
                0 => fail(vec![problem(
                    "the servers recorded no call for this request".into(),
                )]),
                1 => {
                    let actual = trees.remove(0);
                    let problems = compare_trees(&scenario.spec, root, &actual);
                    if problems.is_empty() {
                        Verdict::Pass
                    } else {
                        fail(problems)
                    }
                }
                n => fail(vec![problem(format!(
                    "the servers recorded {n} separate trees for one request"
                ))]),
            };
            if matches!(verdict, Verdict::Pass) || started.elapsed() > settle {
                return verdict;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

fn outcome_is_client_error(outcome: &CallOutcome) -> bool {
    matches!(outcome, CallOutcome::Error { code, .. } if code.starts_with(codes::CLIENT_PREFIX))
}

/// Builds the server executables next to this executable when run through cargo, and finds
/// them.
///
/// # Errors
///
/// Why the layouts cannot run: the build failed, or the executables are not there.
pub(crate) fn server_binaries() -> Result<Binaries, String> {
    if let Ok(cargo) = std::env::var("CARGO") {
        let exe =
            std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?;
        let release = exe.components().any(|c| c.as_os_str() == "release");
        let mut command = Command::new(cargo);
        command.args(["build", "--quiet", "-p", "services", "--bins"]);
        if release {
            command.arg("--release");
        }
        let status = command
            .status()
            .map_err(|e| format!("cannot run cargo to build the server executables: {e}"))?;
        if !status.success() {
            return Err(format!("building the server executables failed ({status})"));
        }
    }
    let binaries = Binaries::beside_current_exe().map_err(|e| e.to_string())?;
    binaries
        .path("server1")
        .map_err(|e| format!("{e}; run through `cargo run -p scenarios` or build them first"))?;
    Ok(binaries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(unreachable: &[&str], services_called: &[&str]) -> Scenario {
        let node = |service: &str| nano_test::CallNode {
            caller: "x".into(),
            service: service.into(),
            request: format!("{service}.Req"),
            request_id: String::new(),
            body: serde_json::json!({}),
            outcome: CallOutcome::Unfinished,
            calls: Vec::new(),
        };
        let mut root = node("svc2");
        root.calls = services_called.iter().map(|s| node(s)).collect();
        Scenario {
            unreachable: unreachable.iter().map(|s| (*s).to_owned()).collect(),
            ..Scenario::new("s", root)
        }
    }

    #[test]
    fn only_processes_whose_other_services_are_not_needed_are_stopped() {
        let svc3_down = scenario(&["svc3"], &["svc3"]);
        assert_eq!(
            processes_to_stop("server2", &svc3_down),
            Ok(vec!["server2b".to_owned()])
        );
        assert_eq!(
            processes_to_stop("server3", &svc3_down),
            Ok(vec!["server3c".to_owned()])
        );
        let err = processes_to_stop("server1", &svc3_down).unwrap_err();
        assert_eq!(
            err,
            "server1 runs svc2 and svc3, so svc3 cannot be made unreachable alone"
        );

        // svc4 down takes server2b, which also runs svc3, which the request needs.
        let svc4_down = scenario(&["svc4"], &["svc3"]);
        assert_eq!(
            processes_to_stop("server2", &svc4_down).unwrap_err(),
            "server2b runs svc3 and svc4, so svc4 cannot be made unreachable alone"
        );
        assert_eq!(
            processes_to_stop("server3", &svc4_down),
            Ok(vec!["server3d".to_owned()])
        );
        assert_eq!(
            processes_to_stop("server1", &scenario(&[], &[])),
            Ok(Vec::<String>::new())
        );
    }
}
