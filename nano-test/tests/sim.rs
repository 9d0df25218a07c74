//! The network simulator on the example services: determinism, faults, partitions, deadlines,
//! retries and shrinking.

use std::time::Duration;

use futures_util::future::join_all;
use nano::{AnyRequest, Client, Ctx, Edge, Outcome, Service, ServiceSet, SharedService, codes};
use nano_test::sim::{
    BoxError, EdgeFaults, Fault, FaultPlan, InjectedFault, Latency, Network, Simulation,
    TraceEntry, TraceOutcome,
};
use services::api::svc2;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// svc2 in a set of the four real services whose every client goes through `sim`, optionally
/// behind a retry wrapper.
fn svc2_through(sim: &Network, retry_attempts: Option<u32>) -> Client {
    let mut builder = services::all(ServiceSet::builder());
    if let Some(attempts) = retry_attempts {
        builder = builder.hook(move |_edge: &Edge, next: SharedService| {
            SharedService::new(RetryUnavailable { next, attempts })
        });
    }
    let set = builder.hook(sim.hook()).build().unwrap();
    set.client("test", svc2::NAME).unwrap()
}

/// A retry wrapper of the kind an application would write: resend on `S-UNAVAILABLE`.
struct RetryUnavailable {
    next: SharedService,
    attempts: u32,
}

impl Service for RetryUnavailable {
    fn name(&self) -> &str {
        self.next.name()
    }

    async fn handle(&self, ctx: Ctx, req: AnyRequest) -> Outcome {
        let mut attempt = 1;
        loop {
            match self.next.handle(ctx.clone(), req.clone()).await {
                Err(err) if err.has_code(codes::UNAVAILABLE) && attempt < self.attempts => {
                    attempt += 1;
                }
                outcome => return outcome,
            }
        }
    }
}

/// Sends `n` svc2 requests, alternating `Req` and `GetReq`, ten at a time, and returns the codes
/// of the errors.
async fn traffic(sim: &Network, svc2: &Client, n: usize) -> Vec<String> {
    let mut errors = Vec::new();
    for wave in 0..n / 10 {
        let calls = (0..10).map(|i| {
            let ctx = sim.ctx();
            async move {
                if (wave + i) % 2 == 0 {
                    let req = svc2::Req {
                        param: format!("p{i}"),
                    };
                    svc2.call(&ctx, req).await.map(drop)
                } else {
                    svc2.call(&ctx, svc2::GetReq {}).await.map(drop)
                }
            }
        });
        for outcome in join_all(calls).await {
            if let Err(err) = outcome {
                errors.push(err.code().to_owned());
            }
        }
    }
    errors
}

fn lossy_plan(seed: u64) -> FaultPlan {
    FaultPlan::new(seed)
        .all_edges(EdgeFaults::new().latency(Latency::uniform(ms(1), ms(50))))
        .edge(
            "svc2",
            "svc1",
            EdgeFaults::new()
                .latency(Latency::fixed(ms(20)))
                .drop_rate(0.2),
        )
}

async fn trace_of(seed: u64) -> Vec<TraceEntry> {
    let sim = Network::new(lossy_plan(seed));
    let svc2 = svc2_through(&sim, None);
    traffic(&sim, &svc2, 200).await;
    sim.trace()
}

#[tokio::test(start_paused = true)]
async fn the_same_seed_gives_the_same_trace_and_another_seed_another() {
    let first = trace_of(11).await;
    assert_eq!(first.len(), 200 + 100 + 100 * 2);
    assert_eq!(first, trace_of(11).await);
    assert_ne!(first, trace_of(12).await);
}

#[test]
fn thousands_of_slow_calls_run_in_virtual_time_and_report_it() {
    let plan = FaultPlan::new(3).all_edges(EdgeFaults::new().latency(Latency::fixed(ms(200))));
    let report = Simulation::new(plan).check(|sim| async move {
        let svc2 = svc2_through(&sim, None);
        let errors = traffic(&sim, &svc2, 2000).await;
        if errors.is_empty() {
            Ok(())
        } else {
            Err(format!("errors: {errors:?}").into())
        }
    });
    // 2000 requests: 1000 of 2 hops and 1000 of 3 hops, 400 ms per hop, ten at a time.
    assert_eq!(report.calls, 5000);
    assert_eq!(report.faults.delayed, 5000);
    // Every wave of ten holds both kinds, so each of the 200 waves lasts as long as a GetReq:
    // three hops of 200 ms there and 200 ms back.
    assert_eq!(report.virtual_time(), 200 * 3 * ms(400));
}

