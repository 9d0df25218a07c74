//! The ready line: how a server process tells its parent where it listens.

use std::net::SocketAddr;

use crate::system::ServerSpec;

/// The first word of the line a server writes to stderr once it is bound.
pub const READY_PREFIX: &str = "NANO_LISTENING";

/// The ready line of `server` bound to `addr`:
/// `NANO_LISTENING addr=127.0.0.1:41234 server=server2a service=svc2` (the exposed services
/// joined by commas). Written directly to stderr, not logged, so that it does not depend on the
/// log filter or format; `--listen 127.0.0.1:0` works because a parent reads the address here.
pub fn ready_line(addr: SocketAddr, server: &ServerSpec) -> String {
    format!(
        "{READY_PREFIX} addr={addr} server={} service={}",
        server.name,
        server.exposes.join(",")
    )
}

/// The bound address from a ready line, or `None` for any other line.
///
/// ```
/// let line = "NANO_LISTENING addr=127.0.0.1:41234 server=server1 service=svc2";
/// assert_eq!(nano_server::parse_ready_line(line), Some("127.0.0.1:41234".parse().unwrap()));
/// assert_eq!(nano_server::parse_ready_line("INFO listening"), None);
/// ```
pub fn parse_ready_line(line: &str) -> Option<SocketAddr> {
    let rest = line.trim().strip_prefix(READY_PREFIX)?;
    rest.split_whitespace()
        .find_map(|field| field.strip_prefix("addr="))
        .and_then(|addr| addr.parse().ok())
}
