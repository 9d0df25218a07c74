//! The reusable `main` of a server executable (feature `server`): any [`System`]'s servers get
//! the same command line, logging, recording, ready line and graceful shutdown.
//!
//! A server executable is one call:
//!
//! ```no_run
//! # mod my_system { pub fn system() -> nano_server::System { nano_server::System::new("x") } }
//! fn main() -> std::process::ExitCode {
//!     nano_http::server::main(&my_system::system(), "server1")
//! }
//! ```
//!
//! It runs the server's local services (built from their dependencies; every dependency that is
//! not local is reached over HTTP at the address `--peer NAME=ADDR` gives it), exposes the
//! services the [`ServerSpec`] names on `--listen`, logs to stderr with `RUST_LOG`, records with
//! `--record DIR`, authenticates the request types the system's edge protects
//! ([`System::auth`](nano_server::System::auth)), writes the machine-readable ready line
//! (`NANO_LISTENING addr=… server=… service=…`, see [`nano_server::parse_ready_line`]) once
//! bound, and shuts down gracefully on SIGINT/SIGTERM, whose handlers are installed before the
//! ready line is written.
//!
//! With the feature `nats`, `--nats URL` (or `NANO_NATS`) puts the server on a NATS broker
//! instead: the exposed services are served there (a `nano_nats::NatsListener`, one queue
//! group per service, so replicas of a server share the requests), every remote service that no
//! `--peer` names is called there, and `--listen` serves only `GET /health-check`. The ready
//! line is written once the subscriptions reached the broker. A broker that cannot be reached
//! within `--nats-connect-timeout` ends the server with exit status 1 and the reason. The NATS
//! listener has no edge authentication, so a server that would expose a request type
//! [`System::auth`](nano_server::System::auth) protects over the broker refuses to start
//! (`S-INIT-FAILED`) rather than serve it without asking for a token.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, CommandFactory, FromArgMatches, Parser};
use nano::{Api, NanoError, ServiceSet, ServiceSetBuilder, SharedService, codes};
use nano_record::{DirectoryRecorder, RecordLimits};
use nano_server::{BoxListener, Listener, ServerSpec, Setting, System, TracingHook, ready_line};

use crate::{HttpListener, HttpTransport, Peer, Peers};

/// How to reach remote services: the flags every server executable (and a client program, such
/// as a test client) takes.
#[derive(Debug, Clone, Args)]
pub struct PeerArgs {
    /// Address of a remote service, as NAME=ADDR (e.g. orders=127.0.0.1:8001); repeatable. ADDR
    /// is host:port or http://host:port[/prefix]. NANO_PEERS takes a comma-separated list.
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
    #[arg(long, value_name = "BYTES", env = "NANO_MAX_RESPONSE_BYTES", default_value_t = crate::DEFAULT_MAX_RESPONSE_BYTES)]
    pub max_response_bytes: usize,

    /// Serve and reach services over the NATS broker at URL (nats://HOST:PORT) instead of HTTP:
    /// every remote service that no --peer names is called over the broker, and a server serves
    /// the services it exposes there (one queue group each, so replicas share the requests;
    /// --listen then answers GET /health-check only).
    #[cfg(feature = "nats")]
    #[arg(long, value_name = "URL", env = "NANO_NATS")]
    pub nats: Option<String>,

    /// First token of every NATS subject and queue group (subjects are
    /// PREFIX.SERVICE.WIRE-NAME), so that several systems can share one broker.
    #[cfg(feature = "nats")]
    #[arg(long, value_name = "PREFIX", env = "NANO_NATS_PREFIX", default_value = nano_nats::DEFAULT_PREFIX)]
    pub nats_prefix: String,

    /// Limit on connecting to the NATS broker at start, e.g. 5s; the process fails when it
    /// passes. Once connected, a lost broker is reconnected to for ever.
    #[cfg(feature = "nats")]
    #[arg(long, value_name = "DURATION", env = "NANO_NATS_CONNECT_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    pub nats_connect_timeout: Duration,
}

impl PeerArgs {
    /// The peers as a discovery map.
    pub fn peers(&self) -> Peers {
        self.peers.iter().cloned().collect()
    }