#[tokio::test(start_paused = true)]
async fn svc2_when_svc3_is_partitioned_away() {
    let sim = Network::new(FaultPlan::new(1));
    let svc2 = svc2_through(&sim, None);
    sim.partition(&["svc3", "svc4"]);

    // Req does not need svc3 and still works.
    let resp = svc2
        .call(&sim.ctx(), svc2::Req { param: "x".into() })
        .await
        .unwrap();
    assert_eq!(resp.value, "svc2_svc1_x");
    // GetReq fails with the error a real transport gives, wrapped by svc2.
    let err = svc2.call(&sim.ctx(), svc2::GetReq {}).await.unwrap_err();
    assert_eq!(err.code(), codes::UNAVAILABLE);
    assert_eq!(
        err.to_string(),
        "svc3 failure :: svc2 cannot reach svc3: network partition"
    );
    assert_eq!(sim.counts().partitioned, 1);

    sim.heal();
    let resp = svc2.call(&sim.ctx(), svc2::GetReq {}).await.unwrap();
    assert_eq!(resp.value, "svc2_svc3_svc4_getparam");
    assert_eq!(sim.counts().partitioned, 1);
}

/// Sends 1000 `svc2::Req` under 20% loss on svc2 -> svc1 and returns (failures, drops).
fn loss_run(retry_attempts: Option<u32>) -> (usize, u64) {
    let plan = FaultPlan::new(2024).edge("svc2", "svc1", EdgeFaults::new().drop_rate(0.2));
    let failures = std::cell::Cell::new(0);
    let report = Simulation::new(plan)
        .run(|sim| {
            let failures = &failures;
            async move {
                let svc2 = svc2_through(&sim, retry_attempts);
                for i in 0..1000 {
                    let req = svc2::Req {
                        param: i.to_string(),
                    };
                    match svc2.call(&sim.ctx(), req).await {
                        Ok(resp) if resp.value == format!("svc2_svc1_{i}") => {}
                        Ok(resp) => return Err(format!("wrong answer {resp:?}").into()),
                        Err(err) if err.has_code(codes::UNAVAILABLE) => {
                            failures.set(failures.get() + 1);
                        }
                        Err(err) => return Err(format!("unexpected error {err}").into()),
                    }
                }
                Ok(())
            }
        })
        .unwrap();
    (failures.get(), report.faults.dropped)
}

#[test]
fn svc2_under_20_percent_loss_on_svc1_with_and_without_retries() {
    let (failures, dropped) = loss_run(None);
    // Without retries every lost request is a failed svc2 request.
    assert_eq!(failures as u64, dropped);
    assert!((150..=250).contains(&failures), "{failures} of 1000 failed");

    let (failures_with_retry, dropped_with_retry) = loss_run(Some(3));
    // With three attempts a request fails only when all three are lost: about 0.8% of them.
    assert!(dropped_with_retry > 150, "{dropped_with_retry} drops");
    assert!(
        failures_with_retry <= 20,
        "{failures_with_retry} of 1000 failed"
    );
    assert!(failures_with_retry < failures / 10);
}

