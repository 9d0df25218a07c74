//! [`Listener`]s: the server sides of transports, and how they are told to shut down.

use std::future::Future;

use tokio::sync::watch;

use nano::{BoxFuture, NanoError, ServiceSet};

/// The server side of a transport: accepts requests from outside and calls services of a set.
///
/// A listener runs until [`Shutdown`] is requested, then stops accepting, finishes the work in
/// flight and returns.
pub trait Listener: Send + 'static {
    /// Serves `set` until `shutdown` is requested.
    ///
    /// # Errors
    ///
    /// Returns an error when it cannot serve (e.g. its address is taken); the function that runs it then shuts
    /// the other listeners down and returns that error.
    fn listen(
        self,
        set: ServiceSet,
        shutdown: Shutdown,
    ) -> impl Future<Output = Result<(), NanoError>> + Send;

    /// Erases the listener so that listeners of different types can be served together.
    fn boxed(self) -> BoxListener
    where
        Self: Sized,
    {
        BoxListener(Box::new(move |set, shutdown| {
            Box::pin(self.listen(set, shutdown))
        }))
    }
}

/// The erased `listen` call of a boxed listener.
type ListenFn =
    dyn FnOnce(ServiceSet, Shutdown) -> BoxFuture<'static, Result<(), NanoError>> + Send;

/// A type-erased [`Listener`]; see [`Listener::boxed`].
pub struct BoxListener(Box<ListenFn>);

impl Listener for BoxListener {
    fn listen(
        self,
        set: ServiceSet,
        shutdown: Shutdown,
    ) -> impl Future<Output = Result<(), NanoError>> + Send {
        (self.0)(set, shutdown)
    }

    fn boxed(self) -> BoxListener {
        self
    }
}

/// Tells listeners when to stop accepting. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Shutdown(watch::Receiver<bool>);

/// Requests a [`Shutdown`]; dropping it requests one as well.
#[derive(Debug)]
pub struct ShutdownTrigger(watch::Sender<bool>);

impl Shutdown {
    /// A shutdown signal and the trigger that fires it.
    pub fn new() -> (ShutdownTrigger, Shutdown) {
        let (tx, rx) = watch::channel(false);
        (ShutdownTrigger(tx), Shutdown(rx))
    }

    /// Whether shutdown was requested.
    pub fn is_requested(&self) -> bool {
        *self.0.borrow()
    }

    /// Completes once shutdown is requested. The future owns what it needs, so it can be handed
    /// to e.g. a web server's graceful-shutdown hook.
    pub fn requested(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.0.clone();
        async move {
            // An error means the trigger was dropped, which also means "stop".
            let _ = rx.wait_for(|requested| *requested).await;
        }
    }
}

impl ShutdownTrigger {
    /// Requests shutdown.
    pub fn trigger(&self) {
        self.0.send_replace(true);
    }
}

impl Drop for ShutdownTrigger {
    fn drop(&mut self) {
        self.trigger();
    }
}
