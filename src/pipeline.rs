//! The one place where the stages are chained (SPEC §5):
//! incident → detect → plan → gate → execute → verify → (escalate | resolve).
//!
//! A workflow starts here (`start.rs`: the gates, then the verdict recorded). Attached to a
//! cluster (a `cluster::Cluster`, picked by `startup`), a live workflow runs in the background
//! (`run.rs`, `climb.rs`, `outcome.rs`): the channel `route` picks acts, checkpoints verify,
//! the ladder climbs or escalates. Detached (no cluster), or asked for a dry run, each step is
//! recorded with what it would do and nothing is written to the cluster. Each transition is
//! persisted before it is reported.

mod budget;
mod climb;
mod evidence;
mod inspect;
#[cfg(test)]
mod ladders;
mod lease;
mod method;
mod outcome;
mod owners;
mod persist;
mod pickup;
mod queue;
mod requeue;
mod route;
mod run;
mod rung;
mod scale;
mod start;
mod symptom;
#[cfg(test)]
mod tests;
mod trace;

use crate::cluster::SharedCluster;
use crate::gate::{Bucket, GateContext, StormBudget, Verdict, gate};
use crate::incident::Incident;
use crate::metrics::Metrics;
use crate::plan::{Plan, StepTarget, plan};
use crate::store::{Pause, Store, StoreError};
use crate::workflow::{Workflow, WorkflowKind, WorkflowMode, WorkflowStatus};
pub use budget::{BucketUsage, BudgetUsage};
use chrono::{DateTime, Utc};
pub use method::{DETECTION_BUDGET, Detection};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// Workflow states that hold the target (one active workflow per target).
pub const ACTIVE: &[WorkflowStatus] = &[
    WorkflowStatus::Pending,
    WorkflowStatus::AwaitingApproval,
    WorkflowStatus::Running,
    WorkflowStatus::Verifying,
];

/// Live workflows that run at once.
pub const MAX_RUNNING: usize = 4;

/// Why a workflow was not started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("workflow {0} is already active for this target")]
    AlreadyActive(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct Pipeline {
    store: Arc<dyn Store>,
    metrics: Metrics,
    /// `None`: detached, every workflow is a dry run.
    cluster: Option<SharedCluster>,
    guard: crate::guard::SharedView,
    budget: StormBudget,
    /// How long a workload checkpoint may take (SPEC §5.5: within 2 minutes by default).
    checkpoint_timeout: Duration,
    /// Live workflows running at once.
    running: Arc<tokio::sync::Semaphore>,
    /// Actions that need a human's approval.
    approval: std::collections::HashSet<crate::plan::Action>,
    /// ArgoCD's control-plane namespaces (where an Application named without its namespace
    /// lives).
    argocd_namespaces: Vec<String>,
    /// Limits of the node and Helm channels.
    channels: crate::config::ChannelSettings,
    /// The anomaly-detector refines layer detection when configured.
    models: Arc<crate::ml::Models>,
    /// Serialises the node budget check and the cordon (`MAX_UNAVAILABLE_NODES`).
    node_budget: tokio::sync::Mutex<()>,
    /// Serialises lease publications, so a stale read never overwrites a newer one.
    lease_publish: tokio::sync::Mutex<()>,
    /// Whether this replica executes (only the elected leader does).
    leadership: crate::leader::Leadership,
    /// Workflows this process is running now (a new term leaves them alone; the pick-up loop
    /// does not start them twice).
    in_flight: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
}

/// `namespace/Kind/name`.
pub fn target_key(target: &StepTarget) -> String {
    format!(
        "{}/{}/{}",
        target.namespace.as_deref().unwrap_or(""),
        target.kind,
        target.name
    )
}

/// How a workflow is started (beyond its plan).
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    /// The caller asked for a dry run.
    pub dry_run: bool,
    /// Every step waits for `POST /approve`, with this reason (unless it is a dry run).
    pub approval: Option<String>,
}

pub use crate::plan::{for_incident as plan_for, incident_layer, incident_target};

/// The plan a workflow was stored with (`None` when it has none or it no longer parses).
fn stored_plan(workflow: &Workflow) -> Option<Plan> {
    serde_json::from_value(workflow.plan.clone()?).ok()
}

