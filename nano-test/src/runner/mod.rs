//! The scenario runner as a library (feature `runner`): the whole command line — the parity
//! run of every recorded scenario in every deployment, `record`, `replay`, `show` and `chaos` —
//! over any [`System`].
//!
//! A crate gets the runner of its own system with a few lines:
//!
//! ```no_run
//! # fn my_system() -> nano_server::System { nano_server::System::new("mine") }
//! fn main() -> std::process::ExitCode {
//!     nano_test::runner::Runner::new(my_system())
//!         .scenario_dir("scenarios")
//!         .build_with_cargo("my-servers")
//!         .main()
//! }
//! ```
//!
//! The deployments of the table come from the system: in-process, in-process with
//! [`TransportFidelity`](crate::TransportFidelity), then one column per layout, its server
//! executables started as child processes ([`deploy`](crate::deploy)). Paths are resolved at run
//! time, never baked in at compile time: a relative scenario directory or chaos plan is looked
//! up in the working directory and then in each of its parents, and `--dir` / `--plan`
//! override them.

mod catalog;
mod chaos;
mod deployments;
mod harness;
mod live;
mod out;
mod record;
mod report;
mod run;
mod show;
#[cfg(test)]
mod test_system;

pub use chaos::{ChaosRequest, generic_plan};
pub use harness::Trial;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use nano_server::System;

use crate::sim::BoxError;
use crate::sim::invariant::Invariants;

/// The runner of one system: what it runs, where its files are and how its server executables
/// are built.
#[derive(Debug, Clone)]
pub struct Runner {
    system: System,
    scenario_dir: PathBuf,
    chaos_plan: Option<PathBuf>,
    cargo_package: Option<String>,
    root_service: Option<String>,
    caller: String,
    command: Option<String>,
    invariants: Invariants<ChaosRequest>,
}

impl Runner {
    /// The runner of `system`, with scenarios in `scenarios/` and no chaos plan file (the
    /// generic plan of [`chaos`](Runner::chaos_plan) applies).
    pub fn new(system: System) -> Self {
        Runner {
            system,
            scenario_dir: PathBuf::from("scenarios"),
            chaos_plan: None,
            cargo_package: None,
            root_service: None,
            caller: "test_client".to_owned(),
            command: None,
            invariants: Invariants::default(),
        }
    }

    /// Where the scenario files are (`--dir` overrides it). A relative path is looked up in the
    /// working directory, then in each of its parents.
    #[must_use]
    pub fn scenario_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.scenario_dir = dir.into();
        self
    }

    /// The fault plan `chaos` uses without `--plan`, a JSON file looked up like the scenario
    /// directory. Without one, `chaos` uses a generic plan: latency, lost calls and transport
    /// timeouts on every edge.
    #[must_use]
    pub fn chaos_plan(mut self, file: impl Into<PathBuf>) -> Self {
        self.chaos_plan = Some(file.into());
        self
    }

    /// Builds the server executables with `cargo build -p PACKAGE --bins` (in the profile the
    /// runner was built in) before starting a layout, when the runner itself runs through
    /// cargo; otherwise they are looked up beside the runner's executable.
    #[must_use]
    pub fn build_with_cargo(mut self, package: impl Into<String>) -> Self {
        self.cargo_package = Some(package.into());
        self
    }

    /// The service `record` sends its request to without `--service`.
    #[must_use]
    pub fn root_service(mut self, service: impl Into<String>) -> Self {
        self.root_service = Some(service.into());
        self
    }

    /// The caller `record` records as without `--caller` (default `test_client`).
    #[must_use]
    pub fn caller(mut self, caller: impl Into<String>) -> Self {
        self.caller = caller.into();
        self
    }

    /// An invariant of the system, called `name`, that `chaos` checks after every request it
    /// sends, after its own: `check` gets the finished [`ChaosRequest`] (the scenario, the root's
    /// outcome, the calls it caused, clients of the set that served it) and fails with `Err`.
    /// `chaos` lists it with its own invariants, counts how often it held and broke, and shrinks
    /// a run that breaks it to the faults that matter.
    ///
    /// ```no_run
    /// use nano_test::CallOutcome;
    /// use nano_test::runner::{ChaosRequest, Runner};
    /// # fn my_system() -> nano_server::System { nano_server::System::new("mine") }
    ///
    /// fn main() -> std::process::ExitCode {
    ///     Runner::new(my_system())
    ///         .invariant("an order that succeeds names its id", async |request: &ChaosRequest| {
    ///             match request.outcome() {
    ///                 CallOutcome::Response(body) if body.to_value()["id"].is_null() => {
    ///                     Err(format!("{} answered without an id", request.scenario().name).into())
    ///                 }
    ///                 _ => Ok(()),
    ///             }
    ///         })
    ///         .main()
    /// }
    /// ```
    #[must_use]
    pub fn invariant<F>(mut self, name: impl Into<String>, check: F) -> Self
    where
        F: AsyncFn(&ChaosRequest) -> Result<(), BoxError> + Send + Sync + 'static,
    {
        self.invariants.add(name, check);
        self
    }

    /// How users start this runner, for the commands it suggests, e.g.
    /// `cargo run --release -p scenarios --` (default: the executable's name).
    #[must_use]
    pub fn command(mut self, command: impl Into<String>) -> Self {
        self.command = Some(command.into());
        self
    }

    /// Runs the command line of this process and returns the exit code: 0 when everything
    /// passed, 1 on a difference, 2 on an error (printed to stderr), 141 when stdout closed.
    pub fn main(self) -> ExitCode {
        self.main_from(std::env::args_os())
    }

    /// Runs the command line `args` (the program name first).
    pub fn main_from<I, T>(self, args: I) -> ExitCode
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let mut args: Vec<OsString> = args.into_iter().map(Into::into).collect();
        let program = args
            .first()
            .and_then(|p| Path::new(p).file_stem())
            .map_or_else(
                || "scenarios".to_owned(),
                |s| s.to_string_lossy().into_owned(),
            );
        if args.is_empty() {
            args.push(program.clone().into());
        }
        let command = self.command.clone().unwrap_or_else(|| program.clone());
        let about = format!(
            "Replays the recorded scenarios of {} in every deployment — in-process, in-process \
             with transport fidelity, and each of its layouts ({}) as real processes on \
             loopback — and prints a table of the results. Exits non-zero on any difference.",
            self.system.name(),
            self.system
                .layouts()
                .iter()
                .map(|l| l.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        let after_help = format!(
            "Examples:\n  {command}                                replay everything everywhere\n  \
             {command} --filter NAME --junit target/scenarios.xml\n  \
             {command} show SCENARIO\n  \
             {command} record --update SCENARIO\n  \
             {command} chaos --seed 7"
        );
        let matches = Cli::command()
            .name(program)
            .about(about)
            .after_help(after_help)
            .try_get_matches_from(args);
        let cli = match matches.and_then(|m| Cli::from_arg_matches(&m)) {
            Ok(cli) => cli,
            Err(err) => {
                let _ = err.print();
                return ExitCode::from(if err.use_stderr() { 2 } else { 0 });
            }
        };
        let config = Config {
            runner: self,
            command,
        };
        let result = match cli.command {
            None => run::main(cli.run, &config),
            Some(Command::Run(args)) => run::main(args, &config),
            Some(Command::Record(args)) => record::main(args, &config),
            Some(Command::Replay(args)) => live::main(args, &config),
            Some(Command::Show(args)) => show::main(args, &config),
            Some(Command::Chaos(args)) => chaos::main(args, &config),
        };
        match result {
            Ok(code) => code,
            // The reader of stdout went away: nothing to say, and nobody to say it to.
            Err(err) if out::is_closed_pipe(&err) => ExitCode::from(out::CLOSED_EXIT_CODE),
            Err(err) => {
                out::stderr(format_args!("error: {err:#}\n"));
                ExitCode::from(2)
            }
        }
    }
}

