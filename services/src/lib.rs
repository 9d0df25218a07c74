//! The example cluster from the nano article: four services, their API types, and (in `bin/`)
//! the executables that deploy them. [`system()`] describes the whole cluster: the executables
//! are three-line users of `nano_http::server::main` over it, and `nano_test::deploy` starts its
//! layouts as child processes on free loopback ports.
//!
//! ```text
//! svc2 ──► svc1
//!   └────► svc3 ──► svc4
//! ```
//!
//! - `svc1`: `Req { param }` → `Resp { value: "svc1_" + param }`
//! - `svc2`: `Req { param }` → svc1 → `Resp { value: "svc2_" + svc1.value }`;
//!   `GetReq {}` → svc3 with `"getparam"` → `GetResp { value: "svc2_" + svc3.value }`
//! - `svc3`: `Req { param }` → svc4 → `Resp { value: "svc3_" + svc4.value }`
//! - `svc4`: `Req { param }` → `Resp { value: "svc4_" + param }`
//!
//! ```
//! use nano::{Ctx, ServiceSet};
//! use services::api::svc2;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), nano::NanoError> {
//! let set = services::all(ServiceSet::builder()).build()?;
//! let svc2 = set.client("test", svc2::NAME)?;
//! let resp = svc2.call(&Ctx::new(), svc2::Req { param: "x".into() }).await?;
//! assert_eq!(resp.value, "svc2_svc1_x");
//! # Ok(()) }
//! ```

pub mod api;
pub mod svc1;
pub mod svc2;
pub mod svc3;
pub mod svc4;

use nano::ServiceSetBuilder;
use nano_server::System;

/// Adds all four example services to `builder`.
pub fn all(builder: ServiceSetBuilder) -> ServiceSetBuilder {
    builder
        .service(svc1::service())
        .service(svc2::service())
        .service(svc3::service())
        .service(svc4::service())
}

/// The example cluster as a [`System`]: the four services, the seven server executables of the
/// article's three layouts, the layouts `server1`, `server2` and `server3` over HTTP, and two
/// over a NATS broker: `server3-nats` (server3's four executables, `--nats` instead of peers)
/// and `server3-nats-x2` (two replicas of each of them, sharing every service's requests in its
/// queue group).
///
/// | executable | local services | remote | exposes |
/// |---|---|---|---|
/// | `server1` | svc1, svc2, svc3, svc4 | — | svc2 |
/// | `server2a` | svc1, svc2 | svc3 | svc2 |
/// | `server2b` | svc3, svc4 | — | svc3 |
/// | `server3a` | svc1 | — | svc1 |
/// | `server3b` | svc2 | svc1, svc3 | svc2 |
/// | `server3c` | svc3 | svc4 | svc3 |
/// | `server3d` | svc4 | — | svc4 |
///
/// ```
/// let system = services::system();
/// system.validate()?;
/// let server3b = system.server_spec("server3b").unwrap();
/// assert_eq!(system.remote_services(server3b)?, ["svc1", "svc3"]);
/// # Ok::<(), nano::NanoError>(())
/// ```
pub fn system() -> System {
    System::new("the example cluster")
        .service(&api::svc1::API, svc1::service)
        .service(&api::svc2::API, svc2::service)
        .service(&api::svc3::API, svc3::service)
        .service(&api::svc4::API, svc4::service)
        .server(
            "server1",
            "Runs svc1, svc2, svc3 and svc4 in one process and exposes svc2 over HTTP.",
            &["svc1", "svc2", "svc3", "svc4"],
            &["svc2"],
        )
        .server(
            "server2a",
            "Runs svc1 and svc2, calls svc3 over HTTP (--peer svc3=ADDR) or NATS (--nats URL) and exposes svc2.",
            &["svc1", "svc2"],
            &["svc2"],
        )
        .server(
            "server2b",
            "Runs svc3 and svc4 and exposes svc3 over HTTP.",
            &["svc3", "svc4"],
            &["svc3"],
        )
        .server("server3a", "Runs svc1 and exposes it over HTTP.", &["svc1"], &["svc1"])
        .server(
            "server3b",
            "Runs svc2, calls svc1 and svc3 over HTTP (--peer svc1=ADDR --peer svc3=ADDR) or NATS (--nats URL) and exposes svc2.",
            &["svc2"],
            &["svc2"],
        )
        .server(
            "server3c",
            "Runs svc3, calls svc4 over HTTP (--peer svc4=ADDR) or NATS (--nats URL) and exposes svc3.",
            &["svc3"],
            &["svc3"],
        )
        .server("server3d", "Runs svc4 and exposes it over HTTP.", &["svc4"], &["svc4"])
        .layout("server1", &["server1"])
        .layout("server2", &["server2a", "server2b"])
        .layout("server3", &["server3a", "server3b", "server3c", "server3d"])
        .nats_layout(
            "server3-nats",
            &["server3a", "server3b", "server3c", "server3d"],
        )
        .nats_layout(
            "server3-nats-x2",
            &[
                "server3a", "server3a", "server3b", "server3b", "server3c", "server3c", "server3d",
                "server3d",
            ],
        )
}
