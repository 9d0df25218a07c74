//! The shop's scenario runner: `cargo run -p shop --example shop-scenarios -- --help`.

fn main() -> std::process::ExitCode {
    nano_test::runner::Runner::new(shop::system())
        .scenario_dir("examples/shop/scenarios")
        .build_with_cargo("shop")
        .root_service("orders")
        .command("cargo run -p shop --example shop-scenarios --")
        .main()
}
