//! Reading an Application's status: whether an operation is running, and how ours ended.

use super::{AppRef, ArgoChannel, SyncOutcome};
use serde_json::Value;
use std::time::{Duration, Instant};

/// Where the operation stands, read from an Application's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Progress {
    Running,
    Done(SyncOutcome),
}

pub(super) fn text<'a>(app: &'a Value, pointer: &str) -> &'a str {
    app.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// Whether an operation is pending or running on the Application.
pub(super) fn busy(app: &Value) -> Option<String> {
    if app.get("operation").is_some_and(|o| !o.is_null()) {
        return Some("an operation is pending".into());
    }
    let phase = text(app, "/status/operationState/phase");
    matches!(phase, "Running" | "Terminating")
        .then(|| format!("an operation is {}", phase.to_lowercase()))
}

/// Judges the Application after our sync. `before`: the `operationState.startedAt` seen before
/// the sync (so an older operation's result is not taken for ours).
pub(super) fn progress(app: &Value, before: &str) -> Progress {
    let (sync, health) = (
        text(app, "/status/sync/status"),
        text(app, "/status/health/status"),
    );
    let detail = format!("sync {sync}, health {health}");
    let started = text(app, "/status/operationState/startedAt");
    if busy(app).is_some() || started == before {
        return Progress::Running;
    }
    match text(app, "/status/operationState/phase") {
        "Failed" | "Error" => Progress::Done(SyncOutcome::Failed(format!(
            "the sync failed: {}",
            text(app, "/status/operationState/message")
        ))),
        _ if health == "Degraded" => Progress::Done(SyncOutcome::Failed(format!(
            "{detail}: {}",
            text(app, "/status/health/message")
        ))),
        _ if sync == "Synced" && health == "Healthy" => {
            Progress::Done(SyncOutcome::Healthy(detail))
        }
        _ => Progress::Running,
    }
}

impl ArgoChannel {
    /// Waits until the Application is Synced and Healthy after the operation that started
    /// after `before`, polling at 1 s doubling to 5 s until the sync timeout.
    pub async fn wait(&self, app: &AppRef, before: &str) -> SyncOutcome {
        let started = Instant::now();
        let deadline = started + self.sync_timeout;
        let mut pause = Duration::from_secs(1);
        let mut last;
        let outcome = loop {
            match self.fetch(app).await {
                Ok(current) => match progress(&current, before) {
                    Progress::Done(outcome) => break outcome,
                    Progress::Running => {
                        last = format!(
                            "sync {}, health {}, operation {}",
                            text(&current, "/status/sync/status"),
                            text(&current, "/status/health/status"),
                            text(&current, "/status/operationState/phase")
                        );
                    }
                },
                Err(error) => last = error.to_string(),
            }
            let now = Instant::now();
            if now >= deadline {
                break SyncOutcome::TimedOut(format!(
                    "Application {app} not Synced + Healthy within {}s: {last}",
                    self.sync_timeout.as_secs()
                ));
            }
            tokio::time::sleep(pause.min(deadline - now)).await;
            pause = (pause * 2).min(Duration::from_secs(5));
        };
        let result = match &outcome {
            SyncOutcome::Healthy(_) => "succeeded",
            SyncOutcome::Failed(why) if why.starts_with("the sync failed") => "failed",
            SyncOutcome::Failed(_) => "degraded",
            SyncOutcome::TimedOut(_) => "timeout",
        };
        self.metrics.argocd_syncs.with_label_values(&[result]).inc();
        self.metrics
            .argocd_sync_duration
            .with_label_values(&[self.backend()])
            .observe(started.elapsed().as_secs_f64());
        outcome
    }
}