    /// An HTTP transport with these peers, timeout and response limit, for the services of
    /// `system`.
    ///
    /// # Errors
    ///
    /// `C-BAD-REQUEST` when a peer names a service `system` does not have (a typo that would
    /// otherwise only show up as "no address" on the first request); `S-INIT-FAILED` when the
    /// HTTP client cannot be set up.
    pub fn transport(&self, system: &System) -> Result<HttpTransport, NanoError> {
        if let Some(unknown) = self.peers.iter().find(|p| system.api(p.name()).is_none()) {
            return Err(NanoError::bad_request(format!(
                "--peer names unknown service {:?} (known: {})",
                unknown.name(),
                system.service_names().join(", ")
            )));
        }
        HttpTransport::builder()
            .peers(self.peers())
            .timeout(self.timeout)
            .max_response_bytes(self.max_response_bytes)
            .build()
    }

    /// The transports to the remote services of `system`: the HTTP transport of
    /// [`transport`](PeerArgs::transport) and, with `--nats`, a connection to the broker named
    /// `name` (what the broker's monitoring shows), with the same timeout and response limit.
    ///
    /// # Errors
    ///
    /// As [`transport`](PeerArgs::transport); with `--nats`, `S-UNAVAILABLE` when the broker
    /// cannot be reached within `--nats-connect-timeout` and `S-INIT-FAILED` for an invalid URL
    /// or prefix.
    pub async fn connect(&self, system: &System, name: &str) -> Result<Remote, NanoError> {
        let http = self.transport(system)?;
        #[cfg(feature = "nats")]
        let nats = match &self.nats {
            None => None,
            Some(url) => Some(
                nano_nats::NatsTransport::builder()
                    .prefix(self.nats_prefix.clone())
                    .timeout(self.timeout)
                    .connect_timeout(self.nats_connect_timeout)
                    .max_response_bytes(self.max_response_bytes)
                    .name(name)
                    .connect(url)
                    .await?,
            ),
        };
        #[cfg(not(feature = "nats"))]
        let _ = name;
        Ok(Remote {
            http,
            #[cfg(feature = "nats")]
            nats,
        })
    }
}

/// How a program reaches remote services: over HTTP at the address `--peer` gives a service,
/// and (feature `nats`, with `--nats`) over the NATS broker for every other one. Made by
/// [`PeerArgs::connect`].
#[derive(Debug, Clone)]
pub struct Remote {
    http: HttpTransport,
    #[cfg(feature = "nats")]
    nats: Option<nano_nats::NatsTransport>,
}

impl Remote {
    /// Remote services over HTTP only.
    pub fn http_only(http: HttpTransport) -> Self {
        Remote {
            http,
            #[cfg(feature = "nats")]
            nats: None,
        }
    }

    /// The HTTP transport.
    pub fn http(&self) -> &HttpTransport {
        &self.http
    }

    /// The broker connection, with `--nats`.
    #[cfg(feature = "nats")]
    pub fn nats(&self) -> Option<&nano_nats::NatsTransport> {
        self.nats.as_ref()
    }

    /// The client of the remote service declared by `api`: over HTTP when a peer address is
    /// known for it, else over the broker when there is one.
    ///
    /// # Errors
    ///
    /// `S-UNKNOWN-SERVICE` when the service has neither (the message says how to give one);
    /// `S-INIT-FAILED` when its declaration cannot be called over the transport.
    pub fn api_client(&self, api: &'static Api) -> Result<SharedService, NanoError> {
        #[cfg(feature = "nats")]
        if let Some(nats) = &self.nats
            && self.http.peers().get(api.name()).is_none()
        {
            return Ok(SharedService::new(nats.api_client(api)?));
        }
        Ok(SharedService::new(self.http.api_client(api)?))
    }
}

/// The command line of a server executable.
#[derive(Debug, Clone, Parser)]
pub struct ServerArgs {
    /// Address to listen on; port 0 picks a free port (the bound address is in the ready line).
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

    /// Name of this process among replicas of one server executable: it names the files and
    /// fragments it records and its broker connection [default: the server's name]. Replicas
    /// that record into one directory need different names.
    #[arg(long, value_name = "NAME", env = "NANO_INSTANCE")]
    pub instance: Option<String>,

