//! Generated requests and async properties over proptest.
//!
//! - [`Property`] runs an async property: `.run(test).await` inside `#[tokio::test]`,
//!   `.run_blocking(test)` in a plain `#[test]` (or anywhere else). Failing cases shrink and are
//!   persisted to `proptest-regressions/` exactly like `proptest!` does, and persisted cases run
//!   first next time.
//! - [`Calls`] builds a strategy of [`GeneratedCall`]s (a service and a request) from
//!   per-request-type strategies, e.g. `any::<R>()` of a type deriving `proptest_derive::Arbitrary`.
//! - [`answers_or_coded_error`] and [`same_outcome`] are ready-made properties.

mod calls;
mod checks;

use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, Location};

use futures_util::FutureExt;
use proptest::arbitrary::any;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{
    Config, PersistedSeed, RngAlgorithm, TestCaseError, TestRng, TestRunner,
};

pub use calls::{Calls, GeneratedCall};
pub use checks::{answers_or_coded_error, same_outcome};

/// An async property over the values of a strategy.
///
/// ```
/// use nano_test::property::Property;
/// use proptest::prelude::*;
///
/// // In a plain #[test]; inside #[tokio::test] use `.run(...).await`.
/// Property::new(any::<u32>()).cases(32).run_blocking(|n| async move {
///     let doubled = u64::from(n) * 2;
///     prop_assert_eq!(doubled % 2, 0);
///     Ok(())
/// });
/// ```
pub struct Property<S> {
    strategy: S,
    config: Config,
}

impl<S: Strategy> Property<S> {
    /// A property over `strategy` with proptest's default config (which honours `PROPTEST_CASES`
    /// and the other `PROPTEST_*` variables). Failures persist next to the calling source file.
    #[track_caller]
    pub fn new(strategy: S) -> Self {
        let config = Config {
            source_file: Some(Location::caller().file()),
            ..Config::default()
        };
        Property { strategy, config }
    }

    /// Uses `config`; its `source_file` defaults to the caller of [`Property::new`].
    #[must_use]
    pub fn config(mut self, config: Config) -> Self {
        let source_file = self.config.source_file;
        self.config = config;
        if self.config.source_file.is_none() {
            self.config.source_file = source_file;
        }
        self
    }

    /// Runs `cases` generated cases.
    #[must_use]
    pub fn cases(mut self, cases: u32) -> Self {
        self.config.cases = cases;
        self
    }

    /// Runs the property and panics with the minimal failing case.
    ///
    /// # Panics
    ///
    /// When the property fails.
    pub async fn run<F, Fut>(self, test: F)
    where
        F: Fn(S::Value) -> Fut,
        Fut: Future<Output = Result<(), TestCaseError>>,
    {
        if let Err(failure) = self.check(test).await {
            panic!("{failure}");
        }
    }

    /// Runs the property.
    ///
    /// Persisted failures run first, then `cases` new ones; a failing case is shrunk (by
    /// proptest's value trees, up to `max_shrink_iters` steps) and its seed persisted. A panic in
    /// the test counts as a failure.
    ///
    /// # Errors
    ///
    /// A [`PropertyFailure`] with the minimal failing input.
    pub async fn check<F, Fut>(self, test: F) -> Result<(), PropertyFailure>
    where
        F: Fn(S::Value) -> Fut,
        Fut: Future<Output = Result<(), TestCaseError>>,
    {
        let mut config = self.config;
        let mut master = TestRunner::new(config.clone());
        let persisted = config
            .failure_persistence
            .as_ref()
            .map(|p| p.load_persisted_failures2(config.source_file))
            .unwrap_or_default();
        for seed in persisted {
            // Seeds of other algorithms (written by other tools) cannot be replayed here.
            let Some((algorithm, bytes)) = parse_seed(&seed) else {
                continue;
            };
            let rng = TestRng::from_seed(algorithm, &bytes);
            run_case(&self.strategy, &config, rng, &test, 0, true).await?;
        }
        let mut passed = 0;
        let mut rejected = 0;
        while passed < config.cases {
            let (seed, rng) = fresh_seed(&mut master, config.rng_algorithm);
            match run_case(&self.strategy, &config, rng, &test, passed, false).await {
                Ok(CaseResult::Passed) => passed += 1,
                Ok(CaseResult::Rejected) => {
                    rejected += 1;
                    if rejected > config.max_global_rejects {
                        return Err(PropertyFailure {
                            reason: format!(
                                "too many rejected cases ({rejected}) after {passed} passed"
                            ),
                            minimal_input: None,
                            passed,
                            shrink_steps: 0,
                        });
                    }
                }
                Err(failure) => {
                    if let (Some(persistence), Some(input), Some(seed)) = (
                        config.failure_persistence.as_mut(),
                        failure.minimal_input.as_ref(),
                        seed,
                    ) {
                        persistence.save_persisted_failure2(
                            config.source_file,
                            seed,
                            &DebugText(input),
                        );
                    }
                    return Err(failure);
                }
            }
        }
        Ok(())
    }
}

