//! The audit EventList as the API server posts it (`audit.k8s.io/v1`), and its validation.

use crate::guard::clip::shown;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

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
