//! Starting the article's layouts as real child processes on free loopback ports.
//!
//! A [`Deployment`] starts every server of a [`Layout`] from built executables (peers first, each
//! with `--listen 127.0.0.1:0` and `--peer` flags pointing at the ones already running), learns
//! each bound address from the server's ready line on stderr, checks `GET /health-check`, and
//! kills every child when dropped, also when a test fails. Server logs are kept (and echoed to
//! stderr with the server's name, which a test harness captures).
//!
//! ```no_run
//! use services::deploy::{Binaries, Deployment, Layout};
//!
//! # async fn run() -> Result<(), services::deploy::DeployError> {
//! let binaries = Binaries::beside_current_exe()?;
//! let mut deployment = Deployment::start(Layout::Two, &binaries).await?;
//! println!("svc2 is at {}", deployment.svc2_url());
//! deployment.stop("server2b")?;
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;

use crate::server::{
    SERVER1, SERVER2A, SERVER2B, SERVER3A, SERVER3B, SERVER3C, SERVER3D, ServerSpec, Svc,
    parse_ready_line,
};

/// The environment variables the servers read their settings from; cleared for children so
/// that the parent's environment does not change a deployment.
const SERVER_ENV: [&str; 10] = [
    "NANO_LISTEN",
    "NANO_PEERS",
    "NANO_TIMEOUT",
    "NANO_GRACE_PERIOD",
    "NANO_BODY_LIMIT",
    "NANO_RECORD_DIR",
    "NANO_REQUEST_TIMEOUT",
    "NANO_MAX_CONNECTIONS",
    "NANO_MAX_IN_FLIGHT",
    "NANO_MAX_RESPONSE_BYTES",
];

/// At most this many log lines are kept per process; older ones are dropped.
const MAX_LOG_LINES: usize = 10_000;

/// One of the article's deployment layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layout {
    /// `server1`: everything in one process.
    One,
    /// `server2a` (svc1, svc2) and `server2b` (svc3, svc4).
    Two,
    /// `server3a`..`server3d`: one service per process.
    Three,
}

impl Layout {
    /// All three layouts.
    pub const ALL: [Layout; 3] = [Layout::One, Layout::Two, Layout::Three];

    /// The servers of the layout, in start order: every server comes after the servers it calls.
    pub fn servers(self) -> &'static [ServerSpec] {
        match self {
            Layout::One => &[SERVER1],
            Layout::Two => &[SERVER2B, SERVER2A],
            Layout::Three => &[SERVER3D, SERVER3C, SERVER3A, SERVER3B],
        }
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let number = match self {
            Layout::One => 1,
            Layout::Two => 2,
            Layout::Three => 3,
        };
        write!(f, "layout {number}")
    }
}

/// A failure to start, stop or observe a server process. The message includes the server's
/// latest log lines when they explain it.
#[derive(Debug, Clone)]
pub struct DeployError {
    message: String,
}

impl DeployError {
    fn new(message: impl Into<String>) -> Self {
        DeployError {
            message: message.into(),
        }
    }

    fn with_logs(message: impl fmt::Display, process: &str, logs: &[String]) -> Self {
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
}

impl Binaries {
    /// Executables named like the servers (`server1`, ...) in `dir`, e.g. `target/release`.
    pub fn in_dir(dir: impl Into<PathBuf>) -> Self {
        Binaries {
            dir: Some(dir.into()),
            paths: BTreeMap::new(),
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
        if dir.file_name().is_some_and(|name| name == "deps") {
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
            Err(DeployError::new(format!(
                "executable {name:?} not found at {} (build it with `cargo build -p services --bins`)",
                path.display()
            )))
        }
    }
}

/// How children are started.
#[derive(Debug, Clone)]
pub struct Options {
    /// Extra arguments for every server (e.g. `--grace-period 1s`); `--listen` and `--peer` are
    /// set by the deployment.
    pub args: Vec<String>,
    /// Extra environment variables for every server (e.g. `RUST_LOG=debug`).
    pub env: Vec<(String, String)>,
    /// How long one server may take to become ready.
    pub startup_timeout: Duration,
    /// Whether server logs are echoed to this process's stderr, prefixed with the server's name
    /// (they are kept either way, see [`ServerProcess::logs`]).
    pub echo_logs: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            args: Vec::new(),
            env: Vec::new(),
            startup_timeout: Duration::from_secs(30),
            echo_logs: true,
        }
    }
}

