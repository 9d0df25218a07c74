//! What the server executables share: which services each one runs, the command line, logging,
//! and wiring a set from local services and HTTP clients for the remote ones.
//!
//! Each executable in `src/bin/` is one line calling [`main`] with its [`ServerSpec`]:
//!
//! | executable | local services | remote (over HTTP) | exposes |
//! |---|---|---|---|
//! | `server1` | svc1, svc2, svc3, svc4 | — | svc2 |
//! | `server2a` | svc1, svc2 | svc3 | svc2 |
//! | `server2b` | svc3, svc4 | — | svc3 |
//! | `server3a` | svc1 | — | svc1 |
//! | `server3b` | svc2 | svc1, svc3 | svc2 |
//! | `server3c` | svc3 | svc4 | svc3 |
//! | `server3d` | svc4 | — | svc4 |
//!
//! Once bound, a server writes one line to stderr that a parent process can parse with
//! [`parse_ready_line`]: `NANO_LISTENING addr=127.0.0.1:41234 server=server2a service=svc2`, so
//! `--listen 127.0.0.1:0` works.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, CommandFactory, FromArgMatches, Parser};
use std::sync::{Arc, Mutex};

use nano::{Api, NanoError, ServiceSet, ServiceSetBuilder, SharedService};
use nano_http::{HttpListener, HttpTransport, Peer, Peers};
use nano_record::DirectoryRecorder;
use nano_server::{Listener, TracingHook};

use crate::api;

/// One of the four example services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Svc {
    /// `svc1`
    Svc1,
    /// `svc2`, which calls svc1 and svc3.
    Svc2,
    /// `svc3`, which calls svc4.
    Svc3,
    /// `svc4`
    Svc4,
}

impl Svc {
    /// All four, in order.
    pub const ALL: [Svc; 4] = [Svc::Svc1, Svc::Svc2, Svc::Svc3, Svc::Svc4];

    /// The service name.
    pub fn name(self) -> &'static str {
        match self {
            Svc::Svc1 => api::svc1::NAME,
            Svc::Svc2 => api::svc2::NAME,
            Svc::Svc3 => api::svc3::NAME,
            Svc::Svc4 => api::svc4::NAME,
        }
    }

    /// The service's declared API.
    pub fn api(self) -> &'static Api {
        match self {
            Svc::Svc1 => &api::svc1::API,
            Svc::Svc2 => &api::svc2::API,
            Svc::Svc3 => &api::svc3::API,
            Svc::Svc4 => &api::svc4::API,
        }
    }

    /// Adds the real service to `builder`.
    pub fn add_to(self, builder: ServiceSetBuilder) -> ServiceSetBuilder {
        match self {
            Svc::Svc1 => builder.service(crate::svc1::service()),
            Svc::Svc2 => builder.service(crate::svc2::service()),
            Svc::Svc3 => builder.service(crate::svc3::service()),
            Svc::Svc4 => builder.service(crate::svc4::service()),
        }
    }
}

impl fmt::Display for Svc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What one server executable runs: its local services and the one it exposes. Every dependency
/// of a local service that is not local is reached over HTTP at the address `--peer` gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerSpec {
    /// The executable's name.
    pub name: &'static str,
    /// One line for `--help`.
    pub about: &'static str,
    /// The services running in this process.
    pub local: &'static [Svc],
    /// The service the listener exposes.
    pub exposes: Svc,
}

