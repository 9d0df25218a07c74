//! [`NatsBroker`]: a real `nats-server` child process on a free loopback port.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use super::DeployError;
use super::process::{Log, spawn_log_reader};

/// The environment variable that names the `nats-server` executable to use.
pub const NATS_SERVER_ENV: &str = "NANO_NATS_SERVER";

/// Where `nats-server` is looked for after `PATH` (Debian installs it in `/usr/sbin`, which a
/// user's `PATH` may lack).
const EXTRA_DIRS: [&str; 3] = ["/usr/sbin", "/usr/local/sbin", "/usr/local/bin"];

/// How long the broker may take to say it is ready.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);

/// The line of `nats-server`'s log that names the client port.
const LISTENING: &str = "Listening for client connections on ";

/// A `nats-server` child process for one deployment or test: on `127.0.0.1`, on a port the
/// broker picked itself (so no other process can take it in between), killed when dropped.
///
/// It never depends on a broker that happens to run on the machine, and a missing `nats-server`
/// is an error naming the install command, never a reason to skip.
///
/// ```no_run
/// # async fn run() -> Result<(), nano_test::deploy::DeployError> {
/// let mut broker = nano_test::deploy::NatsBroker::start().await?;
/// println!("clients connect to {}", broker.url());
/// broker.stop(); // a broker outage…
/// broker.restart().await?; // …and the same port again
/// # Ok(()) }
/// ```
pub struct NatsBroker {
    binary: PathBuf,
    port: u16,
    child: Option<Child>,
    log: Arc<Log>,
}

impl fmt::Debug for NatsBroker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsBroker")
            .field("binary", &self.binary)
            .field("port", &self.port)
            .field("pid", &self.child.as_ref().map(Child::id))
            .finish()
    }
}

impl NatsBroker {
    /// Starts `nats-server` (see [`binary`](NatsBroker::binary)) on a free loopback port and
    /// waits until it is ready for clients.
    ///
    /// # Errors
    ///
    /// When `nats-server` is not installed (the message says how to install it) or does not
    /// become ready within 10 s.
    pub async fn start() -> Result<Self, DeployError> {
        Self::start_with(Self::binary()?).await
    }

    async fn start_with(binary: PathBuf) -> Result<Self, DeployError> {
        let mut broker = NatsBroker {
            binary,
            port: 0,
            child: None,
            log: Arc::default(),
        };
        broker.launch(None).await?;
        Ok(broker)
    }

    /// The `nats-server` executable: the one [`NATS_SERVER_ENV`] names, else the first found in
    /// `PATH`, `/usr/sbin`, `/usr/local/sbin` or `/usr/local/bin`.
    ///
    /// # Errors
    ///
    /// When there is none, with the command that installs it.
    pub fn binary() -> Result<PathBuf, DeployError> {
        find_binary(
            std::env::var_os(NATS_SERVER_ENV),
            &std::env::var_os("PATH").unwrap_or_default(),
            &EXTRA_DIRS,
        )
    }

    /// The URL clients connect to, e.g. `nats://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The broker's log lines so far (its stderr; the latest ones, if there were very many).
    pub fn logs(&self) -> Vec<String> {
        self.log.state().lines.clone()
    }

