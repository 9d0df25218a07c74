//! Every recorded scenario of the sign-up system in every deployment, one test case each.

fn main() -> std::process::ExitCode {
    nano_test::runner::Runner::new(signup::system())
        .scenario_dir("examples/signup/scenarios")
        .build_with_cargo("signup")
        .root_service("signup")
        .tests()
}
