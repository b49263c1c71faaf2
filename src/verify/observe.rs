//! The kube reads of a checkpoint: one `Observation` per poll. Which pods belong to the
//! workload's new template is read from the controller's own bookkeeping, once it has
//! observed the current generation: the Deployment's revision on its ReplicaSets, the
//! StatefulSet's `updateRevision`, the DaemonSet's `pod-template-generation` label.

use super::Check;
use super::assess::{ContainerState, Observation, PodState, Rollout};
use crate::execute::{ExecError, with_retry, workload};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Which pods were created from the workload's current template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Template {
    /// The controller has not observed the current generation: no pod is known to be new.
    NotObserved,
    /// The workload carries no revision bookkeeping: every pod counts as the template's (a
    /// pod that fails then fails the checkpoint).
    Unknown,
    /// Pods owned by this ReplicaSet (a Deployment's current revision; `None`: it has no pod).
    ReplicaSet(Option<String>),
    /// Pods with this `controller-revision-hash` label (a StatefulSet's `updateRevision`).
    Revision(String),
    /// Pods with this `pod-template-generation` label (a DaemonSet's generation).
    Generation(String),
}

fn text<'a>(object: &'a Value, pointer: &str) -> Option<&'a str> {
    object.pointer(pointer).and_then(Value::as_str)
}

fn number(object: &Value, pointer: &str) -> i64 {
    object.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

fn observed(object: &Value) -> bool {
    number(object, "/status/observedGeneration") >= number(object, "/metadata/generation")
}

/// The `Progressing` condition's message when a Deployment gave up on its current generation.
pub(super) fn deadline_exceeded(object: &Value) -> Option<String> {
    if !observed(object) {
        return None;
    }
    object
        .pointer("/status/conditions")
        .and_then(Value::as_array)?
        .iter()
        .find(|c| {
            text(c, "/type") == Some("Progressing")
                && text(c, "/status") == Some("False")
                && text(c, "/reason") == Some("ProgressDeadlineExceeded")
        })
        .map(|c| text(c, "/message").unwrap_or_default().to_string())
}

/// The template of a StatefulSet or DaemonSet (a Deployment's needs its ReplicaSets).
pub(super) fn template_of(kind: &str, object: &Value) -> Template {
    if !observed(object) {
        return Template::NotObserved;
    }
    let known = match kind {
        "StatefulSet" => {
            text(object, "/status/updateRevision").map(|r| Template::Revision(r.into()))
        }
        "DaemonSet" => object
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .map(|g| Template::Generation(g.to_string())),
        _ => None,
    };
    known.unwrap_or(Template::Unknown)
}

fn label<'a>(pod: &'a Pod, key: &str) -> Option<&'a str> {
    pod.metadata.labels.as_ref()?.get(key).map(String::as_str)
}

fn controller_replicaset(pod: &Pod) -> Option<&str> {
    pod.metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true) && o.kind == "ReplicaSet")
        .map(|o| o.name.as_str())
}

/// Whether `pod` was created from `template`.
pub(super) fn is_new(template: &Template, pod: &Pod) -> bool {
    match template {
        Template::NotObserved => false,
        Template::Unknown => true,
        Template::ReplicaSet(rs) => rs.is_some() && controller_replicaset(pod) == rs.as_deref(),
        Template::Revision(hash) => label(pod, "controller-revision-hash") == Some(hash),
        Template::Generation(g) => label(pod, "pod-template-generation") == Some(g),
    }
}

/// A pod as the assessment sees it (pure).
pub(super) fn pod_state(pod: &Pod, new_template: bool) -> PodState {
    let status = pod.status.clone().unwrap_or_default();
    let ready = status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    let containers = status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten())
        .map(|c| {
            let waiting = c.state.as_ref().and_then(|s| s.waiting.as_ref());
            ContainerState {
                name: c.name.clone(),
                restarts: c.restart_count,
                waiting: waiting.and_then(|w| w.reason.clone()),
                message: waiting.and_then(|w| w.message.clone()),
            }
        })
        .collect();
    PodState {
        name: pod.metadata.name.clone().unwrap_or_default(),
        new_template,
        ready,
        node: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
        containers,
    }
}

/// One observation for `check`.
pub(super) async fn observe(
    client: &kube::Client,
    check: &Check,
) -> Result<Observation, ExecError> {
    match check {
        Check::Workload {
            kind,
            namespace,
            name,
        } => observe_workload(client, kind, namespace, name).await,
        Check::NodeDrained(node) => {
            let left = crate::execute::node::evictable_pods(client, node).await?;
            Ok(Observation::Node {
                name: node.clone(),
                ready: node_ready(client, node).await,
                left: left.iter().map(|(ns, n, _)| format!("{ns}/{n}")).collect(),
            })
        }
        Check::ClusterOperator(name) => {
            let operator = crate::execute::platform::cluster_operator(client, name).await?;
            let (healthy, detail) = crate::execute::platform::health(&operator);
            Ok(Observation::ClusterOperator {
                healthy,
                detail: format!("ClusterOperator {name}: {detail}"),
            })
        }
    }
}

async fn observe_workload(
    client: &kube::Client,
    kind: &str,
    namespace: &str,
    name: &str,
) -> Result<Observation, ExecError> {
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
    let mut nodes = BTreeMap::new();
    let hosts: BTreeSet<&String> = pods
        .iter()
        .filter(|p| p.new_template)
        .filter_map(|p| p.node.as_ref())
        .collect();
    for host in hosts {
        if let Some(ready) = node_ready(client, host).await {
            nodes.insert(host.clone(), ready);
        }
    }
    Ok(Observation::Workload {
        rollout: Rollout {
            complete,
            detail,
            deadline_exceeded: deadline_exceeded(&object),
        },
        pods,
        nodes,
    })
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
async fn node_ready(client: &kube::Client, name: &str) -> Option<bool> {
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
