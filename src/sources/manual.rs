//! Incidents created through the API (`POST /incidents`, SPEC §3): the Go engine's
//! snake_case and the MCP server's camelCase keys, `target` as `Kind/name` text or an object.
//! Parsing and checks only, each failure naming the field. No I/O.

use crate::incident::{Incident, Severity, Source, Target};
use crate::validate::{FieldError, bounded, bounded_map, is_dns_label, required_text};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// `target` as clients send it: `"Kind/name"` (Go engine, MCP server) or an object.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum TargetInput {
    Text(String),
    Object {
        kind: String,
        name: String,
        namespace: Option<String>,
    },
}

/// A manual incident. snake_case and the MCP server's camelCase keys are both accepted.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateIncident {
    pub title: Option<String>,
    pub description: Option<String>,
    /// info, low, medium (default), high, critical.
    pub severity: Option<String>,
    pub target: Option<TargetInput>,
    pub namespace: Option<String>,
    #[serde(alias = "issueType")]
    pub issue_type: Option<String>,
    #[serde(alias = "affectedResources")]
    pub affected_resources: Option<Vec<String>>,
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(alias = "correlationId")]
    pub correlation_id: Option<String>,
    #[serde(alias = "externalId")]
    pub external_id: Option<String>,
    #[serde(alias = "createdBy")]
    pub created_by: Option<String>,
    /// `manual` (the MCP server) or `api` (default).
    pub source: Option<String>,
    /// 0 to 1.
    pub confidence: Option<f64>,
    /// Accepted for compatibility and kept as annotations.
    pub parameters: Option<BTreeMap<String, serde_json::Value>>,
}

/// The incident `body` describes, created at `now`. Fields are checked in the order below;
/// the first bad one is reported.
pub fn incident(body: CreateIncident, now: DateTime<Utc>) -> Result<Incident, FieldError> {
    let title = required_text("title", body.title, 256)?;
    let severity = severity(body.severity.as_deref())?;
    let source = source(body.source.as_deref())?;
    let mut incident = Incident::new(source, title, severity, now);
    incident.description = bounded("description", body.description.unwrap_or_default(), 8192)?;
    let (target_ns, target) = target(body.target)?;
    incident.target = target;
    incident.namespace = namespace(body.namespace.or(target_ns))?;
    if let Some(issue_type) = body.issue_type.filter(|t| !t.trim().is_empty()) {
        incident.issue_type = bounded("issue_type", issue_type, 128)?;
    }
    incident.affected_resources = affected_resources(body.affected_resources.unwrap_or_default())?;
    incident.labels = body.labels.unwrap_or_default();
    bounded_map("labels", &incident.labels, 64)?;
    let optional =
        |field: &str, value: Option<String>| value.map(|v| bounded(field, v, 256)).transpose();
    incident.correlation_id = optional("correlation_id", body.correlation_id)?;
    incident.external_id = optional("external_id", body.external_id)?;
    incident.created_by = optional("created_by", body.created_by)?;
    incident.confidence = confidence(body.confidence)?;
    for (key, value) in body.parameters.unwrap_or_default() {
        incident
            .annotations
            .insert(format!("parameter.{key}"), value.to_string());
    }
    bounded_map("parameters", &incident.annotations, 64)?;
    Ok(incident)
}

/// Medium when not given.
fn severity(text: Option<&str>) -> Result<Severity, FieldError> {
    match text.map(str::trim) {
        None | Some("") => Ok(Severity::Medium),
        Some(text) => text
            .parse()
            .map_err(|why: String| FieldError::new("severity", why)),
    }
}

fn source(text: Option<&str>) -> Result<Source, FieldError> {
    match text {
        None | Some("api") => Ok(Source::Api),
        Some("manual") => Ok(Source::Manual),
        Some(other) => Err(FieldError::new(
            "source",
            format!("{other:?} is not one of manual, api"),
        )),
    }
}

