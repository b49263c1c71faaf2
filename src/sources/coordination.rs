//! Coordination triggers (SPEC §3, `POST /api/v1/coordination/trigger`): several resources
//! of one incident, each checked like a trigger's target, mapped to one incident and the
//! resources its `multi_layer` plan is made for. No I/O.

use super::trigger::{namespace_for, normalize_issue, normalize_kind};
use crate::incident::{Incident, Severity, Source, Target};
use crate::plan::{Resource, StepTarget};
use crate::validate::{FieldError, bounded, kubernetes_kind, kubernetes_name};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CoordinationResource {
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
    pub issue: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CoordinationTrigger {
    pub incident_id: Option<String>,
    pub description: String,
    pub resources: Vec<CoordinationResource>,
    pub dry_run: Option<bool>,
}

/// A coordination trigger, checked: its resources (1 to 50) and the incident they make up.
#[derive(Debug, Clone)]
pub struct Coordination {
    pub resources: Vec<Resource>,
    pub description: String,
    pub external_id: Option<String>,
    pub dry_run: bool,
}

impl Coordination {
    pub fn parse(body: CoordinationTrigger) -> Result<Coordination, FieldError> {
        if body.resources.is_empty() || body.resources.len() > 50 {
            return Err(FieldError::new("resources", "between 1 and 50 resources"));
        }
        let description = bounded("description", body.description, 8192)?;
        let mut resources = Vec::new();
        for (i, r) in body.resources.into_iter().enumerate() {
            let kind = normalize_kind(&kubernetes_kind(&format!("resources[{i}].kind"), r.kind)?);
            let namespace =
                namespace_for(&kind, r.namespace, &format!("resources[{i}].namespace"))?;
            let name = kubernetes_name(&format!("resources[{i}].name"), r.name)?;
            resources.push(Resource {
                target: StepTarget {
                    kind,
                    namespace,
                    name,
                },
                issue_type: normalize_issue(r.issue.as_deref().unwrap_or("unknown")),
            });
        }
        Ok(Coordination {
            resources,
            description,
            external_id: body.incident_id,
            dry_run: body.dry_run.unwrap_or(false),
        })
    }

    /// One incident for all the resources: the first one is its target, all are listed as
    /// `namespace/Kind/name` in `affected_resources`.
    pub fn incident(&self, now: DateTime<Utc>) -> Incident {
        let mut incident =
            Incident::new(Source::Api, title(&self.description), Severity::High, now);
        incident.description = self.description.clone();
        if let Some(first) = self.resources.first() {
            incident.namespace = first.target.namespace.clone();
            incident.target = Some(Target {
                kind: first.target.kind.clone(),
                name: first.target.name.clone(),
            });
            incident.issue_type = first.issue_type.clone();
        }
        incident.external_id = self.external_id.clone();
        incident.affected_resources = self
            .resources
            .iter()
            .map(|r| {
                let t = &r.target;
                format!(
                    "{}/{}/{}",
                    t.namespace.as_deref().unwrap_or(""),
                    t.kind,
                    t.name
                )
            })
            .collect();
        incident
    }
}

/// The description's first 256 characters, or a generic title when it is blank.
fn title(text: &str) -> String {
    let title: String = text.chars().take(256).collect();
    if title.trim().is_empty() {
        "multi-layer incident".into()
    } else {
        title
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn a_coordination_trigger_lists_every_resource_and_targets_the_first() {
        let body: CoordinationTrigger = serde_json::from_value(json!({
            "description": "cart crashes since worker-1 went away",
            "resources": [
                {"kind": "deployment", "name": "cart", "namespace": "shop", "issue": "CrashLoopBackOff"},
                {"kind": "Node", "name": "worker-1", "namespace": "ignored"}
            ]
        }))
        .unwrap();
        let coordination = Coordination::parse(body).unwrap();
        assert_eq!(coordination.resources[1].issue_type, "unknown");
        let incident = coordination.incident(Utc::now());
        assert_eq!(incident.title, "cart crashes since worker-1 went away");
        assert_eq!(incident.severity, Severity::High);
        assert_eq!(incident.issue_type, "crash_loop");
        assert_eq!(
            incident.affected_resources,
            vec!["shop/Deployment/cart", "/Node/worker-1"]
        );
    }

    #[test]
    fn a_coordination_trigger_has_one_to_fifty_resources_each_checked() {
        let parse = |resources: Value| {
            Coordination::parse(
                serde_json::from_value(json!({"description": " ", "resources": resources}))
                    .unwrap(),
            )
        };
        assert_eq!(parse(json!([])).unwrap_err().field, "resources");
        let many: Vec<Value> = (0..51)
            .map(|i| json!({"kind": "Node", "name": format!("n{i}")}))
            .collect();
        assert_eq!(parse(json!(many)).unwrap_err().field, "resources");
        let bad = parse(json!([{"kind": "Node", "name": "a"}, {"kind": "Pod", "name": "b"}]));
        assert_eq!(bad.unwrap_err().field, "resources[1].namespace");
        let blank = parse(json!([{"kind": "Node", "name": "a"}])).unwrap();
        assert_eq!(blank.incident(Utc::now()).title, "multi-layer incident");
    }
}
