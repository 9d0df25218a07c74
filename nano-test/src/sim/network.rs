//! [`Network`]: the simulated network, a [`ClientHook`] that decides the fate of every call.

use super::error::SimError;
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use nano::{
    AnyRequest, ClientHook, Ctx, Edge, NanoError, NewService, Outcome, Service, SharedService,
    codes,
};
use tokio::time::Instant;

use super::plan::{Fault, FaultPlan};
use super::restart::{self, Process};
use super::trace::{
    CallKey, FaultCounts, InjectedFault, InvariantCount, ScheduledFault, SimReport, TraceEntry,
    TraceOutcome, digest,
};

/// Where fault decisions come from.
enum Mode {
    /// Drawn from the plan and the seeded random source.
    Random,
    /// Taken from a fixed schedule (used to replay and shrink a failing run).
    Forced(HashMap<CallKey, Vec<InjectedFault>>),
}

struct State {
    plan: FaultPlan,
    rng: fastrand::Rng,
    mode: Mode,
    started: Instant,
    /// The virtual time of the latest call start or end, for reports taken outside the runtime.
    last_event: Instant,
    edge_calls: HashMap<(String, String), u64>,
    scripted_calls: Vec<u64>,
    partition: Vec<BTreeSet<String>>,
    trace: Vec<TraceEntry>,
    injected: Vec<ScheduledFault>,
    counts: FaultCounts,
    next_request_id: u64,
    /// While above zero, calls pass untouched and unrecorded: invariants are being checked.
    quiet: u32,
    /// The named invariants checked so far, in the order they were declared or first checked.
    invariants: Vec<InvariantCount>,
    /// The services that can crash, by name. Weak, because the set owns them: a set dropped
    /// after a run takes its services with it.
    restartable: HashMap<String, Weak<Process>>,
    /// Ways the test used the simulator that cannot work, such as a crash of a service the set
    /// cannot restart; each fails the run.
    problems: Vec<String>,
}

/// The simulated network of one run. Cheap to clone; clones share the state.
///
/// Put [`Network::hook`] on a set and every call between its services (and from the test into it)
/// goes through the simulated network: it is delayed, lost, cut off by partitions or failed as the
/// [`FaultPlan`] and the seed say, on tokio's clock. Run it on a paused clock (see
/// [`Simulation`](super::Simulation)) and thousands of calls with hundreds of milliseconds of
/// latency take milliseconds of wall time.
///
/// ```
/// use std::time::Duration;
/// use nano::{ServiceSet, codes};
/// use nano_test::sim::{EdgeFaults, FaultPlan, Latency, Network};
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)] #[serde(default)]
/// # pub struct Greet { pub user: String }
/// # #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)] #[serde(default)]
/// # pub struct Greeting { pub text: String }
/// # #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)] #[serde(default)]
/// # pub struct Lookup { pub id: String }
/// # #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)] #[serde(default)]
/// # pub struct User { pub name: String }
/// # mod greeter { use super::*; nano::api! { service "greeter"; fn greet(Greet) -> Greeting = "greeter.Greet", POST "/"; } }
/// # mod users { use super::*; nano::api! { service "users"; fn lookup(Lookup) -> User = "users.Lookup", POST "/"; } }
/// # struct Greeter { users: nano::Client }
/// # impl greeter::Handler for Greeter {
/// #     async fn greet(&self, ctx: &nano::Ctx, req: Greet) -> Result<Greeting, nano::NanoError> {
/// #         let user = self.users.call(ctx, Lookup { id: req.user }).await?;
/// #         Ok(Greeting { text: format!("hello {}", user.name) })
/// #     }
/// # }
/// # fn greeter() -> nano::NewService {
/// #     greeter::service(|deps| Ok(Greeter { users: deps.client(users::NAME)? }))
/// # }
/// # fn users() -> nano::NewService {
/// #     nano_test::request_fn(users::NAME, |_ctx, r: Lookup| async move {
/// #         Ok(User { name: r.id.to_uppercase() })
/// #     }).into()
/// # }
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), nano::NanoError> {
/// let net = Network::new(
///     FaultPlan::new(7).all_edges(EdgeFaults::new().latency(Latency::fixed(Duration::from_millis(200)))),
/// );
/// // `greeter()` and `users()` build two small services; `greeter` calls `users`.
/// let set = ServiceSet::builder().service(greeter()).service(users()).hook(net.hook()).build()?;
/// let greeter = set.client("test", greeter::NAME)?;
///
/// let resp = greeter.call(&net.ctx(), Greet { user: "u1".into() }).await?;
/// assert_eq!(resp.text, "hello U1");
/// // test -> greeter and greeter -> users, each 200 ms there and 200 ms back.
/// assert_eq!(net.elapsed(), Duration::from_millis(800));
///
/// net.partition(&["users"]);
/// let err = greeter.call(&net.ctx(), Greet { user: "u1".into() }).await.unwrap_err();
/// assert_eq!(err.code(), codes::UNAVAILABLE);
/// assert_eq!(net.counts().partitioned, 1);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Network {
    state: Arc<Mutex<State>>,
    seed: u64,
}

