//! Every recorded scenario of the sign-up system in every deployment, one test case each, with
//! the runner the example runs.

#[path = "../examples/signup-scenarios.rs"]
mod runner_example;

fn main() -> std::process::ExitCode {
    runner_example::runner().tests()
}