    /// How long requests in flight may take to finish after SIGINT/SIGTERM, e.g. 10s.
    #[arg(long, value_name = "DURATION", env = "NANO_GRACE_PERIOD", default_value = "10s", value_parser = humantime::parse_duration)]
    pub grace_period: Duration,

    /// Largest request body accepted, in bytes.
    #[arg(long, value_name = "BYTES", env = "NANO_BODY_LIMIT", default_value_t = crate::DEFAULT_BODY_LIMIT)]
    pub body_limit: usize,

    /// Time a request may take to arrive: its head, then its body, e.g. 30s. A late body is
    /// answered 408 C-REQUEST-TIMEOUT and its connection closed; an idle keep-alive connection is
    /// closed after this long without a request.
    #[arg(long, value_name = "DURATION", env = "NANO_REQUEST_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub request_timeout: Duration,

    /// Most connections open at once; more are answered 503 S-UNAVAILABLE and closed.
    #[arg(long, value_name = "N", env = "NANO_MAX_CONNECTIONS", default_value_t = crate::DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,

    /// Most requests read or handled at once; more are answered 503 S-UNAVAILABLE.
    #[arg(long, value_name = "N", env = "NANO_MAX_IN_FLIGHT", default_value_t = crate::DEFAULT_MAX_IN_FLIGHT)]
    pub max_in_flight: usize,

    /// Record every call this server serves and makes into DIR; the fragments of all servers
    /// are joined into scenarios by request id (the scenario runner's `record --from-dir DIR`).
    #[arg(long, value_name = "DIR", env = "NANO_RECORD_DIR")]
    pub record: Option<PathBuf>,

    /// Most bytes of recorded fragments this server keeps in the --record directory; the oldest
    /// segment file is removed to stay under it.
    #[arg(long, value_name = "BYTES", env = "NANO_RECORD_MAX_BYTES", default_value_t = nano_record::DEFAULT_RECORD_MAX_BYTES)]
    pub record_max_bytes: u64,
}

/// The environment variables a server reads its settings from. A parent that starts servers
/// clears them so that its own environment does not change what it starts.
pub const SERVER_ENV: &[&str] = &[
    "NANO_LISTEN",
    "NANO_PEERS",
    "NANO_TIMEOUT",
    "NANO_MAX_RESPONSE_BYTES",
    #[cfg(feature = "nats")]
    "NANO_NATS",
    #[cfg(feature = "nats")]
    "NANO_NATS_PREFIX",
    #[cfg(feature = "nats")]
    "NANO_NATS_CONNECT_TIMEOUT",
    "NANO_INSTANCE",
    "NANO_GRACE_PERIOD",
    "NANO_BODY_LIMIT",
    "NANO_REQUEST_TIMEOUT",
    "NANO_MAX_CONNECTIONS",
    "NANO_MAX_IN_FLIGHT",
    "NANO_RECORD_DIR",
    "NANO_RECORD_MAX_BYTES",
];

const ENV_HELP: &str = "\
Every flag can also be set through the environment variable shown with it; flags win.
Logs go to stderr; RUST_LOG sets the filter (default: info,nano::call=warn,async_nats=warn).
RUST_LOG=info adds a span per service call (service, caller, req_id on every line) at a cost
under load.

Examples:
  {name} --listen 127.0.0.1:0                 # a free port; the ready line on stderr names it
  {name} --listen 0.0.0.0:8000 --peer NAME=10.0.0.5:8000 --record /var/tmp/calls
  NANO_LISTEN=127.0.0.1:9000 RUST_LOG=debug {name}";

#[cfg(feature = "nats")]
const NATS_HELP: &str = "
  {name} --nats nats://127.0.0.1:4222 --listen 127.0.0.1:0   # serve and call over NATS
  {name} --nats nats://10.0.0.9:4222 --instance {name}-2 --record /var/tmp/calls   # a replica";
#[cfg(not(feature = "nats"))]
const NATS_HELP: &str = "";

