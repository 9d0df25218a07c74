//! `server2a`: see [`services::server::SERVER2A`] and `--help`.

fn main() -> std::process::ExitCode {
    services::server::main(&services::server::SERVER2A)
}
