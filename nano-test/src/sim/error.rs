//! The errors of the simulator: [`SimError`], and [`BoxError`], what a simulated body returns.

use std::fmt;

/// Any error, as a simulated run's body returns it: `?` works on every error type inside the
/// body, and `Err("message".into())` states a broken invariant.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A fault plan that cannot be used, or a run that did not exercise what it was meant to.
#[derive(Clone, PartialEq, Eq)]
pub struct SimError {
    message: String,
}

impl SimError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        SimError {
            message: message.into(),
        }
    }

    /// What is wrong.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The message itself, also when a test returns this error with `?`.
impl fmt::Debug for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SimError {}
