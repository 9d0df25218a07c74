//! The sign-up system's scenario runner: `cargo run -p signup --example signup-scenarios -- --help`.

fn main() -> std::process::ExitCode {
    nano_test::runner::Runner::new(signup::system())
        .scenario_dir("examples/signup/scenarios")
        .build_with_cargo("signup")
        .root_service("signup")
        .command("cargo run -p signup --example signup-scenarios --")
        .main()
}
