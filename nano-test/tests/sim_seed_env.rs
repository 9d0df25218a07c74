//! `NANO_SIM_SEED` replays a simulation with another seed. A test binary of its own, because the
//! variable is process-wide.

use nano_test::sim::{EdgeFaults, FaultPlan, SEED_ENV, Simulation};

#[test]
fn the_environment_seed_overrides_the_plan_seed() {
    #[allow(unsafe_code)]
    // SAFETY: no other thread of this process reads or writes the environment concurrently.
    unsafe {
        std::env::set_var(SEED_ENV, "4242");
    }
    let plan = FaultPlan::new(1).all_edges(EdgeFaults::new().drop_rate(0.5));
    // The body hands nothing to invariants; it says so, since it never returns `Ok`.
    let simulation = Simulation::<()>::new(plan);
    assert_eq!(simulation.plan().seed, 4242);
    let failure = simulation
        .run(|sim| async move { Err(format!("seed {}", sim.seed()).into()) })
        .unwrap_err();
    assert_eq!(failure.message, "seed 4242");
    assert_eq!(failure.seed, 4242);
}
