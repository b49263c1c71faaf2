//! Alertmanager webhook payload (version 4) → alert records.
//!
//! Every field Alertmanager sends has a type here; unknown fields are tolerated (newer
//! Alertmanagers add some). A notification whose envelope parses is accepted alert by alert
//! (`alertmanager/parse.rs`): an alert that fails its checks is skipped and reported, the
//! others are stored. Only a notification with nothing usable in it is refused (a 4xx, which
//! Alertmanager does not retry).

mod parse;

pub use parse::{
    Alert, AlertStatus, Alerts, MAX_FINGERPRINT, MAX_LABEL_NAME, MAX_LABEL_VALUE, MAX_LABELS,
    Payload, REJECT_REASONS, Skipped,
};

use crate::incident::{Incident, IncidentStatus, Severity, Source, Target};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap};

/// More alerts than this in one notification is refused (set `max_alerts` in the receiver).
pub const MAX_ALERTS_PER_BATCH: usize = 5000;

/// Why a whole notification was refused (the handler maps these to 413/422).
#[derive(Debug, PartialEq, Eq)]
pub enum Rejection {
    TooManyAlerts(usize),
    Invalid {
        field: String,
        reason: String,
    },
    /// Every alert failed its checks (and there was at least one).
    NothingUsable(Vec<Skipped>),
}

/// What a notification holds: the alerts to store, and those skipped.
#[derive(Debug)]
pub struct Intake {
    pub records: Vec<AlertRecord>,
    pub skipped: Vec<Skipped>,
}

/// One alert, ready for the store: the incident it creates when new, and how to update an
/// existing one.
#[derive(Debug, Clone)]
pub struct AlertRecord {
    /// `fingerprint@startsAt`: the identity Alertmanager redeliveries share.
    pub key: String,
    pub resolved: bool,
    pub ends_at: Option<DateTime<Utc>>,
    /// Worth handing to the pipeline (known issue type, not informational).
    pub actionable: bool,
    pub incident: Incident,
}

/// alertname → issue type, with user entries (`ALERT_ISSUE_TYPES`) over the defaults.
#[derive(Debug, Clone)]
pub struct IssueTypes(HashMap<String, String>);

/// Defaults for kube-prometheus and OpenShift alerts.
pub const DEFAULT_ISSUE_TYPES: &[(&str, &str)] = &[
    ("KubePodCrashLooping", "crash_loop"),
    ("PodCrashLooping", "crash_loop"),
    ("KubePodNotReady", "pod_not_ready"),
    ("KubeContainerWaiting", "container_waiting"),
    ("KubeDeploymentReplicasMismatch", "replicas_mismatch"),
    ("KubeDeploymentRolloutStuck", "rollout_stuck"),
    ("KubeStatefulSetReplicasMismatch", "replicas_mismatch"),
    ("KubeStatefulSetUpdateNotRolledOut", "rollout_stuck"),
    ("KubeDaemonSetRolloutStuck", "rollout_stuck"),
    ("KubeDaemonSetNotScheduled", "rollout_stuck"),
    ("KubeJobFailed", "job_failed"),
    ("KubeHpaMaxedOut", "hpa_maxed_out"),
    ("KubeMemoryOverCommit", "oom"),
    ("KubePodOOMKilled", "oom"),
    ("ContainerOOMKilled", "oom"),
    ("KubePersistentVolumeFillingUp", "volume_filling_up"),
    ("KubeNodeNotReady", "node_not_ready"),
    ("KubeNodeUnreachable", "node_unreachable"),
    ("KubeletDown", "kubelet_down"),
    ("NodeFilesystemSpaceFillingUp", "disk_filling_up"),
    ("NodeFilesystemAlmostOutOfSpace", "disk_filling_up"),
    ("ClusterOperatorDown", "operator_down"),
    ("ClusterOperatorDegraded", "operator_degraded"),
    ("MCDDrainError", "drain_error"),
    ("MCPDegraded", "machine_config_degraded"),
    ("TargetDown", "target_down"),
];

impl IssueTypes {
    /// Parses `Alert=issue_type,Other=other` over the defaults.
    pub fn with_overrides(overrides: &str) -> Result<Self, String> {
        let mut map: HashMap<String, String> = DEFAULT_ISSUE_TYPES
            .iter()
            .map(|(a, t)| (a.to_string(), t.to_string()))
            .collect();
        for entry in overrides
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            let (alert, issue) = entry
                .split_once('=')
                .map(|(a, t)| (a.trim(), t.trim()))
                .filter(|(a, t)| !a.is_empty() && !t.is_empty())
                .ok_or_else(|| format!("{entry:?} is not AlertName=issue_type"))?;
            map.insert(alert.to_string(), issue.to_string());
        }
        Ok(IssueTypes(map))
    }

    pub fn lookup(&self, alertname: &str) -> Option<&str> {
        self.0.get(alertname).map(String::as_str)
    }
}

impl Default for IssueTypes {
    fn default() -> Self {
        Self::with_overrides("").expect("the defaults parse")
    }
}

