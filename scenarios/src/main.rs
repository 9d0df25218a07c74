//! The scenario runner: replays every recorded scenario of the example services in every
//! deployment and reports parity; records, shows, replays live and replays under chaos.
//!
//! Run `cargo run --release -p scenarios -- --help` for the commands.

mod catalog;
mod chaos;
mod deployments;
mod live;
mod out;
mod record;
mod report;
mod run;
mod show;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Replays the recorded scenarios of the example services in every deployment — in-process,
/// in-process with transport fidelity, and the server1, server2 and server3 layouts as real
/// processes on loopback — and prints a table of the results. Exits non-zero on any difference.
#[derive(Debug, Parser)]
#[command(name = "scenarios", version, after_help = AFTER_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    #[command(flatten)]
    run: run::RunArgs,
}

const AFTER_HELP: &str = "\
Examples:
  cargo run --release -p scenarios                          replay everything everywhere
  cargo run --release -p scenarios -- --filter svc3 --junit target/scenarios.xml
  cargo run --release -p scenarios -- show scenarios/recorded/svc2-get.json
  cargo run --release -p scenarios -- record --update svc2-get
  cargo run --release -p scenarios -- chaos --seed 7";

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

/// Where the recorded scenarios live by default.
fn default_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("recorded")
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

    pub(crate) fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        None => run::main(cli.run),
        Some(Command::Run(args)) => run::main(args),
        Some(Command::Record(args)) => record::main(args),
        Some(Command::Replay(args)) => live::main(args),
        Some(Command::Show(args)) => show::main(args),
        Some(Command::Chaos(args)) => chaos::main(args),
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
