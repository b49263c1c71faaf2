//! Kubernetes audit events (`audit.k8s.io/v1` EventList) → incidents (SPEC §4.2).
//!
//! The guard stops manual changes at admission; the audit backend sees the ones that got past
//! it (webhook down with `failurePolicy: Ignore`, an excluded namespace, a break-glass
//! identity). Ownership is judged by the guard's own check, not a second one.

use crate::expiring::ExpiringMap;
use crate::guard::GuardView;
use crate::guard::clip::{SHOWN_MAX, clip, shown};
use crate::guard::diff::{REVIEW_BUDGET, touched_paths};
use crate::guard::tracking::{ObjectRef, Ownership, ownership};
use crate::incident::{Incident, Severity, Source, Target};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventList {
    pub api_version: String,
    pub kind: String,
    pub items: Vec<Event>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditUser {
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub groups: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectReference {
    #[serde(default)]
    pub resource: String,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub api_group: String,
    #[serde(default)]
    pub subresource: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ResponseStatus {
    #[serde(default)]
    pub code: u16,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    #[serde(rename = "auditID")]
    pub audit_id: String,
    #[serde(default)]
    pub stage: String,
    pub verb: String,
    #[serde(default, rename = "requestURI")]
    pub request_uri: String,
    #[serde(default)]
    pub user: AuditUser,
    #[serde(default)]
    pub object_ref: Option<ObjectReference>,
    #[serde(default)]
    pub response_status: Option<ResponseStatus>,
    #[serde(default)]
    pub request_object: Option<Value>,
    #[serde(default)]
    pub response_object: Option<Value>,
    /// Years 0000–9999 only: the 403 window is computed from it (chrono panics on
    /// arithmetic near its own ±262 143-year limits).
    #[serde(
        default,
        deserialize_with = "crate::sources::bounded_time::deserialize_option"
    )]
    pub request_received_timestamp: Option<DateTime<Utc>>,
    #[serde(default)]
    pub user_agent: String,
}

/// Why a batch was refused (400).
pub fn validate(list: &EventList) -> Result<(), String> {
    if list.api_version != "audit.k8s.io/v1" {
        return Err(format!(
            "apiVersion must be audit.k8s.io/v1, got {:?}",
            shown(&list.api_version)
        ));
    }
    if list.kind != "EventList" {
        return Err(format!(
            "kind must be EventList, got {:?}",
            shown(&list.kind)
        ));
    }
    for (i, event) in list.items.iter().enumerate() {
        if event.audit_id.trim().is_empty() || event.audit_id.len() > 64 {
            return Err(format!("items[{i}].auditID is missing or too long"));
        }
        if event.verb.trim().is_empty() {
            return Err(format!("items[{i}].verb is missing"));
        }
    }
    Ok(())
}

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

/// 403s per identity, across batches (per process). Bounded: an identity is forgotten
/// `TRACKER_TTL` after its last 403 (longer than any burst window), at most `TRACKER_CAP`
/// identities are kept, and at most `RECENT_MAX` 403s per identity.
#[derive(Debug)]
pub struct DeniedTracker {
    recent: ExpiringMap<String, Recent403s>,
    reported: ExpiringMap<String, DateTime<Utc>>,
    /// Keys the hash of a long username (per process, so a caller cannot aim for collisions).
    hasher: RandomState,
}

const TRACKER_TTL: Duration = Duration::from_secs(15 * 60);
const TRACKER_CAP: usize = 10_000;
const RECENT_MAX: usize = 1024;

impl Default for DeniedTracker {
    fn default() -> Self {
        DeniedTracker {
            recent: ExpiringMap::new(TRACKER_TTL, TRACKER_CAP),
            reported: ExpiringMap::new(TRACKER_TTL, TRACKER_CAP),
            hasher: RandomState::new(),
        }
    }
}

/// Longest tracker key, in bytes before the hash suffix: usernames are caller-chosen and
/// unbounded, and up to `TRACKER_CAP` of them are kept twice.
const KEY_MAX: usize = SHOWN_MAX;

impl DeniedTracker {
    /// The username itself when short, else its first `KEY_MAX` bytes and a hash of the
    /// whole: bounded, and two long names with the same prefix stay apart.
    fn key(&self, username: &str) -> String {
        if username.len() <= KEY_MAX {
            return username.to_string();
        }
        format!(
            "{}#{:016x}",
            clip(username, KEY_MAX),
            self.hasher.hash_one(username)
        )
    }
}

/// The 403 times of one identity, oldest first: only the newest `denied_threshold` (at most
/// `RECENT_MAX`), which is all a burst needs (the threshold-th newest within the window).
#[derive(Debug, Default)]
struct Recent403s(VecDeque<DateTime<Utc>>);

impl Recent403s {
    fn push_back(&mut self, at: DateTime<Utc>, keep: usize) {
        let keep = keep.clamp(1, RECENT_MAX);
        while self.0.len() >= keep {
            self.0.pop_front();
        }
        self.0.push_back(at);
    }
}

impl std::ops::Deref for Recent403s {
    type Target = VecDeque<DateTime<Utc>>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Recent403s {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

/// One event's verdict: the incident it creates, if any, and the outcome label.
pub struct Judged {
    pub audit_id: String,
    pub outcome: &'static str,
    pub incident: Option<Incident>,
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

/// Judges one event (pure but for the 403 tracker, which spans batches).
pub fn judge(
    event: &Event,
    view: &GuardView,
    rules: &AuditRules,
    denied: &mut DeniedTracker,
    now: DateTime<Utc>,
) -> Judged {
    let ignored = |event: &Event| Judged {
        audit_id: event.audit_id.clone(),
        outcome: "ignored",
        incident: None,
    };
    if event.stage != "ResponseComplete" {
        return ignored(event);
    }
    let code = event.response_status.as_ref().map(|s| s.code).unwrap_or(0);
    let object = event.object_ref.clone().unwrap_or_default();
    let user = &event.user.username;
    let own = user == &view.config.own_identity
        || event
            .request_uri
            .contains(&format!("fieldManager={}", rules.field_manager));
    // The username as shown in titles and descriptions (caller-chosen, unbounded).
    let who = shown(user);

    if code == 403 && !own {
        let at = event.request_received_timestamp.unwrap_or(now);
        let window = chrono::Duration::from_std(rules.denied_window).unwrap_or_default();
        let since = at
            .checked_sub_signed(window)
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        let key = denied.key(user);
        let recent = denied.recent.entry(key.clone()).or_default();
        recent.push_back(at, rules.denied_threshold);
        while recent.front().is_some_and(|t| *t < since) {
            recent.pop_front();
        }
        let already = denied.reported.get(&key).is_some_and(|t| *t >= since);
        if recent.len() >= rules.denied_threshold && !already {
            denied.reported.insert(key, at);
            let mut inc = incident(
                event,
                "access_denied_burst",
                format!(
                    "{} denied {} times within {}s",
                    who,
                    recent.len(),
                    rules.denied_window.as_secs()
                ),
                Severity::Medium,
                now,
            );
            inc.description = format!(
                "{who} got {} HTTP 403 answers in {}s; the last on {} {}.",
                recent.len(),
                rules.denied_window.as_secs(),
                event.verb,
                event.request_uri
            );
            return Judged {
                audit_id: event.audit_id.clone(),
                outcome: "access_denied_burst",
                incident: Some(inc),
            };
        }
        return ignored(event);
    }
    if !(200..300).contains(&code) || own {
        return ignored(event);
    }
    let qualified = if object.api_group.is_empty() {
        object.resource.clone()
    } else {
        format!("{}.{}", object.resource, object.api_group)
    };
    if event.verb == "delete" && rules.protected.contains(&qualified) {
        let name = object.name.clone().unwrap_or_default();
        let mut inc = incident(
            event,
            "protected_object_deleted",
            format!("Protected {qualified} {name} deleted by {who}"),
            Severity::High,
            now,
        );
        inc.description = format!("{who} deleted {qualified} {name}; it is on the protected list.");
        return Judged {
            audit_id: event.audit_id.clone(),
            outcome: "protected_object_deleted",
            incident: Some(inc),
        };
    }
    if !matches!(event.verb.as_str(), "update" | "patch" | "delete") || is_exempt(view, &event.user)
    {
        return ignored(event);
    }
    if object.subresource.as_deref() == Some("status") {
        return ignored(event);
    }
    // Ownership, by the guard's own check: from the object in the event (RequestResponse
    // level), else from the guard's metadata cache (Metadata level).
    let name = object.name.clone().unwrap_or_default();
    let namespace = object.namespace.clone().unwrap_or_default();
    let kind = kind_of(&object.resource);
    let target = ObjectRef {
        group: &object.api_group,
        kind: &kind,
        namespace: &namespace,
        name: &name,
    };
    let cached = view
        .parents
        .get(&(
            object.api_group.clone(),
            object.resource.clone(),
            namespace.clone(),
            name.clone(),
        ))
        .map(|p| serde_json::json!({ "metadata": p.metadata }));
    let subject = event
        .response_object
        .as_ref()
        .filter(|o| o.get("metadata").is_some())
        .or(cached.as_ref());
    let Some(subject) = subject else {
        return ignored(event);
    };
    let (app, by) = match ownership(subject, &target, view) {
        Ownership::Managed { app, by } => (app, by),
        Ownership::NotManaged(_) => return ignored(event),
    };
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
    Judged {
        audit_id: event.audit_id.clone(),
        outcome: "gitops_drift",
        incident: Some(inc),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_become_kinds() {
        assert_eq!(kind_of("deployments"), "Deployment");
        assert_eq!(kind_of("configmaps"), "ConfigMap");
        assert_eq!(kind_of("statefulsets"), "StatefulSet");
        assert_eq!(kind_of("policies"), "Policy");
        assert_eq!(kind_of("applications"), "Application");
    }

    #[test]
    fn a_flood_of_403s_from_distinct_users_keeps_the_tracker_bounded() {
        let mut event = sample_event("forbidden-burst.json");
        let mut tracker = DeniedTracker::default();
        let rules = AuditRules::default();
        let v = view();
        for i in 0..(TRACKER_CAP + 5_000) {
            event.user.username = format!("forged-{i}");
            judge(&event, &v, &rules, &mut tracker, Utc::now());
        }
        assert!(tracker.recent.len() <= TRACKER_CAP);
        event.user.username = "one-user".into();
        for _ in 0..(RECENT_MAX * 3) {
            judge(&event, &v, &rules, &mut tracker, Utc::now());
        }
        assert!(
            tracker
                .recent
                .get("one-user")
                .is_some_and(|r| r.len() <= RECENT_MAX)
        );
    }

    #[test]
    fn a_huge_username_costs_a_bounded_key_and_only_threshold_timestamps() {
        let mut event = sample_event("forbidden-burst.json");
        let mut tracker = DeniedTracker::default();
        let rules = AuditRules::default();
        let v = view();
        let huge = "u".repeat(1024 * 1024);
        let outcomes: Vec<&str> = ['a', 'b']
            .into_iter()
            .flat_map(|last| {
                // Two 1 MiB names differing only in their last byte: separate identities.
                event.user.username = format!("{huge}{last}");
                (0..rules.denied_threshold * 3)
                    .map(|_| {
                        let judged = judge(&event, &v, &rules, &mut tracker, Utc::now());
                        if let Some(incident) = &judged.incident {
                            let shown = serde_json::to_string(incident).expect("json");
                            assert!(shown.len() < 8 * 1024, "incident of {} bytes", shown.len());
                        }
                        judged.outcome
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        let bursts = outcomes.iter().filter(|o| **o == "access_denied_burst");
        assert_eq!(bursts.count(), 2, "{outcomes:?}");
        assert_eq!(tracker.recent.len(), 2);
        for username in [format!("{huge}a"), format!("{huge}b")] {
            let key = tracker.key(&username);
            assert!(key.len() <= KEY_MAX + 64, "key of {} bytes", key.len());
            let times = tracker.recent.get(&key).expect("tracked").len();
            assert_eq!(times, rules.denied_threshold);
        }
        // A short name is its own key.
        assert_eq!(tracker.key("alice"), "alice");
    }

    fn sample_event(name: &str) -> Event {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("webhooks/samples/audit")
            .join(name);
        let list: EventList =
            serde_json::from_str(&std::fs::read_to_string(path).expect("sample")).expect("parses");
        validate(&list).expect("valid");
        list.items.into_iter().next().expect("one event")
    }

    fn view() -> GuardView {
        let settings = crate::config::load(&crate::config::Sources::default()).expect("defaults");
        GuardView::new(crate::guard::GuardConfig::from_settings(&settings))
    }

    #[test]
    fn a_metadata_level_delete_is_judged_from_the_guard_cache() {
        let event = sample_event("kubectl-delete-metadata-level.json");
        let mut tracker = DeniedTracker::default();
        let rules = AuditRules::default();
        let empty = view();
        assert_eq!(
            judge(&event, &empty, &rules, &mut tracker, Utc::now()).outcome,
            "ignored"
        );
        let cached = view();
        cached.parents.insert(
            ("apps".into(), "deployments".into(), "prod".into(), "cart".into()),
            crate::guard::view::ParentMeta {
                kind: "Deployment".into(),
                metadata: serde_json::json!({"name": "cart", "namespace": "prod",
                    "annotations": {"argocd.argoproj.io/tracking-id": "shop:apps/Deployment:prod/cart"}}),
            },
        );
        let judged = judge(&event, &cached, &rules, &mut tracker, Utc::now());
        assert_eq!(judged.outcome, "gitops_drift");
        assert_eq!(
            judged.incident.expect("incident").annotations["argocd_application"],
            "shop"
        );
    }

    #[test]
    fn break_glass_groups_and_the_engine_are_not_drift() {
        let mut event = sample_event("kubectl-scale.json");
        let mut tracker = DeniedTracker::default();
        let rules = AuditRules::default();
        let mut v = view();
        v.config.exempt_groups.insert("break-glass".into());
        assert_eq!(
            judge(&event, &v, &rules, &mut tracker, Utc::now()).outcome,
            "gitops_drift"
        );
        event.user.groups.push("break-glass".into());
        assert_eq!(
            judge(&event, &v, &rules, &mut tracker, Utc::now()).outcome,
            "ignored"
        );
        let engine = sample_event("engine-remediation.json");
        assert_eq!(
            judge(&engine, &view(), &rules, &mut tracker, Utc::now()).outcome,
            "ignored"
        );
    }

    #[test]
    fn a_burst_of_403s_is_reported_once_per_window() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("webhooks/samples/audit/forbidden-burst.json");
        let list: EventList =
            serde_json::from_str(&std::fs::read_to_string(path).expect("sample")).expect("parses");
        let mut tracker = DeniedTracker::default();
        let rules = AuditRules::default();
        let v = view();
        let outcomes: Vec<&str> = list
            .items
            .iter()
            .map(|e| judge(e, &v, &rules, &mut tracker, Utc::now()).outcome)
            .collect();
        assert_eq!(
            outcomes,
            vec![
                "ignored",
                "ignored",
                "ignored",
                "ignored",
                "access_denied_burst",
                "ignored"
            ]
        );
    }
}
