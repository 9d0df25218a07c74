//! `replay FILE --target URL`: one scenario against a running deployment.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use nano::Ctx;
use nano_test::scenario::{Scenario, compare_outcome};
use nano_test::{Delivery, Deployment};

use crate::catalog::registry;
use crate::out::outln;

/// Which scenario, and where the deployment is.
#[derive(Debug, Clone, Args)]
pub(crate) struct ReplayArgs {
    /// The scenario file, or the name of a scenario in --dir.
    pub(crate) file: PathBuf,
    /// Directory of scenario files (for a scenario given by name).
    #[arg(long, value_name = "DIR", default_value_os_t = crate::default_dir())]
    pub(crate) dir: PathBuf,
    /// Address of the server exposing the scenario's root service, e.g. http://127.0.0.1:8000.
    #[arg(long, value_name = "URL")]
    pub(crate) target: String,
}

pub(crate) fn main(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let scenario = Scenario::load(crate::catalog::resolve(&args.dir, &args.file))?;
    let system = services::system();
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
    let deployment = Deployment::remote(peers, services::api::endpoints)?;
    let runtime = tokio::runtime::Runtime::new()?;
    let ctx = Ctx::new();
    let outcome = match runtime.block_on(deployment.send_recorded(&ctx, root, &registry()))? {
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
                nano_test::CallOutcome::Error { code, .. } if code == nano::codes::UNAVAILABLE
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
