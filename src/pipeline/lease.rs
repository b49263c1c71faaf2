//! Remediation leases (SPEC §6): for the actions listed in `LEASED_ACTIONS`, the engine may
//! change an ArgoCD-managed object directly, e.g. an emergency scale-up while Git catches up.
//! Before acting it records a lease (incident, object UID, JSON pointers, expiry) in the store,
//! which every replica's guard honours, and turns off the Application's selfHeal so ArgoCD
//! does not revert the change; the step shows the lease and the undo.

use super::Pipeline;
use super::rung::{Rung, workload_check};
use crate::cluster::Cluster;
use crate::detect::ownership::DeploymentMethod;
use crate::execute::argocd;
use crate::plan::{Action, Channel, Step};
use crate::store::LeaseRecord;
use crate::workflow::Workflow;
use chrono::Utc;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// The JSON pointers an action changes.
fn leased_paths(action: Action) -> Option<Vec<String>> {
    match action {
        Action::ScaleUp => Some(vec!["/spec/replicas".into()]),
        // The template's annotations: when it has none yet, the change creates the whole map
        // (the guard sees that path, not the key under it).
        Action::RolloutRestart => Some(vec!["/spec/template/metadata/annotations".into()]),
        _ => None,
    }
}

fn join_undone(reason: String, undone: &[(Channel, String)]) -> String {
    if undone.is_empty() {
        reason
    } else {
        let details: Vec<&str> = undone.iter().map(|(_, d)| d.as_str()).collect();
        format!("{reason}; {}", details.join("; "))
    }
}

impl Pipeline {
    /// Copies the store's active leases into the guard's view.
    pub async fn publish_leases(&self) {
        // One publication at a time: a slow read must not overwrite a newer lease list.
        let _one = self.lease_publish.lock().await;
        match self.store.active_leases(Utc::now()).await {
            Ok(active) => {
                let leases = active.iter().map(LeaseRecord::to_guard).collect();
                self.guard.update(|view| view.leases = leases);
            }
            Err(error) => tracing::warn!(%error, "cannot refresh remediation leases"),
        }
    }

    /// Keeps the guard's leases current (other replicas record leases too), every `interval`.
    pub fn spawn_lease_refresher(self: Arc<Self>, interval: Duration) {
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                self.publish_leases().await;
            }
        });
    }

    /// Acts directly on an ArgoCD-managed workload under a lease.
    pub(super) async fn leased(
        &self,
        cluster: &dyn Cluster,
        step: &Step,
        method: &DeploymentMethod,
        top: &(String, String, String),
        dry_run: bool,
        workflow: &Workflow,
    ) -> Rung {
        let (kind, namespace, name) = top;
        let Some(paths) = leased_paths(step.action) else {
            return Rung::Failed(format!("{} cannot run under a lease", step.action.as_str()));
        };
        // Refusals first: no lease, no selfHeal change for a scale that will not happen.
        if step.action == Action::ScaleUp {
            match self.scale_up_refusal(cluster, top).await {
                Ok(Some(refusal)) => return refusal,
                Ok(None) => {}
                Err(error) => return Rung::Failed(error.to_string()),
            }
        }
        let uid = match cluster.get((kind, namespace, name)).await {
            Ok(object) => object
                .pointer("/metadata/uid")
                .and_then(|u| u.as_str())
                .unwrap_or_default()
                .to_string(),
            Err(error) => return Rung::Failed(error.to_string()),
        };
        let now = Utc::now();
        // A dry run's requests are judged by the guard too; its lease lasts only long enough.
        let ttl = if dry_run {
            self.channels.lease_ttl.min(Duration::from_secs(120))
        } else {
            self.channels.lease_ttl
        };
        // Checked: configuration bounds LEASE_TTL, but a lease must never panic the runner.
        let Some(expires_at) = chrono::Duration::from_std(ttl)
            .ok()
            .and_then(|ttl| now.checked_add_signed(ttl))
        else {
            return Rung::Failed(format!(
                "LEASE_TTL {} is past the end of the calendar",
                crate::config::format_duration(ttl)
            ));
        };
        let lease = LeaseRecord {
            id: format!("lease-{}", uuid::Uuid::now_v7().simple()),
            incident_id: workflow.incident_id.clone(),
            workflow_id: workflow.id.clone(),
            object: format!("{kind} {namespace}/{name}"),
            object_uid: uid,
            paths,
            created_at: now,
            expires_at,
        };
        // The lease first: the guard must allow the change before the API server asks it.
        if let Err(error) = self.store.insert_lease(&lease).await {
            return Rung::Failed(format!("cannot record the remediation lease: {error}"));
        }
        self.publish_leases().await;
        let mut notes = Vec::new();
        let mut undo = Vec::new();
        if let (true, Some(owner)) = (cluster.has_argocd(), &method.owner) {
            let view = self.guard.snapshot();
            let app = argocd::locate(owner, &view, &self.argocd_namespaces);
            let self_heal = view.applications.get(owner).map(|a| a.self_heal);
            match self_heal {
                Some(true) if !dry_run => match cluster.set_self_heal(&app, false).await {
                    Ok(()) => {
                        notes.push(format!(
                            "turned off selfHeal on Application {app} (undo: turn it back on once Git has the change)"
                        ));
                        undo.push(super::rung::Undo::SelfHeal(app.clone()));
                    }
                    Err(error) => {
                        return Rung::Failed(format!(
                            "cannot turn off selfHeal on Application {app}: {error}"
                        ));
                    }
                },
                Some(_) => {}
                None => notes.push(format!(
                    "selfHeal of Application {app} unknown (not watched): ArgoCD may revert the change"
                )),
            }
        }
        let acted = match step.action {
            Action::ScaleUp => self
                .scale_up(cluster, top, dry_run)
                .await
                .unwrap_or_else(|error| Rung::Failed(error.to_string())),
            _ => match cluster.rollout_restart(top, now, dry_run).await {
                Ok(detail) => Rung::Done {
                    detail,
                    verify: None,
                },
                Err(error) => Rung::Failed(error.to_string()),
            },
        };
        let detail = match acted {
            Rung::Done { detail, .. } => detail,
            Rung::Reversible {
                detail,
                undo: taken_back,
                ..
            } => {
                // Scale back first, then selfHeal on (ArgoCD would otherwise race the undo).
                let mut first = taken_back;
                first.append(&mut undo);
                undo = first;
                detail
            }
            // The change did not happen: take back what was done for it (selfHeal).
            Rung::Failed(reason) => {
                let undone = self.undo(cluster, &undo).await;
                return Rung::Failed(join_undone(reason, &undone));
            }
            Rung::Escalate { reason, needed } => {
                let undone = self.undo(cluster, &undo).await;
                return Rung::Escalate {
                    reason: join_undone(reason, &undone),
                    needed,
                };
            }
        };
        notes.push(format!(
            "Git still has the old value: make the change in Git before {}",
            lease
                .expires_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ));
        Rung::Reversible {
            detail: format!(
                "{detail} under lease {} ({}, until {}); {}",
                lease.id,
                lease.paths.join(", "),
                lease
                    .expires_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                notes.join("; ")
            ),
            verify: Some(workload_check(top)),
            undo,
            lease: Some(json!(lease)),
        }
    }
}
