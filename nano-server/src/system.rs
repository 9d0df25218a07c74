//! [`System`]: one value that describes a whole system of services and how it is deployed.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::{Arc, Mutex};

use nano::{
    AnyRequest, Api, Ctx, NanoError, NewService, Outcome, Service, ServiceSetBuilder,
    SharedService, codes,
};
use nano_wire::EdgeAuth;

use crate::Setting;

/// A user's system: its services (how to construct each, and its declared API), the server
/// executables (which services each runs and which it exposes; the services it reaches remotely
/// follow from the dependencies its local services ask for) and named layouts (which executables
/// form a deployment, connected by HTTP or by a NATS broker — [`Transport`]).
///
/// The server main, the deployments of the test toolkit and the scenario runner all read their
/// facts from here, so nothing in them is specific to one system. That includes the edge's
/// authentication ([`auth`](System::auth)): every server's listener and every in-process
/// replay of the runner apply it.
///
/// ```
/// use nano::{Client, Ctx, NanoError};
/// use nano_server::System;
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Debug, Clone, Default, Serialize, Deserialize)] pub struct Ping {}
/// # #[derive(Debug, Clone, Default, Serialize, Deserialize)] pub struct BackPing {}
/// # #[derive(Debug, Clone, Default, Serialize, Deserialize)] pub struct Pong {}
/// # mod front { nano::api! { service "front"; fn ping(super::Ping) -> super::Pong = "front.Ping", POST "/"; } }
/// # mod back { nano::api! { service "back"; fn ping(super::BackPing) -> super::Pong = "back.Ping", POST "/"; } }
/// # struct Front { back: Client }
/// # impl front::Handler for Front {
/// #     async fn ping(&self, ctx: &Ctx, _: Ping) -> Result<Pong, NanoError> { self.back.call(ctx, BackPing {}).await }
/// # }
/// # struct Back;
/// # impl back::Handler for Back { async fn ping(&self, _: &Ctx, _: BackPing) -> Result<Pong, NanoError> { Ok(Pong {}) } }
/// # fn main() -> Result<(), NanoError> {
/// let system = System::new("ping")
///     .service(&front::API, || front::service(|deps| Ok(Front { back: deps.client(back::NAME)? })))
///     .service(&back::API, || back::service(|_| Ok(Back)))
///     .server("all", "Runs front and back; exposes front.", &["front", "back"], &["front"])
///     .server("front-only", "Runs front; calls back remotely.", &["front"], &["front"])
///     .server("back-only", "Runs back.", &["back"], &["back"])
///     .layout("monolith", &["all"])
///     .layout("split", &["front-only", "back-only"]);
/// system.validate()?;
///
/// let front_only = system.server_spec("front-only").unwrap();
/// assert_eq!(system.remote_services(front_only)?, ["back"]);
/// let plan = system.plan("split")?;
/// assert_eq!(plan[0].server.name, "back-only"); // peers start first
/// assert_eq!(plan[1].peers["back"], "back-only");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct System {
    name: String,
    services: Vec<ServiceEntry>,
    servers: Vec<ServerSpec>,
    layouts: Vec<Layout>,
    auth: Option<EdgeAuth>,
    /// The system's own settings, each with the services that read it.
    settings: Vec<(Setting, Vec<String>)>,
}

/// Makes a fresh, unbuilt service each time it is called.
type MakeService = Arc<dyn Fn() -> NewService + Send + Sync>;

#[derive(Clone)]
struct ServiceEntry {
    api: &'static Api,
    make: MakeService,
}

/// One server executable of a [`System`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSpec {
    /// The executable's name (also its binary's name).
    pub name: String,
    /// One line for `--help`.
    pub about: String,
    /// The services running in this process.
    pub local: Vec<String>,
    /// The local services its listeners expose.
    pub exposes: Vec<String>,
}

/// A named deployment: the server executables that together run the system, and the transport
/// between them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The layout's name, e.g. `"3"` or `"split"`.
    pub name: String,
    /// The executables it starts, one process each; in a [`Transport::Nats`] layout an
    /// executable listed more than once runs as that many replicas.
    pub servers: Vec<String>,
    /// How its servers serve and reach each other.
    pub transport: Transport,
}