impl Pipeline {
    pub fn new(
        store: Arc<dyn Store>,
        metrics: Metrics,
        cluster: Option<SharedCluster>,
        guard: crate::guard::SharedView,
        checkpoint_timeout: Duration,
    ) -> Self {
        Pipeline {
            store,
            metrics,
            cluster,
            guard,
            budget: StormBudget::default(),
            checkpoint_timeout,
            running: Arc::new(tokio::sync::Semaphore::new(MAX_RUNNING)),
            approval: Default::default(),
            argocd_namespaces: Vec::new(),
            models: Default::default(),
            node_budget: tokio::sync::Mutex::new(()),
            lease_publish: tokio::sync::Mutex::new(()),
            leadership: crate::leader::Leadership::single("engine"),
            in_flight: Default::default(),
            channels: crate::config::ChannelSettings {
                drain_timeout: Duration::from_secs(300),
                max_unavailable_nodes: 1,
                helm_bin: None,
                kubeconfig: None,
                leased_actions: Vec::new(),
                lease_ttl: Duration::from_secs(900),
            },
        }
    }

    /// Executes only while `leadership` says this replica leads.
    pub fn with_leadership(mut self, leadership: crate::leader::Leadership) -> Self {
        self.leadership = leadership;
        self
    }

    pub fn leadership(&self) -> &crate::leader::Leadership {
        &self.leadership
    }

    /// Asks the anomaly-detector for each queued incident's layer.
    pub fn with_models(mut self, models: Arc<crate::ml::Models>) -> Self {
        self.models = models;
        self
    }

    /// The plan for a queued incident: keyword detection, refined by the anomaly-detector when
    /// one is configured and confident enough (its outcome counted in
    /// `ml_layer_detection_total`).
    pub async fn plan_with_ml(&self, incident: &Incident) -> Plan {
        let keyword = plan_for(incident);
        let features = json!({
            "kind": incident.target.as_ref().map(|t| t.kind.as_str()).unwrap_or_default(),
            "namespace": incident.namespace,
            "alertname": incident.labels.get("alertname"),
            "issue_type": incident.issue_type,
            "text": format!("{} {}", incident.title, incident.description),
        });
        let Some(verdict) = self.models.classify_layer(features).await else {
            return keyword;
        };
        self.metrics
            .ml_layer_detection
            .with_label_values(&[verdict.outcome()])
            .inc();
        match verdict {
            crate::ml::LayerVerdict::Used { layer, confidence } => {
                let mut layers: Vec<crate::detect::LayerFinding> = Vec::new();
                layers.push(crate::detect::LayerFinding {
                    layer,
                    confidence,
                    evidence: format!(
                        "{} classified it ({confidence:.2})",
                        crate::ml::ANOMALY_DETECTOR
                    ),
                });
                let target = incident_target(incident);
                let mut refined = plan(&incident.issue_type, target, &layers, layer);
                for affected in keyword.affected_layers {
                    if !refined.affected_layers.contains(&affected) {
                        refined.affected_layers.push(affected);
                    }
                }
                refined
            }
            crate::ml::LayerVerdict::LowConfidence { .. } => keyword,
            crate::ml::LayerVerdict::Unavailable(why) => {
                tracing::warn!(incident = %incident.id, %why, "ML layer detection unavailable: keyword detection");
                keyword
            }
        }
    }

    /// Node drain timeout, node budget, helm binary.
    pub fn with_channels(mut self, channels: crate::config::ChannelSettings) -> Self {
        self.channels = channels;
        self
    }

    /// ArgoCD's control-plane namespaces (`ARGOCD_NAMESPACES`).
    pub fn with_argocd_namespaces(mut self, namespaces: Vec<String>) -> Self {
        self.argocd_namespaces = namespaces;
        self
    }

    /// The cluster the workflows act on (`None`: detached).
    pub fn cluster(&self) -> Option<&SharedCluster> {
        self.cluster.as_ref()
    }

    /// Whether the ArgoCD channel can carry actions.
    fn has_argocd(&self) -> bool {
        self.cluster.as_ref().is_some_and(|c| c.has_argocd())
    }

    /// Actions listed here wait for `POST /approve`.
    pub fn with_approval(mut self, actions: &[crate::plan::Action]) -> Self {
        self.approval = actions.iter().copied().collect();
        self
    }

    /// Runs an approved (pending) workflow: live in the background when attached, recorded
    /// from its plan when detached.
    pub async fn resume(self: &Arc<Self>, mut workflow: Workflow) -> Result<(), StoreError> {
        if workflow.status != WorkflowStatus::Pending {
            return Ok(());
        }
        let Some(plan) = stored_plan(&workflow) else {
            return Ok(());
        };
        if self.cluster.is_some() {
            self.spawn_run(workflow, plan);
        } else {
            self.dry_run(&mut workflow, &plan, Utc::now());
            self.store.update_workflow(&workflow).await?;
        }
        Ok(())
    }

    fn detached(&self) -> bool {
        self.cluster.is_none()
    }
}
