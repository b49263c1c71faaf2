//! The infrastructure channel (SPEC §5.4): cordon, drain through the Eviction API (PDBs
//! honoured: a refused eviction is retried until `DRAIN_TIMEOUT`, never replaced by a delete),
//! and the maintenance gate (MachineConfigPools updating, ClusterVersion progressing: wait; a
//! degraded pool: escalate). Never more than `MAX_UNAVAILABLE_NODES` unschedulable at once.

use super::{ExecError, FIELD_MANAGER, with_retry};
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::json;

mod drain;
mod maintenance;

pub use drain::{drain, evictable_pods};
pub use maintenance::{Maintenance, await_maintenance, judge_maintenance};

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

#[cfg(test)]
mod tests;