/// A running layout: one [`ServerProcess`] per server, all killed when this is dropped.
#[derive(Debug)]
pub struct Deployment {
    layout: Layout,
    processes: Vec<ServerProcess>,
    exposed: HashMap<Svc, SocketAddr>,
}

impl Deployment {
    /// Starts `layout` with default [`Options`].
    ///
    /// # Errors
    ///
    /// When an executable is missing, or a server does not start, print its ready line or pass
    /// its health check in time; the servers already started are killed.
    pub async fn start(layout: Layout, binaries: &Binaries) -> Result<Self, DeployError> {
        Self::start_with(layout, binaries, &Options::default()).await
    }

    /// Starts `layout`, server by server in [`Layout::servers`] order.
    ///
    /// # Errors
    ///
    /// As [`start`](Deployment::start).
    pub async fn start_with(
        layout: Layout,
        binaries: &Binaries,
        options: &Options,
    ) -> Result<Self, DeployError> {
        let mut deployment = Deployment {
            layout,
            processes: Vec::new(),
            exposed: HashMap::new(),
        };
        for spec in layout.servers() {
            let path = binaries.path(spec.name)?;
            let mut args = Vec::new();
            for svc in spec.remote() {
                let addr = deployment.exposed.get(&svc).ok_or_else(|| {
                    DeployError::new(format!(
                        "{} needs {svc}, which no server started before it exposes",
                        spec.name
                    ))
                })?;
                args.push("--peer".to_owned());
                args.push(format!("{svc}={addr}"));
            }
            args.extend(options.args.iter().cloned());
            let process = ServerProcess::start(spec.name, &path, &args, options).await?;
            deployment.exposed.insert(spec.exposes, process.addr());
            deployment.processes.push(process);
        }
        Ok(deployment)
    }

    /// The layout.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The address of the server exposing `svc`, if one in this layout does.
    pub fn addr_of(&self, svc: Svc) -> Option<SocketAddr> {
        self.exposed.get(&svc).copied()
    }

    /// The address of the server exposing svc2 (every layout has one).
    pub fn svc2_addr(&self) -> SocketAddr {
        self.addr_of(Svc::Svc2).expect("every layout exposes svc2")
    }

    /// The base URL of svc2's server, e.g. `http://127.0.0.1:41234`.
    pub fn svc2_url(&self) -> String {
        format!("http://{}", self.svc2_addr())
    }

    /// Every process, in start order.
    pub fn processes(&self) -> &[ServerProcess] {
        &self.processes
    }

    /// The process of the executable called `name`.
    pub fn process(&self, name: &str) -> Option<&ServerProcess> {
        self.processes.iter().find(|p| p.name() == name)
    }

    /// The process of the executable called `name`, to stop or signal it.
    pub fn process_mut(&mut self, name: &str) -> Option<&mut ServerProcess> {
        self.processes.iter_mut().find(|p| p.name() == name)
    }

    /// Kills the process of the executable called `name` and waits for it to exit.
    ///
    /// # Errors
    ///
    /// When there is no such process in the layout or it cannot be killed.
    pub fn stop(&mut self, name: &str) -> Result<ExitStatus, DeployError> {
        let layout = self.layout;
        self.process_mut(name)
            .ok_or_else(|| DeployError::new(format!("{layout} has no process {name:?}")))?
            .kill()
    }
}

/// Lines a child wrote to stderr, shared with the thread that reads them.
#[derive(Default)]
struct Log {
    state: Mutex<LogState>,
    changed: Notify,
}

#[derive(Default)]
struct LogState {
    lines: Vec<String>,
    /// The child closed stderr: it exited (or is exiting).
    closed: bool,
}