/// The transport a [`Layout`]'s servers serve and reach services over. Plain data: the server
/// main and the deployments of the test toolkit act on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Transport {
    /// Each server exposes its services over HTTP and reaches every remote service at the
    /// address of the one server of the layout that exposes it (`--peer NAME=ADDR`).
    #[default]
    Http,
    /// Every server serves and reaches services over one NATS broker (`--nats URL`); a service
    /// may be exposed by several servers, or by replicas of one, which share its requests.
    Nats,
}

impl Transport {
    /// `"HTTP"` or `"NATS"`, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Http => "HTTP",
            Transport::Nats => "NATS",
        }
    }
}

/// One server of a planned layout, with the server of the layout that serves each of its remote
/// services; see [`System::plan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedServer {
    /// The server.
    pub server: ServerSpec,
    /// Remote service name → the name of the server in the layout that exposes it (empty in a
    /// NATS layout, where the broker finds the services).
    pub peers: BTreeMap<String, String>,
}

impl System {
    /// An empty system called `name` (used in messages and reports).
    pub fn new(name: impl Into<String>) -> Self {
        System {
            name: name.into(),
            services: Vec::new(),
            servers: Vec::new(),
            layouts: Vec::new(),
            auth: None,
            settings: Vec::new(),
        }
    }

    /// Declares a setting that the services named in `services` read when they are made: the
    /// server executables running any of them take it as a flag (and its environment
    /// variable), shown in their `--help`.
    #[must_use]
    pub fn setting(mut self, setting: Setting, services: &[&str]) -> Self {
        let services = services.iter().map(|s| (*s).to_owned()).collect();
        self.settings.push((setting, services));
        self
    }

    /// The settings a server takes: those read by any of the services it runs, in the order
    /// they were declared.
    pub fn settings_for(&self, server: &ServerSpec) -> Vec<Setting> {
        self.settings
            .iter()
            .filter(|(_, services)| services.iter().any(|s| server.local.contains(s)))
            .map(|(setting, _)| *setting)
            .collect()
    }

    /// Authenticates calls at the system's edge with `auth`: the request types it protects need
    /// a bearer token that its auth service (a service of this system) accepts, wherever a
    /// server exposes them over HTTP and wherever the runner replays them in process. (The NATS
    /// listener has no such check, so the server main refuses to serve a protected type over a
    /// broker.)
    #[must_use]
    pub fn auth(mut self, auth: EdgeAuth) -> Self {
        self.auth = Some(auth);
        self
    }

    /// The edge's authentication, when the system has one.
    pub fn edge_auth(&self) -> Option<&EdgeAuth> {
        self.auth.as_ref()
    }

    /// Adds a service: its declared API and a function that makes it (e.g. the `service(…)`
    /// function [`nano::api!`] writes, with the constructor of the service's state).
    #[must_use]
    pub fn service(
        mut self,
        api: &'static Api,
        make: impl Fn() -> NewService + Send + Sync + 'static,
    ) -> Self {
        self.services.push(ServiceEntry {
            api,
            make: Arc::new(make),
        });
        self
    }

    /// Adds a server executable that runs `local` and exposes `exposes`.
    #[must_use]
    pub fn server(
        mut self,
        name: impl Into<String>,
        about: impl Into<String>,
        local: &[&str],
        exposes: &[&str],
    ) -> Self {
        self.servers.push(ServerSpec {
            name: name.into(),
            about: about.into(),
            local: local.iter().map(|s| (*s).to_owned()).collect(),
            exposes: exposes.iter().map(|s| (*s).to_owned()).collect(),
        });
        self
    }

    /// Adds a named layout of server executables connected by HTTP.
    #[must_use]
    pub fn layout(self, name: impl Into<String>, servers: &[&str]) -> Self {
        self.layout_over(Transport::Http, name, servers)
    }

