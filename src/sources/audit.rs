//! Kubernetes audit events (`audit.k8s.io/v1` EventList) → incidents (SPEC §4.2).
//!
//! The guard stops manual changes at admission; the audit backend sees the ones that got past
//! it (webhook down with `failurePolicy: Ignore`, an excluded namespace, a break-glass
//! identity). Ownership is judged by the guard's own check, not a second one.

use crate::detect::tracking::{ObjectRef, Ownership, ownership};
use crate::guard::GuardView;
use crate::guard::clip::{SHOWN_MAX, clip, shown};
use crate::guard::diff::{REVIEW_BUDGET, touched_paths};
use crate::incident::{Incident, Severity, Source, Target};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::time::Duration;

mod events;
#[cfg(test)]
mod tests;

pub use events::{AuditUser, Event, EventList, ObjectReference, ResponseStatus, validate};

/// The rule that matched an event (metrics label `outcome`).
pub const OUTCOMES: &[&str] = &[
    "gitops_drift",
    "access_denied_burst",
    "protected_object_deleted",
    "ignored",
    "duplicate",
];

/// Settings of the audit rules.
#[derive(Debug, Clone)]
pub struct AuditRules {
    /// `resource.group` (or `resource` for the core group) whose deletion is an incident.
    pub protected: Vec<String>,
    /// 403s for one identity within `denied_window` that make a burst.
    pub denied_threshold: usize,
    pub denied_window: Duration,
    /// The engine's field manager: its own writes are never drift.
    pub field_manager: String,
}

impl Default for AuditRules {
    fn default() -> Self {
        AuditRules {
            protected: vec![
                "applications.argoproj.io".into(),
                "appprojects.argoproj.io".into(),
                "customresourcedefinitions.apiextensions.k8s.io".into(),
                "namespaces".into(),
            ],
            denied_threshold: 5,
            denied_window: Duration::from_secs(60),
            field_manager: "coordination-engine".into(),
        }
    }
}

/// Longest identity key, in bytes before the hash suffix: usernames are caller-chosen and
/// unbounded.
const KEY_MAX: usize = SHOWN_MAX;

/// The identity under which a user's 403s are counted (in the store, shared by every
/// replica): the username itself when short, else its first `KEY_MAX` bytes and a SHA-256 of
/// the whole (the same on every replica, and two long names with one prefix stay apart).
pub fn denied_key(username: &str) -> String {
    if username.len() <= KEY_MAX {
        return username.to_string();
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, username.as_bytes());
    format!(
        "{}#{}",
        clip(username, KEY_MAX),
        hex::encode(&digest.as_ref()[..16])
    )
}

/// A 403 to count: the store decides whether it completes a burst (`Store::note_denied_access`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeniedAccess {
    pub identity: String,
    pub at: DateTime<Utc>,
    /// The start of the burst window ending at `at`.
    pub since: DateTime<Utc>,
}

/// One event's verdict: the incident it creates, if any, and the outcome label.
pub struct Judged {
    pub audit_id: String,
    pub outcome: &'static str,
    pub incident: Option<Incident>,
    /// A 403 to count across batches and replicas (then `burst_incident` if it completes one).
    pub denied: Option<DeniedAccess>,
}

fn kind_of(resource: &str) -> String {
    // deployments → Deployment, configmaps → ConfigMap (good enough for titles and tracking).
    let singular = resource
        .strip_suffix("ies")
        .map(|s| format!("{s}y"))
        .unwrap_or_else(|| resource.trim_end_matches('s').to_string());
    match singular.as_str() {
        "configmap" => "ConfigMap".into(),
        "statefulset" => "StatefulSet".into(),
        "daemonset" => "DaemonSet".into(),
        "replicaset" => "ReplicaSet".into(),
        "customresourcedefinition" => "CustomResourceDefinition".into(),
        other => {
            let mut chars = other.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        }
    }
}

