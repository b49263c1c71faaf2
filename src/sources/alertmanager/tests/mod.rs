//! Tests of the Alertmanager intake: fixtures here, one module per topic.

use super::*;
use chrono::TimeZone;

mod mapping;
mod skipped;

fn sample_json(name: &str) -> serde_json::Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("webhooks/samples/alertmanager")
        .join(name);
    let text = std::fs::read_to_string(&path).expect("sample exists");
    serde_json::from_str(&text).expect("sample is JSON")
}

fn payload(json: serde_json::Value) -> Payload {
    serde_json::from_value(json).expect("the envelope parses")
}

fn sample(name: &str) -> Payload {
    payload(sample_json(name))
}

fn first_alert(payload: &Payload) -> &Alert {
    payload.alerts.entries[0].as_ref().expect("a valid alert")
}

/// The records of a notification that must be accepted.
fn accepted(payload: &Payload) -> Vec<AlertRecord> {
    records(payload, &IssueTypes::default(), now())
        .expect("accepted")
        .records
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0)
        .single()
        .expect("valid time")
}
