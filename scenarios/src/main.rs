//! The scenario runner of the example cluster: `nano_test::runner` over `services::system()`.
//!
//! Run `cargo run --release -p scenarios -- --help` for the commands.

use nano_test::runner::{ChaosRequest, Runner};
use nano_test::sim::BoxError;
use services::api::svc2;

/// What `chaos` checks of the example cluster after every request, besides the runner's own
/// invariants: whatever the faults did to the request, the cluster keeps working. svc2's `Req`
/// goes through svc1 only, so it must answer even in the scenarios where svc3 is unreachable.
const RECOVERS: &str = "svc2 answers a new request once the faults stop";

async fn recovers(request: &ChaosRequest) -> Result<(), BoxError> {
    let svc2 = request.client("probe", svc2::NAME)?;
    let probe = svc2::Req {
        param: "probe".into(),
    };
    let answer = svc2.call(&request.ctx(), probe).await?;
    if answer.value == "svc2_svc1_probe" {
        Ok(())
    } else {
        Err(format!("svc2 answered {:?}", answer.value).into())
    }
}

fn main() -> std::process::ExitCode {
    Runner::new(services::system())
        .scenario_dir("scenarios/recorded")
        .chaos_plan("scenarios/plans/default.json")
        .build_with_cargo("services")
        .root_service("svc2")
        .command("cargo run --release -p scenarios --")
        .invariant(RECOVERS, recovers)
        .main()
}
