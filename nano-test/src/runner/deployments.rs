//! The deployments scenarios replay in: in-process sets, and the article's layouts as real
//! server processes on loopback with recording on.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

use nano::{Ctx, ServiceSet, codes};
use std::time::Instant;

use nano_server::System;

use crate::deploy::{Binaries, RunningLayout, StartOptions};
use crate::runner::Config;
use crate::runner::out::stderr;
use crate::runner::run::spinner;
use crate::scenario::{
    Registry, ReplayFailure, ReplayProblem, Scenario, compare_outcome, compare_trees,
    replay_set_at_edge,
};
use crate::{
    CallNode, CallOutcome, Delivery, Deployment, TransportFidelity, join_fragments,
    read_fragments_of,
};

/// Where a scenario is replayed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Target {
    /// The system's services in one set, called directly.
    InProcess,
    /// The same with the transport-fidelity hook on every client.
    Fidelity,
    /// A layout of real server processes, called over HTTP: its place among the system's
    /// layouts (the table's order) and its name.
    Layout(usize, String),
}

impl Target {
    /// Every target of `system`, in table order: in-process, fidelity, then each layout.
    pub(crate) fn all(system: &System) -> Vec<Target> {
        let mut all = vec![Target::InProcess, Target::Fidelity];
        all.extend(
            system
                .layouts()
                .iter()
                .enumerate()
                .map(|(i, layout)| Target::Layout(i, layout.name.clone())),
        );
        all
    }

    /// The target of `all` called `name`.
    pub(crate) fn parse(all: &[Target], name: &str) -> Result<Target, String> {
        all.iter()
            .find(|t| t.name() == name)
            .cloned()
            .ok_or_else(|| {
                let names: Vec<_> = all.iter().map(Target::name).collect();
                format!("unknown deployment {name:?} (known: {})", names.join(", "))
            })
    }

    pub(crate) fn name(&self) -> &str {
        match self {
            Target::InProcess => "in-process",
            Target::Fidelity => "fidelity",
            Target::Layout(_, name) => name,
        }
    }

