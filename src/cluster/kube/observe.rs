//! The kube reads of one checkpoint poll (the pure readings are `verify::observe`'s).

use crate::execute::{ExecError, with_retry, workload};
use crate::verify::assess::{PodState, Rollout};
use crate::verify::observe::{
    Template, controller_replicaset, deadline_exceeded, is_new, observed, pod_state, template_of,
    text,
};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams};
use serde_json::Value;
use std::collections::BTreeSet;

/// The workload's rollout and its pods, each marked as of the new template or not.
pub(super) async fn workload_state(
    client: &kube::Client,
    kind: &str,
    namespace: &str,
    name: &str,
) -> Result<(Rollout, Vec<PodState>), ExecError> {
    let object = workload::get(client, kind, namespace, name).await?;
    let (complete, detail) = workload::rollout_state(kind, namespace, name, &object);
    let selector = workload::selector_of(kind, namespace, name, &object)?;
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let listed = with_retry(|| {
        let (api, params) = (api.clone(), ListParams::default().labels(&selector));
        async move { Ok(api.list(&params).await?) }
    })
    .await;
    let items = match listed {
        Ok(list) => list.items,
        // Not rolled out: the checkpoint is pending whatever the pods say; unread, they are no
        // evidence this time. Rolled out, they decide: the error ends the checkpoint.
        Err(error) if !complete => {
            tracing::debug!(%error, "cannot list the pods of {kind} {namespace}/{name}");
            Vec::new()
        }
        Err(error) => return Err(error),
    };
    let pods: Vec<Pod> = items
        .into_iter()
        .filter(|pod| pod.metadata.deletion_timestamp.is_none())
        .collect();
    let template = match kind {
        "Deployment" => deployment_template(client, namespace, &object, &pods).await,
        _ => template_of(kind, &object),
    };
    let pods: Vec<PodState> = pods
        .iter()
        .map(|pod| pod_state(pod, is_new(&template, pod)))
        .collect();
    let rollout = Rollout {
        complete,
        detail,
        deadline_exceeded: deadline_exceeded(&object),
    };
    Ok((rollout, pods))
}

fn revision(object: &Value) -> Option<&str> {
    text(
        object,
        "/metadata/annotations/deployment.kubernetes.io~1revision",
    )
}

/// The Deployment's current ReplicaSet among those that own `pods`: the one whose revision is
/// the Deployment's. A ReplicaSet that cannot be read leaves the template unknown to this
/// poll, and then no pod is evidence (never an old pod mistaken for a new one).
async fn deployment_template(
    client: &kube::Client,
    namespace: &str,
    object: &Value,
    pods: &[Pod],
) -> Template {
    if !observed(object) {
        return Template::NotObserved;
    }
    let Some(current) = revision(object) else {
        return Template::Unknown;
    };
    let owners: BTreeSet<&str> = pods.iter().filter_map(controller_replicaset).collect();
    for owner in owners {
        match workload::get(client, "ReplicaSet", namespace, owner).await {
            Ok(rs) if revision(&rs) == Some(current) => {
                return Template::ReplicaSet(Some(owner.to_string()));
            }
            Ok(_) => {}
            Err(error) => {
                tracing::debug!(%error, "cannot read ReplicaSet {namespace}/{owner}");
                return Template::NotObserved;
            }
        }
    }
    Template::ReplicaSet(None)
}

/// Whether the node is Ready; `None` when it cannot be read (then it is not evidence).
pub(super) async fn node_ready(client: &kube::Client, name: &str) -> Option<bool> {
    let nodes: Api<Node> = Api::all(client.clone());
    let node = with_retry(|| async { Ok(nodes.get(name).await?) })
        .await
        .ok()?;
    Some(
        node.status
            .and_then(|s| s.conditions)
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True")),
    )
}