impl Log {
    fn state(&self) -> MutexGuard<'_, LogState> {
        // A panic while holding the lock cannot leave the lines inconsistent; keep using them.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn push(&self, line: String) {
        let mut state = self.state();
        if state.lines.len() >= MAX_LOG_LINES {
            state.lines.drain(..MAX_LOG_LINES / 2);
        }
        state.lines.push(line);
        drop(state);
        self.changed.notify_waiters();
    }

    fn close(&self) {
        self.state().closed = true;
        self.changed.notify_waiters();
    }

    /// Waits until `find` finds something in the lines, or the log closes (`None`).
    async fn wait_for<T>(&self, mut find: impl FnMut(&[String]) -> Option<T>) -> Option<T> {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            // Registered before looking, so a line pushed in between still wakes us.
            notified.as_mut().enable();
            {
                let state = self.state();
                if let Some(found) = find(&state.lines) {
                    return Some(found);
                }
                if state.closed {
                    return None;
                }
            }
            notified.await;
        }
    }
}

/// One server executable running as a child process, killed when dropped.
pub struct ServerProcess {
    name: String,
    child: Child,
    addr: SocketAddr,
    log: Arc<Log>,
    exit: Option<ExitStatus>,
}

impl fmt::Debug for ServerProcess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerProcess")
            .field("name", &self.name)
            .field("pid", &self.child.id())
            .field("addr", &self.addr)
            .field("exit", &self.exit)
            .finish()
    }
}

impl ServerProcess {
    /// Starts the executable at `path` with `--listen 127.0.0.1:0` followed by `args`, the
    /// server settings of the parent's environment cleared and `options.env` added, then waits
    /// as [`spawn`](Self::spawn) does.
    ///
    /// # Errors
    ///
    /// As [`spawn`](Self::spawn).
    pub async fn start(
        name: &str,
        path: &Path,
        args: &[String],
        options: &Options,
    ) -> Result<Self, DeployError> {
        let mut command = Command::new(path);
        command.args(["--listen", "127.0.0.1:0"]).args(args);
        for var in SERVER_ENV {
            command.env_remove(var);
        }
        command.envs(options.env.iter().map(|(k, v)| (k, v)));
        Self::spawn_with(name, command, options.startup_timeout, options.echo_logs).await
    }

    /// Spawns a server from a prepared command (its stdio is replaced), waits for its ready line
    /// and checks `GET /health-check`.
    ///
    /// # Errors
    ///
    /// When it cannot be spawned, exits or is not ready within `startup_timeout`, or fails its
    /// health check. The child is killed in each case.
    pub async fn spawn(
        name: &str,
        command: Command,
        startup_timeout: Duration,
    ) -> Result<Self, DeployError> {
        Self::spawn_with(name, command, startup_timeout, true).await
    }

    async fn spawn_with(
        name: &str,
        mut command: Command,
        startup_timeout: Duration,
        echo_logs: bool,
    ) -> Result<Self, DeployError> {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().map_err(|err| {
            DeployError::new(format!(
                "cannot start {}: {err}",
                command.get_program().to_string_lossy()
            ))
        })?;
        let log = Arc::new(Log::default());
        if let Some(stderr) = child.stderr.take() {
            spawn_log_reader(name, stderr, Arc::clone(&log), echo_logs);
        }
        let mut process = ServerProcess {
            name: name.to_owned(),
            child,
            // Replaced by the ready line's address below.
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            log,
            exit: None,
        };
        let ready = tokio::time::timeout(
            startup_timeout,
            process
                .log
                .wait_for(|lines| lines.iter().find_map(|l| parse_ready_line(l))),
        )
        .await;
        process.addr = match ready {
            Ok(Some(addr)) => addr,
            Ok(None) => {
                let status = process.kill().ok();
                return Err(process.error(format!(
                    "{name} exited before it was ready ({})",
                    status.map_or("unknown status".into(), |s| s.to_string())
                )));
            }
            Err(_) => {
                let _ = process.kill();
                return Err(
                    process.error(format!("{name} was not ready within {startup_timeout:?}"))
                );
            }
        };
        if let Err(err) = health_check(process.addr, startup_timeout).await {
            let _ = process.kill();
            return Err(process.error(format!("{name} failed its health check: {err}")));
        }
        Ok(process)
    }

    /// The executable's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The address the server is bound to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The server's base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The lines the server wrote to stderr so far (the latest ones, if there were very many).
    pub fn logs(&self) -> Vec<String> {
        self.log.state().lines.clone()
    }

