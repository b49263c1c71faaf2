//! Diagnosis → plan (SPEC §5.2): ordered steps, lowest layer first, least invasive first, each
//! with its channel, timeout, verification and undo. Pure data.

mod incident;

use crate::detect::{Layer, LayerFinding};
pub use incident::{
    Resource, for_incident, for_resources, for_signal, incident_layer, incident_target,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Read events, scheduling and container states; changes nothing.
    InspectEvents,
    DeletePod,
    RolloutRestart,
    /// Back to the previous revision, through the owning channel.
    Rollback,
    /// One more replica (never for a workload an HPA scales).
    ScaleUp,
    Cordon,
    Drain,
    RestartOperatorPods,
    /// Hand over to a human with the evidence and what is needed.
    Escalate,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::InspectEvents => "inspect_events",
            Action::DeletePod => "delete_pod",
            Action::RolloutRestart => "rollout_restart",
            Action::Rollback => "rollback",
            Action::ScaleUp => "scale_up",
            Action::Cordon => "cordon",
            Action::Drain => "drain",
            Action::RestartOperatorPods => "restart_operator_pods",
            Action::Escalate => "escalate",
        }
    }

    /// Whether the action changes the cluster.
    pub fn mutates(self) -> bool {
        !matches!(self, Action::InspectEvents | Action::Escalate)
    }
}

/// What carries a step (SPEC §5.5): the Kubernetes API, ArgoCD, the helm CLI, an operator's
/// custom resource, the node and platform channels; `human` only for an escalation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Kubernetes,
    Argocd,
    Helm,
    Operator,
    Node,
    Platform,
    Human,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Kubernetes => "kubernetes",
            Channel::Argocd => "argocd",
            Channel::Helm => "helm",
            Channel::Operator => "operator",
            Channel::Node => "node",
            Channel::Platform => "platform",
            Channel::Human => "human",
        }
    }
}

/// A planned step's channel before ownership detection: the action goes through whoever
/// deploys its target (ArgoCD, Helm, an operator or the Kubernetes API).
pub const PENDING_DETECTION: &str = "pending_detection";

