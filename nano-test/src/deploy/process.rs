//! [`ServerProcess`]: one server executable as a child process, its logs kept, killed on drop.

use std::fmt;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use nano_server::parse_ready_line;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;

use super::{DeployError, StartOptions};

/// The environment variables the servers read their settings from; cleared for children so
/// that the parent's environment does not change a deployment.
const SERVER_ENV: [&str; 15] = [
    "NANO_LISTEN",
    "NANO_PEERS",
    "NANO_TIMEOUT",
    "NANO_GRACE_PERIOD",
    "NANO_BODY_LIMIT",
    "NANO_RECORD_DIR",
    "NANO_RECORD_MAX_BYTES",
    "NANO_REQUEST_TIMEOUT",
    "NANO_MAX_CONNECTIONS",
    "NANO_MAX_IN_FLIGHT",
    "NANO_MAX_RESPONSE_BYTES",
    "NANO_NATS",
    "NANO_NATS_PREFIX",
    "NANO_NATS_CONNECT_TIMEOUT",
    "NANO_INSTANCE",
];

/// At most this many log lines are kept per process; older ones are dropped.
const MAX_LOG_LINES: usize = 10_000;

/// Lines a child wrote to stderr, shared with the thread that reads them.
#[derive(Default)]
pub(crate) struct Log {
    state: Mutex<LogState>,
    changed: Notify,
}

#[derive(Default)]
pub(crate) struct LogState {
    pub(crate) lines: Vec<String>,
    /// The child closed stderr: it exited (or is exiting).
    closed: bool,
}

impl Log {
    pub(crate) fn state(&self) -> MutexGuard<'_, LogState> {
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

    pub(crate) fn close(&self) {
        self.state().closed = true;
        self.changed.notify_waiters();
    }

    /// Waits until `find` finds something in the lines, or the log closes (`None`).
    pub(crate) async fn wait_for<T>(
        &self,
        mut find: impl FnMut(&[String]) -> Option<T>,
    ) -> Option<T> {
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
    /// How it was started by [`start`](ServerProcess::start), to start it again.
    launch: Option<Launch>,
}

/// What [`ServerProcess::start`] started a process with.
#[derive(Debug, Clone)]
struct Launch {
    path: PathBuf,
    args: Vec<String>,
    options: StartOptions,
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
        options: &StartOptions,
    ) -> Result<Self, DeployError> {
        let launch = Launch {
            path: path.to_owned(),
            args: args.to_vec(),
            options: options.clone(),
        };
        let mut process = Self::launch(name, &launch, "127.0.0.1:0").await?;
        process.launch = Some(launch);
        Ok(process)
    }

    async fn launch(name: &str, launch: &Launch, listen: &str) -> Result<Self, DeployError> {
        let mut command = Command::new(&launch.path);
        command.args(["--listen", listen]).args(&launch.args);
        for var in SERVER_ENV {
            command.env_remove(var);
        }
        command.envs(launch.options.env.iter().map(|(k, v)| (k, v)));
        Self::spawn_with(
            name,
            command,
            launch.options.startup_timeout,
            launch.options.echo_logs,
        )
        .await
    }

    /// Kills the process if it still runs and starts it again with the same executable,
    /// arguments and options, listening on the same address (so that the servers that reach it
    /// there find it again), then waits for it as [`start`](Self::start) does. The logs start
    /// afresh with the new run.
    ///
    /// # Errors
    ///
    /// When the process was not made by [`start`](Self::start) (a [`spawn`](Self::spawn)ed
    /// command cannot be repeated), or as [`start`](Self::start), e.g. when the address is taken
    /// by now.
    pub async fn restart(&mut self) -> Result<(), DeployError> {
        let Some(launch) = self.launch.clone() else {
            return Err(DeployError::new(format!(
                "{} was spawned from a command of the caller's and cannot be started again",
                self.name
            )));
        };
        self.kill()?;
        let mut fresh = Self::launch(&self.name, &launch, &self.addr.to_string()).await?;
        fresh.launch = Some(launch);
        // The old child was reaped by `kill`; dropping its handle here does nothing more.
        *self = fresh;
        Ok(())
    }

    /// Whether the process has not exited (as far as this handle knows without waiting).
    pub fn is_running(&mut self) -> bool {
        self.exit.is_none() && matches!(self.child.try_wait(), Ok(None))
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
            launch: None,
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
        self.reap()
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
        self.reap()
    }

    /// Waits for the exited (or killed) process and keeps its status.
    fn reap(&mut self) -> Result<ExitStatus, DeployError> {
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
pub(crate) fn spawn_log_reader(name: &str, stderr: ChildStderr, log: Arc<Log>, echo: bool) {
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

/// `GET /health-check` must answer 200. A plain HTTP/1.1 exchange on a fresh connection: the
/// check needs nothing of a client library.
async fn health_check(addr: SocketAddr, timeout: Duration) -> Result<(), String> {
    let path = nano_http::HEALTH_CHECK_PATH;
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        Ok::<_, std::io::Error>(answer)
    };
    let answer = tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| format!("GET {path} did not answer within {timeout:?}"))?
        .map_err(|err| format!("GET {path}: {err}"))?;
    let text = String::from_utf8_lossy(&answer);
    let status = text.lines().next().unwrap_or("");
    if status.starts_with("HTTP/1.1 200") || status.starts_with("HTTP/1.0 200") {
        Ok(())
    } else {
        Err(format!("GET {path} answered {status:?}"))
    }
}