/// The log filter when `RUST_LOG` is not set: `info` events, without the per-call span of
/// [`TracingHook`]. Those spans put service, caller and request id on every log line, but
/// formatting them costs about a fifth of a server's median latency under load (see
/// BENCHMARKS.md), so they are opt-in with `RUST_LOG=info`. async-nats' own `info` lines are
/// left out too: `nano_nats` logs each change of the broker connection once.
pub const DEFAULT_LOG_FILTER: &str = "info,nano::call=warn,async_nats=warn";

impl ServerArgs {
    /// Parses the process's arguments for the executable `server` of `system`: the flags of
    /// every server, and the system's own [`Setting`]s that its services read (whose values it
    /// records for [`Setting::value`]). Prints help or a usage error and exits when asked to or
    /// when they are invalid.
    pub fn parse_for(system: &System, server: &ServerSpec) -> ServerArgs {
        let settings = system.settings_for(server);
        let matches = Self::command_for(server, &settings).get_matches();
        let args = ServerArgs::from_arg_matches(&matches).unwrap_or_else(|err| err.exit());
        let given = settings
            .iter()
            .filter_map(|setting| {
                let value = matches.get_one::<String>(setting.flag())?;
                Some((setting.flag(), value.clone()))
            })
            .collect();
        nano_server::set_given_settings(given);
        args
    }

    /// The command line of the executable `server`, with `settings` as flags of their own.
    fn command_for(server: &ServerSpec, settings: &[Setting]) -> clap::Command {
        let name: &'static str = Box::leak(server.name.clone().into_boxed_str());
        let mut command = ServerArgs::command()
            .name(name)
            .bin_name(name)
            .about(server.about.clone())
            .after_help(format!("{ENV_HELP}{NATS_HELP}").replace("{name}", name));
        if !settings.is_empty() {
            command = command.next_help_heading("Settings of this system");
        }
        for setting in settings {
            command = command.arg(
                clap::Arg::new(setting.flag())
                    .long(setting.flag())
                    .env(setting.env())
                    .value_name(setting.value_name())
                    .help(setting.help()),
            );
        }
        command
    }
}

