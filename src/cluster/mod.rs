//! What the engine asks of a Kubernetes cluster, in its own words: the `Cluster` trait.
//!
//! `execute/`, `verify`, `pipeline` and `api/` depend on this trait only. `kube.rs` implements
//! it on kube-rs (over the leader-fenced client, so a follower cannot write whatever path
//! tries); `fake.rs` implements it in memory for the pipeline's unit tests. `startup` is the
//! one place that picks the implementation; detached mode is no cluster at all (`None`).
//! `connect.rs` builds the kube-rs client from the settings.

pub mod access;
pub mod connect;
#[cfg(test)]
pub mod fake;
pub mod kube;
pub mod rbac;

pub use connect::{ClusterError, Connection};

use crate::execute::ExecError;
use crate::execute::argocd::{AppRef, ResourceRef, SyncOutcome};
use crate::execute::helm::{Revision, RollbackOutcome};
use crate::execute::node::NodeOutcome;
use crate::guard::view::ParentCache;
use crate::verify::assess::{PodState, Rollout};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::{Node, Pod};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// A workload: `(kind, namespace, name)` (Deployment, StatefulSet or DaemonSet).
pub type Workload = (String, String, String);

/// An object of the cluster: `(kind, namespace, name)`; the namespace is empty when the object
/// is cluster-scoped.
pub type ObjectRef<'a> = (&'a str, &'a str, &'a str);

/// A pod a drain must evict: `(namespace, name, has a controller)`.
pub type EvictablePod = (String, String, bool);

/// A custom resource: `(apiVersion, kind, name)`.
pub type CustomRef = (String, String, String);

/// The cluster, shared by the pipeline and the handlers.
pub type SharedCluster = Arc<dyn Cluster>;

/// The outcome of one probe of the API server.
#[derive(Debug, Clone)]
pub struct ClusterProbe {
    pub reachable: bool,
    pub latency: Option<Duration>,
    pub message: String,
}

impl ClusterProbe {
    /// The probe of no cluster: detached mode.
    pub fn detached() -> Self {
        ClusterProbe {
            reachable: false,
            latency: None,
            message: "no cluster configured (set KUBECONFIG or run in a pod): detached mode, \
                      workflows are planned and recorded but run as dry runs"
                .into(),
        }
    }
}

/// Probes `cluster`, or says the engine is detached.
pub async fn probe(cluster: Option<&SharedCluster>) -> ClusterProbe {
    match cluster {
        Some(cluster) => cluster.probe().await,
        None => ClusterProbe::detached(),
    }
}

