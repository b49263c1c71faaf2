//! One rung of the ladder: performs the call `route` decided for the action on this target.
//! The manual channel acts on workloads nobody else owns; anything ArgoCD, Helm or an operator
//! owns is escalated with the reason instead of patched (deleting a pod stays allowed: it is
//! not drift).

use super::Pipeline;
use super::owners::argocd_revert;
use super::route::{ChannelCall, Routing, route};
use crate::cluster::{Cluster, Workload};
use crate::detect::ownership::{DeploymentMethod, Method};
use crate::execute::argocd;
use crate::execute::{ExecError, node};
use crate::plan::{Action, Channel, Step};
use crate::verify::Check;
use chrono::Utc;
use serde_json::Value;

/// What one rung did.
pub(super) enum Rung {
    /// Acted (or inspected); `verify` is the checkpoint to run afterwards.
    Done {
        detail: String,
        verify: Option<Check>,
    },
    /// Acted, and the change can be taken back if its checkpoint fails (`undo`, in order); under
    /// a remediation lease when the object is GitOps-managed (`lease`, shown on the step).
    Reversible {
        detail: String,
        verify: Option<Check>,
        undo: Vec<Undo>,
        lease: Option<Value>,
    },
    Failed(String),
    Escalate {
        reason: String,
        needed: String,
    },
}

/// A rung and the channel that carried it, decided where the channel is called so that what
/// a step records cannot drift from what ran.
pub(super) struct Carried {
    pub channel: Channel,
    pub rung: Rung,
}

impl Carried {
    fn by(channel: Channel, rung: Rung) -> Self {
        Carried { channel, rung }
    }

    /// The channel the step records: an escalation hands over to a human, whichever channel
    /// found that it must.
    pub fn recorded_channel(&self) -> Channel {
        match self.rung {
            Rung::Escalate { .. } => Channel::Human,
            _ => self.channel,
        }
    }
}

/// How to take a change back.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Undo {
    /// Scale the workload back to `replicas`.
    ScaleBack { workload: Workload, replicas: i32 },
    /// Turn the Application's selfHeal back on.
    SelfHeal(argocd::AppRef),
}

pub(super) fn workload_check((kind, namespace, name): &(String, String, String)) -> Check {
    Check::Workload {
        kind: kind.clone(),
        namespace: namespace.clone(),
        name: name.clone(),
    }
}

const WORKLOADS: &[&str] = &["Deployment", "StatefulSet", "DaemonSet"];