fn is_exempt(view: &GuardView, user: &AuditUser) -> bool {
    let config = &view.config;
    config.gitops_identities.contains(&user.username)
        || user
            .username
            .starts_with("system:serviceaccount:kube-system:")
        || user.username.starts_with("system:node:")
        || user.username == "system:kube-controller-manager"
        || config.exempt_users.contains(&user.username)
        || user.groups.iter().any(|g| config.exempt_groups.contains(g))
}

fn incident(
    event: &Event,
    issue_type: &str,
    title: String,
    severity: Severity,
    now: DateTime<Utc>,
) -> Incident {
    let object = event.object_ref.clone().unwrap_or_default();
    let mut incident = Incident::new(
        Source::Audit,
        title,
        severity,
        event.request_received_timestamp.unwrap_or(now),
    );
    incident.created_at = now;
    incident.updated_at = now;
    incident.issue_type = issue_type.into();
    incident.namespace = object.namespace.clone().filter(|n| !n.is_empty());
    incident.target = object.name.clone().map(|name| Target {
        kind: kind_of(&object.resource),
        name,
    });
    incident.created_by = Some(shown(&event.user.username).into_owned());
    let annotations: BTreeMap<String, String> = [
        ("audit_id", event.audit_id.clone()),
        ("verb", event.verb.clone()),
        ("user", shown(&event.user.username).into_owned()),
        (
            "request_uri",
            event.request_uri.chars().take(1024).collect(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    incident.annotations = annotations;
    incident
}

/// The incident of a burst of `count` 403s that `event` completed.
pub fn burst_incident(
    event: &Event,
    count: u32,
    rules: &AuditRules,
    now: DateTime<Utc>,
) -> Incident {
    let who = shown(&event.user.username);
    let mut inc = incident(
        event,
        "access_denied_burst",
        format!(
            "{} denied {} times within {}s",
            who,
            count,
            rules.denied_window.as_secs()
        ),
        Severity::Medium,
        now,
    );
    inc.description = format!(
        "{who} got {count} HTTP 403 answers in {}s; the last on {} {}.",
        rules.denied_window.as_secs(),
        event.verb,
        event.request_uri
    );
    inc
}

impl Judged {
    fn ignored(event: &Event) -> Judged {
        Judged {
            audit_id: event.audit_id.clone(),
            outcome: "ignored",
            incident: None,
            denied: None,
        }
    }

    fn incident(event: &Event, outcome: &'static str, incident: Incident) -> Judged {
        Judged {
            audit_id: event.audit_id.clone(),
            outcome,
            incident: Some(incident),
            denied: None,
        }
    }
}

/// Judges one event (pure: a 403 comes back as `denied`, counted by the store).
pub fn judge(event: &Event, view: &GuardView, rules: &AuditRules, now: DateTime<Utc>) -> Judged {
    if event.stage != "ResponseComplete" {
        return Judged::ignored(event);
    }
    let code = event.response_status.as_ref().map(|s| s.code).unwrap_or(0);
    let object = event.object_ref.clone().unwrap_or_default();
    let own = event.user.username == view.config.own_identity
        || event
            .request_uri
            .contains(&format!("fieldManager={}", rules.field_manager));
    if code == 403 && !own {
        return Judged {
            denied: Some(denied_access(event, rules, now)),
            ..Judged::ignored(event)
        };
    }
    if !(200..300).contains(&code) || own {
        return Judged::ignored(event);
    }
    let qualified = if object.api_group.is_empty() {
        object.resource.clone()
    } else {
        format!("{}.{}", object.resource, object.api_group)
    };
    if event.verb == "delete" && rules.protected.contains(&qualified) {
        let inc = protected_deletion(event, &object, &qualified, now);
        return Judged::incident(event, "protected_object_deleted", inc);
    }
    // Only writes of the object itself by a non-exempt identity can be drift.
    if !matches!(event.verb.as_str(), "update" | "patch" | "delete")
        || is_exempt(view, &event.user)
        || object.subresource.as_deref() == Some("status")
    {
        return Judged::ignored(event);
    }
    match drift(event, &object, view, now) {
        Some(inc) => Judged::incident(event, "gitops_drift", inc),
        None => Judged::ignored(event),
    }
}

/// The 403 to count, with the start of the burst window that ends at it.
fn denied_access(event: &Event, rules: &AuditRules, now: DateTime<Utc>) -> DeniedAccess {
    let at = event.request_received_timestamp.unwrap_or(now);
    let window = chrono::Duration::from_std(rules.denied_window).unwrap_or_default();
    let since = at
        .checked_sub_signed(window)
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    DeniedAccess {
        identity: denied_key(&event.user.username),
        at,
        since,
    }
}

fn protected_deletion(
    event: &Event,
    object: &ObjectReference,
    qualified: &str,
    now: DateTime<Utc>,
) -> Incident {
    // The username as shown in titles and descriptions (caller-chosen, unbounded).
    let who = shown(&event.user.username);
    let name = object.name.clone().unwrap_or_default();
    let mut inc = incident(
        event,
        "protected_object_deleted",
        format!("Protected {qualified} {name} deleted by {who}"),
        Severity::High,
        now,
    );
    inc.description = format!("{who} deleted {qualified} {name}; it is on the protected list.");
    inc
}

/// The drift incident of a write to an object an ArgoCD Application manages; `None` when no
/// Application manages it (or its metadata is unknown).
fn drift(
    event: &Event,
    object: &ObjectReference,
    view: &GuardView,
    now: DateTime<Utc>,
) -> Option<Incident> {
    let name = object.name.clone().unwrap_or_default();
    let namespace = object.namespace.clone().unwrap_or_default();
    let kind = kind_of(&object.resource);
    let target = ObjectRef {
        group: &object.api_group,
        kind: &kind,
        namespace: &namespace,
        name: &name,
    };
    let (app, by) = managing_application(event, object, &target, view)?;
    let who = shown(&event.user.username);
    let touched = touched_paths(event.request_object.as_ref(), REVIEW_BUDGET);
    let paths = &touched.paths;
    let mut inc = incident(
        event,
        "gitops_drift",
        format!(
            "Drift: {who} {}d ArgoCD-managed {kind} {namespace}/{name}",
            event.verb
        ),
        Severity::High,
        now,
    );
    inc.description = format!(
        "{who} {}d {kind} {namespace}/{name}, which ArgoCD Application {app:?} manages ({by}), \
         outside ArgoCD (the admission guard did not stop it). ArgoCD will revert or hide the change: \
         move it to Git.{}",
        event.verb,
        if paths.is_empty() {
            String::new()
        } else {
            format!(" Touched: {}.", touched.summary(10))
        }
    );
    inc.annotations.insert("argocd_application".into(), app);
    if !paths.is_empty() {
        inc.annotations
            .insert("changed_paths".into(), paths.join(","));
    }
    Some(inc)
}

/// Ownership, by the guard's own check: from the object in the event (RequestResponse
/// level), else from the guard's metadata cache (Metadata level).
fn managing_application(
    event: &Event,
    object: &ObjectReference,
    target: &ObjectRef<'_>,
    view: &GuardView,
) -> Option<(String, &'static str)> {
    let cached = view
        .parents
        .get(&(
            object.api_group.clone(),
            object.resource.clone(),
            target.namespace.to_string(),
            target.name.to_string(),
        ))
        .map(|p| serde_json::json!({ "metadata": p.metadata }));
    let subject = event
        .response_object
        .as_ref()
        .filter(|o| o.get("metadata").is_some())
        .or(cached.as_ref())?;
    match ownership(subject, target, view) {
        Ownership::Managed { app, by } => Some((app, by)),
        Ownership::NotManaged(_) => None,
    }
}
