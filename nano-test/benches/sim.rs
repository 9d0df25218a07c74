//! Simulated calls per wall-clock second, side by side with the plain in-process set.
//!
//! Run with `cargo bench -p nano-test --bench sim`. Both variants send `svc2::GetReq` through the
//! real example services, a 3-hop chain (test → svc2 → svc3 → svc4), sequentially:
//!
//! - `plain set`: no hook, a current-thread runtime;
//! - `simulated, no faults`: every call through the simulator on a paused clock, no latency;
//! - `simulated, 200 ms latency`: every hop 200 ms each way of virtual time;
//! - `simulated, latency + 5% loss`: as above, 5% of requests to svc4 lost.
//!
//! It prints calls per wall-clock second, virtual time covered, and the ratio to the plain set.

use std::time::{Duration, Instant};

use nano::ServiceSet;
use nano_test::sim::{EdgeFaults, FaultPlan, Latency, Network};
use services::api::svc2;

const REQUESTS: u64 = 20_000;
const HOPS: u64 = 3;
const ROUNDS: usize = 5;

struct Measured {
    name: &'static str,
    calls_per_second: f64,
    virtual_time: Duration,
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn plain(requests: u64) -> (f64, Duration) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let set = services::all(ServiceSet::builder()).build().expect("set");
    let svc2 = set.client("bench", svc2::NAME).expect("client");
    let started = Instant::now();
    runtime.block_on(async {
        let ctx = nano::Ctx::new();
        for _ in 0..requests {
            svc2.call(&ctx, svc2::GetReq {}).await.expect("call");
        }
    });
    (
        (requests * HOPS) as f64 / started.elapsed().as_secs_f64(),
        Duration::ZERO,
    )
}

fn simulated(plan: &FaultPlan, requests: u64) -> (f64, Duration) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("runtime");
    let started = Instant::now();
    let (calls, virtual_time) = runtime.block_on(async {
        let sim = Network::new(plan.clone());
        let set = services::all(ServiceSet::builder())
            .hook(sim.hook())
            .build()
            .expect("set");
        let svc2 = set.client("bench", svc2::NAME).expect("client");
        let ctx = sim.ctx();
        for _ in 0..requests {
            // Lost requests are part of the load; their errors are expected.
            let _ = svc2.call(&ctx, svc2::GetReq {}).await;
        }
        let report = sim.report();
        (report.calls, report.virtual_time())
    });
    (calls as f64 / started.elapsed().as_secs_f64(), virtual_time)
}

fn main() {
    let quick = std::env::args().any(|arg| arg == "--test");
    let requests = if quick { 10 } else { REQUESTS };
    let latency = EdgeFaults::new().latency(Latency::fixed(Duration::from_millis(200)));
    let plans = [
        ("simulated, no faults", FaultPlan::new(1)),
        (
            "simulated, 200 ms latency",
            FaultPlan::new(1).all_edges(latency.clone()),
        ),
        (
            "simulated, latency + 5% loss",
            FaultPlan::new(1)
                .all_edges(latency.clone())
                .calls_to("svc4", latency.drop_rate(0.05)),
        ),
    ];

    let mut results = vec![Measured {
        name: "plain set",
        calls_per_second: 0.0,
        virtual_time: Duration::ZERO,
    }];
    results.extend(plans.iter().map(|(name, _)| Measured {
        name,
        calls_per_second: 0.0,
        virtual_time: Duration::ZERO,
    }));
    let rounds = if quick { 1 } else { ROUNDS };
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); results.len()];
    for _ in 0..rounds {
        samples[0].push(plain(requests).0);
        for (index, (_, plan)) in plans.iter().enumerate() {
            let (rate, virtual_time) = simulated(plan, requests);
            samples[index + 1].push(rate);
            results[index + 1].virtual_time = virtual_time;
        }
    }
    for (result, samples) in results.iter_mut().zip(samples) {
        result.calls_per_second = median(samples);
    }
    if quick {
        println!("sim: smoke-tested {} variants", results.len());
        return;
    }

    let plain_rate = results[0].calls_per_second;
    println!(
        "{:<32} {:>16} {:>16} {:>12}",
        "variant", "calls/wall-s", "virtual time", "vs plain"
    );
    for result in &results {
        println!(
            "{:<32} {:>16.0} {:>15.1}s {:>11.2}x",
            result.name,
            result.calls_per_second,
            result.virtual_time.as_secs_f64(),
            result.calls_per_second / plain_rate
        );
    }
}
