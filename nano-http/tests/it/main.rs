//! Integration tests of the HTTP transport: real listeners and clients on loopback ports.

mod api;
mod auth;
mod client;
mod deadline;
mod limits;
mod listener;
mod misbehaving;
mod retry;
mod shutdown;
mod support;

#[test]
fn public_types_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<nano_http::HttpListener>();
    send_sync::<nano_http::HttpTransport>();
    send_sync::<nano_http::HttpClient>();
    send_sync::<nano_http::Endpoint>();
    send_sync::<nano_http::Peers>();
    send_sync::<nano_http::Peer>();
}
