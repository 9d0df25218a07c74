//! `server2b`: see [`services::server::SERVER2B`] and `--help`.

fn main() -> std::process::ExitCode {
    services::server::main(&services::server::SERVER2B)
}
