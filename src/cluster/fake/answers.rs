//! The fake's answers to each question of the `Cluster` trait.

use super::{FakeCluster, Script, controller, dry, from_json, key, workload_key};
use crate::cluster::{Cluster, ClusterProbe, CustomRef, EvictablePod, ObjectRef, Workload};
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
use std::time::Duration;

#[async_trait]
impl Cluster for FakeCluster {
    async fn probe(&self) -> ClusterProbe {
        ClusterProbe {
            reachable: true,
            latency: Some(Duration::ZERO),
            message: "fake cluster".into(),
        }
    }

    async fn owner_chain(
        &self,
        object: ObjectRef<'_>,
        _cache: Option<&ParentCache>,
        _read: &(dyn Fn(bool) + Sync),
    ) -> Result<Vec<Value>, ExecError> {
        self.record("owner_chain", format!("owner_chain {}", key(object)))?;
        let (mut kind, namespace, mut name) =
            (object.0.to_string(), object.1, object.2.to_string());
        let mut chain = Vec::new();
        for _ in 0..4 {
            let found = self.object((&kind, namespace, &name))?;
            let next = controller(&found);
            chain.push(found);
            match next {
                Some((k, n)) => (kind, name) = (k, n),
                None => break,
            }
        }
        Ok(chain)
    }

    async fn get(&self, object: ObjectRef<'_>) -> Result<Value, ExecError> {
        self.record("get", format!("get {}", key(object)))?;
        self.object(object)
    }

    async fn pods(
        &self,
        object: ObjectRef<'_>,
        _: Option<&Workload>,
    ) -> Result<Vec<Pod>, ExecError> {
        self.record("pods", format!("pods {}", key(object)))?;
        let pods = self.world().pods.clone();
        pods.iter().map(from_json).collect()
    }

    async fn node(&self, name: &str) -> Result<Node, ExecError> {
        self.record("node", format!("node {name}"))?;
        let node = self.world().nodes.get(name).cloned();
        from_json(&node.ok_or_else(|| ExecError::Permanent(format!("no node {name}")))?)
    }

    async fn node_ready(&self, name: &str) -> Option<bool> {
        self.record("node_ready", format!("node_ready {name}"))
            .ok()?;
        self.world().node_ready.get_mut(name)?.next()
    }

    async fn workload_state(
        &self,
        workload: &Workload,
    ) -> Result<(Rollout, Vec<PodState>), ExecError> {
        let key = workload_key(workload);
        self.record("workload_state", format!("workload_state {key}"))?;
        let state = self
            .world()
            .workload_states
            .get_mut(&key)
            .and_then(Script::next);
        state.ok_or_else(|| ExecError::Permanent(format!("no rollout scripted for {key}")))
    }

    async fn evictable_pods(&self, node: &str) -> Result<Vec<EvictablePod>, ExecError> {
        self.record("evictable_pods", format!("evictable_pods {node}"))?;
        Ok(self
            .world()
            .evictable
            .get_mut(node)
            .and_then(Script::next)
            .unwrap_or_default())
    }

    async fn cluster_operator(&self, name: &str) -> Result<Value, ExecError> {
        self.record("cluster_operator", format!("cluster_operator {name}"))?;
        let operator = self
            .world()
            .cluster_operators
            .get_mut(name)
            .and_then(Script::next);
        operator.ok_or_else(|| ExecError::Permanent(format!("no ClusterOperator {name}")))
    }

    async fn replicas(&self, workload: &Workload) -> Result<i32, ExecError> {
        let key = workload_key(workload);
        self.record("replicas", format!("replicas {key}"))?;
        let object = self.object((&workload.0, &workload.1, &workload.2))?;
        let replicas = object
            .pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        Ok(i32::try_from(replicas).unwrap_or(1))
    }

    async fn autoscaler_of(&self, workload: &Workload) -> Result<Option<String>, ExecError> {
        let key = workload_key(workload);
        self.record("autoscaler_of", format!("autoscaler_of {key}"))?;
        Ok(self.world().autoscalers.get(&key).cloned())
    }

    async fn helm_history(
        &self,
        namespace: &str,
        release: &str,
    ) -> Result<Vec<Revision>, ExecError> {
        self.record(
            "helm_history",
            format!("helm_history {namespace}/{release}"),
        )?;
        Ok(self
            .world()
            .helm_history
            .get(release)
            .cloned()
            .unwrap_or_default())
    }

    async fn csvs(&self, namespace: &str) -> Result<Vec<Value>, ExecError> {
        self.record("csvs", format!("csvs {namespace}"))?;
        Ok(self.world().csvs.clone())
    }

    async fn delete_pod(
        &self,
        namespace: &str,
        name: &str,
        dry_run: bool,
    ) -> Result<String, ExecError> {
        self.record(
            "delete_pod",
            format!("delete_pod {namespace}/{name}{}", dry(dry_run)),
        )?;
        Ok(format!("deleted pod {namespace}/{name}{}", dry(dry_run)))
    }

    async fn rollout_restart(
        &self,
        workload: &Workload,
        _: DateTime<Utc>,
        dry_run: bool,
    ) -> Result<String, ExecError> {
        let key = workload_key(workload);
        self.record(
            "rollout_restart",
            format!("rollout_restart {key}{}", dry(dry_run)),
        )?;
        Ok(format!("restarted {key}{}", dry(dry_run)))
    }

    async fn rollback_deployment(
        &self,
        namespace: &str,
        name: &str,
        dry_run: bool,
    ) -> Result<String, ExecError> {
        let call = format!("rollback_deployment {namespace}/{name}{}", dry(dry_run));
        self.record("rollback_deployment", call)?;
        Ok(format!(
            "rolled back Deployment {namespace}/{name}{}",
            dry(dry_run)
        ))
    }

