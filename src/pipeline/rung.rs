//! One rung of the ladder: performs the call `route` decided for the action on this target.
//! The manual channel acts on workloads nobody else owns; anything ArgoCD, Helm or an operator
//! owns is escalated with the reason instead of patched (deleting a pod stays allowed: it is
//! not drift).

use super::Pipeline;
use super::route::{ChannelCall, Routing, route};
use crate::cluster::{Cluster, Workload};
use crate::detect::ownership::{DeploymentMethod, Method};
use crate::execute::argocd::{self, SyncOutcome};
use crate::execute::{ExecError, helm, inspect, node, operator};
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

/// A GitOps rollback is a Git change: the engine never syncs an older revision behind Git's
/// back (auto-sync would undo it, and Git would lie about what runs).
async fn argocd_revert(cluster: &dyn Cluster, app: &argocd::AppRef, step: &Step) -> Rung {
    let previous = cluster.previous_revision(app).await;
    Rung::Escalate {
        reason: format!(
            "{} {}/{} is deployed by ArgoCD Application {app}: rolling back is a change in Git",
            step.target.kind,
            step.target.namespace.as_deref().unwrap_or_default(),
            step.target.name
        ),
        needed: match previous {
            Some(revision) => format!(
                "revert the commits after {revision} (the previous synced revision of Application {app}) in Git, then let ArgoCD sync"
            ),
            None => {
                format!("revert the last change of Application {app} in Git, then let ArgoCD sync")
            }
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

    /// Through ArgoCD: hard refresh and sync of the workload (no pruning), ArgoCD's own
    /// restart action when argocd-server is configured, then Synced + Healthy. The workload
    /// checkpoint follows.
    async fn argocd_restart(
        &self,
        cluster: &dyn Cluster,
        app: &argocd::AppRef,
        top: &(String, String, String),
        dry_run: bool,
    ) -> Rung {
        let (kind, namespace, name) = top;
        let resource = argocd::ResourceRef {
            group: "apps".into(),
            kind: kind.clone(),
            namespace: namespace.clone(),
            name: name.clone(),
        };
        let synced = cluster
            .sync_application(app, &resource, "coordination-engine remediation", dry_run)
            .await;
        self.count("patch", &synced);
        let (mut detail, before) = match synced {
            Ok(done) => done,
            Err(error) => return Rung::Failed(error.to_string()),
        };
        if dry_run {
            return Rung::Done {
                detail,
                verify: Some(workload_check(top)),
            };
        }
        match cluster.restart_through_argocd(app, &resource).await {
            Ok(Some(restarted)) => detail = format!("{detail}; {restarted}"),
            Ok(None) => {
                detail = format!(
                    "{detail}; no restart: the Kubernetes API has no ArgoCD resource actions (set ARGOCD_API_URL for ArgoCD's restart action)"
                )
            }
            Err(error) => return Rung::Failed(format!("{detail}; restart action: {error}")),
        }
        match cluster.await_application(app, &before).await {
            SyncOutcome::Healthy(state) => Rung::Done {
                detail: format!("{detail}; Application {app}: {state}"),
                verify: Some(workload_check(top)),
            },
            SyncOutcome::Failed(why) | SyncOutcome::TimedOut(why) => {
                Rung::Failed(format!("{detail}; {why}"))
            }
        }
    }

    /// `helm rollback` to the newest good revision before the current one, read from the
    /// release Secrets.
    async fn helm_rollback(
        &self,
        cluster: &dyn Cluster,
        top: &(String, String, String),
        method: &DeploymentMethod,
        dry_run: bool,
    ) -> Rung {
        let namespace = &top.1;
        let Some(release) = method.owner.as_deref() else {
            return Rung::Failed("the Helm release name is unknown".into());
        };
        let history = match cluster.helm_history(namespace, release).await {
            Ok(history) => history,
            Err(error) => return Rung::Failed(error.to_string()),
        };
        if history.is_empty() {
            return Rung::Escalate {
                reason: format!(
                    "Helm release {namespace}/{release} has no release Secrets: it was rendered (by ArgoCD or helm template), not installed, so there is no revision to roll back to"
                ),
                needed:
                    "roll back where the manifests come from (Git, or the tool that renders them)"
                        .into(),
            };
        }
        let current = history.last().map(|r| r.version).unwrap_or_default();
        let Some(target) = helm::rollback_target(&history) else {
            return Rung::Escalate {
                reason: format!(
                    "Helm release {namespace}/{release} has no good revision before {current}"
                ),
                needed: format!("fix the chart or its values and upgrade the release {release}"),
            };
        };
        let outcome = cluster
            .helm_rollback(namespace, release, target, dry_run, self.checkpoint_timeout)
            .await;
        match outcome {
            Ok(helm::RollbackOutcome::Done(detail)) => Rung::Done {
                detail: format!("{detail} (from revision {current})"),
                verify: Some(workload_check(top)),
            },
            Ok(helm::RollbackOutcome::NoHelm { command }) => Rung::Escalate {
                reason: format!(
                    "Helm release {namespace}/{release} should go back to revision {} ({}), but no helm binary is available (HELM_BIN)",
                    target.version, target.chart
                ),
                needed: format!("run `{command}`"),
            },
            Err(error) => Rung::Failed(error.to_string()),
        }
    }

    /// Asks the operator to reconcile the operand's custom resource, once its
    /// ClusterServiceVersion (when OLM manages it) is healthy.
    async fn operator_nudge(
        &self,
        cluster: &dyn Cluster,
        top: &(String, String, String),
        dry_run: bool,
    ) -> Rung {
        let (kind, namespace, name) = top;
        let object = match cluster.get((kind, namespace, name)).await {
            Ok(object) => object,
            Err(error) => return Rung::Failed(error.to_string()),
        };
        match cluster.csvs(namespace).await {
            Ok(csvs) => {
                if let Some(reason) = operator::unhealthy_csv(&csvs) {
                    return Rung::Escalate {
                        reason,
                        needed: format!(
                            "repair the operator first (oc get csv -n {namespace}; check its install plan and logs)"
                        ),
                    };
                }
            }
            Err(error) => return Rung::Failed(error.to_string()),
        }
        let Some(owner) = operator::custom_owner(&object) else {
            return Rung::Escalate {
                reason: format!(
                    "{kind} {namespace}/{name} belongs to an operator (OLM labels) but has no custom resource owner to reconcile"
                ),
                needed: "restart it through its operator, or fix the operator's configuration"
                    .into(),
            };
        };
        match cluster
            .nudge_operator(namespace, &owner, Utc::now(), dry_run)
            .await
        {
            Ok(detail) => Rung::Done {
                detail,
                verify: Some(workload_check(top)),
            },
            Err(error) => Rung::Failed(error.to_string()),
        }
    }

    /// Reads the pods' container states and scheduling: what a restart cannot fix escalates
    /// now, with the change that is needed where it must be made.
    async fn inspect(
        &self,
        cluster: &dyn Cluster,
        step: &Step,
        method: &DeploymentMethod,
        workload: Option<&(String, String, String)>,
    ) -> Rung {
        let target = &step.target;
        let ns = target.namespace.as_deref().unwrap_or_default();
        let deployed = format!("deployed by {}: {}", method.method, method.evidence);
        if target.namespace.is_none() {
            return Rung::Done {
                detail: deployed,
                verify: None,
            };
        }
        let pods = cluster
            .pods((&target.kind, ns, &target.name), workload)
            .await;
        self.count("list", &pods);
        let pods = match pods {
            Ok(pods) => pods,
            Err(error) => {
                return Rung::Done {
                    detail: format!("{deployed}; cannot read the pods: {error}"),
                    verify: None,
                };
            }
        };
        let owner = method.owner.as_deref().unwrap_or("?");
        let (workload_kind, workload_name) = workload
            .map(|(k, _, n)| (k.as_str(), n.as_str()))
            .unwrap_or((target.kind.as_str(), target.name.as_str()));
        let where_it_lives = match method.method {
            Method::Argocd => format!("in Git for ArgoCD Application {owner}"),
            Method::Helm => format!("in the values of Helm release {owner}, then upgrade it"),
            Method::Operator => format!("in the custom resource {owner}"),
            _ => format!("in {workload_kind} {ns}/{workload_name}"),
        };
        match inspect::judge(&pods) {
            inspect::Finding::BadImage {
                container,
                image,
                why,
            } => Rung::Escalate {
                reason: format!(
                    "container {container} of {workload_kind} {ns}/{workload_name} cannot pull its image {image} ({why}); a restart cannot fix that"
                ),
                needed: format!(
                    "change spec.template.spec.containers[{container}].image from {image} to an image that exists, {where_it_lives}"
                ),
            },
            inspect::Finding::BadConfig { container, why } => Rung::Escalate {
                reason: format!(
                    "container {container} of {workload_kind} {ns}/{workload_name} cannot be created ({why})"
                ),
                needed: format!(
                    "create the ConfigMap/Secret it needs, or fix the reference {where_it_lives}"
                ),
            },
            inspect::Finding::Unschedulable(why) => Rung::Escalate {
                reason: format!(
                    "no node can take the pods of {workload_kind} {ns}/{workload_name}: {why}"
                ),
                needed: format!(
                    "add capacity, or lower the requests or relax the affinity {where_it_lives}; a restart would not place them"
                ),
            },
            inspect::Finding::Restartable(summary) => Rung::Done {
                detail: format!("{deployed}; evidence: {summary}"),
                verify: None,
            },
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

    /// One more replica, unless an HPA owns the replica count or the workload was scaled to
    /// zero on purpose (both are a human's call).
    pub(super) async fn scale_up(
        &self,
        cluster: &dyn Cluster,
        top: &Workload,
        dry_run: bool,
    ) -> Result<Rung, ExecError> {
        if let Some(refusal) = self.scale_up_refusal(cluster, top).await? {
            return Ok(refusal);
        }
        let current = cluster.replicas(top).await?;
        let detail = cluster.scale(top, current + 1, dry_run).await?;
        Ok(Rung::Reversible {
            detail: format!("{detail} (was {current}; undo: scale back to {current})"),
            verify: None,
            undo: vec![Undo::ScaleBack {
                workload: top.clone(),
                replicas: current,
            }],
            lease: None,
        })
    }

    /// Why a scale-up must not happen: an HPA sets the replicas, or the workload is scaled to
    /// zero on purpose. `None`: go ahead.
    pub(super) async fn scale_up_refusal(
        &self,
        cluster: &dyn Cluster,
        top: &Workload,
    ) -> Result<Option<Rung>, ExecError> {
        let (kind, namespace, name) = top;
        if let Some(hpa) = cluster.autoscaler_of(top).await? {
            return Ok(Some(Rung::Escalate {
                reason: format!(
                    "HorizontalPodAutoscaler {namespace}/{hpa} sets the replicas of {kind} {namespace}/{name}; scaling it by hand would be undone"
                ),
                needed: format!("raise maxReplicas or adjust the targets of HPA {namespace}/{hpa}"),
            }));
        }
        if cluster.replicas(top).await? == 0 {
            return Ok(Some(Rung::Escalate {
                reason: format!(
                    "{kind} {namespace}/{name} is scaled to zero, presumably on purpose"
                ),
                needed: "scale it up by hand if it should run".into(),
            }));
        }
        Ok(None)
    }

    /// Takes a change back after its checkpoint failed; the channel that carried each undo and
    /// its detail.
    pub(super) async fn undo(
        &self,
        cluster: &dyn Cluster,
        undo: &[Undo],
    ) -> Vec<(Channel, String)> {
        let mut done = Vec::new();
        for step in undo {
            let (channel, outcome) = match step {
                Undo::ScaleBack { workload, replicas } => (
                    Channel::Kubernetes,
                    cluster
                        .scale(workload, *replicas, false)
                        .await
                        .map(|d| format!("undo: {d}")),
                ),
                Undo::SelfHeal(app) if cluster.has_argocd() => (
                    Channel::Argocd,
                    cluster
                        .set_self_heal(app, true)
                        .await
                        .map(|()| format!("undo: turned selfHeal back on for Application {app}")),
                ),
                Undo::SelfHeal(app) => (
                    Channel::Human,
                    Ok(format!(
                        "undo: turn selfHeal back on for Application {app} by hand"
                    )),
                ),
            };
            let detail = outcome.unwrap_or_else(|error| format!("undo failed: {error}"));
            done.push((channel, detail));
        }
        done
    }
}
