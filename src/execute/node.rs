//! The infrastructure channel (SPEC §5.4): cordon, drain through the Eviction API (PDBs
//! honoured: a refused eviction is retried until `DRAIN_TIMEOUT`, never replaced by a delete),
//! and the maintenance gate (MachineConfigPools updating, ClusterVersion progressing: wait; a
//! degraded pool: escalate). Never more than `MAX_UNAVAILABLE_NODES` unschedulable at once.

use super::{ExecError, FIELD_MANAGER, with_retry};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// What a node action did, when it did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeOutcome {
    Done(String),
    /// A human must decide (node budget reached, a degraded pool).
    Escalate {
        reason: String,
        needed: String,
    },
}

/// What the maintenance gate sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Maintenance {
    Clear,
    /// Wait: a pool is rolling out a MachineConfig, or the cluster is upgrading.
    Busy(String),
    /// Escalate: a pool is degraded (its conditions).
    Degraded(String),
}

fn condition<'a>(object: &'a Value, kind: &str) -> Option<&'a Value> {
    object
        .pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(kind))
}

fn is_true(object: &Value, kind: &str) -> bool {
    condition(object, kind)
        .and_then(|c| c.get("status"))
        .and_then(Value::as_str)
        == Some("True")
}

/// Judges MachineConfigPools and the ClusterVersion (pure).
pub fn judge_maintenance(pools: &[Value], versions: &[Value]) -> Maintenance {
    let name = |o: &Value| {
        o.pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    for pool in pools {
        if is_true(pool, "Degraded") {
            let conditions: Vec<String> = ["Degraded", "NodeDegraded", "RenderDegraded"]
                .iter()
                .filter_map(|k| condition(pool, k))
                .filter(|c| c.get("status").and_then(Value::as_str) == Some("True"))
                .map(|c| {
                    format!(
                        "{}: {}",
                        c.get("type").and_then(Value::as_str).unwrap_or_default(),
                        c.get("message").and_then(Value::as_str).unwrap_or_default()
                    )
                })
                .collect();
            return Maintenance::Degraded(format!(
                "MachineConfigPool {} is degraded ({})",
                name(pool),
                conditions.join("; ")
            ));
        }
    }
    if let Some(pool) = pools.iter().find(|p| is_true(p, "Updating")) {
        return Maintenance::Busy(format!("MachineConfigPool {} is updating", name(pool)));
    }
    if let Some(version) = versions.iter().find(|v| is_true(v, "Progressing")) {
        let target = version
            .pointer("/status/desired/version")
            .and_then(Value::as_str)
            .unwrap_or("a new version");
        return Maintenance::Busy(format!("the cluster is upgrading to {target}"));
    }
    Maintenance::Clear
}

/// Lists an OpenShift cluster-scoped resource; an API the cluster does not have is empty.
async fn list_cluster(
    client: &kube::Client,
    group: &str,
    version: &str,
    kind: &str,
    plural: &str,
) -> Result<Vec<Value>, ExecError> {
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let api: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &ApiResource::from_gvk_with_plural(&gvk, plural),
    );
    super::list_optional(api).await
}

/// Waits while the maintenance gate is busy, polling at 0.5 s doubling to 10 s, up to
/// `timeout`. Returns what it waited for (empty when it did not wait).
pub async fn await_maintenance(
    client: &kube::Client,
    timeout: Duration,
) -> Result<Result<String, NodeOutcome>, ExecError> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(500);
    let mut waited: Option<String> = None;
    loop {
        let pools = list_cluster(
            client,
            "machineconfiguration.openshift.io",
            "v1",
            "MachineConfigPool",
            "machineconfigpools",
        )
        .await?;
        let versions = list_cluster(
            client,
            "config.openshift.io",
            "v1",
            "ClusterVersion",
            "clusterversions",
        )
        .await?;
        match judge_maintenance(&pools, &versions) {
            Maintenance::Clear => {
                return Ok(Ok(waited
                    .map(|w| format!("waited for maintenance ({w}); "))
                    .unwrap_or_default()));
            }
            Maintenance::Degraded(reason) => {
                return Ok(Err(NodeOutcome::Escalate {
                    reason,
                    needed:
                        "repair the MachineConfigPool (oc describe mcp) before node remediation"
                            .into(),
                }));
            }
            Maintenance::Busy(what) => {
                let now = Instant::now();
                if now >= deadline {
                    return Ok(Err(NodeOutcome::Escalate {
                        reason: format!("{what} for longer than {}s", timeout.as_secs()),
                        needed: "let the maintenance finish, then trigger again".into(),
                    }));
                }
                waited = Some(what);
                tokio::time::sleep(pause.min(deadline - now)).await;
                pause = (pause * 2).min(Duration::from_secs(10));
            }
        }
    }
}

