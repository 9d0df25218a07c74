//! `signup-front`: a server executable of the sign-up system (see `signup::system()` and `--help`).

fn main() -> std::process::ExitCode {
    nano_http::server::main(&signup::system(), "signup-front")
}
