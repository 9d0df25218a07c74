//! The fault-plan loader on arbitrary bytes: it returns an error or a valid plan, never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nano_test::sim::FaultPlan;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(plan) = FaultPlan::from_json(text) {
        plan.validate().expect("a loaded plan is valid");
    }
});
