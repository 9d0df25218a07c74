//! [`RunningLayout`]: every server of a [`System`]'s layout as child processes.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::process::ExitStatus;

use nano::NanoError;
use nano_http::Peers;
use nano_server::{PlannedServer, System, Transport};

use super::{Binaries, DeployError, NatsBroker, ServerProcess, StartOptions};
use crate::Deployment;

/// A layout of a [`System`] running as child processes on loopback: one [`ServerProcess`] per
/// server executable (per replica, in a NATS layout), all killed when this is dropped, and for a
/// NATS layout the [`NatsBroker`] they share, stopped after them.
#[derive(Debug)]
pub struct RunningLayout {
    system: System,
    layout: String,
    transport: Transport,
    processes: Vec<ServerProcess>,
    /// Service name → the address of the server that exposes it (HTTP layouts only).
    addrs: BTreeMap<String, SocketAddr>,
    /// The services the layout's servers expose.
    exposed: BTreeSet<String>,
    /// The connection the layout's own clients use (NATS layouts only).
    #[cfg(feature = "nats")]
    nats: Option<nano_nats::NatsTransport>,
    // Declared last, so dropped after the processes: servers do not see their broker vanish.
    broker: Option<NatsBroker>,
}

impl RunningLayout {
    /// Starts layout `layout` of `system`, server by server in the order [`System::plan`]
    /// gives, each with `--listen 127.0.0.1:0` and `options.args`, and learns each bound
    /// address from the server's ready line.
    ///
    /// - Over HTTP, every server starts after the servers that expose its remote services and
    ///   gets a `--peer NAME=ADDR` per remote service.
    /// - Over NATS ([`System::nats_layout`]), a [`NatsBroker`] of the layout's own is started
    ///   first, and every server gets `--nats URL`; a server listed more than once runs as
    ///   replicas, named `NAME-1`, `NAME-2`, … (each also with `--instance` so that their
    ///   recordings do not mix). The layout's own clients connect to the broker once every
    ///   server is ready. This needs the feature `nats`.
    ///
    /// # Errors
    ///
    /// When the layout cannot be planned, an executable or `nats-server` is missing, a NATS
    /// layout is started without the feature `nats`, or a server does not start, print its
    /// ready line or pass its health check in time; what was already started is stopped.
    pub async fn start(
        system: &System,
        layout: &str,
        binaries: &Binaries,
        options: &StartOptions,
    ) -> Result<Self, DeployError> {
        let plan = system
            .plan(layout)
            .map_err(|err| DeployError::new(err.to_string()))?;
        let transport = system
            .layout_spec(layout)
            .map_or(Transport::Http, |spec| spec.transport);
        let mut running = RunningLayout {
            system: system.clone(),
            layout: layout.to_owned(),
            transport,
            processes: Vec::new(),
            addrs: BTreeMap::new(),
            exposed: BTreeSet::new(),
            #[cfg(feature = "nats")]
            nats: None,
            broker: None,
        };
        if transport == Transport::Nats && !cfg!(feature = "nats") {
            return Err(DeployError::new(format!(
                "layout {layout:?} runs over NATS, which needs the feature `nats` of nano-test"
            )));
        }
        let names = instance_names(&plan)?;
        // Every executable is found before anything starts.
        let paths = plan
            .iter()
            .map(|planned| binaries.path(&planned.server.name))
            .collect::<Result<Vec<_>, _>>()?;
        if transport == Transport::Nats {
            running.broker = Some(NatsBroker::start().await?);
        }
        for ((planned, instance), path) in plan.iter().zip(&names).zip(&paths) {
            let name = &planned.server.name;
            let mut args = Vec::new();
            for (service, server) in &planned.peers {
                let addr = running.addrs.get(service).ok_or_else(|| {
                    DeployError::new(format!(
                        "{name} needs {service}, which {server} should expose but did not start before it"
                    ))
                })?;
                args.push("--peer".to_owned());
                args.push(format!("{service}={addr}"));
            }
            if let Some(broker) = &running.broker {
                args.extend(["--nats".to_owned(), broker.url()]);
                if instance != name {
                    args.extend(["--instance".to_owned(), instance.clone()]);
                }
            }
            args.extend(options.args.iter().cloned());
            let process = ServerProcess::start(instance, path, &args, options).await?;
            for service in &planned.server.exposes {
                if transport == Transport::Http {
                    running.addrs.insert(service.clone(), process.addr());
                }
                running.exposed.insert(service.clone());
            }
            running.processes.push(process);
        }
        #[cfg(feature = "nats")]
        if let Some(broker) = &running.broker {
            let nats = nano_nats::NatsTransport::builder()
                .name(format!("{layout} clients"))
                .connect(&broker.url())
                .await
                .map_err(|err| {
                    DeployError::new(format!(
                        "cannot connect the clients of layout {layout:?} to its broker: {err}"
                    ))
                })?;
            running.nats = Some(nats);
        }
        Ok(running)
    }

