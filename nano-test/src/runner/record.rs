//! `record`: make scenario files from real traffic.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::Delivery;
use crate::deploy::{Binaries, RunningLayout, StartOptions};
use crate::scenario::{Registry, Scenario, Unreachable, send_root_at_edge};
use crate::{
    CallNode, CallOutcome, CallRecorder, join_fragments, read_fragments, read_fragments_of,
};
use anyhow::{Context, bail};
use clap::Args;
use nano::{Ctx, ServiceSet};
use nano_server::System;

use crate::runner::Config;
use crate::runner::catalog::{file_of, registry};
use crate::runner::deployments::{needs_a_token, processes_to_stop, server_binaries};
use crate::runner::out::{out, outln};

/// What to record.
#[derive(Debug, Clone, Args)]
pub(crate) struct RecordArgs {
    /// Name of the new scenario (also its file name).
    #[arg(required_unless_present_any = ["update", "from_dir"])]
    pub(crate) name: Option<String>,
    /// Wire name of the root request, one the system declares (e.g. orders.Place).
    #[arg(long, value_name = "TYPE", required_unless_present_any = ["update", "from_dir"])]
    pub(crate) request: Option<String>,
    /// The root request body as JSON (may be a body that does not decode: a bad request).
    #[arg(long, value_name = "JSON", default_value = "{}")]
    pub(crate) body: String,
    /// The service the root request is sent to [default: the runner's root service].
    #[arg(long, value_name = "NAME")]
    pub(crate) service: Option<String>,
    /// The name the root request is sent as [default: the runner's caller].
    #[arg(long, value_name = "NAME")]
    pub(crate) caller: Option<String>,
    /// Services that are down while recording (comma-separated).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub(crate) unreachable: Vec<String>,
    /// What the scenario shows.
    #[arg(long, value_name = "TEXT", default_value = "")]
    pub(crate) description: String,
    /// Keep secrets (passwords, tokens, keys) in the file instead of redacting them, and
    /// compare them by value on replay: only for test credentials that protect nothing.
    /// In-process only: servers always redact what they record.
    #[arg(long, conflicts_with_all = ["update", "from_dir", "layout"])]
    pub(crate) keep_secrets: bool,
    /// Record on real servers of this layout (one of the system's layouts) with recording on,
    /// instead of in-process.
    #[arg(long, value_name = "NAME")]
    pub(crate) layout: Option<String>,
    /// Re-record the existing scenario NAME (same request, spec and description) and show what
    /// changed.
    #[arg(long, value_name = "NAME", conflicts_with_all = ["name", "request", "from_dir"])]
    pub(crate) update: Option<String>,
    /// Make scenarios of the fragments servers started with `--record DIR` wrote.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["name", "request"])]
    pub(crate) from_dir: Option<PathBuf>,
    /// Name prefix of the scenarios made with --from-dir.
    #[arg(long, value_name = "NAME", default_value = "recorded")]
    pub(crate) prefix: String,
    /// Overwrite an existing scenario file; with --update, re-record a scenario whose file writes
    /// out secrets its spec does not keep (the new recording redacts them), or one the system's
    /// edge admitted when it was recorded (the new recording holds the refusal of a request
    /// without a token).
    #[arg(long)]
    pub(crate) force: bool,
    /// Directory of scenario files.
    #[arg(long, value_name = "DIR")]
    pub(crate) dir: Option<PathBuf>,
}

