//! Scaling up by one replica (never a workload an HPA scales or one scaled to zero on
//! purpose), and taking a change back when its checkpoint failed.

use super::Pipeline;
use super::rung::{Rung, Undo};
use crate::cluster::{Cluster, Workload};
use crate::execute::ExecError;
use crate::plan::Channel;

impl Pipeline {
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