impl<S> Property<S>
where
    S: Strategy + Send,
{
    /// Runs the property from synchronous code, e.g. a plain `#[test]`, and panics with the
    /// minimal failing case. Outside a tokio runtime it makes one; inside one (a sync function
    /// called from `#[tokio::test]`) it runs on a helper thread with its own runtime, since the
    /// caller's thread cannot block on it.
    ///
    /// # Panics
    ///
    /// When the property fails.
    pub fn run_blocking<F, Fut>(self, test: F)
    where
        F: Fn(S::Value) -> Fut + Send,
        Fut: Future<Output = Result<(), TestCaseError>>,
    {
        if let Err(failure) = self.check_blocking(test) {
            panic!("{failure}");
        }
    }

    /// Like [`run_blocking`](Property::run_blocking), returning the failure.
    ///
    /// # Errors
    ///
    /// A [`PropertyFailure`] with the minimal failing input.
    pub fn check_blocking<F, Fut>(self, test: F) -> Result<(), PropertyFailure>
    where
        F: Fn(S::Value) -> Fut + Send,
        Fut: Future<Output = Result<(), TestCaseError>>,
    {
        let run = move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|err| PropertyFailure {
                    reason: format!("cannot start a tokio runtime: {err}"),
                    minimal_input: None,
                    passed: 0,
                    shrink_steps: 0,
                })?;
            runtime.block_on(self.check(test))
        };
        if tokio::runtime::Handle::try_current().is_err() {
            return run();
        }
        std::thread::scope(|scope| match scope.spawn(run).join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        })
    }
}

impl<S> fmt::Debug for Property<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Property")
            .field("cases", &self.config.cases)
            .field("source_file", &self.config.source_file)
            .finish()
    }
}

/// Why a property failed: the reason, the minimal failing input and how far it got.
#[derive(Clone, PartialEq, Eq)]
pub struct PropertyFailure {
    /// The failing test's message (or panic message).
    pub reason: String,
    /// The shrunk failing input, `Debug`-printed; `None` when no case failed (e.g. too many
    /// rejections).
    pub minimal_input: Option<String>,
    /// How many new cases passed before the failure.
    pub passed: u32,
    /// How many shrinking steps ran.
    pub shrink_steps: u32,
}

/// The readable report, also when a test returns this error with `?` (the test harness prints
/// the `Debug` form of a returned error).
impl fmt::Debug for PropertyFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for PropertyFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "property failed after {} passing cases: {}",
            self.passed, self.reason
        )?;
        if let Some(input) = &self.minimal_input {
            write!(
                f,
                "\nminimal failing input (after {} shrink steps): {input}",
                self.shrink_steps
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for PropertyFailure {}

/// Prints a pre-rendered `Debug` text as is (persistence files show it after `# shrinks to`).
struct DebugText<'a>(&'a str);

impl fmt::Debug for DebugText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

enum CaseResult {
    Passed,
    Rejected,
}

/// Random bytes drawn from the master runner through a strategy, so that no `rand` trait has to
/// be in scope (proptest's re-exports of them changed between its minor versions).
fn random_bytes<const N: usize>(master: &mut TestRunner) -> [u8; N]
where
    [u8; N]: proptest::arbitrary::Arbitrary,
{
    any::<[u8; N]>()
        .new_tree(master)
        .map(|tree| tree.current())
        .unwrap_or([0; N])
}

/// A new per-case seed from the master RNG, in a form that can be persisted.
fn fresh_seed(
    master: &mut TestRunner,
    algorithm: RngAlgorithm,
) -> (Option<PersistedSeed>, TestRng) {
    match algorithm {
        RngAlgorithm::XorShift => {
            let bytes: [u8; 16] = random_bytes(master);
            let words: Vec<String> = bytes
                .chunks(4)
                .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]).to_string())
                .collect();
            let seed = format!("xs {}", words.join(" ")).parse().ok();
            (seed, TestRng::from_seed(RngAlgorithm::XorShift, &bytes))
        }
        _ => {
            let bytes: [u8; 32] = random_bytes(master);
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            let seed = format!("cc {hex}").parse().ok();
            (seed, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes))
        }
    }
}

