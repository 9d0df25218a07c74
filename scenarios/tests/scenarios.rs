//! Every recorded scenario of the example cluster in every deployment, one test case each:
//! `cargo test -p scenarios --test scenarios -- --list` lists them, a name filter picks some.

fn main() -> std::process::ExitCode {
    nano_test::runner::Runner::new(services::system())
        .scenario_dir("scenarios/recorded")
        .build_with_cargo("services")
        .root_service("svc2")
        .tests()
}
