//! [`Endpoint`] is declared in `nano-wire`, where the transport-fidelity hook reads it too.

pub use nano_wire::Endpoint;