/// The top workload of an owner chain: `(kind, namespace, name)`.
pub(super) fn top_workload(chain: &[Value]) -> Option<(String, String, String)> {
    let top = chain.last()?;
    let kind = top.get("kind")?.as_str()?;
    WORKLOADS.contains(&kind).then(|| {
        let text = |p: &str| {
            top.pointer(p)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        (
            kind.to_string(),
            text("/metadata/namespace"),
            text("/metadata/name"),
        )
    })
}

/// Why the manual channel does not patch a workload someone else deploys, and what would fix it.
fn not_ours(step: &Step, method: &DeploymentMethod) -> Rung {
    let target = &step.target;
    let owner = method.owner.as_deref().unwrap_or("unknown owner");
    Rung::Escalate {
        reason: format!(
            "{} {}/{} is managed by {} ({owner}); the manual channel never patches it, and the {} channel is not available in this build",
            target.kind,
            target.namespace.as_deref().unwrap_or_default(),
            target.name,
            method.method,
            method.method
        ),
        needed: match (method.method, step.action) {
            (Method::Argocd, Action::Rollback) => {
                format!(
                    "sync Application {owner} to the previous Git revision, or revert the change in Git"
                )
            }
            (Method::Argocd, Action::ScaleUp) => {
                format!("raise the replicas in Git for Application {owner}")
            }
            (Method::Argocd, _) => {
                format!("restart it through ArgoCD (Application {owner}), or fix it in Git")
            }
            (Method::Helm, Action::Rollback) => format!("helm rollback {owner}"),
            (Method::Operator, Action::Rollback) => {
                "the operator owns the operand's versions: change the custom resource's spec, or roll back the operator (its CSV)".into()
            }
            (Method::Helm, _) => format!("upgrade the Helm release {owner} with the fix"),
            _ => "let its operator reconcile it, or fix the custom resource".into(),
        },
    }
}
fn node_rung(outcome: node::NodeOutcome, prefix: &str) -> Rung {
    match outcome {
        node::NodeOutcome::Done(detail) => Rung::Done {
            detail: format!("{prefix}{detail}"),
            verify: None,
        },
        node::NodeOutcome::Escalate { reason, needed } => Rung::Escalate { reason, needed },
    }
}

impl Pipeline {
    /// Performs one step: the `ChannelCall` that `route` decides for it (the applier; the
    /// rules of which channel carries what live in `route.rs` only).
    pub(super) async fn rung(
        &self,
        cluster: &dyn Cluster,
        dry_run: bool,
        step: &Step,
        method: &DeploymentMethod,
        workload: Option<&(String, String, String)>,
        workflow: &crate::workflow::Workflow,
    ) -> Carried {
        let call = self.route(step.action, method, workload.is_some());
        // Before every channel call (Helm and ArgoCD are not behind the client's fence).
        if !self.leadership.is_leader() {
            // Nothing was called: the step shows the channel it would have used.
            return Carried::by(
                call.channel(),
                Rung::Failed(format!(
                    "{} is no longer the leader: not executing",
                    self.leadership.identity()
                )),
            );
        }
        let argocd = cluster.has_argocd();
        let locate =
            |owner: &str| argocd::locate(owner, &self.guard.snapshot(), &self.argocd_namespaces);
        let rung = match (call, workload, argocd, &method.owner) {
            (ChannelCall::Leased, Some(top), _, _) => {
                self.leased(cluster, step, method, top, dry_run, workflow)
                    .await
            }
            (ChannelCall::ArgocdRestart, Some(top), true, Some(owner)) => {
                self.argocd_restart(cluster, &locate(owner), top, dry_run)
                    .await
            }
            (ChannelCall::ArgocdRevert, _, true, Some(owner)) => {
                argocd_revert(cluster, &locate(owner), step).await
            }
            (ChannelCall::HelmRollback, Some(top), _, _) => {
                self.helm_rollback(cluster, top, method, dry_run).await
            }
            (ChannelCall::OperatorNudge, Some(top), _, _) => {
                self.operator_nudge(cluster, top, dry_run).await
            }
            (ChannelCall::Refused, ..) => not_ours(step, method),
            (ChannelCall::Direct(channel), ..) => {
                let rung = self.direct(cluster, dry_run, step, workload, method).await;
                return Carried::by(channel, rung);
            }
            // `route` gives these calls only with what they need.
            (call, ..) => {
                Rung::Failed(format!("{call:?}: the target lacks what the channel needs"))
            }
        };
        Carried::by(call.channel(), rung)
    }

    /// The call that carries `action` on a target deployed by `method`; the plan shows its
    /// channel (for a target with a workload), the step records what actually carried it
    /// (`Carried`: a channel may still escalate, e.g. a Helm release with no revision to go
    /// back to).
    pub(super) fn route(
        &self,
        action: Action,
        method: &DeploymentMethod,
        workload: bool,
    ) -> ChannelCall {
        route(
            action,
            &Routing {
                method: method.method,
                owner: method.owner.is_some(),
                workload,
                argocd: self.has_argocd(),
                leased: &self.channels.leased_actions,
            },
        )
    }

    /// The action itself, through the Kubernetes API (workloads nobody else owns, pods), the
    /// node or platform channels, or a human.
    async fn direct(
        &self,
        cluster: &dyn Cluster,
        dry_run: bool,
        step: &Step,
        workload: Option<&(String, String, String)>,
        method: &DeploymentMethod,
    ) -> Rung {
        let target = &step.target;
        let ns = target.namespace.clone().unwrap_or_default();
        let verify_workload = || workload.map(workload_check);
        let no_workload = |what: &str| {
            Ok(Rung::Failed(format!(
                "{} {ns}/{} has no workload to {what}",
                target.kind, target.name
            )))
        };
        let result = match (step.action, workload) {
            (Action::InspectEvents, _) => Ok(self.inspect(cluster, step, method, workload).await),
            // Deleting a pod is not drift: its controller (whoever owns it) recreates it.
            (Action::DeletePod, _) if target.kind == "Pod" => cluster
                .delete_pod(&ns, &target.name, dry_run)
                .await
                .map(|detail| Rung::Done {
                    detail,
                    verify: verify_workload(),
                }),
            (Action::DeletePod, _) => Ok(Rung::Failed(format!("{} is not a pod", target.kind))),
            (Action::RolloutRestart, Some(top)) => cluster
                .rollout_restart(top, Utc::now(), dry_run)
                .await
                .map(|detail| Rung::Done {
                    detail,
                    verify: verify_workload(),
                }),
            (Action::RolloutRestart, None) => no_workload("restart"),
            (Action::Rollback, Some((kind, wns, name))) if kind == "Deployment" => cluster
                .rollback_deployment(wns, name, dry_run)
                .await
                .map(|detail| Rung::Done {
                    detail,
                    verify: verify_workload(),
                }),
            (Action::Rollback, _) => no_workload("roll back (only Deployments keep revisions)"),
            (Action::ScaleUp, Some(top)) if top.0 != "DaemonSet" => self
                .scale_up(cluster, top, dry_run)
                .await
                .map(|rung| match rung {
                    Rung::Reversible {
                        detail,
                        undo,
                        lease,
                        ..
                    } => Rung::Reversible {
                        detail,
                        verify: verify_workload(),
                        undo,
                        lease,
                    },
                    other => other,
                }),
            (Action::ScaleUp, _) => no_workload("scale (DaemonSets run one pod per node)"),
            (Action::Cordon | Action::Drain | Action::RestartOperatorPods, _) => {
                self.infrastructure(cluster, dry_run, step).await
            }
            (Action::Escalate, _) => Ok(Rung::Escalate {
                reason: "the ladder is exhausted".into(),
                needed: "a human must look at the evidence".into(),
            }),
        };
        self.count_direct(step.action, &result);
        result.unwrap_or_else(|error: ExecError| Rung::Failed(error.to_string()))
    }

    /// Counts the operations of a direct call that reached the API server.
    fn count_direct(&self, action: Action, result: &Result<Rung, ExecError>) {
        let verb = match action {
            Action::DeletePod | Action::RestartOperatorPods => Some("delete"),
            Action::RolloutRestart | Action::Rollback | Action::ScaleUp | Action::Cordon => {
                Some("patch")
            }
            Action::Drain => Some("evict"),
            _ => None,
        };
        if let Some(verb) = verb
            && matches!(
                result,
                Ok(Rung::Done { .. } | Rung::Reversible { .. }) | Err(_)
            )
        {
            self.count(verb, result);
        }
    }

    /// The node and platform channels' actions.
    async fn infrastructure(
        &self,
        cluster: &dyn Cluster,
        dry_run: bool,
        step: &Step,
    ) -> Result<Rung, ExecError> {
        let target = &step.target;
        match step.action {
            // A node that cannot be cordoned is never drained: escalate instead.
            Action::Cordon if target.kind == "Node" => {
                match self.cordon(cluster, &target.name, dry_run).await {
                    Ok(rung) => Ok(rung),
                    Err(error) => Ok(Rung::Escalate {
                        reason: format!(
                            "cannot cordon node {}: {error}; not draining a schedulable node",
                            target.name
                        ),
                        needed: format!(
                            "cordon and drain {} by hand, or fix the engine's access",
                            target.name
                        ),
                    }),
                }
            }
            Action::Drain if target.kind == "Node" => cluster
                .drain(&target.name, self.channels.drain_timeout, dry_run)
                .await
                .map(|detail| Rung::Done {
                    detail,
                    verify: Some(Check::NodeDrained(target.name.clone())),
                }),
            Action::RestartOperatorPods if target.kind == "ClusterOperator" => cluster
                .restart_operator_pods(&target.name, dry_run)
                .await
                .map(|detail| Rung::Done {
                    detail,
                    verify: Some(Check::ClusterOperator(target.name.clone())),
                }),
            _ => Ok(Rung::Failed(format!(
                "{} does not apply to a {}",
                step.action.as_str(),
                target.kind
            ))),
        }
    }
    /// Cordons the node once the maintenance gate is clear (waiting while a MachineConfigPool
    /// updates or the cluster upgrades, up to `DRAIN_TIMEOUT`), within the node budget.
    async fn cordon(
        &self,
        cluster: &dyn Cluster,
        node: &str,
        dry_run: bool,
    ) -> Result<Rung, ExecError> {
        let waited = match cluster
            .await_maintenance(self.channels.drain_timeout)
            .await?
        {
            Ok(waited) => waited,
            Err(outcome) => return Ok(node_rung(outcome, "")),
        };
        // One budget check and cordon at a time: two workflows must not both see room.
        let _budget = self.node_budget.lock().await;
        let outcome = cluster
            .cordon(node, self.channels.max_unavailable_nodes, dry_run)
            .await?;
        Ok(node_rung(outcome, &waited))
    }
}
