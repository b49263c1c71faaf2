//! Every denial becomes an incident (`source: admission`), written by a background task so the
//! review never waits for the store, and rate-limited per user and object.

use super::admission::AdmissionRequest;
use super::review::Decision;
use crate::incident::{Incident, Severity, Source, Target};
use crate::store::Store;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// One denial per user and object per window becomes an incident; the rest are only counted.
pub const RECORD_WINDOW: Duration = Duration::from_secs(600);
const QUEUE: usize = 1024;

/// The review side: hands denials to the recorder without ever blocking.
#[derive(Clone)]
pub struct DenialRecorder(mpsc::Sender<Incident>);

impl DenialRecorder {
    /// Starts the recorder task.
    pub fn spawn(store: Arc<dyn Store>) -> Self {
        let (sender, mut receiver) = mpsc::channel::<Incident>(QUEUE);
        tokio::spawn(async move {
            let mut last: HashMap<(String, String), Instant> = HashMap::new();
            while let Some(incident) = receiver.recv().await {
                let key = (
                    incident.created_by.clone().unwrap_or_default(),
                    incident
                        .annotations
                        .get("object")
                        .cloned()
                        .unwrap_or_default(),
                );
                let now = Instant::now();
                if last
                    .get(&key)
                    .is_some_and(|at| now.duration_since(*at) < RECORD_WINDOW)
                {
                    continue;
                }
                last.retain(|_, at| now.duration_since(*at) < RECORD_WINDOW);
                last.insert(key, now);
                if let Err(error) = store.insert_incident(&incident).await {
                    tracing::warn!(%error, "cannot record an admission denial as an incident");
                }
            }
        });
        DenialRecorder(sender)
    }

    /// Queues the incident of a denial; drops it (with a log line) if the queue is full.
    pub fn record(&self, request: &AdmissionRequest, decision: &Decision, now: DateTime<Utc>) {
        if self
            .0
            .try_send(denial_incident(request, decision, now))
            .is_err()
        {
            tracing::warn!(uid = %request.uid, "denial recorder queue full; incident not recorded");
        }
    }
}

/// The incident describing a denied change.
pub fn denial_incident(
    request: &AdmissionRequest,
    decision: &Decision,
    now: DateTime<Utc>,
) -> Incident {
    let name = request.object_name();
    let kind = &request.kind.kind;
    let user = &request.user_info.username;
    let object = format!("{}/{kind}/{name}", request.namespace());
    let mut incident = Incident::new(
        Source::Admission,
        format!("Manual change to ArgoCD-managed {kind} {name} denied"),
        Severity::Low,
        now,
    );
    incident.description = decision.message.clone();
    incident.namespace = request.namespace.clone().filter(|ns| !ns.is_empty());
    incident.target = Some(Target {
        kind: kind.clone(),
        name,
    });
    incident.issue_type = "gitops_drift_attempt".into();
    incident.created_by = Some(user.clone());
    incident.annotations.insert("object".into(), object);
    incident.annotations.insert(
        "operation".into(),
        format!("{:?}", request.operation).to_uppercase(),
    );
    incident.annotations.insert("user".into(), user.clone());
    if let Some(app) = &decision.application {
        incident
            .annotations
            .insert("argocd_application".into(), app.clone());
    }
    if !decision.changed_paths.is_empty() {
        incident
            .annotations
            .insert("changed_paths".into(), decision.changed_paths.join(","));
    }
    incident
        .annotations
        .insert("admission_uid".into(), request.uid.clone());
    incident
}