impl Network {
    /// A simulated network following `plan`, with the plan's seed.
    ///
    /// Must be created inside a tokio runtime: virtual time starts now.
    pub fn new(plan: FaultPlan) -> Self {
        Self::with_mode(plan, Mode::Random)
    }

    /// A network that injects exactly `schedule` and nothing else (no random faults, no latency
    /// beyond the schedule, partitions only where scheduled).
    pub fn replaying(plan: FaultPlan, schedule: &[ScheduledFault]) -> Self {
        let mut forced: HashMap<CallKey, Vec<InjectedFault>> = HashMap::new();
        for entry in schedule {
            forced
                .entry(entry.call.clone())
                .or_default()
                .push(entry.fault.clone());
        }
        Self::with_mode(plan, Mode::Forced(forced))
    }

    fn with_mode(plan: FaultPlan, mode: Mode) -> Self {
        let seed = plan.seed;
        let scripted_calls = vec![0; plan.scripted.len()];
        Network {
            state: Arc::new(Mutex::new(State {
                rng: fastrand::Rng::with_seed(seed),
                plan,
                mode,
                started: Instant::now(),
                last_event: Instant::now(),
                edge_calls: HashMap::new(),
                scripted_calls,
                partition: Vec::new(),
                trace: Vec::new(),
                injected: Vec::new(),
                counts: FaultCounts::default(),
                next_request_id: 0,
                quiet: 0,
                invariants: Vec::new(),
                restartable: HashMap::new(),
                problems: Vec::new(),
            })),
            seed,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state half-updated in a way that
        // matters for reporting, so keep going with the data.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The seed of this run.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The client hook that routes calls through this network.
    pub fn hook(&self) -> impl ClientHook + use<> {
        let sim = self.clone();
        move |edge: &Edge, next: SharedService| {
            SharedService::new(SimulatedEdge {
                sim: sim.clone(),
                edge: edge.clone(),
                next,
            })
        }
    }

    /// A root context with a request id derived from the seed, so that traces and recordings of
    /// a simulation are reproducible (a `Ctx::new()` id is random).
    pub fn ctx(&self) -> Ctx {
        let mut state = self.lock();
        state.next_request_id += 1;
        Ctx::with_request_id(format!("{:016x}{:016x}", self.seed, state.next_request_id))
    }

    /// Cuts `group` off from every other service: calls between a service in `group` and one
    /// outside fail with `S-UNAVAILABLE` until [`heal`](Network::heal). Callers that are not services
    /// (a test) are outside every group.
    pub fn partition(&self, group: &[&str]) {
        self.partition_groups(&[group]);
    }

    /// Splits the network into `groups`; services in no group form one more group of their own.
    pub fn partition_groups(&self, groups: &[&[&str]]) {
        self.lock().partition = groups
            .iter()
            .map(|group| group.iter().map(|name| (*name).to_owned()).collect())
            .collect();
    }

    /// Removes every partition.
    pub fn heal(&self) {
        self.lock().partition.clear();
    }

    /// The service `make` builds, able to crash and restart: add what this returns to the set
    /// instead of `make()` itself, and the plan's crash faults
    /// ([`Fault::Crash`](super::Fault::Crash), [`EdgeFaults::crash_rate`](super::EdgeFaults))
    /// can crash it, or [`crash`](Network::crash) can.
    ///
    /// A crash fails every call in flight at the service with `S-UNAVAILABLE` (what a caller
    /// sees over a wire when the process at the other end dies), drops their work, and throws
    /// the instance away with its in-memory state. The service is rebuilt at once by calling
    /// `make` again, with the clients of the same dependencies (still behind every hook of the
    /// set); after the down time, calls reach the new instance. State kept outside the service
    /// (a database file, another service) survives, as it would survive a real restart.
    ///
    /// `make` must build the same service each time: a restarted instance that asks for a
    /// dependency the first one did not fails to restart, and the service stays down.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use std::sync::Arc;
    /// use nano::{ServiceSet, codes};
    /// use nano_test::sim::{FaultPlan, Network};
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)] #[serde(default)]
    /// # pub struct Count {}
    /// # #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)] #[serde(default)]
    /// # pub struct Counted { pub instance: u64, pub calls: u64 }
    /// # mod counter { use super::*; nano::api! { service "counter"; fn count(Count) -> Counted = "counter.Count", POST "/"; } }
    /// # struct Counter { instance: u64, calls: AtomicU64 }
    /// # impl counter::Handler for Counter {
    /// #     async fn count(&self, _ctx: &nano::Ctx, _req: Count) -> Result<Counted, nano::NanoError> {
    /// #         Ok(Counted { instance: self.instance, calls: self.calls.fetch_add(1, Ordering::Relaxed) + 1 })
    /// #     }
    /// # }
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), nano::NanoError> {
    /// // `counter` counts its calls in memory; each instance knows which one it is.
    /// let instances = Arc::new(AtomicU64::new(0));
    /// let net = Network::new(FaultPlan::new(1));
    /// let counter = net.restartable(move || {
    ///     let instance = instances.fetch_add(1, Ordering::Relaxed) + 1;
    ///     counter::service(move |_| Ok(Counter { instance, calls: AtomicU64::new(0) }))
    /// });
    /// let set = ServiceSet::builder().service(counter).hook(net.hook()).build()?;
    /// let client = set.client("test", counter::NAME)?;
    /// client.call(&net.ctx(), Count {}).await?;
    /// assert_eq!(client.call(&net.ctx(), Count {}).await?, Counted { instance: 1, calls: 2 });
    ///
    /// net.crash(counter::NAME, std::time::Duration::ZERO).unwrap();
    /// // The new instance starts from its constructor: its count is gone.
    /// assert_eq!(client.call(&net.ctx(), Count {}).await?, Counted { instance: 2, calls: 1 });
    /// # Ok(()) }
    /// ```
    pub fn restartable(&self, make: impl Fn() -> NewService + Send + Sync + 'static) -> NewService {
        restart::restartable(self.clone(), make)
    }

    /// Crashes the restartable service `name` now, as a [`Fault::Crash`](super::Fault::Crash)
    /// does: calls in flight at it fail with `S-UNAVAILABLE`, it is rebuilt from its
    /// constructor, and calls reach the new instance once `down` has passed (before that they
    /// fail with `S-UNAVAILABLE`). Counted as a crash.
    ///
    /// # Errors
    ///
    /// When no set of this network runs `name` through [`restartable`](Network::restartable).
    pub fn crash(&self, name: &str, down: Duration) -> Result<(), SimError> {
        let process = self.lock().restartable.get(name).and_then(Weak::upgrade);
        let Some(process) = process else {
            return Err(SimError::new(format!(
                "cannot crash {name}: no set runs it through Network::restartable"
            )));
        };
        self.lock().counts.crashed += 1;
        // Outside the network's lock: rebuilding runs the service's constructor.
        process.crash(down);
        Ok(())
    }

    pub(crate) fn register_restartable(&self, name: &str, process: &Arc<Process>) {
        self.lock()
            .restartable
            .insert(name.to_owned(), Arc::downgrade(process));
    }

    /// Calls made while the guard lives pass the network untouched: no faults, no latency, no
    /// trace entry, no call count (so the calls after it keep their [`CallKey`]s). This is how
    /// invariants look at a system without the faults they check failing their own calls.
    pub(crate) fn quiet(&self) -> Quiet<'_> {
        self.lock().quiet += 1;
        Quiet(self)
    }

    /// Lists an invariant in the report before it is first checked.
    pub(crate) fn declare_invariant(&self, name: &str) {
        let mut state = self.lock();
        if !state.invariants.iter().any(|count| count.name == name) {
            state.invariants.push(InvariantCount {
                name: name.to_owned(),
                passed: 0,
                failed: 0,
            });
        }
    }

    /// Counts one check of the invariant `name`.
    pub(crate) fn count_invariant(&self, name: &str, held: bool) {
        self.declare_invariant(name);
        let mut state = self.lock();
        if let Some(count) = state.invariants.iter_mut().find(|c| c.name == name) {
            if held {
                count.passed += 1;
            } else {
                count.failed += 1;
            }
        }
    }

    /// The first way the test used the simulator that cannot work, if any.
    pub(crate) fn problem(&self) -> Option<String> {
        self.lock().problems.first().cloned()
    }

    /// Virtual time since the network was created. Outside the runtime (where virtual time does
    /// not exist) this is the time of the latest call event.
    pub fn elapsed(&self) -> Duration {
        self.lock().elapsed()
    }

    /// Faults injected so far, by kind.
    pub fn counts(&self) -> FaultCounts {
        self.lock().counts
    }

    /// Every call so far, in the order they started.
    pub fn trace(&self) -> Vec<TraceEntry> {
        self.lock().trace.clone()
    }

    /// Every fault injected so far, in the order of the calls: the schedule that
    /// [`Network::replaying`] replays.
    pub fn schedule(&self) -> Vec<ScheduledFault> {
        self.lock().injected.clone()
    }

    /// The summary of the run so far.
    pub fn report(&self) -> SimReport {
        let state = self.lock();
        let trace_json = serde_json::to_vec(&state.trace).unwrap_or_default();
        let wanted_faults = match &state.mode {
            Mode::Random => state.plan.injects_faults(),
            Mode::Forced(schedule) => !schedule.is_empty(),
        };
        SimReport {
            seed: self.seed,
            calls: state.trace.len() as u64,
            virtual_us: state.elapsed().as_micros() as u64,
            faults: state.counts,
            trace_digest: digest(&trace_json),
            no_faults_injected: wanted_faults && state.counts.total() == 0,
            invariants: state.invariants.clone(),
        }
    }

    /// Fails when the plan was meant to inject faults and injected none, so that a chaos test
    /// cannot pass by accident.
    ///
    /// # Errors
    ///
    /// A message with the seed and the counts.
    pub fn check_faults_injected(&self) -> Result<(), SimError> {
        let report = self.report();
        if report.no_faults_injected {
            return Err(SimError::new(format!(
                "the fault plan injected no faults in {} calls (seed {}): the test exercised the \
                 happy path only",
                report.calls, report.seed
            )));
        }
        Ok(())
    }

    /// Decides what happens to a call that starts now and records its start; `None` for a call
    /// that passes quietly.
    fn begin(&self, edge: &Edge, request: &str) -> Option<Decision> {
        let mut guard = self.lock();
        let state = &mut *guard;
        if state.quiet > 0 {
            return None;
        }
        let (caller, callee) = (edge.caller(), edge.callee());
        let nth = {
            let count = state
                .edge_calls
                .entry((caller.to_owned(), callee.to_owned()))
                .or_insert(0);
            *count += 1;
            *count
        };
        let key = CallKey {
            caller: caller.to_owned(),
            callee: callee.to_owned(),
            nth,
        };
        let faults = match &state.mode {
            Mode::Forced(schedule) => schedule.get(&key).cloned().unwrap_or_default(),
            Mode::Random => state.draw_faults(caller, callee),
        };
        let timeout = state.plan.faults_of(caller, callee).timeout;
        for fault in &faults {
            let counts = &mut state.counts;
            match fault {
                InjectedFault::Latency { .. } | InjectedFault::Delay { .. } => counts.delayed += 1,
                InjectedFault::Drop => counts.dropped += 1,
                InjectedFault::Partitioned => counts.partitioned += 1,
                InjectedFault::Error { .. } => counts.errored += 1,
                InjectedFault::Hang => counts.hung += 1,
                InjectedFault::LoseResponse => counts.responses_lost += 1,
                InjectedFault::Duplicate => counts.duplicated += 1,
                InjectedFault::Crash { .. } => counts.crashed += 1,
            }
            state.injected.push(ScheduledFault {
                call: key.clone(),
                fault: fault.clone(),
            });
        }
        let seq = state.trace.len() as u64;
        let now = state.now_us();
        state.trace.push(TraceEntry {
            seq,
            call: key,
            request: request.to_owned(),
            start_us: now,
            end_us: now,
            outcome: TraceOutcome::Abandoned,
            faults: faults.clone(),
            timed_out: false,
        });
        Some(Decision {
            seq,
            faults,
            timeout,
        })
    }

    /// Crashes `callee` as a call from `caller` reaches it, and gives that call its error.
    fn crash_on_call(&self, caller: &str, callee: &str, down: Duration) -> NanoError {
        let process = self.lock().restartable.get(callee).and_then(Weak::upgrade);
        match process {
            Some(process) => {
                process.crash(down);
                NanoError::unavailable(format!(
                    "{callee} crashed as the request from {caller} reached it"
                ))
            }
            None => {
                let problem = format!(
                    "the plan crashes {callee}, but the set does not run it through \
                     Network::restartable"
                );
                self.lock().problems.push(problem.clone());
                NanoError::internal(problem)
            }
        }
    }

    fn finish(&self, seq: u64, outcome: TraceOutcome, timed_out: bool) {
        let mut state = self.lock();
        let now = state.now_us();
        if timed_out {
            state.counts.timed_out += 1;
        }
        if let Some(entry) = state.trace.get_mut(seq as usize) {
            entry.end_us = now;
            entry.outcome = outcome;
            entry.timed_out = timed_out;
        }
    }
}

