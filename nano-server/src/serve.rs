//! [`serve`]: exposing a set to the outside world until shutdown.

use std::future::Future;

use nano::{NanoError, ServiceSet};

use crate::listener::{BoxListener, Listener, Shutdown};
use tokio::task::JoinSet;

/// Serves `set` with every listener until SIGINT or SIGTERM, then shuts down gracefully: each
/// listener stops accepting, finishes its in-flight requests and returns.
///
/// ```no_run
/// # async fn run(set: nano::ServiceSet, http: impl nano_server::Listener) -> Result<(), nano::NanoError> {
/// use nano_server::Listener;
/// nano_server::serve(set, vec![http.boxed()]).await
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
