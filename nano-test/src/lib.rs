//! The nano testing toolkit.

pub mod sim;
