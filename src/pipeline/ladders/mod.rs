//! Unit tests of the live runner against the in-memory cluster (`cluster::fake`): every ladder
//! (manual, ArgoCD, Helm, operator, node, platform) and every way out of it (healed, not
//! needed, escalated), asserting the exact calls the cluster received and what the workflow
//! recorded. The HTTP-level behaviour (real requests, query parameters) stays in `tests/it`.

mod coordination;
mod escalations;
mod evidence;
mod infrastructure;
mod manual;
mod owned;
mod paths;

use super::*;
use crate::cluster::fake::{FakeCluster, Script, World};
use crate::incident::{Severity, Source, Target};
use crate::store::SqlStore;
use crate::verify::assess::{ContainerState, PodState, Rollout};
use serde_json::{Value, json};

/// The checkpoint timeout of these tests: a healthy workload passes once it stayed healthy a
/// quarter of it, a crash-looping one fails at the first poll.
const CHECKPOINT: Duration = Duration::from_secs(1);

pub(super) struct Harness {
    pub pipeline: Arc<Pipeline>,
    pub store: Arc<SqlStore>,
    pub cluster: Arc<FakeCluster>,
    dir: tempfile::TempDir,
}

/// A pipeline attached to a fake cluster answering from `world`, over a SQLite store.
pub(super) async fn harness(world: World) -> Harness {
    harness_with(world, Vec::new()).await
}

/// `harness`, with these actions taken under a remediation lease on ArgoCD-managed workloads.
pub(super) async fn harness_with(world: World, leased: Vec<crate::plan::Action>) -> Harness {
    let super::tests::Parts {
        dir,
        metrics,
        store,
        defaults,
        guard,
    } = super::tests::parts().await;
    let cluster = Arc::new(FakeCluster::new(world));
    let shared: SharedCluster = cluster.clone();
    let mut channels = defaults.channels.clone();
    channels.leased_actions = leased;
    let pipeline = Arc::new(
        Pipeline::new(store.clone(), metrics, Some(shared), guard, CHECKPOINT)
            .with_argocd_namespaces(vec!["argocd".into()])
            .with_channels(channels),
    );
    Harness {
        pipeline,
        store,
        cluster,
        dir,
    }
}

