//! Paths of the built executables and small helpers for tests against deployed servers.

use std::process::{Command, Output};
use std::time::Duration;

use nano_test::deploy::Binaries;

/// Every executable of this crate, as cargo built it for these tests.
pub(crate) fn binaries() -> Binaries {
    Binaries::default()
        .with("server1", env!("CARGO_BIN_EXE_server1"))
        .with("server2a", env!("CARGO_BIN_EXE_server2a"))
        .with("server2b", env!("CARGO_BIN_EXE_server2b"))
        .with("server3a", env!("CARGO_BIN_EXE_server3a"))
        .with("server3b", env!("CARGO_BIN_EXE_server3b"))
        .with("server3c", env!("CARGO_BIN_EXE_server3c"))
        .with("server3d", env!("CARGO_BIN_EXE_server3d"))
}

/// Runs `test_client` against svc2 at `svc2_addr` with `args`.
pub(crate) fn test_client(svc2_addr: std::net::SocketAddr, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_test_client"))
        .args(["--peer", &format!("svc2={svc2_addr}"), "--timeout", "10s"])
        .args(args)
        .env_remove("NANO_PEERS")
        .env_remove("NANO_TIMEOUT")
        .output()
        .expect("test_client runs")
}

/// A plain HTTP client whose timeout only turns a hang into a failure.
pub(crate) fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// A wait long enough to never decide a passing case; it only bounds a broken one.
pub(crate) const PATIENCE: Duration = Duration::from_secs(30);
