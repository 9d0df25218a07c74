//! `server3b`: see [`services::server::SERVER3B`] and `--help`.

fn main() -> std::process::ExitCode {
    services::server::main(&services::server::SERVER3B)
}
