//! Checkpoints (SPEC §5.5): polled with backoff until they pass or time out.

use crate::execute::{ExecError, workload};
use std::time::{Duration, Instant};

/// The outcome of a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checkpoint {
    Passed(String),
    TimedOut(String),
}

/// Waits until the workload's rollout is complete, polling at 0.2 s, 0.4 s, … (at most 5 s)
/// until `timeout`.
pub async fn rollout(
    client: &kube::Client,
    kind: &str,
    namespace: &str,
    name: &str,
    timeout: Duration,
) -> Result<Checkpoint, ExecError> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(200);
    loop {
        let (complete, detail) = workload::rollout_complete(client, kind, namespace, name).await?;
        if complete {
            return Ok(Checkpoint::Passed(detail));
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(Checkpoint::TimedOut(detail));
        }
        tokio::time::sleep(pause.min(deadline - now)).await;
        pause = (pause * 2).min(Duration::from_secs(5));
    }
}
