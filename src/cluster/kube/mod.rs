//! The `Cluster` trait on kube-rs. The channels' requests live in `execute/*` (one file per
//! channel, the kube-rs internals of this implementation); this file only maps the domain's
//! questions onto them. Built on the leader-fenced client: a replica that does not lead cannot
//! send a write, whatever path tries.

mod observe;

use super::{Cluster, ClusterProbe, CustomRef, EvictablePod, ObjectRef, Workload};
use crate::execute::argocd::{AppRef, ArgoChannel, ResourceRef, SyncOutcome};
use crate::execute::helm::{Revision, RollbackOutcome};
use crate::execute::node::NodeOutcome;
use crate::execute::{ExecError, helm, inspect, node, operator, platform, with_retry, workload};
use crate::guard::view::ParentCache;
use crate::verify::assess::{PodState, Rollout};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::Api;
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

/// A cluster reached through kube-rs.
pub struct KubeCluster {
    client: kube::Client,
    /// Where the configuration came from (`kubeconfig <path>` or `in-cluster`).
    source: String,
    argocd: Option<ArgoChannel>,
    /// `HELM_BIN` (`helm` on the PATH when unset).
    helm_bin: Option<PathBuf>,
    /// The kubeconfig helm is run with.
    kubeconfig: Option<String>,
}

impl KubeCluster {
    /// `client` should be the fenced client (`leader::fence::replica_client`).
    pub fn new(client: kube::Client, source: impl Into<String>) -> Self {
        KubeCluster {
            client,
            source: source.into(),
            argocd: None,
            helm_bin: None,
            kubeconfig: None,
        }
    }

    /// Acts on ArgoCD-managed workloads through their Application.
    pub fn with_argocd(mut self, channel: Option<ArgoChannel>) -> Self {
        self.argocd = channel;
        self
    }

    /// The helm binary and the kubeconfig it runs with.
    pub fn with_helm(mut self, helm_bin: Option<PathBuf>, kubeconfig: Option<String>) -> Self {
        self.helm_bin = helm_bin;
        self.kubeconfig = kubeconfig;
        self
    }

    fn argo(&self) -> Result<&ArgoChannel, ExecError> {
        self.argocd
            .as_ref()
            .ok_or_else(|| ExecError::Permanent("the ArgoCD channel is not configured".into()))
    }
}

fn workload_of(workload: &Workload) -> (&str, &str, &str) {
    (&workload.0, &workload.1, &workload.2)
}

#[async_trait]
impl Cluster for KubeCluster {
    async fn probe(&self) -> ClusterProbe {
        super::connect::probe(&self.client, &self.source).await
    }

    async fn owner_chain(
        &self,
        (kind, namespace, name): ObjectRef<'_>,
        cache: Option<&ParentCache>,
        read: &(dyn Fn(bool) + Sync),
    ) -> Result<Vec<Value>, ExecError> {
        workload::owner_chain_from(&self.client, cache, read, kind, namespace, name).await
    }

    async fn get(&self, (kind, namespace, name): ObjectRef<'_>) -> Result<Value, ExecError> {
        workload::get(&self.client, kind, namespace, name).await
    }

    async fn pods(
        &self,
        (kind, namespace, name): ObjectRef<'_>,
        top: Option<&Workload>,
    ) -> Result<Vec<Pod>, ExecError> {
        inspect::pods(&self.client, kind, namespace, name, top).await
    }

    async fn node(&self, name: &str) -> Result<Node, ExecError> {
        let nodes: Api<Node> = Api::all(self.client.clone());
        with_retry(|| async { Ok(nodes.get(name).await?) }).await
    }

    async fn node_ready(&self, name: &str) -> Option<bool> {
        observe::node_ready(&self.client, name).await
    }

    async fn workload_state(
        &self,
        workload: &Workload,
    ) -> Result<(Rollout, Vec<PodState>), ExecError> {
        let (kind, namespace, name) = workload_of(workload);
        observe::workload_state(&self.client, kind, namespace, name).await
    }

    async fn evictable_pods(&self, node: &str) -> Result<Vec<EvictablePod>, ExecError> {
        node::evictable_pods(&self.client, node).await
    }

    async fn cluster_operator(&self, name: &str) -> Result<Value, ExecError> {
        platform::cluster_operator(&self.client, name).await
    }

    async fn replicas(&self, workload: &Workload) -> Result<i32, ExecError> {
        let (kind, namespace, name) = workload_of(workload);
        workload::replicas(&self.client, kind, namespace, name).await
    }

    async fn autoscaler_of(&self, workload: &Workload) -> Result<Option<String>, ExecError> {
        let (kind, namespace, name) = workload_of(workload);
        workload::autoscaler_of(&self.client, kind, namespace, name).await
    }