/// Marks the node unschedulable, unless that would make more than `max_unavailable` nodes
/// unschedulable.
pub async fn cordon(
    client: &kube::Client,
    node: &str,
    max_unavailable: u32,
    dry_run: bool,
) -> Result<NodeOutcome, ExecError> {
    let nodes: Api<Node> = Api::all(client.clone());
    let all = with_retry(|| async { Ok(nodes.list(&ListParams::default()).await?) }).await?;
    let unschedulable = |n: &Node| n.spec.as_ref().and_then(|s| s.unschedulable) == Some(true);
    if all
        .items
        .iter()
        .any(|n| n.metadata.name.as_deref() == Some(node) && unschedulable(n))
    {
        return Ok(NodeOutcome::Done(format!(
            "node {node} was already cordoned"
        )));
    }
    let others: Vec<String> = all
        .items
        .iter()
        .filter(|n| unschedulable(n))
        .filter_map(|n| n.metadata.name.clone())
        .collect();
    if others.len() as u32 >= max_unavailable {
        return Ok(NodeOutcome::Escalate {
            reason: format!(
                "{} node(s) already unschedulable ({}); MAX_UNAVAILABLE_NODES is {max_unavailable}",
                others.len(),
                others.join(", ")
            ),
            needed: format!(
                "recover or uncordon {} first, or cordon {node} by hand",
                others.join(", ")
            ),
        });
    }
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        dry_run,
        ..Default::default()
    };
    // Marked as ours: only a node the engine cordoned is uncordoned by it.
    let patch = json!({"metadata": {"annotations": {CORDONED_BY: "true"}},
                       "spec": {"unschedulable": true}});
    with_retry(|| async {
        nodes.patch(node, &params, &Patch::Merge(&patch)).await?;
        Ok(())
    })
    .await?;
    Ok(NodeOutcome::Done(format!(
        "cordoned node {node}{}",
        if dry_run { " (dry run)" } else { "" }
    )))
}

/// The annotation the engine puts on a node it cordons.
pub const CORDONED_BY: &str = "coordination-engine.io/cordoned";

/// After a drain: a node the engine cordoned that is Ready again is uncordoned (the undo of
/// `cordon`); one that is not stays cordoned, and the detail says so. A node someone else
/// cordoned is left alone.
pub async fn uncordon_if_ready(client: &kube::Client, node: &str, dry_run: bool) -> String {
    let nodes: Api<Node> = Api::all(client.clone());
    let current = match with_retry(|| async { Ok(nodes.get(node).await?) }).await {
        Ok(current) => current,
        Err(error) => return format!("cannot read node {node} to uncordon it: {error}"),
    };
    let ready = current
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    let ours = current
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(CORDONED_BY));
    if !ours {
        return format!("node {node} was cordoned by someone else: it stays cordoned");
    }
    if !ready {
        return format!(
            "node {node} is not Ready: it stays cordoned; uncordon it once it is (kubectl uncordon {node})"
        );
    }
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        dry_run,
        ..Default::default()
    };
    let patch = json!({"metadata": {"annotations": {CORDONED_BY: null}},
                       "spec": {"unschedulable": false}});
    match with_retry(|| async {
        nodes.patch(node, &params, &Patch::Merge(&patch)).await?;
        Ok(())
    })
    .await
    {
        Ok(()) => format!("node {node} is Ready again: uncordoned"),
        Err(error) => format!("node {node} is Ready again, but uncordoning failed: {error}"),
    }
}