/// All four services in one process (the article's layout 1).
pub const SERVER1: ServerSpec = ServerSpec {
    name: "server1",
    about: "Runs svc1, svc2, svc3 and svc4 in one process and exposes svc2 over HTTP.",
    local: &Svc::ALL,
    exposes: Svc::Svc2,
};
/// svc1 and svc2, calling svc3 on server2b (layout 2).
pub const SERVER2A: ServerSpec = ServerSpec {
    name: "server2a",
    about: "Runs svc1 and svc2, calls svc3 over HTTP (--peer svc3=ADDR) and exposes svc2.",
    local: &[Svc::Svc1, Svc::Svc2],
    exposes: Svc::Svc2,
};
/// svc3 and svc4 (layout 2).
pub const SERVER2B: ServerSpec = ServerSpec {
    name: "server2b",
    about: "Runs svc3 and svc4 and exposes svc3 over HTTP.",
    local: &[Svc::Svc3, Svc::Svc4],
    exposes: Svc::Svc3,
};
/// svc1 alone (layout 3).
pub const SERVER3A: ServerSpec = ServerSpec {
    name: "server3a",
    about: "Runs svc1 and exposes it over HTTP.",
    local: &[Svc::Svc1],
    exposes: Svc::Svc1,
};
/// svc2 alone, calling svc1 and svc3 (layout 3).
pub const SERVER3B: ServerSpec = ServerSpec {
    name: "server3b",
    about: "Runs svc2, calls svc1 and svc3 over HTTP (--peer svc1=ADDR --peer svc3=ADDR) and exposes svc2.",
    local: &[Svc::Svc2],
    exposes: Svc::Svc2,
};
/// svc3 alone, calling svc4 (layout 3).
pub const SERVER3C: ServerSpec = ServerSpec {
    name: "server3c",
    about: "Runs svc3, calls svc4 over HTTP (--peer svc4=ADDR) and exposes svc3.",
    local: &[Svc::Svc3],
    exposes: Svc::Svc3,
};
/// svc4 alone (layout 3).
pub const SERVER3D: ServerSpec = ServerSpec {
    name: "server3d",
    about: "Runs svc4 and exposes it over HTTP.",
    local: &[Svc::Svc4],
    exposes: Svc::Svc4,
};

/// Every server executable.
pub const SERVERS: [ServerSpec; 7] = [
    SERVER1, SERVER2A, SERVER2B, SERVER3A, SERVER3B, SERVER3C, SERVER3D,
];

impl ServerSpec {
    /// The spec of the executable called `name`.
    pub fn named(name: &str) -> Option<ServerSpec> {
        SERVERS.into_iter().find(|spec| spec.name == name)
    }

    /// The services this server reaches over HTTP: the dependencies of its local services that
    /// are not local, as the set finds them while building the local services, in [`Svc::ALL`]
    /// order.
    pub fn remote(&self) -> Vec<Svc> {
        let missing = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&missing);
        let mut builder = ServiceSet::builder().fallback(move |name| {
            seen.lock().expect("not poisoned").push(name.to_owned());
            // A stand-in that is never called: only the names matter here.
            Ok(SharedService::new(Unreachable(name.to_owned())))
        });
        for svc in self.local {
            builder = svc.add_to(builder);
        }
        // The example services build from their clients alone, so this cannot fail.
        let _ = builder.build();
        let missing = missing.lock().expect("not poisoned");
        Svc::ALL
            .into_iter()
            .filter(|svc| missing.iter().any(|name| name == svc.name()))
            .collect()
    }

    /// The set of this server: the local services plus an HTTP client for each remote one.
    ///
    /// # Errors
    ///
    /// `S-UNKNOWN-SERVICE` when `transport` has no address for a remote service; a set build
    /// error otherwise.
    pub fn build_set(&self, transport: &HttpTransport) -> Result<ServiceSet, NanoError> {
        self.build_set_with(transport, ServiceSet::builder())
    }

    /// Like [`build_set`](ServerSpec::build_set), starting from `builder` (e.g. one with hooks).
    /// The remote services are the ones the local services ask for that the set does not hold:
    /// the set's fallback supplies an HTTP client for each.
    ///
    /// # Errors
    ///
    /// As [`build_set`](ServerSpec::build_set).
    pub fn build_set_with(
        &self,
        transport: &HttpTransport,
        builder: ServiceSetBuilder,
    ) -> Result<ServiceSet, NanoError> {
        let transport = transport.clone();
        let mut builder = builder.fallback(move |name| {
            let svc = Svc::ALL
                .into_iter()
                .find(|svc| svc.name() == name)
                .ok_or_else(|| {
                    NanoError::new(
                        nano::codes::UNKNOWN_SERVICE,
                        format!("no API is known for service {name:?}"),
                    )
                })?;
            Ok(SharedService::new(transport.api_client(svc.api())?))
        });
        for svc in self.local {
            builder = svc.add_to(builder);
        }
        builder.build()
    }
}

/// The stand-in [`ServerSpec::remote`] builds with; it is never called.
struct Unreachable(String);

impl nano::Service for Unreachable {
    fn name(&self) -> &str {
        &self.0
    }

    async fn handle(&self, _ctx: nano::Ctx, req: nano::AnyRequest) -> nano::Outcome {
        Err(NanoError::bad_request_type(req.name()))
    }
}