/// The first of `settings` whose flag or variable is one of the server main's own.
fn clashing_setting(settings: &[Setting]) -> Option<Setting> {
    let command = ServerArgs::command();
    settings.iter().copied().find(|setting| {
        SERVER_ENV.contains(&setting.env())
            || command
                .get_arguments()
                .any(|arg| arg.get_long() == Some(setting.flag()) || arg.get_id() == setting.flag())
    })
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

/// The whole `main` of the server executable `server` of `system`: parse flags, log to
/// stderr, serve until SIGINT or SIGTERM. Exits 0 after a graceful shutdown, 1 when the server
/// cannot start or fails (also when `system` has no such server), 2 on a usage error.
pub fn main(system: &System, server: &str) -> ExitCode {
    let Some(spec) = system.server_spec(server) else {
        let known: Vec<&str> = system.servers().iter().map(|s| s.name.as_str()).collect();
        eprintln!(
            "error: system {:?} has no server {server:?} (known: {})",
            system.name(),
            known.join(", ")
        );
        return ExitCode::FAILURE;
    };
    if let Some(clash) = clashing_setting(&system.settings_for(spec)) {
        eprintln!(
            "error: system {:?} declares the setting --{} (or its variable {}), which every \
             server already takes",
            system.name(),
            clash.flag(),
            clash.env()
        );
        return ExitCode::FAILURE;
    }
    let args = ServerArgs::parse_for(system, spec);
    init_tracing();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            tracing::error!(error = %err, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(system, spec, &args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(server = %spec.name, code = err.code(), error = %err, "server failed");
            ExitCode::FAILURE
        }
    }
}

/// The set of `server`, starting from `builder` (e.g. one with hooks): its local services, and
/// a client for each service they depend on that is not local, from `remote` (over HTTP, or over
/// the broker; the set's fallback supplies them as the services ask, so no list of remote
/// services is needed).
///
/// # Errors
///
/// `S-UNKNOWN-SERVICE` when `remote` has no way to reach a remote service or `system` has no
/// API for it; a set build error otherwise.
pub fn build_set(
    system: &System,
    server: &ServerSpec,
    remote: &Remote,
    builder: ServiceSetBuilder,
) -> Result<ServiceSet, NanoError> {
    let (system_for_remote, remote) = (system.clone(), remote.clone());
    let builder = builder.fallback(move |name| {
        let api = system_for_remote.api(name).ok_or_else(|| {
            NanoError::new(
                codes::UNKNOWN_SERVICE,
                format!(
                    "system {:?} has no service {name:?} to call remotely",
                    system_for_remote.name()
                ),
            )
        })?;
        remote.api_client(api)
    });
    system.local(server, builder)?.build()
}

/// Builds the set, binds the listener (and with `--nats` subscribes the exposed services on the
/// broker), installs the signal handlers, writes the ready line and serves until SIGINT or
/// SIGTERM.
///
/// # Errors
///
/// A missing peer address, a broker that cannot be reached, a set that does not build, an
/// address that cannot be bound, or a listener failure.
pub async fn run(system: &System, server: &ServerSpec, args: &ServerArgs) -> Result<(), NanoError> {
    let instance = args.instance.as_deref().unwrap_or(&server.name);
    let mut builder = ServiceSet::builder().hook(TracingHook);
    if let Some(dir) = &args.record {
        let limits = RecordLimits {
            max_bytes: args.record_max_bytes,
            ..Default::default()
        };
        let recorder = DirectoryRecorder::with_limits(dir, instance, limits)
            .map_err(|err| NanoError::wrap(err, format!("cannot record into {}", dir.display())))?;
        tracing::info!(dir = %dir.display(), "recording served calls");
        builder = builder.hook(recorder);
    }
    let remote = args.remote.connect(system, instance).await?;
    let set = build_set(system, server, &remote, builder)?;
    let mut exposed = Vec::with_capacity(server.exposes.len());
    for name in &server.exposes {
        exposed.push(system.api(name).ok_or_else(|| {
            NanoError::new(
                codes::UNKNOWN_SERVICE,
                format!("server {:?} exposes unknown service {name:?}", server.name),
            )
        })?);
    }
    let mut http = HttpListener::bind(args.listen.as_str())
        .await?
        .grace_period(args.grace_period)
        .body_limit(args.body_limit)
        .request_timeout(args.request_timeout)
        .max_connections(args.max_connections)
        .max_in_flight(args.max_in_flight);
    // Over NATS the HTTP listener answers only the health check, which needs no token; the
    // NATS listener has no authentication of its own, so `over_nats` refuses protected types.
    if let Some(auth) = system.edge_auth() {
        http = http.auth(auth.clone());
    }
    let addr = http.local_addr();
    let mut listeners: Vec<BoxListener> = Vec::with_capacity(2);
    match over_nats(&remote, args, &exposed, system.edge_auth()).await? {
        Some(nats) => listeners.push(nats),
        None => {
            for api in &exposed {
                http = http.expose_api(api)?;
            }
        }
    }
    listeners.insert(0, http.boxed());
    let remote_names: Vec<&str> = set
        .names()
        .filter(|name| !server.local.iter().any(|local| local == name))
        .collect();
    tracing::info!(
        server = %server.name,
        instance = %instance,
        %addr,
        local = ?server.local,
        remote = ?remote_names,
        peers = %args.remote.peers(),
        nats = ?nats_url(&remote),
        "starting"
    );
    // Installed before the ready line: a signal sent as soon as a parent sees the line must
    // drain the server, not kill it.
    let signals = nano_server::shutdown_signal()?;
    // Written directly rather than logged so it does not depend on the log filter or format.
    eprintln!("{}", ready_line(addr, server));
    nano_server::serve_until(set, listeners, signals).await
}

/// With `--nats`, the listener that serves `exposed` on the broker, already subscribed, so that
/// the ready line comes after the broker knows where to send their requests.
#[cfg(feature = "nats")]
async fn over_nats(
    remote: &Remote,
    args: &ServerArgs,
    exposed: &[&'static Api],
    auth: Option<&nano_wire::EdgeAuth>,
) -> Result<Option<BoxListener>, NanoError> {
    let Some(nats) = remote.nats() else {
        return Ok(None);
    };
    no_edge_auth_over_nats(exposed, auth)?;
    let mut listener = nats
        .listener()
        .grace_period(args.grace_period)
        .body_limit(args.body_limit)
        .max_in_flight(args.max_in_flight);
    for api in exposed {
        listener = listener.expose_api(api)?;
    }
    Ok(Some(listener.subscribe().await?.boxed()))
}

#[cfg(not(feature = "nats"))]
async fn over_nats(
    _remote: &Remote,
    _args: &ServerArgs,
    _exposed: &[&'static Api],
    _auth: Option<&nano_wire::EdgeAuth>,
) -> Result<Option<BoxListener>, NanoError> {
    Ok(None)
}

/// The NATS listener does not authenticate: a server refuses to serve a type the edge protects
/// there, rather than serve it without its token check.
#[cfg_attr(not(feature = "nats"), allow(dead_code))]
fn no_edge_auth_over_nats(
    exposed: &[&'static Api],
    auth: Option<&nano_wire::EdgeAuth>,
) -> Result<(), NanoError> {
    let Some(auth) = auth else {
        return Ok(());
    };
    let operations = exposed.iter().flat_map(|api| api.operations());
    match operations
        .map(|op| op.request.name())
        .find(|name| auth.is_protected(name))
    {
        Some(name) => Err(NanoError::new(
            codes::INIT_FAILED,
            format!(
                "{name} needs a bearer token at the edge, which the NATS listener does not \
                 check; serve it over HTTP"
            ),
        )),
        None => Ok(()),
    }
}

/// The broker's address, for the start-up log line.
fn nats_url(remote: &Remote) -> Option<&str> {
    #[cfg(feature = "nats")]
    return remote.nats().map(|nats| nats.url());
    #[cfg(not(feature = "nats"))]
    {
        let _ = remote;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nano::{Client, Ctx};
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Clone, Default, Serialize, Deserialize)]
    struct Ask {}
    #[derive(Debug, Clone, Default, Serialize, Deserialize)]
    struct Answer {}

    mod front {
        nano::api! { service "front"; fn ask(super::Ask) -> () = "front.Ask", POST "/"; }
    }
    mod back {
        nano::api! { service "back"; fn answer(super::Answer) -> () = "back.Answer", POST "/"; }
    }

    struct Front(Client);
    impl front::Handler for Front {
        async fn ask(&self, ctx: &Ctx, _: Ask) -> Result<(), NanoError> {
            self.0.call(ctx, Answer {}).await
        }
    }
    struct Back;
    impl back::Handler for Back {
        async fn answer(&self, _: &Ctx, _: Answer) -> Result<(), NanoError> {
            Ok(())
        }
    }

    fn system() -> System {
        System::new("pair")
            .service(&front::API, || {
                front::service(|deps| Ok(Front(deps.client(back::NAME)?)))
            })
            .service(&back::API, || back::service(|_| Ok(Back)))
            .server("front-server", "Runs front.", &["front"], &["front"])
    }

    fn args(argv: &[&str]) -> ServerArgs {
        ServerArgs::try_parse_from(argv).unwrap()
    }

    #[test]
    fn remote_services_get_http_clients_from_the_fallback() {
        let system = system();
        let spec = system.server_spec("front-server").unwrap();
        let transport = args(&["x", "--peer", "back=127.0.0.1:1"])
            .remote
            .transport(&system)
            .unwrap();
        let remote = Remote::http_only(transport);
        let set = build_set(&system, spec, &remote, ServiceSet::builder()).unwrap();
        assert_eq!(set.names().collect::<Vec<_>>(), ["front", "back"]);
        assert!(std::ptr::eq(set.api("back").unwrap(), &back::API));
    }

    #[test]
    fn a_missing_peer_is_named() {
        let system = system();
        let spec = system.server_spec("front-server").unwrap();
        let remote = Remote::http_only(HttpTransport::new(Peers::new()).unwrap());
        let err = build_set(&system, spec, &remote, ServiceSet::builder()).unwrap_err();
        assert_eq!(err.code(), codes::UNKNOWN_SERVICE);
        assert!(err.to_string().contains("--peer back=ADDR"), "{err}");
    }

    #[test]
    fn a_peer_for_an_unknown_service_is_refused() {
        let err = args(&["x", "--peer", "svc9=127.0.0.1:1"])
            .remote
            .transport(&system())
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "--peer names unknown service \"svc9\" (known: front, back)"
        );
    }

    #[test]
    fn flags_parse_and_the_command_is_consistent() {
        let parsed = args(&[
            "x",
            "--listen",
            "127.0.0.1:0",
            "--peer",
            "front=127.0.0.1:1",
            "--peer",
            "back=127.0.0.1:2,other=127.0.0.1:3",
            "--timeout",
            "250ms",
            "--grace-period",
            "2s",
        ]);
        assert_eq!(parsed.listen, "127.0.0.1:0");
        assert_eq!(
            parsed.remote.peers().to_string(),
            "back=http://127.0.0.1:2,front=http://127.0.0.1:1,other=http://127.0.0.1:3"
        );
        assert_eq!(parsed.remote.timeout, Duration::from_millis(250));
        assert_eq!(parsed.grace_period, Duration::from_secs(2));
        let err = ServerArgs::try_parse_from(["x", "--peer", "front"]).unwrap_err();
        assert!(err.to_string().contains("NAME=ADDR"), "{err}");
        ServerArgs::command().debug_assert();
    }

    #[test]
    fn the_instance_names_a_replica_and_defaults_to_the_server() {
        assert_eq!(args(&["x"]).instance, None);
        assert_eq!(
            args(&["x", "--instance", "front-server-2"])
                .instance
                .as_deref(),
            Some("front-server-2")
        );
    }

    #[cfg(feature = "nats")]
    #[test]
    fn nats_flags_parse_with_their_defaults() {
        let plain = args(&["x"]);
        assert_eq!(plain.remote.nats, None);
        assert_eq!(plain.remote.nats_prefix, "nano");
        assert_eq!(plain.remote.nats_connect_timeout, Duration::from_secs(5));
        let parsed = args(&[
            "x",
            "--nats",
            "nats://127.0.0.1:4222",
            "--nats-prefix",
            "prod.nano",
            "--nats-connect-timeout",
            "250ms",
        ]);
        assert_eq!(parsed.remote.nats.as_deref(), Some("nats://127.0.0.1:4222"));
        assert_eq!(parsed.remote.nats_prefix, "prod.nano");
        assert_eq!(
            parsed.remote.nats_connect_timeout,
            Duration::from_millis(250)
        );
    }

    #[cfg(feature = "nats")]
    #[tokio::test]
    async fn a_broker_that_cannot_be_reached_or_a_bad_prefix_is_a_coded_error() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let url = format!("nats://{closed}");
        let err = args(&["x", "--nats", &url, "--nats-connect-timeout", "2s"])
            .remote
            .connect(&system(), "x")
            .await
            .unwrap_err();
        assert_eq!(err.code(), codes::UNAVAILABLE, "{err}");
        assert!(
            err.to_string()
                .starts_with(&format!("cannot connect to the NATS broker at {url}")),
            "{err}"
        );
        let err = args(&["x", "--nats", &url, "--nats-prefix", "a..b"])
            .remote
            .connect(&system(), "x")
            .await
            .unwrap_err();
        assert_eq!(err.code(), codes::INIT_FAILED, "{err}");
    }

    #[test]
    fn every_server_variable_is_a_flag() {
        let command = ServerArgs::command();
        let envs: Vec<String> = command
            .get_arguments()
            .filter_map(|arg| arg.get_env())
            .map(|env| env.to_string_lossy().into_owned())
            .collect();
        let mut listed: Vec<String> = SERVER_ENV.iter().map(|s| (*s).to_owned()).collect();
        let mut found = envs.clone();
        listed.sort();
        found.sort();
        assert_eq!(found, listed);
    }

    #[test]
    fn a_type_the_edge_protects_is_not_served_over_nats() {
        let auth = nano_wire::EdgeAuth::new(back::NAME, |_| Answer {}, |(): ()| String::new());
        assert!(no_edge_auth_over_nats(&[&front::API], Some(&auth)).is_ok());
        assert!(no_edge_auth_over_nats(&[&front::API], None).is_ok());
        let auth = auth.protect::<Ask>();
        let err = no_edge_auth_over_nats(&[&back::API, &front::API], Some(&auth)).unwrap_err();
        assert_eq!(err.code(), codes::INIT_FAILED);
        assert!(
            err.to_string()
                .starts_with("front.Ask needs a bearer token"),
            "{err}"
        );
    }

    static BACK_DB: Setting =
        Setting::new("back-db", "PAIR_BACK_DB", "PATH", "Where back keeps things");

    #[test]
    fn a_system_setting_is_a_flag_of_the_servers_running_its_services_only() {
        let system = system()
            .server("back-server", "Runs back.", &["back"], &["back"])
            .setting(BACK_DB, &["back"]);
        system.validate().unwrap();
        let back = system.server_spec("back-server").unwrap();
        let front = system.server_spec("front-server").unwrap();
        assert_eq!(system.settings_for(back), [BACK_DB]);
        assert!(system.settings_for(front).is_empty());

        let command = ServerArgs::command_for(back, &system.settings_for(back));
        command.clone().debug_assert();
        let help = command.clone().render_long_help().to_string();
        assert!(help.contains("--back-db <PATH>"), "{help}");
        assert!(help.contains("PAIR_BACK_DB"), "{help}");
        let matches = command
            .try_get_matches_from(["back-server", "--back-db", "/tmp/x.db"])
            .unwrap();
        assert_eq!(matches.get_one::<String>("back-db").unwrap(), "/tmp/x.db");
        let front_command = ServerArgs::command_for(front, &system.settings_for(front));
        let err = front_command
            .try_get_matches_from(["front-server", "--back-db", "/tmp/x.db"])
            .unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::UnknownArgument);
    }

    #[test]
    fn a_setting_that_takes_a_servers_own_flag_or_variable_is_refused() {
        let own_flag = Setting::new("listen", "PAIR_LISTEN", "ADDR", "clashes by flag");
        let own_env = Setting::new("where", "NANO_LISTEN", "ADDR", "clashes by variable");
        let fine = Setting::new("where", "PAIR_WHERE", "ADDR", "its own");
        assert_eq!(clashing_setting(&[fine, own_flag]), Some(own_flag));
        assert_eq!(clashing_setting(&[own_env]), Some(own_env));
        assert_eq!(clashing_setting(&[fine]), None);
        let replica = Setting::new("replica", "NANO_INSTANCE", "NAME", "clashes by variable");
        assert_eq!(clashing_setting(&[fine, replica]), Some(replica));
    }

    #[cfg(feature = "nats")]
    #[test]
    fn a_setting_that_takes_a_nats_flag_or_variable_is_refused() {
        let own_flag = Setting::new("nats-prefix", "PAIR_PREFIX", "PREFIX", "clashes by flag");
        let own_env = Setting::new("broker", "NANO_NATS", "URL", "clashes by variable");
        assert_eq!(clashing_setting(&[own_flag]), Some(own_flag));
        assert_eq!(clashing_setting(&[own_env]), Some(own_env));
    }

    #[test]
    fn two_settings_of_one_flag_or_variable_or_of_an_unknown_service_are_refused() {
        let one = Setting::new("db", "PAIR_DB", "PATH", "one");
        let same_flag = Setting::new("db", "PAIR_OTHER", "PATH", "same flag");
        let same_env = Setting::new("other", "PAIR_DB", "PATH", "same variable");
        let err = system()
            .setting(one, &["back"])
            .setting(same_flag, &["front"]);
        assert!(
            err.validate()
                .unwrap_err()
                .to_string()
                .contains("two settings are --db")
        );
        let err = system()
            .setting(one, &["back"])
            .setting(same_env, &["front"]);
        assert!(
            err.validate()
                .unwrap_err()
                .to_string()
                .contains("two settings read PAIR_DB")
        );
        let err = system().setting(one, &["nowhere"]).validate().unwrap_err();
        assert!(err.to_string().contains("nowhere"), "{err}");
    }
}
