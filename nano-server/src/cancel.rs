//! [`CancelOnDrop`]: what a listener does when the party waiting for a request goes away.

use nano::Cancellation;

/// Cancels a request's context when dropped before [`disarm`](CancelOnDrop::disarm): a
/// listener holds one in the future of each request it handles, so that when that future is
/// dropped (the client went away, the connection closed) the request tree, including work it
/// spawned, is told to stop.
///
/// ```
/// let cancellation = nano::Cancellation::new();
/// drop(nano_server::CancelOnDrop::new(Some(cancellation.clone())));
/// assert!(cancellation.is_cancelled());
///
/// let finished = nano::Cancellation::new();
/// nano_server::CancelOnDrop::new(Some(finished.clone())).disarm();
/// assert!(!finished.is_cancelled());
/// ```
#[derive(Debug)]
#[must_use = "dropped at once, it cancels at once"]
pub struct CancelOnDrop {
    cancellation: Option<Cancellation>,
    note: Option<&'static str>,
}

impl CancelOnDrop {
    /// A guard of `cancellation` (none: a guard that does nothing).
    pub fn new(cancellation: Option<Cancellation>) -> Self {
        CancelOnDrop {
            cancellation,
            note: None,
        }
    }

    /// The same guard, logging `note` at debug level when it cancels.
    pub fn noting(mut self, note: &'static str) -> Self {
        self.note = Some(note);
        self
    }

    /// The request finished: dropping the guard cancels nothing.
    pub fn disarm(mut self) {
        self.cancellation = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(cancellation) = self.cancellation.take() {
            if let Some(note) = self.note {
                tracing::debug!("{note}");
            }
            cancellation.cancel();
        }
    }
}