    /// The system this runs.
    pub fn system(&self) -> &System {
        &self.system
    }

    /// The layout's name.
    pub fn layout(&self) -> &str {
        &self.layout
    }

    /// The transport between its servers.
    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// The address of the server exposing `service` over HTTP, if one in this layout does (in a
    /// NATS layout none does: its servers answer only the health check over HTTP).
    pub fn addr_of(&self, service: &str) -> Option<SocketAddr> {
        self.addrs.get(service).copied()
    }

    /// The base URL of the server exposing `service` over HTTP, e.g. `http://127.0.0.1:41234`.
    pub fn url_of(&self, service: &str) -> Option<String> {
        self.addr_of(service).map(|addr| format!("http://{addr}"))
    }

    /// The services the layout's servers expose, in name order.
    pub fn exposed(&self) -> impl Iterator<Item = &str> {
        self.exposed.iter().map(String::as_str)
    }

    /// Where each exposed service is, for an HTTP client from outside the layout (empty for a
    /// NATS layout).
    pub fn peers(&self) -> Peers {
        let mut peers = Peers::new();
        for (service, addr) in &self.addrs {
            // A socket address is always a valid peer address.
            let _ = peers.insert(service, &addr.to_string());
        }
        peers
    }

    /// The broker of a NATS layout.
    pub fn broker(&self) -> Option<&NatsBroker> {
        self.broker.as_ref()
    }

    /// The broker of a NATS layout, to stop and restart it.
    pub fn broker_mut(&mut self) -> Option<&mut NatsBroker> {
        self.broker.as_mut()
    }

    /// The broker connection of the layout's own clients (NATS layouts only), e.g. to make a
    /// client with [`NatsTransport::api_client`](nano_nats::NatsTransport::api_client).
    #[cfg(feature = "nats")]
    pub fn nats(&self) -> Option<&nano_nats::NatsTransport> {
        self.nats.as_ref()
    }

    /// Every process, in start order.
    pub fn processes(&self) -> &[ServerProcess] {
        &self.processes
    }

    /// The process called `name`: a server's name, or a replica's (`NAME-2`).
    pub fn process(&self, name: &str) -> Option<&ServerProcess> {
        self.processes.iter().find(|p| p.name() == name)
    }

    /// The process called `name`, to stop or signal it.
    pub fn process_mut(&mut self, name: &str) -> Option<&mut ServerProcess> {
        self.processes.iter_mut().find(|p| p.name() == name)
    }

    /// Kills (SIGKILL) the process called `name`, or when no process has that name, every
    /// replica of the server executable called `name`, and waits for them to exit; returns the
    /// exit status of the last.
    ///
    /// # Errors
    ///
    /// When the layout has no such process or server, or one cannot be killed.
    pub fn stop(&mut self, name: &str) -> Result<ExitStatus, DeployError> {
        let chosen = self.chosen(name)?;
        let mut status = None;
        for index in chosen {
            status = Some(self.processes[index].kill()?);
        }
        status.ok_or_else(|| DeployError::new(format!("no process of {name:?} to stop")))
    }

    /// Starts the process called `name` (or every replica of the server called `name`) again,
    /// killing it first if it still runs; see [`ServerProcess::restart`]. A restarted replica
    /// joins its queue groups again.
    ///
    /// # Errors
    ///
    /// When the layout has no such process or server, or it does not start.
    pub async fn restart(&mut self, name: &str) -> Result<(), DeployError> {
        for index in self.chosen(name)? {
            self.processes[index].restart().await?;
        }
        Ok(())
    }

    /// The processes `name` stands for: the one of that name, or every replica of the server.
    fn chosen(&self, name: &str) -> Result<Vec<usize>, DeployError> {
        let exact: Vec<usize> = self
            .processes
            .iter()
            .enumerate()
            .filter(|(_, p)| p.name() == name)
            .map(|(i, _)| i)
            .collect();
        if !exact.is_empty() {
            return Ok(exact);
        }
        let replicas: Vec<usize> = self
            .processes
            .iter()
            .enumerate()
            .filter(|(_, p)| replica_of(p.name(), name))
            .map(|(i, _)| i)
            .collect();
        if replicas.is_empty() {
            return Err(DeployError::new(format!(
                "layout {:?} has no process {name:?}",
                self.layout
            )));
        }
        Ok(replicas)
    }

    /// The layout's exposed services as a [`Deployment`] that does not keep the processes
    /// running: over HTTP for an HTTP layout, over the broker for a NATS layout, calling as
    /// `"test"`.
    ///
    /// # Errors
    ///
    /// `S-INIT-FAILED` when the clients cannot be set up.
    pub fn clients(&self) -> Result<Deployment, NanoError> {
        self.deployment(())
    }

    /// The layout as a [`Deployment`] named after it: clients of the exposed services (over
    /// HTTP for an HTTP layout, their endpoints from the system's API declarations; over the
    /// broker for a NATS layout), calling as `"test"`. The processes run as long as the
    /// deployment or a client of it does.
    ///
    /// # Errors
    ///
    /// `S-INIT-FAILED` when the clients cannot be set up.
    pub fn into_deployment(self) -> Result<Deployment, NanoError> {
        let (shell, keep) = self.split();
        shell.deployment(keep)
    }

