//! `server3d`: see [`services::server::SERVER3D`] and `--help`.

fn main() -> std::process::ExitCode {
    services::server::main(&services::server::SERVER3D)
}
