//! [`Listener`]s and [`serve`]: exposing a set to the outside world until shutdown.

use std::future::Future;

use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::error::NanoError;
use crate::service::BoxFuture;
use crate::set::ServiceSet;

/// The server side of a transport: accepts requests from outside and calls services of a set.
///
/// A listener runs until [`Shutdown`] is requested, then stops accepting, finishes the work in
/// flight and returns.
pub trait Listener: Send + 'static {
    /// Serves `set` until `shutdown` is requested.
    ///
    /// # Errors
    ///
    /// Returns an error when it cannot serve (e.g. its address is taken); [`serve`] then shuts
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

/// Serves `set` with every listener until SIGINT or SIGTERM, then shuts down gracefully: each
/// listener stops accepting, finishes its in-flight requests and returns.
///
/// ```no_run
/// # async fn run(set: nano::ServiceSet, http: impl nano::Listener) -> Result<(), nano::NanoError> {
/// use nano::Listener;
/// nano::serve(set, vec![http.boxed()]).await
/// # }
/// ```
///
/// # Errors
///
/// The first listener error (the other listeners are shut down first), or an error when the
/// signal handlers cannot be installed. Never exits the process.
pub async fn serve(set: ServiceSet, listeners: Vec<BoxListener>) -> Result<(), NanoError> {
    let signals = shutdown_signal()?;
    serve_until(set, listeners, signals).await
}

/// Like [`serve`], but shuts down when `signal` completes instead of on SIGINT/SIGTERM.
///
/// # Errors
///
/// The first listener error; the other listeners are shut down first.
pub async fn serve_until(
    set: ServiceSet,
    listeners: Vec<BoxListener>,
    signal: impl Future<Output = ()> + Send,
) -> Result<(), NanoError> {
    let (trigger, shutdown) = Shutdown::new();
    let mut running = JoinSet::new();
    for listener in listeners {
        running.spawn(listener.listen(set.clone(), shutdown.clone()));
    }
    tokio::pin!(signal);
    let mut first_error = None;
    loop {
        tokio::select! {
            () = &mut signal, if !shutdown.is_requested() => {
                tracing::info!("shutdown requested, finishing in-flight requests");
                trigger.trigger();
            }
            finished = running.join_next() => {
                let Some(finished) = finished else { break };
                let result = finished.unwrap_or_else(|join| {
                    Err(NanoError::internal(format!("listener task failed: {join}")))
                });
                if let Err(err) = result {
                    tracing::error!(error = %err, "listener failed, shutting the others down");
                    first_error.get_or_insert(err);
                    trigger.trigger();
                }
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// A future that completes on SIGINT (Ctrl-C) or, on Unix, SIGTERM.
///
/// # Errors
///
/// When the signal handlers cannot be installed.
pub fn shutdown_signal() -> Result<impl Future<Output = ()> + Send + 'static, NanoError> {
    #[cfg(unix)]
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|err| NanoError::wrap(err, "cannot install the SIGTERM handler"))?;
    Ok(async move {
        #[cfg(unix)]
        let terminated = async move {
            terminate.recv().await;
        };
        #[cfg(not(unix))]
        let terminated = std::future::pending::<()>();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            () = terminated => {},
        }
    })
}