#[tokio::test(start_paused = true)]
async fn a_deadline_shorter_than_the_chain_latency_times_out_at_the_deadline() {
    let plan = FaultPlan::new(5).all_edges(EdgeFaults::new().latency(Latency::fixed(ms(100))));
    let sim = Network::new(plan);
    let svc2 = svc2_through(&sim, None);
    // GetReq needs 3 hops x 200 ms = 600 ms; the budget is 250 ms.
    let ctx = sim.ctx().with_timeout(ms(250));
    let err = svc2.call(&ctx, svc2::GetReq {}).await.unwrap_err();
    assert_eq!(err.code(), codes::TIMEOUT);
    assert_eq!(sim.elapsed(), ms(250));
    // Every call of the tree was abandoned at the deadline, none ran past it.
    let trace = sim.trace();
    assert_eq!(trace.len(), 3);
    assert!(
        trace.iter().all(|call| call.end_us <= 250_000),
        "{trace:#?}"
    );
    assert!(
        trace.iter().all(|call| call.outcome != TraceOutcome::Ok),
        "{trace:#?}"
    );
}

#[tokio::test(start_paused = true)]
async fn the_nth_call_to_svc3_fails_as_scripted() {
    let plan = FaultPlan::new(9).nth_call_to(
        "svc3",
        2,
        Fault::Error {
            code: "S-DISK-FULL".into(),
            message: "no space left".into(),
        },
    );
    let sim = Network::new(plan);
    let svc2 = svc2_through(&sim, None);
    let mut outcomes = Vec::new();
    for _ in 0..3 {
        outcomes.push(
            svc2.call(&sim.ctx(), svc2::GetReq {})
                .await
                .map_err(|err| err.to_string()),
        );
    }
    assert!(outcomes[0].is_ok() && outcomes[2].is_ok(), "{outcomes:?}");
    assert_eq!(outcomes[1], Err("svc3 failure :: no space left".to_owned()));
    assert_eq!(sim.counts().errored, 1);
}

#[tokio::test(start_paused = true)]
async fn a_hung_callee_ends_with_the_edge_timeout_and_is_counted() {
    let plan = FaultPlan::new(4)
        .calls_to("svc4", EdgeFaults::new().timeout(ms(300)))
        .nth_call_to("svc4", 1, Fault::Hang);
    let sim = Network::new(plan);
    let svc2 = svc2_through(&sim, None);
    let err = svc2.call(&sim.ctx(), svc2::GetReq {}).await.unwrap_err();
    assert_eq!(err.code(), codes::TIMEOUT);
    assert_eq!(
        err.to_string(),
        "svc3 failure :: svc4 failure :: svc3 gave up on svc4 after 300 ms"
    );
    assert_eq!(sim.elapsed(), ms(300));
    let counts = sim.counts();
    assert_eq!((counts.hung, counts.timed_out), (1, 1));
}

#[test]
fn a_plan_that_injects_nothing_fails_the_check() {
    // A 1% loss rate on an edge that is never called injects nothing.
    let plan = FaultPlan::new(1).edge("svc2", "svc9", EdgeFaults::new().drop_rate(0.01));
    let simulation = Simulation::new(plan);
    let report = simulation
        .run(|sim| async move {
            let svc2 = svc2_through(&sim, None);
            svc2.call(&sim.ctx(), svc2::GetReq {}).await?;
            Ok(())
        })
        .unwrap();
    assert!(report.no_faults_injected);
    assert!(
        report.to_string().contains("none were injected"),
        "{report}"
    );

    let panic = std::panic::catch_unwind(|| {
        simulation.check(|sim| async move {
            let svc2 = svc2_through(&sim, None);
            svc2.call(&sim.ctx(), svc2::GetReq {}).await?;
            Ok(())
        })
    })
    .unwrap_err();
    let message = panic.downcast_ref::<String>().unwrap();
    assert!(message.contains("injected no faults"), "{message}");
}

#[test]
fn a_hang_without_a_timeout_fails_at_the_time_limit_instead_of_hanging_the_test() {
    let plan = FaultPlan::new(8).nth_call_to("svc1", 1, Fault::Hang);
    let failure = Simulation::new(plan)
        .time_limit(Duration::from_secs(60))
        .run(|sim| async move {
            let svc2 = svc2_through(&sim, None);
            svc2.call(&sim.ctx(), svc2::Req::default()).await?;
            Ok(())
        })
        .unwrap_err();
    assert!(
        failure.message.contains("did not finish within 60s"),
        "{}",
        failure.message
    );
    assert_eq!(failure.report.faults.hung, 1);
    // Returned with `?` from a test, the harness prints the error's Debug form: the same report.
    let returned: Box<dyn std::error::Error> = Box::new(failure.clone());
    assert_eq!(format!("{returned:?}"), failure.to_string());
}

