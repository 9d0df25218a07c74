//! `replay FILE --target URL`: one scenario against a running deployment.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::scenario::{Scenario, compare_outcome};
use crate::{Delivery, Deployment};
use clap::Args;
use nano::Ctx;

use crate::runner::Config;
use crate::runner::catalog::registry;
use crate::runner::out::outln;

/// Which scenario, and where the deployment is.
#[derive(Debug, Clone, Args)]
pub(crate) struct ReplayArgs {
    /// The scenario file, or the name of a scenario in --dir.
    pub(crate) file: PathBuf,
    /// Directory of scenario files (for a scenario given by name).
    #[arg(long, value_name = "DIR")]
    pub(crate) dir: Option<PathBuf>,
    /// Address of the server exposing the scenario's root service, e.g. http://127.0.0.1:8000.
    #[arg(long, value_name = "URL")]
    pub(crate) target: String,
}

pub(crate) fn main(args: ReplayArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let dir = config.dir(args.dir.as_ref());
    let scenario = Scenario::load(crate::runner::catalog::resolve(&dir, &args.file))?;
    let system = config.system();
    let root = &scenario.root;
    if system.api(&root.service).is_none() {
        anyhow::bail!(
            "the root service {:?} is not a service of {} (its services: {})",
            root.service,
            system.name(),
            system.service_names().join(", ")
        );
    }
    let mut peers = nano_http::Peers::new();
    peers.insert(&root.service, &args.target)?;
    let deployment = Deployment::remote(peers, crate::deploy::system_endpoints(system))?;
    if !scenario.unreachable.is_empty() {
        outln!(
            "note: {} expects {} to be unreachable; the deployment at {} must run without {}",
            scenario.name,
            scenario.unreachable.join(", "),
            args.target,
            if scenario.unreachable.len() == 1 {
                "it"
            } else {
                "them"
            }
        )?;
    }
    if let Some(reason) = crate::runner::deployments::needs_a_token(system, &scenario) {
        outln!("n/a: {} against {}: {reason}", scenario.name, args.target)?;
        return Ok(ExitCode::SUCCESS);
    }
    let runtime = tokio::runtime::Runtime::new()?;
    let ctx = Ctx::new();
    let outcome =
        match runtime.block_on(deployment.send_recorded(&ctx, root, &registry(system)?))? {
            Delivery::Answered(outcome) => outcome,
            Delivery::NotApplicable(reason) => {
                outln!("n/a: {} against {}: {reason}", scenario.name, args.target)?;
                return Ok(ExitCode::SUCCESS);
            }
        };
    match compare_outcome(&scenario.spec, &scenario.root, &outcome) {
        None => {
            outln!(
                "pass: {} against {} (request id {})",
                scenario.name,
                args.target,
                ctx.request_id()
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Some(problem) => {
            outln!(
                "FAIL: scenario {:?} against {} (request id {})\n- {problem}",
                scenario.name,
                args.target,
                ctx.request_id()
            )?;
            let unreachable = matches!(
                &outcome,
                crate::CallOutcome::Error { code, .. } if code == nano::codes::UNAVAILABLE
            );
            if unreachable && scenario.unreachable.is_empty() {
                outln!(
                    "note: the target could not be reached; is a server listening at {}?",
                    args.target
                )?;
            }
            Ok(ExitCode::FAILURE)
        }
    }
}
