//! Draining a node through the Eviction API: PodDisruptionBudgets honoured, a refused
//! eviction retried until `DRAIN_TIMEOUT`, never replaced by a delete.

use super::super::{ExecError, with_retry};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Pods a drain must evict: not owned by a DaemonSet, not mirror pods, not finished, not
/// already terminating.
pub(super) fn evictable(pod: &Pod) -> bool {
    let daemon = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.kind == "DaemonSet");
    let mirror = pod
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key("kubernetes.io/config.mirror"));
    let finished = matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    );
    !daemon && !mirror && !finished && pod.metadata.deletion_timestamp.is_none()
}

/// The evictable pods on a node, as `(namespace, name, has a controller)`.
pub async fn evictable_pods(
    client: &kube::Client,
    node: &str,
) -> Result<Vec<(String, String, bool)>, ExecError> {
    let pods: Api<Pod> = Api::all(client.clone());
    let params = ListParams::default().fields(&format!("spec.nodeName={node}"));
    let list = with_retry(|| async { Ok(pods.list(&params).await?) }).await?;
    Ok(list
        .items
        .iter()
        .filter(|p| evictable(p))
        .map(|p| {
            (
                p.metadata.namespace.clone().unwrap_or_default(),
                p.metadata.name.clone().unwrap_or_default(),
                p.metadata
                    .owner_references
                    .iter()
                    .flatten()
                    .any(|o| o.controller == Some(true)),
            )
        })
        .collect())
}

/// When a refused eviction is tried again, and when to give up.
struct Pacing {
    deadline: Instant,
    retry: Duration,
    timeout: Duration,
}

/// Evicts every evictable pod of the node. An eviction a PodDisruptionBudget refuses (429) is
/// retried every `timeout / 10` (0.1 s … 5 s) until `timeout`; the pod is never deleted
/// around the budget.
pub async fn drain(
    client: &kube::Client,
    node: &str,
    timeout: Duration,
    dry_run: bool,
) -> Result<String, ExecError> {
    let pacing = Pacing {
        deadline: Instant::now() + timeout,
        retry: (timeout / 10).clamp(Duration::from_millis(100), Duration::from_secs(5)),
        timeout,
    };
    ensure_cordoned(client, node).await?;
    let pods = evictable_pods(client, node).await?;
    // Like `kubectl drain` without --force: a pod no controller recreates would be gone.
    if let Some((ns, name, _)) = pods.iter().find(|(_, _, managed)| !managed) {
        return Err(ExecError::Permanent(format!(
            "pod {ns}/{name} on node {node} has no controller: evicting it would delete it for good; drain by hand (kubectl drain --force) if that is acceptable"
        )));
    }
    let mut evicted = Vec::new();
    for (namespace, name, _) in &pods {
        let refusals = evict(client, (namespace, name), dry_run, &pacing, &evicted).await?;
        evicted.push(if refusals > 0 {
            format!("{namespace}/{name} (after {refusals} PDB refusals)")
        } else {
            format!("{namespace}/{name}")
        });
    }
    Ok(format!(
        "drained node {node}: evicted {} pod(s){}{}",
        evicted.len(),
        if evicted.is_empty() {
            String::new()
        } else {
            format!(": {}", evicted.join(", "))
        },
        if dry_run { " (dry run)" } else { "" }
    ))
}

/// Never drain a node new pods can still land on (a failed cordon must not lead here).
async fn ensure_cordoned(client: &kube::Client, node: &str) -> Result<(), ExecError> {
    let nodes: Api<Node> = Api::all(client.clone());
    let current = with_retry(|| async { Ok(nodes.get(node).await?) }).await?;
    if current.spec.as_ref().and_then(|s| s.unschedulable) != Some(true) {
        return Err(ExecError::Permanent(format!(
            "node {node} is schedulable: not draining it (cordon it first)"
        )));
    }
    Ok(())
}

/// Evicts one pod, trying again while a PodDisruptionBudget refuses (or the API server is
/// briefly unavailable) until the deadline; returns how often the budget refused. A pod
/// already gone counts as evicted. `evicted`: the pods before it, for the error.
async fn evict(
    client: &kube::Client,
    (namespace, name): (&str, &str),
    dry_run: bool,
    pacing: &Pacing,
    evicted: &[String],
) -> Result<u32, ExecError> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    // Built by hand: kube's `evict` sends `delete_options` (snake case), which the API
    // server ignores, so a dry run would really evict.
    let mut eviction = json!({"apiVersion": "policy/v1", "kind": "Eviction",
                              "metadata": {"name": name, "namespace": namespace}});
    if dry_run {
        eviction["deleteOptions"] = json!({"dryRun": ["All"]});
    }
    let params = kube::api::PostParams {
        dry_run,
        field_manager: None,
    };
    let mut refusals = 0;
    loop {
        match api
            .create_subresource::<Value, Value>("eviction", name, &params, &eviction)
            .await
        {
            Ok(_) => return Ok(refusals),
            Err(kube::Error::Api(status)) if status.code == 404 => return Ok(refusals),
            Err(kube::Error::Api(status)) if status.code == 429 => {
                refusals += 1;
                if Instant::now() + pacing.retry > pacing.deadline {
                    return Err(ExecError::Permanent(format!(
                        "a PodDisruptionBudget kept refusing the eviction of pod {namespace}/{name} ({refusals} tries over {}s); evicted so far: {}",
                        pacing.timeout.as_secs(),
                        if evicted.is_empty() {
                            "none".to_string()
                        } else {
                            evicted.join(", ")
                        }
                    )));
                }
                tokio::time::sleep(pacing.retry).await;
            }
            Err(error) => match ExecError::from(error) {
                ExecError::Transient(_) if Instant::now() + pacing.retry <= pacing.deadline => {
                    tokio::time::sleep(pacing.retry).await;
                }
                other => return Err(other),
            },
        }
    }
}
