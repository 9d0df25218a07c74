//! The faults that break real systems, each on its own, on small services with state: a lost
//! response, duplicate delivery, a crash and restart; and named invariants.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nano::{Client, Ctx, NanoError, NewService, ServiceSet, codes};
use nano_test::sim::{
    BoxError, EdgeFaults, Fault, FaultPlan, InjectedFault, Latency, Network, Simulation,
    TraceOutcome,
};
use serde::{Deserialize, Serialize};

/// Appends an entry; answers which instance of the ledger took it and how many it holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Record {
    /// The entry.
    pub entry: String,
}

/// What a [`Record`] or [`Slow`] found.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Recorded {
    /// Which instance of the ledger answered, from 1.
    pub instance: u64,
    /// How many entries it holds.
    pub held: usize,
}

/// The entries, in the order they were recorded.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct List {}

/// The answer to [`List`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Entries {
    /// Which instance of the ledger answered, from 1.
    pub instance: u64,
    /// Its entries.
    pub entries: Vec<String>,
}

/// Takes `ms` of virtual time to answer: a call that stays in flight.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Slow {
    /// How long, in milliseconds.
    pub ms: u64,
}

/// What `audit` is told of every entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Note {
    /// The entry.
    pub entry: String,
}

mod ledger {
    use super::*;
    nano::api! {
        service "ledger";
        fn record(Record) -> Recorded = "ledger.Record", POST "/";
        fn list(List) -> Entries = "ledger.List", POST "/list";
        fn slow(Slow) -> Recorded = "ledger.Slow", POST "/slow";
    }
}

mod audit {
    use super::*;
    nano::api! { service "audit"; fn note(Note) -> () = "audit.Note", POST "/"; }
}

/// A ledger kept in memory: what a crash loses.
struct Ledger {
    instance: u64,
    entries: Mutex<Vec<String>>,
    audit: Option<Client>,
}

impl ledger::Handler for Ledger {
    async fn record(&self, ctx: &Ctx, req: Record) -> Result<Recorded, NanoError> {
        if let Some(audit) = &self.audit {
            audit
                .call(
                    ctx,
                    Note {
                        entry: req.entry.clone(),
                    },
                )
                .await?;
        }
        let mut entries = self.entries.lock().unwrap();
        entries.push(req.entry);
        Ok(Recorded {
            instance: self.instance,
            held: entries.len(),
        })
    }

    async fn list(&self, _ctx: &Ctx, _req: List) -> Result<Entries, NanoError> {
        Ok(Entries {
            instance: self.instance,
            entries: self.entries.lock().unwrap().clone(),
        })
    }

    async fn slow(&self, _ctx: &Ctx, req: Slow) -> Result<Recorded, NanoError> {
        tokio::time::sleep(Duration::from_millis(req.ms)).await;
        Ok(Recorded {
            instance: self.instance,
            held: self.entries.lock().unwrap().len(),
        })
    }
}

/// The constructor of a ledger, numbering the instances it builds from 1; with `audit`, each
/// instance asks for a client of `audit` and tells it of every entry.
fn ledgers(audit: bool) -> impl Fn() -> NewService + Send + Sync + 'static {
    let built = Arc::new(AtomicU64::new(0));
    move || {
        let instance = built.fetch_add(1, Ordering::Relaxed) + 1;
        ledger::service(move |deps| {
            Ok(Ledger {
                instance,
                entries: Mutex::new(Vec::new()),
                audit: if audit {
                    Some(deps.client(audit::NAME)?)
                } else {
                    None
                },
            })
        })
    }
}

/// An `audit` that counts its notes.
fn audit_counting(notes: Arc<AtomicU64>) -> NewService {
    nano_test::request_fn(audit::NAME, move |_ctx, _note: Note| {
        notes.fetch_add(1, Ordering::Relaxed);
        async { Ok(()) }
    })
    .into()
}

