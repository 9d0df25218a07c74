//! The scenario runner of the example cluster: `nano_test::runner` over `services::system()`.
//!
//! Run `cargo run --release -p scenarios -- --help` for the commands.

fn main() -> std::process::ExitCode {
    nano_test::runner::Runner::new(services::system())
        .scenario_dir("scenarios/recorded")
        .chaos_plan("scenarios/plans/default.json")
        .build_with_cargo("services")
        .root_service("svc2")
        .command("cargo run --release -p scenarios --")
        .main()
}
