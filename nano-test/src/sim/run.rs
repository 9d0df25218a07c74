//! [`Simulation`]: runs a test body on a paused clock, reports the seed of a failure and shrinks
//! the injected faults to the few that matter.

use super::error::BoxError;
use std::any::Any;
use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use super::invariant::Invariants;
use super::network::Network;
use super::plan::FaultPlan;
use super::trace::{ScheduledFault, SimReport};

/// The environment variable that overrides the seed of every simulation, to replay a failure.
pub const SEED_ENV: &str = "NANO_SIM_SEED";

/// The most runs spent on shrinking one failure.
const MAX_SHRINK_RUNS: usize = 300;

/// The runner of a simulated test body (not the network itself, which is [`Network`]): per run,
/// a fresh single-threaded tokio runtime on a paused clock, a fresh [`Network`] following the
/// plan, and the test body, which builds its set with [`Network::hook`] and returns `Err` (or
/// panics) when an invariant breaks.
///
/// Invariants can also be named: [`invariant`](Simulation::invariant) adds a check of what the
/// body returns (its "world": the set, handles on fakes, what it observed), run after every run
/// whose body returned, and counted by name in the run's [`SimReport`].
///
/// When a run fails, [`check`](Simulation::check) replays it with subsets of the injected faults
/// until it finds a smallest schedule that still breaks the same invariant, and panics with the
/// invariant, the seed (replay with `NANO_SIM_SEED=<seed>`) and that schedule.
///
/// ```
/// use std::time::Duration;
/// use nano::ServiceSet;
/// use nano_test::sim::{EdgeFaults, FaultPlan, Latency, Simulation};
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
/// # fn main() {
/// let plan = FaultPlan::new(1)
///     .all_edges(EdgeFaults::new().latency(Latency::fixed(Duration::from_millis(200))));
/// // The body gets the `Network` of its run.
/// let report = Simulation::new(plan).check(|net| async move {
///     let set = ServiceSet::builder().service(greeter()).service(users()).hook(net.hook()).build()?;
///     let greeter = set.client("test", greeter::NAME)?;
///     for _ in 0..1000 {
///         greeter.call(&net.ctx(), Greet { user: "u1".into() }).await?;
///     }
///     Ok(())
/// });
/// // 1000 requests of 2 hops (test -> greeter -> users) at 2 x 200 ms each: 800 s of virtual time.
/// assert_eq!(report.virtual_time(), Duration::from_secs(800));
/// assert_eq!(report.calls, 2000);
/// # }
/// ```
pub struct Simulation<W = ()> {
    plan: FaultPlan,
    time_limit: Duration,
    replay_hint: Option<String>,
    invariants: Invariants<W>,
}

impl<W> Clone for Simulation<W> {
    fn clone(&self) -> Self {
        Simulation {
            plan: self.plan.clone(),
            time_limit: self.time_limit,
            replay_hint: self.replay_hint.clone(),
            invariants: self.invariants.clone(),
        }
    }
}

impl<W> fmt::Debug for Simulation<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Simulation")
            .field("plan", &self.plan)
            .field("time_limit", &self.time_limit)
            .field("replay_hint", &self.replay_hint)
            .field("invariants", &self.invariants)
            .finish()
    }
}

/// Why a simulated run failed.
#[derive(Clone, PartialEq, Eq)]
pub struct SimFailure {
    /// The broken invariant: the body's error or panic message, or the time limit.
    pub message: String,
    /// The seed of the failing run.
    pub seed: u64,
    /// The faults the failing run injected.
    pub schedule: Vec<ScheduledFault>,
    /// The summary of the failing run.
    pub report: SimReport,
}

impl fmt::Display for SimFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "simulation broke an invariant: {}", self.message)?;
        writeln!(
            f,
            "seed: {} (replay with {SEED_ENV}={})",
            self.seed, self.seed
        )?;
        write!(f, "run: {}", self.report)
    }
}

/// The readable report, also when a test returns this error with `?`.
impl fmt::Debug for SimFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for SimFailure {}

/// A failure reduced to a smallest fault schedule that still breaks the invariant.
#[derive(Clone, PartialEq, Eq)]
pub struct ShrunkFailure {
    /// The failure of the original run.
    pub original: SimFailure,
    /// A smallest schedule that still fails, and how the replay with it failed.
    pub minimal: SimFailure,
    /// How many replays shrinking took.
    pub runs: usize,
    /// How to run the failing simulation again (e.g. `NANO_SIM_SEED=7`).
    pub replay: String,
}