/// How to reach remote services: the flags every executable that calls one takes.
#[derive(Debug, Clone, Args)]
pub struct PeerArgs {
    /// Address of a remote service, as NAME=ADDR (e.g. svc3=127.0.0.1:8001); repeatable. ADDR is
    /// host:port or http://host:port[/prefix]. NANO_PEERS takes a comma-separated list.
    #[arg(
        long = "peer",
        value_name = "NAME=ADDR",
        env = "NANO_PEERS",
        value_delimiter = ','
    )]
    pub peers: Vec<Peer>,

    /// Limit on one call to a remote service, e.g. 500ms or 30s. A caller's deadline that comes
    /// sooner wins.
    #[arg(long, value_name = "DURATION", env = "NANO_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,

    /// Largest response body accepted from a remote service, in bytes; a larger answer fails the
    /// call with S-BAD-RESPONSE.
    #[arg(long, value_name = "BYTES", env = "NANO_MAX_RESPONSE_BYTES", default_value_t = nano_http::DEFAULT_MAX_RESPONSE_BYTES)]
    pub max_response_bytes: usize,
}

impl PeerArgs {
    /// The peers as a discovery map.
    pub fn peers(&self) -> Peers {
        self.peers.iter().cloned().collect()
    }

    /// An HTTP transport with these peers and timeout.
    ///
    /// # Errors
    ///
    /// `C-BAD-REQUEST` when a peer names a service that does not exist; `S-INIT-FAILED` when the
    /// HTTP client cannot be set up.
    pub fn transport(&self) -> Result<HttpTransport, NanoError> {
        // A peer for a service that does not exist is a typo that would otherwise only show up
        // as "no address" on the first request.
        if let Some(unknown) = self
            .peers
            .iter()
            .find(|peer| Svc::ALL.iter().all(|svc| svc.name() != peer.name()))
        {
            let known: Vec<&str> = Svc::ALL.iter().map(|svc| svc.name()).collect();
            return Err(NanoError::bad_request(format!(
                "--peer names unknown service {:?} (known: {})",
                unknown.name(),
                known.join(", ")
            )));
        }
        HttpTransport::builder()
            .peers(self.peers())
            .timeout(self.timeout)
            .max_response_bytes(self.max_response_bytes)
            .build()
    }
}

/// The command line of a server executable.
#[derive(Debug, Clone, Parser)]
pub struct ServerArgs {
    /// Address to listen on; port 0 picks a free port (the bound address is logged).
    #[arg(
        long,
        value_name = "ADDR",
        env = "NANO_LISTEN",
        default_value = "127.0.0.1:8000"
    )]
    pub listen: String,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub remote: PeerArgs,

    /// How long requests in flight may take to finish after SIGINT/SIGTERM, e.g. 10s.
    #[arg(long, value_name = "DURATION", env = "NANO_GRACE_PERIOD", default_value = "10s", value_parser = humantime::parse_duration)]
    pub grace_period: Duration,

    /// Largest request body accepted, in bytes.
    #[arg(long, value_name = "BYTES", env = "NANO_BODY_LIMIT", default_value_t = nano_http::DEFAULT_BODY_LIMIT)]
    pub body_limit: usize,

    /// Time a request may take to arrive: its head, then its body, e.g. 30s. A late body is
    /// answered 408 C-REQUEST-TIMEOUT and its connection closed; an idle keep-alive connection is
    /// closed after this long without a request.
    #[arg(long, value_name = "DURATION", env = "NANO_REQUEST_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub request_timeout: Duration,

    /// Most connections open at once; more are answered 503 S-UNAVAILABLE and closed.
    #[arg(long, value_name = "N", env = "NANO_MAX_CONNECTIONS", default_value_t = nano_http::DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,

    /// Most requests read or handled at once; more are answered 503 S-UNAVAILABLE.
    #[arg(long, value_name = "N", env = "NANO_MAX_IN_FLIGHT", default_value_t = nano_http::DEFAULT_MAX_IN_FLIGHT)]
    pub max_in_flight: usize,

    /// Record every call this server serves and makes into DIR, one JSON fragment per request
    /// served; fragments of all servers are joined into scenarios by request id
    /// (`cargo run --release -p scenarios -- record --from-dir DIR`).
    #[arg(long, value_name = "DIR", env = "NANO_RECORD_DIR")]
    pub record: Option<PathBuf>,

    /// Most bytes of recorded fragments this server keeps in the --record directory; the oldest
    /// segment file is removed to stay under it.
    #[arg(long, value_name = "BYTES", env = "NANO_RECORD_MAX_BYTES", default_value_t = nano_record::DEFAULT_RECORD_MAX_BYTES)]
    pub record_max_bytes: u64,
}

