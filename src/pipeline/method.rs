//! How a trigger's target is deployed, answered before the trigger returns (SPEC §5.1): the
//! owner chain comes from the watch caches (the metadata cache of Deployments, StatefulSets
//! and ReplicaSets), and from the API server only for what they do not hold (the pod itself,
//! DaemonSets, a cache not synced yet), all within a time budget. A workflow detects again,
//! from fresh reads, before it writes anything.

use super::Pipeline;
use super::run::invalid_target;
use crate::detect::ownership::{DeploymentMethod, deployment_method};
use crate::plan::{Plan, StepTarget};
use std::time::Duration;

/// How long a trigger waits for ownership detection.
pub const DETECTION_BUDGET: Duration = Duration::from_millis(100);

/// The outcome of a trigger's ownership detection.
#[derive(Debug, Clone, PartialEq)]
pub enum Detection {
    Detected(DeploymentMethod),
    /// Why it is not known (detached, too slow, the target cannot be read).
    Unknown(String),
}

/// The "method" of cluster infrastructure (nodes, ClusterOperators, pools): nobody deploys it.
pub(super) fn cluster_infrastructure(target: &StepTarget) -> DeploymentMethod {
    DeploymentMethod {
        method: crate::detect::ownership::Method::Cluster,
        confidence: 1.0,
        evidence: format!("{} {} is cluster infrastructure", target.kind, target.name),
        owner: None,
    }
}

impl Pipeline {
    /// How `target` is deployed, within `budget`.
    pub async fn detect_method(&self, target: &StepTarget, budget: Duration) -> Detection {
        let Some(cluster) = &self.cluster else {
            return Detection::Unknown("detached: no cluster to read the owner chain from".into());
        };
        if target.kind.is_empty() {
            return Detection::Unknown("the incident names no Kubernetes object".into());
        }
        if let Some(why) = invalid_target(target) {
            return Detection::Unknown(why);
        }
        let Some(namespace) = target.namespace.as_deref() else {
            return Detection::Detected(cluster_infrastructure(target));
        };
        let view = self.guard.snapshot();
        let count = |ok: bool| {
            let outcome = if ok { "success" } else { "error" };
            self.metrics
                .cluster_requests
                .with_label_values(&["get", outcome])
                .inc();
        };
        let chain = cluster.owner_chain(
            (&target.kind, namespace, &target.name),
            Some(&view.parents),
            &count,
        );
        match tokio::time::timeout(budget, chain).await {
            Ok(Ok(chain)) => Detection::Detected(deployment_method(&chain, &view)),
            Ok(Err(error)) => Detection::Unknown(format!(
                "cannot read {} {namespace}/{}: {error}",
                target.kind, target.name
            )),
            Err(_) => Detection::Unknown(format!(
                "ownership detection did not finish within {} ms; the workflow's detect step has the result",
                budget.as_millis()
            )),
        }
    }

    /// Fills in the channels of `plan`'s steps on `target`, once its deployment method is known
    /// (no `pending_detection` left for it).
    pub fn set_plan_channels(
        &self,
        plan: &mut Plan,
        target: &StepTarget,
        method: &DeploymentMethod,
    ) {
        plan.set_channels(target, |action| self.route(action, method, true).channel());
    }
}