    async fn scale(
        &self,
        workload: &Workload,
        replicas: i32,
        dry_run: bool,
    ) -> Result<String, ExecError> {
        let key = workload_key(workload);
        self.record("scale", format!("scale {key} {replicas}{}", dry(dry_run)))?;
        Ok(format!(
            "scaled {key} to {replicas} replicas{}",
            dry(dry_run)
        ))
    }

    async fn record_event(&self, object: ObjectRef<'_>, reason: &str, _: &str, warning: bool) {
        let kind = if warning { "Warning" } else { "Normal" };
        let _ = self.record("event", format!("event {reason} {kind} {}", key(object)));
    }

    async fn await_maintenance(
        &self,
        _: Duration,
    ) -> Result<Result<String, NodeOutcome>, ExecError> {
        self.record("await_maintenance", "await_maintenance".into())?;
        Ok(self
            .world()
            .maintenance
            .clone()
            .unwrap_or(Ok(String::new())))
    }

    async fn cordon(&self, node: &str, max: u32, dry_run: bool) -> Result<NodeOutcome, ExecError> {
        self.record("cordon", format!("cordon {node} max={max}{}", dry(dry_run)))?;
        let scripted = self.world().cordon.clone();
        Ok(scripted.unwrap_or_else(|| NodeOutcome::Done(format!("cordoned node {node}"))))
    }

    async fn drain(&self, node: &str, _: Duration, dry_run: bool) -> Result<String, ExecError> {
        self.record("drain", format!("drain {node}{}", dry(dry_run)))?;
        Ok(format!("drained node {node}"))
    }

    async fn uncordon_if_ready(&self, node: &str, dry_run: bool) -> String {
        match self.record("uncordon", format!("uncordon {node}{}", dry(dry_run))) {
            Ok(()) => format!("node {node} is Ready again: uncordoned"),
            Err(error) => format!("node {node} is Ready again, but uncordoning failed: {error}"),
        }
    }

    async fn restart_operator_pods(&self, name: &str, dry_run: bool) -> Result<String, ExecError> {
        self.record(
            "restart_operator_pods",
            format!("restart_operator_pods {name}{}", dry(dry_run)),
        )?;
        Ok(format!("restarted the pods of ClusterOperator {name}"))
    }

    async fn helm_rollback(
        &self,
        namespace: &str,
        release: &str,
        target: &Revision,
        dry_run: bool,
        _: Duration,
    ) -> Result<RollbackOutcome, ExecError> {
        let call = format!(
            "helm_rollback {namespace}/{release} {}{}",
            target.version,
            dry(dry_run)
        );
        self.record("helm_rollback", call)?;
        if !self.world().helm_available {
            let command = format!(
                "helm rollback {release} {} --namespace {namespace}",
                target.version
            );
            return Ok(RollbackOutcome::NoHelm { command });
        }
        Ok(RollbackOutcome::Done(format!(
            "rolled back Helm release {namespace}/{release} to revision {}",
            target.version
        )))
    }

    async fn nudge_operator(
        &self,
        namespace: &str,
        owner: &CustomRef,
        _: DateTime<Utc>,
        dry_run: bool,
    ) -> Result<String, ExecError> {
        let (_, kind, name) = owner;
        self.record(
            "nudge_operator",
            format!("nudge_operator {kind}/{namespace}/{name}{}", dry(dry_run)),
        )?;
        Ok(format!(
            "asked the operator to reconcile {kind} {namespace}/{name}"
        ))
    }

    fn has_argocd(&self) -> bool {
        self.world().argocd
    }

    fn argocd_server(&self) -> Option<String> {
        None
    }

    async fn probe_argocd_server(&self, _: Duration) -> Option<Result<Duration, String>> {
        None
    }

    async fn application(&self, app: &AppRef) -> Result<Value, ExecError> {
        self.record("application", format!("application {app}"))?;
        let found = self.world().applications.get(&app.to_string()).cloned();
        found.ok_or_else(|| ExecError::Permanent(format!("no Application {app}")))
    }

    async fn sync_application(
        &self,
        app: &AppRef,
        resource: &ResourceRef,
        _: &str,
        dry_run: bool,
    ) -> Result<(String, String), ExecError> {
        let target = format!("{}/{}/{}", resource.kind, resource.namespace, resource.name);
        self.record(
            "sync_application",
            format!("sync_application {app} {target}{}", dry(dry_run)),
        )?;
        Ok((
            format!("synced {target} through Application {app}"),
            "before".into(),
        ))
    }

    async fn restart_through_argocd(
        &self,
        app: &AppRef,
        resource: &ResourceRef,
    ) -> Result<Option<String>, ExecError> {
        let target = format!("{}/{}/{}", resource.kind, resource.namespace, resource.name);
        self.record(
            "restart_through_argocd",
            format!("restart_through_argocd {app} {target}"),
        )?;
        Ok(None)
    }

    async fn await_application(&self, app: &AppRef, before: &str) -> SyncOutcome {
        let _ = self.record(
            "await_application",
            format!("await_application {app} after {before}"),
        );
        let scripted = self.world().sync_outcome.clone();
        scripted.unwrap_or_else(|| SyncOutcome::Healthy("sync Synced, health Healthy".into()))
    }

    async fn set_self_heal(&self, app: &AppRef, enabled: bool) -> Result<(), ExecError> {
        self.record("set_self_heal", format!("set_self_heal {app} {enabled}"))
    }

    async fn previous_revision(&self, app: &AppRef) -> Option<String> {
        self.record("previous_revision", format!("previous_revision {app}"))
            .ok()?;
        self.world().previous_revision.clone()
    }
}