pub(crate) fn main(args: RecordArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new()?;
    let dir = config.dir(args.dir.as_ref());
    if let Some(layout) = &args.layout
        && config.system().layout_spec(layout).is_none()
    {
        let known: Vec<&str> = config
            .system()
            .layouts()
            .iter()
            .map(|l| l.name.as_str())
            .collect();
        bail!(
            "{} has no layout {layout:?} (its layouts: {})",
            config.system().name(),
            known.join(", ")
        );
    }
    let layout = args.layout.as_deref();
    if let Some(from) = &args.from_dir {
        return from_fragments(config.system(), from, &dir, &args);
    }
    if let Some(name) = &args.update {
        let path = file_of(&dir, name);
        let old = Scenario::load(&path)?;
        let shown_old = shown_for_update(&old, args.force)?;
        if let Some(reason) = needs_a_token(config.system(), &old)
            && !args.force
        {
            bail!(
                "{name} cannot be recorded again as it was: {reason}; use --force to replace it \
                 with what a request without a token gets"
            );
        }
        let mut new = runtime.block_on(record(config, &old, layout))?;
        new.description = old.description.clone();
        new.spec = old.spec.clone();
        let (before, after) = (old.to_json(), new.to_json());
        if before == after {
            outln!("{name}: unchanged")?;
        } else {
            // Shown as everywhere else: secrets the scenario does not keep as placeholders (the
            // new recording holds none: it was recorded under the same spec).
            let before = shown_old.to_json();
            out!(
                "{}",
                similar::TextDiff::from_lines(&before, &after)
                    .unified_diff()
                    .header(
                        &format!("{} (recorded)", path.display()),
                        &format!("{} (now)", path.display())
                    )
            )?;
            new.save(&path)?;
            outln!("{name}: updated {}", path.display())?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let (Some(name), Some(request)) = (&args.name, &args.request) else {
        bail!("a new scenario needs a NAME and --request");
    };
    let Some(service) = args.service.as_deref().or(config.root_service()) else {
        bail!(
            "which service is the request for? Name it with --service (services of {}: {})",
            config.system().name(),
            config.system().service_names().join(", ")
        );
    };
    let caller = args.caller.as_deref().unwrap_or(config.caller());
    let body = crate::Json::parse(&args.body)
        .with_context(|| format!("--body is not JSON: {}", args.body))?;
    let mut template = Scenario {
        unreachable: args.unreachable.clone(),
        ..Scenario::new(
            name.clone(),
            CallNode {
                caller: caller.to_owned(),
                service: service.to_owned(),
                request: request.clone(),
                request_id: String::new(),
                body,
                outcome: CallOutcome::Unfinished,
                calls: Vec::new(),
            },
        )
    };
    if args.keep_secrets {
        template.spec = template.spec.keep_secrets();
    }
    let path = file_of(&dir, name);
    if path.exists() && !args.force {
        bail!(
            "{} exists; use --update {name} to re-record it or --force",
            path.display()
        );
    }
    let scenario = runtime
        .block_on(record(config, &template, layout))?
        .with_description(args.description.clone());
    scenario.save(&path)?;
    out!("{}", scenario.root)?;
    outln!("wrote {}", path.display())?;
    Ok(ExitCode::SUCCESS)
}

/// `old` as an update's diff shows it, its secrets redacted unless its spec keeps them; refused
/// without `force` when that hides secrets the file writes out, which the new recording would
/// lose.
fn shown_for_update(old: &Scenario, force: bool) -> anyhow::Result<Scenario> {
    let mut shown = old.clone();
    old.spec.secrets().redact_tree(&mut shown.root);
    if shown.root != old.root && !force {
        bail!(
            "{} writes out secrets, which a new recording redacts since its spec does not keep \
             secrets: add \"keep_secrets\": true to its spec to keep them, or use --force to \
             re-record it redacted",
            old.name
        );
    }
    Ok(shown)
}

/// Sends `template`'s root request (with its unreachable services down) and records what
/// happens: in-process, or on a layout of real servers with recording on.
async fn record(
    config: &Config,
    template: &Scenario,
    layout: Option<&str>,
) -> anyhow::Result<Scenario> {
    let registry = registry(config.system())?;
    // What is saved is what is sent: a secret the scenario does not keep goes out as the
    // placeholder every replay will send, so the recording shows what a replay does.
    let mut sent = template.clone();
    sent.root.body = template.spec.secrets().redact_json(&template.root.body);
    let template = &sent;
    let tree = match layout {
        None => record_in_process(config.system(), template, &registry).await?,
        Some(layout) => record_on_servers(config, template, &registry, layout).await?,
    };
    let mut scenario = Scenario::new(template.name.clone(), tree);
    scenario.unreachable = template.unreachable.clone();
    scenario.description = template.description.clone();
    scenario.spec = template.spec.clone();
    Ok(scenario)
}

/// The root node of a request that never reached a service (it did not decode, or was refused
/// at the edge), its secrets redacted as a recording's are.
fn refused(template: &Scenario, outcome: CallOutcome) -> CallNode {
    let root = &template.root;
    CallNode {
        caller: root.caller.clone(),
        service: root.service.clone(),
        request: root.request.clone(),
        request_id: root.request_id.clone(),
        body: template.spec.secrets().redact_json(&root.body),
        outcome,
        calls: Vec::new(),
    }
}

async fn record_in_process(
    system: &System,
    template: &Scenario,
    registry: &Registry,
) -> anyhow::Result<CallNode> {
    let recorder = CallRecorder::with_redaction(template.spec.secrets());
    let set = system
        .all(ServiceSet::builder())
        .hook(recorder.clone())
        .hook(Unreachable::new(template.unreachable.iter().cloned()))
        .build()?;
    // Through the system's edge, as the servers' listeners and the parity run send it.
    let outcome =
        send_root_at_edge(template, registry, &set, Ctx::new(), system.edge_auth()).await?;
    // A request that does not decode never reaches the set, so nothing is recorded for it.
    Ok(recorder
        .last_tree()
        .unwrap_or_else(|| refused(template, outcome)))
}

async fn record_on_servers(
    config: &Config,
    template: &Scenario,
    registry: &Registry,
    layout: &str,
) -> anyhow::Result<CallNode> {
    let system = config.system();
    if template.spec.keep_secrets {
        bail!(
            "{} keeps its secrets, and servers always redact what they record: re-record it \
             in-process (without --layout)",
            template.name
        );
    }
    let binaries: Binaries = server_binaries(config).map_err(anyhow::Error::msg)?;
    let stop = processes_to_stop(system, layout, template).map_err(anyhow::Error::msg)?;
    let dir = crate::runner::ScratchDir::new("nano-record")?;
    let options = StartOptions {
        args: vec!["--record".into(), dir.path().display().to_string()],
        echo_logs: false,
        ..StartOptions::default()
    };
    let mut deployment = RunningLayout::start(system, layout, &binaries, &options).await?;
    for name in &stop {
        deployment.stop(name)?;
    }
    let clients = deployment.clients()?;
    let ctx = Ctx::new();
    let outcome = match clients
        .send_recorded(&ctx, &template.root, registry)
        .await?
    {
        Delivery::Answered(outcome) => outcome,
        Delivery::NotApplicable(reason) => bail!("cannot record {}: {reason}", template.name),
    };
    // The servers write recordings off the request path; stopping them gracefully writes what
    // is still queued.
    let names: Vec<String> = deployment
        .processes()
        .iter()
        .map(|p| p.name().to_owned())
        .collect();
    for name in &names {
        if let Some(process) = deployment.process(name) {
            // A process stopped above is gone already.
            let _ = process.terminate();
        }
    }
    for name in &names {
        if let Some(process) = deployment.process_mut(name) {
            process.wait(std::time::Duration::from_secs(20)).await?;
        }
    }
    let fragments = read_fragments_of(dir.path(), ctx.request_id().as_str())?;
    drop(deployment);
    let mut trees = join_fragments(fragments);
    match trees.len() {
        0 if matches!(outcome, CallOutcome::Response(_)) => bail!(
            "{} was answered, but the servers recorded no call for it: nothing to save",
            template.name
        ),
        0 => Ok(refused(template, outcome)),
        1 => Ok(trees.remove(0)),
        n => bail!("the servers recorded {n} separate trees for one request"),
    }
}

fn from_fragments(
    system: &System,
    from: &Path,
    dir: &Path,
    args: &RecordArgs,
) -> anyhow::Result<ExitCode> {
    let trees = join_fragments(read_fragments(from)?);
    if trees.is_empty() {
        bail!("{} holds no recorded fragments", from.display());
    }
    for (n, tree) in trees.into_iter().enumerate() {
        let name = format!("{}-{}", args.prefix, n + 1);
        let path = file_of(dir, &name);
        if path.exists() && !args.force {
            bail!(
                "{} exists; choose another --prefix or use --force",
                path.display()
            );
        }
        let scenario = Scenario::new(name, tree);
        scenario.save(&path)?;
        outln!("wrote {}", path.display())?;
        if let Some(reason) = needs_a_token(system, &scenario) {
            outln!("  note: it cannot be replayed: {reason}")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::Runner;
    use crate::runner::test_system::{self, front};

    fn template(spec: crate::Spec) -> Scenario {
        let mut scenario = Scenario::new(
            "ask",
            CallNode {
                caller: "test_client".into(),
                service: front::NAME.into(),
                request: "front.Ask".into(),
                request_id: String::new(),
                body: crate::Json::parse(r#"{"text":"x","password":"pw-1"}"#).unwrap(),
                outcome: CallOutcome::Unfinished,
                calls: Vec::new(),
            },
        );
        scenario.spec = spec;
        scenario
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn recording_in_process_goes_through_the_systems_edge() {
        let runtime = runtime();
        let record = |system: &System| {
            let registry = registry(system).unwrap();
            runtime
                .block_on(record_in_process(
                    system,
                    &template(crate::Spec::default()),
                    &registry,
                ))
                .unwrap()
        };
        // A scenario carries no token, so behind the edge the root is refused as over HTTP, and
        // its body is written as a recording writes it: without its secrets.
        let guarded = record(&test_system::guarded_system());
        assert!(!guarded.body.to_string().contains("pw-1"), "{guarded}");
        assert!(guarded.body.to_string().contains("[redacted]"), "{guarded}");
        assert!(
            matches!(&guarded.outcome, CallOutcome::Error { code, .. } if code == "C-UNAUTHORIZED"),
            "{guarded}"
        );
        assert!(guarded.calls.is_empty(), "{guarded}");
        let open = record(&test_system::system());
        assert!(matches!(open.outcome, CallOutcome::Response(_)), "{open}");
        assert_eq!(open.calls.len(), 1, "{open}");
    }

    #[test]
    fn an_update_that_would_lose_written_out_secrets_needs_force() {
        let mut written = template(crate::Spec::default());
        written.root.body = crate::Json::parse(r#"{"text":"x","password":"pw-1"}"#).unwrap();
        let err = shown_for_update(&written, false).unwrap_err().to_string();
        assert!(
            err.contains("writes out secrets") && err.contains("--force"),
            "{err}"
        );
        let shown = shown_for_update(&written, true).unwrap();
        assert!(!shown.to_json().contains("pw-1"), "{}", shown.to_json());
        // Kept by the spec, or nothing to hide: no question asked, nothing hidden.
        let mut kept = written.clone();
        kept.spec = kept.spec.keep_secrets();
        assert!(
            shown_for_update(&kept, false)
                .unwrap()
                .to_json()
                .contains("pw-1")
        );
        let mut plain = written.clone();
        plain.root.body = crate::Json::parse(r#"{"text":"x"}"#).unwrap();
        shown_for_update(&plain, false).unwrap();
    }

    #[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
    #[serde(default)]
    struct Login {
        password: String,
    }

    #[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
    #[serde(default)]
    struct Seen {
        sent: String,
    }

    mod vault {
        nano::api! { service "vault"; fn login(super::Login) -> super::Seen = "vault.Login"; }
    }

    /// Answers with the password it was sent, in a field whose name is no secret's.
    struct Vault;

    impl vault::Handler for Vault {
        async fn login(&self, _ctx: &nano::Ctx, req: Login) -> Result<Seen, nano::NanoError> {
            Ok(Seen {
                sent: format!("saw {}", req.password),
            })
        }
    }

    #[test]
    fn record_sends_the_body_as_it_will_be_saved() {
        let system = System::new("vault").service(&vault::API, || vault::service(|_| Ok(Vault)));
        let config = Config {
            runner: Runner::new(system),
            command: "record-test".into(),
        };
        let mut login = Scenario::new(
            "login",
            CallNode {
                caller: "test_client".into(),
                service: "vault".into(),
                request: "vault.Login".into(),
                request_id: String::new(),
                body: crate::Json::parse(r#"{"password":"pw-1"}"#).unwrap(),
                outcome: CallOutcome::Unfinished,
                calls: Vec::new(),
            },
        );
        let answer = |scenario: &Scenario| {
            let recorded = runtime().block_on(record(&config, scenario, None)).unwrap();
            (
                recorded.root.body.to_string(),
                recorded.root.outcome.clone(),
            )
        };
        // Redacted in the file, so redacted on the way: what a replay of the file will send.
        let (body, outcome) = answer(&login);
        assert_eq!(body, r#"{"password":"[redacted]"}"#);
        assert_eq!(
            outcome,
            CallOutcome::Response(crate::Json::parse(r#"{"sent":"saw [redacted]"}"#).unwrap())
        );
        login.spec = login.spec.keep_secrets();
        let (body, outcome) = answer(&login);
        assert_eq!(body, r#"{"password":"pw-1"}"#);
        assert_eq!(
            outcome,
            CallOutcome::Response(crate::Json::parse(r#"{"sent":"saw pw-1"}"#).unwrap())
        );
    }

    #[test]
    fn an_update_would_not_replace_a_recording_the_edge_admitted_without_force() {
        let dir = crate::runner::ScratchDir::new("nano-record-test").unwrap();
        let mut admitted = template(crate::Spec::default());
        admitted.name = "admitted".into();
        admitted.root.body = crate::Json::parse(r#"{"text":"x"}"#).unwrap();
        admitted.root.outcome =
            CallOutcome::Response(crate::Json::parse(r#"{"text":"y"}"#).unwrap());
        let path = dir.path().join("admitted.json");
        admitted.save(&path).unwrap();
        let config = Config {
            runner: Runner::new(test_system::guarded_system()),
            command: "record-test".into(),
        };
        let update = |force: bool| RecordArgs {
            name: None,
            request: None,
            body: "{}".into(),
            service: None,
            caller: None,
            unreachable: Vec::new(),
            description: String::new(),
            keep_secrets: false,
            layout: None,
            update: Some("admitted".into()),
            from_dir: None,
            prefix: "recorded".into(),
            force,
            dir: Some(dir.path().to_owned()),
        };
        let err = main(update(false), &config).unwrap_err().to_string();
        assert!(
            err.contains("cannot be recorded again") && err.contains("--force"),
            "{err}"
        );
        assert_eq!(
            Scenario::load(&path).unwrap().root.outcome,
            admitted.root.outcome
        );
        // Forced, it holds what a request without a token gets.
        main(update(true), &config).unwrap();
        let now = Scenario::load(&path).unwrap();
        assert!(
            matches!(&now.root.outcome, CallOutcome::Error { code, .. } if code == "C-UNAUTHORIZED"),
            "{}",
            now.root
        );
    }

    #[test]
    fn a_scenario_that_keeps_its_secrets_is_not_recorded_on_servers() {
        let config = Config {
            runner: Runner::new(test_system::system()),
            command: "record-test".into(),
        };
        let kept = template(crate::Spec::default().keep_secrets());
        let err = runtime()
            .block_on(record(&config, &kept, Some("two")))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("keeps its secrets") && err.contains("without --layout"),
            "{err}"
        );
    }
}