/// The algorithm and seed bytes of a persisted seed we can replay.
fn parse_seed(seed: &PersistedSeed) -> Option<(RngAlgorithm, Vec<u8>)> {
    let text = seed.to_string();
    let mut parts = text.split_whitespace();
    match parts.next()? {
        "cc" => {
            let hex = parts.next()?;
            let bytes: Option<Vec<u8>> = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
                .collect();
            bytes
                .filter(|b| b.len() == 32)
                .map(|b| (RngAlgorithm::ChaCha, b))
        }
        "xs" => {
            let mut bytes = Vec::with_capacity(16);
            for word in parts {
                bytes.extend(word.parse::<u32>().ok()?.to_le_bytes());
            }
            (bytes.len() == 16).then_some((RngAlgorithm::XorShift, bytes))
        }
        _ => None,
    }
}

/// What one run of the test gave.
enum Verdict {
    Pass,
    Reject,
    Fail(String),
}

async fn judge<V, F, Fut>(test: &F, value: V) -> Verdict
where
    F: Fn(V) -> Fut,
    Fut: Future<Output = Result<(), TestCaseError>>,
{
    // Building the future may panic too, not only polling it.
    let run = AssertUnwindSafe(async { test(value).await }).catch_unwind();
    match run.await {
        Ok(Ok(())) => Verdict::Pass,
        Ok(Err(TestCaseError::Reject(_))) => Verdict::Reject,
        Ok(Err(TestCaseError::Fail(reason))) => Verdict::Fail(reason.message().to_owned()),
        Err(panic) => Verdict::Fail(format!("the test panicked: {}", panic_message(&*panic))),
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "a non-string panic payload".to_owned())
}

/// Generates one case with `rng`, tests it and shrinks it when it fails.
async fn run_case<S, F, Fut>(
    strategy: &S,
    config: &Config,
    rng: TestRng,
    test: &F,
    passed: u32,
    persisted: bool,
) -> Result<CaseResult, PropertyFailure>
where
    S: Strategy,
    F: Fn(S::Value) -> Fut,
    Fut: Future<Output = Result<(), TestCaseError>>,
{
    let mut runner = TestRunner::new_with_rng(config.clone(), rng);
    let mut tree = strategy
        .new_tree(&mut runner)
        .map_err(|reason| PropertyFailure {
            reason: format!("the strategy gave up: {reason}"),
            minimal_input: None,
            passed,
            shrink_steps: 0,
        })?;
    let mut reason = match judge(test, tree.current()).await {
        Verdict::Pass => return Ok(CaseResult::Passed),
        Verdict::Reject => return Ok(CaseResult::Rejected),
        Verdict::Fail(reason) => reason,
    };
    // Shrink as proptest's runner does: simplify while the case still fails, complicate back
    // when a simplification passes.
    let mut steps = 0;
    if tree.simplify() {
        loop {
            if steps >= config.max_shrink_iters() {
                // Out of steps: go back to the most recent failing value.
                while tree.complicate() {}
                break;
            }
            steps += 1;
            match judge(test, tree.current()).await {
                Verdict::Fail(why) => {
                    reason = why;
                    if !tree.simplify() {
                        break;
                    }
                }
                Verdict::Pass | Verdict::Reject => {
                    if !tree.complicate() {
                        break;
                    }
                }
            }
        }
    }
    let origin = if persisted {
        " (a persisted failure)"
    } else {
        ""
    };
    Err(PropertyFailure {
        reason: format!("{reason}{origin}"),
        minimal_input: Some(format!("{:?}", tree.current())),
        passed,
        shrink_steps: steps,
    })
}