impl fmt::Debug for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Network")
            .field("seed", &self.seed)
            .field("counts", &self.counts())
            .finish()
    }
}

impl State {
    fn elapsed(&self) -> Duration {
        if tokio::runtime::Handle::try_current().is_ok() {
            self.started.elapsed()
        } else {
            self.last_event - self.started
        }
    }

    /// Microseconds of virtual time now, remembered as the latest event.
    fn now_us(&mut self) -> u64 {
        self.last_event = Instant::now();
        (self.last_event - self.started).as_micros() as u64
    }

    /// The faults the plan and the random source give a call along `caller → callee`.
    fn draw_faults(&mut self, caller: &str, callee: &str) -> Vec<InjectedFault> {
        let mut faults = Vec::new();
        for (index, scripted) in self.plan.scripted.iter().enumerate() {
            if scripted.matches(caller, callee) {
                self.scripted_calls[index] += 1;
                if self.scripted_calls[index] == scripted.nth {
                    faults.push(match &scripted.fault {
                        Fault::Drop => InjectedFault::Drop,
                        Fault::Delay { ms } => InjectedFault::Delay {
                            us: ms.as_micros() as u64,
                        },
                        Fault::Error { code, message } => InjectedFault::Error {
                            code: code.clone(),
                            message: message.clone(),
                        },
                        Fault::Hang => InjectedFault::Hang,
                        Fault::LoseResponse => InjectedFault::LoseResponse,
                        Fault::Duplicate => InjectedFault::Duplicate,
                        Fault::Crash { down_ms } => InjectedFault::Crash {
                            down_us: down_ms.as_micros() as u64,
                        },
                    });
                }
            }
        }
        if self.partitioned(caller, callee) {
            faults.push(InjectedFault::Partitioned);
            return faults;
        }
        let edge = self.plan.faults_of(caller, callee).clone();
        let request = edge.latency.sample(&mut self.rng);
        let response = edge.latency.sample(&mut self.rng);
        if !request.is_zero() || !response.is_zero() {
            faults.push(InjectedFault::Latency {
                request_us: request.as_micros() as u64,
                response_us: response.as_micros() as u64,
            });
        }
        if edge.drop_rate > 0.0 && self.rng.f64() < edge.drop_rate {
            faults.push(InjectedFault::Drop);
        }
        // The faults that need the request to reach the callee are drawn only for requests
        // that do, so that counts never report a fault that could not happen. A rate of zero
        // draws nothing, which keeps the random sequence of plans without these faults as it was.
        let reaches_callee = |faults: &[InjectedFault]| {
            !faults.iter().any(|fault| {
                matches!(
                    fault,
                    InjectedFault::Drop
                        | InjectedFault::Error { .. }
                        | InjectedFault::Hang
                        | InjectedFault::Crash { .. }
                )
            })
        };
        if reaches_callee(&faults) && edge.crash_rate > 0.0 && self.rng.f64() < edge.crash_rate {
            faults.push(InjectedFault::Crash { down_us: 0 });
        }
        if reaches_callee(&faults) {
            if edge.duplicate_rate > 0.0 && self.rng.f64() < edge.duplicate_rate {
                faults.push(InjectedFault::Duplicate);
            }
            if edge.lose_response_rate > 0.0 && self.rng.f64() < edge.lose_response_rate {
                faults.push(InjectedFault::LoseResponse);
            }
        }
        faults
    }