/// A set with a (plain) ledger behind the simulated network, and its client for the test.
fn ledger_through(net: &Network) -> (ServiceSet, Client) {
    let set = ServiceSet::builder()
        .service(ledgers(false)())
        .hook(net.hook())
        .build()
        .unwrap();
    let client = set.client("test", ledger::NAME).unwrap();
    (set, client)
}

fn record(entry: &str) -> Record {
    Record {
        entry: entry.into(),
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[tokio::test(start_paused = true)]
async fn a_lost_response_leaves_the_effects_and_gives_the_caller_the_transport_error() {
    let net = Network::new(FaultPlan::new(1).nth_call_to(ledger::NAME, 2, Fault::LoseResponse));
    let (_set, ledger) = ledger_through(&net);
    ledger.call(&net.ctx(), record("a")).await.unwrap();
    let err = ledger.call(&net.ctx(), record("b")).await.unwrap_err();
    assert_eq!(err.code(), codes::UNAVAILABLE);
    assert_eq!(err.message(), "the response from ledger to test was lost");
    // The ledger took "b" all the same.
    let listed = ledger.call(&net.ctx(), List {}).await.unwrap();
    assert_eq!(listed.entries, ["a", "b"]);

    assert_eq!(net.counts().responses_lost, 1);
    let trace = net.trace();
    assert_eq!(trace[1].faults, [InjectedFault::LoseResponse]);
    assert_eq!(
        trace[1].outcome,
        TraceOutcome::Error {
            code: codes::UNAVAILABLE.into()
        }
    );
    assert!(trace[1].failed_by_network());
    assert!(!trace[0].failed_by_network() && !trace[2].failed_by_network());
}

#[tokio::test(start_paused = true)]
async fn every_response_lost_at_rate_one_and_every_request_still_acted_on() {
    let plan = FaultPlan::new(2).calls_to(
        ledger::NAME,
        EdgeFaults::new()
            .latency(Latency::fixed(ms(5)))
            .lose_response_rate(1.0),
    );
    let net = Network::new(plan);
    let (set, ledger) = ledger_through(&net);
    for entry in ["a", "b", "c"] {
        let err = ledger.call(&net.ctx(), record(entry)).await.unwrap_err();
        assert_eq!(err.code(), codes::UNAVAILABLE);
    }
    assert_eq!(net.counts().responses_lost, 3);
    // Straight to the service, past the network: all three are there.
    let direct = set.service(ledger::NAME).unwrap();
    let listed = direct
        .handle(net.ctx(), nano::AnyRequest::new(List {}))
        .await
        .unwrap();
    let listed: Entries = listed.downcast().unwrap();
    assert_eq!(listed.entries, ["a", "b", "c"]);
}

#[tokio::test(start_paused = true)]
async fn a_duplicate_delivery_runs_the_callee_twice_and_the_caller_gets_the_second_answer() {
    let net = Network::new(FaultPlan::new(3).nth_call_to(ledger::NAME, 1, Fault::Duplicate));
    let (_set, ledger) = ledger_through(&net);
    let answer = ledger.call(&net.ctx(), record("a")).await.unwrap();
    // The second copy found the first one's entry.
    assert_eq!(answer.held, 2);
    let listed = ledger.call(&net.ctx(), List {}).await.unwrap();
    assert_eq!(listed.entries, ["a", "a"]);
    assert_eq!(net.counts().duplicated, 1);
    // One call as the caller sees it, one entry in the trace.
    let trace = net.trace();
    assert_eq!(trace.len(), 2);
    assert_eq!(trace[0].faults, [InjectedFault::Duplicate]);
    assert_eq!(trace[0].outcome, TraceOutcome::Ok);
    assert!(!trace[0].failed_by_network());
}

#[tokio::test(start_paused = true)]
async fn a_duplicate_reaches_the_callee_s_own_calls_twice() {
    // The ledger tells audit of each entry: a duplicate of the ledger's request means two notes,
    // and two calls on the ledger -> audit edge.
    let notes = Arc::new(AtomicU64::new(0));
    let net = Network::new(FaultPlan::new(4).nth_call_to(ledger::NAME, 1, Fault::Duplicate));
    let set = ServiceSet::builder()
        .service(ledgers(true)())
        .service(audit_counting(Arc::clone(&notes)))
        .hook(net.hook())
        .build()
        .unwrap();
    let ledger = set.client("test", ledger::NAME).unwrap();
    ledger.call(&net.ctx(), record("a")).await.unwrap();
    assert_eq!(notes.load(Ordering::Relaxed), 2);
    let calls: Vec<String> = net.trace().iter().map(|e| e.call.to_string()).collect();
    assert_eq!(
        calls,
        [
            "test -> ledger call #1",
            "ledger -> audit call #1",
            "ledger -> audit call #2"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_crash_fails_the_calls_in_flight_rebuilds_the_state_and_later_calls_reach_the_new_instance()
 {
    // Calls: two records, a slow call that is still running when the 4th call crashes the
    // ledger, then calls to the new instance.
    let plan = FaultPlan::new(5).nth_call_to(
        ledger::NAME,
        4,
        Fault::Crash {
            down_ms: Duration::ZERO,
        },
    );
    let net = Network::new(plan);
    let set = ServiceSet::builder()
        .service(net.restartable(ledgers(false)))
        .hook(net.hook())
        .build()
        .unwrap();
    let ledger = set.client("test", ledger::NAME).unwrap();
    ledger.call(&net.ctx(), record("a")).await.unwrap();
    let before = ledger.call(&net.ctx(), record("b")).await.unwrap();
    assert_eq!(
        before,
        Recorded {
            instance: 1,
            held: 2
        }
    );

    let slow_ctx = net.ctx();
    let (in_flight, crashing) = tokio::join!(ledger.call(&slow_ctx, Slow { ms: 100 }), async {
        tokio::time::sleep(ms(10)).await;
        ledger.call(&net.ctx(), record("c")).await
    });
    let in_flight = in_flight.unwrap_err();
    assert_eq!(in_flight.code(), codes::UNAVAILABLE);
    assert_eq!(
        in_flight.message(),
        "ledger crashed while handling the call"
    );
    let crashing = crashing.unwrap_err();
    assert_eq!(crashing.code(), codes::UNAVAILABLE);
    assert_eq!(
        crashing.message(),
        "ledger crashed as the request from test reached it"
    );

    // The new instance was built by the constructor: what the old one held is gone.
    let after = ledger.call(&net.ctx(), List {}).await.unwrap();
    assert_eq!(
        after,
        Entries {
            instance: 2,
            entries: vec![]
        }
    );
    let next = ledger.call(&net.ctx(), record("d")).await.unwrap();
    assert_eq!(
        next,
        Recorded {
            instance: 2,
            held: 1
        }
    );
    assert_eq!(net.counts().crashed, 1);
    let trace = net.trace();
    assert_eq!(trace[3].faults, [InjectedFault::Crash { down_us: 0 }]);
    assert!(trace[3].failed_by_network());
    // The slow call failed by the crash, not by a fault of its own.
    assert!(trace[2].faults.is_empty());
    assert_eq!(
        trace[2].outcome,
        TraceOutcome::Error {
            code: codes::UNAVAILABLE.into()
        }
    );
}

#[tokio::test(start_paused = true)]
async fn a_crashed_service_is_down_for_its_down_time_and_keeps_its_dependencies() {
    let notes = Arc::new(AtomicU64::new(0));
    let plan = FaultPlan::new(6).nth_call_to(ledger::NAME, 2, Fault::Crash { down_ms: ms(50) });
    let net = Network::new(plan);
    let set = ServiceSet::builder()
        .service(net.restartable(ledgers(true)))
        .service(audit_counting(Arc::clone(&notes)))
        .hook(net.hook())
        .build()
        .unwrap();
    // The set knows the dependency the ledger asked for while it was built.
    assert_eq!(
        set.dependencies(ledger::NAME),
        Some(&["audit".to_owned()][..])
    );
    let ledger = set.client("test", ledger::NAME).unwrap();
    ledger.call(&net.ctx(), record("a")).await.unwrap();
    let crashed = ledger.call(&net.ctx(), record("b")).await.unwrap_err();
    assert_eq!(crashed.code(), codes::UNAVAILABLE);

    let down = ledger.call(&net.ctx(), record("c")).await.unwrap_err();
    assert_eq!(down.code(), codes::UNAVAILABLE);
    assert_eq!(
        down.message(),
        "ledger is down: it crashed and has not restarted yet"
    );
    tokio::time::sleep(ms(60)).await;
    let back = ledger.call(&net.ctx(), record("d")).await.unwrap();
    assert_eq!(
        back,
        Recorded {
            instance: 2,
            held: 1
        }
    );
    // The new instance tells audit through the same client, behind the simulated network.
    assert_eq!(notes.load(Ordering::Relaxed), 2);
    let audited: Vec<u64> = net
        .trace()
        .iter()
        .filter(|entry| entry.call.callee == audit::NAME)
        .map(|entry| entry.call.nth)
        .collect();
    assert_eq!(audited, [1, 2]);
}

#[tokio::test(start_paused = true)]
async fn a_test_can_crash_a_restartable_service_itself() {
    let net = Network::new(FaultPlan::new(7));
    let (_set, plain) = ledger_through(&net);
    let err = net.crash(ledger::NAME, Duration::ZERO).unwrap_err();
    assert_eq!(
        err.message(),
        "cannot crash ledger: no set runs it through Network::restartable"
    );
    drop(plain);

    let set = ServiceSet::builder()
        .service(net.restartable(ledgers(false)))
        .hook(net.hook())
        .build()
        .unwrap();
    let ledger = set.client("test", ledger::NAME).unwrap();
    ledger.call(&net.ctx(), record("a")).await.unwrap();
    net.crash(ledger::NAME, Duration::ZERO).unwrap();
    let listed = ledger.call(&net.ctx(), List {}).await.unwrap();
    assert_eq!((listed.instance, listed.entries.len()), (2, 0));
    assert_eq!(net.counts().crashed, 1);
}

#[test]
fn a_plan_that_crashes_a_service_the_set_cannot_restart_fails_the_run_saying_so() {
    let plan = FaultPlan::new(8).nth_call_to(
        ledger::NAME,
        1,
        Fault::Crash {
            down_ms: Duration::ZERO,
        },
    );
    let failure = Simulation::new(plan)
        .run(|net| async move {
            let (_set, ledger) = ledger_through(&net);
            // The body shrugs the error off; the run fails anyway.
            let _ = ledger.call(&net.ctx(), record("a")).await;
            Ok(())
        })
        .unwrap_err();
    assert_eq!(
        failure.message,
        "the plan crashes ledger, but the set does not run it through Network::restartable"
    );
}

/// Records 30 entries through a lossy, duplicating, crashing network and returns the trace's
/// digest.
fn digest_of(seed: u64) -> String {
    let plan = FaultPlan::new(seed).calls_to(
        ledger::NAME,
        EdgeFaults::new()
            .latency(Latency::uniform(ms(1), ms(20)))
            .lose_response_rate(0.2)
            .duplicate_rate(0.2)
            .crash_rate(0.1),
    );
    Simulation::new(plan)
        .run(|net| async move {
            let set = ServiceSet::builder()
                .service(net.restartable(ledgers(false)))
                .hook(net.hook())
                .build()?;
            let ledger = set.client("test", ledger::NAME)?;
            for i in 0..30 {
                let _ = ledger.call(&net.ctx(), record(&i.to_string())).await;
            }
            let counts = net.counts();
            if counts.responses_lost == 0 || counts.duplicated == 0 || counts.crashed == 0 {
                return Err(format!("not every new fault was drawn: {counts}").into());
            }
            Ok(())
        })
        .unwrap()
        .trace_digest
}

#[test]
fn the_new_faults_are_drawn_from_the_seed() {
    let first = digest_of(40);
    assert_eq!(first, digest_of(40));
    assert_ne!(first, digest_of(41));
}

/// What the body of the invariant tests hands to the invariants.
struct World {
    ledger: Client,
    net: Network,
    /// The entries whose `Record` the test saw succeed.
    acknowledged: Vec<String>,
}

const NO_DUPLICATES: &str = "every entry is recorded once";
const ACKNOWLEDGED_KEPT: &str = "every acknowledged entry is in the ledger";

/// Lists the ledger's entries through the world's client.
async fn entries(world: &World) -> Result<Vec<String>, BoxError> {
    Ok(world.ledger.call(&world.net.ctx(), List {}).await?.entries)
}

fn ledger_simulation(plan: FaultPlan) -> Simulation<World> {
    Simulation::new(plan)
        .invariant(NO_DUPLICATES, async |world: &World| {
            let mut entries = entries(world).await?;
            let total = entries.len();
            entries.sort();
            entries.dedup();
            if entries.len() == total {
                Ok(())
            } else {
                Err(format!("{} entries recorded twice", total - entries.len()).into())
            }
        })
        .invariant(ACKNOWLEDGED_KEPT, async |world: &World| {
            let entries = entries(world).await?;
            match world.acknowledged.iter().find(|e| !entries.contains(e)) {
                Some(missing) => Err(format!("entry {missing} is missing").into()),
                None => Ok(()),
            }
        })
}

async fn record_ten(net: Network) -> Result<World, BoxError> {
    let set = ServiceSet::builder()
        .service(ledgers(false)())
        .hook(net.hook())
        .build()?;
    let ledger = set.client("test", ledger::NAME)?;
    let mut acknowledged = Vec::new();
    for i in 0..10 {
        let entry = format!("e{i}");
        if ledger.call(&net.ctx(), record(&entry)).await.is_ok() {
            acknowledged.push(entry);
        }
    }
    Ok(World {
        ledger,
        net,
        acknowledged,
    })
}

#[test]
fn named_invariants_are_checked_after_every_run_and_reported_with_counts() {
    // Every request and response between the test and the ledger is lost: the invariants'
    // own calls pass all the same, and nothing was acknowledged.
    let plan = FaultPlan::new(9).all_edges(EdgeFaults::new().drop_rate(1.0));
    let report = ledger_simulation(plan).check(record_ten);
    let counts: Vec<_> = report
        .invariants
        .iter()
        .map(|c| (c.name.as_str(), c.passed, c.failed))
        .collect();
    assert_eq!(counts, [(NO_DUPLICATES, 1, 0), (ACKNOWLEDGED_KEPT, 1, 0)]);
    // The checks' calls are not in the trace.
    assert_eq!(report.calls, 10);
    assert!(
        report
            .to_string()
            .contains(r#"invariant "every entry is recorded once" passed 1, failed 0"#),
        "{report}"
    );
}

#[test]
fn a_broken_named_invariant_is_reported_by_name_and_shrunk_to_the_duplicate() {
    let plan = FaultPlan::new(10).calls_to(
        ledger::NAME,
        EdgeFaults::new()
            .latency(Latency::uniform(ms(1), ms(9)))
            .lose_response_rate(0.3)
            .duplicate_rate(0.2),
    );
    let failure = ledger_simulation(plan)
        .run_and_shrink(record_ten)
        .unwrap_err();
    assert!(
        failure
            .original
            .message
            .starts_with("every entry is recorded once: "),
        "{failure}"
    );
    let broken: Vec<_> = failure.original.report.broken_invariants().collect();
    assert_eq!(broken, [NO_DUPLICATES]);
    let kept = failure
        .original
        .report
        .invariant(ACKNOWLEDGED_KEPT)
        .unwrap();
    assert_eq!((kept.passed, kept.failed), (1, 0));
    // Latency and lost responses do not record twice; one duplicate does.
    assert!(failure.original.schedule.len() > 5, "{failure}");
    assert_eq!(failure.minimal.schedule.len(), 1, "{failure}");
    assert_eq!(failure.minimal.schedule[0].fault, InjectedFault::Duplicate);
    assert_eq!(
        failure.minimal.message,
        "every entry is recorded once: 1 entries recorded twice"
    );
    let text = failure.to_string();
    assert!(
        text.contains("seed: 10 (replay with NANO_SIM_SEED=10)"),
        "{text}"
    );
    assert!(text.contains("test -> ledger call #"), "{text}");
    assert!(text.contains(": delivered twice"), "{text}");
}

#[test]
fn shrinking_keeps_to_the_invariant_that_broke() {
    // A second invariant that only a schedule without the duplicate breaks: a smaller schedule
    // breaking it is another failure, which shrinking must not wander off to.
    const FAILURES_COME_WITH_DUPLICATES: &str = "a failed call comes with a duplicate";
    let plan = FaultPlan::new(11)
        .nth_call_to(ledger::NAME, 2, Fault::LoseResponse)
        .nth_call_to(ledger::NAME, 5, Fault::Duplicate)
        .nth_call_to(ledger::NAME, 8, Fault::LoseResponse);
    let failure = ledger_simulation(plan)
        .invariant(FAILURES_COME_WITH_DUPLICATES, async |world: &World| {
            let mut entries = entries(world).await?;
            let total = entries.len();
            entries.sort();
            entries.dedup();
            let failed = 10 - world.acknowledged.len();
            if failed > 0 && entries.len() == total {
                Err(format!("{failed} calls failed without a duplicate").into())
            } else {
                Ok(())
            }
        })
        .run_and_shrink(record_ten)
        .unwrap_err();
    let broken: Vec<_> = failure.original.report.broken_invariants().collect();
    assert_eq!(broken, [NO_DUPLICATES]);
    // A lost response alone breaks the other invariant; the shrunk schedule is the duplicate.
    assert_eq!(failure.minimal.schedule.len(), 1, "{failure}");
    assert_eq!(failure.minimal.schedule[0].fault, InjectedFault::Duplicate);
    assert_eq!(failure.minimal.schedule[0].call.nth, 5);
}

#[test]
fn check_panics_naming_the_broken_invariant() {
    let plan = FaultPlan::new(12).nth_call_to(ledger::NAME, 3, Fault::Duplicate);
    let panic = std::panic::catch_unwind(|| ledger_simulation(plan).check(record_ten)).unwrap_err();
    let message = panic.downcast_ref::<String>().unwrap();
    assert!(
        message.contains(
            "simulation broke an invariant: every entry is recorded once: 1 entries recorded twice"
        ),
        "{message}"
    );
    assert!(message.contains("NANO_SIM_SEED=12"), "{message}");
    assert!(
        message.contains("test -> ledger call #3: delivered twice"),
        "{message}"
    );
}

#[test]
fn two_invariants_of_one_name_fail_the_run() {
    let failure = Simulation::new(FaultPlan::new(13))
        .invariant("same", async |_: &()| Ok(()))
        .invariant("same", async |_: &()| Ok(()))
        .run(|_net| async { Ok(()) })
        .unwrap_err();
    assert_eq!(failure.message, r#"two invariants are named "same""#);
}

#[test]
fn the_plan_format_document_s_examples_load_as_plans() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/fault-plan-format.md");
    let text = std::fs::read_to_string(path).unwrap();
    let mut loaded = 0;
    for block in text.split("```json").skip(1) {
        let json = block.split("```").next().unwrap();
        let plan = FaultPlan::from_json(json).unwrap_or_else(|err| panic!("{err}:\n{json}"));
        assert!(plan.injects_faults() && plan.may_crash());
        loaded += 1;
    }
    assert_eq!(loaded, 1);
}
