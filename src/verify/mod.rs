//! Checkpoints (SPEC §5.5): after a step, the cluster is observed with backoff (0.2 s doubling
//! to 5 s) and each observation is assessed (`assess`, pure) until the checkpoint passes,
//! fails on conclusive evidence, or times out.
//!
//! A workload passes when its rollout is complete, every one of its pods is Ready, and no
//! container restarted during a settle window (a quarter of the timeout): a crash-looping
//! container is often Ready for a few seconds between crashes, so "available" alone would pass
//! a workload that is still failing. It fails at once when a pod of its new template cannot
//! start or restarts, or when its controller gave up on the rollout.

pub mod assess;
pub(crate) mod observe;
#[cfg(test)]
mod tests;

use crate::execute::ExecError;
pub use assess::Checkpoint;
use assess::{Baseline, assess, conclude};
use std::time::{Duration, Instant};

/// What a checkpoint looks at after a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// Rollout complete, pods Ready, restarts stopped.
    Workload {
        kind: String,
        namespace: String,
        name: String,
    },
    /// No evictable pod left on the node.
    NodeDrained(String),
    /// Available=True and Degraded=False.
    ClusterOperator(String),
}

/// Runs the checkpoint until it passes, fails, or `timeout` passes. The first observation is
/// the baseline later ones are compared with.
pub async fn check(
    cluster: &dyn crate::cluster::Cluster,
    check: &Check,
    timeout: Duration,
) -> Result<Checkpoint, ExecError> {
    let started = Instant::now();
    let mut baseline: Option<Baseline> = None;
    let mut pause = Duration::from_millis(200);
    loop {
        let observation = observe::observe(cluster, check).await?;
        let baseline = baseline.get_or_insert_with(|| Baseline::new(&observation, timeout / 4));
        let elapsed = started.elapsed();
        let verdict = assess(&observation, baseline, elapsed);
        if let Some(end) = conclude(verdict, elapsed, timeout) {
            return Ok(end);
        }
        baseline.track(&observation, elapsed);
        tokio::time::sleep(pause.min(timeout.saturating_sub(elapsed))).await;
        pause = (pause * 2).min(Duration::from_secs(5));
    }
}
