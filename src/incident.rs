//! Incidents: what a source reported, parsed at the edge into closed types.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use utoipa::ToSchema;

/// Makes a collision-free, time-ordered id: `<prefix>-<UUIDv7 as 32 hex digits>`.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::now_v7().simple())
}

/// Whether `id` has the shape of an id made by [`new_id`] with this prefix.
pub fn is_valid_id(prefix: &str, id: &str) -> bool {
    id.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|hex| hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Defines a closed, snake_case string enum with `FromStr`, `Display` and `ALL`.
macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s { $($text => Ok($name::$variant),)+
                    other => Err(format!(
                        "{other:?} is not one of {}",
                        [$($text),+].join(", ")
                    )) }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use string_enum;

string_enum!(
    /// Where an incident came from.
    Source {
        Alertmanager => "alertmanager",
        Audit => "audit",
        Admission => "admission",
        Api => "api",
        Manual => "manual",
    }
);

string_enum!(
    /// How bad it is.
    Severity {
        Info => "info",
        Low => "low",
        Medium => "medium",
        High => "high",
        Critical => "critical",
    }
);

impl Severity {
    /// The MCP server's integer priority: 1 is the most urgent.
    pub fn priority(self) -> i64 {
        match self {
            Severity::Critical => 1,
            Severity::High => 2,
            Severity::Medium => 3,
            Severity::Low => 4,
            Severity::Info => 5,
        }
    }
}

string_enum!(
    /// Lifecycle of an incident.
    IncidentStatus {
        Active => "active",
        Remediating => "remediating",
        Resolved => "resolved",
        Cancelled => "cancelled",
        Escalated => "escalated",
    }
);

impl IncidentStatus {
    /// Resolved and cancelled incidents are closed for good; a new occurrence is a new incident.
    pub fn is_terminal(self) -> bool {
        matches!(self, IncidentStatus::Resolved | IncidentStatus::Cancelled)
    }

    /// Whether a person (PATCH) may move an incident from `self` to `to`.
    pub fn can_become(self, to: IncidentStatus) -> bool {
        use IncidentStatus::*;
        match (self, to) {
            (from, _) if from.is_terminal() => false,
            (_, Resolved) => true,
            // Cancelling while a workflow runs would orphan it: cancel the workflow first.
            (Active | Escalated, Cancelled) => true,
            _ => false,
        }
    }

    /// The name the Go engine's clients (the MCP server) understand.
    pub fn legacy_name(self) -> &'static str {
        match self {
            IncidentStatus::Active => "active",
            IncidentStatus::Remediating => "running",
            IncidentStatus::Resolved => "completed",
            IncidentStatus::Cancelled => "cancelled",
            IncidentStatus::Escalated => "failed",
        }
    }
}

/// The object an incident is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Target {
    /// Kubernetes kind (`Deployment`, `Pod`, `Node`…); empty when the source did not say.
    pub kind: String,
    pub name: String,
}

impl Target {
    /// Parses the Go engine's and MCP server's `target` string: `Kind/name`,
    /// `namespace/Kind/name`, or a bare name. Returns the namespace when one was given.
    pub fn parse(text: &str) -> (Option<String>, Target) {
        let parts: Vec<&str> = text.split('/').collect();
        match parts.as_slice() {
            [ns, kind, name] => (
                Some(ns.to_string()),
                Target {
                    kind: kind.to_string(),
                    name: name.to_string(),
                },
            ),
            [kind, name] => (
                None,
                Target {
                    kind: kind.to_string(),
                    name: name.to_string(),
                },
            ),
            _ => (
                None,
                Target {
                    kind: String::new(),
                    name: text.to_string(),
                },
            ),
        }
    }

    /// `Kind/name`, or the name alone when the kind is unknown.
    pub fn display(&self) -> String {
        if self.kind.is_empty() {
            self.name.clone()
        } else {
            format!("{}/{}", self.kind, self.name)
        }
    }
}

/// A note added by a person or the engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Note {
    pub at: DateTime<Utc>,
    pub text: String,
}

/// One incident, as stored and as returned by the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Incident {
    pub id: String,
    pub source: Source,
    pub title: String,
    pub description: String,
    pub severity: Severity,
    pub status: IncidentStatus,
    pub namespace: Option<String>,
    pub target: Option<Target>,
    /// What is wrong (`crash_loop`, `oom`, …; `unknown` when not recognised).
    pub issue_type: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// Alertmanager fingerprint, when the incident came from an alert.
    pub fingerprint: Option<String>,
    /// A caller's own reference (MCP `externalId`, remediation `incident_id`).
    pub external_id: Option<String>,
    pub correlation_id: Option<String>,
    pub created_by: Option<String>,
    pub confidence: Option<f64>,
    pub affected_resources: Vec<String>,
    pub notes: Vec<Note>,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub occurrences: i64,
    pub workflow_ids: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
}

impl Incident {
    /// A new, active incident seen once, now.
    pub fn new(source: Source, title: String, severity: Severity, now: DateTime<Utc>) -> Self {
        Incident {
            id: new_id("inc"),
            source,
            title,
            description: String::new(),
            severity,
            status: IncidentStatus::Active,
            namespace: None,
            target: None,
            issue_type: "unknown".into(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            fingerprint: None,
            external_id: None,
            correlation_id: None,
            created_by: None,
            confidence: None,
            affected_resources: Vec::new(),
            notes: Vec::new(),
            first_seen: now,
            last_seen: now,
            occurrences: 1,
            workflow_ids: Vec::new(),
            created_at: now,
            updated_at: now,
            resolved_at: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_prefixed_and_recognised() {
        let a = new_id("inc");
        let b = new_id("inc");
        assert_ne!(a, b);
        assert!(is_valid_id("inc", &a));
        assert!(!is_valid_id("wf", &a));
        assert!(!is_valid_id("inc", "inc-123"));
        assert!(!is_valid_id("inc", "inc-zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"));
    }

    #[test]
    fn terminal_incidents_cannot_change_status() {
        use IncidentStatus::*;
        for to in IncidentStatus::ALL {
            assert!(!Resolved.can_become(*to));
            assert!(!Cancelled.can_become(*to));
        }
        assert!(Active.can_become(Resolved));
        assert!(Active.can_become(Cancelled));
        assert!(!Remediating.can_become(Cancelled));
        assert!(Escalated.can_become(Resolved));
        assert!(
            !Active.can_become(Remediating),
            "only the pipeline starts remediation"
        );
    }

    #[test]
    fn target_strings_parse_in_the_shapes_clients_send() {
        let (ns, t) = Target::parse("Deployment/web");
        assert_eq!(
            (ns, t.kind.as_str(), t.name.as_str()),
            (None, "Deployment", "web")
        );
        let (ns, t) = Target::parse("prod/Pod/web-1");
        assert_eq!(ns.as_deref(), Some("prod"));
        assert_eq!(t.display(), "Pod/web-1");
        let (_, t) = Target::parse("payment-service");
        assert_eq!(t.display(), "payment-service");
    }

    #[test]
    fn enums_reject_unknown_values_listing_the_valid_ones() {
        let err = "urgent".parse::<Severity>().unwrap_err();
        assert!(err.contains("critical"), "{err}");
        assert_eq!("high".parse::<Severity>(), Ok(Severity::High));
    }
}