    /// Adds a named layout of server executables that serve and reach each other over a NATS
    /// broker. An executable listed twice runs as two replicas sharing its services' requests:
    ///
    /// ```
    /// # let system = nano_server::System::new("x").server("all", "Runs nothing.", &[], &[]);
    /// let system = system.nats_layout("all-twice", &["all", "all"]);
    /// assert_eq!(system.plan("all-twice")?.len(), 2);
    /// # Ok::<(), nano::NanoError>(())
    /// ```
    #[must_use]
    pub fn nats_layout(self, name: impl Into<String>, servers: &[&str]) -> Self {
        self.layout_over(Transport::Nats, name, servers)
    }

    /// Adds a named layout of server executables connected by `transport`.
    #[must_use]
    pub fn layout_over(
        mut self,
        transport: Transport,
        name: impl Into<String>,
        servers: &[&str],
    ) -> Self {
        self.layouts.push(Layout {
            name: name.into(),
            servers: servers.iter().map(|s| (*s).to_owned()).collect(),
            transport,
        });
        self
    }

    /// The system's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The declared APIs of every service, in the order they were added.
    pub fn apis(&self) -> Vec<&'static Api> {
        self.services.iter().map(|entry| entry.api).collect()
    }

    /// The declared API of the service called `service`.
    pub fn api(&self, service: &str) -> Option<&'static Api> {
        self.entry(service).map(|entry| entry.api)
    }

    /// The names of every service, in the order they were added.
    pub fn service_names(&self) -> Vec<&'static str> {
        self.services.iter().map(|entry| entry.api.name()).collect()
    }

    /// A fresh, unbuilt instance of the service called `service`.
    pub fn new_service(&self, service: &str) -> Option<NewService> {
        self.entry(service).map(|entry| (entry.make)())
    }

    /// Adds every service of the system to `builder`: the whole system in one process.
    pub fn all(&self, mut builder: ServiceSetBuilder) -> ServiceSetBuilder {
        for entry in &self.services {
            builder = builder.service((entry.make)());
        }
        builder
    }

    /// The server executables.
    pub fn servers(&self) -> &[ServerSpec] {
        &self.servers
    }

    /// The server executable called `name`.
    pub fn server_spec(&self, name: &str) -> Option<&ServerSpec> {
        self.servers.iter().find(|server| server.name == name)
    }

    /// The layouts.
    pub fn layouts(&self) -> &[Layout] {
        &self.layouts
    }

    /// The layout called `name`.
    pub fn layout_spec(&self, name: &str) -> Option<&Layout> {
        self.layouts.iter().find(|layout| layout.name == name)
    }

    /// Adds the local services of `server` to `builder`.
    ///
    /// # Errors
    ///
    /// `S-UNKNOWN-SERVICE` when the server names a service the system does not have.
    pub fn local(
        &self,
        server: &ServerSpec,
        mut builder: ServiceSetBuilder,
    ) -> Result<ServiceSetBuilder, NanoError> {
        for name in &server.local {
            let service = self.new_service(name).ok_or_else(|| self.unknown(name))?;
            builder = builder.service(service);
        }
        Ok(builder)
    }

    /// The services `server` reaches remotely: the dependencies of its local services that are
    /// not local, as the set finds them while building the local services (in the order the
    /// system lists its services). Building runs the services' constructors.
    ///
    /// # Errors
    ///
    /// An unknown local service, a dependency the system does not have, or a failed build.
    pub fn remote_services(&self, server: &ServerSpec) -> Result<Vec<String>, NanoError> {
        let asked: Arc<Mutex<BTreeSet<String>>> = Arc::default();
        let seen = Arc::clone(&asked);
        let builder = nano::ServiceSet::builder().fallback(move |name| {
            seen.lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .insert(name.to_owned());
            Ok(SharedService::new(NotCalled(name.to_owned())))
        });
        self.local(server, builder)?.build()?;
        let asked = asked.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(unknown) = asked.iter().find(|name| self.entry(name).is_none()) {
            return Err(NanoError::new(
                codes::MISSING_DEPENDENCY,
                format!(
                    "server {:?} depends on service {unknown:?}, which system {:?} does not have",
                    server.name, self.name
                ),
            ));
        }
        Ok(self
            .service_names()
            .into_iter()
            .filter(|name| asked.contains(*name))
            .map(str::to_owned)
            .collect())
    }

    /// The servers of layout `layout` in the order to start them, each with where its remote
    /// services are.
    ///
    /// Over HTTP every server starts after the servers that expose its remote services, and
    /// `peers` names the one server that exposes each. Over NATS the broker finds the services:
    /// the servers start in the order listed (replicas included, one entry each), `peers` is
    /// empty, and a remote service needs at least one server of the layout that exposes it.
    ///
    /// # Errors
    ///
    /// `S-UNKNOWN-SERVICE` for an unknown layout or server; `S-MISSING-DEPENDENCY` when no server
    /// of the layout exposes a service one of them needs, or (over HTTP) two expose it;
    /// `S-INIT-FAILED` when an HTTP layout lists a server twice or its servers depend on each
    /// other in a cycle.
    pub fn plan(&self, layout: &str) -> Result<Vec<PlannedServer>, NanoError> {
        let spec = self.layout_spec(layout).ok_or_else(|| {
            let known: Vec<&str> = self.layouts.iter().map(|l| l.name.as_str()).collect();
            NanoError::new(
                codes::UNKNOWN_SERVICE,
                format!(
                    "system {:?} has no layout {layout:?} (known: {})",
                    self.name,
                    known.join(", ")
                ),
            )
        })?;
        if let Some(name) = spec.servers.iter().find(|n| self.server_spec(n).is_none()) {
            return Err(NanoError::new(
                codes::UNKNOWN_SERVICE,
                format!("layout {layout:?} names unknown server {name:?}"),
            ));
        }
        let over_nats = spec.transport == Transport::Nats;
        if !over_nats
            && let Some(twice) = spec
                .servers
                .iter()
                .enumerate()
                .find_map(|(i, name)| spec.servers[..i].contains(name).then_some(name))
        {
            return Err(NanoError::new(
                codes::INIT_FAILED,
                format!(
                    "HTTP layout {layout:?} lists server {twice:?} twice; replicas of a server share its requests over NATS only (System::nats_layout)"
                ),
            ));
        }
        let mut pending = Vec::new();
        for name in &spec.servers {
            let server = self.server_spec(name).expect("checked above");
            let mut peers = BTreeMap::new();
            for remote in self.remote_services(server)? {
                let exposing: Vec<&String> = spec
                    .servers
                    .iter()
                    .filter(|other| {
                        self.server_spec(other)
                            .is_some_and(|s| s.exposes.contains(&remote))
                    })
                    .collect();
                if over_nats && !exposing.is_empty() {
                    continue;
                }
                let [provider] = exposing[..] else {
                    return Err(NanoError::new(
                        codes::MISSING_DEPENDENCY,
                        format!(
                            "in layout {layout:?}, server {name:?} needs service {remote:?}, which {} of its servers expose",
                            if exposing.is_empty() {
                                "none"
                            } else {
                                "several"
                            }
                        ),
                    ));
                };
                peers.insert(remote, provider.clone());
            }
            pending.push(PlannedServer {
                server: server.clone(),
                peers,
            });
        }
        if over_nats {
            return Ok(pending);
        }
        let mut order: Vec<PlannedServer> = Vec::with_capacity(pending.len());
        while !pending.is_empty() {
            let ready = pending.iter().position(|planned| {
                planned
                    .peers
                    .values()
                    .all(|provider| order.iter().any(|done| &done.server.name == provider))
            });
            let Some(ready) = ready else {
                let names: Vec<&str> = pending.iter().map(|p| p.server.name.as_str()).collect();
                return Err(NanoError::new(
                    codes::INIT_FAILED,
                    format!(
                        "the servers {} of layout {layout:?} depend on each other in a cycle",
                        names.join(", ")
                    ),
                ));
            };
            order.push(pending.remove(ready));
        }
        Ok(order)
    }

    /// Checks the description: unique names, every server's services known and what it exposes
    /// local, the auth service known and in every server that exposes a protected request type,
    /// and every layout deployable ([`plan`](System::plan)).
    ///
    /// # Errors
    ///
    /// The first problem found, naming what is involved.
    pub fn validate(&self) -> Result<(), NanoError> {
        let invalid = |message: String| NanoError::new(codes::INIT_FAILED, message);
        let mut names = BTreeSet::new();
        for entry in &self.services {
            let made = (entry.make)();
            if made.name() != entry.api.name() {
                return Err(invalid(format!(
                    "the service added with the API of {:?} is named {:?}",
                    entry.api.name(),
                    made.name()
                )));
            }
            if !names.insert(entry.api.name()) {
                return Err(invalid(format!(
                    "system {:?} has two services named {:?}",
                    self.name,
                    entry.api.name()
                )));
            }
        }
        let mut servers = BTreeSet::new();
        for server in &self.servers {
            if !servers.insert(server.name.as_str()) {
                return Err(invalid(format!("two servers are named {:?}", server.name)));
            }
            for name in server.local.iter().chain(&server.exposes) {
                if self.entry(name).is_none() {
                    return Err(self.unknown(name));
                }
            }
            if let Some(name) = server.exposes.iter().find(|s| !server.local.contains(s)) {
                return Err(invalid(format!(
                    "server {:?} exposes {name:?}, which it does not run",
                    server.name
                )));
            }
        }
        if let Some(auth) = &self.auth {
            self.check_auth(auth)?;
        }
        self.check_settings()?;
        for layout in &self.layouts {
            self.plan(&layout.name)?;
        }
        Ok(())
    }

    /// Every setting is read by services of the system, and no two share a flag or a variable.
    fn check_settings(&self) -> Result<(), NanoError> {
        let invalid = |message: String| NanoError::new(codes::INIT_FAILED, message);
        let (mut flags, mut envs) = (BTreeSet::new(), BTreeSet::new());
        for (setting, services) in &self.settings {
            if let Some(name) = services.iter().find(|name| self.entry(name).is_none()) {
                return Err(self.unknown(name));
            }
            if !flags.insert(setting.flag()) {
                return Err(invalid(format!("two settings are --{}", setting.flag())));
            }
            if !envs.insert(setting.env()) {
                return Err(invalid(format!("two settings read {}", setting.env())));
            }
        }
        Ok(())
    }

    /// The auth service exists, and every server exposing a protected request type has it, in
    /// the process or as a dependency of its local services.
    fn check_auth(&self, auth: &EdgeAuth) -> Result<(), NanoError> {
        if self.entry(auth.service()).is_none() {
            return Err(self.unknown(auth.service()));
        }
        for server in &self.servers {
            let guarded = server.exposes.iter().find_map(|name| {
                let api = self.api(name)?;
                let operation = api
                    .operations()
                    .iter()
                    .find(|op| auth.is_protected(op.request.name()))?;
                Some((name, operation.request.name()))
            });
            let Some((service, request)) = guarded else {
                continue;
            };
            if !server.local.iter().any(|local| local == auth.service())
                && !self
                    .remote_services(server)?
                    .iter()
                    .any(|r| r == auth.service())
            {
                return Err(NanoError::new(
                    codes::INIT_FAILED,
                    format!(
                        "server {:?} exposes {request} of {service:?}, which needs a token, but has no {:?} to verify it",
                        server.name,
                        auth.service()
                    ),
                ));
            }
        }
        Ok(())
    }

    fn entry(&self, service: &str) -> Option<&ServiceEntry> {
        self.services
            .iter()
            .find(|entry| entry.api.name() == service)
    }

    fn unknown(&self, name: &str) -> NanoError {
        NanoError::new(
            codes::UNKNOWN_SERVICE,
            format!(
                "system {:?} has no service {name:?} (its services: {})",
                self.name,
                self.service_names().join(", ")
            ),
        )
    }
}

impl fmt::Debug for System {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("System")
            .field("name", &self.name)
            .field("services", &self.service_names())
            .field("servers", &self.servers)
            .field("layouts", &self.layouts)
            .field("auth", &self.auth)
            .field("settings", &self.settings)
            .finish()
    }
}

/// The stand-in [`System::remote_services`] builds with; it only lets the build finish.
struct NotCalled(String);

impl Service for NotCalled {
    fn name(&self) -> &str {
        &self.0
    }

    async fn handle(&self, _ctx: Ctx, req: AnyRequest) -> Outcome {
        Err(NanoError::bad_request_type(req.name()))
    }
}
