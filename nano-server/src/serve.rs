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

/// A future that completes on SIGINT (Ctrl-C) or, on Unix, SIGTERM, with both handlers
/// installed by the time this returns: a signal that arrives right after (e.g. once a server has
/// announced that it is ready) starts a graceful shutdown instead of killing the process.
/// (`tokio::signal::ctrl_c` alone would install its handler only when first polled.)
///
/// # Errors
///
/// When the signal handlers cannot be installed.
#[cfg(unix)]
pub fn shutdown_signal() -> Result<impl Future<Output = ()> + Send + 'static, NanoError> {
    use tokio::signal::unix::{SignalKind, signal};
    let install = |kind: SignalKind, name: &str| {
        signal(kind)
            .map_err(|err| NanoError::wrap(err, format!("cannot install the {name} handler")))
    };
    let mut interrupt = install(SignalKind::interrupt(), "SIGINT")?;
    let mut terminate = install(SignalKind::terminate(), "SIGTERM")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {},
            _ = terminate.recv() => {},
        }
    })
}

/// A future that completes on Ctrl-C.
///
/// # Errors
///
/// Never on this platform; the signature matches the Unix one.
#[cfg(not(unix))]
pub fn shutdown_signal() -> Result<impl Future<Output = ()> + Send + 'static, NanoError> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}
