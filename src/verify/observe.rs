//! The reads of a checkpoint: one `Observation` per poll, through the `Cluster` trait. Which
//! pods belong to the workload's new template is read from the controller's own bookkeeping,
//! once it has observed the current generation: the Deployment's revision on its ReplicaSets,
//! the StatefulSet's `updateRevision`, the DaemonSet's `pod-template-generation` label. The
//! pure readings of those objects are here; the kube implementation calls them.

use super::Check;
use super::assess::{ContainerState, Observation, PodState};
use crate::cluster::Cluster;
use crate::execute::ExecError;
use k8s_openapi::api::core::v1::Pod;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Which pods were created from the workload's current template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Template {
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

pub(crate) fn text<'a>(object: &'a Value, pointer: &str) -> Option<&'a str> {
    object.pointer(pointer).and_then(Value::as_str)
}

fn number(object: &Value, pointer: &str) -> i64 {
    object.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

pub(crate) fn observed(object: &Value) -> bool {
    number(object, "/status/observedGeneration") >= number(object, "/metadata/generation")
}

/// The `Progressing` condition's message when a Deployment gave up on its current generation.
pub(crate) fn deadline_exceeded(object: &Value) -> Option<String> {
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
pub(crate) fn template_of(kind: &str, object: &Value) -> Template {
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

pub(crate) fn controller_replicaset(pod: &Pod) -> Option<&str> {
    pod.metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true) && o.kind == "ReplicaSet")
        .map(|o| o.name.as_str())
}

/// Whether `pod` was created from `template`.
pub(crate) fn is_new(template: &Template, pod: &Pod) -> bool {
    match template {
        Template::NotObserved => false,
        Template::Unknown => true,
        Template::ReplicaSet(rs) => rs.is_some() && controller_replicaset(pod) == rs.as_deref(),
        Template::Revision(hash) => label(pod, "controller-revision-hash") == Some(hash),
        Template::Generation(g) => label(pod, "pod-template-generation") == Some(g),
    }
}

/// A pod as the assessment sees it (pure).
pub(crate) fn pod_state(pod: &Pod, new_template: bool) -> PodState {
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
    cluster: &dyn Cluster,
    check: &Check,
) -> Result<Observation, ExecError> {
    match check {
        Check::Workload {
            kind,
            namespace,
            name,
        } => {
            let workload = (kind.clone(), namespace.clone(), name.clone());
            let (rollout, pods) = cluster.workload_state(&workload).await?;
            // The nodes the new template's pods run on: one that went NotReady is evidence.
            let hosts: BTreeSet<&String> = pods
                .iter()
                .filter(|p| p.new_template)
                .filter_map(|p| p.node.as_ref())
                .collect();
            let mut nodes = BTreeMap::new();
            for host in hosts {
                if let Some(ready) = cluster.node_ready(host).await {
                    nodes.insert(host.clone(), ready);
                }
            }
            Ok(Observation::Workload {
                rollout,
                pods,
                nodes,
            })
        }
        Check::NodeDrained(node) => {
            let left = cluster.evictable_pods(node).await?;
            Ok(Observation::Node {
                name: node.clone(),
                ready: cluster.node_ready(node).await,
                left: left.iter().map(|(ns, n, _)| format!("{ns}/{n}")).collect(),
            })
        }
        Check::ClusterOperator(name) => {
            let operator = cluster.cluster_operator(name).await?;
            let (healthy, detail) = crate::execute::platform::health(&operator);
            Ok(Observation::ClusterOperator {
                healthy,
                detail: format!("ClusterOperator {name}: {detail}"),
            })
        }
    }
}
