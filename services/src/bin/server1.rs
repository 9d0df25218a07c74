//! `server1`: see [`services::server::SERVER1`] and `--help`.

fn main() -> std::process::ExitCode {
    services::server::main(&services::server::SERVER1)
}
