//! Every recorded scenario of the shop in every deployment, one test case each.

fn main() -> std::process::ExitCode {
    nano_test::runner::Runner::new(shop::system())
        .scenario_dir("examples/shop/scenarios")
        .build_with_cargo("shop")
        .root_service("orders")
        .tests()
}