/// The invariant of the shrinking tests: every GetReq succeeds.
async fn every_get_req_succeeds(sim: Network) -> Result<(), BoxError> {
    let svc2 = svc2_through(&sim, None);
    for i in 0..50 {
        svc2.call(&sim.ctx(), svc2::GetReq {})
            .await
            .map_err(|err| format!("GetReq #{i} failed: {err}"))?;
    }
    Ok(())
}

#[test]
fn a_broken_invariant_is_shrunk_to_the_one_fault_that_matters() {
    let plan = FaultPlan::new(77)
        .all_edges(EdgeFaults::new().latency(Latency::uniform(ms(1), ms(9))))
        .calls_to(
            "svc4",
            EdgeFaults::new()
                .latency(Latency::fixed(ms(5)))
                .drop_rate(0.05),
        );
    let failure = Simulation::new(plan)
        .run_and_shrink(every_get_req_succeeds)
        .unwrap_err();
    assert!(failure.original.schedule.len() > 20, "{failure}");
    assert_eq!(failure.minimal.schedule.len(), 1, "{failure}");
    let only = &failure.minimal.schedule[0];
    assert_eq!(only.fault, InjectedFault::Drop);
    assert_eq!(only.call.callee, "svc4");
    assert!(
        failure.minimal.message.contains("S-UNAVAILABLE")
            || failure.minimal.message.contains("lost"),
        "{failure}"
    );

    let text = failure.to_string();
    assert!(
        text.contains("seed: 77 (replay with NANO_SIM_SEED=77)"),
        "{text}"
    );
    assert!(text.contains("1 of"), "{text}");
    assert!(text.contains("svc3 -> svc4 call #"), "{text}");
    assert!(text.contains(": dropped"), "{text}");
}

#[test]
fn check_panics_with_the_seed_and_the_shrunk_schedule() {
    let plan = FaultPlan::new(78).calls_to("svc3", EdgeFaults::new().drop_rate(0.1));
    let panic = std::panic::catch_unwind(|| Simulation::new(plan).check(every_get_req_succeeds))
        .unwrap_err();
    let message = panic.downcast_ref::<String>().unwrap();
    assert!(
        message.contains("simulation broke an invariant: GetReq #"),
        "{message}"
    );
    assert!(message.contains("NANO_SIM_SEED=78"), "{message}");
    assert!(
        message.contains("smallest fault schedule that still breaks it (1 of"),
        "{message}"
    );
}

#[test]
fn replaying_a_schedule_injects_exactly_that_schedule() {
    let plan = FaultPlan::new(79).calls_to("svc3", EdgeFaults::new().drop_rate(0.3));
    let simulation = Simulation::new(plan);
    let failure = simulation.run(every_get_req_succeeds).unwrap_err();
    let replayed = simulation
        .replay(&failure.schedule, every_get_req_succeeds)
        .unwrap_err();
    assert_eq!(replayed.schedule, failure.schedule);
    assert_eq!(replayed.message, failure.message);
    // An empty schedule injects nothing, so the invariant holds.
    let report = simulation.replay(&[], every_get_req_succeeds).unwrap();
    assert_eq!(report.faults.total(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_trace_snapshots_with_the_toolkit_helpers() {
    let plan = FaultPlan::new(21)
        .all_edges(EdgeFaults::new().latency(Latency::uniform(ms(10), ms(30))))
        .nth_call_to("svc4", 2, Fault::Drop);
    let sim = Network::new(plan);
    let svc2 = svc2_through(&sim, None);
    for _ in 0..2 {
        let _ = svc2.call(&sim.ctx(), svc2::GetReq {}).await;
    }
    sim.partition(&["svc1"]);
    let _ = svc2.call(&sim.ctx(), svc2::Req { param: "x".into() }).await;
    nano_test::snapshot!("sim_trace", sim.trace());
    nano_test::snapshot!("sim_report", sim.report());
}