/// The readable report, also when a test returns this error with `?` (the test harness prints
/// the `Debug` form of a returned error).
impl fmt::Debug for ShrunkFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for ShrunkFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "simulation broke an invariant: {}",
            self.original.message
        )?;
        writeln!(
            f,
            "seed: {} (replay with {})",
            self.original.seed, self.replay
        )?;
        writeln!(f, "run: {}", self.original.report)?;
        if self.minimal.schedule.is_empty() {
            writeln!(
                f,
                "the invariant breaks without any injected fault: {}",
                self.minimal.message
            )?;
        } else {
            writeln!(
                f,
                "smallest fault schedule that still breaks it ({} of {} faults, found in {} \
                 replays): {}",
                self.minimal.schedule.len(),
                self.original.schedule.len(),
                self.runs,
                self.minimal.message
            )?;
            for fault in &self.minimal.schedule {
                writeln!(f, "  - {fault}")?;
            }
        }
        Ok(())
    }
}

impl<W> Simulation<W> {
    /// A simulation of `plan`. The seed is taken from `NANO_SIM_SEED` when that is set.
    ///
    /// `W` is what the body returns for the [invariants](Simulation::invariant) to look at; it is
    /// inferred from the body (`()` for a body that ends with `Ok(())`; a body that never returns
    /// `Ok` names it: `Simulation::<()>::new(plan)`).
    ///
    /// # Panics
    ///
    /// When `NANO_SIM_SEED` is set but is not a number.
    pub fn new(mut plan: FaultPlan) -> Self {
        if let Ok(seed) = std::env::var(SEED_ENV) {
            plan.seed = seed
                .trim()
                .parse()
                .unwrap_or_else(|_| panic!("{SEED_ENV} must be an unsigned integer, not {seed:?}"));
        }
        Self::exact(plan)
    }

    /// A simulation of `plan` with exactly the plan's seed, whatever `NANO_SIM_SEED` says: for
    /// tools that derive seeds themselves (and then say how to replay with
    /// [`replay_hint`](Simulation::replay_hint)).
    pub fn exact(plan: FaultPlan) -> Self {
        Simulation {
            plan,
            time_limit: Duration::from_secs(24 * 3600),
            replay_hint: None,
            invariants: Invariants::default(),
        }
    }