/// Reads of workloads, pods and nodes.
#[async_trait]
pub trait Cluster: Send + Sync + 'static {
    /// Asks the API server for its version, with a short timeout.
    async fn probe(&self) -> ClusterProbe;

    /// The object and its controllers up to the top workload, as JSON (`apiVersion`, `kind`,
    /// `metadata`), the object first. Objects `cache` holds are read from it; `read` is told
    /// the outcome of each request sent to the API server.
    async fn owner_chain(
        &self,
        object: ObjectRef<'_>,
        cache: Option<&ParentCache>,
        read: &(dyn Fn(bool) + Sync),
    ) -> Result<Vec<Value>, ExecError>;

    /// A pod, ReplicaSet or workload as JSON.
    async fn get(&self, object: ObjectRef<'_>) -> Result<Value, ExecError>;

    /// The pod `object` names, or the pods of `top` (its workload).
    async fn pods(
        &self,
        object: ObjectRef<'_>,
        top: Option<&Workload>,
    ) -> Result<Vec<Pod>, ExecError>;

    async fn node(&self, name: &str) -> Result<Node, ExecError>;

    /// Whether the node is Ready; `None` when it cannot be read.
    async fn node_ready(&self, name: &str) -> Option<bool>;

    /// The workload's rollout and its pods (terminating ones left out), each marked as of the
    /// new template or not: what one checkpoint poll sees.
    async fn workload_state(
        &self,
        workload: &Workload,
    ) -> Result<(Rollout, Vec<PodState>), ExecError>;

    /// The pods a drain must evict from the node: `(namespace, name, has a controller)`.
    async fn evictable_pods(&self, node: &str) -> Result<Vec<EvictablePod>, ExecError>;

    /// An OpenShift ClusterOperator as JSON.
    async fn cluster_operator(&self, name: &str) -> Result<Value, ExecError>;

    /// The workload's desired replicas (`spec.replicas`, 1 when unset).
    async fn replicas(&self, workload: &Workload) -> Result<i32, ExecError>;

    /// The HorizontalPodAutoscaler that scales the workload, if any.
    async fn autoscaler_of(&self, workload: &Workload) -> Result<Option<String>, ExecError>;

    /// A Helm release's revisions, oldest first (none: it was never installed by helm).
    async fn helm_history(
        &self,
        namespace: &str,
        release: &str,
    ) -> Result<Vec<Revision>, ExecError>;

    /// The namespace's OLM ClusterServiceVersions (none without OLM).
    async fn csvs(&self, namespace: &str) -> Result<Vec<Value>, ExecError>;

    // Writes. With `dry_run` the API server validates and changes nothing.

    /// Deletes a pod (its controller replaces it).
    async fn delete_pod(
        &self,
        namespace: &str,
        name: &str,
        dry_run: bool,
    ) -> Result<String, ExecError>;

    /// `kubectl rollout restart`.
    async fn rollout_restart(
        &self,
        workload: &Workload,
        now: DateTime<Utc>,
        dry_run: bool,
    ) -> Result<String, ExecError>;

    /// `kubectl rollout undo` of a Deployment.
    async fn rollback_deployment(
        &self,
        namespace: &str,
        name: &str,
        dry_run: bool,
    ) -> Result<String, ExecError>;

    /// `kubectl scale`.
    async fn scale(
        &self,
        workload: &Workload,
        replicas: i32,
        dry_run: bool,
    ) -> Result<String, ExecError>;

    /// A Kubernetes Event on `object` (best effort: a failure is only logged).
    async fn record_event(&self, object: ObjectRef<'_>, reason: &str, message: &str, warning: bool);

    /// Waits while MachineConfigPools update or the cluster upgrades, up to `timeout`: what it
    /// waited for, or why node remediation must escalate instead.
    async fn await_maintenance(
        &self,
        timeout: Duration,
    ) -> Result<Result<String, NodeOutcome>, ExecError>;

    /// Cordons the node within the node budget.
    async fn cordon(
        &self,
        node: &str,
        max_unavailable: u32,
        dry_run: bool,
    ) -> Result<NodeOutcome, ExecError>;

    /// Evicts the node's pods (PodDisruptionBudgets honoured) within `timeout`.
    async fn drain(
        &self,
        node: &str,
        timeout: Duration,
        dry_run: bool,
    ) -> Result<String, ExecError>;

    /// Uncordons a node the engine cordoned once it is Ready; what happened.
    async fn uncordon_if_ready(&self, node: &str, dry_run: bool) -> String;

    /// Restarts the pods of a ClusterOperator's operator.
    async fn restart_operator_pods(&self, name: &str, dry_run: bool) -> Result<String, ExecError>;

    /// `helm rollback` of the release to `target`.
    async fn helm_rollback(
        &self,
        namespace: &str,
        release: &str,
        target: &Revision,
        dry_run: bool,
        timeout: Duration,
    ) -> Result<RollbackOutcome, ExecError>;

    /// Asks an operator to reconcile its custom resource `owner`.
    async fn nudge_operator(
        &self,
        namespace: &str,
        owner: &CustomRef,
        now: DateTime<Utc>,
        dry_run: bool,
    ) -> Result<String, ExecError>;

    // ArgoCD Applications.

    /// Whether the ArgoCD channel is there (attached: always).
    fn has_argocd(&self) -> bool;

    /// argocd-server's base URL, when the ArgoCD channel goes through it.
    fn argocd_server(&self) -> Option<String>;

    /// argocd-server's round trip, when the channel goes through it.
    async fn probe_argocd_server(&self, timeout: Duration) -> Option<Result<Duration, String>>;

    /// The Application as JSON, with its status.
    async fn application(&self, app: &AppRef) -> Result<Value, ExecError>;

    /// Hard refresh and sync of one resource (no pruning); the detail and the
    /// `operationState.startedAt` seen before, for `await_application`.
    async fn sync_application(
        &self,
        app: &AppRef,
        resource: &ResourceRef,
        reason: &str,
        dry_run: bool,
    ) -> Result<(String, String), ExecError>;

    /// ArgoCD's `restart` resource action; `None` when only the Kubernetes API is there.
    async fn restart_through_argocd(
        &self,
        app: &AppRef,
        resource: &ResourceRef,
    ) -> Result<Option<String>, ExecError>;

    /// Waits until the Application is Synced and Healthy after the operation started after
    /// `before`.
    async fn await_application(&self, app: &AppRef, before: &str) -> SyncOutcome;

    /// Turns the Application's automated selfHeal on or off.
    async fn set_self_heal(&self, app: &AppRef, enabled: bool) -> Result<(), ExecError>;

    /// The revision deployed before the current one.
    async fn previous_revision(&self, app: &AppRef) -> Option<String>;
}