    /// Waits for a log line containing `needle` (searching every line kept so far) and returns
    /// it.
    ///
    /// # Errors
    ///
    /// When the process exits or `timeout` passes first.
    pub async fn wait_for_log(
        &self,
        needle: &str,
        timeout: Duration,
    ) -> Result<String, DeployError> {
        let found = self
            .log
            .wait_for(|lines| lines.iter().find(|l| l.contains(needle)).cloned());
        match tokio::time::timeout(timeout, found).await {
            Ok(Some(line)) => Ok(line),
            Ok(None) => Err(self.error(format!("{} exited without logging {needle:?}", self.name))),
            Err(_) => Err(self.error(format!(
                "{} did not log {needle:?} within {timeout:?}",
                self.name
            ))),
        }
    }

    /// Asks the server to shut down gracefully (SIGTERM).
    ///
    /// # Errors
    ///
    /// When the signal cannot be sent.
    #[cfg(unix)]
    pub fn terminate(&self) -> Result<(), DeployError> {
        use nix::sys::signal::{Signal, kill};
        use nix::unistd::Pid;
        let pid = i32::try_from(self.pid())
            .map_err(|_| DeployError::new(format!("pid {} out of range", self.pid())))?;
        kill(Pid::from_raw(pid), Signal::SIGTERM)
            .map_err(|err| DeployError::new(format!("cannot signal {}: {err}", self.name)))
    }

    /// Waits for the process to exit on its own (e.g. after [`terminate`](Self::terminate)).
    ///
    /// # Errors
    ///
    /// When it is still running after `timeout` (it is then left running; dropping kills it).
    pub async fn wait(&mut self, timeout: Duration) -> Result<ExitStatus, DeployError> {
        if let Some(status) = self.exit {
            return Ok(status);
        }
        // A server closes stderr only by exiting, so this waits without polling.
        let closed = self.log.wait_for(|_| None::<()>);
        if tokio::time::timeout(timeout, closed).await.is_err() {
            return Err(self.error(format!("{} still runs after {timeout:?}", self.name)));
        }
        let status = self
            .child
            .wait()
            .map_err(|err| DeployError::new(format!("cannot wait for {}: {err}", self.name)))?;
        self.exit = Some(status);
        Ok(status)
    }

    /// Kills the process (SIGKILL) and waits for it; a process that already exited keeps its
    /// status.
    ///
    /// # Errors
    ///
    /// When it cannot be killed or waited for.
    pub fn kill(&mut self) -> Result<ExitStatus, DeployError> {
        if let Some(status) = self.exit {
            return Ok(status);
        }
        if self.child.try_wait().ok().flatten().is_none() {
            // Fails only when the process already exited, which `wait` then reports.
            let _ = self.child.kill();
        }
        let status = self
            .child
            .wait()
            .map_err(|err| DeployError::new(format!("cannot wait for {}: {err}", self.name)))?;
        self.exit = Some(status);
        Ok(status)
    }

    fn error(&self, message: String) -> DeployError {
        DeployError::with_logs(message, &self.name, &self.logs())
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}

/// Reads the child's stderr line by line on a thread of its own (the pipe must be drained or the
/// child blocks on logging), keeping each line and, when asked to, echoing it with the server's
/// name.
fn spawn_log_reader(name: &str, stderr: ChildStderr, log: Arc<Log>, echo: bool) {
    let name = name.to_owned();
    let spawned = std::thread::Builder::new()
        .name(format!("{name}-stderr"))
        .spawn({
            let log = Arc::clone(&log);
            move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if echo {
                        eprintln!("[{name}] {line}");
                    }
                    log.push(line);
                }
                log.close();
            }
        });
    if spawned.is_err() {
        // Without a reader nobody learns the address; closing makes the start fail clearly.
        log.close();
    }
}

/// `GET /health-check` must answer 200.
async fn health_check(addr: SocketAddr, timeout: Duration) -> Result<(), String> {
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(timeout)
        .build()
        .map_err(|err| err.to_string())?;
    let url = format!("http://{addr}{}", nano_http::HEALTH_CHECK_PATH);
    let response = http.get(&url).send().await.map_err(|err| err.to_string())?;
    if response.status() == reqwest::StatusCode::OK {
        Ok(())
    } else {
        Err(format!("GET {url} answered {}", response.status()))
    }
}