impl Harness {
    /// Starts a live workflow for a new `issue_type` incident on `kind namespace/name` and
    /// waits until it ends.
    pub async fn run(
        &self,
        issue_type: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Workflow {
        self.run_with(issue_type, (kind, namespace, name), false)
            .await
    }

    pub async fn run_with(
        &self,
        issue_type: &str,
        target: (&str, Option<&str>, &str),
        dry_run: bool,
    ) -> Workflow {
        let incident = incident(Source::Api, issue_type, target);
        let started = self.start(&incident, dry_run).await;
        self.finished(&started.id).await
    }

    /// Stores `incident` and starts its workflow (it runs in the background).
    pub async fn start(&self, incident: &Incident, dry_run: bool) -> Workflow {
        self.store
            .insert_incident(incident)
            .await
            .expect("incident");
        let plan = plan_for(incident);
        self.pipeline
            .start(incident, WorkflowKind::Remediation, plan, dry_run)
            .await
            .expect("started")
    }

    /// Polls the store until the workflow is in `status`.
    pub async fn reaches(&self, id: &str, status: WorkflowStatus) {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while self.store.get_workflow(id).await.expect("workflow").status != status {
            assert!(std::time::Instant::now() < deadline, "never {status}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Polls until the runner of workflow `id` has returned.
    pub async fn runner_returned(&self, id: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while self.pipeline.is_in_flight(id) {
            assert!(std::time::Instant::now() < deadline, "{id} still runs");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Polls the store until the workflow ends (a deadline, never a fixed sleep).
    pub async fn finished(&self, id: &str) -> Workflow {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let workflow = self.store.get_workflow(id).await.expect("workflow");
            if workflow.status.is_terminal() {
                return workflow;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "still {}: {:?}",
                workflow.status,
                workflow.steps
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A new incident from `source` about `kind namespace/name`.
pub(super) fn incident(
    source: Source,
    issue_type: &str,
    (kind, namespace, name): (&str, Option<&str>, &str),
) -> Incident {
    let title = format!("{name} {issue_type}");
    let mut incident = Incident::new(source, title, Severity::High, Utc::now());
    incident.namespace = namespace.map(String::from);
    incident.target = Some(Target {
        kind: kind.into(),
        name: name.into(),
    });
    incident.issue_type = issue_type.into();
    incident
}

/// Each step as `action outcome [channel]`.
/// The workflow ended in `status` (its steps are shown when it did not).
#[track_caller]
pub(super) fn assert_status(workflow: &Workflow, status: WorkflowStatus) {
    assert_eq!(workflow.status, status, "{:?}", workflow.steps);
}

pub(super) fn steps(workflow: &Workflow) -> Vec<String> {
    workflow
        .steps
        .iter()
        .map(|step| {
            let text = |key: &str| {
                step.get(key)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            let channel = text("channel");
            let line = format!("{} {}", text("action"), text("outcome"));
            if channel.is_empty() {
                line
            } else {
                format!("{line} {channel}")
            }
        })
        .collect()
}

/// The detail of the first step with this action.
pub(super) fn detail(workflow: &Workflow, action: &str) -> String {
    workflow
        .steps
        .iter()
        .find(|s| s["action"] == action)
        .and_then(|s| s["detail"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// The escalation's `field` (`reason`, `needed`).
pub(super) fn escalation(workflow: &Workflow, field: &str) -> String {
    workflow
        .escalation
        .as_ref()
        .and_then(|e| e[field].as_str())
        .unwrap_or_default()
        .to_string()
}

/// A Deployment `shop/api` wanting 2 replicas with 1 available (the symptom), with these
/// annotations and owner references.
pub(super) fn deployment(annotations: Value, owners: Value) -> Value {
    serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "api", "namespace": "shop", "uid": "uid-api",
                     "annotations": annotations, "ownerReferences": owners},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "api"}}},
        "status": {"availableReplicas": 1}})
}

/// A world holding `deployment` as `Deployment/shop/api`, rolling out as `rollouts` says.
pub(super) fn world_of(deployment: Value, rollouts: Vec<(Rollout, Vec<PodState>)>) -> World {
    let mut world = World::default();
    world
        .objects
        .insert("Deployment/shop/api".into(), deployment);
    world
        .workload_states
        .insert("Deployment/shop/api".into(), Script::of(rollouts));
    world
}

/// A poll of a workload whose new pods are Ready and not restarting.
/// Adds the pod `shop/api-1`, with `status`, of ReplicaSet `api-rs` of the Deployment
/// `shop/api`: an owner chain the pipeline walks from the pod.
pub(super) fn with_pod(mut world: World, status: Value) -> World {
    world.objects.insert(
        "ReplicaSet/shop/api-rs".into(),
        json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "api-rs", "namespace": "shop",
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "api", "controller": true}]}}),
    );
    world.objects.insert(
        "Pod/shop/api-1".into(),
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "api-1", "namespace": "shop",
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "api-rs", "controller": true}]},
            "status": status}),
    );
    world
}

pub(super) fn healthy() -> (Rollout, Vec<PodState>) {
    let rollout = Rollout {
        complete: true,
        detail: "Deployment shop/api: 2/2 available".into(),
        deadline_exceeded: None,
    };
    (rollout, vec![pod("api-new", true, None)])
}

/// A poll of a workload whose new pod is in CrashLoopBackOff.
pub(super) fn crash_looping() -> (Rollout, Vec<PodState>) {
    let rollout = Rollout {
        complete: false,
        detail: "Deployment shop/api: 1/2 available".into(),
        deadline_exceeded: None,
    };
    (
        rollout,
        vec![pod("api-new", false, Some("CrashLoopBackOff"))],
    )
}

fn pod(name: &str, ready: bool, waiting: Option<&str>) -> PodState {
    PodState {
        name: name.into(),
        new_template: true,
        ready,
        node: None,
        containers: vec![ContainerState {
            name: "web".into(),
            restarts: 0,
            waiting: waiting.map(String::from),
            message: None,
        }],
    }
}
