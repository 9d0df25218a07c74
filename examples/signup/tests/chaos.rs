//! The runner's documented `chaos` command (`cargo run -p signup --example signup-scenarios --
//! chaos --seed 7`), run through the very runner the example builds, for a few seeds.

use std::process::ExitCode;

#[path = "../examples/signup-scenarios.rs"]
mod runner_example;

/// The runner's `chaos` with `--seed seed`, on a blocking thread (it runs its own runtime).
fn chaos(seed: u64) -> ExitCode {
    // The runner reads its scenario directory relative to the workspace, as `cargo run` starts
    // it there.
    let workspace = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    std::env::set_current_dir(workspace).expect("the workspace");
    runner_example::runner().main_from([
        "signup-scenarios".to_owned(),
        "chaos".to_owned(),
        "--seed".to_owned(),
        seed.to_string(),
    ])
}

#[test]
fn the_documented_chaos_command_holds_every_invariant_for_several_seeds() {
    for seed in [7, 1, 42] {
        assert_eq!(chaos(seed), ExitCode::SUCCESS, "chaos --seed {seed}");
    }
}
