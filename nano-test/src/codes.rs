//! Error codes of the toolkit, next to [`nano::codes`].

/// A spec (or a path pattern, or a regex in it) does not parse.
pub const BAD_SPEC: &str = "C-BAD-SPEC";
/// A mock was called with a request no expectation matches (and it has no fallback handler).
pub const UNEXPECTED_CALL: &str = "S-UNEXPECTED-CALL";
/// A mock expectation in a [`Sequence`](crate::Sequence) was called out of order.
pub const OUT_OF_ORDER: &str = "S-OUT-OF-ORDER";
/// A mock expectation matched but has no response configured.
pub const NO_RESPONSE: &str = "S-NO-RESPONSE";
/// A toolkit helper was used in a way that cannot work (e.g. a parity check with one deployment).
pub const BAD_USE: &str = "C-BAD-USE";