    /// Kills the broker (SIGKILL) and waits until it is gone: connected clients see it
    /// disappear. Does nothing when it is not running.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        // Fails only when the broker already exited, which `wait` then reports.
        let _ = child.kill();
        child.wait().ok()
    }

    /// Starts the broker again on the same port (after [`stop`](NatsBroker::stop), or killing
    /// it first), so that clients reconnect to it, and waits until it is ready.
    ///
    /// # Errors
    ///
    /// When it does not become ready within 10 s, e.g. because the port was taken meanwhile.
    pub async fn restart(&mut self) -> Result<(), DeployError> {
        self.stop();
        self.launch(Some(self.port)).await
    }

    /// Starts `nats-server` on `port` (or a port it picks), and waits for its ready line.
    async fn launch(&mut self, port: Option<u16>) -> Result<(), DeployError> {
        // `-1` asks the broker for a random free port, which it then logs.
        let port_arg = port.map_or_else(|| "-1".to_owned(), |port| port.to_string());
        let mut child = Command::new(&self.binary)
            .args(["-a", "127.0.0.1", "-p", &port_arg])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|err| {
                DeployError::new(format!("cannot start {}: {err}", self.binary.display()))
            })?;
        self.log = Arc::default();
        match child.stderr.take() {
            Some(stderr) => spawn_log_reader("nats-server", stderr, Arc::clone(&self.log), false),
            None => self.log.close(),
        }
        self.child = Some(child);
        let ready = tokio::time::timeout(
            STARTUP_TIMEOUT,
            self.log.wait_for(|lines| {
                let ready = lines.iter().any(|line| line.contains("Server is ready"));
                let port = lines.iter().find_map(|line| {
                    let (_, addr) = line.split_once(LISTENING)?;
                    addr.trim().rsplit_once(':')?.1.parse::<u16>().ok()
                });
                port.filter(|_| ready)
            }),
        )
        .await;
        let problem = match ready {
            Ok(Some(port)) => {
                self.port = port;
                return Ok(());
            }
            Ok(None) => "exited at start".to_owned(),
            Err(_) => format!("was not ready within {STARTUP_TIMEOUT:?}"),
        };
        let status = self.stop();
        Err(DeployError::with_logs(
            format!(
                "nats-server ({}, port {port_arg}) {problem}{}",
                self.binary.display(),
                status.map(|s| format!(" ({s})")).unwrap_or_default()
            ),
            "nats-server",
            &self.logs(),
        ))
    }
}

/// The `nats-server` that `named` (the variable's value) names, or the first in `path`'s
/// directories and then `extra`.
fn find_binary(
    named: Option<OsString>,
    path: &OsStr,
    extra: &[&str],
) -> Result<PathBuf, DeployError> {
    if let Some(named) = named {
        return Ok(PathBuf::from(named));
    }
    std::env::split_paths(path)
        .chain(extra.iter().map(PathBuf::from))
        .map(|dir| dir.join("nats-server"))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            DeployError::new(format!(
                "nats-server is not installed, and a NATS deployment needs a real broker: \
                 install it with `apt-get update && apt-get install -y nats-server` \
                 (Debian/Ubuntu), or set {NATS_SERVER_ENV} to its path"
            ))
        })
}

impl Drop for NatsBroker {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_nats_server_is_an_error_that_says_how_to_install_it() {
        let err = find_binary(None, OsStr::new(""), &[]).unwrap_err();
        assert!(
            err.to_string()
                .contains("install it with `apt-get update && apt-get install -y nats-server`"),
            "{err}"
        );
        let dir = std::env::temp_dir().join(format!("nano-broker-find-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("nats-server"), "").unwrap();
        let found = find_binary(None, dir.as_os_str(), &[]).unwrap();
        assert_eq!(found, dir.join("nats-server"));
        let named = find_binary(Some("/opt/nats".into()), dir.as_os_str(), &[]).unwrap();
        assert_eq!(named, PathBuf::from("/opt/nats"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn a_broker_that_exits_at_start_is_an_error_with_its_logs() {
        let err = NatsBroker::start_with(PathBuf::from("/bin/false"))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("exited at start"), "{err}");
        let err = NatsBroker::start_with(PathBuf::from("/nonexistent/nats-server"))
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("cannot start /nonexistent/nats-server"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn the_broker_serves_stops_and_comes_back_on_its_port() {
        let mut broker = NatsBroker::start().await.unwrap();
        let port = broker.port();
        assert_ne!(port, 0);
        assert_eq!(broker.url(), format!("nats://127.0.0.1:{port}"));
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
        assert!(broker.stop().is_some());
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
            "nothing listens after stop"
        );
        assert!(broker.stop().is_none(), "stopping twice does nothing");
        broker.restart().await.unwrap();
        assert_eq!(broker.port(), port);
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
        assert!(
            broker.logs().iter().any(|l| l.contains("Server is ready")),
            "{:?}",
            broker.logs()
        );
    }
}
