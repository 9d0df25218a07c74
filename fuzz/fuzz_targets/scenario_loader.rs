//! The scenario loader on arbitrary bytes: it returns a located error or a scenario, and a
//! scenario it returns survives being written and read again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nano_test::scenario::Scenario;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(scenario) = Scenario::from_json(text, "fuzz.json") {
        // Exercises Display, the Mermaid-free outline and the deep walks on what was loaded.
        let _ = scenario.root.to_string();
        let again = Scenario::from_json(&scenario.to_json(), "again.json")
            .expect("a loaded scenario, saved, loads again");
        assert_eq!(again, scenario);
    }
});