    fn partitioned(&self, caller: &str, callee: &str) -> bool {
        if self.partition.is_empty() {
            return false;
        }
        let group_of = |name: &str| self.partition.iter().position(|group| group.contains(name));
        group_of(caller) != group_of(callee)
    }
}

/// While it lives, calls pass the network quietly; see [`Network::quiet`].
pub(crate) struct Quiet<'a>(&'a Network);

impl Drop for Quiet<'_> {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.quiet = state.quiet.saturating_sub(1);
    }
}

/// What the network does to one call.
struct Decision {
    seq: u64,
    faults: Vec<InjectedFault>,
    timeout: Option<Duration>,
}

/// Records the end of a call, or that the caller abandoned it when dropped unfinished.
struct CallRecord<'a> {
    sim: &'a Network,
    seq: u64,
    finished: bool,
}

impl CallRecord<'_> {
    fn finish(mut self, outcome: &Outcome, timed_out: bool) {
        self.finished = true;
        let outcome = match outcome {
            Ok(_) => TraceOutcome::Ok,
            Err(err) => TraceOutcome::Error {
                code: err.code().to_owned(),
            },
        };
        self.sim.finish(self.seq, outcome, timed_out);
    }
}

impl Drop for CallRecord<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.sim.finish(self.seq, TraceOutcome::Abandoned, false);
        }
    }
}

