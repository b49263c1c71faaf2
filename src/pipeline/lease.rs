//! Remediation leases (SPEC §6): for the actions listed in `LEASED_ACTIONS`, the engine may
//! change an ArgoCD-managed object directly, e.g. an emergency scale-up while Git catches up.
//! Before acting it records a lease (incident, object UID, JSON pointers, expiry) in the store,
//! which every replica's guard honours, and turns off the Application's selfHeal so ArgoCD
//! does not revert the change; the step shows the lease and the undo.

use super::Pipeline;
use super::rung::{Rung, Undo, workload_check};
use crate::cluster::Cluster;
use crate::detect::ownership::DeploymentMethod;
use crate::execute::argocd;
use crate::plan::{Action, Channel, Step};
use crate::store::LeaseRecord;
use crate::workflow::Workflow;
use chrono::{DateTime, Utc};
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
        let uid = match object_uid(cluster, top).await {
            Ok(uid) => uid,
            Err(reason) => return Rung::Failed(reason),
        };
        let now = Utc::now();
        let lease = match self.lease_record(workflow, top, uid, paths, now, dry_run) {
            Ok(lease) => lease,
            Err(reason) => return Rung::Failed(reason),
        };
        // The lease first: the guard must allow the change before the API server asks it.
        if let Err(error) = self.store.insert_lease(&lease).await {
            return Rung::Failed(format!("cannot record the remediation lease: {error}"));
        }
        self.publish_leases().await;
        let (mut notes, undo) = match self.pause_self_heal(cluster, method, dry_run).await {
            Ok(paused) => paused,
            Err(reason) => return Rung::Failed(reason),
        };
        let acted = self
            .act_under_lease(cluster, step.action, top, now, dry_run)
            .await;
        let (detail, undo) = match self.keep_or_take_back(cluster, acted, undo).await {
            Ok(kept) => kept,
            Err(taken_back) => return taken_back,
        };
        let until = lease
            .expires_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        notes.push(format!(
            "Git still has the old value: make the change in Git before {until}"
        ));
        Rung::Reversible {
            detail: format!(
                "{detail} under lease {} ({}, until {until}); {}",
                lease.id,
                lease.paths.join(", "),
                notes.join("; ")
            ),
            verify: Some(workload_check(top)),
            undo,
            lease: Some(json!(lease)),
        }
    }

    /// The lease for this workflow's change to `top`, expiring after LEASE_TTL (a dry run's
    /// lasts at most two minutes).
    fn lease_record(
        &self,
        workflow: &Workflow,
        (kind, namespace, name): &(String, String, String),
        object_uid: String,
        paths: Vec<String>,
        now: DateTime<Utc>,
        dry_run: bool,
    ) -> Result<LeaseRecord, String> {
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
            return Err(format!(
                "LEASE_TTL {} is past the end of the calendar",
                crate::config::format_duration(ttl)
            ));
        };
        Ok(LeaseRecord {
            id: format!("lease-{}", uuid::Uuid::now_v7().simple()),
            incident_id: workflow.incident_id.clone(),
            workflow_id: workflow.id.clone(),
            object: format!("{kind} {namespace}/{name}"),
            object_uid,
            paths,
            created_at: now,
            expires_at,
        })
    }

    /// Turns off the owning Application's selfHeal so ArgoCD does not revert the leased change;
    /// returns the notes for the step and the undo (turn it back on).
    async fn pause_self_heal(
        &self,
        cluster: &dyn Cluster,
        method: &DeploymentMethod,
        dry_run: bool,
    ) -> Result<(Vec<String>, Vec<Undo>), String> {
        let mut notes = Vec::new();
        let mut undo = Vec::new();
        let (true, Some(owner)) = (cluster.has_argocd(), &method.owner) else {
            return Ok((notes, undo));
        };
        let view = self.guard.snapshot();
        let app = argocd::locate(owner, &view, &self.argocd_namespaces);
        let self_heal = view.applications.get(owner).map(|a| a.self_heal);
        match self_heal {
            Some(true) if !dry_run => match cluster.set_self_heal(&app, false).await {
                Ok(()) => {
                    notes.push(format!(
                        "turned off selfHeal on Application {app} (undo: turn it back on once Git has the change)"
                    ));
                    undo.push(Undo::SelfHeal(app.clone()));
                }
                Err(error) => {
                    return Err(format!(
                        "cannot turn off selfHeal on Application {app}: {error}"
                    ));
                }
            },
            Some(_) => {}
            None => notes.push(format!(
                "selfHeal of Application {app} unknown (not watched): ArgoCD may revert the change"
            )),
        }
        Ok((notes, undo))
    }

    /// The leased change itself: the scale-up, or a rollout restart stamped `now`.
    async fn act_under_lease(
        &self,
        cluster: &dyn Cluster,
        action: Action,
        top: &(String, String, String),
        now: DateTime<Utc>,
        dry_run: bool,
    ) -> Rung {
        match action {
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
        }
    }

    /// Keeps a change that happened (its detail and the whole undo, its own steps first), or
    /// takes back what was done for one that did not (selfHeal) and returns the rung to report.
    async fn keep_or_take_back(
        &self,
        cluster: &dyn Cluster,
        acted: Rung,
        mut undo: Vec<Undo>,
    ) -> Result<(String, Vec<Undo>), Rung> {
        match acted {
            Rung::Done { detail, .. } => Ok((detail, undo)),
            Rung::Reversible {
                detail,
                undo: taken_back,
                ..
            } => {
                // Scale back first, then selfHeal on (ArgoCD would otherwise race the undo).
                let mut first = taken_back;
                first.append(&mut undo);
                Ok((detail, first))
            }
            // The change did not happen: take back what was done for it (selfHeal).
            Rung::Failed(reason) => {
                let undone = self.undo(cluster, &undo).await;
                Err(Rung::Failed(join_undone(reason, &undone)))
            }
            Rung::Escalate { reason, needed } => {
                let undone = self.undo(cluster, &undo).await;
                Err(Rung::Escalate {
                    reason: join_undone(reason, &undone),
                    needed,
                })
            }
        }
    }
}

/// The object's UID, which the lease names so that a recreated object is not covered.
async fn object_uid(
    cluster: &dyn Cluster,
    (kind, namespace, name): &(String, String, String),
) -> Result<String, String> {
    match cluster.get((kind, namespace, name)).await {
        Ok(object) => Ok(object
            .pointer("/metadata/uid")
            .and_then(|u| u.as_str())
            .unwrap_or_default()
            .to_string()),
        Err(error) => Err(error.to_string()),
    }
}