    /// Adds an invariant called `name`, checked after every run whose body returned `Ok`: `check`
    /// gets what the body returned and fails with `Err`. Every invariant is checked (one broken
    /// invariant does not hide another), in the order they were added, and counted by name in
    /// the run's [`SimReport::invariants`]; a run that breaks any fails with `name: why` for
    /// each, and shrinking keeps the faults that break one of the same invariants.
    ///
    /// Calls the checks make pass the simulated network untouched (no faults, no latency, no
    /// trace entries), so the faults under test cannot fail the check itself and the trace is
    /// the same with or without invariants. A service that is down after a crash is still down
    /// for them.
    ///
    /// Names must be unique within a simulation; a run with two invariants of one name fails.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use nano::ServiceSet;
    /// use nano_test::sim::{EdgeFaults, FaultPlan, Simulation};
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)] #[serde(default)]
    /// # pub struct Charge { pub order: u32 }
    /// # #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)] #[serde(default)]
    /// # pub struct Charged {}
    /// # mod billing { use super::*; nano::api! { service "billing"; fn charge(Charge) -> Charged = "billing.Charge", POST "/"; } }
    /// /// What the body hands to the invariants: every charge `billing` took.
    /// struct World { charges: Arc<Mutex<Vec<u32>>> }
    ///
    /// # fn main() {
    /// let plan = FaultPlan::new(5).calls_to("billing", EdgeFaults::new().duplicate_rate(0.5));
    /// let failure = Simulation::new(plan)
    ///     .invariant("one charge per order", async |world: &World| {
    ///         let mut charges = world.charges.lock().unwrap().clone();
    ///         charges.sort();
    ///         match charges.windows(2).find(|pair| pair[0] == pair[1]) {
    ///             Some(pair) => Err(format!("order {} was charged twice", pair[0]).into()),
    ///             None => Ok(()),
    ///         }
    ///     })
    ///     .run_and_shrink(|net| async move {
    ///         let charges = Arc::new(Mutex::new(Vec::new()));
    ///         let taken = Arc::clone(&charges);
    ///         // A billing service that charges whatever it is asked to, with no idempotency.
    ///         let billing = nano_test::request_fn(billing::NAME, move |_ctx, req: Charge| {
    ///             taken.lock().unwrap().push(req.order);
    ///             async { Ok(Charged {}) }
    ///         });
    ///         let set = ServiceSet::builder().service(billing).hook(net.hook()).build()?;
    ///         let client = set.client("shop", billing::NAME)?;
    ///         for order in 1..=10 {
    ///             client.call(&net.ctx(), Charge { order }).await?;
    ///         }
    ///         Ok(World { charges })
    ///     })
    ///     .unwrap_err();
    /// assert!(failure.original.message.starts_with("one charge per order: order "));
    /// assert_eq!(failure.original.report.invariant("one charge per order").unwrap().failed, 1);
    /// // Shrunk to the one duplicate delivery that charged an order twice.
    /// assert_eq!(failure.minimal.schedule.len(), 1);
    /// # }
    /// ```
    #[must_use]
    pub fn invariant<F>(mut self, name: impl Into<String>, check: F) -> Self
    where
        F: AsyncFn(&W) -> Result<(), BoxError> + Send + Sync + 'static,
    {
        self.invariants.add(name, check);
        self
    }

    /// How a failure report tells the user to replay the failing run (default:
    /// `NANO_SIM_SEED=<seed>`).
    #[must_use]
    pub fn replay_hint(mut self, hint: impl Into<String>) -> Self {
        self.replay_hint = Some(hint.into());
        self
    }

    /// Fails a run that takes longer than `limit` of virtual time (default: one day), which is
    /// how a call that hangs forever shows up.
    #[must_use]
    pub fn time_limit(mut self, limit: Duration) -> Self {
        self.time_limit = limit;
        self
    }

    /// The plan, with the seed in effect.
    pub fn plan(&self) -> &FaultPlan {
        &self.plan
    }

    /// Runs the body once with faults drawn from the plan.
    ///
    /// # Errors
    ///
    /// The failure when the body returns `Err`, panics or exceeds the time limit.
    pub fn run<F, Fut>(&self, body: F) -> Result<SimReport, Box<SimFailure>>
    where
        F: Fn(Network) -> Fut,
        Fut: Future<Output = Result<W, BoxError>>,
    {
        self.run_with(|| Network::new(self.plan.clone()), &body)
    }

    /// Runs the body once, injecting exactly `schedule`.
    ///
    /// # Errors
    ///
    /// As [`run`](Simulation::run).
    pub fn replay<F, Fut>(
        &self,
        schedule: &[ScheduledFault],
        body: F,
    ) -> Result<SimReport, Box<SimFailure>>
    where
        F: Fn(Network) -> Fut,
        Fut: Future<Output = Result<W, BoxError>>,
    {
        self.run_with(|| Network::replaying(self.plan.clone(), schedule), &body)
    }

    /// Runs the body; when it fails, shrinks the fault schedule.
    ///
    /// # Errors
    ///
    /// The original failure and a smallest schedule that reproduces one.
    pub fn run_and_shrink<F, Fut>(&self, body: F) -> Result<SimReport, Box<ShrunkFailure>>
    where
        F: Fn(Network) -> Fut,
        Fut: Future<Output = Result<W, BoxError>>,
    {
        let original = match self.run(&body) {
            Ok(report) => return Ok(report),
            Err(failure) => failure,
        };
        let (minimal, runs) = self.shrink(&original, &body);
        Err(Box::new(ShrunkFailure {
            original: *original,
            minimal,
            runs,
            replay: self
                .replay_hint
                .clone()
                .unwrap_or_else(|| format!("{SEED_ENV}={}", self.plan.seed)),
        }))
    }

    /// Runs the body and panics with the seed and a shrunk fault schedule when it fails, or when
    /// the plan was meant to inject faults and injected none.
    ///
    /// # Panics
    ///
    /// As described: this is the assertion for tests.
    pub fn check<F, Fut>(&self, body: F) -> SimReport
    where
        F: Fn(Network) -> Fut,
        Fut: Future<Output = Result<W, BoxError>>,
    {
        match self.run_and_shrink(body) {
            Ok(report) if report.no_faults_injected => panic!(
                "the fault plan injected no faults (seed {}, {} calls): the test exercised the \
                 happy path only",
                report.seed, report.calls
            ),
            Ok(report) => report,
            Err(failure) => panic!("{failure}"),
        }
    }

    fn run_with<F, Fut>(
        &self,
        make_sim: impl FnOnce() -> Network,
        body: &F,
    ) -> Result<SimReport, Box<SimFailure>>
    where
        F: Fn(Network) -> Fut,
        Fut: Future<Output = Result<W, BoxError>>,
    {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .map_err(|err| {
                Box::new(SimFailure {
                    message: format!("cannot start the simulation runtime: {err}"),
                    seed: self.plan.seed,
                    schedule: Vec::new(),
                    report: Network::report_before_start(self.plan.seed),
                })
            })?;
        let (sim, report, result) = runtime.block_on(async {
            let sim = make_sim();
            let declared = self.invariants.declare(&sim);
            let run = CatchUnwind(Box::pin(async {
                let world = body(sim.clone()).await?;
                let checked = self.invariants.check(&world, &sim).await;
                // Dropped here, on the runtime, with whatever tasks its services hold.
                drop(world);
                checked
            }));
            let limited = tokio::time::timeout(self.time_limit, run).await;
            let result = match limited {
                Err(_) => Err(format!(
                    "the run did not finish within {:?} of virtual time (a call that never \
                     returns and has no timeout?)",
                    self.time_limit
                )),
                Ok(Err(panic)) => Err(format!("panicked: {panic}")),
                Ok(Ok(result)) => result.map_err(|err| err.to_string()),
            };
            // A misuse of the simulator explains whatever failed after it, so it comes first.
            let result = match (declared, sim.problem()) {
                (Err(problem), _) | (_, Some(problem)) => Err(problem),
                _ => result,
            };
            // Virtual time exists only inside the runtime, so the report is taken here.
            let report = sim.report();
            (sim, report, result)
        });
        result.map(|()| report.clone()).map_err(|message| {
            Box::new(SimFailure {
                message,
                seed: self.plan.seed,
                schedule: sim.schedule(),
                report,
            })
        })
    }

    /// Delta debugging over the injected faults: keeps removing chunks of the schedule while the
    /// replay still fails (and, when named invariants broke, breaks one of them).
    fn shrink<F, Fut>(&self, original: &SimFailure, body: &F) -> (SimFailure, usize)
    where
        F: Fn(Network) -> Fut,
        Fut: Future<Output = Result<W, BoxError>>,
    {
        let runs = Cell::new(0);
        let wanted: Vec<&str> = original.report.broken_invariants().collect();
        // A smaller schedule that fails some other way is another bug, not this one.
        let same_failure = |failure: &SimFailure| {
            wanted.is_empty()
                || failure
                    .report
                    .broken_invariants()
                    .any(|name| wanted.contains(&name))
        };
        let attempt = |schedule: &[ScheduledFault]| {
            runs.set(runs.get() + 1);
            self.replay(schedule, body)
                .err()
                .map(|failure| *failure)
                .filter(|failure| same_failure(failure))
        };
        if let Some(failure) = attempt(&[]) {
            return (failure, 1);
        }
        let mut best = original.clone();
        // A replay of the full schedule may fail differently (or not at all) when the original
        // failure depended on something the schedule cannot express; fall back to the original.
        if let Some(failure) = attempt(&original.schedule) {
            best = failure;
        } else {
            return (best, 2);
        }
        let mut chunks = 2;
        while best.schedule.len() >= 2 && runs.get() < MAX_SHRINK_RUNS {
            let len = best.schedule.len();
            let size = len.div_ceil(chunks);
            let mut reduced = None;
            for start in (0..len).step_by(size) {
                let end = (start + size).min(len);
                let subset = &best.schedule[start..end];
                let complement: Vec<_> = best.schedule[..start]
                    .iter()
                    .chain(&best.schedule[end..])
                    .cloned()
                    .collect();
                if let Some(failure) = attempt(subset) {
                    reduced = Some((failure, 2));
                    break;
                }
                if chunks > 2
                    && let Some(failure) = attempt(&complement)
                {
                    reduced = Some((failure, chunks - 1));
                    break;
                }
                if runs.get() >= MAX_SHRINK_RUNS {
                    break;
                }
            }
            match reduced {
                Some((failure, next_chunks)) => {
                    best = failure;
                    chunks = next_chunks.max(2);
                }
                None if chunks >= len => break,
                None => chunks = (chunks * 2).min(len),
            }
        }
        // Single faults last: try dropping each one on its own.
        let mut index = 0;
        while index < best.schedule.len() && best.schedule.len() > 1 && runs.get() < MAX_SHRINK_RUNS
        {
            let mut without = best.schedule.clone();
            without.remove(index);
            match attempt(&without) {
                Some(failure) => best = failure,
                None => index += 1,
            }
        }
        (best, runs.get())
    }
}

impl Network {
    fn report_before_start(seed: u64) -> SimReport {
        SimReport {
            seed,
            calls: 0,
            virtual_us: 0,
            faults: Default::default(),
            trace_digest: String::new(),
            no_faults_injected: false,
            invariants: Vec::new(),
        }
    }
}

/// Turns a panic while polling the inner future into an `Err` with the panic message. The future
/// is boxed so it can be polled through a plain `&mut` without `unsafe` pin projection.
struct CatchUnwind<F>(Pin<Box<F>>);

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, String>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.0.as_mut();
        match catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(poll) => poll.map(Ok),
            Err(panic) => Poll::Ready(Err(panic_message(panic.as_ref()))),
        }
    }
}

/// The text of a panic payload (`panic!` with a literal or a formatted message).
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic without a message".to_owned()
    }
}