/// The simulated network between one caller and one callee.
struct SimulatedEdge {
    sim: Network,
    edge: Edge,
    next: SharedService,
}

impl SimulatedEdge {
    async fn deliver(&self, faults: &[InjectedFault], ctx: Ctx, req: AnyRequest) -> Outcome {
        let mut request_delay = Duration::ZERO;
        let mut response_delay = Duration::ZERO;
        for fault in faults {
            match fault {
                InjectedFault::Partitioned => {
                    return Err(NanoError::unavailable(format!(
                        "{} cannot reach {}: network partition",
                        self.edge.caller(),
                        self.edge.callee()
                    )));
                }
                InjectedFault::Latency {
                    request_us,
                    response_us,
                } => {
                    request_delay += Duration::from_micros(*request_us);
                    response_delay += Duration::from_micros(*response_us);
                }
                InjectedFault::Delay { us } => request_delay += Duration::from_micros(*us),
                _ => {}
            }
        }
        sleep(request_delay).await;
        let (caller, callee) = (self.edge.caller(), self.edge.callee());
        for fault in faults {
            match fault {
                InjectedFault::Drop => {
                    return Err(NanoError::unavailable(format!(
                        "request from {caller} to {callee} was lost"
                    )));
                }
                InjectedFault::Error { code, message } => {
                    return Err(NanoError::new(code.clone(), message.clone()));
                }
                InjectedFault::Hang => std::future::pending::<()>().await,
                InjectedFault::Crash { down_us } => {
                    let down = Duration::from_micros(*down_us);
                    return Err(self.sim.crash_on_call(caller, callee, down));
                }
                _ => {}
            }
        }
        if faults.contains(&InjectedFault::Duplicate) {
            // The first copy's answer never reaches the caller, which is why the request is sent
            // again: the callee handles it, and the copy travels the request leg once more.
            let _first = self.next.handle(ctx.clone(), req.clone()).await;
            sleep(request_delay).await;
        }
        let outcome = self.next.handle(ctx, req).await;
        sleep(response_delay).await;
        if faults.contains(&InjectedFault::LoseResponse) {
            return Err(NanoError::unavailable(format!(
                "the response from {callee} to {caller} was lost"
            )));
        }
        outcome
    }
}

async fn sleep(duration: Duration) {
    if !duration.is_zero() {
        tokio::time::sleep(duration).await;
    }
}

impl Service for SimulatedEdge {
    fn name(&self) -> &str {
        self.next.name()
    }

    async fn handle(&self, ctx: Ctx, req: AnyRequest) -> Outcome {
        let Some(decision) = self.sim.begin(&self.edge, req.name()) else {
            return self.next.handle(ctx, req).await;
        };
        let record = CallRecord {
            sim: &self.sim,
            seq: decision.seq,
            finished: false,
        };
        let delivered = self.deliver(&decision.faults, ctx, req);
        let (outcome, timed_out) = match decision.timeout {
            None => (delivered.await, false),
            Some(timeout) => match tokio::time::timeout(timeout, delivered).await {
                Ok(outcome) => (outcome, false),
                Err(_) => (
                    Err(NanoError::new(
                        codes::TIMEOUT,
                        format!(
                            "{} gave up on {} after {} ms",
                            self.edge.caller(),
                            self.edge.callee(),
                            timeout.as_millis()
                        ),
                    )),
                    true,
                ),
            },
        };
        record.finish(&outcome, timed_out);
        outcome
    }
}
