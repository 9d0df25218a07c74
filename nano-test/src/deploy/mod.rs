//! Starting a [`System`](nano_server::System)'s layouts as real child processes on free loopback
//! ports (feature `http`).
//!
//! [`RunningLayout::start`] starts every server executable of a layout in the order
//! [`System::plan`](nano_server::System::plan) gives (peers first), each with
//! `--listen 127.0.0.1:0` and a `--peer NAME=ADDR` flag for every service it reaches remotely,
//! learns each bound address from the server's ready line on stderr, checks
//! `GET /health-check`, and kills every child when dropped, also when a test fails. Server logs
//! are kept for failure messages (and echoed to stderr with the server's name, which a test
//! harness captures). [`Binaries`] finds the executables by name.
//!
//! A layout over NATS ([`System::nats_layout`](nano_server::System::nats_layout), feature
//! `nats`) gets a broker of its own: a [`NatsBroker`] (a real `nats-server` on a port it picks
//! on loopback) is started first and stopped last, every server gets `--nats URL` instead of
//! peers, and an executable the layout lists twice runs as two replicas (`NAME-1`, `NAME-2`) in
//! the same queue groups. No deployment depends on a broker that happens to run, and a missing
//! `nats-server` fails the start with the command that installs it.
//!
//! A running layout is one more [`Deployment`](crate::Deployment):
//! [`RunningLayout::into_deployment`] gives one that [`ParityCheck`](crate::ParityCheck) and the
//! scenario replays use like any other, and that keeps the processes running.
//!
//! ```no_run
//! use nano_test::deploy::{Binaries, RunningLayout, StartOptions};
//!
//! # async fn run(system: nano_server::System) -> Result<(), Box<dyn std::error::Error>> {
//! let binaries = Binaries::beside_current_exe()?;
//! let mut layout = RunningLayout::start(&system, "split", &binaries, &StartOptions::default()).await?;
//! println!("front is at {}", layout.url_of("front").unwrap());
//! layout.stop("back-only")?;
//! # Ok(()) }
//! ```

mod broker;
mod layout;
mod process;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

pub use broker::{NATS_SERVER_ENV, NatsBroker};
pub use layout::RunningLayout;
#[cfg(feature = "runner")]
pub(crate) use layout::system_endpoints;
pub use process::ServerProcess;

/// A failure to start, stop or observe a server process. The message includes the server's
/// latest log lines when they explain it.
#[derive(Debug, Clone)]
pub struct DeployError {
    message: String,
}

impl DeployError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        DeployError {
            message: message.into(),
        }
    }

    pub(crate) fn with_logs(message: impl fmt::Display, process: &str, logs: &[String]) -> Self {
        let tail = logs.len().saturating_sub(20);
        let mut text = format!("{message}; last log lines of {process}:");
        for line in &logs[tail..] {
            text.push_str("\n    ");
            text.push_str(line);
        }
        if logs.is_empty() {
            text.push_str(" (none)");
        }
        DeployError { message: text }
    }
}

impl fmt::Display for DeployError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeployError {}

/// Where the server executables are: a directory, and/or explicit paths per executable name.
#[derive(Debug, Clone, Default)]
pub struct Binaries {
    dir: Option<PathBuf>,
    paths: BTreeMap<String, PathBuf>,
    hint: Option<String>,
}

impl Binaries {
    /// Executables named like the servers in `dir`, e.g. `target/release`.
    pub fn in_dir(dir: impl Into<PathBuf>) -> Self {
        Binaries {
            dir: Some(dir.into()),
            ..Binaries::default()
        }
    }

    /// The cargo target directory the running executable was built into: its own directory, or
    /// the parent of it when that is `deps` (where cargo puts test and bench executables).
    ///
    /// # Errors
    ///
    /// When the running executable's path cannot be found.
    pub fn beside_current_exe() -> Result<Self, DeployError> {
        let exe = std::env::current_exe().map_err(|err| {
            DeployError::new(format!("cannot find the running executable: {err}"))
        })?;
        let mut dir = exe
            .parent()
            .ok_or_else(|| DeployError::new(format!("{} has no directory", exe.display())))?
            .to_path_buf();
        // Test executables live in `deps/` and example executables in `examples/`, one level
        // below the profile directory that holds the package's binaries.
        if dir
            .file_name()
            .is_some_and(|name| name == "deps" || name == "examples")
        {
            dir.pop();
        }
        Ok(Self::in_dir(dir))
    }

    /// Uses `path` for the executable called `name`, e.g. `env!("CARGO_BIN_EXE_server1")`.
    #[must_use]
    pub fn with(mut self, name: &str, path: impl Into<PathBuf>) -> Self {
        self.paths.insert(name.to_owned(), path.into());
        self
    }

    /// Adds `hint` (e.g. "build them with `cargo build -p my-servers --bins`") to the message
    /// of a missing executable.
    #[must_use]
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// The path of the executable called `name`.
    ///
    /// # Errors
    ///
    /// When it is neither given explicitly nor present in the directory.
    pub fn path(&self, name: &str) -> Result<PathBuf, DeployError> {
        if let Some(path) = self.paths.get(name) {
            return Ok(path.clone());
        }
        let dir = self
            .dir
            .as_ref()
            .ok_or_else(|| DeployError::new(format!("no path given for executable {name:?}")))?;
        let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
        if path.is_file() {
            Ok(path)
        } else {
            let hint = self
                .hint
                .as_ref()
                .map(|hint| format!(" ({hint})"))
                .unwrap_or_default();
            Err(DeployError::new(format!(
                "executable {name:?} not found at {}{hint}",
                path.display()
            )))
        }
    }
}

/// How children are started.
#[derive(Debug, Clone)]
pub struct StartOptions {
    /// Extra arguments for every server (e.g. `--grace-period 1s`); `--listen`, `--peer`,
    /// `--nats` and the replicas' `--instance` are set by the deployment.
    pub args: Vec<String>,
    /// Extra environment variables for every server (e.g. `RUST_LOG=debug`).
    pub env: Vec<(String, String)>,
    /// How long one server may take to become ready.
    pub startup_timeout: Duration,
    /// Whether server logs are echoed to this process's stderr, prefixed with the server's name
    /// (they are kept either way, see [`ServerProcess::logs`]).
    pub echo_logs: bool,
}

impl Default for StartOptions {
    fn default() -> Self {
        StartOptions {
            args: Vec::new(),
            env: Vec::new(),
            startup_timeout: Duration::from_secs(30),
            echo_logs: true,
        }
    }
}