const ENV_HELP: &str = "\
Every flag can also be set through the environment variable shown with it; flags win.
Logs go to stderr; RUST_LOG sets the filter (default: info,nano::call=warn). RUST_LOG=info
adds a span per service call (service, caller, req_id on every line) at a cost under load.";

/// The log filter when `RUST_LOG` is not set: `info` events, without the span nano opens for
/// every service call. Those spans put service, caller and request id on every log line, but
/// formatting them costs about a fifth of server1's median latency under load (see
/// BENCHMARKS.md), so they are opt-in with `RUST_LOG=info`.
pub const DEFAULT_LOG_FILTER: &str = "info,nano::call=warn";

impl ServerArgs {
    /// Parses the process's arguments for `spec`'s executable; prints help or a usage error and
    /// exits when asked to or when they are invalid.
    pub fn parse_for(spec: &ServerSpec) -> ServerArgs {
        let command = ServerArgs::command()
            .name(spec.name)
            .bin_name(spec.name)
            .about(spec.about)
            .after_help(ENV_HELP);
        let matches = command.get_matches();
        ServerArgs::from_arg_matches(&matches).unwrap_or_else(|err| err.exit())
    }
}

/// The first word of the line a server writes to stderr once it is bound.
pub const READY_PREFIX: &str = "NANO_LISTENING";

/// The ready line for a server bound to `addr`.
pub fn ready_line(addr: SocketAddr, spec: &ServerSpec) -> String {
    format!(
        "{READY_PREFIX} addr={addr} server={} service={}",
        spec.name, spec.exposes
    )
}

/// The bound address from a ready line, or `None` for any other line.
///
/// ```
/// let line = "NANO_LISTENING addr=127.0.0.1:41234 server=server1 service=svc2";
/// assert_eq!(services::server::parse_ready_line(line), Some("127.0.0.1:41234".parse().unwrap()));
/// assert_eq!(services::server::parse_ready_line("INFO listening"), None);
/// ```
pub fn parse_ready_line(line: &str) -> Option<SocketAddr> {
    let rest = line.trim().strip_prefix(READY_PREFIX)?;
    rest.split_whitespace()
        .find_map(|field| field.strip_prefix("addr="))
        .and_then(|addr| addr.parse().ok())
}

/// Sends tracing output to stderr, filtered by `RUST_LOG` (default [`DEFAULT_LOG_FILTER`]),
/// without colours unless stderr is a terminal so that logs stay parseable.
pub fn init_tracing() {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG_FILTER));
    // Fails only when a subscriber is already installed, which then keeps working.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// The whole `main` of a server executable: parse flags, log to stderr, serve until SIGINT or
/// SIGTERM. Exits 0 after a graceful shutdown, 1 when the server cannot start or fails, 2 on a
/// usage error.
pub fn main(spec: &ServerSpec) -> ExitCode {
    let args = ServerArgs::parse_for(spec);
    init_tracing();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            tracing::error!(error = %err, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(spec, &args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(server = spec.name, code = err.code(), error = %err, "server failed");
            ExitCode::FAILURE
        }
    }
}