    async fn helm_history(
        &self,
        namespace: &str,
        release: &str,
    ) -> Result<Vec<Revision>, ExecError> {
        helm::history(&self.client, namespace, release).await
    }

    async fn csvs(&self, namespace: &str) -> Result<Vec<Value>, ExecError> {
        operator::csvs(&self.client, namespace).await
    }

    async fn delete_pod(
        &self,
        namespace: &str,
        name: &str,
        dry_run: bool,
    ) -> Result<String, ExecError> {
        workload::delete_pod(&self.client, namespace, name, dry_run).await
    }

    async fn rollout_restart(
        &self,
        workload: &Workload,
        now: DateTime<Utc>,
        dry_run: bool,
    ) -> Result<String, ExecError> {
        let (kind, namespace, name) = workload_of(workload);
        workload::rollout_restart(&self.client, kind, namespace, name, now, dry_run).await
    }

    async fn rollback_deployment(
        &self,
        namespace: &str,
        name: &str,
        dry_run: bool,
    ) -> Result<String, ExecError> {
        workload::rollback_deployment(&self.client, namespace, name, dry_run).await
    }

    async fn scale(
        &self,
        workload: &Workload,
        replicas: i32,
        dry_run: bool,
    ) -> Result<String, ExecError> {
        let (kind, namespace, name) = workload_of(workload);
        workload::scale(&self.client, kind, namespace, name, replicas, dry_run).await
    }

    async fn record_event(
        &self,
        object: ObjectRef<'_>,
        reason: &str,
        message: &str,
        warning: bool,
    ) {
        workload::record_event(&self.client, object, reason, message, warning).await
    }

    async fn await_maintenance(
        &self,
        timeout: Duration,
    ) -> Result<Result<String, NodeOutcome>, ExecError> {
        node::await_maintenance(&self.client, timeout).await
    }

    async fn cordon(
        &self,
        name: &str,
        max_unavailable: u32,
        dry_run: bool,
    ) -> Result<NodeOutcome, ExecError> {
        node::cordon(&self.client, name, max_unavailable, dry_run).await
    }

    async fn drain(
        &self,
        name: &str,
        timeout: Duration,
        dry_run: bool,
    ) -> Result<String, ExecError> {
        node::drain(&self.client, name, timeout, dry_run).await
    }

    async fn uncordon_if_ready(&self, name: &str, dry_run: bool) -> String {
        node::uncordon_if_ready(&self.client, name, dry_run).await
    }

    async fn restart_operator_pods(&self, name: &str, dry_run: bool) -> Result<String, ExecError> {
        platform::restart_operator_pods(&self.client, name, dry_run).await
    }

    async fn helm_rollback(
        &self,
        namespace: &str,
        release: &str,
        target: &Revision,
        dry_run: bool,
        timeout: Duration,
    ) -> Result<RollbackOutcome, ExecError> {
        helm::rollback(
            self.helm_bin.as_deref(),
            self.kubeconfig.as_deref(),
            namespace,
            release,
            target,
            dry_run,
            timeout,
        )
        .await
    }

    async fn nudge_operator(
        &self,
        namespace: &str,
        owner: &CustomRef,
        now: DateTime<Utc>,
        dry_run: bool,
    ) -> Result<String, ExecError> {
        operator::nudge(&self.client, namespace, owner, now, dry_run).await
    }

    fn has_argocd(&self) -> bool {
        self.argocd.is_some()
    }

    fn argocd_server(&self) -> Option<String> {
        self.argocd
            .as_ref()
            .and_then(|argo| argo.server().map(String::from))
    }

    async fn probe_argocd_server(&self, timeout: Duration) -> Option<Result<Duration, String>> {
        self.argocd.as_ref()?.probe_server(timeout).await
    }

    async fn application(&self, app: &AppRef) -> Result<Value, ExecError> {
        self.argo()?.fetch(app).await
    }

    async fn sync_application(
        &self,
        app: &AppRef,
        resource: &ResourceRef,
        reason: &str,
        dry_run: bool,
    ) -> Result<(String, String), ExecError> {
        self.argo()?.sync(app, resource, reason, dry_run).await
    }

    async fn restart_through_argocd(
        &self,
        app: &AppRef,
        resource: &ResourceRef,
    ) -> Result<Option<String>, ExecError> {
        self.argo()?.restart(app, resource).await
    }

    async fn await_application(&self, app: &AppRef, before: &str) -> SyncOutcome {
        match self.argo() {
            Ok(argo) => argo.wait(app, before).await,
            Err(error) => SyncOutcome::Failed(error.to_string()),
        }
    }

    async fn set_self_heal(&self, app: &AppRef, enabled: bool) -> Result<(), ExecError> {
        self.argo()?.set_self_heal(app, enabled).await
    }

    async fn previous_revision(&self, app: &AppRef) -> Option<String> {
        self.argocd.as_ref()?.previous_revision(app).await
    }
}
