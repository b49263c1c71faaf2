//! The notification, parsed alert by alert.
//!
//! The envelope (`version`, `status`, the `alerts` array…) must parse, or the notification is
//! refused. Each alert is then parsed and checked on its own: one that fails becomes a
//! [`Skipped`] (with its fingerprint, the field and a metric reason) and the others go on.
//! Alertmanager does not retry a 4xx, so refusing a whole group for one bad alert would lose
//! the good ones for good.

use super::MAX_ALERTS_PER_BATCH;
use crate::clip::{SHOWN_MAX, clip, shown};
use crate::sources::bounded_time;
use chrono::{DateTime, Utc};
use serde::de::{IgnoredAny, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use std::fmt;

/// Labels (and annotations) per alert.
pub const MAX_LABELS: usize = 128;
/// Bytes of a label name.
pub const MAX_LABEL_NAME: usize = 256;
/// Bytes of a label value. Labels are identities, not text; annotations carry the text.
pub const MAX_LABEL_VALUE: usize = 16 * 1024;
/// Characters of a fingerprint (Alertmanager's are 16 hex digits).
pub const MAX_FINGERPRINT: usize = 64;

/// Every `reason` of `coordination_engine_alerts_rejected_total`.
pub const REJECT_REASONS: &[&str] = &[
    "missing_alertname",
    "bad_time",
    "bad_status",
    "bad_fingerprint",
    "oversize",
    "malformed",
];

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Payload {
    pub version: String,
    #[serde(default)]
    pub group_key: String,
    #[serde(default)]
    pub truncated_alerts: u64,
    pub status: AlertStatus,
    #[serde(default)]
    pub receiver: String,
    #[serde(default)]
    pub group_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub common_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub common_annotations: BTreeMap<String, String>,
    #[serde(default, rename = "externalURL")]
    pub external_url: String,
    pub alerts: Alerts,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertStatus {
    Firing,
    Resolved,
}

/// One alert that passed its checks.
#[derive(Debug, Clone)]
pub struct Alert {
    pub status: AlertStatus,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub starts_at: DateTime<Utc>,
    /// `0001-01-01T00:00:00Z` while firing.
    pub ends_at: Option<DateTime<Utc>>,
    pub generator_url: String,
    /// Trimmed, 1 to 64 characters.
    pub fingerprint: String,
}

/// An alert left out of an accepted notification, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// Its position in the notification's `alerts`.
    pub index: usize,
    /// Its `fingerprint` as sent (at most 64 characters; empty when it had none).
    pub fingerprint: String,
    /// The offending field, e.g. `alerts[3].startsAt`.
    pub field: String,
    /// One of [`REJECT_REASONS`].
    pub reason: &'static str,
    pub message: String,
}

/// The `alerts` array. Only the first [`MAX_ALERTS_PER_BATCH`] entries are parsed; the rest
/// are counted, so an oversized array costs no memory before it is refused.
#[derive(Debug, Clone, Default)]
pub struct Alerts {
    pub entries: Vec<Result<Alert, Skipped>>,
    /// Entries in the array, parsed or not.
    pub total: usize,
}

impl<'de> Deserialize<'de> for Alerts {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Each;
        impl<'de> Visitor<'de> for Each {
            type Value = Alerts;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array of alerts")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Alerts, A::Error> {
                let mut alerts = Alerts::default();
                loop {
                    if alerts.total < MAX_ALERTS_PER_BATCH {
                        // One alert at a time, kept as its raw JSON text and parsed on its own:
                        // its shape errors stay its own. (A `Value` per alert would parse
                        // every notification twice over.)
                        let Some(raw) = seq.next_element::<Box<RawValue>>()? else {
                            break;
                        };
                        alerts.entries.push(alert(alerts.total, raw.get()));
                    } else if seq.next_element::<IgnoredAny>()?.is_none() {
                        break;
                    }
                    alerts.total += 1;
                }
                Ok(alerts)
            }
        }
        deserializer.deserialize_seq(Each)
    }
}

/// An alert as sent, every field optional so that what is missing gets a precise reason.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wire {
    #[serde(default)]
    status: Option<AlertStatus>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    starts_at: Option<String>,
    #[serde(default)]
    ends_at: Option<String>,
    #[serde(default, rename = "generatorURL")]
    generator_url: Option<String>,
    #[serde(default)]
    fingerprint: Option<String>,
}

fn short(text: &str, max_chars: usize) -> String {
    text.chars().take(max_chars).collect()
}

/// The `fingerprint` of an alert that failed, for the log (a second parse, on errors only).
fn sent_fingerprint(raw: &str) -> String {
    serde_json::from_str::<Value>(raw)
        .ok()
        .and_then(|v| v.get("fingerprint")?.as_str().map(str::to_string))
        .map(|f| short(f.trim(), MAX_FINGERPRINT))
        .unwrap_or_default()
}