/// The target, and the namespace it names (text `namespace/Kind/name`, or the object's).
fn target(input: Option<TargetInput>) -> Result<(Option<String>, Option<Target>), FieldError> {
    Ok(match input {
        None => (None, None),
        Some(TargetInput::Text(text)) if text.trim().is_empty() => (None, None),
        Some(TargetInput::Text(text)) => {
            let (ns, t) = Target::parse(bounded("target", text.trim().to_string(), 512)?.as_str());
            (ns, Some(t))
        }
        Some(TargetInput::Object {
            kind,
            name,
            namespace,
        }) => (
            namespace,
            Some(Target {
                kind: bounded("target.kind", kind, 63)?,
                name: required_text("target.name", Some(name), 253)?,
            }),
        ),
    })
}

/// A namespace name, when one is given (empty means none).
fn namespace(namespace: Option<String>) -> Result<Option<String>, FieldError> {
    match namespace.filter(|ns| !ns.is_empty()) {
        Some(ns) if is_dns_label(&ns) => Ok(Some(ns)),
        Some(ns) => Err(FieldError::new(
            "namespace",
            format!("{ns:?} is not a namespace name"),
        )),
        None => Ok(None),
    }
}

fn affected_resources(resources: Vec<String>) -> Result<Vec<String>, FieldError> {
    if resources.len() > 100 {
        return Err(FieldError::new("affected_resources", "at most 100 entries"));
    }
    resources
        .into_iter()
        .map(|r| bounded("affected_resources", r, 512))
        .collect()
}

fn confidence(confidence: Option<f64>) -> Result<Option<f64>, FieldError> {
    match confidence {
        Some(c) if !(0.0..=1.0).contains(&c) => Err(FieldError::new(
            "confidence",
            format!("{c} is not between 0 and 1"),
        )),
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(body: serde_json::Value) -> Result<Incident, FieldError> {
        incident(serde_json::from_value(body).unwrap(), Utc::now())
    }

    #[test]
    fn the_target_text_may_carry_the_namespace_and_camel_case_keys_are_accepted() {
        let created = parse(
            json!({"title": " disk full ", "target": "shop/Deployment/cart",
            "issueType": "disk_pressure", "correlationId": "c-1", "source": "manual"}),
        )
        .unwrap();
        assert_eq!(created.title, "disk full");
        assert_eq!(created.namespace.as_deref(), Some("shop"));
        assert_eq!(
            created.target,
            Some(Target {
                kind: "Deployment".into(),
                name: "cart".into()
            })
        );
        assert_eq!(created.issue_type, "disk_pressure");
        assert_eq!(created.correlation_id.as_deref(), Some("c-1"));
        assert_eq!(created.source, Source::Manual);
        assert_eq!(created.severity, Severity::Medium);
    }

    #[test]
    fn an_explicit_namespace_wins_over_the_targets() {
        let created = parse(json!({"title": "t", "namespace": "pay",
            "target": {"kind": "Pod", "name": "a", "namespace": "shop"}}))
        .unwrap();
        assert_eq!(created.namespace.as_deref(), Some("pay"));
    }

    #[test]
    fn parameters_become_annotations() {
        let created = parse(json!({"title": "t", "parameters": {"replicas": 3}})).unwrap();
        assert_eq!(
            created
                .annotations
                .get("parameter.replicas")
                .map(String::as_str),
            Some("3")
        );
    }

    #[test]
    fn every_bad_field_is_named() {
        for (body, field) in [
            (json!({}), "title"),
            (json!({"title": "t", "severity": "urgent"}), "severity"),
            (json!({"title": "t", "source": "alertmanager"}), "source"),
            (
                json!({"title": "t", "namespace": "Not_A_Label"}),
                "namespace",
            ),
            (json!({"title": "t", "confidence": 1.5}), "confidence"),
            (
                json!({"title": "t", "target": {"kind": "Pod", "name": " "}}),
                "target.name",
            ),
            (
                json!({"title": "t", "affectedResources": vec!["x"; 101]}),
                "affected_resources",
            ),
        ] {
            assert_eq!(parse(body.clone()).unwrap_err().field, field, "{body}");
        }
    }
}
