//! Stopping: the handle that drains and stops every listener, and the signal handlers that
//! use it.

use crate::http::Draining;

/// Stops every listener; what happens to open connections is decided in
/// docs/decisions/0008-graceful-shutdown-promise.md.
#[derive(Clone)]
pub struct ShutdownHandle {
    /// Each server with the flag to set right before stopping it (`HttpServer::draining`).
    pub(super) servers: Vec<(actix_web::dev::ServerHandle, Draining)>,
    pub(super) draining: Draining,
    pub(super) leadership: crate::leader::Leadership,
}

impl ShutdownHandle {
    /// Stops accepting connections; requests on accepted connections are still answered
    /// (each answer then closes its connection) until none is left or `SHUTDOWN_TIMEOUT`.
    pub async fn graceful_stop(&self) {
        self.draining.start();
        // Executing stops first; a follower takes the Lease at its next try (≤ 2 s) instead
        // of after the lease duration (15 s).
        self.leadership
            .step_down(std::time::Duration::from_secs(2))
            .await;
        // One after the other: metrics stay scrapeable while the API drains.
        for (handle, draining) in &self.servers {
            draining.start();
            handle.stop(true).await;
        }
    }
}

/// Registers SIGTERM and SIGINT handlers now, so a signal that arrives right after startup
/// is never the default (immediate) termination, and returns the future that waits for one
/// and then stops gracefully.
pub fn stop_on_signal(
    handle: ShutdownHandle,
) -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(async move {
        let signal = tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
        };
        // Before the log line: whoever reads it may rely on every later answer closing its
        // connection (docs/decisions/0008-graceful-shutdown-promise.md).
        handle.draining.start();
        tracing::info!("{signal} received: finishing in-flight requests");
        handle.graceful_stop().await;
    })
}
