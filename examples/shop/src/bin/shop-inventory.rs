//! `shop-inventory`: a server executable of the shop (see `shop::system()` and `--help`).

fn main() -> std::process::ExitCode {
    nano_http::server::main(&shop::system(), "shop-inventory")
}
