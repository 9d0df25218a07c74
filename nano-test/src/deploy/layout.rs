//! [`RunningLayout`]: every server of a [`System`]'s layout as child processes.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::ExitStatus;

use nano::NanoError;
use nano_http::Peers;
use nano_server::System;

use super::{Binaries, DeployError, ServerProcess, StartOptions};
use crate::Deployment;

/// A layout of a [`System`] running as child processes on loopback: one [`ServerProcess`] per
/// server executable, all killed when this is dropped.
#[derive(Debug)]
pub struct RunningLayout {
    system: System,
    layout: String,
    processes: Vec<ServerProcess>,
    /// Service name → the address of the server that exposes it.
    exposed: BTreeMap<String, SocketAddr>,
}

impl RunningLayout {
    /// Starts layout `layout` of `system`, server by server in the order
    /// [`System::plan`] gives: every server after the servers that expose its remote services,
    /// with `--listen 127.0.0.1:0`, a `--peer NAME=ADDR` per remote service and `options.args`.
    ///
    /// # Errors
    ///
    /// When the layout cannot be planned, an executable is missing, or a server does not start,
    /// print its ready line or pass its health check in time; the servers already started are
    /// killed.
    pub async fn start(
        system: &System,
        layout: &str,
        binaries: &Binaries,
        options: &StartOptions,
    ) -> Result<Self, DeployError> {
        let plan = system
            .plan(layout)
            .map_err(|err| DeployError::new(err.to_string()))?;
        let mut running = RunningLayout {
            system: system.clone(),
            layout: layout.to_owned(),
            processes: Vec::new(),
            exposed: BTreeMap::new(),
        };
        for planned in plan {
            let name = &planned.server.name;
            let path = binaries.path(name)?;
            let mut args = Vec::new();
            for (service, server) in &planned.peers {
                let addr = running.exposed.get(service).ok_or_else(|| {
                    DeployError::new(format!(
                        "{name} needs {service}, which {server} should expose but did not start before it"
                    ))
                })?;
                args.push("--peer".to_owned());
                args.push(format!("{service}={addr}"));
            }
            args.extend(options.args.iter().cloned());
            let process = ServerProcess::start(name, &path, &args, options).await?;
            for service in &planned.server.exposes {
                running.exposed.insert(service.clone(), process.addr());
            }
            running.processes.push(process);
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

    /// The address of the server exposing `service`, if one in this layout does.
    pub fn addr_of(&self, service: &str) -> Option<SocketAddr> {
        self.exposed.get(service).copied()
    }

    /// The base URL of the server exposing `service`, e.g. `http://127.0.0.1:41234`.
    pub fn url_of(&self, service: &str) -> Option<String> {
        self.addr_of(service).map(|addr| format!("http://{addr}"))
    }

    /// The services the layout's servers expose, in name order.
    pub fn exposed(&self) -> impl Iterator<Item = &str> {
        self.exposed.keys().map(String::as_str)
    }

    /// Where each exposed service is, for an HTTP client from outside the layout.
    pub fn peers(&self) -> Peers {
        let mut peers = Peers::new();
        for (service, addr) in &self.exposed {
            // A socket address is always a valid peer address.
            let _ = peers.insert(service, &addr.to_string());
        }
        peers
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
        let layout = self.layout.clone();
        self.process_mut(name)
            .ok_or_else(|| DeployError::new(format!("layout {layout:?} has no process {name:?}")))?
            .kill()
    }

    /// The layout as a [`Deployment`] named after it: clients of the exposed services over
    /// HTTP (their endpoints from the system's API declarations), calling as `"test"`. The
    /// processes run as long as the deployment or a client of it does.
    ///
    /// # Errors
    ///
    /// `S-INIT-FAILED` when the HTTP client cannot be set up.
    pub fn into_deployment(self) -> Result<Deployment, NanoError> {
        let name = self.layout.clone();
        Deployment::over_http(name, self.peers(), system_endpoints(&self.system), self)
    }
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
