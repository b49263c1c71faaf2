//! Triggers (SPEC §3): `POST /remediation/trigger` in the Go engine's flat shape or the MCP
//! server's nested one. Parsing and mapping to an incident only: the words clients use for
//! kinds and issues (shared with `coordination.rs`), field checks naming the field. No I/O.

use crate::incident::{Incident, Severity, Source, Target};
use crate::plan::CLUSTER_SCOPED;
use crate::validate::{
    FieldError, bounded, is_dns_label, kubernetes_kind, kubernetes_name, required_text,
};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use utoipa::ToSchema;

const KNOWN_KINDS: &[&str] = &[
    "Pod",
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "Job",
    "CronJob",
    "Service",
    "Node",
    "ClusterOperator",
    "MachineConfigPool",
    "PersistentVolumeClaim",
    "PersistentVolume",
];

/// `pod` → `Pod`, `deployment` → `Deployment`; unknown kinds are kept as sent.
pub fn normalize_kind(kind: &str) -> String {
    KNOWN_KINDS
        .iter()
        .find(|k| k.eq_ignore_ascii_case(kind.trim()))
        .map(|k| k.to_string())
        .unwrap_or_else(|| kind.trim().to_string())
}

/// The Go engine's and the MCP server's issue words → our issue types.
pub fn normalize_issue(issue: &str) -> String {
    let lower = issue.trim().to_ascii_lowercase().replace(['-', ' '], "_");
    match lower.as_str() {
        "crashloopbackoff" | "crashloop" | "crash_loop" | "pod_crash" | "crash_loop_back_off" => {
            "crash_loop".into()
        }
        "oomkilled" | "oom_killed" | "oom_kill" | "oom" => "oom".into(),
        "imagepullbackoff" | "errimagepull" | "image_pull_backoff" | "image_pull" => {
            "image_pull".into()
        }
        "notready" | "not_ready" | "pod_not_ready" => "pod_not_ready".into(),
        "nodenotready" | "node_not_ready" => "node_not_ready".into(),
        _ => lower,
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FlatTrigger {
    pub namespace: Option<String>,
    pub resource_type: String,
    pub resource_name: String,
    pub issue_type: String,
    pub severity: Option<String>,
    pub metadata: Option<BTreeMap<String, Value>>,
    pub incident_id: Option<String>,
    pub dry_run: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceRef {
    pub kind: String,
    pub name: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueRef {
    #[serde(rename = "type")]
    pub issue_type: String,
    pub description: Option<String>,
    pub severity: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NestedTrigger {
    pub incident_id: Option<String>,
    pub namespace: Option<String>,
    pub resource: ResourceRef,
    pub issue: IssueRef,
    pub dry_run: Option<bool>,
}

/// Whether a trigger body is the MCP server's nested shape (else the Go engine's flat one).
pub fn is_nested(body: &Value) -> bool {
    body.get("resource").is_some() || body.get("issue").is_some()
}

/// One target, from either shape, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Trigger {
    pub external_id: Option<String>,
    pub namespace: Option<String>,
    pub kind: String,
    pub name: String,
    pub issue_type: String,
    pub description: String,
    pub severity: Severity,
    pub dry_run: bool,
}

fn severity(text: Option<&str>) -> Result<Severity, FieldError> {
    match text.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(Severity::Medium),
        Some(s) => s
            .to_ascii_lowercase()
            .parse()
            .map_err(|why: String| FieldError::new("severity", why)),
    }
}

/// The namespace of a `kind` object: required for namespaced kinds, ignored for cluster-scoped
/// ones.
pub fn namespace_for(
    kind: &str,
    namespace: Option<String>,
    field: &str,
) -> Result<Option<String>, FieldError> {
    if CLUSTER_SCOPED.contains(&kind) {
        // A namespace sent with a Node or a ClusterOperator means nothing: ignored.
        return Ok(None);
    }
    match namespace.filter(|ns| !ns.is_empty()) {
        Some(ns) if is_dns_label(&ns) => Ok(Some(ns)),
        Some(ns) => Err(FieldError::new(
            field,
            format!("{ns:?} is not a namespace name"),
        )),
        None => Err(FieldError::new(
            field,
            format!("is required for the namespaced kind {kind}"),
        )),
    }
}

fn external_id(id: Option<String>) -> Result<Option<String>, FieldError> {
    id.map(|id| bounded("incident_id", id, 256)).transpose()
}

impl Trigger {
    /// The MCP server's shape.
    pub fn from_nested(t: NestedTrigger) -> Result<Trigger, FieldError> {
        let kind = normalize_kind(&kubernetes_kind("resource.kind", t.resource.kind)?);
        Ok(Trigger {
            external_id: external_id(t.incident_id)?,
            namespace: namespace_for(&kind, t.namespace, "namespace")?,
            name: kubernetes_name("resource.name", t.resource.name)?,
            kind,
            issue_type: normalize_issue(&required_text(
                "issue.type",
                Some(t.issue.issue_type),
                128,
            )?),
            description: bounded(
                "issue.description",
                t.issue.description.unwrap_or_default(),
                8192,
            )?,
            severity: severity(t.issue.severity.as_deref())?,
            dry_run: t.dry_run.unwrap_or(false),
        })
    }

    /// The Go engine's shape; its `metadata` becomes the description (as JSON).
    pub fn from_flat(t: FlatTrigger) -> Result<Trigger, FieldError> {
        let kind = normalize_kind(&kubernetes_kind("resource_type", t.resource_type)?);
        Ok(Trigger {
            external_id: external_id(t.incident_id)?,
            namespace: namespace_for(&kind, t.namespace, "namespace")?,
            name: kubernetes_name("resource_name", t.resource_name)?,
            kind,
            issue_type: normalize_issue(&required_text("issue_type", Some(t.issue_type), 128)?),
            description: t
                .metadata
                .map(|m| serde_json::to_string(&m).unwrap_or_default())
                .unwrap_or_default(),
            severity: severity(t.severity.as_deref())?,
            dry_run: t.dry_run.unwrap_or(false),
        })
    }

    /// The incident this trigger reports.
    pub fn incident(&self, now: DateTime<Utc>) -> Incident {
        let title = format!("{} on {}/{}", self.issue_type, self.kind, self.name);
        let mut incident = Incident::new(Source::Api, title, self.severity, now);
        incident.namespace = self.namespace.clone();
        incident.target = Some(Target {
            kind: self.kind.clone(),
            name: self.name.clone(),
        });
        incident.issue_type = self.issue_type.clone();
        incident.description = self.description.clone();
        incident.external_id = self.external_id.clone();
        incident
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn flat(body: Value) -> Result<Trigger, FieldError> {
        Trigger::from_flat(serde_json::from_value(body).unwrap())
    }

    fn nested(body: Value) -> Result<Trigger, FieldError> {
        Trigger::from_nested(serde_json::from_value(body).unwrap())
    }

    #[test]
    fn clients_words_for_kinds_and_issues_become_ours() {
        assert_eq!(normalize_kind(" deployment "), "Deployment");
        assert_eq!(normalize_kind("clusteroperator"), "ClusterOperator");
        assert_eq!(normalize_kind("Widget"), "Widget");
        for (word, issue) in [
            ("CrashLoopBackOff", "crash_loop"),
            ("pod-crash", "crash_loop"),
            ("OOMKilled", "oom"),
            ("ErrImagePull", "image_pull"),
            ("NotReady", "pod_not_ready"),
            ("node not ready", "node_not_ready"),
            ("High CPU", "high_cpu"),
        ] {
            assert_eq!(normalize_issue(word), issue, "{word}");
        }
    }

    #[test]
    fn both_shapes_make_the_same_trigger() {
        let from_flat = flat(json!({"namespace": "shop", "resource_type": "deployment",
            "resource_name": "cart", "issue_type": "CrashLoopBackOff", "severity": "HIGH"}))
        .unwrap();
        let from_nested = nested(json!({"namespace": "shop",
            "resource": {"kind": "Deployment", "name": "cart"},
            "issue": {"type": "crashloop", "severity": "high"}}))
        .unwrap();
        assert_eq!(from_flat, from_nested);
        assert_eq!(from_flat.kind, "Deployment");
        assert_eq!(from_flat.issue_type, "crash_loop");
        assert_eq!(from_flat.severity, Severity::High);
        let incident = from_flat.incident(Utc::now());
        assert_eq!(incident.title, "crash_loop on Deployment/cart");
        assert_eq!(incident.source, Source::Api);
        assert_eq!(incident.namespace.as_deref(), Some("shop"));
    }

    #[test]
    fn a_namespaced_kind_needs_a_namespace_and_a_cluster_scoped_one_drops_it() {
        let missing = flat(json!({"resource_type": "Pod", "resource_name": "cart-1",
            "issue_type": "crash_loop"}));
        assert_eq!(
            missing.unwrap_err(),
            FieldError::new("namespace", "is required for the namespaced kind Pod")
        );
        let node = nested(json!({"namespace": "monitoring",
            "resource": {"kind": "node", "name": "worker-1"}, "issue": {"type": "NodeNotReady"}}))
        .unwrap();
        assert_eq!(node.namespace, None);
        assert_eq!(node.issue_type, "node_not_ready");
    }

    #[test]
    fn bad_fields_are_named() {
        let bad_name = nested(json!({"namespace": "shop",
            "resource": {"kind": "Pod", "name": "../etc"}, "issue": {"type": "x"}}));
        assert_eq!(bad_name.unwrap_err().field, "resource.name");
        let bad_severity = flat(json!({"namespace": "shop", "resource_type": "Pod",
            "resource_name": "a", "issue_type": "x", "severity": "urgent"}));
        assert_eq!(bad_severity.unwrap_err().field, "severity");
        let bad_namespace = flat(json!({"namespace": "Shop!", "resource_type": "Pod",
            "resource_name": "a", "issue_type": "x"}));
        assert_eq!(bad_namespace.unwrap_err().field, "namespace");
    }
}