/// A check that failed: the field, the metric reason and the message.
type Problem = (String, &'static str, String);

fn problem(field: &str, reason: &'static str, message: impl Into<String>) -> Problem {
    (field.to_string(), reason, message.into())
}

/// Parses and checks the alert at `index` (its raw JSON text).
fn alert(index: usize, raw: &str) -> Result<Alert, Skipped> {
    let parsed = parse_wire(raw);
    let fingerprint = match &parsed {
        Ok(wire) => wire
            .fingerprint
            .as_deref()
            .map(|f| short(f.trim(), MAX_FINGERPRINT))
            .unwrap_or_default(),
        Err(_) => sent_fingerprint(raw),
    };
    parsed
        .and_then(checked)
        .map_err(|(path, reason, message)| Skipped {
            index,
            fingerprint,
            // The path names caller-chosen map keys (labels, annotations).
            field: if path.is_empty() || path == "." {
                format!("alerts[{index}]")
            } else {
                format!("alerts[{index}].{}", shown(&path))
            },
            reason,
            // serde quotes offending values; a huge one must not be copied into logs and answers.
            message: clip(&message, SHOWN_MAX).into_owned(),
        })
}

/// The plain parse first; the path-tracking one (slower) only to explain a failure.
fn parse_wire(raw: &str) -> Result<Wire, Problem> {
    serde_json::from_str::<Wire>(raw).map_err(|_| {
        let mut deserializer = serde_json::Deserializer::from_str(raw);
        match serde_path_to_error::deserialize::<_, Wire>(&mut deserializer) {
            Ok(_) => (String::new(), "malformed", "not an alert".to_string()),
            Err(error) => {
                let path = error.path().to_string();
                let reason = match path.split(['.', '[']).next().unwrap_or_default() {
                    "status" => "bad_status",
                    "startsAt" | "endsAt" => "bad_time",
                    "fingerprint" => "bad_fingerprint",
                    _ => "malformed",
                };
                (path, reason, error.into_inner().to_string())
            }
        }
    })
}

/// The checks of a parsed alert, in the order their failures are reported.
fn checked(wire: Wire) -> Result<Alert, Problem> {
    let Some(status) = wire.status else {
        return Err(problem(
            "status",
            "bad_status",
            "firing or resolved expected",
        ));
    };
    check_labels(&wire)?;
    let sent_fingerprint = wire.fingerprint.as_deref().map(str::trim).unwrap_or("");
    if sent_fingerprint.is_empty() || sent_fingerprint.chars().count() > MAX_FINGERPRINT {
        return Err(problem(
            "fingerprint",
            "bad_fingerprint",
            format!("1 to {MAX_FINGERPRINT} characters expected"),
        ));
    }
    let time = |field: &str, text: Option<&str>| match text {
        None => Ok(None),
        Some(text) => bounded_time::parse(text)
            .map(Some)
            .map_err(|why| problem(field, "bad_time", why)),
    };
    let Some(starts_at) = time("startsAt", wire.starts_at.as_deref())? else {
        return Err(problem("startsAt", "bad_time", "is required"));
    };
    let ends_at = time("endsAt", wire.ends_at.as_deref())?;
    Ok(Alert {
        status,
        starts_at,
        ends_at,
        fingerprint: sent_fingerprint.to_string(),
        labels: wire.labels,
        annotations: wire.annotations,
        generator_url: wire.generator_url.unwrap_or_default(),
    })
}

/// Labels and annotations within their bounds, and an `alertname` label.
fn check_labels(wire: &Wire) -> Result<(), Problem> {
    if wire.labels.is_empty() {
        return Err(problem(
            "labels",
            "missing_alertname",
            "an alert needs labels",
        ));
    }
    for (field, map) in [("labels", &wire.labels), ("annotations", &wire.annotations)] {
        if map.len() > MAX_LABELS {
            return Err(problem(
                field,
                "oversize",
                format!("{} entries; at most {MAX_LABELS}", map.len()),
            ));
        }
    }
    if let Some((name, _)) = wire.labels.iter().find(|(name, value)| {
        name.is_empty() || name.len() > MAX_LABEL_NAME || value.len() > MAX_LABEL_VALUE
    }) {
        return Err(problem(
            "labels",
            "oversize",
            format!(
                "label {:?}: names are 1 to {MAX_LABEL_NAME} bytes, values at most {MAX_LABEL_VALUE}",
                short(name, 64)
            ),
        ));
    }
    if wire.labels.get("alertname").is_none_or(|n| n.is_empty()) {
        return Err(problem(
            "labels.alertname",
            "missing_alertname",
            "an alert needs an alertname label",
        ));
    }
    Ok(())
}
