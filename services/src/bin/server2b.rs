//! `server2b`: a server executable of the example cluster (see `services::system()` and `--help`).

fn main() -> std::process::ExitCode {
    nano_http::server::main(&services::system(), "server2b")
}
