//! The owners' own channels: ArgoCD (sync and its restart action; a rollback is a revert in
//! Git), Helm (`helm rollback` to the last good revision) and operators (a nudge of the
//! custom resource once the operator itself is healthy).

use super::Pipeline;
use super::rung::{Rung, workload_check};
use crate::cluster::{Cluster, Workload};
use crate::detect::ownership::DeploymentMethod;
use crate::execute::argocd::{self, SyncOutcome};
use crate::execute::{helm, operator};
use crate::plan::Step;
use chrono::Utc;

/// A GitOps rollback is a Git change: the engine never syncs an older revision behind Git's
/// back (auto-sync would undo it, and Git would lie about what runs).
pub(super) async fn argocd_revert(
    cluster: &dyn Cluster,
    app: &argocd::AppRef,
    step: &Step,
) -> Rung {
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
impl Pipeline {
    /// Through ArgoCD: hard refresh and sync of the workload (no pruning), ArgoCD's own
    /// restart action when argocd-server is configured, then Synced + Healthy. The workload
    /// checkpoint follows.
    pub(super) async fn argocd_restart(
        &self,
        cluster: &dyn Cluster,
        app: &argocd::AppRef,
        top: &Workload,
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
    pub(super) async fn helm_rollback(
        &self,
        cluster: &dyn Cluster,
        top: &Workload,
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
    pub(super) async fn operator_nudge(
        &self,
        cluster: &dyn Cluster,
        top: &Workload,
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
}
