//! `server3a`: see [`services::server::SERVER3A`] and `--help`.

fn main() -> std::process::ExitCode {
    services::server::main(&services::server::SERVER3A)
}