/// Checks the envelope and turns every valid alert into a record; the others are skipped.
pub fn records(
    payload: &Payload,
    issue_types: &IssueTypes,
    now: DateTime<Utc>,
) -> Result<Intake, Rejection> {
    if payload.version != "4" {
        return Err(Rejection::Invalid {
            field: "version".into(),
            reason: "only version \"4\" of the webhook payload is supported".into(),
        });
    }
    if payload.alerts.total > MAX_ALERTS_PER_BATCH {
        return Err(Rejection::TooManyAlerts(payload.alerts.total));
    }
    let mut intake = Intake {
        records: Vec::with_capacity(payload.alerts.entries.len()),
        skipped: Vec::new(),
    };
    for entry in &payload.alerts.entries {
        match entry {
            Ok(alert) => intake
                .records
                .push(record(alert, payload, issue_types, now)),
            Err(skipped) => intake.skipped.push(skipped.clone()),
        }
    }
    if intake.records.is_empty() && !intake.skipped.is_empty() {
        return Err(Rejection::NothingUsable(intake.skipped));
    }
    Ok(intake)
}

fn record(
    alert: &Alert,
    payload: &Payload,
    issue_types: &IssueTypes,
    now: DateTime<Utc>,
) -> AlertRecord {
    let labels = &alert.labels;
    let alertname = labels
        .get("alertname")
        .map(String::as_str)
        .unwrap_or_default();
    let severity = severity(labels.get("severity").map(String::as_str));
    let (namespace, target) = target(labels, alertname);
    let issue_type = issue_types
        .lookup(alertname)
        .unwrap_or("unknown")
        .to_string();
    let annotation = |key: &str| {
        alert
            .annotations
            .get(key)
            .filter(|v| !v.is_empty())
            .cloned()
    };
    let title = annotation("summary")
        .or_else(|| annotation("message"))
        .unwrap_or_else(|| match &target {
            Some(t) => format!("{alertname} on {}", t.display()),
            None => alertname.to_string(),
        });
    let resolved = alert.status == AlertStatus::Resolved;
    // Alertmanager sends the zero time (year 1) as endsAt while an alert fires.
    let ends_at = alert.ends_at.filter(|t| t.timestamp() > 0);

    let mut incident = Incident::new(Source::Alertmanager, truncate(title, 512), severity, now);
    incident.description = truncate(
        annotation("description")
            .or_else(|| annotation("message"))
            .unwrap_or_default(),
        8192,
    );
    incident.namespace = namespace;
    incident.target = target;
    incident.issue_type = issue_type.clone();
    incident.labels = labels.clone();
    incident.annotations = alert.annotations.clone();
    if !alert.generator_url.is_empty() {
        incident
            .annotations
            .insert("generator_url".into(), alert.generator_url.clone());
    }
    if !payload.external_url.is_empty() {
        incident
            .annotations
            .insert("alertmanager_url".into(), payload.external_url.clone());
    }
    incident.fingerprint = Some(alert.fingerprint.clone());
    incident.first_seen = alert.starts_at;
    if resolved {
        incident.status = IncidentStatus::Resolved;
        incident.resolved_at = Some(ends_at.unwrap_or(now));
    }
    AlertRecord {
        key: format!(
            "{}@{}",
            alert.fingerprint,
            alert.starts_at.timestamp_micros()
        ),
        resolved,
        ends_at,
        actionable: issue_type != "unknown" && severity != Severity::Info,
        incident,
    }
}

fn truncate(mut text: String, max_chars: usize) -> String {
    if let Some((cut, _)) = text.char_indices().nth(max_chars) {
        text.truncate(cut);
    }
    text
}

/// Maps Prometheus severity words onto ours; unknown or missing → medium.
pub fn severity(label: Option<&str>) -> Severity {
    match label.map(str::to_ascii_lowercase).as_deref() {
        Some("critical") | Some("page") => Severity::Critical,
        Some("high") | Some("error") | Some("major") => Severity::High,
        Some("low") | Some("minor") => Severity::Low,
        Some("info") | Some("informational") | Some("none") => Severity::Info,
        _ => Severity::Medium,
    }
}

/// The object an alert is about, from its labels, most specific first. A pod's owning
/// workload is resolved later by detection.
pub fn target(
    labels: &BTreeMap<String, String>,
    alertname: &str,
) -> (Option<String>, Option<Target>) {
    let get = |key: &str| labels.get(key).filter(|v| !v.is_empty()).cloned();
    let make = |kind: &str, name: String| {
        Some(Target {
            kind: kind.into(),
            name,
        })
    };
    // kube-state-metrics alerts scraped with honor_labels=false carry the object's labels as
    // exported_*; prefer them when present.
    if let Some(pod) = get("exported_pod") {
        let ns = get("exported_namespace").or_else(|| get("namespace"));
        return (ns, make("Pod", pod));
    }
    let namespace = get("exported_namespace").or_else(|| get("namespace"));
    for (label, kind) in [
        ("pod", "Pod"),
        ("deployment", "Deployment"),
        ("statefulset", "StatefulSet"),
        ("daemonset", "DaemonSet"),
        ("replicaset", "ReplicaSet"),
        ("job_name", "Job"),
    ] {
        if let Some(name) = get(label) {
            return (namespace, make(kind, name));
        }
    }
    if let Some(node) = get("node") {
        return (namespace, make("Node", node));
    }
    if alertname.starts_with("ClusterOperator")
        && let Some(name) = get("name")
    {
        return (None, make("ClusterOperator", name));
    }
    if let (Some(kind), Some(name)) = (get("kind"), get("name").or_else(|| get("resource"))) {
        return (namespace, make(&kind, name));
    }
    if let Some(instance) = get("instance") {
        return (namespace, make("Instance", instance));
    }
    (namespace, None)
}

#[cfg(test)]
mod tests;
