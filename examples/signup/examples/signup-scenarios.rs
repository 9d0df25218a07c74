//! The sign-up system's scenario runner: `cargo run -p signup --example signup-scenarios -- --help`.

use nano_test::CallOutcome;
use nano_test::runner::{ChaosRequest, Runner};
use signup::api::{signup as api, users};

/// The name `chaos` lists the sign-up invariant under.
pub(crate) const ACCOUNT_EXISTS: &str = "every answered sign-up has its account";

/// The runner, as `main` runs it (the tests run the same one).
pub(crate) fn runner() -> Runner {
    Runner::new(signup::system())
        .scenario_dir("examples/signup/scenarios")
        .build_with_cargo("signup")
        .root_service("signup")
        .command("cargo run -p signup --example signup-scenarios --")
        .invariant(ACCOUNT_EXISTS, account_exists)
}

/// A sign-up that answered with an account id: `users` has that account, under that address.
/// Whatever the network lost on the way, a client holding a token has an account behind it.
async fn account_exists(request: &ChaosRequest) -> Result<(), nano_test::sim::BoxError> {
    let root = &request.scenario().root;
    if root.service != api::NAME || root.request != <api::SignUp as nano::Request>::NAME {
        return Ok(());
    }
    let CallOutcome::Response(body) = request.outcome() else {
        return Ok(());
    };
    let answer: api::SignedUp = serde_json::from_value(body.to_value())?;
    let user = request
        .client("invariant", users::NAME)?
        .call(&request.ctx(), users::Get { id: answer.user_id })
        .await
        .map_err(|err| format!("account {} of the answer: {err}", answer.user_id))?;
    if user.email != answer.email {
        return Err(format!(
            "account {} is {:?}, the answer says {:?}",
            answer.user_id, user.email, answer.email
        )
        .into());
    }
    Ok(())
}

#[allow(
    dead_code,
    reason = "the tests include this file for `runner` and do not call `main`"
)]
fn main() -> std::process::ExitCode {
    runner().main()
}
