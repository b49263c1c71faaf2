//! Checkpoints (SPEC §5.5): polled with backoff until they pass or time out.
//!
//! A workload passes when its rollout is complete, every one of its pods is Ready, and no
//! container restarted during a settle window (a quarter of the timeout): a crash-looping
//! container is often Ready for a few seconds between crashes, so "available" alone would pass
//! a workload that is still failing.

use crate::execute::{ExecError, with_retry, workload};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The outcome of a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checkpoint {
    Passed(String),
    TimedOut(String),
}

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

/// Runs the checkpoint until it passes or `timeout`.
pub async fn check(
    client: &kube::Client,
    check: &Check,
    timeout: Duration,
) -> Result<Checkpoint, ExecError> {
    match check {
        Check::Workload {
            kind,
            namespace,
            name,
        } => workload(client, kind, namespace, name, timeout).await,
        Check::NodeDrained(node) => {
            poll(timeout, || async {
                let left = crate::execute::node::evictable_pods(client, node).await?;
                let names: Vec<String> =
                    left.iter().map(|(ns, n, _)| format!("{ns}/{n}")).collect();
                Ok((
                    left.is_empty(),
                    if left.is_empty() {
                        format!("node {node}: no evictable pod left")
                    } else {
                        format!("node {node} still runs {}", names.join(", "))
                    },
                ))
            })
            .await
        }
        Check::ClusterOperator(name) => {
            poll(timeout, || async {
                let operator = crate::execute::platform::cluster_operator(client, name).await?;
                let (healthy, detail) = crate::execute::platform::health(&operator);
                Ok((healthy, format!("ClusterOperator {name}: {detail}")))
            })
            .await
        }
    }
}

/// Polls `probe` at 0.2 s doubling to 5 s until it reports `true` or `timeout` passes.
async fn poll<F, Fut>(timeout: Duration, mut probe: F) -> Result<Checkpoint, ExecError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(bool, String), ExecError>>,
{
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(200);
    loop {
        let (passed, detail) = probe().await?;
        if passed {
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

/// Per pod: Ready, and the sum of its containers' restart counts.
type PodStates = BTreeMap<String, (bool, i32)>;

/// Waits until the workload's rollout is complete, its pods are Ready and their restart counts
/// stopped growing, polling at 0.2 s, 0.4 s, … (at most 5 s) until `timeout`.
pub async fn workload(
    client: &kube::Client,
    kind: &str,
    namespace: &str,
    name: &str,
    timeout: Duration,
) -> Result<Checkpoint, ExecError> {
    let deadline = Instant::now() + timeout;
    let settle = timeout / 4;
    let mut pause = Duration::from_millis(200);
    // The first healthy observation, and when it was made.
    let mut baseline: Option<(Instant, PodStates)> = None;
    loop {
        let (complete, mut detail) =
            workload::rollout_complete(client, kind, namespace, name).await?;
        if complete {
            let pods = pod_states(client, kind, namespace, name).await?;
            let not_ready: Vec<&String> =
                pods.iter().filter(|(_, s)| !s.0).map(|(n, _)| n).collect();
            if !not_ready.is_empty() {
                detail = format!("{detail}; pods not Ready: {}", join(&not_ready));
                baseline = None;
            } else {
                match &baseline {
                    None => baseline = Some((Instant::now(), pods)),
                    Some((since, before)) => {
                        let grown = restarted(before, &pods);
                        if !grown.is_empty() {
                            detail = format!(
                                "{detail}; containers still restarting: {}",
                                grown.join(", ")
                            );
                            baseline = Some((Instant::now(), pods));
                        } else if since.elapsed() >= settle {
                            return Ok(Checkpoint::Passed(format!(
                                "{detail}; {} pods Ready, no restart for {}s",
                                pods.len(),
                                settle.as_secs_f64().round()
                            )));
                        }
                    }
                }
            }
        } else {
            baseline = None;
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(Checkpoint::TimedOut(detail));
        }
        tokio::time::sleep(pause.min(deadline - now)).await;
        pause = (pause * 2).min(Duration::from_secs(5));
    }
}

/// Pods whose restart count grew between two observations, as `name (a → b)`.
fn restarted(before: &PodStates, after: &PodStates) -> Vec<String> {
    after
        .iter()
        .filter_map(|(pod, (_, now))| {
            let (_, then) = before.get(pod)?;
            (now > then).then(|| format!("{pod} ({then} → {now})"))
        })
        .collect()
}

fn join(names: &[&String]) -> String {
    names
        .iter()
        .map(|n| n.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The workload's pods (by its selector) with their readiness and restart counts.
async fn pod_states(
    client: &kube::Client,
    kind: &str,
    namespace: &str,
    name: &str,
) -> Result<PodStates, ExecError> {
    let selector = workload::selector(client, kind, namespace, name).await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let list = with_retry(|| {
        let (pods, params) = (pods.clone(), ListParams::default().labels(&selector));
        async move { Ok(pods.list(&params).await?) }
    })
    .await?;
    Ok(list
        .items
        .into_iter()
        .filter(|pod| pod.metadata.deletion_timestamp.is_none())
        .map(|pod| {
            let status = pod.status.unwrap_or_default();
            let ready = status
                .conditions
                .iter()
                .flatten()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            let restarts = status
                .container_statuses
                .iter()
                .flatten()
                .map(|c| c.restart_count)
                .sum();
            (pod.metadata.name.unwrap_or_default(), (ready, restarts))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn states(items: &[(&str, bool, i32)]) -> PodStates {
        items
            .iter()
            .map(|(n, r, c)| (n.to_string(), (*r, *c)))
            .collect()
    }

    #[test]
    fn only_pods_seen_twice_with_more_restarts_count_as_restarting() {
        let before = states(&[("a", true, 3), ("b", true, 0)]);
        let after = states(&[("a", true, 4), ("b", true, 0), ("c", true, 7)]);
        assert_eq!(restarted(&before, &after), vec!["a (3 → 4)".to_string()]);
        assert!(restarted(&after, &after).is_empty());
        // A replaced pod (new name) starts its own count: not a restart.
        assert!(restarted(&states(&[("old", true, 9)]), &states(&[("new", true, 0)])).is_empty());
    }
}