/// The object a step acts on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StepTarget {
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Step {
    pub order: u32,
    pub layer: Layer,
    pub action: Action,
    pub target: StepTarget,
    /// A [`Channel`] (`kubernetes`, `argocd`, `helm`, `operator`, `node`, `platform`, `human`),
    /// or `pending_detection` for an action that depends on who deploys the target until
    /// ownership is known (it needs the cluster; [`Plan::set_channels`] then fills it in).
    pub channel: String,
    pub expected_effect: String,
    pub timeout_seconds: u64,
    pub verification: String,
    pub undo: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Plan {
    pub issue_type: String,
    pub root_cause_layer: Layer,
    pub affected_layers: Vec<Layer>,
    pub steps: Vec<Step>,
    pub estimated_duration_seconds: u64,
}

/// Kinds without a namespace. A namespace that comes with one (an alert's `namespace` label is
/// often the exporter's) is dropped from its target.
pub const CLUSTER_SCOPED: &[&str] = &[
    "Node",
    "ClusterOperator",
    "ClusterVersion",
    "MachineConfigPool",
    "MachineConfig",
    "PersistentVolume",
    "Namespace",
    "StorageClass",
];

pub fn is_cluster_scoped(kind: &str) -> bool {
    CLUSTER_SCOPED.contains(&kind)
}

/// Workload checkpoints time out within 2 minutes by default (SPEC §5.5).
const WORKLOAD_TIMEOUT: u64 = 120;
const NODE_TIMEOUT: u64 = 300;

/// The escalation ladder of an issue type, least invasive first.
pub fn ladder(issue_type: &str, target_kind: &str) -> Vec<Action> {
    use Action::*;
    match issue_type {
        "crash_loop" | "pod_crash" if target_kind == "Pod" => {
            vec![DeletePod, RolloutRestart, Rollback, Escalate]
        }
        "crash_loop" | "pod_crash" => vec![RolloutRestart, Rollback, Escalate],
        "pod_not_ready" | "replicas_mismatch" | "rollout_stuck" | "container_waiting" | "oom"
        | "oom_kill" | "high_memory" => vec![InspectEvents, RolloutRestart, Escalate],
        // Saturation: more capacity, not a restart.
        "high_cpu" | "cpu_throttling" => vec![InspectEvents, ScaleUp, Escalate],
        // A bad image is fixed where the image is defined: no blind restarts.
        "image_pull" | "image_pull_backoff" => vec![InspectEvents, Escalate],
        "node_not_ready" | "node_unreachable" | "kubelet_down" => {
            vec![InspectEvents, Cordon, Drain, Escalate]
        }
        "operator_degraded" | "operator_down" => vec![InspectEvents, RestartOperatorPods, Escalate],
        _ => vec![InspectEvents, Escalate],
    }
}

impl Plan {
    /// Once `target`'s deployment method is known: the channel of each of its steps.
    pub fn set_channels(&mut self, target: &StepTarget, channel: impl Fn(Action) -> Channel) {
        for step in self.steps.iter_mut().filter(|s| &s.target == target) {
            step.channel = channel(step.action).as_str().into();
        }
    }
}

fn step_details(
    action: Action,
    layer: Layer,
) -> (&'static str, String, u64, String, Option<String>) {
    let timeout = if layer == Layer::Infrastructure {
        NODE_TIMEOUT
    } else {
        WORKLOAD_TIMEOUT
    };
    match action {
        // Reads and pod deletions go through the Kubernetes API whoever deploys the target
        // (deleting a pod is not drift: its controller recreates it).
        Action::InspectEvents => (
            Channel::Kubernetes.as_str(),
            "evidence collected (events, scheduling, container states)".into(),
            30,
            "none".into(),
            None,
        ),
        Action::DeletePod => (
            Channel::Kubernetes.as_str(),
            "the failing pod is replaced by its controller".into(),
            timeout,
            "replacement pod Ready and restart count stable".into(),
            None,
        ),
        Action::RolloutRestart => (
            PENDING_DETECTION,
            "all pods restarted with the current template".into(),
            timeout,
            "rollout complete and pods Ready".into(),
            None,
        ),
        Action::Rollback => (
            PENDING_DETECTION,
            "previous revision running".into(),
            timeout,
            "rollout complete, pods Ready, alert resolved".into(),
            Some("roll forward to the current revision".into()),
        ),
        Action::ScaleUp => (
            PENDING_DETECTION,
            "one more replica shares the load".into(),
            timeout,
            "rollout complete and pods Ready".into(),
            Some("scale back to the previous replica count".into()),
        ),
        Action::Cordon => (
            Channel::Node.as_str(),
            "no new pods scheduled on the node".into(),
            30,
            "node unschedulable".into(),
            Some("uncordon".into()),
        ),
        Action::Drain => (
            Channel::Node.as_str(),
            "pods evicted (PDBs honoured)".into(),
            NODE_TIMEOUT,
            "no evictable pods left on the node".into(),
            Some("uncordon".into()),
        ),
        Action::RestartOperatorPods => (
            Channel::Platform.as_str(),
            "operator pods restarted".into(),
            NODE_TIMEOUT,
            "ClusterOperator Available=True, Degraded=False".into(),
            None,
        ),
        Action::Escalate => (
            Channel::Human.as_str(),
            "a human has the evidence and what is needed".into(),
            0,
            "none".into(),
            None,
        ),
    }
}

/// The plan for one target.
pub fn plan(issue_type: &str, target: StepTarget, layers: &[LayerFinding], root: Layer) -> Plan {
    let steps: Vec<Step> = ladder(issue_type, &target.kind)
        .into_iter()
        .enumerate()
        .map(|(i, action)| {
            let (channel, effect, timeout, verification, undo) = step_details(action, root);
            Step {
                order: i as u32 + 1,
                layer: root,
                action,
                target: target.clone(),
                channel: channel.into(),
                expected_effect: effect,
                timeout_seconds: timeout,
                verification,
                undo,
            }
        })
        .collect();
    Plan {
        issue_type: issue_type.to_string(),
        root_cause_layer: root,
        affected_layers: layers.iter().map(|l| l.layer).collect(),
        estimated_duration_seconds: steps.iter().map(|s| s.timeout_seconds).sum(),
        steps,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(kind: &str) -> StepTarget {
        StepTarget {
            kind: kind.into(),
            namespace: Some("shop".into()),
            name: "cart".into(),
        }
    }

    #[test]
    fn ladders_start_least_invasive_and_end_with_escalation() {
        use Action::*;
        let cases = [
            (
                "crash_loop",
                "Pod",
                vec![DeletePod, RolloutRestart, Rollback, Escalate],
            ),
            (
                "crash_loop",
                "Deployment",
                vec![RolloutRestart, Rollback, Escalate],
            ),
            (
                "replicas_mismatch",
                "Deployment",
                vec![InspectEvents, RolloutRestart, Escalate],
            ),
            ("image_pull", "Pod", vec![InspectEvents, Escalate]),
            (
                "high_cpu",
                "Deployment",
                vec![InspectEvents, ScaleUp, Escalate],
            ),
            (
                "node_not_ready",
                "Node",
                vec![InspectEvents, Cordon, Drain, Escalate],
            ),
            (
                "operator_degraded",
                "ClusterOperator",
                vec![InspectEvents, RestartOperatorPods, Escalate],
            ),
            ("unknown", "Pod", vec![InspectEvents, Escalate]),
        ];
        for (issue, kind, expected) in cases {
            assert_eq!(ladder(issue, kind), expected, "{issue} on {kind}");
            assert_eq!(ladder(issue, kind).last(), Some(&Escalate));
        }
    }

    #[test]
    fn image_pull_errors_never_restart() {
        assert!(!ladder("image_pull", "Pod").iter().any(|a| a.mutates()));
    }

    #[test]
    fn a_plan_numbers_its_steps_and_sums_the_timeouts() {
        let p = plan("crash_loop", target("Pod"), &[], Layer::Application);
        assert_eq!(
            p.steps.iter().map(|s| s.order).collect::<Vec<_>>(),
            vec![1, 2, 3, 4]
        );
        assert_eq!(p.estimated_duration_seconds, 3 * WORKLOAD_TIMEOUT);
        assert!(p.steps[2].undo.is_some(), "a rollback can be undone");
        assert_eq!(p.steps[3].channel, "human");
    }

    #[test]
    fn only_owner_dependent_steps_wait_for_detection_and_detection_fills_them_in() {
        let mut p = plan("crash_loop", target("Pod"), &[], Layer::Application);
        let channels = |p: &Plan| {
            p.steps
                .iter()
                .map(|s| s.channel.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            channels(&p),
            vec!["kubernetes", PENDING_DETECTION, PENDING_DETECTION, "human"]
        );
        // Another target's steps are left alone.
        p.set_channels(&target("Deployment"), |_| Channel::Helm);
        assert_eq!(channels(&p)[1], PENDING_DETECTION);
        p.set_channels(&target("Pod"), |action| match action {
            Action::Rollback => Channel::Helm,
            Action::Escalate => Channel::Human,
            _ => Channel::Kubernetes,
        });
        assert_eq!(
            channels(&p),
            vec!["kubernetes", "kubernetes", "helm", "human"]
        );
    }
}