/// Builds the set, binds the listener, writes the ready line and serves until SIGINT or
/// SIGTERM.
///
/// # Errors
///
/// A missing peer address, a set that does not build, an address that cannot be bound, or a
/// listener failure.
pub async fn run(spec: &ServerSpec, args: &ServerArgs) -> Result<(), NanoError> {
    let mut builder = ServiceSet::builder().hook(TracingHook);
    if let Some(dir) = &args.record {
        let limits = nano_record::RecordLimits {
            max_bytes: args.record_max_bytes,
            ..Default::default()
        };
        let recorder = DirectoryRecorder::with_limits(dir, spec.name, limits)
            .map_err(|err| NanoError::wrap(err, format!("cannot record into {}", dir.display())))?;
        tracing::info!(dir = %dir.display(), "recording served calls");
        builder = builder.hook(recorder);
    }
    let set = spec.build_set_with(&args.remote.transport()?, builder)?;
    let listener = HttpListener::bind(args.listen.as_str())
        .await?
        .expose_api(spec.exposes.api())?
        .grace_period(args.grace_period)
        .body_limit(args.body_limit)
        .request_timeout(args.request_timeout)
        .max_connections(args.max_connections)
        .max_in_flight(args.max_in_flight);
    let addr = listener.local_addr();
    tracing::info!(
        server = spec.name,
        %addr,
        local = ?spec.local.iter().map(|s| s.name()).collect::<Vec<_>>(),
        remote = ?args.remote.peers(),
        "starting"
    );
    // Installed before the ready line: a signal sent as soon as a parent sees the line must
    // drain the server, not kill it.
    let signals = nano_server::shutdown_signal()?;
    // Written directly rather than logged so it does not depend on the log filter or format.
    eprintln!("{}", ready_line(addr, spec));
    nano_server::serve_until(set, vec![listener.boxed()], signals).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_services_are_the_missing_dependencies() {
        let remote = |spec: ServerSpec| spec.remote();
        assert_eq!(remote(SERVER1), []);
        assert_eq!(remote(SERVER2A), [Svc::Svc3]);
        assert_eq!(remote(SERVER2B), []);
        assert_eq!(remote(SERVER3A), []);
        assert_eq!(remote(SERVER3B), [Svc::Svc1, Svc::Svc3]);
        assert_eq!(remote(SERVER3C), [Svc::Svc4]);
        assert_eq!(remote(SERVER3D), []);
    }

    #[test]
    fn every_spec_exposes_a_local_service_and_builds_with_its_peers() {
        for spec in SERVERS {
            assert!(spec.local.contains(&spec.exposes), "{}", spec.name);
            let peers: Peers = spec
                .remote()
                .iter()
                .map(|svc| Peer::new(svc.name(), "127.0.0.1:1").unwrap())
                .collect();
            let transport = HttpTransport::new(peers).unwrap();
            let set = spec.build_set(&transport).unwrap();
            assert!(set.contains(spec.exposes.name()));
        }
    }

    #[test]
    fn a_missing_peer_is_named() {
        let transport = HttpTransport::new(Peers::new()).unwrap();
        let err = SERVER3B.build_set(&transport).unwrap_err();
        assert_eq!(err.code(), nano::codes::UNKNOWN_SERVICE);
        assert!(err.to_string().contains("--peer svc1=ADDR"), "{err}");
    }

    #[test]
    fn a_peer_for_an_unknown_service_is_refused() {
        let args = ServerArgs::try_parse_from(["server2a", "--peer", "svc9=127.0.0.1:1"]).unwrap();
        let err = args.remote.transport().unwrap_err();
        assert_eq!(
            err.to_string(),
            "--peer names unknown service \"svc9\" (known: svc1, svc2, svc3, svc4)"
        );
    }

    #[test]
    fn flags_and_environment_parse_into_the_same_args() {
        let args = ServerArgs::try_parse_from([
            "server3b",
            "--listen",
            "127.0.0.1:0",
            "--peer",
            "svc1=127.0.0.1:1",
            "--peer",
            "svc3=127.0.0.1:2,svc4=127.0.0.1:3",
            "--timeout",
            "250ms",
            "--grace-period",
            "2s",
            "--request-timeout",
            "3s",
            "--max-connections",
            "7",
            "--max-in-flight",
            "5",
            "--max-response-bytes",
            "1000",
        ])
        .unwrap();
        assert_eq!(args.request_timeout, Duration::from_secs(3));
        assert_eq!((args.max_connections, args.max_in_flight), (7, 5));
        assert_eq!(args.remote.max_response_bytes, 1000);
        assert_eq!(args.listen, "127.0.0.1:0");
        assert_eq!(
            args.remote.peers().to_string(),
            "svc1=http://127.0.0.1:1,svc3=http://127.0.0.1:2,svc4=http://127.0.0.1:3"
        );
        assert_eq!(args.remote.timeout, Duration::from_millis(250));
        assert_eq!(args.grace_period, Duration::from_secs(2));
        let err = ServerArgs::try_parse_from(["server3b", "--peer", "svc1"]).unwrap_err();
        assert!(err.to_string().contains("NAME=ADDR"), "{err}");
        ServerArgs::command().debug_assert();
    }

    #[test]
    fn ready_lines_round_trip() {
        let addr: SocketAddr = "127.0.0.1:41234".parse().unwrap();
        assert_eq!(parse_ready_line(&ready_line(addr, &SERVER2A)), Some(addr));
        assert_eq!(parse_ready_line("NANO_LISTENING server=x"), None);
    }
}
