//! The example cluster from the nano article: four services, their API types, and (in `bin/`)
//! the executables that deploy them. [`server`] holds what the executables share (layouts,
//! flags, logging); [`deploy`] starts a whole layout as child processes on free loopback ports.
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
pub mod deploy;
pub mod server;
pub mod svc1;
pub mod svc2;
pub mod svc3;
pub mod svc4;

use nano::ServiceSetBuilder;

/// Adds all four example services to `builder`.
pub fn all(builder: ServiceSetBuilder) -> ServiceSetBuilder {
    builder
        .service(svc1::service())
        .service(svc2::service())
        .service(svc3::service())
        .service(svc4::service())
}