/// Pods a drain must evict: not owned by a DaemonSet, not mirror pods, not finished, not
/// already terminating.
fn evictable(pod: &Pod) -> bool {
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

/// Evicts every evictable pod of the node. An eviction a PodDisruptionBudget refuses (429) is
/// retried every `timeout / 10` (0.1 s … 5 s) until `timeout`; the pod is never deleted
/// around the budget.
pub async fn drain(
    client: &kube::Client,
    node: &str,
    timeout: Duration,
    dry_run: bool,
) -> Result<String, ExecError> {
    let deadline = Instant::now() + timeout;
    let retry = (timeout / 10).clamp(Duration::from_millis(100), Duration::from_secs(5));
    // Never drain a node new pods can still land on (a failed cordon must not lead here).
    let nodes: Api<Node> = Api::all(client.clone());
    let current = with_retry(|| async { Ok(nodes.get(node).await?) }).await?;
    if current.spec.as_ref().and_then(|s| s.unschedulable) != Some(true) {
        return Err(ExecError::Permanent(format!(
            "node {node} is schedulable: not draining it (cordon it first)"
        )));
    }
    let pods = evictable_pods(client, node).await?;
    // Like `kubectl drain` without --force: a pod no controller recreates would be gone.
    if let Some((ns, name, _)) = pods.iter().find(|(_, _, managed)| !managed) {
        return Err(ExecError::Permanent(format!(
            "pod {ns}/{name} on node {node} has no controller: evicting it would delete it for good; drain by hand (kubectl drain --force) if that is acceptable"
        )));
    }
    let mut evicted = Vec::new();
    for (namespace, name, _) in &pods {
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
                Ok(_) => break,
                Err(kube::Error::Api(status)) if status.code == 404 => break,
                Err(kube::Error::Api(status)) if status.code == 429 => {
                    refusals += 1;
                    if Instant::now() + retry > deadline {
                        return Err(ExecError::Permanent(format!(
                            "a PodDisruptionBudget kept refusing the eviction of pod {namespace}/{name} ({refusals} tries over {}s); evicted so far: {}",
                            timeout.as_secs(),
                            if evicted.is_empty() {
                                "none".to_string()
                            } else {
                                evicted.join(", ")
                            }
                        )));
                    }
                    tokio::time::sleep(retry).await;
                }
                Err(error) => match ExecError::from(error) {
                    ExecError::Transient(_) if Instant::now() + retry <= deadline => {
                        tokio::time::sleep(retry).await;
                    }
                    other => return Err(other),
                },
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn with_conditions(name: &str, conditions: &[(&str, &str)]) -> Value {
        let conditions: Vec<Value> = conditions
            .iter()
            .map(|(t, s)| json!({"type": t, "status": s, "message": format!("{t} says so")}))
            .collect();
        json!({"metadata": {"name": name}, "status": {"conditions": conditions, "desired": {"version": "4.19.3"}}})
    }

    #[test]
    fn the_maintenance_gate_waits_for_updates_and_escalates_degraded_pools() {
        let idle = with_conditions("worker", &[("Updating", "False"), ("Degraded", "False")]);
        let updating = with_conditions("worker", &[("Updating", "True")]);
        let degraded = with_conditions("master", &[("Degraded", "True"), ("NodeDegraded", "True")]);
        let upgrading = with_conditions("version", &[("Progressing", "True")]);
        let stable = with_conditions("version", &[("Progressing", "False")]);
        assert_eq!(judge_maintenance(&[], &[]), Maintenance::Clear);
        assert_eq!(
            judge_maintenance(std::slice::from_ref(&idle), std::slice::from_ref(&stable)),
            Maintenance::Clear
        );
        assert_eq!(
            judge_maintenance(&[idle.clone(), updating], &[stable]),
            Maintenance::Busy("MachineConfigPool worker is updating".into())
        );
        assert_eq!(
            judge_maintenance(std::slice::from_ref(&idle), &[upgrading]),
            Maintenance::Busy("the cluster is upgrading to 4.19.3".into())
        );
        assert!(matches!(
            judge_maintenance(&[idle, degraded], &[]),
            Maintenance::Degraded(m) if m.contains("master") && m.contains("NodeDegraded: NodeDegraded says so")
        ));
    }

    #[test]
    fn daemonset_mirror_finished_and_terminating_pods_are_not_evicted() {
        let pod = |extra: Value| -> Pod {
            let mut base = json!({"metadata": {"name": "p", "namespace": "n"}, "status": {"phase": "Running"}});
            json_patch::merge(&mut base, &extra);
            serde_json::from_value(base).expect("pod")
        };
        assert!(evictable(&pod(json!({}))));
        assert!(!evictable(&pod(json!({"metadata": {"ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "d", "uid": "u"}]}}))));
        assert!(!evictable(&pod(
            json!({"metadata": {"annotations": {"kubernetes.io/config.mirror": "x"}}})
        )));
        assert!(!evictable(&pod(json!({"status": {"phase": "Succeeded"}}))));
        assert!(!evictable(&pod(
            json!({"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}})
        )));
    }
}