/// What the commands read: the runner's settings and how it was started.
pub(crate) struct Config {
    runner: Runner,
    /// How to start the runner again, for suggested commands.
    command: String,
}

impl Config {
    pub(crate) fn system(&self) -> &System {
        &self.runner.system
    }

    /// `--dir`, or the configured scenario directory.
    pub(crate) fn dir(&self, flag: Option<&PathBuf>) -> PathBuf {
        flag.cloned()
            .unwrap_or_else(|| resolve(&self.runner.scenario_dir))
    }

    /// The configured chaos plan file, resolved.
    pub(crate) fn chaos_plan(&self) -> Option<PathBuf> {
        self.runner.chaos_plan.as_deref().map(resolve)
    }

    pub(crate) fn cargo_package(&self) -> Option<&str> {
        self.runner.cargo_package.as_deref()
    }

    pub(crate) fn root_service(&self) -> Option<&str> {
        self.runner.root_service.as_deref()
    }

    pub(crate) fn caller(&self) -> &str {
        &self.runner.caller
    }

    pub(crate) fn command(&self) -> &str {
        &self.command
    }

    /// The system's invariants, for `chaos`.
    pub(crate) fn invariants(&self) -> &Invariants<ChaosRequest> {
        &self.runner.invariants
    }
}

/// A relative `path` in the working directory or the nearest of its parents that has it; the
/// working directory's when none does (so that the error names the expected place).
fn resolve(path: &Path) -> PathBuf {
    if path.is_absolute() {
        return path.to_owned();
    }
    let cwd = std::env::current_dir().unwrap_or_default();
    cwd.ancestors()
        .map(|dir| dir.join(path))
        .find(|candidate| candidate.exists())
        .unwrap_or_else(|| cwd.join(path))
}

#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    #[command(flatten)]
    run: run::RunArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Replay every scenario in every deployment (what runs without a command).
    Run(run::RunArgs),
    /// Record a scenario: a request against the in-process set or a layout of real servers with
    /// recording on, a re-recording of an existing scenario, or the fragments servers wrote.
    Record(record::RecordArgs),
    /// Replay one scenario file against a running deployment over HTTP.
    Replay(live::ReplayArgs),
    /// Print a scenario's call tree as text and as a Mermaid sequence diagram.
    Show(show::ShowArgs),
    /// Replay every scenario under a seeded fault plan and check the invariants that must hold
    /// whatever the network does.
    Chaos(chaos::ChaosArgs),
}

/// A fresh directory under the system's temporary directory, removed when dropped (also when a
/// command fails half-way).
pub(crate) struct ScratchDir(PathBuf);

impl ScratchDir {
    pub(crate) fn new(prefix: &str) -> std::io::Result<ScratchDir> {
        let dir = std::env::temp_dir().join(format!("{prefix}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        Ok(ScratchDir(dir))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
