//! The example executables as typed values, for the layouts of [`crate::deploy`] and the
//! scenario runner. The executables themselves run through `nano_http::server::main` with
//! [`crate::system()`]; this table mirrors that description:
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
use std::sync::{Arc, Mutex};

use nano::{Api, NanoError, ServiceSet, ServiceSetBuilder, SharedService};
use nano_http::HttpTransport;

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

/// The bound address from a ready line; see [`nano_server::parse_ready_line`].
pub use nano_server::parse_ready_line;

#[cfg(test)]
mod tests {
    use super::*;
    use nano_http::{Peer, Peers};

    #[test]
    fn the_table_agrees_with_the_system_description() {
        let system = crate::system();
        for spec in SERVERS {
            let described = system.server_spec(spec.name).unwrap();
            let local: Vec<&str> = spec.local.iter().map(|svc| svc.name()).collect();
            assert_eq!(described.local, local, "{}", spec.name);
            assert_eq!(described.exposes, [spec.exposes.name()], "{}", spec.name);
            let remote: Vec<&str> = spec.remote().iter().map(|svc| svc.name()).collect();
            assert_eq!(system.remote_services(described).unwrap(), remote);
        }
        assert_eq!(system.servers().len(), SERVERS.len());
    }

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
}