    /// A copy of what [`deployment`](Self::deployment) needs, and the rest to keep alive.
    fn split(self) -> (RunningLayout, RunningLayout) {
        let shell = RunningLayout {
            system: self.system.clone(),
            layout: self.layout.clone(),
            transport: self.transport,
            processes: Vec::new(),
            addrs: self.addrs.clone(),
            exposed: self.exposed.clone(),
            #[cfg(feature = "nats")]
            nats: self.nats.clone(),
            broker: None,
        };
        (shell, self)
    }

    fn deployment(&self, keep: impl Send + Sync + 'static) -> Result<Deployment, NanoError> {
        let name = self.layout.clone();
        #[cfg(feature = "nats")]
        if let Some(nats) = &self.nats {
            let system = self.system.clone();
            return Ok(Deployment::over_nats(
                name,
                nats.clone(),
                move |service| system.api(service),
                keep,
            ));
        }
        Deployment::over_http(name, self.peers(), system_endpoints(&self.system), keep)
    }
}

/// Whether `process` is a replica of the server `server` (`server-1`, `server-2`, …).
fn replica_of(process: &str, server: &str) -> bool {
    process
        .strip_prefix(server)
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The process name of each planned server: the server's own, or `NAME-1`, `NAME-2`, … when the
/// layout runs it more than once.
fn instance_names(plan: &[PlannedServer]) -> Result<Vec<String>, DeployError> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for planned in plan {
        *counts.entry(&planned.server.name).or_default() += 1;
    }
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    let mut names = Vec::with_capacity(plan.len());
    for planned in plan {
        let name = planned.server.name.as_str();
        let instance = if counts[name] > 1 {
            let n = seen.entry(name).or_default();
            *n += 1;
            format!("{name}-{n}")
        } else {
            name.to_owned()
        };
        if counts.contains_key(instance.as_str()) && instance != name {
            return Err(DeployError::new(format!(
                "replica {instance:?} of {name:?} would have the name of another server of the layout"
            )));
        }
        names.push(instance);
    }
    Ok(names)
}

/// The endpoint table of every service of `system`, from its declarations.
pub(crate) fn system_endpoints(
    system: &System,
) -> impl Fn(&str) -> Option<Vec<nano_http::Endpoint>> + Send + Sync + 'static {
    let system = system.clone();
    move |service: &str| {
        system
            .api(service)
            .and_then(|api| nano_http::Endpoint::table(api).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A system whose one server runs nothing, with a layout of it over each transport.
    fn tiny() -> System {
        System::new("tiny")
            .server("idle", "Runs nothing.", &[], &[])
            .layout("plain", &["idle"])
            .nats_layout("brokered", &["idle", "idle"])
    }

    #[cfg(not(feature = "nats"))]
    #[tokio::test]
    async fn a_nats_layout_without_the_feature_is_refused_by_name() {
        let err = RunningLayout::start(
            &tiny(),
            "brokered",
            &Binaries::default(),
            &StartOptions::default(),
        )
        .await
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "layout \"brokered\" runs over NATS, which needs the feature `nats` of nano-test"
        );
    }

    #[tokio::test]
    async fn a_missing_executable_is_named_before_anything_starts() {
        for layout in ["plain", "brokered"] {
            let err = RunningLayout::start(
                &tiny(),
                layout,
                &Binaries::in_dir("/nonexistent"),
                &StartOptions::default(),
            )
            .await
            .unwrap_err();
            if layout == "brokered" && !cfg!(feature = "nats") {
                continue;
            }
            assert!(
                err.to_string()
                    .starts_with("executable \"idle\" not found at /nonexistent/idle"),
                "{layout}: {err}"
            );
        }
    }

    #[test]
    fn replicas_are_numbered_and_single_servers_keep_their_name() {
        let planned = |name: &str| PlannedServer {
            server: nano_server::ServerSpec {
                name: name.to_owned(),
                about: String::new(),
                local: Vec::new(),
                exposes: Vec::new(),
            },
            peers: BTreeMap::new(),
        };
        let plan: Vec<PlannedServer> = ["a", "b", "a", "c", "a"].map(planned).into();
        assert_eq!(
            instance_names(&plan).unwrap(),
            ["a-1", "b", "a-2", "c", "a-3"]
        );
        assert!(replica_of("a-2", "a"));
        assert!(!replica_of("a-", "a"));
        assert!(!replica_of("ab-2", "a"));
        assert!(!replica_of("a-x", "a"));

        let clash: Vec<PlannedServer> = ["a", "a", "a-1"].map(planned).into();
        let err = instance_names(&clash).unwrap_err();
        assert_eq!(
            err.to_string(),
            "replica \"a-1\" of \"a\" would have the name of another server of the layout"
        );
    }
}