    /// The layout's name, for a layout.
    pub(crate) fn layout(&self) -> Option<&str> {
        match self {
            Target::Layout(_, name) => Some(name),
            _ => None,
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What replaying one scenario in one deployment gave.
#[derive(Debug, Clone)]
pub(crate) enum Verdict {
    Pass,
    Fail(ReplayFailure),
    /// The deployment cannot decide this scenario (why): it is neither a pass nor a failure.
    NotApplicable(String),
}

/// The verdict of `scenario` in one deployment, whose replay is `replay`: not applicable
/// anywhere when the scenario needs a token ([`needs_a_token`]), and otherwise the replay's
/// verdict, a failure with the secrets note where it applies. The table and the cargo-test
/// cases decide every cell this way.
pub(crate) async fn cell(
    system: &System,
    scenario: &Scenario,
    replay: impl std::future::Future<Output = Verdict>,
) -> Verdict {
    if let Some(reason) = needs_a_token(system, scenario) {
        return Verdict::NotApplicable(reason);
    }
    with_secrets_note(replay.await, scenario)
}

/// What a cell that is not applicable reports when it is run anyway: it has no verdict.
pub(crate) fn no_verdict(target: &Target, reason: &str) -> String {
    format!("not applicable in {target} (no verdict, so not a pass): {reason}")
}

/// `verdict` with a note when it is a failure of a scenario whose recording redacted secrets:
/// its replays sent them as the text `[redacted]`, which is why a scenario whose outcome
/// depends on a secret's value fails, and the report says what to do about it.
fn with_secrets_note(verdict: Verdict, scenario: &Scenario) -> Verdict {
    let redacted = || {
        let placeholder = format!("\"{}\"", nano_record::REDACTED);
        !scenario.spec.keep_secrets
            && scenario
                .root
                .iter()
                .any(|node| node.body.as_str().contains(&placeholder))
    };
    match verdict {
        Verdict::Fail(mut failure) if redacted() => {
            failure.problems.push(ReplayProblem {
                call: "note".into(),
                detail: "the recording redacted secrets, so this replay sent them as the text \
                         [redacted]; a scenario whose outcome depends on a secret's value needs \
                         \"keep_secrets\": true in its spec and its secrets in the file (see \
                         \"Secrets\" in docs/scenario-format.md)"
                    .into(),
            });
            Verdict::Fail(failure)
        }
        other => other,
    }
}

/// Compares a call tree the servers recorded with the scenario's under `spec`. The servers
/// redact what they record whatever the scenario keeps, so the scenario's secrets are compared
/// as the servers' recording holds them: by presence, and never shown.
pub(crate) fn compare_server_tree(
    spec: &crate::Spec,
    expected: &CallNode,
    actual: &CallNode,
) -> Vec<ReplayProblem> {
    let mut expected = expected.clone();
    nano_record::Redaction::default().redact_tree(&mut expected);
    let spec = crate::Spec {
        keep_secrets: false,
        ..spec.clone()
    };
    compare_trees(&spec, &expected, actual)
}

/// Why no deployment can replay `scenario` as recorded, if none can: its root request is one the
/// system's edge protects and was admitted when it was recorded (live traffic with a bearer
/// token), but a scenario carries no token, so every replay is refused `C-UNAUTHORIZED`. A root
/// recorded as exactly that refusal (no calls, the edge's answer to a request without a token)
/// replays as recorded; any other outcome, a handler's own `C-UNAUTHORIZED` included, came from
/// past the edge.
pub(crate) fn needs_a_token(system: &System, scenario: &Scenario) -> Option<String> {
    let root = &scenario.root;
    let edge = system.edge_auth()?;
    let without_a_token = nano_wire::bearer_token(None).err()?;
    let refused_at_the_edge =
        root.calls.is_empty() && root.outcome == crate::CallOutcome::from_error(&without_a_token);
    (edge.is_protected(&root.request) && !refused_at_the_edge).then(|| {
        format!(
            "{} is protected by the system's edge and was recorded with a bearer token, which a \
             scenario does not carry: every replay would be refused C-UNAUTHORIZED",
            root.request
        )
    })
}

/// Replays `scenario` in an in-process set, comparing the outcome and the call tree. A body
/// that does not decode never reaches an in-process set (the sender's own decoding refuses it),
/// so that scenario is not applicable here.
pub(crate) async fn replay_in_process(
    system: &System,
    scenario: &Scenario,
    registry: &Registry,
    fidelity: bool,
) -> Verdict {
    let root = &scenario.root;
    if registry.get(&root.request).is_ok()
        && let Err(err) = registry.decode_request(&root.request, &root.body)
    {
        return Verdict::NotApplicable(format!(
            "the recorded body does not decode as {} ({err}); in process only the sender's \
             own decoding sees it, never {}",
            root.request, root.service
        ));
    }
    let mut builder = system.all(ServiceSet::builder());
    if fidelity {
        builder = builder.hook(TransportFidelity::new());
    }
    match replay_set_at_edge(scenario, registry, builder, true, system.edge_auth()).await {
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
pub(crate) fn processes_to_stop(
    system: &System,
    layout: &str,
    scenario: &Scenario,
) -> Result<Vec<String>, String> {
    let plan = system.plan(layout).map_err(|err| err.to_string())?;
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
        // Replicas of one server are planned once each and stopped together.
        if !stop.contains(&spec.name) {
            stop.push(spec.name);
        }
    }
    Ok(stop)
}

/// One running layout: its processes (some possibly stopped), the directory they record into,
/// and the layout as a deployment.
pub(crate) struct Cluster {
    layout: String,
    deployment: Deployment,
    record_dir: PathBuf,
}

impl Cluster {
    /// Starts `layout` with recording into a fresh directory under `work_dir`, then stops
    /// `stopped`.
    pub(crate) async fn start(
        system: &System,
        layout: &str,
        stopped: Vec<String>,
        binaries: &Binaries,
        work_dir: &Path,
    ) -> anyhow::Result<Cluster> {
        let record_dir = work_dir.join(format!(
            "{}{}",
            layout,
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
        let mut running = RunningLayout::start(system, layout, binaries, &options).await?;
        for name in &stopped {
            running.stop(name)?;
        }
        Ok(Cluster {
            layout: layout.to_owned(),
            deployment: running.into_deployment()?,
            record_dir,
        })
    }

    /// Sends the root request of `scenario` over HTTP as a client would — typed when its body
    /// decodes, the recorded JSON as it is when it does not — and compares the outcome and the
    /// call tree the servers recorded.
    pub(crate) async fn replay(&self, scenario: &Scenario, registry: &Registry) -> Verdict {
        let root = &scenario.root;
        let mode = self.layout.as_str();
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
            Ok(Delivery::NotApplicable(reason)) => return Verdict::NotApplicable(reason),
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
                    let problems = compare_server_tree(&scenario.spec, root, &actual);
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

/// Builds the server executables next to this executable when run through cargo (printing
/// what it does on stderr, as a first build takes minutes), and finds them.
///
/// # Errors
///
/// Why the layouts cannot run: the build failed, or the executables are not there.
pub(crate) fn server_binaries(config: &Config) -> Result<Binaries, String> {
    let package = config.cargo_package();
    if let (Ok(cargo), Some(package)) = (std::env::var("CARGO"), package) {
        let exe =
            std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?;
        let release = exe.components().any(|c| c.as_os_str() == "release");
        let mut command = Command::new(cargo);
        command.args(["build", "--quiet", "-p", package, "--bins"]);
        // What cargo set for this process (it runs as `cargo run` or `cargo test`) describes
        // this package, not the build: left in, build scripts that watch such variables (ring's
        // watch CARGO_PKG_NAME and CARGO_MANIFEST_DIR) would run again here, and then again in
        // the next outer build, which would rebuild everything after them both times.
        for (name, _) in std::env::vars_os() {
            if name.to_str().is_some_and(set_by_cargo_for_the_package) {
                command.env_remove(name);
            }
        }
        if release {
            command.arg("--release");
        }
        let shown = format!(
            "cargo build -p {package} --bins{}",
            if release { " --release" } else { "" }
        );
        stderr(format_args!(
            "building the server executables of {} ({shown}); a first build takes a few minutes\n",
            config.system().name()
        ));
        let spinner = spinner(&format!("building the server executables ({shown})"));
        let started = Instant::now();
        let status = command.status();
        spinner.finish_and_clear();
        let status =
            status.map_err(|e| format!("cannot run cargo to build the server executables: {e}"))?;
        if !status.success() {
            return Err(format!(
                "building the server executables failed ({status}): {shown}"
            ));
        }
        stderr(format_args!(
            "built the server executables in {:.1}s\n",
            started.elapsed().as_secs_f64()
        ));
    }
    let mut binaries = Binaries::beside_current_exe().map_err(|e| e.to_string())?;
    if let Some(package) = package {
        binaries = binaries.hint(format!("build them with `cargo build -p {package} --bins`"));
    }
    for server in config.system().servers() {
        binaries.path(&server.name).map_err(|e| e.to_string())?;
    }
    Ok(binaries)
}

/// Whether cargo sets the variable `name` for a package's own executables, tests and build
/// scripts (rather than taking it from the user).
fn set_by_cargo_for_the_package(name: &str) -> bool {
    [
        "CARGO_PKG_",
        "CARGO_MANIFEST_",
        "CARGO_BIN_",
        "CARGO_CRATE_",
    ]
    .iter()
    .any(|prefix| name.starts_with(prefix))
        || ["CARGO_PRIMARY_PACKAGE", "CARGO_TARGET_TMPDIR", "OUT_DIR"].contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tree_the_servers_redacted_matches_the_secrets_a_scenario_keeps_or_writes_out() {
        let node = |password: &str, text: &str| -> CallNode {
            serde_json::from_value(serde_json::json!({
                "caller": "test", "service": "vault", "request": "vault.Login",
                "body": {"text": text, "password": password},
                "outcome": {"response": {"token": "tok-1"}}
            }))
            .unwrap()
        };
        let mut from_servers = node("pw-1", "x");
        nano_record::Redaction::default().redact_tree(&mut from_servers);
        for spec in [
            crate::Spec::default().keep_secrets(),
            crate::Spec::default(),
        ] {
            let problems = compare_server_tree(&spec, &node("pw-1", "x"), &from_servers);
            assert!(problems.is_empty(), "{problems:?}");
            // What is not a secret is still compared, and the report shows no secret.
            let problems = compare_server_tree(&spec, &node("pw-1", "y"), &from_servers);
            let shown = format!("{problems:?}");
            assert!(shown.contains("$.text"), "{shown}");
            assert!(
                !shown.contains("pw-1") && !shown.contains("tok-1"),
                "{shown}"
            );
        }
    }

    #[test]
    fn the_package_variables_cargo_sets_are_told_from_the_users() {
        for ours in [
            "CARGO_PKG_NAME",
            "CARGO_MANIFEST_DIR",
            "CARGO_BIN_EXE_server1",
            "CARGO_CRATE_NAME",
            "OUT_DIR",
            "CARGO_TARGET_TMPDIR",
        ] {
            assert!(set_by_cargo_for_the_package(ours), "{ours}");
        }
        for users in [
            "CARGO_TARGET_DIR",
            "CARGO_HOME",
            "CARGO_INCREMENTAL",
            "CARGO_PROFILE_DEV_DEBUG",
            "RUSTFLAGS",
        ] {
            assert!(!set_by_cargo_for_the_package(users), "{users}");
        }
    }

    fn scenario(unreachable: &[&str], services_called: &[&str]) -> Scenario {
        let node = |service: &str| crate::CallNode {
            caller: "x".into(),
            service: service.into(),
            request: format!("{service}.Req"),
            request_id: String::new(),
            body: serde_json::json!({}).into(),
            outcome: CallOutcome::Unfinished,
            calls: Vec::new(),
        };
        let mut root = node("front");
        root.calls = services_called.iter().map(|s| node(s)).collect();
        Scenario {
            unreachable: unreachable.iter().map(|s| (*s).to_owned()).collect(),
            ..Scenario::new("s", root)
        }
    }

    #[test]
    fn only_processes_whose_other_services_are_not_needed_are_stopped() {
        let system = crate::runner::test_system::system();
        let mid_down = scenario(&["mid"], &["mid"]);
        assert_eq!(
            processes_to_stop(&system, "two", &mid_down),
            Ok(vec!["two-b".to_owned()])
        );
        assert_eq!(
            processes_to_stop(&system, "three", &mid_down),
            Ok(vec!["three-b".to_owned()])
        );
        let err = processes_to_stop(&system, "one", &mid_down).unwrap_err();
        assert_eq!(
            err,
            "all runs front and mid, so mid cannot be made unreachable alone"
        );

        // leaf down takes two-b, which also runs mid, which the request needs.
        let leaf_down = scenario(&["leaf"], &["mid"]);
        assert_eq!(
            processes_to_stop(&system, "two", &leaf_down).unwrap_err(),
            "two-b runs mid and leaf, so leaf cannot be made unreachable alone"
        );
        assert_eq!(
            processes_to_stop(&system, "three", &leaf_down),
            Ok(vec!["three-c".to_owned()])
        );
        assert_eq!(
            processes_to_stop(&system, "one", &scenario(&[], &[])),
            Ok(Vec::<String>::new())
        );
        // Over NATS with replicas, the server is named once: stopping it stops every replica.
        assert_eq!(
            processes_to_stop(&system, "three-twice", &leaf_down),
            Ok(vec!["three-c".to_owned()])
        );
    }
}
