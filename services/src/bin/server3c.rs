//! `server3c`: see [`services::server::SERVER3C`] and `--help`.

fn main() -> std::process::ExitCode {
    services::server::main(&services::server::SERVER3C)
}
